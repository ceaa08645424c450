/*
 * tests/cpu/test_debug.c — #DB sources cpu/ reports or delivers itself: ICEBP
 * (F1, which Unicorn treats as an invalid opcode), the single-step trap of
 * EFLAGS.TF (CPU_INSN_DB_TRAP), and the descriptor-table instructions' VMX
 * instruction information.  Each test writes its few bytes at GUEST_CODE_GLA +
 * 0x4000 and starts there; the runtime's handlers record vector and return RIP.
 */
#include "common.h"

static struct harness H;

static void fini(void)
{
    harness_teardown(&H);
}

#define AT 0x4000u

static void place(const uint8_t *code, size_t len)
{
    memcpy(cpu_gpa_ptr(H.c, GUEST_CODE_GPA + AT, len), code, len);
    cpu_set_rip(H.c, GUEST_CODE_GLA + AT);
}

/* nop; icebp; hlt */
static const uint8_t icebp[] = {0x90, 0xf1, 0xf4};
/* pushfq; or qword [rsp], 0x100; popfq; nop; hlt */
static const uint8_t tf[] = {0x9c, 0x48, 0x81, 0x0c, 0x24, 0x00, 0x01, 0x00, 0x00, 0x9d, 0x90, 0xf4};

/* Proves: not intercepted, ICEBP delivers #DB (not #UD) with return address after it. */
Test(debug, icebp_delivers_db, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "basic64", 0);
    place(icebp, sizeof(icebp));
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_VECTOR), 1);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_RIP), GUEST_CODE_GLA + AT + 2);
}

/* Proves: intercepted, ICEBP stops at itself (kind INT1, length 1); cpu_insn_execute then
 * delivers the #DB, cpu_insn_skip moves past it with none. */
Test(debug, icebp_intercepted, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "basic64", 1u << CPU_INSN_INT1);
    place(icebp, sizeof(icebp));
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_INSN);
    cr_assert_eq(ex.insn.kind, CPU_INSN_INT1);
    cr_assert_eq(ex.insn.len, 1);
    cr_assert_eq(ex.insn.rip, GUEST_CODE_GLA + AT + 1);
    cpu_insn_execute(H.c);
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_VECTOR), 1);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_RIP), GUEST_CODE_GLA + AT + 2);

    guest_write64(&H.g, GUEST_RT_VECTOR, 99);
    place(icebp, sizeof(icebp));
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_INSN);
    cr_assert_eq(cpu_insn_skip(H.c), 0);
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(cpu_rip(H.c), GUEST_CODE_GLA + AT + 3, "the hlt after it");
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_VECTOR), 99, "no #DB");
}

/* Proves: a TF single-step trap is reported (kind DB_TRAP, length 0, RIP after the stepped
 * instruction) only when intercepted; cpu_insn_execute delivers it with that return address. */
Test(debug, tf_trap, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "basic64", 0);
    place(tf, sizeof(tf));
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_VECTOR), 1);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_RIP), GUEST_CODE_GLA + AT + 11);

    cr_assert_eq(cpu_set_intercept(H.c, 1u << CPU_INSN_DB_TRAP), 0);
    guest_write64(&H.g, GUEST_RT_VECTOR, 99);
    struct cpu_regs r;
    cpu_get_regs(H.c, &r);
    r.rsp = GUEST_STACK_TOP - 0x100;
    r.rflags = 2;
    cpu_set_regs(H.c, &r);
    place(tf, sizeof(tf));
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_INSN);
    cr_assert_eq(ex.insn.kind, CPU_INSN_DB_TRAP);
    cr_assert_eq(ex.insn.len, 0);
    cr_assert_eq(ex.insn.rip, GUEST_CODE_GLA + AT + 11);
    cr_assert_eq(ex.insns, 4, "pushfq, or, popfq, nop completed");
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_VECTOR), 99, "not delivered yet");
    cpu_insn_execute(H.c);
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_VECTOR), 1);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_RIP), GUEST_CODE_GLA + AT + 11);
}

/* Proves: the VMX instruction information of descriptor-table instructions, memory forms with
 * base, index, scale, segment override and displacement, and the register form. */
Test(debug, desc_instr_info, .fini = fini)
{
    uint32_t all = 1u << CPU_INSN_SGDT | 1u << CPU_INSN_SIDT | 1u << CPU_INSN_SLDT | 1u << CPU_INSN_LLDT;
    SETUP(&H, CPU_MODE_LONG, "basic64", all);
    struct {
        uint8_t code[8];
        size_t len;
        uint32_t info;
        uint64_t disp;
    } t[] = {
        /* sgdt [rbx]: 64-bit addresses, operand size 1, DS, no index, base RBX */
        {{0x0f, 0x01, 0x03}, 3, 0x01c18900u, 0},
        /* sidt fs:[rax+rcx*4-8]: scale 2, FS, index RCX, base RAX, IDT */
        {{0x64, 0x0f, 0x01, 0x4c, 0x88, 0xf8}, 6, 0x10000000u | 2 | 0x100 | 0x800 | 4u << 15 | 1u << 18,
         (uint64_t)-8},
        /* sldt [rbp+0x20]: SS by default for RBP, base RBP, no operand-size bit for LDT/TR */
        {{0x0f, 0x00, 0x45, 0x20}, 4, 0x100 | 2u << 15 | 1u << 22 | 5u << 23, 0x20},
        /* lldt r9w: register form, reg1 = 9, mem/reg 1, load */
        {{0x41, 0x0f, 0x00, 0xd1}, 4, 0x20000000u | 9u << 3 | 1u << 10, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        place(t[i].code, t[i].len);
        struct cpu_exit ex;
        RUN(&H, 100, &ex);
        REASON(&ex, CPU_EXIT_INSN);
        cr_expect_eq(ex.insn.instr_info, t[i].info, "%s: %#x, expected %#x", ex.insn.text,
                     ex.insn.instr_info, t[i].info);
        cr_expect_eq(ex.insn.displacement, t[i].disp, "%s: displacement %#llx", ex.insn.text,
                     (unsigned long long)ex.insn.displacement);
    }
}
