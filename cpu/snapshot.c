/*
 * cpu/snapshot.c — what a snapshot of the machine needs from a vCPU: its
 * whole state as one blob (cpu_save / cpu_restore), the frames the guest may
 * have written (the dirty hook, fed by the TLB fill), and dropping translated
 * code of a frame whose bytes were put back (cpu_frame_written).
 *
 * Why Unicorn's uc_context and not the register API: a context is one memcpy
 * of the engine's CPU state, including what cpu_set_regs cannot write (the
 * hidden segment descriptor caches, x87/SSE state, pending flags of the
 * engine), so a restored vCPU continues exactly as the saved one would have.
 * tests/sim/bench_snapshot measures both.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

#define CPU_BLOB_MAGIC 0x31555043u /* "CPU1" */

/* The header of a state blob; Unicorn's context follows it. */
struct cpu_blob {
    uint32_t magic;
    uint32_t mode;
    uint64_t ctx_size;
    uint64_t xcr0;
    uint64_t resume_at;
    uint32_t intercept;
    uint8_t singlestep, resume_valid, pause_pending;
    uint8_t flags; /* bit 0: gpt_unchecked, bit 1: a single-step #DB to deliver (deliver_db) */
    struct cpu_segcache segc[6];
};

void cpu_set_dirty_hook(struct cpu *c, cpu_dirty_fn fn, void *opaque)
{
    c->dirty_fn = fn;
    c->dirty_opaque = opaque;
}

void cpu_dirty_restart(struct cpu *c)
{
    c->dirty_precise = true;
    /* Entries handed out with W before now would let writes through unreported: drop them all. */
    if (c->running || c->in_fill)
        c->flush_pending = true;
    else
        cpu_tlb_flush(c);
}

void cpu_dirty_relax(struct cpu *c)
{
    /* Entries already handed out stay as narrow as they are; new ones get full rights again. */
    c->dirty_precise = false;
}

uint8_t *cpu_paddr_host(const struct cpu *c, uint64_t paddr)
{
    if (paddr < c->mem.size)
        return c->mem.ram + paddr;
    for (unsigned i = 0; i < c->nr_areas; i++) {
        const struct cpu_area *a = &c->areas[i];
        if (paddr >= a->base && paddr - a->base < a->size)
            return a->host + (paddr - a->base);
    }
    return NULL; /* a scratch frame of emulation: not guest memory */
}

/* Unicorn's physical address of a host frame of ours; UINT64_MAX for none. */
static uint64_t host_paddr(const struct cpu *c, const uint8_t *f)
{
    if (f >= c->mem.ram && (uint64_t)(f - c->mem.ram) < c->mem.size)
        return (uint64_t)(f - c->mem.ram);
    for (unsigned i = 0; i < c->nr_areas; i++) {
        const struct cpu_area *a = &c->areas[i];
        if (f >= a->host && (uint64_t)(f - a->host) < a->size)
            return a->base + (uint64_t)(f - a->host);
    }
    return UINT64_MAX;
}

int cpu_code_resize(struct cpu *c)
{
    uint64_t frames = c->next_area_base >> CPU_PAGE_SHIFT;
    if (frames <= c->code_frames)
        return 0;
    size_t old = (c->code_frames + 63) / 64, words = (frames + 63) / 64;
    uint64_t *n = realloc(c->code, words * sizeof(*n));
    if (!n)
        return -ENOMEM;
    memset(n + old, 0, (words - old) * sizeof(*n));
    c->code = n;
    c->code_frames = frames;
    return 0;
}

void cpu_snapshot_free(struct cpu *c)
{
    free(c->code);
    if (c->snap_ctx)
        uc_context_free(c->snap_ctx);
}

/* Forget the scanned blocks: a block at the same address and size may now hold other code. */
static void forget_scanned_blocks(struct cpu *c)
{
    /*
     * The narrow hooks stay: one at an address that no longer holds a watched instruction
     * lets it run (cpu_icpt_hook decodes before acting), and a rescan adds the missing ones.
     */
    cpu_blk_forget(c);
}

int cpu_frame_written(struct cpu *c, const uint8_t *frame)
{
    if (c->running)
        return -EBUSY;
    uint64_t paddr = host_paddr(c, frame);
    if (paddr == UINT64_MAX || paddr % CPU_PAGE_SIZE) {
        cpu_set_error(c, "%p is not the start of a frame this vCPU can reach", (const void *)frame);
        return -EINVAL;
    }
    /*
     * Scanned blocks are keyed by guest-linear address, not by frame: whatever this frame held
     * before, another frame's blocks may have been scanned at the addresses it shows now (a
     * restore taking back an altp2m view or a remap), so they are forgotten in every case (O(1)).
     * Found by the `guest` fuzz target: an instruction count that depended on the input before.
     */
    forget_scanned_blocks(c);
    uint64_t f = paddr >> CPU_PAGE_SHIFT;
    if (f >= c->code_frames || !((c->code[f >> 6] >> (f & 63)) & 1))
        return 0;
    /*
     * Unicorn has no "invalidate this physical page" call: uc_ctl_remove_cache takes a
     * guest-linear address and translates it through the TLB fill, and today's page tables
     * may no longer reach the frame the code came from (uc_mem_write does not invalidate at
     * all: measured).  So the fill is told to translate the address `paddr` to the frame
     * itself, once (forced_fill); the TLB entry this leaves is dropped before the next run.
     */
    c->forced_fill = true;
    c->forced_paddr = paddr;
    uint64_t va = paddr; /* canonical in long mode, below 4 GiB in PAE32 (RAM and areas are) */
    uc_err e = uc_ctl_remove_cache(c->uc, va, va + CPU_PAGE_SIZE);
    c->forced_fill = false;
    c->flush_pending = true;
    if (e != UC_ERR_OK)
        cpu_flush_code(c); /* the safe answer, should the engine refuse */
    c->code[f >> 6] &= ~(1ull << (f & 63));
    return 0;
}

size_t cpu_state_size(struct cpu *c)
{
    return sizeof(struct cpu_blob) + uc_context_size(c->uc);
}

static int staging_ctx(struct cpu *c)
{
    if (c->snap_ctx)
        return 0;
    if (uc_context_alloc(c->uc, &c->snap_ctx) != UC_ERR_OK) {
        c->snap_ctx = NULL;
        cpu_set_error(c, "uc_context_alloc failed: no memory for a vCPU snapshot");
        return -ENOMEM;
    }
    return 0;
}

int cpu_save(struct cpu *c, void *buf, size_t len)
{
    if (c->running)
        return -EBUSY;
    size_t ctx_size = uc_context_size(c->uc);
    if (len < sizeof(struct cpu_blob) + ctx_size) {
        cpu_set_error(c, "a vCPU state needs %zu bytes, the buffer has %zu",
                      sizeof(struct cpu_blob) + ctx_size, len);
        return -EINVAL;
    }
    int rc = staging_ctx(c);
    if (rc < 0)
        return rc;
    if (uc_context_save(c->uc, c->snap_ctx) != UC_ERR_OK) {
        cpu_set_error(c, "uc_context_save failed");
        return -EIO;
    }
    struct cpu_blob h;
    memset(&h, 0, sizeof(h));
    h.magic = CPU_BLOB_MAGIC;
    h.mode = (uint32_t)c->mode;
    h.ctx_size = ctx_size;
    h.xcr0 = c->xcr0;
    h.resume_at = c->resume_at;
    h.intercept = c->intercept;
    h.singlestep = c->singlestep;
    h.resume_valid = c->resume_valid;
    h.pause_pending = c->pend == PEND_PAUSE;
    h.flags = (uint8_t)((c->gpt_unchecked ? 1u : 0u) | (c->deliver_db ? 2u : 0u));
    memcpy(h.segc, c->segc, sizeof(h.segc));
    memcpy(buf, &h, sizeof(h));
    memcpy((uint8_t *)buf + sizeof(h), c->snap_ctx, ctx_size);
    return 0;
}

int cpu_restore(struct cpu *c, const void *buf, size_t len)
{
    if (c->running)
        return -EBUSY;
    struct cpu_blob h;
    size_t ctx_size = uc_context_size(c->uc);
    if (len < sizeof(h)) {
        cpu_set_error(c, "a vCPU state of %zu bytes is truncated (the header alone is %zu)", len,
                      sizeof(h));
        return -EINVAL;
    }
    memcpy(&h, buf, sizeof(h));
    if (h.magic != CPU_BLOB_MAGIC || h.ctx_size != ctx_size || len != sizeof(h) + ctx_size) {
        cpu_set_error(c, "not a vCPU state of this build (magic %#x, engine context %llu bytes, "
                      "expected %zu)", h.magic, (unsigned long long)h.ctx_size, ctx_size);
        return -EINVAL;
    }
    if (h.mode != (uint32_t)c->mode) {
        cpu_set_error(c, "the vCPU state is of mode %u, this vCPU runs mode %u", h.mode,
                      (unsigned)c->mode);
        return -EINVAL;
    }
    if (h.intercept & ~CPU_INSN_ALL) {
        cpu_set_error(c, "the vCPU state's intercept mask %#x has unknown bits", h.intercept);
        return -EINVAL;
    }
    int rc = staging_ctx(c);
    if (rc < 0)
        return rc;
    memcpy(c->snap_ctx, (const uint8_t *)buf + sizeof(h), ctx_size);
    if (uc_context_restore(c->uc, c->snap_ctx) != UC_ERR_OK) {
        cpu_set_error(c, "uc_context_restore failed");
        return -EIO;
    }
    c->xcr0 = h.xcr0;
    c->singlestep = h.singlestep;
    c->resume_valid = h.resume_valid;
    c->resume_at = h.resume_at;
    c->pend = h.pause_pending ? PEND_PAUSE : PEND_NONE;
    c->gpt_unchecked = h.flags & 1;
    c->deliver_db = (h.flags >> 1) & 1;
    c->db_trap = false;
    memcpy(c->segc, h.segc, sizeof(c->segc));
    /* Run-time leftovers of the state we leave: none may carry over. */
    c->premature_exit = 0;
    c->premature_off = false;
    c->pending_skip = false;
    c->flush_pending = false;
    /* Paging registers changed under the TLB; new writes must refill (dirty tracking). */
    cpu_tlb_flush(c);
    if (h.intercept != c->intercept)
        return cpu_set_intercept(c, h.intercept);
    return 0;
}
