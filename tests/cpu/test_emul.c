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

/* Proves: the emulated read of FXRSTOR is the whole 512-byte image: with read data, the FPU/SSE
 * state comes from the given bytes (FCW, MXCSR, XMM0) and beyond them from zeros (as Xen's
 * set_context_data fills), not from guest memory; the FXSAVE that follows shows it. */
Test(emul, fxrstor_read_data_whole_image, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    /* fxrstor [rbx]; fxsave [rsi]; hlt at gla 0x20000000 (gfn 0xf00). */
    cr_assert_eq(guest_map(&H.g, 0x20000000, 0xf00000, 4096, 4096, 0), 0, "setup: map");
    static const uint8_t code[] = {0x0f, 0xae, 0x0b, 0x0f, 0xae, 0x06, 0xf4};
    memcpy(H.g.ram + 0xf00000, code, sizeof(code));
    uint64_t src = GUEST_DATA_GLA + 0x8000, dst = GUEST_DATA_GLA + 0x9000;
    memset(H.g.ram + DATA_GPA(src), 0xff, 4096); /* garbage the read must not see */
    harness_restrict(&H, DATA_GPA(src) >> 12, 0);
    uint8_t data[252] = {0};
    data[0] = 0x7f; data[1] = 0x03;                       /* FCW 0x037f */
    data[0x18] = 0x80; data[0x19] = 0x1f;                 /* MXCSR 0x1f80 */
    for (unsigned i = 0; i < 16; i++)
        data[0xa0 + i] = (uint8_t)(0xa0 + i);             /* XMM0 */
    for (unsigned i = 0; i < 12; i++)
        data[0xf0 + i] = (uint8_t)(0x50 + i);             /* XMM5, first 12 bytes */
    cpu_set_rip(H.c, 0x20000000);
    cpu_set_gpr(H.c, 3, src);
    cpu_set_gpr(H.c, 6, dst);
    struct cpu_exit ex;
    cr_assert_eq(cpu_emulate(H.c, CPU_EMUL_READ_DATA, data, sizeof(data), &ex), 0, "%s", cpu_error(H.c));
    REASON(&ex, CPU_EXIT_STEP);
    RUN(&H, 10, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    const uint8_t *saved = H.g.ram + DATA_GPA(dst);
    cr_expect_eq(saved[0] | saved[1] << 8, 0x037f, "FCW");
    cr_expect_eq(saved[0x18] | saved[0x19] << 8, 0x1f80, "MXCSR");
    cr_expect(memcmp(saved + 0xa0, data + 0xa0, 16) == 0, "XMM0 from the given bytes");
    cr_expect(memcmp(saved + 0xf0, data + 0xf0, 12) == 0, "XMM5's given bytes");
    static const uint8_t zero[4] = {0};
    cr_expect(memcmp(saved + 0xfc, zero, 4) == 0, "past the given bytes: zeros, not guest memory");
}

/* Proves: with read data and without NOWRITE, a read-modify-write (`inc qword [rbx]`) reads the
 * given bytes and writes its result to guest memory (Xen: reads from the buffer, writes to
 * memory), instead of failing in the engine (found by the `guest` fuzz target: the write hit the
 * read-data scratch frame, mapped read-only, and Unicorn stopped with UC_ERR_EXCEPTION). */
Test(emul, read_modify_write_read_data, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    /* inc qword [rbx]; hlt at gla 0x20000000 (gfn 0xf00). */
    cr_assert_eq(guest_map(&H.g, 0x20000000, 0xf00000, 4096, 4096, 0), 0, "setup: map");
    static const uint8_t code[] = {0x48, 0xff, 0x03, 0xf4};
    memcpy(H.g.ram + 0xf00000, code, sizeof(code));
    uint64_t gla = GUEST_DATA_GLA + 0x8010;
    guest_write64(&H.g, DATA_GPA(gla), 0x1000);
    harness_restrict(&H, DATA_GPA(gla) >> 12, 0);
    cpu_set_rip(H.c, 0x20000000);
    cpu_set_gpr(H.c, 3, gla);
    struct cpu_exit ex;
    const uint8_t data[1] = {0x41};
    cr_assert_eq(cpu_emulate(H.c, CPU_EMUL_READ_DATA, data, sizeof(data), &ex), 0, "%s", cpu_error(H.c));
    REASON(&ex, CPU_EXIT_STEP);
    cr_assert_eq(cpu_rip(H.c), 0x20000003ull, "rip %llx", (unsigned long long)cpu_rip(H.c));
    cr_assert_eq(guest_read64(&H.g, DATA_GPA(gla)), 0x42, "memory %llx: the given 0x41 plus one",
                 (unsigned long long)guest_read64(&H.g, DATA_GPA(gla)));
    /* The bypass ends with the instruction: the page is refused again. */
    cpu_set_rip(H.c, 0x20000000);
    RUN(&H, 10, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
}
