/* tests/cpu/test_step.c — single-step. */
#include "common.h"

static struct harness H;

static void fini(void)
{
    harness_teardown(&H);
}

/* Proves: single-stepping a loop stops after exactly one instruction each time, giving the
 * exact RIP sequence; turning it off lets the rest run to HLT. */
Test(step, loop_rip_sequence, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "step64", 0);
    cpu_set_rip(H.c, 0x400900);
    static const uint64_t want[] = {0x400905, 0x400908, 0x40090a, 0x400905,
                                    0x400908, 0x40090a, 0x40090c};
    cpu_set_singlestep(H.c, true);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        struct cpu_exit ex;
        RUN(&H, 1000, &ex);
        REASON(&ex, CPU_EXIT_STEP);
        cr_assert_eq(ex.insns, 1);
        cr_assert_eq(cpu_rip(H.c), want[i], "step %zu: rip %llx", i,
                     (unsigned long long)cpu_rip(H.c));
    }
    cpu_set_singlestep(H.c, false);
    struct cpu_exit ex;
    RUN(&H, 1000, &ex);
    REASON(&ex, CPU_EXIT_HLT);
}

/* Proves: a REP MOVSB single-steps one iteration at a time (as with EFLAGS.TF), RIP staying on
 * the instruction.  Deviation (Unicorn): after the last iteration RIP is still on the REP and
 * one more step (RCX = 0, nothing moved) advances it; hardware advances with the last iteration. */
Test(step, rep_iterations, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    uint64_t rip = harness_label(&H, 4);
    cpu_set_rip(H.c, rip);
    cpu_set_gpr(H.c, 6, GUEST_DATA_GLA);
    cpu_set_gpr(H.c, 7, GUEST_DATA_GLA + 0x100);
    cpu_set_gpr(H.c, 1, 3);
    memset(H.g.ram + DATA_GPA(GUEST_DATA_GLA), 0xcd, 3);
    cpu_set_singlestep(H.c, true);
    static const uint64_t rcx[] = {2, 1, 0, 0};
    for (int i = 0; i < 4; i++) {
        struct cpu_exit ex;
        RUN(&H, 1000, &ex);
        REASON(&ex, CPU_EXIT_STEP);
        cr_assert_eq(cpu_gpr(H.c, 1), rcx[i]);
        cr_assert_eq(cpu_rip(H.c), i < 3 ? rip : rip + 2, "step %d rip %llx", i,
                     (unsigned long long)cpu_rip(H.c));
        cr_assert_eq(H.g.ram[DATA_GPA(GUEST_DATA_GLA + 0x100) + (i < 3 ? i : 2)], 0xcd);
    }
}
