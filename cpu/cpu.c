/*
 * cpu/cpu.c — the engine: creation, run control, registers, exception
 * delivery through the guest IDT, one-instruction emulation.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

#define MSR_EFER 0xc0000080u
#define MSR_STAR 0xc0000081u
#define MSR_LSTAR 0xc0000082u
#define MSR_CSTAR 0xc0000083u
#define MSR_SFMASK 0xc0000084u
#define MSR_KERNEL_GS 0xc0000102u
#define MSR_SYSENTER_CS 0x174u
#define MSR_SYSENTER_ESP 0x175u
#define MSR_SYSENTER_EIP 0x176u
#define MSR_PAT 0x277u
#define MSR_TSC 0x10u

void cpu_set_error(struct cpu *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
}

const char *cpu_error(const struct cpu *c)
{
    return c->error;
}

static uint64_t rd(struct cpu *c, int reg)
{
    uint64_t v = 0;
    uc_reg_read(c->uc, cpu_reg_id(c->mode, reg), &v);
    return v;
}

static void wr(struct cpu *c, int reg, uint64_t v)
{
    uc_reg_write(c->uc, cpu_reg_id(c->mode, reg), &v);
}

static bool msr_known(uint32_t i)
{
    switch (i) {
    case MSR_EFER: case MSR_STAR: case MSR_LSTAR: case MSR_CSTAR: case MSR_SFMASK:
    case MSR_KERNEL_GS: case MSR_SYSENTER_CS: case MSR_SYSENTER_ESP: case MSR_SYSENTER_EIP:
    case MSR_PAT: case MSR_TSC: case 0xc0000100u: case 0xc0000101u:
        return true;
    default:
        return false;
    }
}

int cpu_get_msr(struct cpu *c, uint32_t index, uint64_t *v)
{
    if (!msr_known(index))
        return -EINVAL;
    uc_x86_msr m = {.rid = index};
    if (uc_reg_read(c->uc, UC_X86_REG_MSR, &m) != UC_ERR_OK)
        return -EIO;
    *v = m.value;
    return 0;
}

int cpu_set_msr(struct cpu *c, uint32_t index, uint64_t v)
{
    if (!msr_known(index))
        return -EINVAL;
    uc_x86_msr m = {.rid = index, .value = v};
    if (uc_reg_write(c->uc, UC_X86_REG_MSR, &m) != UC_ERR_OK)
        return -EIO;
    return 0;
}

int cpu_read_ctl(struct cpu *c, uint64_t *cr0, uint64_t *cr3, uint64_t *cr4, uint64_t *efer,
                 unsigned *cpl)
{
    /* Every TLB fill comes here: one batch (the registers' own cost is a few ns each). */
    uint64_t v[3] = {0, 0, 0};
    uint16_t cs = 0;
    uc_x86_msr m = {.rid = MSR_EFER};
    int ids[5] = {UC_X86_REG_CR0, UC_X86_REG_CR3, UC_X86_REG_CR4, UC_X86_REG_CS, UC_X86_REG_MSR};
    void *vals[5] = {&v[0], &v[1], &v[2], &cs, &m};
    if (uc_reg_read_batch(c->uc, ids, vals, 5) != UC_ERR_OK)
        return -EIO;
    *cr0 = v[0];
    *cr3 = v[1];
    *cr4 = v[2];
    *efer = m.value;
    *cpl = cs & 3u;
    return 0;
}

/* ---- Creation -------------------------------------------------------------- */

int cpu_create(struct cpu **out, const struct cpu_config *cfg)
{
    const struct cpu_memory *m = &cfg->mem;
    if (!m->ram || m->size == 0 || m->size % CPU_PAGE_SIZE
        || (cfg->mode != CPU_MODE_LONG && cfg->mode != CPU_MODE_PAE32)
        || (m->restricted && !m->rights) || (m->remapped && !m->frame)
        || (cfg->intercept & ~CPU_INSN_ALL) || (cfg->code_buffer && cfg->code_buffer < CPU_CODE_BUFFER_MIN))
        return -EINVAL;
    struct cpu *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->mode = cfg->mode;
    c->mem = *m;
    c->intercept = cfg->intercept;
    c->nframes = m->size / CPU_PAGE_SIZE;
    c->vector = -1;
    c->blk_gen = 1;
    int rc = -ENOMEM;
    c->handed = calloc((c->nframes + 63) / 64, 8);
    c->scratch = aligned_alloc(CPU_PAGE_SIZE, CPU_SCRATCH_FRAMES * CPU_PAGE_SIZE);
    if (!c->handed || !c->scratch)
        goto fail;
    rc = -EIO;
    uc_err e = uc_open(UC_ARCH_X86, c->mode == CPU_MODE_LONG ? UC_MODE_64 : UC_MODE_32, &c->uc);
    if (e != UC_ERR_OK) {
        c->uc = NULL;
        goto fail;
    }
    /*
     * The translation buffer, set before anything initialises the engine (Unicorn reads it at
     * its first uc_ctl/uc_mem_map: the tlb_mode below).  Unicorn 2.1's default is 1 GiB, and
     * every flush of translated code writes the whole buffer: the first flush in a process
     * took 11-28 s on the project's VM (262,144 page faults) and left 1 GiB resident per vCPU,
     * later ones ~25 ms (bench_cpu).  vmisim's guests translate a small fraction of 16 MiB
     * (test guests and scenarios run thousands of distinct instructions, not millions); a
     * guest that translates more only pays a flush (~0.2 ms) and retranslation whenever the
     * buffer is full.  Measured before and after in docs/performance.md (bench_cpu,
     * bench_sim: unchanged).
     */
    if (uc_ctl_set_tcg_buffer_size(c->uc, cfg->code_buffer ? cfg->code_buffer : CPU_CODE_BUFFER_DEFAULT)
        != UC_ERR_OK)
        goto fail;
    c->scratch_gpa = m->size;
    c->next_area_base = c->scratch_gpa + CPU_SCRATCH_FRAMES * CPU_PAGE_SIZE;
    /* No "until" address: Unicorn translates it (a TLB fill of a made-up address); with exits
     * enabled and none set, only the count and our hooks stop the engine. */
    if (uc_ctl_exits_enable(c->uc) != UC_ERR_OK
        || uc_ctl_tlb_mode(c->uc, UC_TLB_VIRTUAL) != UC_ERR_OK
        || uc_mem_map_ptr(c->uc, 0, m->size, UC_PROT_ALL, m->ram) != UC_ERR_OK
        || uc_mem_map_ptr(c->uc, c->scratch_gpa, CPU_SCRATCH_FRAMES * CPU_PAGE_SIZE, UC_PROT_ALL,
                          c->scratch) != UC_ERR_OK
        || uc_hook_add(c->uc, &c->h_tlb, UC_HOOK_TLB_FILL, CPU_CB(cpu_tlb_fill), c, (uint64_t)1, (uint64_t)0)
               != UC_ERR_OK
        || uc_hook_add(c->uc, &c->h_block, UC_HOOK_BLOCK, CPU_CB(cpu_block_hook), c, (uint64_t)1, (uint64_t)0)
               != UC_ERR_OK)
        goto fail;
    if (uc_hook_add(c->uc, &c->h_intr, UC_HOOK_INTR, CPU_CB(cpu_intr_hook), c, (uint64_t)1, (uint64_t)0) != UC_ERR_OK
        || uc_hook_add(c->uc, &c->h_invalid, UC_HOOK_INSN_INVALID, CPU_CB(cpu_invalid_hook), c, (uint64_t)1,
                       (uint64_t)0) != UC_ERR_OK)
        goto fail;
    if (cs_open(CS_ARCH_X86, c->mode == CPU_MODE_LONG ? CS_MODE_64 : CS_MODE_32, &c->cs)
        != CS_ERR_OK)
        goto fail;
    cs_option(c->cs, CS_OPT_DETAIL, CS_OPT_ON);
    c->xcr0 = 1;
    if ((rc = cpu_code_resize(c)) < 0)
        goto fail;
    /*
     * One flush before anything is translated.  Until its first flush, Unicorn 2.1.1's region
     * allocator has not taken the buffer's one region: when translated code first reaches the
     * end of the buffer, it starts again at the buffer's start, over blocks still in use (and
     * the prologue), and the engine crashes (tests/cpu/test_codebuf.c; with the 1 GiB default
     * after 1 GiB of translation, with a small buffer soon).  After a flush, a full buffer is
     * flushed as it should be.  This first flush writes the buffer once: ~10 ms and
     * code_buffer bytes resident.
     */
    uc_ctl_flush_tb(c->uc);
    *out = c;
    return 0;
fail:
    cpu_destroy(c);
    return rc;
}

int cpu_map_area(struct cpu *c, uint8_t *host, uint64_t size)
{
    if (!host || size == 0 || size % CPU_PAGE_SIZE || (uintptr_t)host % CPU_PAGE_SIZE)
        return -EINVAL;
    if (c->running)
        return -EBUSY;
    for (unsigned i = 0; i < c->nr_areas; i++)
        if (c->areas[i].host == host && c->areas[i].size == size)
            return 0;
    if (c->nr_areas == CPU_MAX_AREAS)
        return -ENOSPC;
    uint64_t base = c->next_area_base;
    if (uc_mem_map_ptr(c->uc, base, size, UC_PROT_ALL, host) != UC_ERR_OK)
        return -EIO;
    c->areas[c->nr_areas++] = (struct cpu_area){.host = host, .size = size, .base = base};
    c->next_area_base = base + size;
    return cpu_code_resize(c);
}

void cpu_destroy(struct cpu *c)
{
    if (!c)
        return;
    if (c->scan)
        cs_free(c->scan, 1);
    if (c->cs)
        cs_close(&c->cs);
    if (c->uc)
        uc_close(c->uc);
    free(c->blks);
    free(c->hooked_addr);
    free(c->hooked_id);
    free(c->handed);
    free(c->scratch);
    cpu_snapshot_free(c);
    free(c);
}

void cpu_set_handler(struct cpu *c, cpu_handler_fn fn, void *opaque)
{
    c->handler = fn;
    c->handler_opaque = opaque;
}

int cpu_flush_code(struct cpu *c)
{
    cpu_blk_reset(c);
    if (c->translated)
        uc_ctl_flush_tb(c->uc);
    c->translated = false;
    return 0;
}

int cpu_set_intercept(struct cpu *c, uint32_t mask)
{
    if (mask & ~CPU_INSN_ALL)
        return -EINVAL;
    c->intercept = mask;
    return cpu_flush_code(c);
}

void cpu_set_singlestep(struct cpu *c, bool on)
{
    c->singlestep = on;
}

void cpu_pause(struct cpu *c)
{
    c->pend = PEND_PAUSE;
    if (c->running)
        uc_emu_stop(c->uc);
}

/* ---- Hooks for exceptions Unicorn raises ------------------------------------ */

void cpu_intr_hook(uc_engine *uc, uint32_t intno, void *opaque)
{
    struct cpu *c = opaque;
    c->vector = (int)intno;
    if (intno == 1) {
        /*
         * Unicorn sets DR6.BS for the single-step trap of EFLAGS.TF (and only for it): that is
         * how it is told from INT 1 (CD 01, a software interrupt).  cpu/ does not model DR6, so
         * BS is cleared again for the next one.
         */
        uint64_t dr6 = 0;
        uc_reg_read(uc, UC_X86_REG_DR6, &dr6);
        c->db_trap = (dr6 & 0x4000) != 0;
        dr6 &= ~0x4000ull;
        uc_reg_write(uc, UC_X86_REG_DR6, &dr6);
    }
    uc_emu_stop(uc);
}

bool cpu_invalid_hook(uc_engine *uc, void *opaque)
{
    (void)uc;
    struct cpu *c = opaque;
    c->vector = 6;
    return false;
}

/* ---- Registers ------------------------------------------------------------- */

/*
 * The attributes of the segment `sel`, from the guest's GDT or LDT entry (`tbl` holds the
 * table's base and limit).  Each segment register keeps the descriptor it decoded, keyed by
 * (selector, table base, table limit): the hardware's hidden descriptor cache likewise keeps
 * what was loaded with the selector, whatever the table in memory says later.  An entry that
 * cannot be read is not kept (read again next time).
 */
static void seg_from_table(struct cpu *c, unsigned i, uint16_t sel, const uc_x86_mmr *tbl,
                           struct cpu_segment *s)
{
    struct cpu_segcache *k = &c->segc[i];
    if (k->valid && k->sel == sel && k->tbase == tbl->base && k->tlimit == tbl->limit) {
        *s = k->seg;
        return;
    }
    memset(s, 0, sizeof(*s));
    s->selector = sel;
    k->valid = false;
    uint64_t d = 0;
    if ((sel & ~3u) != 0
        && ((uint32_t)(sel & ~7u) + 7 > tbl->limit
            || cpu_read_gla(c, tbl->base + (sel & ~7u), &d, 8) < 0))
        return;
    s->base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000);
    uint32_t lim = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
    s->attr = (uint32_t)(((d >> 40) & 0xff) | (((d >> 52) & 0xf) << 12));
    if (s->attr & (1u << 15))
        lim = (lim << 12) | 0xfff;
    s->limit = lim;
    *k = (struct cpu_segcache){.valid = true, .sel = sel, .tbase = tbl->base,
                               .tlimit = tbl->limit, .seg = *s};
}

enum { SEG_CS, SEG_SS, SEG_DS, SEG_ES, SEG_FS, SEG_GS, SEG_N };
#define GETREGS_N 50

/* The ids and destinations of everything cpu_get_regs reads, in one uc_reg_read_batch. */
static int getregs_batch(struct cpu *c, struct cpu_regs *r, uint16_t *sel, uc_x86_mmr *tbl,
                         uc_x86_msr *msr, int *ids, void **vals)
{
    int n = 0;
#define ADD(id, p) (ids[n] = (id), vals[n] = (p), n++)
    bool lm = c->mode == CPU_MODE_LONG;
    ADD(cpu_reg_id(c->mode, UC_X86_REG_RAX), &r->rax);
    ADD(cpu_reg_id(c->mode, UC_X86_REG_RBX), &r->rbx);
    ADD(cpu_reg_id(c->mode, UC_X86_REG_RCX), &r->rcx);
    ADD(cpu_reg_id(c->mode, UC_X86_REG_RDX), &r->rdx);
    ADD(cpu_reg_id(c->mode, UC_X86_REG_RSI), &r->rsi);
    ADD(cpu_reg_id(c->mode, UC_X86_REG_RDI), &r->rdi);
    ADD(cpu_reg_id(c->mode, UC_X86_REG_RBP), &r->rbp);
    ADD(cpu_reg_id(c->mode, UC_X86_REG_RSP), &r->rsp);
    if (lm) {
        ADD(UC_X86_REG_R8, &r->r8);
        ADD(UC_X86_REG_R9, &r->r9);
        ADD(UC_X86_REG_R10, &r->r10);
        ADD(UC_X86_REG_R11, &r->r11);
        ADD(UC_X86_REG_R12, &r->r12);
        ADD(UC_X86_REG_R13, &r->r13);
        ADD(UC_X86_REG_R14, &r->r14);
        ADD(UC_X86_REG_R15, &r->r15);
    }
    ADD(cpu_reg_id(c->mode, UC_X86_REG_RIP), &r->rip);
    ADD(cpu_reg_id(c->mode, UC_X86_REG_RFLAGS), &r->rflags);
    ADD(UC_X86_REG_CR0, &r->cr0);
    ADD(UC_X86_REG_CR2, &r->cr2);
    ADD(UC_X86_REG_CR3, &r->cr3);
    ADD(UC_X86_REG_CR4, &r->cr4);
    ADD(UC_X86_REG_DR7, &r->dr7);
    ADD(UC_X86_REG_FS_BASE, &r->fs_base);
    if (lm) /* Unicorn's 32-bit mode has no GS_BASE register: it reads as 0 */
        ADD(UC_X86_REG_GS_BASE, &r->gs_base);
    static const uint32_t msr_ids[] = {MSR_EFER, MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SFMASK,
                                       MSR_KERNEL_GS, MSR_SYSENTER_CS, MSR_SYSENTER_ESP,
                                       MSR_SYSENTER_EIP};
    for (unsigned i = 0; i < 9; i++) {
        msr[i] = (uc_x86_msr){.rid = msr_ids[i]};
        ADD(UC_X86_REG_MSR, &msr[i]);
    }
    static const int seg_ids[SEG_N] = {UC_X86_REG_CS, UC_X86_REG_SS, UC_X86_REG_DS,
                                       UC_X86_REG_ES, UC_X86_REG_FS, UC_X86_REG_GS};
    for (unsigned i = 0; i < SEG_N; i++)
        ADD(seg_ids[i], &sel[i]);
    ADD(UC_X86_REG_GDTR, &tbl[0]);
    ADD(UC_X86_REG_IDTR, &tbl[1]);
    ADD(UC_X86_REG_LDTR, &tbl[2]);
    ADD(UC_X86_REG_TR, &tbl[3]);
#undef ADD
    return n;
}

int cpu_get_regs(struct cpu *c, struct cpu_regs *r)
{
    memset(r, 0, sizeof(*r));
    uint16_t sel[SEG_N] = {0};
    uc_x86_mmr tbl[4];
    memset(tbl, 0, sizeof(tbl));
    uc_x86_msr msr[9];
    int ids[GETREGS_N];
    void *vals[GETREGS_N];
    int n = getregs_batch(c, r, sel, tbl, msr, ids, vals);
    if (uc_reg_read_batch(c->uc, ids, vals, n) != UC_ERR_OK) {
        /* One register Unicorn refuses must not cost the others: read them one by one. */
        memset(r, 0, sizeof(*r));
        memset(sel, 0, sizeof(sel));
        memset(tbl, 0, sizeof(tbl));
        for (int i = 0; i < n; i++)
            uc_reg_read(c->uc, ids[i], vals[i]);
    }
    uint64_t *msr_dst[9] = {&r->efer, &r->star, &r->lstar, &r->cstar, &r->sfmask,
                            &r->shadow_gs, &r->sysenter_cs, &r->sysenter_esp, &r->sysenter_eip};
    for (unsigned i = 0; i < 9; i++)
        *msr_dst[i] = msr[i].value;
    r->xcr0 = c->xcr0;
    struct cpu_segment *segs[SEG_N] = {&r->cs, &r->ss, &r->ds, &r->es, &r->fs, &r->gs};
    for (unsigned i = 0; i < SEG_N; i++)
        seg_from_table(c, i, sel[i], (sel[i] & 4) ? &tbl[2] : &tbl[0], segs[i]);
    r->fs.base = r->fs_base;
    r->gs.base = r->gs_base;
    r->gdtr_base = tbl[0].base;
    r->gdtr_limit = (uint16_t)tbl[0].limit;
    r->idtr_base = tbl[1].base;
    r->idtr_limit = (uint16_t)tbl[1].limit;
    r->ldtr = (struct cpu_segment){tbl[2].selector, tbl[2].base, tbl[2].limit, tbl[2].flags};
    r->tr = (struct cpu_segment){tbl[3].selector, tbl[3].base, tbl[3].limit, tbl[3].flags};
    return 0;
}

int cpu_set_regs(struct cpu *c, const struct cpu_regs *r)
{
    static const int ids[] = {
        UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RSI,
        UC_X86_REG_RDI, UC_X86_REG_RBP, UC_X86_REG_RSP, UC_X86_REG_R8, UC_X86_REG_R9,
        UC_X86_REG_R10, UC_X86_REG_R11, UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14,
        UC_X86_REG_R15, UC_X86_REG_RFLAGS};
    const uint64_t *src[] = {&r->rax, &r->rbx, &r->rcx, &r->rdx, &r->rsi, &r->rdi,
                             &r->rbp, &r->rsp, &r->r8,  &r->r9,  &r->r10, &r->r11,
                             &r->r12, &r->r13, &r->r14, &r->r15, &r->rflags};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        wr(c, ids[i], *src[i]);
    cpu_set_msr(c, MSR_EFER, r->efer);
    wr(c, UC_X86_REG_CR4, r->cr4);
    /* Unicorn 2.1.1: writing CR2 also overwrites CR3, so CR2 goes first. */
    wr(c, UC_X86_REG_CR2, r->cr2);
    wr(c, UC_X86_REG_CR3, r->cr3);
    wr(c, UC_X86_REG_CR0, r->cr0);
    wr(c, UC_X86_REG_DR7, r->dr7);
    cpu_set_msr(c, MSR_STAR, r->star);
    cpu_set_msr(c, MSR_LSTAR, r->lstar);
    cpu_set_msr(c, MSR_CSTAR, r->cstar);
    cpu_set_msr(c, MSR_SFMASK, r->sfmask);
    cpu_set_msr(c, MSR_KERNEL_GS, r->shadow_gs);
    cpu_set_msr(c, MSR_SYSENTER_CS, r->sysenter_cs);
    cpu_set_msr(c, MSR_SYSENTER_ESP, r->sysenter_esp);
    cpu_set_msr(c, MSR_SYSENTER_EIP, r->sysenter_eip);
    wr(c, UC_X86_REG_FS_BASE, r->fs_base);
    wr(c, UC_X86_REG_GS_BASE, r->gs_base);
    c->xcr0 = r->xcr0;
    uc_x86_mmr g = {.base = r->gdtr_base, .limit = r->gdtr_limit};
    uc_reg_write(c->uc, UC_X86_REG_GDTR, &g);
    g = (uc_x86_mmr){.base = r->idtr_base, .limit = r->idtr_limit};
    uc_reg_write(c->uc, UC_X86_REG_IDTR, &g);
    g = (uc_x86_mmr){r->ldtr.selector, r->ldtr.base, r->ldtr.limit, r->ldtr.attr};
    uc_reg_write(c->uc, UC_X86_REG_LDTR, &g);
    g = (uc_x86_mmr){r->tr.selector, r->tr.base, r->tr.limit, r->tr.attr};
    uc_reg_write(c->uc, UC_X86_REG_TR, &g);
    if (c->mode == CPU_MODE_LONG) {
        /* In 64-bit mode Unicorn sets these selectors without a descriptor load. */
        struct { int id; uint16_t sel; } segs[] = {
            {UC_X86_REG_CS, r->cs.selector}, {UC_X86_REG_SS, r->ss.selector},
            {UC_X86_REG_DS, r->ds.selector}, {UC_X86_REG_ES, r->es.selector}};
        for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
            uint16_t cur = 0;
            uc_reg_read(c->uc, segs[i].id, &cur);
            if (cur != segs[i].sel)
                uc_reg_write(c->uc, segs[i].id, &segs[i].sel);
        }
    }
    wr(c, UC_X86_REG_RIP, r->rip);
    return 0;
}

uint64_t cpu_rip(struct cpu *c)
{
    return rd(c, UC_X86_REG_RIP);
}

int cpu_set_rip(struct cpu *c, uint64_t rip)
{
    wr(c, UC_X86_REG_RIP, rip);
    return 0;
}

static const int gpr_ids[16] = {
    UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX,
    UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_RSI, UC_X86_REG_RDI,
    UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
    UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15};

uint64_t cpu_gpr(struct cpu *c, unsigned index)
{
    return index < 16 ? rd(c, gpr_ids[index]) : 0;
}

int cpu_set_gpr(struct cpu *c, unsigned index, uint64_t v)
{
    if (index >= 16)
        return -EINVAL;
    wr(c, gpr_ids[index], v);
    return 0;
}

/* ---- Exceptions -------------------------------------------------------------- */

static bool has_error_code(unsigned v)
{
    return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21;
}

static const char *vec_name(unsigned v)
{
    static const char *n[32] = {"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
                                "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "15",
                                "#MF", "#AC", "#MC", "#XM", "#VE", "#CP"};
    return v < 32 && n[v] ? n[v] : "vector";
}

int cpu_inject(struct cpu *c, unsigned vector, int64_t error_code, uint64_t cr2)
{
    if (vector > 255)
        return -EINVAL;
    bool err = error_code >= 0;
    uint32_t ec = err ? (uint32_t)error_code : 0;
    uint64_t rip = cpu_rip(c);
    bool lm = c->mode == CPU_MODE_LONG;
    uc_x86_mmr idt = {0};
    uc_reg_read(c->uc, UC_X86_REG_IDTR, &idt);
    unsigned gsz = lm ? 16 : 8;
    uint8_t gate[16];
#define FAIL(...)                                                                              \
    do {                                                                                       \
        char why_[128];                                                                        \
        snprintf(why_, sizeof(why_), __VA_ARGS__);                                             \
        cpu_set_error(c, "%s (vector %u) at rip 0x%llx error code 0x%x: %s", vec_name(vector), \
                      vector, (unsigned long long)rip, ec, why_);                              \
        return -EFAULT;                                                                        \
    } while (0)
    if ((uint64_t)vector * gsz + gsz - 1 > idt.limit)
        FAIL("no usable IDT (limit 0x%x)", idt.limit);
    if (cpu_read_gla(c, idt.base + (uint64_t)vector * gsz, gate, gsz) < 0)
        FAIL("IDT entry at 0x%llx not mapped", (unsigned long long)(idt.base + vector * gsz));
    unsigned type = gate[5] & 0xf;
    if (!(gate[5] & 0x80) || (type != 0xe && type != 0xf))
        FAIL("IDT gate not present or not an interrupt/trap gate (type 0x%x)", gate[5]);
    uint16_t sel = (uint16_t)(gate[2] | gate[3] << 8);
    uint64_t target = (uint64_t)gate[0] | (uint64_t)gate[1] << 8 | (uint64_t)gate[6] << 16
                      | (uint64_t)gate[7] << 24;
    if (lm) {
        uint32_t hi;
        memcpy(&hi, gate + 8, 4);
        target |= (uint64_t)hi << 32;
    }
    uint16_t cs = 0;
    uc_reg_read(c->uc, UC_X86_REG_CS, &cs);
    if ((cs & 3) != 0)
        FAIL("delivery from CPL %u is not supported (only CPL 0)", cs & 3);
    uint64_t rflags = rd(c, UC_X86_REG_RFLAGS);
    uint64_t rsp = rd(c, UC_X86_REG_RSP);
    if (lm) {
        unsigned ist = gate[4] & 7;
        if (ist) {
            uc_x86_mmr tr = {0};
            uc_reg_read(c->uc, UC_X86_REG_TR, &tr);
            if (cpu_read_gla(c, tr.base + 0x24 + (ist - 1) * 8, &rsp, 8) < 0)
                FAIL("IST%u slot of the TSS not readable", ist);
        }
        uint16_t ss = 0;
        uc_reg_read(c->uc, UC_X86_REG_SS, &ss);
        uint64_t frame[6];
        unsigned n = 0;
        if (err)
            frame[n++] = ec;
        frame[n++] = rip;
        frame[n++] = cs;
        frame[n++] = rflags;
        frame[n++] = rd(c, UC_X86_REG_RSP);
        frame[n++] = ss;
        uint64_t nsp = (rsp & ~15ull) - n * 8;
        if (cpu_write_gla(c, nsp, frame, n * 8) < 0)
            FAIL("stack at 0x%llx not writable", (unsigned long long)nsp);
        rsp = nsp;
    } else {
        uint32_t frame[4];
        unsigned n = 0;
        if (err)
            frame[n++] = ec;
        frame[n++] = (uint32_t)rip;
        frame[n++] = cs;
        frame[n++] = (uint32_t)rflags;
        uint64_t nsp = ((rsp - n * 4) & 0xffffffffull);
        if (cpu_write_gla(c, nsp, frame, n * 4) < 0)
            FAIL("stack at 0x%llx not writable", (unsigned long long)nsp);
        rsp = nsp;
    }
#undef FAIL
    if (vector == 14) {
        uint64_t cr3 = rd(c, UC_X86_REG_CR3);
        wr(c, UC_X86_REG_CR2, cr2); /* clobbers CR3 in Unicorn 2.1.1 */
        wr(c, UC_X86_REG_CR3, cr3);
    }
    rflags &= ~((1ull << 8) | (1ull << 14) | (1ull << 16) | (1ull << 17)); /* TF NT RF VM */
    if (type == 0xe)
        rflags &= ~(1ull << 9); /* IF */
    wr(c, UC_X86_REG_RFLAGS, rflags);
    wr(c, UC_X86_REG_RSP, rsp);
    if (sel != cs && lm)
        uc_reg_write(c->uc, UC_X86_REG_CS, &sel);
    wr(c, UC_X86_REG_RIP, target);
    return 0;
}

/* Unicorn's swallowed-exception bug: go back to the context of the run's start, keep the registers. */
static void clean_after_exception(struct cpu *c, uc_context *ctx)
{
    struct cpu_regs r;
    cpu_get_regs(c, &r);
    uc_context_restore(c->uc, ctx);
    cpu_set_regs(c, &r);
}

/* ---- Run ----------------------------------------------------------------- */

static void fault_exit(struct cpu_exit *exit, unsigned vector, bool has_ec,
                       uint32_t ec, uint64_t rip, uint64_t cr2, const char *why)
{
    exit->reason = CPU_EXIT_FAULT;
    exit->fault = (struct cpu_fault){.vector = (uint8_t)vector, .has_error_code = has_ec,
                                     .error_code = ec, .rip = rip, .cr2 = cr2};
    size_t n = strlen(why);
    if (n >= sizeof(exit->fault.why))
        n = sizeof(exit->fault.why) - 1;
    memcpy(exit->fault.why, why, n);
    exit->fault.why[n] = 0;
}

static int deliver(struct cpu *c, struct cpu_exit *exit, unsigned vector, bool has_ec, uint32_t ec,
                   uint64_t cr2)
{
    uint64_t rip = cpu_rip(c);
    if (cpu_inject(c, vector, has_ec ? (int64_t)ec : -1, cr2) < 0) {
        fault_exit(exit, vector, has_ec, ec, rip, cr2, c->error);
        return 1;
    }
    return 0;
}

/*
 * Drops Unicorn's block that ends at the exit `at` (its code stops the run there): Unicorn does
 * it itself after a run with exits, but not when the fetch of that page was refused then.
 */
static void drop_exit_block(struct cpu *c, uint64_t at)
{
    c->quiet_fill = true;
    c->quiet_refused = false;
    uc_ctl_remove_cache(c->uc, at - 1, at);
    c->quiet_fill = false;
    if (!c->quiet_refused)
        c->stale_exit = 0;
}

static int run_loop(struct cpu *c, uint64_t max, bool step, struct cpu_exit *exit)
{
    memset(exit, 0, sizeof(*exit));
    uc_context *ctx = NULL;
    if (uc_context_alloc(c->uc, &ctx) != UC_ERR_OK) {
        cpu_set_error(c, "uc_context_alloc failed");
        return -ENOMEM;
    }
    uint64_t done = 0;
    int rc = 0;
    const uint64_t total = step ? 1 : max;
    uint64_t exit_next = 0; /* exit to arm for the next uc_emu_start (premature fetch) */
    for (;;) {
        if (done >= total) { /* e.g. a block-scan restart after the budget was used */
            exit->reason = step ? CPU_EXIT_STEP : CPU_EXIT_LIMIT;
            break;
        }
        uint64_t budget = total - done;
        if (c->flush_pending) {
            cpu_tlb_flush(c);
            c->flush_pending = false;
        }
        c->pend = PEND_NONE;
        c->hlt = false;
        c->vector = -1;
        c->blk_valid = false;
        c->iter_done = 0;
        c->budget = budget;
        if (c->stale_exit)
            drop_exit_block(c, c->stale_exit);
        uc_context_save(c->uc, ctx);
        uint64_t rip0 = cpu_rip(c);
        uint64_t armed = exit_next;
        exit_next = 0;
        if (armed && uc_ctl_set_exits(c->uc, &armed, 1) != UC_ERR_OK)
            armed = 0;
        c->exit_at = armed;
        c->running = true;
        c->translated = true;
        uc_err e = uc_emu_start(c->uc, rip0, 0, 0, (size_t)budget);
        c->running = false;
        if (armed)
            uc_ctl_set_exits(c->uc, NULL, 0);
        c->exit_at = 0;
        c->premature_off = false;
        uint64_t rip = cpu_rip(c);
        enum cpu_pending p = c->pend;
        bool mmu_pend = p == PEND_ACCESS || p == PEND_PF || p == PEND_GP || p == PEND_BADGPA
                        || p == PEND_PREMATURE;
        if (mmu_pend && e != UC_ERR_EXCEPTION)
            p = PEND_NONE; /* a refused probe the instruction did not act on */
        /* Stopped at the armed exit: the code before the boundary ran, nothing else happened. */
        bool at_exit = armed && rip == armed && p == PEND_NONE && !c->hlt && c->vector < 0;
        bool limit = e == UC_ERR_OK && p == PEND_NONE && !c->hlt && c->vector < 0 && !at_exit;
        if (limit && rip > rip0 && c->blk_valid) {
            /* Unicorn executes an HLT even when the count ran out just before it (our hook is
             * not called then): put RIP back on it, it has not been "executed" for us. */
            uint32_t i = cpu_insn_index(c, c->blk_addr, c->blk_size, rip - 1);
            uint8_t b = 0;
            if (i != UINT32_MAX && c->iter_done + i == budget && cpu_read_gla(c, rip - 1, &b, 1) == 0
                && b == 0xf4) {
                rip--;
                cpu_set_rip(c, rip);
            }
        }
        if (limit) {
            c->iter_done = budget;
        } else if (c->blk_valid) {
            uint32_t i = cpu_insn_index(c, c->blk_addr, c->blk_size, rip);
            c->iter_done += i == UINT32_MAX ? c->blk_icount : i;
        }
        if (c->iter_done > budget)
            c->iter_done = budget;
        done += c->iter_done;
        exit->insns = done;

        if (p == PEND_RESTART || at_exit)
            continue;
        if (p == PEND_PREMATURE) {
            /*
             * Nothing ran of the block being translated.  Drop any cached translation of it
             * (a block cached when the next page was executable is refused at lookup) and run
             * again with an exit at the first instruction that reaches the refused page.  If
             * that was already tried from here, report the refusal as it comes.
             */
            if (armed && armed == c->premature_exit && rip == rip0) {
                c->premature_off = true;
            } else {
                c->quiet_fill = true;
                uc_ctl_remove_cache(c->uc, rip, c->premature_exit);
                c->quiet_fill = false;
                exit_next = c->premature_exit;
            }
            continue;
        }
        if (p == PEND_PAUSE) {
            exit->reason = CPU_EXIT_PAUSE;
            break;
        }
        if (p == PEND_INSN || p == PEND_ACCESS) {
            exit->reason = c->ev.reason;
            if (p == PEND_INSN)
                exit->insn = c->ev.insn;
            else
                exit->access = c->ev.access;
            break;
        }
        if (p == PEND_BADGPA) {
            char why[160];
            snprintf(why, sizeof(why), "guest paging for 0x%llx points outside guest RAM (or at a gfn with no frame)",
                     (unsigned long long)c->pf_page);
            fault_exit(exit, 18, false, 0, rip, 0, why);
            break;
        }
        int delivered_rc = -1;
        if (p == PEND_PF) {
            struct cpu_access a = {0};
            cpu_access_detail(c, &a, c->pf_page, c->pf_kind);
            clean_after_exception(c, ctx);
            delivered_rc = deliver(c, exit, 14, true, c->pf_error, a.gla);
        } else if (p == PEND_GP) {
            clean_after_exception(c, ctx);
            delivered_rc = deliver(c, exit, 13, true, 0, 0);
        } else if (c->vector >= 0) {
            unsigned v = (unsigned)c->vector;
            clean_after_exception(c, ctx);
            bool trap = v == 1 && c->db_trap;
            c->db_trap = false;
            if (trap && (c->intercept & (1u << CPU_INSN_DB_TRAP))) {
                /* The single-step #DB goes to the caller before delivery (a VMX #DB exit, type 3). */
                memset(&c->ev, 0, sizeof(c->ev));
                c->ev.reason = CPU_EXIT_INSN;
                c->ev.insn.kind = CPU_INSN_DB_TRAP;
                c->ev.insn.rip = rip;
                c->ev.insn.valid = true;
                snprintf(c->ev.insn.text, sizeof(c->ev.insn.text), "#DB (single-step trap)");
                exit->reason = CPU_EXIT_INSN;
                exit->insn = c->ev.insn;
                break;
            }
            delivered_rc = deliver(c, exit, v, has_error_code(v), 0, 0);
        } else if (c->hlt) {
            exit->reason = CPU_EXIT_HLT;
            break;
        } else if (e != UC_ERR_OK) {
            cpu_set_error(c, "Unicorn stopped with \"%s\" at rip 0x%llx", uc_strerror(e),
                          (unsigned long long)rip);
            rc = -EIO;
            break;
        }
        if (delivered_rc == 1)
            break;
        if (step) {
            exit->reason = CPU_EXIT_STEP;
            break;
        }
        if (done >= max) {
            exit->reason = CPU_EXIT_LIMIT;
            break;
        }
    }
    uc_context_free(ctx);
    return rc;
}

int cpu_run(struct cpu *c, uint64_t max_insns, struct cpu_exit *exit)
{
    if (max_insns == 0) {
        cpu_set_error(c, "cpu_run needs a budget of at least one instruction (max_insns is 0)");
        return -EINVAL;
    }
    if (c->pend == PEND_PAUSE) {
        memset(exit, 0, sizeof(*exit));
        exit->reason = CPU_EXIT_PAUSE;
        c->pend = PEND_NONE;
        return 0;
    }
    if (c->deliver_db) {
        /* A reported single-step #DB the caller let through: delivered before anything runs. */
        c->deliver_db = false;
        memset(exit, 0, sizeof(*exit));
        if (deliver(c, exit, 1, false, 0, 0))
            return 0;
    }
    return run_loop(c, max_insns, c->singlestep, exit);
}

/* ---- Answers ----------------------------------------------------------------- */

int cpu_insn_execute(struct cpu *c)
{
    if (c->ev.reason == CPU_EXIT_INSN && c->ev.insn.kind == CPU_INSN_DB_TRAP) {
        c->deliver_db = true;
        return 0;
    }
    c->resume_valid = true;
    c->resume_at = c->ev.insn.rip;
    return 0;
}

int cpu_insn_skip(struct cpu *c)
{
    if (c->ev.reason != CPU_EXIT_INSN)
        return -EINVAL;
    wr(c, UC_X86_REG_RIP, c->ev.insn.rip + c->ev.insn.len);
    c->pending_skip = true;
    return 0;
}

int cpu_emulate(struct cpu *c, unsigned flags, const uint8_t *data, size_t len,
                struct cpu_exit *exit)
{
    if ((flags & ~(CPU_EMUL_NOWRITE | CPU_EMUL_READ_DATA)) || len > CPU_EMUL_DATA_MAX
        || ((flags & CPU_EMUL_READ_DATA) && !data && len))
        return -EINVAL;
    uint64_t rip = cpu_rip(c);
    c->emul_flags = flags;
    c->emul_len = flags & CPU_EMUL_READ_DATA ? len : 0;
    if (c->emul_len)
        memcpy(c->emul_data, data, len);
    c->emul_nacc = cpu_insn_accesses(c, rip, c->emul_acc, CPU_MAX_MACC);
    c->scratch_used = 0;
    c->emul_overflow = false;
    /* Every access of this instruction must refill: in bypass mode. */
    cpu_tlb_flush(c);
    c->bypass = true;
    c->resume_valid = true;
    c->resume_at = rip;
    int rc = run_loop(c, 1, true, exit);
    c->bypass = false;
    c->resume_valid = false;
    c->emul_flags = 0;
    cpu_tlb_flush(c);
    if (rc == 0 && c->emul_overflow) {
        cpu_set_error(c, "emulation at rip 0x%llx touched more than %d pages",
                      (unsigned long long)rip, CPU_SCRATCH_FRAMES);
        rc = -E2BIG;
    }
    return rc;
}
