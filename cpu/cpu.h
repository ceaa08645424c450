/*
 * cpu/cpu.h — an x86 vCPU on Unicorn 2.1 with the guest's own paging,
 * checked guest-physical access, instruction interception, single-step and
 * one-instruction emulation.
 *
 * cpu/ knows nothing of vm_event or rings: it runs guest code and stops, with
 * exact information, whenever the layer above must decide.  Functions return 0
 * or a negative errno; when one fails for a reason worth a sentence, the
 * sentence is in cpu_error().
 *
 * Design (see ../shared/spec/unicorn-notes.md for the measured facts):
 *
 * - MMU.  The engine runs in UC_TLB_VIRTUAL mode and one UC_HOOK_TLB_FILL
 *   callback is the whole MMU: cpu/ walks the guest's tables itself (4-level
 *   long mode with 4K/2M/1G pages, or 32-bit PAE), reading them from the host
 *   buffer with one overflow-checked accessor (cpu_gpa_ptr), checks the
 *   restriction of every page-table page it reads (and writes, to set A/D
 *   bits) and of the final frame, and hands Unicorn the frame and the rights
 *   (guest PTE rights ∩ p2m rights).  A refusal ends uc_emu_start with no side
 *   effect at all (RIP at the instruction, no partial store).  Accessed bits
 *   are set by the walker when a translation succeeds; the dirty bit when a
 *   write translation succeeds (W is only granted once D is set, so the first
 *   write refills and sets D).  Unrestricted pages cost nothing: a refusal
 *   never happens on them and a fill costs one bitmap test more.
 *   Restricting a page needs a TLB flush; cpu/ keeps a "handed out since the
 *   last flush" bitmap (final frames and page-table pages) and only flushes
 *   when the page was handed out (cpu_p2m_restricted()).
 * - Frames.  A gfn is its own frame of `ram` unless the caller remapped it
 *   (cpu_memory.remapped/frame: a shared page, another domain's page, an
 *   altp2m remap); the walker, the fills and the emulator all take the frame
 *   from the same lookup.  An altp2m view is another pair of bitmaps
 *   (cpu_set_view): switching costs a TLB flush only when the TLB holds a
 *   frame restricted or remapped in either view.
 * - Exact report.  Unicorn tells the fill callback only the page and the
 *   access type; the byte address and size come from decoding the instruction
 *   at RIP (Capstone) with the live registers: explicit memory operands,
 *   stack accesses (push/pop/call/ret/...), string instructions, and the
 *   fetch of the instruction bytes.  The part of the access inside the
 *   refused page is reported (gla, gpa, size), plus the whole access.  When
 *   no decoded access matches (rare implicit accesses) `exact` is false and
 *   gla/gpa are the page's first byte with size 0.  An in-GPT event (the
 *   walker's own read of an entry, or its A/D write) reports, as Xen does, the
 *   exact linear address being translated: the first byte of the decoded
 *   access (of the kind the walk is for) inside the page being translated;
 *   gpa is the entry's address and size 8.
 * - Interception.  A BLOCK hook sees each new translation block once (hash
 *   set keyed by block address and size), scans it with Capstone and adds a
 *   narrow CODE hook (begin = end = address) for each instruction to
 *   intercept, removes the block from Unicorn's cache and restarts at its
 *   start.  The block scan also yields the block's instruction count, which is
 *   how cpu/ counts executed instructions exactly (cpu_exit.insns).
 * - Run control.  Every uc_emu_start is bounded by an instruction count and
 *   runs with Unicorn "exits" enabled and empty (an `until` address would be
 *   translated by Unicorn: a TLB fill of a made-up address), except after a
 *   premature fetch refusal (below).  cpu_run() never executes more than
 *   `max_insns` instructions (a REP iteration counts as one, as Unicorn
 *   counts it).
 * - Fetch faults at a page boundary.  Unicorn translates a whole block,
 *   possibly across a page boundary, before running any of it (count = 1 does
 *   not shorten blocks): the fetch of the next page P+1 is asked for while RIP
 *   is still at the block's start in page P, with the registers of the
 *   block's start.  A fetch refusal (p2m, in-GPT, guest #PF, non-canonical)
 *   whose page the instruction at RIP does not reach is premature: the fill
 *   refuses it without any effect (no event, no handler call, no A bit, no
 *   TLB entry), cpu_run drops any cached translation of the block, arms a
 *   Unicorn exit at the first instruction that reaches P+1 (decoded with
 *   Capstone from guest memory) and runs again: Unicorn translates the block
 *   only up to the exit, the code before the boundary runs (with its own
 *   events, in order, and exact instruction counts under the same max_insns
 *   bound), and the run stops at the exit; the next run starts there and the
 *   fetch is refused at its own instruction (RIP = the first byte of P+1 or
 *   the straddling instruction).  Unicorn drops the exit's block itself after
 *   the run.  If arming did not help (Capstone and Unicorn disagree on the
 *   bytes), the refusal is reported as it comes.  Cost: one more
 *   uc_emu_start (≈10 µs) each time such a block is entered while P+1 is
 *   refused.
 * - Events resolved inside the engine.  Leaving and re-entering uc_emu_start
 *   costs ~10 µs.  A handler registered with cpu_set_handler() is called from
 *   inside the engine (TLB fill, code hook) and can resolve an event there:
 *   relax the rights of the page (access event), or skip / execute an
 *   intercepted instruction.  Everything else (emulation, injection) leaves
 *   the engine.
 * - Unicorn's exception bug (the second swallowed exception arrives as #DF):
 *   cpu/ keeps a clean uc_context from creation time and, after each guest
 *   exception, restores it and writes the live registers back (CR2 before
 *   CR3: writing CR2 also overwrites CR3 in 2.1.1).
 *
 * Deviations from hardware (documented, tested where it matters):
 * - A bits are set only when a translation succeeds (hardware may set them on
 *   the entries it used before a fault).  SMEP, SMAP, PKU, protection keys
 *   and CR4.PSE 4 MiB pages (non-PAE 32-bit paging) are not modelled.
 * - Guest exceptions raised by Unicorn itself (#GP, #DE, #UD ...) carry no
 *   error code (Unicorn does not expose it): 0 is pushed/reported.
 * - VMCALL, VMMCALL and VMFUNC "executed" (CPU_INSN_EXECUTE) raise #UD, as
 *   they do without a hypervisor to handle them.  XSETBV executed is
 *   emulated by cpu/ (XCR0 is kept by cpu/; Unicorn does not expose it).
 * - Code modified after its block was first scanned is rescanned only when
 *   Unicorn retranslates it with a different size; cpu_flush_code() forces a
 *   full rescan.  Blocks are keyed by guest-linear address.
 * - Single-step runs the engine for one instruction (≈2 µs per step
 *   measured; a step whose block runs into a refused page costs two runs).  A REP string instruction stops after each iteration, as with
 *   EFLAGS.TF, but RIP stays on the REP after the last iteration and one more
 *   step (RCX = 0, nothing accessed) moves it on; the hardware moves RIP with
 *   the last iteration.  Unicorn counts each iteration as an instruction, and
 *   so does cpu_exit.insns.
 * - Emulation (cpu_emulate) maps the pages the instruction writes (NOWRITE)
 *   or reads (READ_DATA) to scratch frames beyond guest RAM for that one
 *   instruction, then flushes the TLB: nothing of a discarded write reaches
 *   guest memory.  At most 8 pages per emulated instruction.
 * - 32-bit PAE: the four PDPTEs are read from memory on every walk (the
 *   hardware caches them at MOV CR3).
 * - Exception delivery bypasses the p2m restrictions for the IDT read and
 *   the stack frame writes (the guest's own paging still applies).
 * - Segment attributes (base, limit, access rights) of CS/DS/ES/SS/FS/GS are
 *   decoded from the guest GDT (or LDT) entry of the selector, not taken from
 *   Unicorn's hidden descriptor cache (which Unicorn does not expose); FS/GS
 *   bases are exact.  Each segment register keeps the descriptor it decoded,
 *   keyed by (selector, table base, table limit), as the hardware's hidden
 *   descriptor cache keeps what was loaded with the selector: rewriting the
 *   entry in memory changes nothing until the selector or the GDTR/LDTR
 *   changes (or the entry could not be read: then it is read again next
 *   time).  Unlike the hardware, reloading the same selector between two
 *   cpu_get_regs calls is not noticed.
 *
 * Cost of the register block (measured with tests/cpu/bench_cpu): cpu_get_regs
 * reads everything in one uc_reg_read_batch (50 registers, ≈2–3 ns each in
 * Unicorn's register switch) and decodes no descriptor while the selectors and
 * tables are unchanged (≈230 ns per call; it was ≈630 ns with one read per
 * register and 6 GDT walks).  Every TLB fill reads CR0/CR3/CR4/CS/EFER in one
 * batch (≈18 ns).  EFER and CS are deliberately not cached across fills:
 * WRMSR, SWAPGS, SYSCALL/SYSRET/IRET and far transfers execute silently in
 * Unicorn (no hook unless intercepted), so a cache would need hooks on all of
 * them, to save ≈5 ns per fill.  Decoding an instruction reads its bytes page
 * by page (at most two walks), not byte by byte.
 */
#ifndef VMISIM_CPU_H
#define VMISIM_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CPU_PAGE_SHIFT 12
#define CPU_PAGE_SIZE 4096u

/* Rights on a guest-physical frame, and access kinds. */
enum {
    CPU_R = 1,
    CPU_W = 2,
    CPU_X = 4,
    CPU_RWX = 7,
};

enum cpu_mode {
    CPU_MODE_LONG = 1,  /* 64-bit long mode, 4-level paging */
    CPU_MODE_PAE32 = 2, /* 32-bit protected mode, PAE paging */
};

/*
 * Guest-physical memory and its restrictions, owned by the layer above.
 * `ram` (size a multiple of 4096) stays valid for the life of the vCPU and may
 * be shared by several vCPUs.  A frame whose bit is set in `restricted` (one
 * bit per gfn, bit gfn%64 of word gfn/64) has the rights rights(opaque, gfn)
 * returns (CPU_R|CPU_W|CPU_X); every other frame has all rights and costs
 * nothing.  `restricted` may be NULL (nothing restricted).  After taking a
 * right away, call cpu_p2m_restricted(); giving rights needs no call.
 */
struct cpu_memory {
    uint8_t *ram;
    uint64_t size;
    const uint64_t *restricted;
    unsigned (*rights)(void *opaque, uint64_t gfn);
    /*
     * Remapped frames (Xen's p2m maps a gfn to any mfn: a shared page, a
     * foreign page, an altp2m remap).  A gfn whose bit is set in `remapped`
     * is backed not by ram[gfn * 4096] but by the 4096-byte frame that
     * frame(opaque, gfn) returns: inside `ram` or inside an area added with
     * cpu_map_area(); NULL means no frame (an access faults as beyond RAM).
     * Every other gfn costs nothing.  `remapped` may be NULL (none); after
     * changing a gfn's frame, call cpu_p2m_restricted(gfn).
     */
    const uint64_t *remapped;
    uint8_t *(*frame)(void *opaque, uint64_t gfn);
    void *opaque;
};

/* Instructions that can be intercepted: a mask of 1u << kind. */
enum cpu_insn_kind {
    CPU_INSN_VMCALL,
    CPU_INSN_VMMCALL,
    CPU_INSN_INT3,
    CPU_INSN_MOV_CR, /* MOV to CR0, CR3 or CR4 */
    CPU_INSN_XSETBV,
    CPU_INSN_WRMSR,
    CPU_INSN_RDMSR,
    CPU_INSN_CPUID,
    CPU_INSN_HLT,
    CPU_INSN_VMFUNC,
    CPU_INSN_LGDT,
    CPU_INSN_LIDT,
    CPU_INSN_LLDT,
    CPU_INSN_LTR,
    CPU_INSN_SGDT,
    CPU_INSN_SIDT,
    CPU_INSN_SLDT,
    CPU_INSN_STR,
    /*
     * ICEBP / INT1 (F1): a #DB with return address RIP + 1 (VMX: a privileged
     * software exception, type 5, length 1).  Reported at the F1, not executed.
     * Executed (not intercepted, or cpu_insn_execute), cpu/ delivers the #DB
     * itself: Unicorn treats F1 as an invalid opcode (#UD).
     */
    CPU_INSN_INT1,
    /*
     * Not an instruction: the single-step trap (#DB, EFLAGS.TF) of the
     * instruction just completed, about to be delivered (VMX: a hardware
     * exception, type 3).  RIP is where the guest goes on, len is 0.
     * cpu_insn_execute delivers the #DB at the next cpu_run; cpu_insn_skip
     * drops it.  Other #DB sources (DR0-DR3 breakpoints) are not reported.
     */
    CPU_INSN_DB_TRAP,
    CPU_INSN_NR
};
#define CPU_INSN_ALL ((1u << CPU_INSN_NR) - 1)

/*
 * Unicorn's buffer of translated code, per vCPU (cpu_create says how it was chosen).  Every
 * flush of translated code (cpu_set_intercept, cpu_flush_code, and Unicorn's own when the
 * buffer is full) writes the whole buffer, so it costs time and resident memory in proportion:
 * ~0.2 ms (bench_cpu) and 16 MiB at the default.
 */
#define CPU_CODE_BUFFER_DEFAULT (16u << 20)

struct cpu_config {
    enum cpu_mode mode;
    struct cpu_memory mem;
    uint32_t intercept; /* mask of 1u << enum cpu_insn_kind */
    uint32_t code_buffer; /* bytes, at least 1 MiB (Unicorn's minimum); 0: CPU_CODE_BUFFER_DEFAULT */
};

enum cpu_exit_reason {
    CPU_EXIT_LIMIT = 1, /* executed max_insns instructions */
    CPU_EXIT_PAUSE,     /* cpu_pause() was called */
    CPU_EXIT_ACCESS,    /* checked access refused; the instruction had no effect */
    CPU_EXIT_INSN,      /* intercepted instruction, not yet executed (RIP at it) */
    CPU_EXIT_STEP,      /* single-step: one instruction completed */
    CPU_EXIT_HLT,       /* HLT executed (RIP after it) */
    CPU_EXIT_FAULT,     /* a guest exception could not be delivered: see cpu_fault */
};

struct cpu_access {
    unsigned kind;        /* CPU_R, CPU_W or CPU_X */
    bool in_gpt;          /* the walker's own access to a page-table entry (FAULT_IN_GPT) */
    bool gla_valid;       /* always true: every access cpu/ checks has a linear address */
    bool exact;           /* gla/size come from decoding the instruction */
    uint64_t gla;         /* linear address of the first refused byte; for in_gpt, of the
                             access being translated, in the page being translated */
    uint64_t gpa;         /* guest-physical address of that byte (the PTE's for in_gpt) */
    uint32_t size;        /* bytes of the access inside the refused page (8 for a PTE) */
    uint64_t access_gla;  /* the whole access as decoded (may straddle pages) */
    uint32_t access_size;
};

struct cpu_insn {
    enum cpu_insn_kind kind;
    uint64_t rip;
    uint8_t len;
    uint8_t bytes[16];
    char text[80];  /* "mnemonic operands" from Capstone */
    /*
     * Operand values, as they are before the instruction executes:
     * MOV_CR: cr = 0/3/4, value = the source register.  WRMSR: index = ECX,
     * value = EDX:EAX.  RDMSR: index = ECX.  XSETBV: index = ECX, value =
     * EDX:EAX.  CPUID: index = EAX (leaf), sub = ECX.  VMCALL/VMMCALL/VMFUNC:
     * see regs (the hypercall ABI lives above).  LGDT/LIDT: mem_gla = the
     * operand's address, base/limit read from it (valid = operand readable).
     * SGDT/SIDT/SLDT/STR with a memory operand: mem_gla.  LLDT/LTR: value =
     * selector.  SLDT/STR with a register operand: reg_dest = 1.
     * LGDT..STR also carry what a VMX exit 46/47 reports (SDM Vol. 3C,
     * "VM-Exit Instruction-Information Field as Used for LIDT, LGDT, SIDT, or
     * SGDT" and "... LLDT, LTR, SLDT, or STR"): instr_info built from the
     * decoded instruction (scaling 1:0, reg1 6:3 for a register operand,
     * address size 9:7, operand size 11 (GDT/IDT only), mem/reg 10
     * (LDT/TR only), segment 17:15, index 21:18, index invalid 22, base
     * 26:23, base invalid 27, identity 29:28 = 0 SGDT/SLDT, 1 SIDT/STR,
     * 2 LGDT/LLDT, 3 LIDT/LTR) and the exit qualification: the displacement,
     * sign-extended (0 for a register operand).  Undefined bits are 0.
     */
    unsigned cr;
    uint64_t value;
    uint32_t index, sub;
    uint64_t mem_gla;
    bool has_mem;
    bool valid;
    uint64_t base;
    uint16_t limit;
    uint32_t instr_info;
    uint64_t displacement;
};

struct cpu_fault {
    uint8_t vector;
    bool has_error_code;
    uint32_t error_code;
    uint64_t rip;
    uint64_t cr2;        /* for #PF */
    char why[160];       /* e.g. "#PF at rip 0x1000 error 0x2: no usable IDT (limit 0)" */
};

struct cpu_exit {
    enum cpu_exit_reason reason;
    uint64_t insns; /* instructions completed by this cpu_run */
    union {
        struct cpu_access access;
        struct cpu_insn insn;
        struct cpu_fault fault;
    };
};

struct cpu;

/*
 * Creates a vCPU in `mode` on the given memory: long mode (EFER.LME|LMA,
 * CR0.PE) or 32-bit protected mode, paging not yet enabled.  Set CR3, CR4,
 * CR0.PG and the rest with cpu_set_regs() before running.
 */
int cpu_create(struct cpu **out, const struct cpu_config *cfg);
void cpu_destroy(struct cpu *c);
/* The last error sentence ("" if none). */
const char *cpu_error(const struct cpu *c);

/*
 * Changes the set of intercepted instructions: flushes the translated code (writes the whole
 * buffer: ~0.2 ms at the default size; nothing when no code ran since the last flush).
 */
int cpu_set_intercept(struct cpu *c, uint32_t mask);
/* Rights of `gfn` were reduced: drop stale translations (only if handed out). */
void cpu_p2m_restricted(struct cpu *c, uint64_t gfn);
/*
 * Makes the frames of another memory area (another domain's RAM, a pool of
 * shared frames) reachable through cpu_memory.frame.  `host` (page aligned,
 * size a multiple of 4096) stays valid for the life of the vCPU.  Adding an
 * area already added does nothing.  Outside cpu_run only (-EBUSY);
 * -ENOSPC beyond CPU_MAX_AREAS areas.
 */
#define CPU_MAX_AREAS 8
int cpu_map_area(struct cpu *c, uint8_t *host, uint64_t size);
/*
 * Another view of the same memory (an altp2m view): the restriction and remap
 * bitmaps cpu_memory.restricted/remapped are replaced (NULL: none; rights and
 * frame must exist for a non-NULL one) and, if the TLB holds a frame that is
 * restricted or remapped in either view, the vCPU's TLB is flushed — when
 * called from a handler inside cpu_run, as the run leaves the engine (from a
 * TLB fill's handler: before the access is retried).  Translated
 * code is kept: it is keyed by the frame, so a view that maps another frame
 * at a gfn simply reaches other code.
 */
int cpu_set_view(struct cpu *c, const uint64_t *restricted, const uint64_t *remapped);
/*
 * The walker's own accesses to page-table pages (entry reads, A/D-bit writes)
 * are not checked against the restrictions while `on`: no in-GPT refusal
 * (cpu_access.in_gpt) happens, the walk completes and only the final frame
 * is checked.  (Xen's monitor option inguest_pagefault_disabled emulates such
 * walks instead of reporting them.)  Turning it off makes the next run walk again.
 */
void cpu_set_gpt_unchecked(struct cpu *c, bool on);
/* Forget which blocks were scanned for intercepted instructions (after code changes). */
int cpu_flush_code(struct cpu *c);

/*
 * Runs until an event or at most max_insns (>= 1) instructions.  Returns 0 and
 * fills *exit, or a negative errno (then cpu_error() says why).
 */
int cpu_run(struct cpu *c, uint64_t max_insns, struct cpu_exit *exit);
/* Asks a running vCPU (called from a handler) to stop: cpu_run returns CPU_EXIT_PAUSE. */
void cpu_pause(struct cpu *c);
/* Single-step on/off: cpu_run then stops after each instruction (CPU_EXIT_STEP). */
void cpu_set_singlestep(struct cpu *c, bool on);

/*
 * An in-engine handler: called from inside uc_emu_start for CPU_EXIT_ACCESS
 * and CPU_EXIT_INSN events.  Return CPU_RESUME after resolving it (relaxing
 * the page's rights, or cpu_insn_skip / cpu_insn_execute) to continue
 * without leaving the engine, or CPU_STOP to make cpu_run return the event.
 * The handler may read and write registers.  It must not call cpu_run,
 * cpu_emulate or cpu_inject.
 */
enum cpu_verdict { CPU_STOP = 0, CPU_RESUME = 1 };
typedef enum cpu_verdict (*cpu_handler_fn)(void *opaque, struct cpu *c,
                                           const struct cpu_exit *ev);
void cpu_set_handler(struct cpu *c, cpu_handler_fn fn, void *opaque);

/* ---- Answers to an intercepted instruction (CPU_EXIT_INSN) --------------- */

/* Let it execute as the hardware would (see the deviations above). */
int cpu_insn_execute(struct cpu *c);
/* Skip it: RIP advances past it; results are whatever registers were set. */
int cpu_insn_skip(struct cpu *c);

/* ---- One-instruction emulation (Xen's VM_EVENT_FLAG_EMULATE) ------------- */

#define CPU_EMUL_NOWRITE 1u   /* discard every memory write of the instruction */
#define CPU_EMUL_READ_DATA 2u /* serve every read from `data` */
#define CPU_EMUL_DATA_MAX 340 /* vm_event v7's buffer; v1 had 252 */

/*
 * Executes exactly the instruction at RIP with the p2m check bypassed (the
 * guest's paging still applies).  With CPU_EMUL_READ_DATA each data read
 * copies min(access size, len) bytes from data[0] and zero-fills the rest
 * (Xen's SET_EMUL_READ_DATA); writes go ahead unless CPU_EMUL_NOWRITE.
 * Fills *exit: CPU_EXIT_STEP when the instruction completed, or the event it
 * caused (guest fault, intercepted instruction).
 */
int cpu_emulate(struct cpu *c, unsigned flags, const uint8_t *data, size_t len,
                struct cpu_exit *exit);

/* ---- Exceptions ---------------------------------------------------------- */

/*
 * Delivers an exception through the guest IDT now, as xc_hvm_inject_trap
 * followed by the next VM entry: #BP (3), #UD (6), #GP (13, error code),
 * #PF (14, error code, cr2) or any vector 0-31.  `error_code` < 0: none.
 * Returns -EFAULT with cpu_error() naming vector, RIP and error code when the
 * guest has no usable IDT.
 */
int cpu_inject(struct cpu *c, unsigned vector, int64_t error_code, uint64_t cr2);

/* ---- Registers ----------------------------------------------------------- */

struct cpu_segment {
    uint16_t selector;
    uint64_t base;
    uint32_t limit;
    uint32_t attr; /* descriptor bits 40-47 and 52-55, as VMX's access rights >> 0..15 */
};

struct cpu_regs {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rip, rflags;
    uint64_t cr0, cr2, cr3, cr4, dr7;
    uint64_t efer, star, lstar, cstar, sfmask;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t fs_base, gs_base, shadow_gs; /* shadow_gs: MSR_KERNEL_GS_BASE */
    uint64_t xcr0;
    struct cpu_segment cs, ss, ds, es, fs, gs;
    uint64_t gdtr_base, idtr_base;
    uint16_t gdtr_limit, idtr_limit;
    struct cpu_segment ldtr, tr;
};

int cpu_get_regs(struct cpu *c, struct cpu_regs *r);
/*
 * Sets every register of *r.  Segment selectors of CS/SS/DS/ES are set as
 * selectors only (the hidden descriptor cache keeps what it had); FS/GS
 * selectors are not reloaded (their bases come from fs_base/gs_base).
 */
int cpu_set_regs(struct cpu *c, const struct cpu_regs *r);
/* Single registers, by the names above: the common fast paths. */
uint64_t cpu_rip(struct cpu *c);
int cpu_set_rip(struct cpu *c, uint64_t rip);
uint64_t cpu_gpr(struct cpu *c, unsigned index); /* 0=rax,1=rcx,2=rdx,3=rbx,4=rsp,5=rbp,6=rsi,7=rdi,8..15 */
int cpu_set_gpr(struct cpu *c, unsigned index, uint64_t v);
/* Known MSRs only (EFER, STAR, LSTAR, CSTAR, SFMASK, SYSENTER_*, FS/GS/KERNEL_GS base, PAT, TSC). */
int cpu_get_msr(struct cpu *c, uint32_t index, uint64_t *v);
int cpu_set_msr(struct cpu *c, uint32_t index, uint64_t v);

/* ---- Guest memory, for the layer above and tests --------------------------- */

/* The host address of [gpa, gpa+len) or NULL when it is not all guest RAM. */
void *cpu_gpa_ptr(const struct cpu *c, uint64_t gpa, uint64_t len);

/* One page walk, without side effects, as the vCPU would do it now. */
struct cpu_walk {
    uint64_t gla;
    uint64_t gpa;            /* valid when fault == 0 */
    unsigned rights;         /* guest rights: CPU_R|W|X (user/supervisor already applied) */
    unsigned levels;         /* entries read */
    uint64_t pte_gpa[4];     /* guest-physical address of each entry read */
    uint64_t pte[4];         /* its value */
    uint64_t page_size;      /* 4K, 2M or 1G */
    int fault;               /* 0, or -1 for a guest #PF with pf_error set */
    uint32_t pf_error;
};
int cpu_translate(struct cpu *c, uint64_t gla, unsigned access, struct cpu_walk *w);

/* ---- Dirty tracking and snapshots ------------------------------------------ */

/*
 * Dirty tracking.  `fn(opaque, frame)` is called with the host address of a
 * frame (page aligned: inside `ram` or an area of cpu_map_area) each time
 * cpu/ lets the guest write it: a TLB entry handed out with W, the walker's
 * A/D-bit writes, an exception frame pushed by cpu_inject.  A TLB entry gets
 * W only on a write fill, and X only on a fetch fill, so the reports are
 * exact per fill, never for pages only read.  Entries already in the TLB are
 * not reported again: call cpu_dirty_restart() when a new tracking period
 * begins (it flushes the TLB, outside cpu_run only).  NULL turns it off.
 */
typedef void (*cpu_dirty_fn)(void *opaque, uint8_t *frame);
void cpu_set_dirty_hook(struct cpu *c, cpu_dirty_fn fn, void *opaque);
void cpu_dirty_restart(struct cpu *c);
/*
 * Ends exact tracking (no snapshot left): fills hand out the full rights again,
 * reporting W grants as before (a superset of the frames written).  The exact
 * W-on-write / X-on-fetch rule above holds from cpu_dirty_restart on.
 */
void cpu_dirty_relax(struct cpu *c);
/*
 * The bytes of `frame` (host address of a frame of `ram` or an area) were
 * changed behind the engine's back (a snapshot restore, a host write): code
 * translated from it must not run again.  Forgets the scanned blocks in any
 * case (O(1); they are keyed by guest-linear address, and the frame may now
 * show where another frame's blocks were scanned: rescanned for interception
 * and instruction counts on their next run).  When code was fetched from the
 * frame since it was last invalidated, also drops Unicorn's blocks of exactly
 * that frame (uc_ctl_remove_cache through one forced TLB fill that maps the
 * lookup to the frame; the TLB is flushed before the next run).  Outside
 * cpu_run only (-EBUSY);
 * -EINVAL for an address that is no frame of this vCPU.
 */
int cpu_frame_written(struct cpu *c, const uint8_t *frame);
/*
 * The vCPU's whole state, as one blob: Unicorn's CPU context (every
 * register, the hidden segment descriptor caches, control and debug
 * registers, the MSRs it models, x87/MMX/SSE/AVX state) and cpu/'s own
 * (XCR0, single-step, intercept mask, the decoded descriptors of
 * cpu_get_regs, an intercepted instruction allowed to execute once, a
 * pending cpu_pause).  The memory view (cpu_set_view) is the caller's.
 * cpu_restore flushes the TLB; it changes the intercept mask (and flushes
 * translated code, ~0.2 ms) only when the blob's differs.  A blob restores
 * only into a vCPU of the same mode and build: -EINVAL otherwise (cpu_error
 * says why).  Outside cpu_run only (-EBUSY).
 */
size_t cpu_state_size(struct cpu *c);
int cpu_save(struct cpu *c, void *buf, size_t len);
int cpu_restore(struct cpu *c, const void *buf, size_t len);

#endif
