/* cpu/cpu_internal.h — shared by cpu/'s own files; not public API. */
#ifndef VMISIM_CPU_INTERNAL_H
#define VMISIM_CPU_INTERNAL_H

#include <string.h>

#include <capstone/capstone.h>
#include <unicorn/unicorn.h>

#include "cpu.h"

/* Non-canonical or outside RAM: walk results besides a guest #PF. */
enum { CPU_WALK_OK = 0, CPU_WALK_PF = -1, CPU_WALK_GP = -2, CPU_WALK_BADGPA = -3 };

/*
 * MOV to a debug register: watched by cpu/ itself (like HLT), never one of the caller's
 * intercepts (CPU_INSN_ALL leaves it out); execute_watched (decode.c) says why.
 */
#define CPU_INSN_MOV_DR ((enum cpu_insn_kind)CPU_INSN_NR)

/* A translation block seen by the BLOCK hook. */
struct cpu_blk {
    uint64_t addr;
    uint32_t size;
    uint32_t icount;
    uint32_t gen; /* the scan generation it belongs to: an entry of another one is an empty slot */
};

/* A decoded memory access of one instruction. */
struct cpu_macc {
    uint64_t gla;
    uint32_t size;
    unsigned kind; /* CPU_R, CPU_W, CPU_X */
};
#define CPU_MAX_MACC 6

/* What a callback recorded for cpu_run to act on after uc_emu_start returns. */
enum cpu_pending {
    PEND_NONE,
    PEND_ACCESS,   /* c->ev.access */
    PEND_INSN,     /* c->ev.insn */
    PEND_PF,       /* guest #PF from the walker: pf_error, pf_page, pf_kind */
    PEND_GP,       /* non-canonical address */
    PEND_BADGPA,   /* the guest's tables point outside RAM */
    PEND_VECTOR,   /* exception raised by Unicorn (INTR hook / invalid insn) */
    PEND_RESTART,  /* block scan added hooks: restart at the block */
    PEND_PAUSE,
    PEND_PREMATURE, /* a fetch refused while translating ahead of RIP: premature_exit */
};

#define CPU_SCRATCH_FRAMES 8

/* Unicorn's smallest translation buffer (QEMU's MIN_CODE_GEN_BUFFER_SIZE). */
#define CPU_CODE_BUFFER_MIN (1u << 20)

/* A segment register's decoded descriptor, keyed by selector and descriptor table. */
struct cpu_segcache {
    bool valid;
    uint16_t sel;
    uint64_t tbase;
    uint32_t tlimit;
    struct cpu_segment seg;
};

struct cpu {
    uc_engine *uc;
    csh cs;
    /*
     * One instruction (with its detail) reused by every scan (cs_disasm_iter): cs_disasm
     * allocates per call, and a block of ~100 instructions cost ~170 KiB of malloc, often fresh
     * pages from the kernel (random code resynchronising after faults scans a new block at
     * every byte).  Allocated on first use, freed with the vCPU.
     */
    cs_insn *scan;
    enum cpu_mode mode;
    struct cpu_memory mem;
    uint64_t nframes;
    uint64_t *handed; /* frames handed to Unicorn's TLB (or read as tables) since the last flush */
    /* Areas beside `ram` (cpu_map_area), mapped in Unicorn's physical space after the scratch frames. */
    struct cpu_area { uint8_t *host; uint64_t size, base; } areas[CPU_MAX_AREAS];
    unsigned nr_areas;
    uint64_t next_area_base;
    uint32_t intercept;      /* what the caller intercepts */
    uc_hook h_tlb, h_block, h_intr, h_invalid;

    /*
     * Scanned blocks (open addressing, power-of-two capacity).  Forgetting them all is a new
     * generation (cpu_blk_forget: O(1), whatever the table's size; restores do it for every
     * frame they put back).
     */
    struct cpu_blk *blks;
    size_t blk_cap, blk_n;
    uint32_t blk_gen;
    /* Narrow code hooks in place. */
    uint64_t *hooked_addr;
    uc_hook *hooked_id;
    size_t nhooked, hooked_cap;

    /*
     * Unicorn may hold translated code: set by every uc_emu_start (the only place cpu/ lets
     * Unicorn translate), cleared by a flush.  A flush writes the whole translation buffer
     * (CPU_TCG_BUFFER_SIZE), so cpu_flush_code skips it when nothing can have been translated
     * since the last one (set-up: each monitor enabled before the first run).
     */
    bool translated;

    /* Run state. */
    bool running;
    bool singlestep;
    bool resume_valid; /* the intercepted instruction at resume_at executes once */
    uint64_t resume_at;
    enum cpu_pending pend;
    struct cpu_exit ev;
    uint32_t pf_error;
    uint64_t pf_page;
    unsigned pf_kind;
    int vector;
    bool hlt;
    bool blk_valid;
    uint64_t blk_addr;
    uint32_t blk_size, blk_icount;
    uint32_t blk_last_icount; /* icount of blk_addr as scanned (blk_icount may be cut by a skip) */
    uint64_t iter_done;
    uint64_t budget;
    bool pending_skip; /* cpu_insn_skip called from a handler */
    bool db_trap;      /* the #DB Unicorn raised is a single-step trap (DR6.BS was set) */
    bool deliver_db;   /* cpu_insn_execute of a CPU_INSN_DB_TRAP: deliver #DB at the next run */
    bool gpt_unchecked; /* cpu_set_gpt_unchecked: the walker's own accesses skip the p2m */

    /*
     * Fetch refusals ahead of RIP (Unicorn translates a whole block, across a page boundary,
     * before running it).  premature_exit: the first instruction that reaches the refused page
     * (set by the fill); exit_at: the Unicorn exit armed for the current uc_emu_start (0 =
     * none), so that the block is translated only up to it; premature_off: report the next
     * refusal as it comes (arming did not help); quiet_fill: refuse without any effect (our own
     * uc_ctl_remove_cache calls); quiet_refused: such a refusal happened; stale_exit: an exit
     * whose block Unicorn could not drop after the run (dropped before the next run).
     */
    uint64_t premature_exit;
    uint64_t exit_at;
    bool premature_off;
    bool quiet_fill;
    bool quiet_refused;
    /*
     * cpu_blk_reset deletes the narrow hooks: Unicorn's uc_hook_del then invalidates the
     * blocks each hook instrumented, translating their addresses through the TLB fill, as if
     * the guest fetched them.  Such a fill must not walk, report or hand out anything (a
     * refused fetch would reach the handler: an event for an instruction that never ran); it
     * refuses at once, and cpu_flush_code drops every block right after anyway.
     */
    bool dropping_hooks;
    uint64_t stale_exit;

    /* One-instruction emulation. */
    bool bypass;
    unsigned emul_flags;
    uint8_t emul_data[CPU_EMUL_DATA_MAX];
    size_t emul_len;
    struct cpu_macc emul_acc[CPU_MAX_MACC];
    unsigned emul_nacc;
    uint8_t *scratch; /* CPU_SCRATCH_FRAMES frames mapped at scratch_gpa */
    uint64_t scratch_gpa;
    uint64_t scratch_src[CPU_SCRATCH_FRAMES]; /* gla page each frame stands for */
    unsigned scratch_used;
    bool emul_overflow;

    cpu_handler_fn handler;
    void *handler_opaque;
    bool in_fill;        /* inside the TLB-fill callback (and so inside the handler it calls) */
    bool flush_pending;  /* a restriction arrived in_fill: flush before the engine runs again */
    uint64_t xcr0;
    struct cpu_segcache segc[6]; /* CS SS DS ES FS GS (cpu_get_regs) */
    char error[256];

    /* Dirty tracking and snapshots (cpu/snapshot.c). */
    cpu_dirty_fn dirty_fn;
    void *dirty_opaque;
    bool dirty_precise;     /* W only on write fills, X only on fetch fills (a tracking period is on) */
    /*
     * Frames of Unicorn's physical space (ram, scratch, areas: paddr >> 12) handed out with X
     * since their code was last invalidated: only those can have translated blocks, so only
     * those cost anything in cpu_frame_written.
     */
    uint64_t *code;
    uint64_t code_frames;
    bool forced_fill;       /* cpu_frame_written: the next fill maps its address to forced_paddr */
    uint64_t forced_paddr;
    uc_context *snap_ctx; /* cpu_save / cpu_restore's staging context, allocated on first use */
};

/* Unicorn takes callbacks as void *: ISO C has no such conversion, so copy the bits. */
static inline void *cpu_fnptr(void (*f)(void))
{
    void *p;
    memcpy(&p, &f, sizeof(p));
    return p;
}
#define CPU_CB(f) cpu_fnptr((void (*)(void))(f))

/* Unicorn's 32-bit mode only knows the 32-bit names (RAX, RIP ... are ignored there). */
static inline int cpu_reg_id(enum cpu_mode mode, int id)
{
    if (mode == CPU_MODE_LONG)
        return id;
    switch (id) {
    case UC_X86_REG_RAX: return UC_X86_REG_EAX;
    case UC_X86_REG_RBX: return UC_X86_REG_EBX;
    case UC_X86_REG_RCX: return UC_X86_REG_ECX;
    case UC_X86_REG_RDX: return UC_X86_REG_EDX;
    case UC_X86_REG_RSI: return UC_X86_REG_ESI;
    case UC_X86_REG_RDI: return UC_X86_REG_EDI;
    case UC_X86_REG_RBP: return UC_X86_REG_EBP;
    case UC_X86_REG_RSP: return UC_X86_REG_ESP;
    case UC_X86_REG_RIP: return UC_X86_REG_EIP;
    case UC_X86_REG_RFLAGS: return UC_X86_REG_EFLAGS;
    default: return id;
    }
}

/* cpu.c */
void cpu_set_error(struct cpu *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cpu_read_ctl(struct cpu *c, uint64_t *cr0, uint64_t *cr3, uint64_t *cr4, uint64_t *efer,
                 unsigned *cpl);

void cpu_intr_hook(uc_engine *uc, uint32_t intno, void *opaque);
bool cpu_invalid_hook(uc_engine *uc, void *opaque);

/* mmu.c */
bool cpu_tlb_fill(uc_engine *uc, uint64_t vaddr, uc_mem_type type, uc_tlb_entry *e, void *opaque);
int cpu_walk(struct cpu *c, uint64_t gla, unsigned access, bool user, struct cpu_walk *w);
/* Copies guest-linear memory as the supervisor would see it, without p2m checks. */
int cpu_read_gla(struct cpu *c, uint64_t gla, void *buf, size_t len);
int cpu_write_gla(struct cpu *c, uint64_t gla, const void *buf, size_t len);
void cpu_tlb_flush(struct cpu *c);
static inline bool cpu_restricted(const struct cpu *c, uint64_t gfn)
{
    return c->mem.restricted && ((c->mem.restricted[gfn >> 6] >> (gfn & 63)) & 1);
}

/* snapshot.c */
/* The host address of the frame at Unicorn physical address `paddr`; NULL for a scratch frame. */
uint8_t *cpu_paddr_host(const struct cpu *c, uint64_t paddr);
/* Reports a frame the guest may write (or cpu/ wrote): the host address of any byte in it. */
static inline void cpu_mark_dirty(struct cpu *c, uint8_t *p, uint64_t gpa)
{
    if (c->dirty_fn && p)
        c->dirty_fn(c->dirty_opaque, p - (gpa & (CPU_PAGE_SIZE - 1)));
}
static inline void cpu_mark_code(struct cpu *c, uint64_t paddr)
{
    uint64_t f = paddr >> CPU_PAGE_SHIFT;
    if (f < c->code_frames)
        c->code[f >> 6] |= 1ull << (f & 63);
}
/* Grows the code bitmap to Unicorn's whole physical space (after cpu_map_area). */
int cpu_code_resize(struct cpu *c);
void cpu_snapshot_free(struct cpu *c);

/* decode.c */
void cpu_block_hook(uc_engine *uc, uint64_t addr, uint32_t size, void *opaque);
void cpu_icpt_hook(uc_engine *uc, uint64_t addr, uint32_t size, void *opaque);
/* Decodes the instruction at RIP (len 0 when it cannot be read or decoded). */
int cpu_decode_at(struct cpu *c, uint64_t rip, cs_insn **out);
/* The memory accesses of the instruction at rip, with the live registers. */
unsigned cpu_insn_accesses(struct cpu *c, uint64_t rip, struct cpu_macc *acc, unsigned max);
/* Fills ev->access's exact fields from the decoded accesses of the instruction at RIP. */
void cpu_access_detail(struct cpu *c, struct cpu_access *a, uint64_t page, unsigned kind);
/*
 * A fetch of `page` refused while RIP is at `rip`: when the instruction at rip does not reach
 * `page` (the block is being translated ahead of execution), the address of the first
 * instruction from rip that does (the refusal is premature); else 0.
 */
uint64_t cpu_fetch_boundary(struct cpu *c, uint64_t rip, uint64_t page);
/* Number of instructions from block start to addr (decoding). */
uint32_t cpu_insn_index(struct cpu *c, uint64_t blk, uint32_t size, uint64_t addr);
/* Forgets the scanned blocks and deletes the narrow hooks; the caller then flushes the code cache. */
int cpu_blk_reset(struct cpu *c);
/* Forgets the scanned blocks only (the hooks stay): they are rescanned when they run next. */
void cpu_blk_forget(struct cpu *c);
int cpu_fill_insn(struct cpu *c, uint64_t rip, struct cpu_insn *in);

#endif
