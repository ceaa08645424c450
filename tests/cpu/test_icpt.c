/* tests/cpu/test_icpt.c — interception of every listed instruction, operand values, answers. */
#include "common.h"

static struct harness H;

static void fini(void)
{
    harness_teardown(&H);
}

static struct cpu_exit next_insn(enum cpu_insn_kind kind)
{
    struct cpu_exit ex;
    RUN(&H, 1000, &ex);
    REASON(&ex, CPU_EXIT_INSN);
    cr_assert_eq(ex.insn.kind, kind, "kind %d (%s), expected %d", ex.insn.kind, ex.insn.text, kind);
    cr_assert_eq(cpu_rip(H.c), ex.insn.rip, "stopped before execution");
    return ex;
}

/* Proves: each intercepted instruction stops before executing, decoded, with its operand
 * values; skipping with chosen results, executing and denying all behave as answered. */
Test(icpt, every_instruction, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "icpt64", CPU_INSN_ALL);
    struct cpu_regs r0;
    cpu_get_regs(H.c, &r0);
    struct cpu_exit ex = next_insn(CPU_INSN_VMCALL);
    cr_assert_eq(cpu_gpr(H.c, 0), 0x1234);
    cr_assert_eq(cpu_gpr(H.c, 7), 0x5678);
    cr_assert_str_eq(ex.insn.text, "vmcall");
    cpu_set_gpr(H.c, 0, 0); /* the hypercall's result */
    cr_assert_eq(cpu_insn_skip(H.c), 0);
    ex = next_insn(CPU_INSN_VMMCALL);
    cr_assert_eq(cpu_gpr(H.c, 0), 0, "result of the skipped vmcall kept");
    cpu_insn_skip(H.c);
    ex = next_insn(CPU_INSN_INT3);
    cpu_insn_skip(H.c);
    ex = next_insn(CPU_INSN_MOV_CR);
    cr_assert_eq(ex.insn.cr, 4);
    cr_assert_eq(ex.insn.value, r0.cr4 | 0x80);
    cpu_insn_skip(H.c); /* denied */
    ex = next_insn(CPU_INSN_MOV_CR);
    cr_assert_eq(ex.insn.cr, 3);
    cr_assert_eq(ex.insn.value, r0.cr3);
    cpu_insn_execute(H.c);
    ex = next_insn(CPU_INSN_MOV_CR);
    cr_assert_eq(ex.insn.cr, 0);
    cr_assert_eq(ex.insn.value, r0.cr0);
    cpu_insn_execute(H.c);
    ex = next_insn(CPU_INSN_XSETBV);
    cr_assert_eq(ex.insn.index, 0);
    cr_assert_eq(ex.insn.value, 7);
    cpu_insn_execute(H.c);
    ex = next_insn(CPU_INSN_WRMSR);
    cr_assert_eq(ex.insn.index, 0xc0000082);
    cr_assert_eq(ex.insn.value, 0x0123456789abcdefull);
    cpu_insn_execute(H.c);
    ex = next_insn(CPU_INSN_RDMSR);
    cr_assert_eq(ex.insn.index, 0xc0000082);
    cpu_insn_execute(H.c);
    ex = next_insn(CPU_INSN_CPUID);
    cr_assert_eq(cpu_gpr(H.c, 2) & 0xffffffff, 0x01234567, "rdmsr executed (edx)");
    cr_assert_eq(ex.insn.index, 0x40000000);
    cr_assert_eq(ex.insn.sub, 3);
    cpu_set_gpr(H.c, 3, 0x73696d76);
    cpu_insn_skip(H.c);
    ex = next_insn(CPU_INSN_VMFUNC);
    cr_assert_eq(cpu_gpr(H.c, 3), 0x73696d76, "cpuid skipped with our result");
    cpu_insn_skip(H.c);
    ex = next_insn(CPU_INSN_SGDT);
    cr_assert(ex.insn.has_mem);
    uint64_t save = ex.insn.mem_gla;
    cpu_insn_execute(H.c);
    ex = next_insn(CPU_INSN_LGDT);
    cr_assert_eq(ex.insn.mem_gla, save);
    cr_assert(ex.insn.valid);
    cr_assert_eq(ex.insn.base, GUEST_GDT_GPA, "base %llx", (unsigned long long)ex.insn.base);
    cr_assert_eq(ex.insn.limit, 23);
    cpu_insn_execute(H.c);
    ex = next_insn(CPU_INSN_SIDT);
    cpu_insn_execute(H.c);
    ex = next_insn(CPU_INSN_LIDT);
    cr_assert_eq(ex.insn.base, GUEST_IDT_GPA);
    cr_assert_eq(ex.insn.limit, 32 * 16 - 1);
    cpu_insn_execute(H.c);
    ex = next_insn(CPU_INSN_SLDT);
    cpu_insn_skip(H.c);
    ex = next_insn(CPU_INSN_LLDT);
    cr_assert_eq(ex.insn.value, 0);
    cpu_insn_skip(H.c);
    ex = next_insn(CPU_INSN_STR);
    cpu_insn_skip(H.c);
    ex = next_insn(CPU_INSN_LTR);
    cr_assert_eq(ex.insn.value, 0x28);
    cpu_insn_skip(H.c);
    ex = next_insn(CPU_INSN_HLT);
    cpu_insn_execute(H.c);
    RUN(&H, 1000, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    struct cpu_regs r;
    cpu_get_regs(H.c, &r);
    cr_assert_eq(r.cr4, r0.cr4, "denied CR4 write had no effect");
    cr_assert_eq(r.xcr0, 7);
    cr_assert_eq(r.lstar, 0x0123456789abcdefull);
}

/* Proves: instructions not intercepted run without stopping (only HLT ends the run). */
Test(icpt, not_intercepted_runs, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "icpt64", 0);
    struct cpu_exit ex;
    RUN(&H, 1000, &ex);
    /* vmcall executed without a hypervisor: #UD delivered into the guest, which halts. */
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_VECTOR), 6);
}

static enum cpu_verdict skip_all(void *opaque, struct cpu *c, const struct cpu_exit *ev)
{
    int *n = opaque;
    if (ev->reason != CPU_EXIT_INSN || ev->insn.kind == CPU_INSN_HLT)
        return CPU_STOP;
    (*n)++;
    if (ev->insn.kind == CPU_INSN_VMCALL)
        cpu_set_gpr(c, 0, 42);
    cpu_insn_skip(c);
    return CPU_RESUME;
}

/* Proves: a handler answers intercepted instructions inside the engine: one cpu_run goes through
 * all 19 of them (skipped) to the HLT, with the vmcall result the handler set. */
Test(icpt, handler_inside_engine, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "icpt64", CPU_INSN_ALL);
    int n = 0;
    cpu_set_handler(H.c, skip_all, &n);
    struct cpu_exit ex;
    RUN(&H, 1000, &ex);
    REASON(&ex, CPU_EXIT_INSN);
    cr_assert_eq(ex.insn.kind, CPU_INSN_HLT);
    cr_assert_eq(n, 19);
}
