/*
 * tests/sim/test_monitor_v7.c — the monitor events of interface version 7 that
 * Debian's xen-access needs (issue 9): CPUID, DESCRIPTOR_ACCESS,
 * DEBUG_EXCEPTION, SOFTWARE_BREAKPOINT re-injection, WRITE_CTRLREG with a
 * bitmask, inguest_pagefault and their controls.  Each event is checked field
 * by field against what Xen 4.17 on Intel puts in the request, then answered as
 * xen-access answers it, and the guest's resulting state proves the answer's
 * effect (results kept, instruction executed once, handler reached with the
 * right return address).  The guest runs at gla 0x400000 with an IDT whose #DB
 * and #BP handlers record the vector (r8) and return address (r9) and halt.
 */
#include <criterion/criterion.h>
#include <errno.h>

#include "sim_fixture.h"

#define CODE_GLA 0x400000ull
#define CODE_GFN (FIX_CODE_GPA >> 12)
#define DB_HANDLER 0x200u
#define BP_HANDLER 0x240u
#define IDT_OFF 0x800u
#define STACK_TOP (FIX_DATA_GLA + 0x700)
#define BUF_GLA (FIX_DATA_GLA + 0x100)
#define BUF_GPA ((FIX_DATA_GFN << 12) + 0x100)

static void idt_gate(uint8_t *g, uint64_t target)
{
    memset(g, 0, 16);
    g[0] = (uint8_t)target;
    g[1] = (uint8_t)(target >> 8);
    g[2] = 0x08; /* the boot CS */
    g[5] = 0x8e; /* present, 64-bit interrupt gate */
    g[6] = (uint8_t)(target >> 16);
    g[7] = (uint8_t)(target >> 24);
    uint32_t hi = (uint32_t)(target >> 32);
    memcpy(g + 8, &hi, 4);
}

/* The fixture's domain with `code` at 0x400000, the two handlers, an IDT and a stack; rbx = BUF_GLA. */
static struct sim_domain *make(const uint8_t *code, size_t len)
{
    uint8_t page[0x300];
    memset(page, 0x90, sizeof(page));
    memcpy(page, code, len);
    /* mov r8d, vector; mov r9, [rsp]; hlt */
    const uint8_t db[] = {0x41, 0xb8, 1, 0, 0, 0, 0x4c, 0x8b, 0x0c, 0x24, 0xf4};
    const uint8_t bp[] = {0x41, 0xb8, 3, 0, 0, 0, 0x4c, 0x8b, 0x0c, 0x24, 0xf4};
    memcpy(page + DB_HANDLER, db, sizeof(db));
    memcpy(page + BP_HANDLER, bp, sizeof(bp));
    struct sim_domain *d = fixture_domain(1, page, sizeof(page), BUF_GLA);
    uint8_t idt[16 * 16];
    memset(idt, 0, sizeof(idt));
    idt_gate(idt + 16 * 1, CODE_GLA + DB_HANDLER);
    idt_gate(idt + 16 * 3, CODE_GLA + BP_HANDLER);
    SETUP(sim_mem_write(d, (FIX_DATA_GFN << 12) + IDT_OFF, idt, sizeof(idt)));
    struct cpu_regs r;
    SETUP(sim_vcpu_get_regs(d, 0, &r));
    r.idtr_base = FIX_DATA_GLA + IDT_OFF;
    r.idtr_limit = sizeof(idt) - 1;
    r.rsp = STACK_TOP;
    SETUP(sim_vcpu_set_regs(d, 0, &r));
    return d;
}

static void enable_ring(struct sim_domain *d, struct fixture_client *c)
{
    struct ring_fds fds;
    SETUP(sim_monitor_enable(d, 7, &fds));
    fixture_attach(c, &fds);
}

/* Runs until a request is on the ring and takes it; it must have `reason`. */
static struct vme_msg next_event(struct sim_domain *d, struct fixture_client *c, unsigned reason)
{
    unsigned char slot[400];
    struct sim_stop stop;
    for (int i = 0; i < 100 && ring_back_take_request(c->back, slot) != 0; i++) {
        sim_run(d, 100000, &stop);
        cr_assert(stop.reason == SIM_STOP_EVENT || stop.reason == SIM_STOP_BLOCKED || stop.reason == SIM_STOP_LIMIT,
                  "stopped with %d (%s) before the event", stop.reason, stop.why);
        if (ring_back_take_request(c->back, slot) == 0)
            goto got;
    }
    cr_assert_fail("no request came");
got:;
    struct vme_msg m;
    vme_decode(7, slot, &m);
    cr_assert_eq(m.version, 7);
    cr_assert_eq(m.reason, reason, "reason %u, expected %u", m.reason, reason);
    return m;
}

static void respond(struct fixture_client *c, const struct vme_msg *req, uint32_t flags)
{
    struct vme_msg rsp;
    memset(&rsp, 0, sizeof(rsp));
    rsp.version = 7;
    rsp.vcpu_id = req->vcpu_id;
    rsp.reason = req->reason;
    rsp.flags = (req->flags & VME_FLAG_VCPU_PAUSED) | flags;
    rsp.u = req->u;
    rsp.regs = req->regs;
    fixture_respond(c, &rsp);
}

static struct cpu_regs regs(struct sim_domain *d)
{
    struct cpu_regs r;
    SETUP(sim_vcpu_get_regs(d, 0, &r));
    return r;
}

static void run_to_halt(struct sim_domain *d)
{
    struct sim_stop s = fixture_run_until_idle(d);
    cr_assert_eq(s.reason, SIM_STOP_HALTED, "stopped with %d (%s), expected HALTED", s.reason, s.why);
}

/* mov eax, 1; xor ecx, ecx; cpuid; mov r10, rax; hlt */
static const uint8_t cpuid_code[] = {0xb8, 1, 0, 0, 0, 0x31, 0xc9, 0x0f, 0xa2, 0x49, 0x89, 0xc2, 0xf4};

/* Proves: CPUID gives reason 10 (sync) with insn_length 2, leaf/subleaf as before execution,
 * rax..rdx already the results and RIP still at the CPUID; xen-access's answer (SET_REGISTERS
 * with rip + insn_length) continues after it with the results; with the monitor off the same
 * code gets the same results and no event. */
Test(monitor_v7, cpuid)
{
    struct sim_domain *plain = make(cpuid_code, sizeof(cpuid_code));
    run_to_halt(plain);
    struct cpu_regs want = regs(plain);
    sim_domain_destroy(plain);
    cr_assert_neq(want.r10, 1, "CPUID leaf 1 executed natively");

    struct sim_domain *d = make(cpuid_code, sizeof(cpuid_code));
    struct fixture_client c;
    enable_ring(d, &c);
    cr_assert_eq(sim_monitor_cpuid(d, true), 0);
    cr_assert_eq(sim_monitor_cpuid(d, true), -EEXIST);
    struct vme_msg req = next_event(d, &c, VME_REASON_CPUID);
    cr_expect(req.flags & VME_FLAG_VCPU_PAUSED);
    cr_expect_eq(req.u.cpuid.insn_length, 2);
    cr_expect_eq(req.u.cpuid.leaf, 1);
    cr_expect_eq(req.u.cpuid.subleaf, 0);
    cr_expect_eq(req.regs.rip, CODE_GLA + 7, "rip %#llx: not advanced", (unsigned long long)req.regs.rip);
    cr_expect_eq(req.regs.rax, want.rax, "rax holds the result");
    cr_expect_eq(req.regs.rbx, want.rbx);
    cr_expect_eq(req.regs.rcx, want.rcx);
    cr_expect_eq(req.regs.rdx, want.rdx);
    cr_expect_eq(regs(d).rip, CODE_GLA + 7, "the vCPU waits at the CPUID");
    req.regs.rip += req.u.cpuid.insn_length;
    req.regs.r12 = 0x5151; /* SET_REGISTERS covers every GPR */
    respond(&c, &req, VME_FLAG_SET_REGISTERS);
    run_to_halt(d);
    struct cpu_regs r = regs(d);
    cr_expect_eq(r.r10, want.rax, "mov r10, rax ran after the CPUID with its result");
    cr_expect_eq(r.r12, 0x5151);
    cr_expect_eq(r.rip, CODE_GLA + sizeof(cpuid_code));
    cr_expect_eq(ring_back_take_request(c.back, (unsigned char[400]){0}), -EAGAIN, "one event only");
    fixture_destroy(d, &c);
}

/* sgdt [rbx]; lgdt [rbx]; sidt [rbx+0x10]; str eax; hlt */
static const uint8_t desc_code[] = {0x0f, 0x01, 0x03, 0x0f, 0x01, 0x13, 0x0f, 0x01, 0x4b, 0x10,
                                    0x0f, 0x00, 0xc8, 0xf4};

/* Proves: each descriptor-table instruction gives reason 13 (sync) before executing, with the
 * VMX instruction information (scaling, 64-bit address size, operand size, DS, no index, base
 * RBX, identity, load bit / register form), the displacement, the descriptor and is_write;
 * without EMULATE it is retried (a second event, memory untouched); EMULATE executes it exactly
 * once; with the monitor off it simply runs. */
Test(monitor_v7, descriptor_access)
{
    uint8_t fill[32];
    memset(fill, 0xaa, sizeof(fill));
    struct sim_domain *d = make(desc_code, sizeof(desc_code));
    SETUP(sim_mem_write(d, BUF_GPA, fill, sizeof(fill)));
    struct fixture_client c;
    enable_ring(d, &c);
    cr_assert_eq(sim_monitor_descriptor_access(d, false), -EEXIST);
    cr_assert_eq(sim_monitor_descriptor_access(d, true), 0);
    cr_assert_eq(sim_monitor_descriptor_access(d, true), -EEXIST);

    struct vme_msg req = next_event(d, &c, VME_REASON_DESCRIPTOR_ACCESS);
    cr_expect(req.flags & VME_FLAG_VCPU_PAUSED);
    cr_expect_eq(req.u.desc.instr_info, 0x01c18900u, "sgdt [rbx]: %#x", req.u.desc.instr_info);
    cr_expect_eq(req.u.desc.exit_qualification, 0);
    cr_expect_eq(req.u.desc.descriptor, 2, "GDTR");
    cr_expect_eq(req.u.desc.is_write, 0);
    cr_expect_eq(req.regs.rip, CODE_GLA);
    respond(&c, &req, 0); /* no EMULATE: the instruction runs again and exits again */
    req = next_event(d, &c, VME_REASON_DESCRIPTOR_ACCESS);
    cr_expect_eq(req.regs.rip, CODE_GLA, "retried");
    uint8_t buf[32];
    SETUP(sim_mem_read(d, BUF_GPA, buf, sizeof(buf)));
    cr_expect_eq(buf[0], 0xaa, "SGDT not executed yet");
    respond(&c, &req, VME_FLAG_EMULATE);

    req = next_event(d, &c, VME_REASON_DESCRIPTOR_ACCESS);
    cr_expect_eq(req.regs.rip, CODE_GLA + 3, "lgdt next: the SGDT was emulated once");
    SETUP(sim_mem_read(d, BUF_GPA, buf, sizeof(buf)));
    struct cpu_regs r = regs(d);
    uint16_t limit;
    uint64_t base;
    memcpy(&limit, buf, 2);
    memcpy(&base, buf + 2, 8);
    cr_expect(limit == r.gdtr_limit && base == r.gdtr_base, "SGDT stored the GDTR");
    cr_expect_eq(req.u.desc.instr_info, 0x21c18900u, "lgdt [rbx]: %#x", req.u.desc.instr_info);
    cr_expect_eq(req.u.desc.descriptor, 2);
    cr_expect_eq(req.u.desc.is_write, 1);
    respond(&c, &req, VME_FLAG_EMULATE);

    req = next_event(d, &c, VME_REASON_DESCRIPTOR_ACCESS);
    cr_expect_eq(req.regs.rip, CODE_GLA + 6);
    cr_expect_eq(req.u.desc.instr_info, 0x11c18900u, "sidt [rbx+0x10]: %#x", req.u.desc.instr_info);
    cr_expect_eq(req.u.desc.exit_qualification, 0x10);
    cr_expect_eq(req.u.desc.descriptor, 1, "IDTR");
    cr_expect_eq(req.u.desc.is_write, 0);
    respond(&c, &req, VME_FLAG_EMULATE);

    req = next_event(d, &c, VME_REASON_DESCRIPTOR_ACCESS);
    cr_expect_eq(req.regs.rip, CODE_GLA + 10);
    cr_expect_eq(req.u.desc.instr_info, 0x10000400u, "str eax: %#x", req.u.desc.instr_info);
    cr_expect_eq(req.u.desc.descriptor, 4, "TR");
    cr_expect_eq(req.u.desc.is_write, 0);
    respond(&c, &req, VME_FLAG_EMULATE);
    run_to_halt(d);
    SETUP(sim_mem_read(d, BUF_GPA + 0x10, buf, 10));
    memcpy(&base, buf + 2, 8);
    cr_expect_eq(base, FIX_DATA_GLA + IDT_OFF, "SIDT emulated");
    fixture_destroy(d, &c);

    /* Monitor off: no event, the instructions run. */
    d = make(desc_code, sizeof(desc_code));
    SETUP(sim_mem_write(d, BUF_GPA, fill, sizeof(fill)));
    enable_ring(d, &c);
    run_to_halt(d);
    cr_expect_eq(ring_back_take_request(c.back, (unsigned char[400]){0}), -EAGAIN);
    SETUP(sim_mem_read(d, BUF_GPA + 0x10, buf, 10));
    memcpy(&base, buf + 2, 8);
    cr_expect_eq(base, FIX_DATA_GLA + IDT_OFF);
    fixture_destroy(d, &c);
}

/* nop; icebp; nop; hlt */
static const uint8_t icebp_code[] = {0x90, 0xf1, 0x90, 0xf4};
/* pushfq; or qword [rsp], 0x100; popfq; nop; hlt: TF traps after the nop */
static const uint8_t tf_code[] = {0x9c, 0x48, 0x81, 0x0c, 0x24, 0x00, 0x01, 0x00, 0x00, 0x9d, 0x90, 0xf4};

/* Proves: without the monitor, ICEBP and a TF single-step reach the guest's #DB handler with
 * return addresses after the ICEBP and after the stepped instruction. */
Test(monitor_v7, debug_native)
{
    struct sim_domain *d = make(icebp_code, sizeof(icebp_code));
    run_to_halt(d);
    cr_expect_eq(regs(d).r8, 1, "#DB handler");
    cr_expect_eq(regs(d).r9, CODE_GLA + 2, "return address after the ICEBP");
    sim_domain_destroy(d);
    d = make(tf_code, sizeof(tf_code));
    run_to_halt(d);
    cr_expect_eq(regs(d).r8, 1);
    cr_expect_eq(regs(d).r9, CODE_GLA + 11, "trap after the nop");
    sim_domain_destroy(d);
}

/* Proves: ICEBP with debug monitoring (sync) gives reason 9 with type 5, insn_length 1,
 * pending_dbg 0, the gfn of rip, RIP at the ICEBP, and no #DB for the guest until the client
 * re-injects it (vector 1, type 5, length 1): the handler then sees return address rip + 1. */
Test(monitor_v7, debug_icebp_sync)
{
    struct sim_domain *d = make(icebp_code, sizeof(icebp_code));
    struct fixture_client c;
    enable_ring(d, &c);
    cr_assert_eq(sim_monitor_debug_exceptions(d, true, true), 0);
    cr_assert_eq(sim_monitor_debug_exceptions(d, true, false), -EEXIST);
    struct vme_msg req = next_event(d, &c, VME_REASON_DEBUG_EXCEPTION);
    cr_expect(req.flags & VME_FLAG_VCPU_PAUSED);
    cr_expect_eq(req.u.debug.type, 5);
    cr_expect_eq(req.u.debug.insn_length, 1);
    cr_expect_eq(req.u.debug.pending_dbg, 0);
    cr_expect_eq(req.u.debug.gfn, CODE_GFN);
    cr_expect_eq(req.regs.rip, CODE_GLA + 1);
    cr_expect_eq(regs(d).r8, 0, "the #DB was not delivered");
    cr_assert_eq(sim_inject_trap(d, 0, 1, req.u.debug.type, -1, req.u.debug.insn_length, 0), 0);
    respond(&c, &req, 0);
    run_to_halt(d);
    cr_expect_eq(regs(d).r8, 1, "#DB handler reached");
    cr_expect_eq(regs(d).r9, CODE_GLA + 2, "return address rip + insn_length");
    fixture_destroy(d, &c);
}

/* Proves: a TF single-step trap gives reason 9 with type 3, insn_length 0, RIP after the
 * stepped instruction; the re-injected #DB (type 3) returns there. */
Test(monitor_v7, debug_tf_sync)
{
    struct sim_domain *d = make(tf_code, sizeof(tf_code));
    struct fixture_client c;
    enable_ring(d, &c);
    cr_assert_eq(sim_monitor_debug_exceptions(d, true, true), 0);
    struct vme_msg req = next_event(d, &c, VME_REASON_DEBUG_EXCEPTION);
    cr_expect_eq(req.u.debug.type, 3);
    cr_expect_eq(req.u.debug.insn_length, 0);
    cr_expect_eq(req.u.debug.pending_dbg, 0);
    cr_expect_eq(req.u.debug.gfn, CODE_GFN);
    cr_expect_eq(req.regs.rip, CODE_GLA + 11, "after the nop");
    cr_expect(req.regs.rflags & 0x100, "TF still set");
    cr_expect_eq(regs(d).r8, 0);
    cr_assert_eq(sim_inject_trap(d, 0, 1, 3, -1, 0, 0), 0);
    respond(&c, &req, 0);
    run_to_halt(d);
    cr_expect_eq(regs(d).r8, 1);
    cr_expect_eq(regs(d).r9, CODE_GLA + 11);
    fixture_destroy(d, &c);
}

/* Proves: with sync = 0 the event carries no VCPU_PAUSED and the #DB goes to the guest at once
 * (hvm_monitor_debug returns 0 and vmx_propagate_intr delivers it). */
Test(monitor_v7, debug_async)
{
    struct sim_domain *d = make(icebp_code, sizeof(icebp_code));
    struct fixture_client c;
    enable_ring(d, &c);
    cr_assert_eq(sim_monitor_debug_exceptions(d, true, false), 0);
    run_to_halt(d);
    cr_expect_eq(regs(d).r9, CODE_GLA + 2, "delivered without the client");
    unsigned char slot[400];
    cr_assert_eq(ring_back_take_request(c.back, slot), 0);
    struct vme_msg req;
    vme_decode(7, slot, &req);
    cr_expect_eq(req.reason, VME_REASON_DEBUG_EXCEPTION);
    cr_expect_eq(req.flags & VME_FLAG_VCPU_PAUSED, 0);
    cr_expect_eq(req.u.debug.type, 5);
    fixture_destroy(d, &c);
}

/* Proves: INT3 gives SOFTWARE_BREAKPOINT with type 6, insn_length 1, the gfn of rip and RIP at
 * the INT3; re-injecting #BP (vector 3, type 6, length 1) reaches the handler with return
 * address rip + 1. */
Test(monitor_v7, breakpoint_reinjection)
{
    const uint8_t code[] = {0x90, 0xcc, 0x90, 0xf4};
    struct sim_domain *d = make(code, sizeof(code));
    struct fixture_client c;
    enable_ring(d, &c);
    cr_assert_eq(sim_monitor_software_breakpoint(d, true), 0);
    struct vme_msg req = next_event(d, &c, VME_REASON_SOFTWARE_BREAKPOINT);
    cr_expect_eq(req.u.debug.type, 6);
    cr_expect_eq(req.u.debug.insn_length, 1);
    cr_expect_eq(req.u.debug.gfn, CODE_GFN);
    cr_expect_eq(req.regs.rip, CODE_GLA + 1);
    cr_assert_eq(sim_inject_trap(d, 0, 3, req.u.debug.type, -1, req.u.debug.insn_length, 0), 0);
    respond(&c, &req, 0);
    run_to_halt(d);
    cr_expect_eq(regs(d).r8, 3, "#BP handler reached");
    cr_expect_eq(regs(d).r9, CODE_GLA + 2);
    fixture_destroy(d, &c);
}

/* Proves: xen-access's write_ctrlreg_cr4 (bitmask PGE, onchangeonly, sync): toggling only PGE
 * gives no event; another bit gives one with old and new values, and the write is applied at
 * once (no op 4) while the vCPU waits for the response. */
Test(monitor_v7, write_ctrlreg_cr4_mask)
{
    /* mov rax, cr4; xor rax, 0x80; mov cr4, rax; xor rax, 0x10000; mov cr4, rax; hlt */
    const uint8_t code[] = {0x0f, 0x20, 0xe0, 0x48, 0x35, 0x80, 0, 0, 0, 0x0f, 0x22, 0xe0,
                            0x48, 0x35, 0x00, 0x00, 0x01, 0x00, 0x0f, 0x22, 0xe0, 0xf4};
    struct sim_domain *d = make(code, sizeof(code));
    uint64_t cr4 = regs(d).cr4;
    struct fixture_client c;
    enable_ring(d, &c);
    cr_assert_eq(sim_monitor_write_ctrlreg(d, SIM_CTRLREG_CR4, true, true, 0x80, true), 0);
    struct vme_msg req = next_event(d, &c, VME_REASON_WRITE_CTRLREG);
    cr_expect_eq(req.u.write_ctrlreg.index, SIM_CTRLREG_CR4);
    cr_expect_eq(req.u.write_ctrlreg.old_value, cr4 ^ 0x80, "the PGE-only write went through silently");
    cr_expect_eq(req.u.write_ctrlreg.new_value, cr4 ^ 0x80 ^ 0x10000);
    cr_expect_eq(regs(d).cr4, cr4 ^ 0x80 ^ 0x10000, "applied at once");
    respond(&c, &req, 0);
    run_to_halt(d);
    fixture_destroy(d, &c);
}

/* Proves: a read of a page whose page table the guest may not read gives MEM_ACCESS with
 * FAULT_IN_GPT; after xc_monitor_inguest_pagefault(disable) the walk goes through with no event
 * and the instruction completes. */
Test(monitor_v7, inguest_pagefault)
{
    /* mov rax, [rbx]; mov r11, 1; hlt */
    const uint8_t code[] = {0x48, 0x8b, 0x03, 0x49, 0xc7, 0xc3, 1, 0, 0, 0, 0xf4};
    for (int disabled = 0; disabled < 2; disabled++) {
        struct sim_domain *d = make(code, sizeof(code));
        struct fixture_client c;
        enable_ring(d, &c);
        struct cpu_walk w;
        SETUP(cpu_translate(d->vcpus[0].cpu, BUF_GLA, CPU_R, &w));
        uint64_t pt_gfn = w.pte_gpa[w.levels - 1] >> 12;
        cr_assert_neq(pt_gfn, CODE_GFN);
        SETUP(sim_set_mem_access(d, 0 /* n */, pt_gfn, 1));
        if (disabled) {
            cr_assert_eq(sim_monitor_inguest_pagefault(d, true), 0);
            cr_assert_eq(sim_monitor_inguest_pagefault(d, true), -EEXIST);
            run_to_halt(d);
            cr_expect_eq(regs(d).r11, 1, "the read completed");
            cr_expect_eq(ring_back_take_request(c.back, (unsigned char[400]){0}), -EAGAIN, "no event");
        } else {
            struct vme_msg req = next_event(d, &c, VME_REASON_MEM_ACCESS);
            cr_expect(req.u.mem_access.flags & VME_MEM_ACCESS_FAULT_IN_GPT);
            cr_expect_eq(req.u.mem_access.gfn, pt_gfn);
        }
        fixture_destroy(d, &c);
    }
}

/* Proves: the new controls give -EEXIST for an unchanged state, set the intercepts they need,
 * and a monitor disable clears them (arch_monitor_cleanup_domain); inject_trap is -EBUSY while
 * one is pending; debug_control is -EINVAL for a vCPU the domain does not have. */
Test(monitor_v7, controls)
{
    const uint8_t code[] = {0xf4};
    struct sim_domain *d = make(code, sizeof(code));
    cr_expect_eq(sim_monitor_cpuid(d, false), -EEXIST);
    cr_expect_eq(sim_monitor_debug_exceptions(d, false, false), -EEXIST);
    cr_expect_eq(sim_monitor_inguest_pagefault(d, false), -EEXIST);
    cr_expect_eq(sim_monitor_emul_unimplemented(d, false), -EEXIST);
    struct fixture_client c;
    enable_ring(d, &c);
    cr_assert_eq(sim_monitor_cpuid(d, true), 0);
    cr_assert_eq(sim_monitor_descriptor_access(d, true), 0);
    cr_assert_eq(sim_monitor_debug_exceptions(d, true, true), 0);
    cr_assert_eq(sim_monitor_inguest_pagefault(d, true), 0);
    cr_assert_eq(sim_monitor_emul_unimplemented(d, true), 0);
    cr_assert_eq(sim_monitor_emul_unimplemented(d, true), -EEXIST);
    cr_expect(d->intercept & (1u << CPU_INSN_CPUID));
    cr_expect(d->intercept & (1u << CPU_INSN_SIDT));
    cr_expect(d->intercept & (1u << CPU_INSN_DB_TRAP));
    cr_expect(d->mon.debug_exception_sync);
    cr_assert_eq(sim_monitor_disable(d), 0);
    cr_expect(!d->mon.cpuid && !d->mon.descriptor_access && !d->mon.debug_exception
              && !d->mon.inguest_pagefault_disabled && !d->mon.emul_unimplemented);
    cr_expect_eq(d->intercept & (1u << CPU_INSN_CPUID | 1u << CPU_INSN_SIDT | 1u << CPU_INSN_INT1), 0);
    cr_expect_eq(sim_monitor_cpuid(d, true), 0, "enabled again after the disable");
    cr_expect_eq(sim_inject_trap(d, 0, 1, 3, -1, 0, 0), 0);
    cr_expect_eq(sim_inject_trap(d, 0, 1, 3, -1, 0, 0), -EBUSY);
    cr_expect_eq(sim_debug_control_singlestep(d, 1, false), -EINVAL, "one vCPU");
    cr_expect_eq(sim_debug_control_singlestep(d, 31, false), -EINVAL);
    fixture_destroy(d, &c);
}

static uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* Proves: the v7 payloads sit at Xen 4.17's offsets (public/vm_event.h: the union u at byte 24;
 * debug_exception {gfn, pending_dbg, insn_length, type}, cpuid {insn_length, leaf, subleaf},
 * desc_access {instr_info, _pad1, exit_qualification, descriptor, is_write}), and a v1 ring
 * refuses the reasons v1 lacks. */
Test(monitor_v7, v7_payload_offsets)
{
    unsigned char s[400];
    struct vme_msg m;
    memset(&m, 0, sizeof(m));
    m.version = 7;
    m.reason = VME_REASON_DEBUG_EXCEPTION;
    m.u.debug.gfn = 0x1122334455ull;
    m.u.debug.pending_dbg = 0x4000;
    m.u.debug.insn_length = 1;
    m.u.debug.type = 5;
    cr_assert_eq(vme_encode(7, &m, s), 0);
    cr_expect_eq(rd32(s + 8), 9);
    cr_expect_eq(rd64(s + 24), 0x1122334455ull);
    cr_expect_eq(rd64(s + 32), 0x4000);
    cr_expect_eq(rd32(s + 40), 1);
    cr_expect_eq(s[44], 5);
    cr_expect_eq(vme_encode(1, &m, s), -EOPNOTSUPP, "v1 has no DEBUG_EXCEPTION");
    memset(&m.u, 0, sizeof(m.u));
    m.reason = VME_REASON_CPUID;
    m.u.cpuid.insn_length = 2;
    m.u.cpuid.leaf = 0x40000000;
    m.u.cpuid.subleaf = 3;
    cr_assert_eq(vme_encode(7, &m, s), 0);
    cr_expect_eq(rd32(s + 24), 2);
    cr_expect_eq(rd32(s + 28), 0x40000000);
    cr_expect_eq(rd32(s + 32), 3);
    memset(&m.u, 0, sizeof(m.u));
    m.reason = VME_REASON_DESCRIPTOR_ACCESS;
    m.u.desc.instr_info = 0x21c18900;
    m.u.desc.exit_qualification = 0x10;
    m.u.desc.descriptor = 2;
    m.u.desc.is_write = 1;
    cr_assert_eq(vme_encode(7, &m, s), 0);
    cr_expect_eq(rd32(s + 24), 0x21c18900);
    cr_expect_eq(rd64(s + 32), 0x10);
    cr_expect_eq(s[40], 2);
    cr_expect_eq(s[41], 1);
    struct vme_msg back;
    cr_assert_eq(vme_decode(7, s, &back), 0);
    cr_expect_eq(back.u.desc.instr_info, 0x21c18900);
    cr_expect_eq(back.u.desc.exit_qualification, 0x10);
    cr_expect_eq(back.u.desc.is_write, 1);
}
