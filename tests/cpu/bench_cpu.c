/*
 * tests/cpu/bench_cpu.c — cpu/ against bare Unicorn, in one run:
 *  - guest MIPS of a memory loop over 1,024 pages and of a register loop, on bare Unicorn
 *    (TLB_CPU mode, QEMU's own MMU, no vmisim hooks) and on cpu/ (virtual TLB + walker,
 *    block hook, 64 restricted frames elsewhere, no violation), same code, same page tables,
 *    same instruction-count bound on every uc_emu_start;
 *  - one checked-access stop + resume (leaving the engine, and resolved by an in-engine handler);
 *  - one intercepted instruction (leaving the engine, and skipped by an in-engine handler);
 *  - single-step cost per instruction;
 *  - a flush of translated code (cpu_set_intercept after a run);
 *  - the register block (cpu_get_regs) and one translation (cpu_translate).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <unicorn/unicorn.h>

#include "harness.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define PAGES 1024
#define N 20000000ull

static double bare_mips(struct harness *h, uint64_t rip)
{
    uc_engine *uc;
    if (uc_open(UC_ARCH_X86, UC_MODE_64, &uc) != UC_ERR_OK)
        return -1;
    uc_mem_map_ptr(uc, 0, h->g.size, UC_PROT_ALL, h->g.ram);
    uc_x86_msr efer = {.rid = 0xc0000080, .value = 0xd00};
    uint64_t cr4 = 0x40220, cr3 = h->g.cr3, cr0 = 0x80010011, rsp = GUEST_STACK_TOP;
    uint64_t rbx = GUEST_DATA_GLA, rcx = PAGES, rax = 1;
    uc_reg_write(uc, UC_X86_REG_MSR, &efer);
    uc_reg_write(uc, UC_X86_REG_CR4, &cr4);
    uc_reg_write(uc, UC_X86_REG_CR3, &cr3);
    uc_reg_write(uc, UC_X86_REG_CR0, &cr0);
    uc_reg_write(uc, UC_X86_REG_RSP, &rsp);
    double best = 0;
    for (int round = 0; round < 5; round++) {
        uc_reg_write(uc, UC_X86_REG_RBX, &rbx);
        uc_reg_write(uc, UC_X86_REG_RCX, &rcx);
        uc_reg_write(uc, UC_X86_REG_RAX, &rax);
        double t = now();
        uc_err e = uc_emu_start(uc, rip, 0, 0, N);
        t = now() - t;
        if (e != UC_ERR_OK) {
            fprintf(stderr, "bare: %s\n", uc_strerror(e));
            break;
        }
        uc_ctl_flush_tlb(uc); /* QEMU grows its TLB at flush time */
        if (N / t / 1e6 > best)
            best = N / t / 1e6;
    }
    uc_close(uc);
    return best;
}

static double cpu_mips(struct harness *h, uint64_t rip)
{
    double best = 0;
    for (int round = 0; round < 5; round++) {
        cpu_set_rip(h->c, rip);
        cpu_set_gpr(h->c, 3, GUEST_DATA_GLA);
        cpu_set_gpr(h->c, 1, PAGES);
        cpu_set_gpr(h->c, 0, 1);
        struct cpu_exit ex;
        double t = now();
        int rc = cpu_run(h->c, N, &ex);
        t = now() - t;
        if (rc < 0 || ex.reason != CPU_EXIT_LIMIT) {
            fprintf(stderr, "cpu: rc %d reason %d %s\n", rc, ex.reason, cpu_error(h->c));
            return -1;
        }
        /* A flush (restricting a handed-out frame), as the bare run does: QEMU grows its TLB then. */
        harness_restrict(h, GUEST_DATA_GPA >> 12, CPU_RWX);
        if (N / t / 1e6 > best)
            best = N / t / 1e6;
    }
    return best;
}

static enum cpu_verdict relax(void *opaque, struct cpu *c, const struct cpu_exit *ev)
{
    struct harness *h = opaque;
    if (ev->reason == CPU_EXIT_ACCESS) {
        h->rights[ev->access.gpa >> 12] = CPU_RWX;
        return CPU_RESUME;
    }
    if (ev->reason == CPU_EXIT_INSN && ev->insn.kind == CPU_INSN_CPUID) {
        cpu_insn_skip(c);
        return CPU_RESUME;
    }
    return CPU_STOP;
}

int main(void)
{
    struct harness h;
    char err[256];
    if (harness_setup(&h, CPU_MODE_LONG, "bench64", 0, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (uint64_t gfn = 0xf00; gfn < 0xf40; gfn++) /* restricted frames nobody touches */
        harness_restrict(&h, gfn, CPU_R);
    uint64_t mem = harness_label(&h, 0), reg = harness_label(&h, 1);
    uint64_t cpuid = harness_label(&h, 2), store = harness_label(&h, 3);
    double bm = bare_mips(&h, mem), br = bare_mips(&h, reg);
    double cm = cpu_mips(&h, mem), cr = cpu_mips(&h, reg);
    printf("guest MIPS (best of 5 x %llu instructions, count-bounded uc_emu_start)\n",
           (unsigned long long)N);
    printf("  memory loop, %d pages: bare Unicorn %8.1f   cpu/ %8.1f   ratio %.2f\n", PAGES, bm,
           cm, cm / bm);
    printf("  register loop:         bare Unicorn %8.1f   cpu/ %8.1f   ratio %.2f\n", br, cr,
           cr / br);

    struct cpu_exit ex;
    const int K = 2000;
    uint64_t gla = GUEST_DATA_GLA + 0x7000;
    double t = now();
    for (int i = 0; i < K; i++) {
        harness_restrict(&h, DATA_GPA(gla) >> 12, CPU_R);
        cpu_set_rip(h.c, store);
        cpu_set_gpr(h.c, 3, gla);
        cpu_run(h.c, 100, &ex);
        if (ex.reason != CPU_EXIT_ACCESS)
            return fprintf(stderr, "no access event\n"), 1;
        harness_restrict(&h, DATA_GPA(gla) >> 12, CPU_RWX);
        cpu_run(h.c, 100, &ex);
    }
    double stop_resume = (now() - t) / K;
    cpu_set_handler(h.c, relax, &h);
    t = now();
    for (int i = 0; i < K; i++) {
        harness_restrict(&h, DATA_GPA(gla) >> 12, CPU_R);
        cpu_set_rip(h.c, store);
        cpu_set_gpr(h.c, 3, gla);
        cpu_run(h.c, 100, &ex);
    }
    double in_engine = (now() - t) / K;
    cpu_set_handler(h.c, NULL, NULL);
    t = now();
    for (int i = 0; i < K; i++) {
        cpu_set_rip(h.c, store);
        cpu_run(h.c, 100, &ex);
    }
    double base = (now() - t) / K;
    printf("checked access (write to a restricted page, then lifted and resumed):\n");
    printf("  leaving the engine: %.2f us per event (a 2-instruction run without event: %.2f us)\n",
           stop_resume * 1e6, base * 1e6);
    printf("  resolved by an in-engine handler: %.2f us per run with one event\n", in_engine * 1e6);

    cpu_set_intercept(h.c, 1u << CPU_INSN_CPUID);
    cpu_set_rip(h.c, cpuid);
    t = now();
    for (int i = 0; i < K; i++) {
        cpu_run(h.c, 100, &ex);
        if (ex.reason != CPU_EXIT_INSN)
            return fprintf(stderr, "no cpuid event (%d)\n", ex.reason), 1;
        cpu_insn_skip(h.c);
    }
    double icpt = (now() - t) / K;
    cpu_set_handler(h.c, relax, &h);
    cpu_set_rip(h.c, cpuid);
    cpu_run(h.c, 1000, &ex);
    t = now();
    cpu_run(h.c, 2000000, &ex);
    double icpt_in = (now() - t) / 1000000; /* half of the instructions are cpuid */
    cpu_set_handler(h.c, NULL, NULL);
    printf("intercepted CPUID: %.2f us per event leaving the engine, %.3f us skipped by an "
           "in-engine handler\n", icpt * 1e6, icpt_in * 1e6);

    /* The register block, as the simulator reads it for every vm_event request, and one
     * translation (the control registers every TLB fill reads, plus the walk). */
    struct cpu_regs r;
    struct cpu_walk w;
    const int R = 100000;
    double getregs = 1, translate = 1;
    for (int round = 0; round < 5; round++) { /* best of 5: the machine is noisy */
        t = now();
        for (int i = 0; i < R; i++)
            cpu_get_regs(h.c, &r);
        if ((now() - t) / R < getregs)
            getregs = (now() - t) / R;
        t = now();
        for (int i = 0; i < R; i++)
            cpu_translate(h.c, gla, CPU_W, &w);
        if ((now() - t) / R < translate)
            translate = (now() - t) / R;
    }
    printf("registers: cpu_get_regs %.0f ns per call; cpu_translate (control registers + walk) "
           "%.0f ns (best of 5)\n", getregs * 1e9, translate * 1e9);

    cpu_set_intercept(h.c, 0);
    cpu_set_rip(h.c, reg);
    cpu_set_singlestep(h.c, true);
    t = now();
    for (int i = 0; i < 20000; i++)
        cpu_run(h.c, 1, &ex);
    printf("single-step: %.2f us per instruction\n", (now() - t) / 20000 * 1e6);

    /* A flush of translated code (an intercept change), after code ran: it writes the whole
     * translation buffer (CPU_CODE_BUFFER_DEFAULT), whatever was translated. */
    cpu_set_singlestep(h.c, false);
    double flush = 1;
    for (int round = 0; round < 5; round++) {
        cpu_set_rip(h.c, reg);
        cpu_run(h.c, 1000, &ex);
        t = now();
        cpu_set_intercept(h.c, round & 1 ? 0 : 1u << CPU_INSN_CPUID);
        if (now() - t < flush)
            flush = now() - t;
    }
    printf("code flush (cpu_set_intercept after a run, %u MiB buffer): %.2f ms (best of 5)\n",
           CPU_CODE_BUFFER_DEFAULT >> 20, flush * 1e3);
    harness_teardown(&h);
    return 0;
}
