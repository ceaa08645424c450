/*
 * tests/cpu/test_unicorn.c — what cpu/ does about Unicorn 2.1.1's own faults, each found while
 * fuzzing (tests/fuzz/fuzz_guest.c): a small translation buffer that fills up many times still
 * runs the guest right (cpu_create's first flush; without it Unicorn reuses a full buffer's
 * start while its blocks are live, and crashes), a vCPU's flush costs its buffer's size in
 * resident memory, not Unicorn's 1 GiB default, dropping the intercept hooks has no effect on
 * the guest (no TLB fill reaches the handler), and a guest's MOV to DR7 does not crash the
 * process.
 */
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

static struct guest G;
static struct cpu *C;
/* A p2m for the vCPU: gfn restricted to rights_of[gfn] when its bit is set. */
static uint64_t restricted[(GUEST_RAM_SIZE / 4096) / 64];
static uint8_t rights_of[GUEST_RAM_SIZE / 4096];

static unsigned rights_cb(void *opaque, uint64_t gfn)
{
    (void)opaque;
    return gfn < sizeof(rights_of) ? rights_of[gfn] : CPU_RWX;
}

static void fini(void)
{
    cpu_destroy(C);
    C = NULL;
    guest_fini(&G);
}

static void setup(uint32_t code_buffer, uint32_t intercept, const char *program)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.bin", GUEST_BIN_DIR, program);
    cr_assert_eq(guest_init(&G, CPU_MODE_LONG, GUEST_RAM_SIZE), 0, "setup: guest_init");
    cr_assert_eq(guest_standard(&G, path), 0, "setup: guest %s", path);
    memset(restricted, 0, sizeof(restricted));
    memset(rights_of, CPU_RWX, sizeof(rights_of));
    struct cpu_config cfg = {.mode = CPU_MODE_LONG, .mem = guest_memory(&G), .intercept = intercept,
                             .code_buffer = code_buffer};
    cfg.mem.restricted = restricted;
    cfg.mem.rights = rights_cb;
    int rc = cpu_create(&C, &cfg);
    cr_assert_eq(rc, 0, "setup: cpu_create: %s", strerror(-rc));
    cr_assert_eq(guest_boot(&G, C), 0, "setup: guest_boot");
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = atol(line + 6);
    if (f)
        fclose(f);
    return kib;
}

#define CODE_GLA 0x30000000ull
#define CODE_GPA 0xc00000ull /* above the standard layout's data (tests/guest/guest.h) */
#define BLOCK 64u
#define BLOCKS 8192u         /* 512 KiB of guest code: ~170,000 instructions, tens of MiB translated */

/* BLOCKS blocks of 20 x `inc rax` and a jump to the next block; HLT after the last. */
static void write_blocks(void)
{
    cr_assert_eq(guest_map(&G, CODE_GLA, CODE_GPA, BLOCKS * BLOCK + 4096, 4096, 0), 0, "setup: map");
    uint8_t *p = G.ram + CODE_GPA;
    for (unsigned b = 0; b < BLOCKS; b++, p += BLOCK) {
        for (unsigned k = 0; k < 20; k++)
            memcpy(p + 3 * k, "\x48\xff\xc0", 3);
        memcpy(p + 60, "\xeb\x02\x90\x90", 4);
    }
    *p = 0xf4;
}

/* Proves: with a 1 MiB buffer, running far more code than fits (the buffer fills and is flushed
 * again and again) gives the right result twice in a row, the second time after the blocks of
 * the first are gone; the engine does not crash when the buffer first fills. */
Test(unicorn, small_buffer_fills_and_flushes, .fini = fini, .timeout = 120)
{
    setup(1u << 20, 0, "basic64");
    write_blocks();
    for (int pass = 0; pass < 2; pass++) {
        cpu_set_rip(C, CODE_GLA);
        cpu_set_gpr(C, 0, 0);
        struct cpu_exit ex;
        int rc = cpu_run(C, 10 * BLOCKS * 21, &ex);
        cr_assert_eq(rc, 0, "cpu_run: %s", cpu_error(C));
        REASON(&ex, CPU_EXIT_HLT);
        cr_assert_eq(cpu_gpr(C, 0), 20ull * BLOCKS, "pass %d: rax %llu, expected %u", pass,
                     (unsigned long long)cpu_gpr(C, 0), 20u * BLOCKS);
        cr_assert_eq(ex.insns, 21ull * BLOCKS + 1, "pass %d: %llu instructions counted", pass,
                     (unsigned long long)ex.insns);
    }
}

/* Proves: a buffer below Unicorn's 1 MiB minimum is refused. */
Test(unicorn, below_minimum_refused)
{
    struct guest g;
    cr_assert_eq(guest_init(&g, CPU_MODE_LONG, GUEST_RAM_SIZE), 0, "setup: guest_init");
    struct cpu_config cfg = {.mode = CPU_MODE_LONG, .mem = guest_memory(&g), .code_buffer = (1u << 20) - 4096};
    struct cpu *c = NULL;
    cr_expect_eq(cpu_create(&c, &cfg), -EINVAL);
    cpu_destroy(c);
    guest_fini(&g);
}

/* Proves: with the default buffer, a vCPU that ran and flushed its translated code (as enabling
 * an intercept does) holds tens of MiB more, not the ~1 GiB of Unicorn's default buffer. */
Test(unicorn, flush_memory_bounded, .fini = fini)
{
    long before = rss_kib();
    cr_assert_gt(before, 0, "setup: /proc/self/status has no VmRSS");
    setup(0, 0, "basic64");
    struct cpu_exit ex;
    int rc = cpu_run(C, 1000, &ex);
    cr_assert_eq(rc, 0, "cpu_run: %s", cpu_error(C));
    cr_assert_eq(cpu_set_intercept(C, 1u << CPU_INSN_CPUID), 0);
    long grown = rss_kib() - before;
    cr_assert_lt(grown, 3 * (long)(CPU_CODE_BUFFER_DEFAULT >> 10),
                 "the vCPU grew the process by %ld KiB (its buffer is %u KiB)", grown, CPU_CODE_BUFFER_DEFAULT >> 10);
}

static unsigned handler_calls;

static enum cpu_verdict count_handler(void *opaque, struct cpu *c, const struct cpu_exit *ev)
{
    (void)opaque;
    (void)c;
    (void)ev;
    handler_calls++;
    return CPU_STOP;
}

/* Proves: cpu_flush_code, which deletes the narrow hooks of intercepted instructions, reaches no
 * handler even when the pages of those instructions are no longer executable (Unicorn's hook
 * deletion translates their addresses through the TLB fill; such a fill used to report a refused
 * fetch: an event for an instruction that never ran). */
Test(unicorn, dropping_hooks_has_no_effect, .fini = fini)
{
    setup(0, CPU_INSN_ALL, "icpt64");
    struct cpu_exit ex;
    for (int i = 0; i < 3; i++) { /* three intercepted instructions: their hooks are in place */
        int rc = cpu_run(C, 1000, &ex);
        cr_assert_eq(rc, 0, "cpu_run: %s", cpu_error(C));
        REASON(&ex, CPU_EXIT_INSN);
        cpu_insn_skip(C);
    }
    /* Run once more from the start: the blocks are translated with the hooks already there. */
    cpu_set_rip(C, GUEST_CODE_GLA);
    cr_assert_eq(cpu_run(C, 1000, &ex), 0, "cpu_run: %s", cpu_error(C));
    /* The code page loses X: any fetch of it is refused from now on. */
    uint64_t gfn = GUEST_CODE_GPA >> 12;
    rights_of[gfn] = CPU_R;
    restricted[gfn / 64] |= 1ull << (gfn % 64);
    cpu_p2m_restricted(C, gfn);
    handler_calls = 0;
    cpu_set_handler(C, count_handler, NULL);
    cr_assert_eq(cpu_set_intercept(C, 0), 0);
    cr_assert_eq(handler_calls, 0u, "the flush reached the handler %u time(s)", handler_calls);
}

/* Proves: a guest MOV to DR7 that enables a breakpoint (which crashes bare Unicorn 2.1.1: SIGSEGV)
 * completes; the value is kept (MOV from DR7 reads it back) and the run goes on to the HLT. */
Test(unicorn, mov_to_dr7_does_not_crash, .fini = fini)
{
    setup(0, 0, "basic64");
    /* mov ecx, 0x10; mov dr7, rcx; mov rax, dr7; hlt at gla 0x30000000. */
    cr_assert_eq(guest_map(&G, CODE_GLA, CODE_GPA, 4096, 4096, 0), 0, "setup: map");
    static const uint8_t code[] = {0xb9, 0x10, 0, 0, 0, 0x0f, 0x23, 0xf9, 0x0f, 0x21, 0xf8, 0xf4};
    memcpy(G.ram + CODE_GPA, code, sizeof(code));
    cpu_set_rip(C, CODE_GLA);
    struct cpu_exit ex;
    int rc = cpu_run(C, 100, &ex);
    cr_assert_eq(rc, 0, "cpu_run: %s", cpu_error(C));
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(cpu_gpr(C, 0) & 0xff, 0x10, "rax %llx: DR7 as written", (unsigned long long)cpu_gpr(C, 0));
    cr_assert_eq(ex.insns, 4, "%llu instructions counted", (unsigned long long)ex.insns);
}
