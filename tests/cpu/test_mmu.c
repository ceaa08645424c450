/* tests/cpu/test_mmu.c — guest paging, checked access, run limits, exception delivery. */
#include "common.h"

static struct harness H;

static void fini(void)
{
    harness_teardown(&H);
}

/* Proves: a program on guest page tables writes through them (VA 0x10000000 -> GPA 0x400000),
 * the walker sets A and D bits, the run ends at HLT with the exact instruction count. */
Test(mmu, basic_paging_and_ad_bits, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "basic64", 0);
    uint64_t pte = guest_pte_gpa(&H.g, GUEST_DATA_GLA, 0);
    cr_assert_neq(pte, 0, "setup: no PTE");
    cr_assert_eq(guest_read64(&H.g, pte) & 0x60, 0, "setup: A/D already set");
    struct cpu_exit ex;
    RUN(&H, 1000, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(ex.insns, 7, "insns %llu", (unsigned long long)ex.insns);
    cr_assert_eq(guest_read64(&H.g, GUEST_DATA_GPA), 0x1111);
    cr_assert_eq(guest_read64(&H.g, GUEST_DATA_GPA + 0x1000), 0x2222);
    cr_assert_eq(cpu_gpr(H.c, 0), 0x3333);
    cr_assert_eq(guest_read64(&H.g, pte) & 0x60, 0x60, "A and D set");
    /* The next page was only read-modify... written too; a third page untouched: no A bit. */
    cr_assert_eq(guest_read64(&H.g, guest_pte_gpa(&H.g, GUEST_DATA_GLA + 0x2000, 0)) & 0x20, 0);
}

static void at(uint64_t rip, uint64_t rbx)
{
    cpu_set_rip(H.c, rip);
    cpu_set_gpr(H.c, 3, rbx);
}

/* Proves: a write to a write-restricted frame stops before any effect (memory and RIP unchanged)
 * with kind W, exact GLA/GPA/size, not in-GPT; lifting the restriction lets it complete. */
Test(mmu, write_fault_no_effect, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    uint64_t gla = GUEST_DATA_GLA + 5 * 4096 + 0x120;
    guest_write64(&H.g, DATA_GPA(gla), 0x77);
    harness_restrict(&H, DATA_GPA(gla) >> 12, CPU_R | CPU_X);
    uint64_t rip = harness_label(&H, 0);
    at(rip, gla);
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    cr_assert_eq(ex.access.kind, CPU_W);
    cr_assert(!ex.access.in_gpt);
    cr_assert(ex.access.exact);
    cr_assert_eq(ex.access.gla, gla);
    cr_assert_eq(ex.access.gpa, DATA_GPA(gla));
    cr_assert_eq(ex.access.size, 8);
    cr_assert_eq(cpu_rip(H.c), rip, "RIP unchanged");
    cr_assert_eq(guest_read64(&H.g, DATA_GPA(gla)), 0x77, "memory unchanged");
    cr_assert_eq(ex.insns, 0);
    harness_restrict(&H, DATA_GPA(gla) >> 12, CPU_RWX);
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(guest_read64(&H.g, DATA_GPA(gla)), 0x5a5a5a5a);
}

/* Proves: restricting a page after it was used (handed out to the TLB) takes effect: reads of a
 * read-restricted page are reported as kind R. */
Test(mmu, restrict_after_use, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    uint64_t gla = GUEST_DATA_GLA + 0x3008;
    struct cpu_exit ex;
    at(harness_label(&H, 1), gla);
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    harness_restrict(&H, DATA_GPA(gla) >> 12, CPU_X);
    at(harness_label(&H, 1), gla);
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    cr_assert_eq(ex.access.kind, CPU_R);
    cr_assert_eq(ex.access.gla, gla);
    cr_assert_eq(ex.access.size, 8);
}

/* Proves: when the page holding the PTE is read-restricted, the walker's own read is reported
 * as FAULT_IN_GPT with the PTE's GPA, and the data frame is not what is reported. */
Test(mmu, fault_in_gpt, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    uint64_t gla = GUEST_DATA_GLA + 7 * 4096;
    uint64_t pte = guest_pte_gpa(&H.g, gla, 0);
    cr_assert_neq(pte, 0, "setup: no PTE");
    harness_restrict(&H, pte >> 12, 0);
    at(harness_label(&H, 1), gla);
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    cr_assert(ex.access.in_gpt);
    cr_assert_eq(ex.access.kind, CPU_R);
    cr_assert_eq(ex.access.gpa, pte);
    cr_assert_eq(ex.access.gla, gla);
}

/* Proves: setting the A bit is a write to the page-table page: with the table page readable but
 * not writable and the A bit clear, the walk is refused as an in-GPT write. */
Test(mmu, ad_write_in_gpt, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    uint64_t gla = GUEST_DATA_GLA + 9 * 4096;
    uint64_t pte = guest_pte_gpa(&H.g, gla, 0);
    harness_restrict(&H, pte >> 12, CPU_R);
    at(harness_label(&H, 1), gla);
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    cr_assert(ex.access.in_gpt);
    cr_assert_eq(ex.access.kind, CPU_W);
    cr_assert_eq(ex.access.gpa, pte);
}

/* Proves: an 8-byte write straddling two pages, the second restricted, is refused with nothing
 * written to either page; the report names the part in the second page (4 bytes at its start). */
Test(mmu, straddle, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    uint64_t gla = GUEST_DATA_GLA + 0x2000 - 4;
    harness_restrict(&H, DATA_GPA(GUEST_DATA_GLA + 0x2000) >> 12, CPU_R);
    at(harness_label(&H, 2), gla);
    cpu_set_gpr(H.c, 1, 0x1122334455667788ull);
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    cr_assert_eq(ex.access.kind, CPU_W);
    cr_assert_eq(ex.access.gla, GUEST_DATA_GLA + 0x2000);
    cr_assert_eq(ex.access.gpa, DATA_GPA(GUEST_DATA_GLA + 0x2000));
    cr_assert_eq(ex.access.size, 4);
    cr_assert_eq(ex.access.access_gla, gla);
    cr_assert_eq(ex.access.access_size, 8);
    cr_assert_eq(guest_read64(&H.g, DATA_GPA(gla)), 0, "first page untouched");
    cr_assert_eq(guest_read64(&H.g, DATA_GPA(gla) + 4), 0, "second page untouched");
}

/* Proves: an instruction fetch from an execute-restricted frame is reported as kind X at the
 * jump target (the jump itself completed, as on hardware). */
Test(mmu, fetch_restricted, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    /* A hlt in its own frame (0xf00000), mapped executable at 0x20000000. */
    cr_assert_eq(guest_map(&H.g, 0x20000000, 0xf00000, 4096, 4096, 0), 0, "setup: map");
    H.g.ram[0xf00900] = 0xf4;
    harness_restrict(&H, 0xf00, CPU_R | CPU_W);
    at(harness_label(&H, 3), 0x20000900);
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    cr_assert_eq(ex.access.kind, CPU_X);
    cr_assert_eq(ex.access.gla, 0x20000900, "gla %llx rip %llx exact %d", (unsigned long long)ex.access.gla, (unsigned long long)cpu_rip(H.c), ex.access.exact);
    cr_assert_eq(ex.access.gpa, 0xf00900);
    cr_assert_eq(ex.access.size, 1);
    cr_assert_eq(cpu_rip(H.c), 0x20000900);
}

/* Proves: 2 MiB and 1 GiB guest pages translate (reads through both land on the right frames). */
Test(mmu, large_pages, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    cr_assert_eq(guest_map(&H.g, 0x40000000ull, 0xe00000, 2ull << 20, 2ull << 20, GUEST_NX), 0);
    cr_assert_eq(guest_map(&H.g, 0x8000000000ull, 0, 1ull << 30, 1ull << 30, GUEST_NX), 0);
    guest_write64(&H.g, 0xe00000 + 0x12340, 0xabc);
    guest_write64(&H.g, 0x654320, 0xdef);
    struct cpu_exit ex;
    at(harness_label(&H, 1), 0x40012340);
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(cpu_gpr(H.c, 0), 0xabc);
    at(harness_label(&H, 1), 0x8000654320ull);
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(cpu_gpr(H.c, 0), 0xdef);
    struct cpu_walk w;
    cr_assert_eq(cpu_translate(H.c, 0x8000654320ull, CPU_R, &w), 0);
    cr_assert_eq(w.page_size, 1ull << 30);
    cr_assert_eq(w.levels, 2);
    cr_assert_eq(w.gpa, 0x654320);
}

/* Proves: a guest #PF (write to an unmapped address) is delivered through the guest IDT with
 * the right vector, error code (W, not present) and CR2, and RIP of the faulting instruction. */
Test(mmu, page_fault_delivered, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    uint64_t rip = harness_label(&H, 0);
    at(rip, 0x30000008);
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_VECTOR), 14);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_ERROR), 2);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_CR2), 0x30000008);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_RIP), rip);
    /* CR3 survived the CR2 write (Unicorn's CR2-clobbers-CR3 bug). */
    struct cpu_regs r;
    cpu_get_regs(H.c, &r);
    cr_assert_eq(r.cr3, H.g.cr3);
    cr_assert_eq(r.cr2, 0x30000008);
}

/* Proves: three guest faults in a row are each delivered as themselves (no #DF from Unicorn's
 * swallowed-exception bug). */
Test(mmu, repeated_faults_no_double_fault, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    for (int i = 0; i < 3; i++) {
        guest_write64(&H.g, GUEST_RT_VECTOR, 99);
        at(harness_label(&H, 1), 0x30000000 + 0x1000 * (uint64_t)i);
        cpu_set_gpr(H.c, 4, GUEST_STACK_TOP);
        struct cpu_exit ex;
        RUN(&H, 100, &ex);
        REASON(&ex, CPU_EXIT_HLT);
        cr_assert_eq(guest_read64(&H.g, GUEST_RT_VECTOR), 14, "fault %d delivered as %llu", i,
                     (unsigned long long)guest_read64(&H.g, GUEST_RT_VECTOR));
        cr_assert_eq(guest_read64(&H.g, GUEST_RT_ERROR), 0);
    }
}

/* Proves: a fetch from an NX page raises #PF with the I/D bit (error 0x11). */
Test(mmu, nx_fetch, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    at(harness_label(&H, 3), GUEST_DATA_GLA);
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_VECTOR), 14);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_ERROR), 0x11);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_CR2), GUEST_DATA_GLA);
}

/* Proves: a guest fault with no usable IDT stops the vCPU with a clear error naming the vector,
 * the RIP and the error code; the simulator does not crash. */
Test(mmu, fault_without_idt, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    struct cpu_regs r;
    cpu_get_regs(H.c, &r);
    r.idtr_limit = 0;
    cpu_set_regs(H.c, &r);
    uint64_t rip = harness_label(&H, 0);
    at(rip, 0x30000000);
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_FAULT);
    cr_assert_eq(ex.fault.vector, 14);
    cr_assert_eq(ex.fault.rip, rip);
    cr_assert_eq(ex.fault.error_code, 2);
    cr_assert(strstr(ex.fault.why, "#PF") && strstr(ex.fault.why, "no usable IDT"), "%s",
              ex.fault.why);
}

/* Proves: garbage code (UD2, then a jump to unmapped memory with no IDT) never crashes. */
Test(mmu, ud_delivered, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    /* ud2 at a data page mapped executable. */
    cr_assert_eq(guest_map(&H.g, 0x20000000, 0xf00000, 4096, 4096, GUEST_W), 0, "setup");
    H.g.ram[0xf00000] = 0x0f;
    H.g.ram[0xf00001] = 0x0b;
    at(0x20000000, 0);
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_VECTOR), 6);
    cr_assert_eq(guest_read64(&H.g, GUEST_RT_RIP), 0x20000000);
}

/* Proves: cpu_run executes at most N instructions and says how many: a 3-instruction loop run
 * for 10 instructions stops with rax = 4 (4 incs in 10 instructions: inc,dec,jnz x3 + inc). */
Test(mmu, run_limit_exact, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    at(harness_label(&H, 5), 0);
    cpu_set_gpr(H.c, 0, 0);
    cpu_set_gpr(H.c, 1, 1000);
    struct cpu_exit ex;
    RUN(&H, 10, &ex);
    REASON(&ex, CPU_EXIT_LIMIT);
    cr_assert_eq(ex.insns, 10);
    cr_assert_eq(cpu_gpr(H.c, 0), 4);
    cr_assert_eq(cpu_rip(H.c), harness_label(&H, 5) + 3, "at dec");
    RUN(&H, 2, &ex);
    cr_assert_eq(ex.insns, 2);
    cr_assert_eq(cpu_rip(H.c), harness_label(&H, 5), "at inc");
}

static int handler_calls;
static enum cpu_verdict relax(void *opaque, struct cpu *c, const struct cpu_exit *ev)
{
    (void)c;
    struct harness *h = opaque;
    handler_calls++;
    if (ev->reason == CPU_EXIT_ACCESS && !ev->access.in_gpt) {
        h->rights[ev->access.gpa >> 12] = CPU_RWX;
        return CPU_RESUME;
    }
    return CPU_STOP;
}

/* Proves: an in-engine handler resolves an access event without leaving uc_emu_start: the
 * write completes in one cpu_run, the handler ran once. */
Test(mmu, handler_resolves_inside, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    uint64_t gla = GUEST_DATA_GLA + 11 * 4096;
    harness_restrict(&H, DATA_GPA(gla) >> 12, CPU_R);
    handler_calls = 0;
    cpu_set_handler(H.c, relax, &H);
    at(harness_label(&H, 0), gla);
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_HLT);
    cr_assert_eq(handler_calls, 1);
    cr_assert_eq(guest_read64(&H.g, DATA_GPA(gla)), 0x5a5a5a5a);
}

/* Proves: rep movsb into a restricted page stops after the completed iterations, exactly at the
 * first byte of the restricted page. */
Test(mmu, rep_movs_partial, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    uint64_t src = GUEST_DATA_GLA, dst = GUEST_DATA_GLA + 0x5000 - 16;
    memset(H.g.ram + DATA_GPA(src), 0xab, 64);
    harness_restrict(&H, DATA_GPA(GUEST_DATA_GLA + 0x5000) >> 12, CPU_R);
    cpu_set_rip(H.c, harness_label(&H, 4));
    cpu_set_gpr(H.c, 6, src);
    cpu_set_gpr(H.c, 7, dst);
    cpu_set_gpr(H.c, 1, 64);
    struct cpu_exit ex;
    RUN(&H, 1000, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    cr_assert_eq(ex.access.gla, GUEST_DATA_GLA + 0x5000);
    cr_assert_eq(ex.access.size, 1);
    cr_assert_eq(cpu_gpr(H.c, 1), 48, "16 iterations done");
    cr_assert_eq(H.g.ram[DATA_GPA(dst) + 15], 0xab);
    cr_assert_eq(H.g.ram[DATA_GPA(dst) + 16], 0);
}

/* Proves: an in-GPT event carries the exact linear address being translated (Xen's
 * GUEST_LINEAR_ADDRESS), not the page: the walk's read of the PTE for a read at page + 0x10
 * reports gla page + 0x10, with the PTE's gpa and size 8; the A-bit write of the walk for a
 * write at page + 0x18 reports page + 0x18. */
Test(mmu, in_gpt_exact_gla, .fini = fini)
{
    SETUP(&H, CPU_MODE_LONG, "access64", 0);
    uint64_t gla = GUEST_DATA_GLA + 13 * 4096 + 0x10;
    uint64_t pte = guest_pte_gpa(&H.g, gla, 0);
    cr_assert_neq(pte, 0, "setup: no PTE");
    harness_restrict(&H, pte >> 12, 0);
    at(harness_label(&H, 1), gla);
    struct cpu_exit ex;
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    cr_assert(ex.access.in_gpt);
    cr_assert_eq(ex.access.kind, CPU_R);
    cr_assert(ex.access.exact);
    cr_assert_eq(ex.access.gla, gla, "gla %llx", (unsigned long long)ex.access.gla);
    cr_assert_eq(ex.access.gpa, pte);
    cr_assert_eq(ex.access.size, 8);
    cr_assert_eq(ex.access.access_gla, gla);
    cr_assert_eq(ex.access.access_size, 8);

    uint64_t wgla = GUEST_DATA_GLA + 14 * 4096 + 0x18;
    harness_restrict(&H, pte >> 12, CPU_R);
    at(harness_label(&H, 0), wgla);
    RUN(&H, 100, &ex);
    REASON(&ex, CPU_EXIT_ACCESS);
    cr_assert(ex.access.in_gpt);
    cr_assert_eq(ex.access.kind, CPU_W);
    cr_assert_eq(ex.access.gla, wgla, "gla %llx", (unsigned long long)ex.access.gla);
    cr_assert_eq(ex.access.gpa, guest_pte_gpa(&H.g, wgla, 0));
    cr_assert_eq(ex.access.size, 8);
}
