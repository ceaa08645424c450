/*
 * tests/cpu/test_remap.c — remapped frames (cpu_memory.remapped/frame, cpu_map_area): the
 * mechanism behind shared pages, foreign maps and altp2m remaps.  A gfn can be backed by
 * another gfn's frame or by a frame in an added area; reads, writes, fetches and the page
 * walker's own table reads all go to that frame, and a changed frame takes effect at once.
 */
#include <stdlib.h>

#include "common.h"

static struct harness H;
static uint8_t *area;

static void fini(void)
{
    harness_teardown(&H);
    free(area);
    area = NULL;
}

static uint8_t *ram_frame(uint64_t gfn)
{
    return guest_memory(&H.g).ram + gfn * 4096;
}

static uint64_t area64(unsigned frame, unsigned off)
{
    uint64_t v;
    memcpy(&v, area + frame * 4096 + off, 8);
    return v;
}

static void new_area(unsigned frames)
{
    area = aligned_alloc(4096, frames * 4096);
    cr_assert_not_null(area, "setup: no memory");
    memset(area, 0, frames * 4096);
    int rc = cpu_map_area(H.c, area, frames * 4096);
    cr_assert_eq(rc, 0, "setup: cpu_map_area: %d", rc);
}

static void run_label(unsigned label, uint64_t rbx, struct cpu_exit *ex)
{
    cpu_set_rip(H.c, harness_label(&H, label));
    cpu_set_gpr(H.c, 3, rbx);
    RUN(&H, 100, ex);
}

/* Proves: a gfn backed by another gfn's frame reads and writes that frame, and its own
 * frame is untouched (two gfns, one page: what sharing does). */
Test(remap, gfn_backed_by_another_gfn, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    uint64_t gla = GUEST_DATA_GLA + 2 * 4096 + 0x40;
    uint64_t a = DATA_GPA(gla) >> 12, b = a + 1;
    guest_write64(&H.g, DATA_GPA(gla), 0xaaaa);
    guest_write64(&H.g, (b << 12) + 0x40, 0xbbbb);
    harness_remap(&H, a, ram_frame(b));
    struct cpu_exit ex;
    run_label(1, gla, &ex); /* read_one */
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(cpu_gpr(H.c, 0), 0xbbbb, "the read went to gfn b's frame");
    run_label(0, gla, &ex); /* write_one */
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(guest_read64(&H.g, (b << 12) + 0x40), 0x5a5a5a5a, "the write went to gfn b's frame");
    cr_assert_eq(guest_read64(&H.g, DATA_GPA(gla)), 0xaaaa, "gfn a's own frame untouched");
}

/* Proves: a frame in an added area works like RAM, and changing the frame of a gfn the vCPU
 * already used takes effect (the stale translation is dropped). */
Test(remap, area_frame_and_change, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    new_area(2);
    uint64_t gla = GUEST_DATA_GLA + 3 * 4096 + 0x18;
    uint64_t gfn = DATA_GPA(gla) >> 12;
    guest_write64(&H.g, DATA_GPA(gla), 0x1234);
    struct cpu_exit ex;
    run_label(1, gla, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(cpu_gpr(H.c, 0), 0x1234, "setup: own frame first");
    memcpy(area + 0x18, &(uint64_t){0xa0a0}, 8);
    memcpy(area + 4096 + 0x18, &(uint64_t){0xa1a1}, 8);
    harness_remap(&H, gfn, area);
    run_label(1, gla, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(cpu_gpr(H.c, 0), 0xa0a0);
    harness_remap(&H, gfn, area + 4096);
    run_label(0, gla, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(area64(1, 0x18), 0x5a5a5a5a, "the write reached area frame 1");
    cr_assert_eq(area64(0, 0x18), 0xa0a0, "area frame 0 untouched");
    cr_assert_eq(guest_read64(&H.g, DATA_GPA(gla)), 0x1234, "the gfn's own frame untouched");
}

/* Proves: code fetched from a remapped gfn comes from its frame. */
Test(remap, fetch_from_area, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    new_area(1);
    /* gfn 0xf00 mapped executable at 0x20000000; mov eax, 0x77; hlt only in the area, the
     * gfn's own frame holds zeros. */
    uint64_t gla = 0x20000000;
    cr_assert_eq(guest_map(&H.g, gla, 0xf00000, 4096, 4096, 0), 0, "setup: map");
    static const uint8_t code[] = {0xb8, 0x77, 0, 0, 0, 0xf4};
    memcpy(area + 0x100, code, sizeof(code));
    harness_remap(&H, 0xf00, area);
    struct cpu_exit ex;
    run_label(3, gla + 0x100, &ex); /* fetch_far: jmp rbx */
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(cpu_gpr(H.c, 0), 0x77);
}

/* Proves: the page walker reads a remapped page-table page through its frame, and sets the
 * accessed/dirty bits there: a copy of the last-level table that points the data page at
 * another gfn redirects the guest's access. */
Test(remap, page_table_in_remapped_frame, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    new_area(1);
    uint64_t gla = GUEST_DATA_GLA + 4 * 4096 + 0x8;
    uint64_t pte_gpa = guest_pte_gpa(&H.g, gla, 0);
    cr_assert_neq(pte_gpa, 0, "setup: no PTE");
    uint64_t pt_gfn = pte_gpa >> 12, off = pte_gpa & 0xfff;
    memcpy(area, ram_frame(pt_gfn), 4096);
    uint64_t other = DATA_GPA(GUEST_DATA_GLA + 9 * 4096);
    guest_write64(&H.g, other + 0x8, 0x9999);
    guest_write64(&H.g, DATA_GPA(gla), 0x1111);
    uint64_t pte;
    memcpy(&pte, area + off, 8);
    pte = (pte & ~0x000ffffffffff000ull & ~0x60ull) | other;
    memcpy(area + off, &pte, 8);
    harness_remap(&H, pt_gfn, area);
    struct cpu_exit ex;
    run_label(1, gla, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(cpu_gpr(H.c, 0), 0x9999, "the walk used the remapped table");
    cr_assert_eq(area64(0, off) & 0x20, 0x20, "A set in the remapped table");
    cr_assert_eq(guest_read64(&H.g, pte_gpa) & 0x000ffffffffff000ull, DATA_GPA(gla) & ~0xfffull,
                 "the original table untouched");
}

/* Proves: a remapped gfn with no frame faults like memory beyond RAM: a fault exit, no access. */
Test(remap, no_frame_faults, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    uint64_t gla = GUEST_DATA_GLA + 5 * 4096;
    harness_remap(&H, DATA_GPA(gla) >> 12, NULL);
    uint64_t rip = harness_label(&H, 0);
    struct cpu_exit ex;
    run_label(0, gla, &ex);
    REASON(&ex, CPU_EXIT_FAULT);
    cr_assert_eq(cpu_rip(H.c), rip, "the write did not complete");
    cr_assert_eq(guest_read64(&H.g, DATA_GPA(gla)), 0, "nothing written to the gfn's own frame");
}

/* Proves: cpu_map_area refuses bad areas and more than CPU_MAX_AREAS, and accepts a repeat. */
Test(remap, map_area_limits, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    static uint8_t pool[(CPU_MAX_AREAS + 1) * 4096] __attribute__((aligned(4096)));
    cr_assert_eq(cpu_map_area(H.c, pool + 1, 4096), -EINVAL, "unaligned");
    cr_assert_eq(cpu_map_area(H.c, pool, 100), -EINVAL, "not whole pages");
    cr_assert_eq(cpu_map_area(H.c, NULL, 4096), -EINVAL);
    for (unsigned i = 0; i < CPU_MAX_AREAS; i++)
        cr_assert_eq(cpu_map_area(H.c, pool + i * 4096, 4096), 0, "area %u", i);
    cr_assert_eq(cpu_map_area(H.c, pool, 4096), 0, "the same area again");
    cr_assert_eq(cpu_map_area(H.c, pool + CPU_MAX_AREAS * 4096, 4096), -ENOSPC);
}

/* Proves: cpu_set_view takes effect at once: a page the vCPU already read (in its TLB) that the
 * new view restricts faults; a page it never touched that another view restricts faults too
 * (no flush was needed for it); back on the first view both read again. */
Test(remap, set_view_switches_rights, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    uint64_t p_gla = GUEST_DATA_GLA + 0x1000, q_gla = GUEST_DATA_GLA + 0x2000;
    uint64_t p = DATA_GPA(p_gla) >> 12, q = DATA_GPA(q_gla) >> 12;
    static uint64_t view_p[(GUEST_RAM_SIZE / 4096) / 64], view_q[(GUEST_RAM_SIZE / 4096) / 64];
    memset(view_p, 0, sizeof(view_p));
    memset(view_q, 0, sizeof(view_q));
    view_p[p / 64] |= 1ull << (p % 64);
    view_q[q / 64] |= 1ull << (q % 64);
    H.rights[p] = CPU_W; /* consulted only where a view's bit is set */
    H.rights[q] = CPU_W;
    struct cpu_exit ex;
    run_label(1, p_gla, &ex);
    REASON(&ex, CPU_EXIT_HLT); /* p is in the TLB now */
    cr_assert_eq(cpu_set_view(H.c, view_p, H.remapped), 0);
    run_label(1, p_gla, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    cr_expect_eq(ex.access.gpa >> 12, p, "the view restricting a page in the TLB applies");
    cr_assert_eq(cpu_set_view(H.c, view_q, H.remapped), 0);
    run_label(1, p_gla, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    run_label(1, q_gla, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    cr_expect_eq(ex.access.gpa >> 12, q);
    cr_assert_eq(cpu_set_view(H.c, H.restricted, H.remapped), 0);
    run_label(1, q_gla, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_expect_eq(cpu_set_view(H.c, view_p, NULL), 0, "no remaps in a view is allowed");
}
