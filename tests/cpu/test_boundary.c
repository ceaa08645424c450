/*
 * tests/cpu/test_boundary.c — fetch faults at a page boundary.  Unicorn translates a whole
 * block, across a page boundary, before running any of it: the fetch of the next page is
 * refused while RIP is still at the block's start.  cpu/ must report the fetch only when the
 * code before the boundary has run (RIP at the instruction that reaches the page, registers
 * and earlier events as on hardware).  boundary64: 0x400ff0 mov ecx,0x55; 0x400ff5 mov
 * [rbx],ecx; 9 nops; 0x401000 mov eax,0x11223344; hlt.
 */
#include "common.h"

static struct harness H;

static void fini(void)
{
    harness_teardown(&H);
}

#define STRAIGHT 0x400ff0ull
#define NEXT_PAGE 0x401000ull
#define NEXT_GFN ((GUEST_CODE_GPA + 0x1000) >> 12)
#define DATA_GLA (GUEST_DATA_GLA + 0x3000)

static void start(unsigned label)
{
    cpu_set_rip(H.c, harness_label(&H, label));
    cpu_set_gpr(H.c, 3, DATA_GLA);
    cpu_set_gpr(H.c, 1, 0);
}

/* Proves: straight-line code running into a page without X gets its fetch event only after
 * the instructions before the boundary ran: RIP = the page's first byte, RCX and the write
 * done, 11 instructions counted, exact gla/gpa/size of the fetch; lifting X lets it finish. */
Test(boundary, fetch_fault_after_straight_line, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "boundary64", 0);
    harness_restrict(&H, NEXT_GFN, CPU_R | CPU_W);
    start(0);
    cr_assert_eq(cpu_rip(H.c), STRAIGHT, "setup: label");
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    cr_assert_eq(ex.access.kind, CPU_X);
    cr_assert(!ex.access.in_gpt);
    cr_assert(ex.access.exact);
    cr_assert_eq(ex.access.gla, NEXT_PAGE, "gla %llx", (unsigned long long)ex.access.gla);
    cr_assert_eq(ex.access.gpa, GUEST_CODE_GPA + 0x1000);
    cr_assert_eq(ex.access.size, 5);
    cr_assert_eq(cpu_rip(H.c), NEXT_PAGE, "rip %llx", (unsigned long long)cpu_rip(H.c));
    cr_assert_eq(cpu_gpr(H.c, 1), 0x55, "rcx set by the code before the boundary");
    cr_assert_eq(guest_read64(&H.g, DATA_GPA(DATA_GLA)), 0x55, "the write before it done");
    cr_assert_eq(ex.insns, 11, "insns %llu", (unsigned long long)ex.insns);
    cr_assert_eq(cpu_gpr(H.c, 0), 0, "nothing of the next page ran");
    harness_restrict(&H, NEXT_GFN, CPU_RWX);
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(ex.insns, 2);
    cr_assert_eq(cpu_gpr(H.c, 0), 0x11223344);
}

/* Proves: when an earlier instruction of the same block writes to a restricted page, that
 * write's event comes first (RIP at the write, RCX already set, nothing written), then the
 * fetch event at the boundary. */
Test(boundary, earlier_write_event_first, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "boundary64", 0);
    harness_restrict(&H, NEXT_GFN, CPU_R | CPU_W);
    harness_restrict(&H, DATA_GPA(DATA_GLA) >> 12, CPU_R);
    start(0);
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    cr_assert_eq(ex.access.kind, CPU_W, "kind %u gla %llx", ex.access.kind,
                 (unsigned long long)ex.access.gla);
    cr_assert_eq(ex.access.gla, DATA_GLA);
    cr_assert_eq(ex.access.size, 4);
    cr_assert_eq(cpu_rip(H.c), STRAIGHT + 5);
    cr_assert_eq(cpu_gpr(H.c, 1), 0x55);
    cr_assert_eq(ex.insns, 1);
    cr_assert_eq(guest_read64(&H.g, DATA_GPA(DATA_GLA)), 0, "write not done");
    harness_restrict(&H, DATA_GPA(DATA_GLA) >> 12, CPU_RWX);
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    cr_assert_eq(ex.access.kind, CPU_X);
    cr_assert_eq(ex.access.gla, NEXT_PAGE);
    cr_assert_eq(cpu_rip(H.c), NEXT_PAGE);
    cr_assert_eq(ex.insns, 10);
    cr_assert_eq(guest_read64(&H.g, DATA_GPA(DATA_GLA)), 0x55);
}

/* Proves: the max_insns bound holds on the way to the boundary (3 instructions, then the
 * remaining 8 before the fetch event), with exact counts. */
Test(boundary, max_insns_bound, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "boundary64", 0);
    harness_restrict(&H, NEXT_GFN, CPU_R | CPU_W);
    start(0);
    struct cpu_exit ex;
    RUN(&H, 3, &ex);
    REASON(&ex, CPU_EXIT_LIMIT);
    cr_assert_eq(ex.insns, 3);
    cr_assert_eq(cpu_rip(H.c), STRAIGHT + 8, "rip %llx", (unsigned long long)cpu_rip(H.c));
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    cr_assert_eq(ex.insns, 8, "insns %llu", (unsigned long long)ex.insns);
    cr_assert_eq(cpu_rip(H.c), NEXT_PAGE);
}

/* Proves: single-step walks the straight-line code one instruction at a time up to the
 * boundary (it used to stay at the block's start forever), then reports the fetch. */
Test(boundary, singlestep_to_boundary, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "boundary64", 0);
    harness_restrict(&H, NEXT_GFN, CPU_R | CPU_W);
    start(0);
    cpu_set_singlestep(H.c, true);
    static const uint64_t want[] = {0x400ff5, 0x400ff7, 0x400ff8, 0x400ff9, 0x400ffa, 0x400ffb,
                                    0x400ffc, 0x400ffd, 0x400ffe, 0x400fff, 0x401000};
    struct cpu_exit ex;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        RUN(&H, 100, &ex);
        REASON(&ex, CPU_EXIT_STEP);
        cr_assert_eq(ex.insns, 1);
        cr_assert_eq(cpu_rip(H.c), want[i], "step %zu: rip %llx", i,
                     (unsigned long long)cpu_rip(H.c));
    }
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    cr_assert_eq(ex.access.gla, NEXT_PAGE);
    cr_assert_eq(ex.insns, 0);
}

static int calls;
static uint64_t seen_rip, seen_rcx;
static enum cpu_verdict relax_x(void *opaque, struct cpu *c, const struct cpu_exit *ev)
{
    struct harness *h = opaque;
    calls++;
    seen_rip = cpu_rip(c);
    seen_rcx = cpu_gpr(c, 1);
    if (ev->reason != CPU_EXIT_ACCESS || ev->access.kind != CPU_X)
        return CPU_STOP;
    h->rights[ev->access.gpa >> 12] = CPU_RWX;
    return CPU_RESUME;
}

/* Proves: an in-engine handler sees the fetch event once, with RIP at the boundary and the
 * registers of the code before it, and resolving it runs on to HLT in the same cpu_run with
 * every instruction counted once. */
Test(boundary, handler_sees_boundary, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "boundary64", 0);
    harness_restrict(&H, NEXT_GFN, CPU_R | CPU_W);
    calls = 0;
    cpu_set_handler(H.c, relax_x, &H);
    start(0);
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(calls, 1);
    cr_assert_eq(seen_rip, NEXT_PAGE, "rip %llx", (unsigned long long)seen_rip);
    cr_assert_eq(seen_rcx, 0x55);
    cr_assert_eq(ex.insns, 13, "insns %llu", (unsigned long long)ex.insns);
}

/* Proves: an instruction straddling the boundary is the one that faults: RIP at it (0x401ffe),
 * the part in the next page reported (3 bytes at 0x402000), the code before it done. */
Test(boundary, straddling_instruction, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "boundary64", 0);
    harness_restrict(&H, NEXT_GFN + 1, CPU_R | CPU_W);
    start(2);
    cr_assert_eq(cpu_rip(H.c), 0x401ff0, "setup: label");
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    cr_assert_eq(ex.access.kind, CPU_X);
    cr_assert_eq(ex.access.gla, 0x402000);
    cr_assert_eq(ex.access.size, 3);
    cr_assert_eq(ex.access.access_gla, 0x401ffe);
    cr_assert_eq(ex.access.access_size, 5);
    cr_assert_eq(cpu_rip(H.c), 0x401ffe, "rip %llx", (unsigned long long)cpu_rip(H.c));
    cr_assert_eq(cpu_gpr(H.c, 1), 0x77);
    cr_assert_eq(ex.insns, 9);
}

/* Proves: straight-line code running into an unmapped page raises the guest #PF at the first
 * byte of that page (CR2 and the pushed RIP), after the code before it ran (RCX set). */
Test(boundary, guest_pf_after_straight_line, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "boundary64", 0);
    cr_assert_eq(guest_map(&H.g, 0x20000000, 0xf00000, 4096, 4096, 0), 0, "setup: map");
    static const uint8_t code[] = {0xb9, 0x55, 0, 0, 0, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
                                   0x90, 0x90, 0x90, 0x90, 0x90}; /* mov ecx, 0x55; 11 nops */
    memcpy(H.g.ram + 0xf00ff0, code, sizeof(code));
    cpu_set_rip(H.c, 0x20000ff0);
    cpu_set_gpr(H.c, 1, 0);
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_VECTOR), 14);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_RIP), 0x20001000, "rip %llx",
                 (unsigned long long)guest_read64(&H.g, GUEST_RT_RIP));
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_CR2), 0x20001000);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_ERROR) & 0x1, 0, "not present");
    cr_assert_eq(cpu_gpr(H.c, 1), 0x55);
}
