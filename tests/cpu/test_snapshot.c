/*
 * tests/cpu/test_snapshot.c — what snapshots need from cpu/: the dirty hook reports exactly
 * the frames the guest writes (data and page-table A/D bits, never frames only read or
 * executed), cpu_save/cpu_restore bring a vCPU back to the saved instruction with every
 * register and cpu/'s own state (single-step), and cpu_frame_written makes rewritten code
 * run instead of its stale translation.
 */
#include "common.h"

static struct harness H;

static void fini(void)
{
    harness_teardown(&H);
}

/* Frames reported by the dirty hook, as gfns of the harness's RAM. */
static uint8_t seen[GUEST_RAM_SIZE / 4096];

static void on_dirty(void *opaque, uint8_t *frame)
{
    struct harness *h = opaque;
    uint8_t *ram = guest_memory(&h->g).ram;
    cr_assert(frame >= ram && frame < ram + GUEST_RAM_SIZE, "a frame outside guest RAM was reported");
    cr_assert_eq((uintptr_t)(frame - ram) % 4096, 0, "a frame address must be page aligned");
    seen[(frame - ram) / 4096] = 1;
}

/* Proves: the two data pages basic64 writes are reported, its code page (only fetched) is not,
 * and the page-table page holding the data PTEs is (the walker sets their A and D bits). */
Test(cpu_snapshot, dirty_hook_reports_written_frames, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "basic64", 0);
    memset(seen, 0, sizeof(seen));
    cpu_set_dirty_hook(H.c, on_dirty, &H);
    cpu_dirty_restart(H.c);
    struct cpu_exit ex;
    RUN(&H, 1000, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert(seen[GUEST_DATA_GPA / 4096], "the first data page was written but not reported");
    cr_assert(seen[GUEST_DATA_GPA / 4096 + 1], "the second data page was written but not reported");
    cr_assert(!seen[GUEST_CODE_GPA / 4096], "the code page was only executed, yet reported written");
    uint64_t pt = guest_pte_gpa(&H.g, GUEST_DATA_GLA, 0) / 4096;
    cr_assert(seen[pt], "the page table whose A/D bits the walker set was not reported");
}

/* Proves: after cpu_dirty_restart, a page written again is reported again (entries with W that
 * were in the TLB before the restart do not let writes through unreported). */
Test(cpu_snapshot, restart_reports_again, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "basic64", 0);
    cpu_set_dirty_hook(H.c, on_dirty, &H);
    struct cpu_exit ex;
    uint64_t start = cpu_rip(H.c);
    RUN(&H, 1000, &ex);
    memset(seen, 0, sizeof(seen));
    cpu_dirty_restart(H.c);
    cpu_set_rip(H.c, start);
    RUN(&H, 1000, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert(seen[GUEST_DATA_GPA / 4096], "a write after the restart went unreported");
}

/* Proves: a restored vCPU is back at the saved point with the saved registers and runs to the
 * same result; cpu/'s single-step setting is part of the state. */
Test(cpu_snapshot, save_restore_round_trip, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "basic64", 0);
    size_t n = cpu_state_size(H.c);
    uint8_t *blob = malloc(n);
    cr_assert_not_null(blob);
    struct cpu_regs before, after;
    cpu_get_regs(H.c, &before);
    cpu_set_singlestep(H.c, true);
    cr_assert_eq(cpu_save(H.c, blob, n), 0, "cpu_save: %s", cpu_error(H.c));
    cpu_set_singlestep(H.c, false);
    struct cpu_exit ex;
    RUN(&H, 1000, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(cpu_gpr(H.c, 0), 0x3333);
    cr_assert_eq(cpu_restore(H.c, blob, n), 0, "cpu_restore: %s", cpu_error(H.c));
    cpu_get_regs(H.c, &after);
    cr_assert_eq(after.rip, before.rip, "rip %#llx, saved %#llx", (unsigned long long)after.rip,
                 (unsigned long long)before.rip);
    cr_assert_eq(after.rax, before.rax);
    cr_assert_eq(after.cr3, before.cr3);
    cr_assert_eq(after.cs.selector, before.cs.selector);
    RUN(&H, 1000, &ex);
    REASON(&ex, CPU_EXIT_STEP); /* single-step came back with the state */
    cpu_set_singlestep(H.c, false);
    RUN(&H, 1000, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(cpu_gpr(H.c, 0), 0x3333, "the restored vCPU computed %#llx",
                 (unsigned long long)cpu_gpr(H.c, 0));
    free(blob);
}

/* Proves: damaged or foreign blobs are refused with a sentence, and nothing changes. */
Test(cpu_snapshot, bad_blob_refused, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "basic64", 0);
    size_t n = cpu_state_size(H.c);
    uint8_t *blob = calloc(1, n);
    cr_assert_not_null(blob);
    uint64_t rip = cpu_rip(H.c);
    cr_assert_eq(cpu_restore(H.c, blob, n), -EINVAL);
    cr_assert(strlen(cpu_error(H.c)) > 0, "no sentence for a refused blob");
    cr_assert_eq(cpu_restore(H.c, blob, 10), -EINVAL);
    cr_assert_eq(cpu_save(H.c, blob, n - 1), -EINVAL);
    cr_assert_eq(cpu_rip(H.c), rip, "a refused restore changed the vCPU");
    free(blob);
}

static const uint8_t mov_rax_1_hlt[] = {0x48, 0xc7, 0xc0, 0x01, 0x00, 0x00, 0x00, 0xf4};
#define SMC_OFF 0x600

/* Proves: code rewritten behind the engine's back runs as rewritten after cpu_frame_written,
 * although Unicorn would otherwise run its earlier translation. */
Test(cpu_snapshot, frame_written_drops_stale_code, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "basic64", 0);
    uint8_t *code = guest_memory(&H.g).ram + GUEST_CODE_GPA;
    memcpy(code + SMC_OFF, mov_rax_1_hlt, sizeof(mov_rax_1_hlt));
    struct cpu_exit ex;
    cpu_set_rip(H.c, GUEST_CODE_GLA + SMC_OFF);
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(cpu_gpr(H.c, 0), 1);
    code[SMC_OFF + 3] = 0x02; /* mov rax, 2 */
    cpu_set_rip(H.c, GUEST_CODE_GLA + SMC_OFF);
    RUN(&H, 100, &ex);
    uint64_t stale = cpu_gpr(H.c, 0);
    code[SMC_OFF + 3] = 0x03; /* mov rax, 3 */
    cr_assert_eq(cpu_frame_written(H.c, code), 0, "%s", cpu_error(H.c));
    cpu_set_rip(H.c, GUEST_CODE_GLA + SMC_OFF);
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(cpu_gpr(H.c, 0), 3, "the stale translation ran (rax %llu; without the call: %llu)",
                 (unsigned long long)cpu_gpr(H.c, 0), (unsigned long long)stale);
    cr_assert_eq(cpu_frame_written(H.c, code + 1), -EINVAL, "an unaligned frame address was accepted");
}
