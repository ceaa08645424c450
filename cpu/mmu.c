/*
 * cpu/mmu.c — the guest's paging, done by cpu/ itself: the page walker
 * (4-level long mode with 4K/2M/1G pages, 32-bit PAE), the TLB-fill callback
 * that is Unicorn's whole MMU in UC_TLB_VIRTUAL mode, the p2m checks (on every
 * page-table page touched and on the final frame) and the scratch frames of
 * one-instruction emulation.
 */
#include <errno.h>
#include <string.h>

#include "cpu_internal.h"

#define PTE_P (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_US (1ull << 2)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_PS (1ull << 7)
#define PTE_NX (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull

#define CR0_WP (1ull << 16)
#define EFER_NXE (1ull << 11)

#define PF_P 1u
#define PF_W 2u
#define PF_U 4u
#define PF_RSVD 8u
#define PF_I 16u

static bool gfn_remapped(const struct cpu *c, uint64_t gfn)
{
    return c->mem.remapped && ((c->mem.remapped[gfn >> 6] >> (gfn & 63)) & 1);
}

void *cpu_gpa_ptr(const struct cpu *c, uint64_t gpa, uint64_t len)
{
    /* The single accessor to guest RAM: every byte cpu/ touches goes through here. */
    if (len > c->mem.size || gpa > c->mem.size - len)
        return NULL;
    if (c->mem.remapped) {
        uint64_t first = gpa >> CPU_PAGE_SHIFT, last = len ? (gpa + len - 1) >> CPU_PAGE_SHIFT : first;
        for (uint64_t g = first; g <= last; g++) {
            if (!gfn_remapped(c, g))
                continue;
            /* A remapped frame is contiguous with nothing: one page at a time. */
            if (first != last)
                return NULL;
            uint8_t *f = c->mem.frame(c->mem.opaque, g);
            return f ? f + (gpa & (CPU_PAGE_SIZE - 1)) : NULL;
        }
    }
    return c->mem.ram + gpa;
}

/* Unicorn's physical address of the frame behind the page at `gpa`; UINT64_MAX: none. */
static uint64_t frame_paddr(const struct cpu *c, uint64_t page_gpa)
{
    uint64_t gfn = page_gpa >> CPU_PAGE_SHIFT;
    if (!gfn_remapped(c, gfn))
        return page_gpa;
    const uint8_t *f = c->mem.frame(c->mem.opaque, gfn);
    if (!f)
        return UINT64_MAX;
    if (f >= c->mem.ram && (uint64_t)(f - c->mem.ram) < c->mem.size)
        return (uint64_t)(f - c->mem.ram);
    for (unsigned i = 0; i < c->nr_areas; i++) {
        const struct cpu_area *a = &c->areas[i];
        if (f >= a->host && (uint64_t)(f - a->host) < a->size)
            return a->base + (uint64_t)(f - a->host);
    }
    return UINT64_MAX; /* a frame in no area the caller added: refused, never guessed */
}

struct ctl {
    uint64_t cr0, cr3, cr4, efer;
    unsigned cpl;
};

/* A pure walk: reads entries, sets nothing.  w->levels counts entries read. */
static int walk_core(struct cpu *c, const struct ctl *x, uint64_t gla, unsigned access, bool user,
                     struct cpu_walk *w)
{
    memset(w, 0, sizeof(*w));
    w->gla = gla;
    bool nxe = x->efer & EFER_NXE;
    bool wr = true, us = true, nx = false;
    uint64_t table;
    int level; /* 3 = PML4 ... 0 = PT */

    if (c->mode == CPU_MODE_LONG) {
        int64_t s = (int64_t)(gla << 16) >> 16;
        if ((uint64_t)s != gla)
            return w->fault = CPU_WALK_GP;
        table = x->cr3 & PTE_ADDR;
        level = 3;
    } else {
        gla &= 0xffffffffull;
        w->gla = gla;
        uint64_t pdpte_gpa = (x->cr3 & 0xffffffe0ull) + ((gla >> 30) & 3) * 8;
        const uint8_t *p = cpu_gpa_ptr(c, pdpte_gpa, 8);
        if (!p)
            return w->fault = CPU_WALK_BADGPA;
        uint64_t e;
        memcpy(&e, p, 8);
        w->pte_gpa[w->levels] = pdpte_gpa;
        w->pte[w->levels++] = e;
        if (!(e & PTE_P)) {
            w->pf_error = (access & CPU_W ? PF_W : 0) | (user ? PF_U : 0)
                          | (access & CPU_X && nxe ? PF_I : 0);
            return w->fault = CPU_WALK_PF;
        }
        table = e & PTE_ADDR;
        level = 1;
    }

    for (;; level--) {
        uint64_t idx = (gla >> (12 + 9 * level)) & 511;
        uint64_t egpa = table + idx * 8;
        const uint8_t *p = cpu_gpa_ptr(c, egpa, 8);
        if (!p)
            return w->fault = CPU_WALK_BADGPA;
        uint64_t e;
        memcpy(&e, p, 8);
        w->pte_gpa[w->levels] = egpa;
        w->pte[w->levels++] = e;
        uint32_t base_err = (access & CPU_W ? PF_W : 0) | (user ? PF_U : 0)
                            | (access & CPU_X && nxe ? PF_I : 0);
        if (!(e & PTE_P)) {
            w->pf_error = base_err;
            return w->fault = CPU_WALK_PF;
        }
        bool leaf = level == 0 || ((e & PTE_PS) && (level == 1 || (level == 2 && c->mode == CPU_MODE_LONG)));
        if ((e & PTE_NX) && !nxe) {
            w->pf_error = base_err | PF_P | PF_RSVD;
            return w->fault = CPU_WALK_PF;
        }
        wr = wr && (e & PTE_RW);
        us = us && (e & PTE_US);
        nx = nx || (nxe && (e & PTE_NX));
        if (leaf) {
            uint64_t psize = 1ull << (12 + 9 * level);
            w->page_size = psize;
            w->gpa = ((e & PTE_ADDR) & ~(psize - 1)) | (gla & (psize - 1));
            break;
        }
        table = e & PTE_ADDR;
    }

    unsigned rights = CPU_R;
    if (wr || (!user && !(x->cr0 & CR0_WP)))
        rights |= CPU_W;
    if (!nx)
        rights |= CPU_X;
    if (user && !us)
        rights = 0;
    w->rights = rights;
    if ((access & rights) != access) {
        w->pf_error = PF_P | (access & CPU_W ? PF_W : 0) | (user ? PF_U : 0)
                      | (access & CPU_X && nxe ? PF_I : 0);
        return w->fault = CPU_WALK_PF;
    }
    if (!cpu_gpa_ptr(c, w->gpa & ~(uint64_t)(CPU_PAGE_SIZE - 1), CPU_PAGE_SIZE))
        return w->fault = CPU_WALK_BADGPA;
    return 0;
}

static int read_ctl(struct cpu *c, struct ctl *x)
{
    return cpu_read_ctl(c, &x->cr0, &x->cr3, &x->cr4, &x->efer, &x->cpl);
}

int cpu_translate(struct cpu *c, uint64_t gla, unsigned access, struct cpu_walk *w)
{
    struct ctl x;
    int rc = read_ctl(c, &x);
    if (rc < 0)
        return rc;
    walk_core(c, &x, gla, access, x.cpl == 3, w);
    return 0;
}

int cpu_walk(struct cpu *c, uint64_t gla, unsigned access, bool user, struct cpu_walk *w)
{
    struct ctl x;
    int rc = read_ctl(c, &x);
    if (rc < 0)
        return rc;
    return walk_core(c, &x, gla, access, user, w);
}

static unsigned p2m_rights(struct cpu *c, uint64_t gfn)
{
    if (c->bypass || !cpu_restricted(c, gfn))
        return CPU_RWX;
    return c->mem.rights(c->mem.opaque, gfn) & CPU_RWX;
}

/* The rights of a page-table page for the walker's own reads and A/D writes. */
static unsigned gpt_rights(struct cpu *c, uint64_t gfn)
{
    return c->gpt_unchecked ? CPU_RWX : p2m_rights(c, gfn);
}

void cpu_set_gpt_unchecked(struct cpu *c, bool on)
{
    if (c->gpt_unchecked && !on)
        c->flush_pending = true; /* translations made while unchecked are walked again */
    c->gpt_unchecked = on;
}

static void mark_handed(struct cpu *c, uint64_t gfn)
{
    if (gfn < c->nframes)
        c->handed[gfn >> 6] |= 1ull << (gfn & 63);
}

void cpu_tlb_flush(struct cpu *c)
{
    uc_ctl_flush_tlb(c->uc);
    memset(c->handed, 0, ((c->nframes + 63) / 64) * 8);
}

void cpu_p2m_restricted(struct cpu *c, uint64_t gfn)
{
    if (gfn >= c->nframes || !((c->handed[gfn >> 6] >> (gfn & 63)) & 1))
        return;
    /*
     * Flushing Unicorn's TLB from inside its own TLB fill makes it refill
     * forever (measured: the fill's caller keeps the old table).  From a
     * handler called by the fill, the flush waits until the engine is left.
     */
    if (c->in_fill)
        c->flush_pending = true;
    else
        cpu_tlb_flush(c);
}

/* Has a frame with a bit in `a` or `b` been handed to the TLB since the last flush? */
static bool handed_any(const struct cpu *c, const uint64_t *a, const uint64_t *b)
{
    size_t words = (c->nframes + 63) / 64;
    for (size_t i = 0; i < words; i++)
        if (c->handed[i] & ((a ? a[i] : 0) | (b ? b[i] : 0)))
            return true;
    return false;
}

int cpu_set_view(struct cpu *c, const uint64_t *restricted, const uint64_t *remapped)
{
    if ((restricted && !c->mem.rights) || (remapped && !c->mem.frame))
        return -EINVAL;
    /*
     * Only frames restricted or remapped in the old or the new view can
     * differ between them; if the TLB holds none of those, nothing in it is
     * stale and the working set stays (the common case: a view restricts a
     * few pages the vCPU is not using).
     */
    bool stale = handed_any(c, c->mem.restricted, c->mem.remapped) || handed_any(c, restricted, remapped);
    c->mem.restricted = restricted;
    c->mem.remapped = remapped;
    if (!stale)
        return 0;
    /* Never flush Unicorn's TLB from inside the engine (its own fill loops forever). */
    if (c->in_fill || c->running)
        c->flush_pending = true;
    else
        cpu_tlb_flush(c);
    return 0;
}

/*
 * An event for the walker's own access to a page-table entry (FAULT_IN_GPT).  Xen reports the
 * exact linear address being translated (GUEST_LINEAR_ADDRESS), as for FAULT_WITH_GLA, while
 * Unicorn only tells the fill the page: the decoded access of kind `need` (the access the walk
 * is for) that falls in that page gives the byte.  gpa and size stay the PTE's (8 bytes).
 */
static void set_gpt_event(struct cpu *c, uint64_t page, unsigned kind, uint64_t pte_gpa,
                          unsigned need)
{
    struct cpu_access d = {0};
    cpu_access_detail(c, &d, page, need);
    memset(&c->ev, 0, sizeof(c->ev));
    c->ev.reason = CPU_EXIT_ACCESS;
    struct cpu_access *a = &c->ev.access;
    a->kind = kind;
    a->in_gpt = true;
    a->gla_valid = true;
    a->exact = d.exact;
    a->gla = d.exact ? d.gla : page;
    a->gpa = pte_gpa;
    a->size = 8;
    a->access_gla = d.exact ? d.access_gla : page;
    a->access_size = d.exact ? d.access_size : 0;
}

/* Emulation: a scratch frame standing for the page at `gla_page`, filled from `gpa_page`. */
static void scratch_place_reads(struct cpu *c, unsigned i, uint64_t gla_page);
static int scratch_frame(struct cpu *c, uint64_t gla_page, uint64_t gpa_page, bool rdata)
{
    for (unsigned i = 0; i < c->scratch_used; i++)
        if (c->scratch_src[i] == gla_page)
            return (int)i;
    if (c->scratch_used == CPU_SCRATCH_FRAMES) {
        c->emul_overflow = true;
        return -1;
    }
    unsigned i = c->scratch_used++;
    c->scratch_src[i] = gla_page;
    uint8_t *f = c->scratch + (size_t)i * CPU_PAGE_SIZE;
    memcpy(f, cpu_gpa_ptr(c, gpa_page, CPU_PAGE_SIZE), CPU_PAGE_SIZE);
    if (rdata)
        scratch_place_reads(c, i, gla_page);
    return (int)i;
}

/* Read data: place min(size, len) bytes of the buffer, zero-filled, where each read lands. */
static void scratch_place_reads(struct cpu *c, unsigned i, uint64_t gla_page)
{
    uint8_t *f = c->scratch + (size_t)i * CPU_PAGE_SIZE;
    for (unsigned k = 0; k < c->emul_nacc; k++) {
        const struct cpu_macc *m = &c->emul_acc[k];
        if (m->kind != CPU_R)
            continue;
        for (uint32_t b = 0; b < m->size; b++) {
            uint64_t a = m->gla + b;
            if ((a & ~(uint64_t)(CPU_PAGE_SIZE - 1)) != gla_page)
                continue;
            f[a & (CPU_PAGE_SIZE - 1)] = b < c->emul_len ? c->emul_data[b] : 0;
        }
    }
}

static bool emul_reads_page(const struct cpu *c, uint64_t gla_page)
{
    for (unsigned k = 0; k < c->emul_nacc; k++) {
        const struct cpu_macc *m = &c->emul_acc[k];
        if (m->kind != CPU_R || m->size == 0)
            continue;
        uint64_t first = m->gla & ~(uint64_t)(CPU_PAGE_SIZE - 1);
        uint64_t last = (m->gla + m->size - 1) & ~(uint64_t)(CPU_PAGE_SIZE - 1);
        if (gla_page == first || gla_page == last)
            return true;
    }
    return false;
}

/*
 * A refusal that must have no effect at all (no event, no handler, nothing recorded):
 * - our own uc_ctl_remove_cache calls (quiet_fill);
 * - Unicorn's own drop of the exit's block after a run armed with an exit (it fetches the page
 *   before the exit, after the run stopped);
 * - a premature fetch refusal: Unicorn translates a whole block, across a page boundary,
 *   before running any of it, so the fetch of the next page is refused while RIP is still at
 *   the block's start in the page before, with the registers of the block's start.  When the
 *   instruction at RIP does not reach the refused page, nothing is reported: cpu_run arms a
 *   Unicorn exit at the first instruction that does (premature_exit) and runs again, so that
 *   the code before the boundary runs first and the fetch is refused at its own instruction.
 */
static bool quiet_refusal(struct cpu *c, uc_mem_type type, uint64_t page)
{
    if (c->quiet_fill) {
        c->quiet_refused = true;
        return true;
    }
    if (type != UC_MEM_FETCH)
        return false;
    uint64_t rip = cpu_rip(c);
    if (c->mode != CPU_MODE_LONG)
        rip &= 0xffffffffull;
    if (c->exit_at && page == ((c->exit_at - 1) & ~(uint64_t)(CPU_PAGE_SIZE - 1))
        && (rip == c->exit_at || c->pend != PEND_NONE)) {
        c->quiet_refused = true;
        c->stale_exit = c->exit_at;
        return true;
    }
    if (c->premature_off)
        return false;
    uint64_t b = cpu_fetch_boundary(c, rip, page);
    if (!b)
        return false;
    c->pend = PEND_PREMATURE;
    c->premature_exit = b;
    return true;
}

/* Sets the accessed flag of the walk's entries above level `upto` (not the leaf's dirty flag). */
static void walk_set_accessed(struct cpu *c, struct cpu_walk *w, unsigned upto)
{
    for (unsigned i = 0; i < upto; i++) {
        if ((c->mode == CPU_MODE_PAE32 && i == 0) || (w->pte[i] & PTE_A))
            continue;
        uint8_t *p = cpu_gpa_ptr(c, w->pte_gpa[i], 8);
        if (!p)
            continue;
        uint64_t v = w->pte[i] | PTE_A;
        memcpy(p, &v, 8);
        cpu_mark_dirty(c, p, w->pte_gpa[i]);
        w->pte[i] = v;
    }
}

bool cpu_tlb_fill(uc_engine *uc, uint64_t vaddr, uc_mem_type type, uc_tlb_entry *e, void *opaque)
{
    (void)uc;
    struct cpu *c = opaque;
    if (c->forced_fill) {
        /* cpu_frame_written: the engine looks up a frame's blocks through this one fill. */
        e->paddr = c->forced_paddr;
        e->perms = UC_PROT_READ | UC_PROT_EXEC;
        return true;
    }
    if (c->dropping_hooks)
        return false; /* uc_hook_del's invalidation (cpu_blk_reset): no effect at all */
    unsigned need = type == UC_MEM_WRITE ? CPU_W : type == UC_MEM_FETCH ? CPU_X : CPU_R;
    struct ctl x;
    if (read_ctl(c, &x) < 0)
        return false;
    bool user = x.cpl == 3;

    for (int attempt = 0; attempt < 4; attempt++) {
        struct cpu_walk w;
        int f = walk_core(c, &x, vaddr, need, user, &w);
        if (c->mode != CPU_MODE_LONG)
            vaddr &= 0xffffffffull;
        /* p2m: the walker reads every entry it used (FAULT_IN_GPT, kind R). */
        bool gpt = false;
        for (unsigned i = 0; i < w.levels; i++) {
            uint64_t gfn = w.pte_gpa[i] >> CPU_PAGE_SHIFT;
            if (!(gpt_rights(c, gfn) & CPU_R)) {
                if (quiet_refusal(c, type, vaddr))
                    return false;
                set_gpt_event(c, vaddr, CPU_R, w.pte_gpa[i], need);
                gpt = true;
                break;
            }
        }
        if (!gpt) {
            if (f != CPU_WALK_OK && quiet_refusal(c, type, vaddr))
                return false;
            if (f == CPU_WALK_PF) {
                c->pend = PEND_PF;
                c->pf_error = w.pf_error;
                c->pf_page = vaddr;
                c->pf_kind = need;
                return false;
            }
            if (f == CPU_WALK_GP) {
                c->pend = PEND_GP;
                return false;
            }
            if (f == CPU_WALK_BADGPA) {
                c->pend = PEND_BADGPA;
                c->pf_page = vaddr;
                return false;
            }
            /* Accessed and dirty bits: writes to table pages (FAULT_IN_GPT, kind W). */
            for (unsigned i = 0; i < w.levels; i++) {
                bool leaf = i + 1 == w.levels;
                bool is_pdpte32 = c->mode == CPU_MODE_PAE32 && i == 0;
                uint64_t want = is_pdpte32 ? 0 : PTE_A | (leaf && need == CPU_W ? PTE_D : 0);
                if ((w.pte[i] & want) != want
                    && !(gpt_rights(c, w.pte_gpa[i] >> CPU_PAGE_SHIFT) & CPU_W)) {
                    if (quiet_refusal(c, type, vaddr))
                        return false;
                    /*
                     * The walk sets each entry's accessed flag as it uses the entry (SDM vol. 3
                     * 4.8): the levels above this one got theirs before the EPT violation, and
                     * keep them.  Setting none would make a client that opens one table page at
                     * a time (and re-protects the last) fault on the same two pages for ever.
                     */
                    walk_set_accessed(c, &w, i);
                    set_gpt_event(c, vaddr, CPU_W, w.pte_gpa[i], need);
                    gpt = true;
                    break;
                }
            }
        }
        unsigned frame_rights = CPU_RWX;
        uint64_t gfn = w.gpa >> CPU_PAGE_SHIFT;
        if (!gpt) {
            frame_rights = p2m_rights(c, gfn);
            if (!(frame_rights & need)) {
                if (quiet_refusal(c, type, vaddr))
                    return false;
                memset(&c->ev, 0, sizeof(c->ev));
                c->ev.reason = CPU_EXIT_ACCESS;
                c->ev.access.kind = need;
                c->ev.access.gla_valid = true;
                c->ev.access.gla = vaddr;
                c->ev.access.gpa = w.gpa;
                cpu_access_detail(c, &c->ev.access, vaddr, need);
            }
        }
        if (gpt || !(frame_rights & need)) {
            if (c->handler) {
                c->in_fill = true;
                enum cpu_verdict v = c->handler(c->handler_opaque, c, &c->ev);
                c->in_fill = false;
                if (v == CPU_RESUME && c->flush_pending) {
                    /* Resolved, but stale translations must go first: leave, flush, restart. */
                    c->pend = PEND_RESTART;
                    return false;
                }
                if (v == CPU_RESUME)
                    continue; /* the handler changed the rights: walk again */
            }
            c->pend = PEND_ACCESS;
            return false;
        }

        /* Success: set A (and D on a write), hand out the frame. */
        for (unsigned i = 0; i < w.levels; i++) {
            bool leaf = i + 1 == w.levels;
            if (c->mode == CPU_MODE_PAE32 && i == 0)
                continue;
            uint64_t want = PTE_A | (leaf && need == CPU_W ? PTE_D : 0);
            if ((w.pte[i] & want) != want) {
                uint8_t *p = cpu_gpa_ptr(c, w.pte_gpa[i], 8);
                uint64_t v = w.pte[i] | want;
                memcpy(p, &v, 8);
                cpu_mark_dirty(c, p, w.pte_gpa[i]);
                w.pte[i] = v;
            }
            mark_handed(c, w.pte_gpa[i] >> CPU_PAGE_SHIFT);
        }
        mark_handed(c, gfn);
        unsigned perms = w.rights & frame_rights;
        /* W only once D is set, so that the first write refills and sets it. */
        if (!(w.pte[w.levels - 1] & PTE_D))
            perms &= ~(unsigned)CPU_W;
        /*
         * While a tracking period is on (a snapshot exists): W only on a write fill and X only
         * on a fetch fill, so every frame the guest writes is reported by the fill that
         * allowed it (a read never makes a page dirty), and every frame code is translated
         * from is known (cpu_frame_written).  A page read first and written later pays one
         * more fill (~100 ns); without snapshots the full rights are handed out and the
         * reports are a superset (the memory-heavy loop of bench_cpu: 0.79x -> 0.9x).
         */
        if (c->dirty_precise && type != UC_MEM_WRITE)
            perms &= ~(unsigned)CPU_W;
        if (c->dirty_precise && type != UC_MEM_FETCH)
            perms &= ~(unsigned)CPU_X;
        uint64_t page_gpa = w.gpa & ~(uint64_t)(CPU_PAGE_SIZE - 1);
        uint64_t paddr = frame_paddr(c, page_gpa);
        if (paddr == UINT64_MAX) {
            c->pend = PEND_BADGPA;
            c->pf_page = vaddr;
            return false;
        }

        if (c->bypass && c->emul_flags) {
            bool nowrite = c->emul_flags & CPU_EMUL_NOWRITE;
            bool rdata = (c->emul_flags & CPU_EMUL_READ_DATA) && emul_reads_page(c, vaddr);
            if (need == CPU_W && !nowrite) {
                /*
                 * Writes reach memory (Xen's hvmemul_write): the real frame, for writing only when
                 * the page's reads come from the buffer (a read-modify-write reads the scratch
                 * frame, then its write refills here).
                 */
                if (rdata)
                    perms &= CPU_W;
            } else if (type == UC_MEM_FETCH || (!rdata && !(need == CPU_W && nowrite))) {
                /* The real frame, but never a right that would bypass a scratch frame. */
                if (rdata)
                    perms &= CPU_X;
                if (nowrite)
                    perms &= ~(unsigned)CPU_W;
            } else {
                int i = scratch_frame(c, vaddr, page_gpa, rdata);
                if (i < 0)
                    return false;
                paddr = c->scratch_gpa + (uint64_t)i * CPU_PAGE_SIZE;
                /* Without NOWRITE a write to a read-data page refills to the real frame (above). */
                perms &= nowrite ? CPU_R | CPU_W : CPU_R;
            }
        }
        if (perms & CPU_W)
            cpu_mark_dirty(c, cpu_paddr_host(c, paddr), paddr);
        if (perms & CPU_X)
            cpu_mark_code(c, paddr);
        e->paddr = paddr;
        e->perms = (perms & CPU_R ? UC_PROT_READ : 0) | (perms & CPU_W ? UC_PROT_WRITE : 0)
                   | (perms & CPU_X ? UC_PROT_EXEC : 0);
        return true;
    }
    c->pend = PEND_ACCESS;
    return false;
}

/* Host-side copies through the guest's paging (supervisor, no p2m checks, no A/D). */
static int copy_gla(struct cpu *c, uint64_t gla, void *buf, size_t len, bool write)
{
    struct ctl x;
    int rc = read_ctl(c, &x);
    if (rc < 0)
        return rc;
    uint8_t *b = buf;
    while (len) {
        struct cpu_walk w;
        if (walk_core(c, &x, gla, write ? CPU_W : CPU_R, false, &w) != 0)
            return -EFAULT;
        size_t chunk = CPU_PAGE_SIZE - (w.gpa & (CPU_PAGE_SIZE - 1));
        if (chunk > len)
            chunk = len;
        uint8_t *p = cpu_gpa_ptr(c, w.gpa, chunk);
        if (!p)
            return -EFAULT;
        if (write) {
            memcpy(p, b, chunk);
            cpu_mark_dirty(c, p, w.gpa);
        } else
            memcpy(b, p, chunk);
        b += chunk;
        gla += chunk;
        len -= chunk;
    }
    return 0;
}

int cpu_read_gla(struct cpu *c, uint64_t gla, void *buf, size_t len)
{
    return copy_gla(c, gla, buf, len, false);
}

int cpu_write_gla(struct cpu *c, uint64_t gla, const void *buf, size_t len)
{
    return copy_gla(c, gla, (void *)buf, len, true);
}
