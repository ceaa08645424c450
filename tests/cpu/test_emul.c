/* tests/cpu/test_emul.c — one-instruction emulation (EMULATE, NOWRITE, SET_EMUL_READ_DATA). */
#include "common.h"

static struct harness H;

static void fini(void)
{
    harness_teardown(&H);
}

/* Proves: emulating a refused write with NOWRITE advances RIP but leaves memory unchanged, and
 * the page stays restricted afterwards (the bypass does not leak). */
Test(emul, nowrite, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    uint64_t gla = GUEST_DATA_GLA + 0x4010;
    guest_write64(&H.g, DATA_GPA(gla), 0x99);
    harness_restrict(&H, DATA_GPA(gla) >> 12, CPU_R);
    uint64_t rip = harness_label(&H, 0);
    cpu_set_rip(H.c, rip);
    cpu_set_gpr(H.c, 3, gla);
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    int rc = cpu_emulate(H.c, CPU_EMUL_NOWRITE, NULL, 0, &ex);
    cr_assert_eq(rc, 0, "%s", cpu_error(H.c));
    REASON(&ex, CPU_EXIT_STEP);
    cr_assert_neq(cpu_rip(H.c), rip, "RIP advanced");
    cr_assert_eq(guest_read64(&H.g, DATA_GPA(gla)), 0x99, "memory unchanged");
    cpu_set_rip(H.c, rip);
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
}

/* Proves: emulating without flags performs the write despite the restriction. */
Test(emul, plain, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    uint64_t gla = GUEST_DATA_GLA + 0x4010;
    harness_restrict(&H, DATA_GPA(gla) >> 12, CPU_R);
    cpu_set_rip(H.c, harness_label(&H, 0));
    cpu_set_gpr(H.c, 3, gla);
    struct cpu_exit ex;
    cr_assert_eq(cpu_emulate(H.c, 0, NULL, 0, &ex), 0, "%s", cpu_error(H.c));
    REASON(&ex, CPU_EXIT_STEP);
    cr_assert_eq(guest_read64(&H.g, DATA_GPA(gla)), 0x5a5a5a5a);
}

/* Proves: with read data, `mov rax, [rbx]` loads the given bytes (3 bytes given, rest zero-filled)
 * instead of guest memory, which is unchanged. */
Test(emul, read_data, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    uint64_t gla = GUEST_DATA_GLA + 0x6ffc; /* straddles into the next page */
    guest_write64(&H.g, DATA_GPA(gla), 0xffffffffffffffffull);
    harness_restrict(&H, DATA_GPA(gla) >> 12, 0);
    cpu_set_rip(H.c, harness_label(&H, 1));
    cpu_set_gpr(H.c, 3, gla);
    cpu_set_gpr(H.c, 0, 0x1234);
    struct cpu_exit ex;
    const uint8_t data[3] = {0x11, 0x22, 0x33};
    cr_assert_eq(cpu_emulate(H.c, CPU_EMUL_READ_DATA, data, sizeof(data), &ex), 0, "%s",
                 cpu_error(H.c));
    REASON(&ex, CPU_EXIT_STEP);
    cr_assert_eq(cpu_gpr(H.c, 0), 0x332211, "rax %llx", (unsigned long long)cpu_gpr(H.c, 0));
    cr_assert_eq(guest_read64(&H.g, DATA_GPA(gla)), 0xffffffffffffffffull);
}

/* Proves: a buffer larger than the v7 capacity is refused. */
Test(emul, capacity, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    uint8_t big[CPU_EMUL_DATA_MAX + 1] = {0};
    struct cpu_exit ex;
    cr_assert_eq(cpu_emulate(H.c, CPU_EMUL_READ_DATA, big, sizeof(big), &ex), -EINVAL);
}
