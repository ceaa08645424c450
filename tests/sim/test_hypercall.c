/*
 * tests/sim/test_hypercall.c — the declared hypercall table (sim/hypercall.c):
 * the pre step reads every guest buffer through the guest's page walk and
 * gives -EFAULT for a bad pointer (unmapped, straddling into an unmapped
 * page, non-canonical) without doing anything; an undeclared hypercall or
 * sub-op gives -ENOSYS (KVM: -KVM_ENOSYS) and one log line; the intercept
 * mask follows the ABI.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "guest_build_internal.h"
#include "hypercall_internal.h"
#include "sim_fixture.h"

#define RAM (1u << 20)
#define CODE_GPA 0x10000ull
#define DATA_GPA 0x20000ull


static char last_note[320];
static unsigned nr_notes;

static void on_note(void *opaque, const struct sim_note *n)
{
    (void)opaque;
    if (n->kind == SIM_NOTE_ACTION && strstr(n->text, "hypercall")) {
        nr_notes++;
        snprintf(last_note, sizeof(last_note), "%s", n->text);
    }
}

/* Code at gla 0x400000, one data page at 0x600000 (0x601000 is not mapped). */
static struct sim_domain *make(enum sim_hypercall_abi abi, const uint8_t *code, size_t len)
{
    struct sim_domain *d = NULL;
    struct sim_config cfg = {.mode = CPU_MODE_LONG, .ram_size = RAM, .nr_vcpus = 1, .hypercalls = abi};
    SETUP(sim_domain_create(&d, &cfg));
    sim_set_observer(d, on_note, NULL);
    nr_notes = 0;
    last_note[0] = 0;
    if (len)
        SETUP(sim_mem_write(d, CODE_GPA, code, len));
    struct guest_build b;
    struct guest_build_range avoid[] = {{CODE_GPA, 0x1000}, {DATA_GPA, 0x1000}};
    SETUP(guest_build_init(&b, sim_gpa(d, 0, RAM), RAM, CPU_MODE_LONG, 0, RAM, avoid, 2));
    SETUP(guest_build_map(&b, 0x400000, CODE_GPA, 0x1000, 0x1000, GUEST_BUILD_X));
    SETUP(guest_build_map(&b, 0x600000, DATA_GPA, 0x1000, 0x1000, GUEST_BUILD_W));
    /* A GDT, as the runner builds it: CS.L decides the 64-bit hypercall convention. */
    uint64_t gdt_gpa = guest_build_alloc(&b);
    if (!gdt_gpa)
        cr_assert_fail("TEST ERROR (set-up): no frame for the GDT");
    SETUP(guest_build_map(&b, 0xfffffffffffff000ull, gdt_gpa, 0x1000, 0x1000, 0));
    uint16_t limit = guest_build_gdt(&b, gdt_gpa);
    struct cpu_regs r;
    SETUP(sim_vcpu_get_regs(d, 0, &r));
    guest_build_boot_regs(&b, &r, 0x400000, 0xfffffffffffff000ull, limit);
    SETUP(sim_vcpu_set_regs(d, 0, &r));
    return d;
}

Test(hypercall, intercept_mask_follows_the_abi)
{
    cr_expect_eq(hcall_intercept_mask(SIM_HYPERCALL_NONE), 0u);
    cr_expect_eq(hcall_intercept_mask(SIM_HYPERCALL_XEN), 1u << CPU_INSN_VMCALL);
    cr_expect_eq(hcall_intercept_mask(SIM_HYPERCALL_KVM), (1u << CPU_INSN_VMCALL) | (1u << CPU_INSN_VMMCALL));
    struct sim_domain *d = make(SIM_HYPERCALL_NONE, NULL, 0);
    cr_expect_eq(d->intercept, 0u, "no hypercall ABI: nothing intercepted");
    cr_expect_eq(sim_monitor_software_breakpoint(d, true), 0);
    cr_expect_eq(d->intercept, 1u << CPU_INSN_INT3);
    sim_domain_destroy(d);
    d = make(SIM_HYPERCALL_XEN, NULL, 0);
    cr_expect_eq(d->intercept, 1u << CPU_INSN_VMCALL);
    cr_expect_eq(sim_monitor_software_breakpoint(d, true), 0);
    cr_expect_eq(sim_monitor_software_breakpoint(d, false), 0);
    cr_expect_eq(d->intercept, 1u << CPU_INSN_VMCALL, "a monitor change keeps the hypercall intercept");
    sim_domain_destroy(d);
}

Test(hypercall, pre_rejects_bad_pointers)
{
    struct sim_domain *d = make(SIM_HYPERCALL_XEN, NULL, 0);
    const uint32_t reason = 3;
    SETUP(sim_mem_write(d, DATA_GPA + 0xffc, &reason, 4));
    /* sched_op(shutdown, ptr): struct sched_shutdown is read through the page walk. */
    uint64_t unmapped[HCALL_MAX_ARGS] = {2, 0x700000};
    cr_expect_eq(hcall_invoke(d, 0, SIM_HYPERCALL_XEN, true, 29, unmapped), -EFAULT);
    uint64_t straddle[HCALL_MAX_ARGS] = {2, 0x600ffe};
    cr_expect_eq(hcall_invoke(d, 0, SIM_HYPERCALL_XEN, true, 29, straddle), -EFAULT,
                 "the second page of the struct is not mapped");
    uint64_t noncanon[HCALL_MAX_ARGS] = {2, 0x8000000000000000ull};
    cr_expect_eq(hcall_invoke(d, 0, SIM_HYPERCALL_XEN, true, 29, noncanon), -EFAULT);
    cr_expect_eq(sim_domain_shutdown_reason(d), -1, "a failed pre step does nothing");
    /* console_io(write, count, buffer): the whole buffer is checked before anything is written. */
    uint64_t con[HCALL_MAX_ARGS] = {0, 16, 0x600ff8};
    cr_expect_eq(hcall_invoke(d, 0, SIM_HYPERCALL_XEN, true, 18, con), -EFAULT);
    uint64_t con_top[HCALL_MAX_ARGS] = {0, 16, 0xfffffffffffffff8ull};
    cr_expect_eq(hcall_invoke(d, 0, SIM_HYPERCALL_XEN, true, 18, con_top), -EFAULT);
    uint64_t con_ok[HCALL_MAX_ARGS] = {0, 8, 0x600ff8};
    cr_expect_eq(hcall_invoke(d, 0, SIM_HYPERCALL_XEN, true, 18, con_ok), 0);
    /* The good pointer: the domain shuts down with the reason read. */
    uint64_t ok[HCALL_MAX_ARGS] = {2, 0x600ffc};
    cr_expect_eq(hcall_invoke(d, 0, SIM_HYPERCALL_XEN, true, 29, ok), 0);
    cr_expect_eq(sim_domain_shutdown_reason(d), 3);
    sim_domain_destroy(d);
}

Test(hypercall, undeclared_is_enosys)
{
    struct sim_domain *d = make(SIM_HYPERCALL_XEN, NULL, 0);
    uint64_t none[HCALL_MAX_ARGS] = {0};
    cr_expect_eq(hcall_invoke(d, 0, SIM_HYPERCALL_XEN, true, 99, none), -ENOSYS);
    uint64_t subop[HCALL_MAX_ARGS] = {99};
    cr_expect_eq(hcall_invoke(d, 0, SIM_HYPERCALL_XEN, true, 29, subop), -ENOSYS, "sched_op sub-op 99");
    cr_expect_eq(hcall_invoke(d, 0, SIM_HYPERCALL_XEN, true, 34, subop), -ENOSYS, "hvm_op sub-op 99");
    cr_expect_eq(hcall_invoke(d, 0, SIM_HYPERCALL_KVM, true, 18, none), -1000,
                 "console_io is Xen only; KVM answers -KVM_ENOSYS");
    uint64_t gr[HCALL_MAX_ARGS] = {24, 0};
    cr_expect_eq(hcall_invoke(d, 0, SIM_HYPERCALL_KVM, true, 34, gr), 0);
    uint64_t gr_arg[HCALL_MAX_ARGS] = {24, 0x1000};
    cr_expect_eq(hcall_invoke(d, 0, SIM_HYPERCALL_XEN, true, 34, gr_arg), -EINVAL);
    sim_domain_destroy(d);
}

/* A real VMCALL of an undeclared number: -ENOSYS in RAX, RIP past it, one line naming the guide. */
Test(hypercall, undeclared_vmcall_in_the_guest)
{
    const uint8_t code[] = {0xb8, 0x63, 0, 0, 0, 0x0f, 0x01, 0xc1, 0xf4}; /* mov eax, 99; vmcall; hlt */
    struct sim_domain *d = make(SIM_HYPERCALL_XEN, code, sizeof(code));
    struct sim_stop stop;
    cr_assert_eq(sim_run(d, 100, &stop), 0);
    cr_expect_eq(stop.reason, SIM_STOP_HALTED, "stop %d: %s", stop.reason, stop.why);
    struct cpu_regs r;
    SETUP(sim_vcpu_get_regs(d, 0, &r));
    cr_expect_eq(r.rax, (uint64_t)-ENOSYS, "rax %#llx", (unsigned long long)r.rax);
    cr_expect_eq(r.rip, 0x400009);
    cr_expect_eq(nr_notes, 1u);
    cr_expect(strstr(last_note, "undeclared hypercall 99 (Xen ABI") != NULL, "%s", last_note);
    cr_expect(strstr(last_note, "vCPU 0 at rip 0x400005") != NULL, "%s", last_note);
    cr_expect(strstr(last_note, "docs/adding-a-hypercall.md") != NULL, "%s", last_note);
    sim_domain_destroy(d);
}

/* Without an ABI, VMCALL is not intercepted: #UD, and with no IDT the vCPU faults. */
Test(hypercall, no_abi_vmcall_faults)
{
    const uint8_t code[] = {0xb8, 0x63, 0, 0, 0, 0x0f, 0x01, 0xc1, 0xf4};
    struct sim_domain *d = make(SIM_HYPERCALL_NONE, code, sizeof(code));
    struct sim_stop stop;
    cr_assert_eq(sim_run(d, 100, &stop), 0);
    cr_expect_eq(stop.reason, SIM_STOP_FAULT, "stop %d: %s", stop.reason, stop.why);
    cr_expect_eq(nr_notes, 0u);
    sim_domain_destroy(d);
}

Test(hypercall, guest_request_control_codes)
{
    struct sim_domain *d = make(SIM_HYPERCALL_XEN, NULL, 0);
    cr_expect_eq(sim_monitor_guest_request(d, false, true, false), -EEXIST);
    cr_expect_eq(sim_monitor_guest_request(d, true, true, false), 0);
    cr_expect_eq(sim_monitor_guest_request(d, true, false, true), -EEXIST);
    cr_expect_eq(sim_monitor_guest_request(d, false, false, false), 0);
    sim_domain_destroy(d);
}
