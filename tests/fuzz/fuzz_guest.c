/*
 * tests/fuzz/fuzz_guest.c — random guest code under full monitoring, with random p2m and
 * altp2m settings and a responder that answers every request as the input says.
 *
 * Two domains are built once (LLVMFuzzerInitialize), each with two vCPUs (the second one down
 * until an input brings it up), a monitor ring of interface version 7 and every monitor on:
 * mem_access, write_ctrlreg CR0/CR3/CR4 (with op 4, so writes are deferred and DENY works),
 * mov_to_msr (EFER, STAR, LSTAR, SYSENTER_CS, PAT, FS_BASE and an MSR cpu/ cannot read),
 * software breakpoints, CPUID, descriptor access, debug exceptions (sync), guest requests,
 * single-step and emul_unimplemented.  Domain 0 has no altp2m; domain 1 has altp2m active in
 * mixed mode (VMFUNC is intercepted there).  The monitors are set once: changing cpu/'s
 * intercept mask flushes every vCPU's translated code, so an input varies only what is cheap:
 * p2m access, altp2m views, per-view access, change_gfn, each vCPU's view, the responder,
 * CR-write sync / onchangeonly / masks, in-guest page faults, single-step, the schedule.
 *
 * The guest (long mode, 64 KiB, one page table; gfn: what, guest-linear address):
 *   0, 1, 11  spare frames mapped nowhere (a pattern; frame 1 holds a little alternative code,
 *             what a view shows at the code gfn after change_gfn)
 *   2  code   0x400000 R X, and 0x401000 R W (an alias: self-modifying code)
 *   3  data A 0x402000 R W      4  data B 0x403000 R W      5  read-only 0x404000 R
 *   6  stack  0x405000 R W      7  IST stacks 0x406000 R W (every IDT gate uses IST1; two TSSs)
 *   8  GDT and TSSs 0x407000 R  9  IDT 0x408000 R (256 gates)  10  handlers 0x409000 R X
 *   12-15  page tables (not mapped)
 * Every exception goes to a handler that adds 1 to the saved RIP and returns (IRETQ), so
 * random code resynchronises byte by byte; the #BP handler also counts, in the IST page, the
 * #BPs whose previous byte in the code page is 0xCC (not after F0: LOCK INT3 is a #UD on
 * hardware, a #BP in Unicorn).  Code that runs off the input's bytes
 * meets HLT (the rest of the code page).  Registers at entry point into the pages: rbx data A,
 * rsi data B, rdi read-only, rbp the code alias, r8 GDT, r9 IDT, rsp the stack.
 *
 * Input: a 64-byte header (missing bytes read as 0), then raw x86-64 code (at most 1 KiB) at
 * 0x400000:
 *    0  flags: bit 0 domain 1 (altp2m), 1 bring vCPU 1 up, 2 inguest_pagefault disabled,
 *       3 single-step vCPU 0 from the start, 4 guest requests async, 5 the responder drops
 *       VCPU_PAUSED from one answer (byte 54 says which), 6 single-step monitor off
 *    1  instruction budget: 100 + 10 * (b % 191)      2  schedule seed (0: round robin)
 *    3  vCPU 1's entry: 0x400000 + b % code length
 *    4..15   six host p2m settings: (page, access): page % 16 of the list below, access % 11
 *   16  altp2m: bit 0 two views (else one), bits 2-3 / 4-5 view of vCPU 0 / 1, bit 6/7 view
 *       1/2 invisible
 *   17..30  per view (7 bytes): default access, two (page, access), change_gfn (old, new)
 *   31..42  four answers (3 bytes each, used round robin): response flags (16 bits; VCPU_PAUSED
 *       and SET_REGISTERS are the responder's), actions: bit 0 move RIP past INT3/CPUID/ICEBP
 *       (SET_REGISTERS), 1 re-inject #BP/#DB (xc_hvm_inject_trap), 2 relax the page to rwx,
 *       3 fuzzed registers (SET_REGISTERS), 4-5 altp2m_idx, 6 SET_EMUL_READ_DATA, 7 restrict
 *       data B (or A) to r
 *   43..50  register seed; 51, 52: which registers it replaces (bits 0-13: rax rcx rdx rbx rsp
 *       rbp rsi rdi r8..r13, bit 14: RFLAGS, bit 15: RIP, within the code)
 *   53  CR monitors: bits 0-2 sync of CR0/CR3/CR4, 3-5 onchangeonly, 6-7 mask choice (only bits
 *       that do not change paging)
 *   54  the answer without VCPU_PAUSED (flags bit 5), 55 emul read size, 56..63 reserved
 * Pages for p2m settings (page % 16): code, data A, data B, read-only, stack, IST, GDT, IDT,
 * handlers, PT, PD, PDPT, PML4, spare 0, spare 1, spare 2.  change_gfn: old % 5 of code, data
 * A, data B, read-only, stack; new % 8 of spare 0, spare 1, spare 2, data A, data B,
 * read-only, code, none (remove).
 *
 * Invariants, after every sim_run and at the end of the input:
 *   - sim_run returns 0, with a known stop reason (never SIM_STOP_ERROR: vmisim's own
 *     failure), at most its budget (exactly it for LIMIT); Σ stop.insns = Σ the vCPUs'
 *     instruction counts;
 *   - no request lost or duplicated: posted = taken by the simulator + outstanding, and
 *     nothing outstanding once sim_run returns (the responder answers at once); the
 *     responder's answers = the simulator's takes;
 *   - Xen's pause accounting: each vCPU's pause count = its synchronous requests - the
 *     responses with VCPU_PAUSED applied to it; a paused vCPU is not runnable; nobody waits for
 *     a ring slot; while every answer was faithful, no vCPU is paused at all and sim_run never
 *     ends BLOCKED or DEADLOCK;
 *   - every request is well formed for what happened: vCPU id, version 7, ALTERNATE_P2M and
 *     altp2m_idx exactly when altp2m is active (the vCPU's view); MEM_ACCESS: GLA_VALID, one
 *     of FAULT_WITH_GLA / FAULT_IN_GPT, some of R/W/X, the GLA translates to gfn:offset (or,
 *     in a GPT, the gfn is a page table), a synchronous one violates the page's access in the
 *     vCPU's view; SOFTWARE_BREAKPOINT: 0xCC at RIP (after prefixes, as the vCPU sees it:
 *     its view's frame), gfn of RIP; CPUID: 0F A2 at RIP; DEBUG_EXCEPTION: ICEBP (type 5,
 *     F1 at RIP) or a single-step trap (type 3, length 0); WRITE_CTRLREG: index 0-2, old value
 *     = the register in the request, new != old; descriptor access: descriptor 1-4;
 *     SINGLESTEP only for a vCPU that single-steps;
 *   - guest memory the guest cannot write is unchanged: the read-only, GDT, IDT and handler
 *     pages (unless a CR0.WP/PG, CR3, CR4 or EFER change was requested or a vCPU ends with
 *     other paging registers), the spare frames and the page tables (A/D bits aside) unless a
 *     W mapping reaches them through change_gfn;
 *   - mem_access holds: a W-mapped page whose access forbids writes (n, r, x, rx) in the host
 *     and in every view for the whole input is unchanged, unless the responder relaxed a page,
 *     an EMULATE without NOWRITE was applied, or paging changed as above (the IST page is left
 *     out: exception frames bypass the p2m, docs/xen-differences.md);
 *   - every INT3 is reported while software_breakpoint is on: the guest saw no more #BPs from
 *     a 0xCC in the code page than the responder re-injected (unless the code page changed
 *     under the guest, an EMULATE was applied, an answer set fuzzed registers or an event
 *     came from inside the handlers: then the handler's count proves nothing);
 *   - determinism: every DET_PERIOD-th input runs twice from the snapshot and gives the same
 *     requests, stops, registers and memory (a fingerprint).
 * A broken invariant aborts with "FUZZ INVARIANT BROKEN"; "FUZZ SET-UP failed" is the
 * harness's own failure.  In the environment: FUZZ_GUEST_TRACE=1 prints every request,
 * response, scheduling decision and stop (and the end state of a doubled run);
 * FUZZ_GUEST_DET_PERIOD=N doubles every N-th input (1: each; to replay a determinism finding,
 * give the driver the inputs that ran before it); FUZZ_GUEST_PROFILE=1 prints, at exit, where
 * the CPU time of an execution went (restore, settings, guest run, checks).
 *
 * Guest memory is written only through sim/'s accessors: sim_gpa for the code right after the
 * restore (the restore has just dropped the translations of what the page held: sim_mem_write
 * would flush every vCPU's translated code), sim_mem_peek for every check (sim_gpa would count
 * every frame as written, and the next restore would copy them all back).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"
#include "guest_build_internal.h"
#include "sim_internal.h"

#define RAM (64u << 10)
#define NR_FRAMES (RAM / 4096)
#define VCPUS 2
#define SLOT 400
#define HDR 64
#define MAX_CODE 1024
#define MAX_RUNS 16
#define DET_PERIOD 8

enum {
    GFN_SPARE0 = 0, GFN_SPARE1 = 1, GFN_CODE = 2, GFN_DATA_A = 3, GFN_DATA_B = 4, GFN_RO = 5,
    GFN_STACK = 6, GFN_IST = 7, GFN_SYS = 8, GFN_IDT = 9, GFN_HANDLER = 10, GFN_SPARE2 = 11,
    GFN_TABLES = 12, /* 12-15: the page tables guest_build allocates, highest first */
};
#define GLA_CODE 0x400000ull
#define GLA_ALIAS 0x401000ull
#define GLA_DATA_A 0x402000ull
#define GLA_DATA_B 0x403000ull
#define GLA_RO 0x404000ull
#define GLA_STACK 0x405000ull
#define GLA_IST 0x406000ull
#define GLA_SYS 0x407000ull
#define GLA_IDT 0x408000ull
#define GLA_HANDLER 0x409000ull
#define GDT_LIMIT 0x4f  /* guest_build_gdt_user's 0x00-0x2f, TSS descriptors at 0x30 and 0x40 */
#define TSS_OFF 0x100   /* vCPU v's TSS at GLA_SYS + TSS_OFF + 0x80 * v */
#define BP_COUNT 0x0    /* IST page: #BPs from a 0xCC counted by the handler; +8: minus the same */

/* Handlers at GLA_HANDLER: no error code, error code, #BP (see the header comment). */
#define H_NOERR 0x00
#define H_ERR 0x10
#define H_BP 0x20
static const uint8_t h_noerr[] = {0x48, 0xff, 0x04, 0x24, 0x48, 0xcf}; /* inc qword [rsp]; iretq */
static const uint8_t h_err[] = {0x48, 0x83, 0xc4, 0x08, 0x48, 0xff, 0x04, 0x24, 0x48, 0xcf};
static const uint8_t h_bp[] = {
    0x50,                                     /* push rax */
    0x48, 0x8b, 0x44, 0x24, 0x08,             /* mov rax, [rsp+8]: the saved RIP */
    0x48, 0x2d, 0x01, 0x00, 0x40, 0x00,       /* sub rax, 0x400001 */
    0x48, 0x3d, 0xff, 0x0f, 0x00, 0x00,       /* cmp rax, 0xfff: RIP-1 in the code page? */
    0x77, 0x27,                               /* ja out */
    0x80, 0xb8, 0x00, 0x00, 0x40, 0x00, 0xcc, /* cmp byte [rax+0x400000], 0xcc */
    0x75, 0x1e,                               /* jne out */
    0x48, 0x85, 0xc0,                         /* test rax, rax */
    0x74, 0x09,                               /* jz count */
    0x80, 0xb8, 0xff, 0xff, 0x3f, 0x00, 0xf0, /* cmp byte [rax+0x3fffff], 0xf0: LOCK INT3 (#UD on */
    0x74, 0x10,                               /* je out      hardware: no event; Unicorn: #BP) */
    0x48, 0xff, 0x04, 0x25, 0x00, 0x60, 0x40, 0x00, /* count: inc qword [0x406000] */
    0x48, 0xff, 0x0c, 0x25, 0x08, 0x60, 0x40, 0x00, /* dec qword [0x406008] */
    0x58,                                     /* out: pop rax */
    0x48, 0xff, 0x04, 0x24, 0x48, 0xcf,       /* inc qword [rsp]; iretq */
};

/* Frame 1: what a view shows at the code gfn after change_gfn(code, spare 1). */
static const uint8_t alt_code[] = {
    0x0f, 0xa2,       /* cpuid */
    0xcc,             /* int3 */
    0x48, 0x89, 0x03, /* mov [rbx], rax */
    0x48, 0x89, 0x06, /* mov [rsi], rax */
    0xf1,             /* icebp */
    0xeb, 0xf4,       /* jmp to the start */
};

/* Set-up only: touches every page once (A/D bits set in the snapshot), then loops. */
static const uint8_t warm_code[] = {
    0x48, 0x89, 0x03,       /* mov [rbx], rax */
    0x48, 0x89, 0x06,       /* mov [rsi], rax */
    0x48, 0x8b, 0x07,       /* mov rax, [rdi] */
    0x48, 0x8b, 0x45, 0x00, /* mov rax, [rbp] (the alias) */
    0x50, 0x58,             /* push rax; pop rax */
    0xcd, 0x20, 0x90,       /* int 0x20 (the handler skips the nop) */
    0xcd, 0x0e, 0x90,       /* int 0x0e (with an error code) */
    0xcd, 0x03, 0x90,       /* int 3 (the #BP handler; not INT3, not counted) */
    0xe9,                   /* jmp GLA_CODE (rel32 below) */
};
#define WARM_OFF 0x800

/* The pages a p2m setting (page % 16) names, and change_gfn's old / new gfns. */
static const uint64_t p2m_pages[16] = {GFN_CODE, GFN_DATA_A, GFN_DATA_B, GFN_RO, GFN_STACK, GFN_IST,
                                       GFN_SYS, GFN_IDT, GFN_HANDLER, 12, 13, 14, 15,
                                       GFN_SPARE0, GFN_SPARE1, GFN_SPARE2};
static const uint64_t change_old[5] = {GFN_CODE, GFN_DATA_A, GFN_DATA_B, GFN_RO, GFN_STACK};
static const uint64_t change_new[8] = {GFN_SPARE0, GFN_SPARE1, GFN_SPARE2, GFN_DATA_A, GFN_DATA_B,
                                       GFN_RO, GFN_CODE, SIM_INVALID_GFN};
/* Guest mappings with W (the alias maps the code gfn): frames reached through them may change. */
static const uint64_t w_mapped[] = {GFN_CODE, GFN_DATA_A, GFN_DATA_B, GFN_STACK, GFN_IST};
/* Mapped without W: only the simulator could change them (while paging is the built one). */
static const uint64_t ro_mapped[] = {GFN_RO, GFN_SYS, GFN_IDT, GFN_HANDLER};

/* MSRs with mov_to_msr on (0x40000000 cannot be read by cpu/: a write raises #GP, no event). */
static const uint32_t msrs[] = {0xc0000080u, 0xc0000081u, 0xc0000082u, 0x174u, 0x277u, 0xc0000100u,
                                0x40000000u};
#define MSR_EFER 0xc0000080u

/* CR masks an input may choose: bits that never change how the guest's pages are mapped. */
static const uint64_t cr_masks[3][4] = {
    {0, 1u << 3, 0xe, 1u << 5},        /* CR0: TS; MP EM TS; NE */
    {0, 0x18, 0, 0x18},                /* CR3: PWT PCD */
    {0, 0xc, 0x600, 1u << 18},         /* CR4: TSD DE; OSFXSR OSXMMEXCPT; OSXSAVE */
};

/* ---- The two domains, built once ------------------------------------------------------- */

struct target {
    struct sim_domain *d;
    struct sim_snapshot *snap;
    struct ring_back *back;
    struct evtchn *evtchn;
    struct ring_back_state back0;
    struct cpu_regs boot[VCPUS];
    uint8_t ram0[RAM];
    bool altp2m;
};
static struct target T[2];

/* ---- One execution ------------------------------------------------------------------------ */

struct answer {
    uint16_t flags;
    uint8_t act;
};

struct page_access {
    uint8_t page, access;
};

struct view_settings {
    uint8_t def;
    struct page_access set[2];
    uint8_t old, new;
};

struct header {
    uint8_t flags, budget, seed, entry1;
    struct page_access p2m[6];
    uint8_t altp2m;
    struct view_settings view[2];
    struct answer ans[4];
    uint64_t reg_seed;
    uint16_t reg_mask;
    uint8_t cr, drop_at, emul_size;
};

static struct state {
    struct target *t;
    struct header h;
    const uint8_t *code;
    size_t code_len;
    uint64_t budget, cap;
    unsigned nviews;          /* altp2m views created by this input (1 or 2, domain 1 only) */
    bool changed[3][NR_FRAMES]; /* view v (1, 2) shows another frame at gfn g */
    uint64_t change_to[3][NR_FRAMES];
    /* The simulator's side, from the observer. */
    size_t nposted, ntaken;
    unsigned posted_sync[VCPUS], unpaused[VCPUS];
    bool unfaithful;          /* an answer did not name its vCPU or dropped VCPU_PAUSED */
    bool emulated;            /* an EMULATE response was applied (any kind) */
    bool emulated_write;      /* ... one whose writes reach memory (not EMULATE_NOWRITE) */
    bool wp_off;              /* CR0.WP may have been cleared: read-only mappings may be written */
    bool paging_changed;      /* CR0.PG, CR3, CR4 or EFER changed: any frame may be mapped */
    /* The responder. */
    size_t nanswered;
    bool relaxed, capped;
    unsigned reinjected_bp;
    bool fuzzed_regs;         /* an answer set fuzzed registers (any RIP, RFLAGS, pointers) */
    bool handler_event;       /* a request came from inside the exception handlers */
    /* Accounting. */
    uint64_t insns_run, insns0[VCPUS];
    /* Fingerprint (determinism runs only). */
    bool fingerprint;
    uint64_t fp;
} S;

static uint64_t executions;

/* ---- Profile (FUZZ_GUEST_PROFILE=1) -------------------------------------------------------- */

enum { PH_RESTORE, PH_SETTINGS, PH_RUN, PH_CHECKS, PH_N };
static const char *const ph_names[PH_N] = {"snapshot restore", "settings (code, p2m, altp2m, monitors)",
                                            "guest run (sim_run, events, responder)", "final checks"};
static bool profiling, tracing;
static uint64_t det_period = DET_PERIOD;
static double ph_ns[PH_N];
static uint64_t ph_runs;

/* CPU time of this thread: the phases' own cost, whatever else the machine runs. */
static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void profile_report(void)
{
    if (!ph_runs)
        return;
    double total = 0;
    for (int i = 0; i < PH_N; i++)
        total += ph_ns[i];
    fprintf(stderr, "fuzz guest profile: %llu executions, %.2f us of CPU time each:\n", (unsigned long long)ph_runs,
            total / 1e3 / (double)ph_runs);
    for (int i = 0; i < PH_N; i++)
        fprintf(stderr, "  %-42s %8.2f us (%4.1f %%)\n", ph_names[i], ph_ns[i] / 1e3 / (double)ph_runs,
                total > 0 ? 100.0 * ph_ns[i] / total : 0.0);
}

/* ---- Helpers ---------------------------------------------------------------------------------- */

/* A 64-bit hash, eight bytes at a time (FNV-1a's prime; byte by byte it cost ~1 ns a byte). */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static void fp_add(const void *p, size_t n)
{
    if (S.fingerprint)
        S.fp = hash_bytes(S.fp, p, n);
}

static uint64_t splitmix(uint64_t x)
{
    uint64_t z = x + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint8_t pattern(uint64_t gfn, unsigned i)
{
    return (uint8_t)(gfn * 0x9d + i * 0x3b + (i >> 8) * 7 + 1);
}

static bool has_error_code(unsigned v)
{
    /* cpu/'s list (cpu/cpu.c): it pushes an error code for these vectors, even for INT n. */
    return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21;
}

static bool write_protected(enum p2m_access a)
{
    return a == P2M_ACCESS_N || a == P2M_ACCESS_R || a == P2M_ACCESS_X || a == P2M_ACCESS_RX;
}

/* The gfn the vCPU reaches at `gla` now (its own page walk), or false. */
static bool translate(struct sim_vcpu *v, uint64_t gla, uint64_t *gpa)
{
    struct cpu_walk w;
    if (cpu_translate(v->cpu, gla, CPU_R, &w) < 0 || w.fault)
        return false;
    *gpa = w.gpa;
    return true;
}

/* `len` bytes at `gla` as the vCPU sees them (its view's frames), or false. */
static bool read_as_vcpu(struct sim_vcpu *v, uint64_t gla, uint8_t *out, unsigned len)
{
    for (unsigned i = 0; i < len; i++) {
        uint64_t gpa;
        if (!translate(v, gla + i, &gpa))
            return false;
        uint64_t gfn = gpa >> 12;
        struct sim_domain *d = v->domain;
        const struct sim_view *w = d->altp2m_active && v->view ? &d->views[v->view] : NULL;
        const uint8_t *f = w && gfn < NR_FRAMES && (w->changed[gfn / 64] >> (gfn % 64) & 1) ? w->frame_of[gfn]
                                                                                              : sim_frame(d, gfn);
        if (!f)
            return false;
        out[i] = f[gpa & 0xfff];
    }
    return true;
}

static bool is_table(uint64_t gfn)
{
    return gfn >= GFN_TABLES && gfn < NR_FRAMES;
}

/* ---- Set-up ----------------------------------------------------------------------------------- */

static void put_desc_tss(uint8_t *gdt, unsigned off, uint64_t base)
{
    uint8_t *e = gdt + off;
    memset(e, 0, 16);
    e[0] = 0x67; /* limit */
    e[2] = (uint8_t)base;
    e[3] = (uint8_t)(base >> 8);
    e[4] = (uint8_t)(base >> 16);
    e[5] = 0x8b; /* present, 64-bit TSS (busy) */
    e[7] = (uint8_t)(base >> 24);
    uint32_t hi = (uint32_t)(base >> 32);
    memcpy(e + 8, &hi, 4);
}

static void client_turn(void *opaque);
static void observer(void *opaque, const struct sim_note *n);

static void setup_memory(struct target *t, struct guest_build *b)
{
    struct sim_domain *d = t->d;
    uint8_t page[4096];
    for (uint64_t g = 0; g < GFN_TABLES; g++) {
        for (unsigned i = 0; i < 4096; i++)
            page[i] = g == GFN_STACK || g == GFN_IST ? 0 : pattern(g, i);
        if (g == GFN_SPARE1)
            memcpy(page, alt_code, sizeof(alt_code));
        if (g == GFN_CODE) {
            memset(page, 0xf4, sizeof(page)); /* HLT after whatever the input's code leaves */
            uint8_t jmp[5] = {0xe9};
            int32_t rel = WARM_OFF - 5;
            memcpy(jmp + 1, &rel, 4);
            memcpy(page, jmp, 5);
            memcpy(page + WARM_OFF, warm_code, sizeof(warm_code));
            rel = -(int32_t)(WARM_OFF + sizeof(warm_code) + 4);
            memcpy(page + WARM_OFF + sizeof(warm_code), &rel, 4);
        }
        if (g == GFN_HANDLER) {
            memset(page, 0xf4, sizeof(page));
            memcpy(page + H_NOERR, h_noerr, sizeof(h_noerr));
            memcpy(page + H_ERR, h_err, sizeof(h_err));
            memcpy(page + H_BP, h_bp, sizeof(h_bp));
        }
        if (g == GFN_IDT) {
            for (unsigned v = 0; v < 256; v++) {
                uint64_t h = GLA_HANDLER + (v == 3 ? H_BP : has_error_code(v) ? H_ERR : H_NOERR);
                uint8_t *e = page + 16 * v;
                memset(e, 0, 16);
                e[0] = (uint8_t)h;
                e[1] = (uint8_t)(h >> 8);
                e[2] = 0x08; /* selector: 64-bit code */
                e[4] = 1;    /* IST1 */
                e[5] = 0x8e; /* present, DPL 0, interrupt gate */
                e[6] = (uint8_t)(h >> 16);
                e[7] = (uint8_t)(h >> 24);
                uint32_t hi = (uint32_t)(h >> 32);
                memcpy(e + 8, &hi, 4);
            }
        }
        if (g == GFN_SYS) {
            memset(page, 0, sizeof(page));
            for (unsigned v = 0; v < VCPUS; v++) {
                uint8_t *tss = page + TSS_OFF + 0x80 * v;
                uint64_t ist = GLA_IST + 0x800 * (v + 1);
                memcpy(tss + 0x24, &ist, 8);
                memcpy(tss + 0x66, &(uint16_t){0x68}, 2); /* no I/O bitmap */
            }
        }
        FUZZ_SETUP(sim_mem_write(d, g << 12, page, sizeof(page)));
    }
    /* The GDT after the page is in place (guest_build writes it through its own pointer). */
    uint16_t limit = guest_build_gdt_user(b, GFN_SYS << 12);
    FUZZ_CHECK(limit == 0x2f, "FUZZ SET-UP: guest_build_gdt_user gave limit %#x, expected 0x2f", limit);
    uint8_t *gdt = sim_gpa(d, GFN_SYS << 12, 4096);
    FUZZ_CHECK(gdt != NULL, "FUZZ SET-UP: the GDT page is not RAM");
    for (unsigned v = 0; v < VCPUS; v++)
        put_desc_tss(gdt, 0x30 + 0x10 * v, GLA_SYS + TSS_OFF + 0x80 * v);
}

static void setup_regs(struct target *t, const struct guest_build *b)
{
    for (unsigned v = 0; v < VCPUS; v++) {
        struct cpu_regs *r = &t->boot[v];
        FUZZ_SETUP(sim_vcpu_get_regs(t->d, v, r));
        guest_build_boot_regs(b, r, GLA_CODE, GLA_SYS, GDT_LIMIT);
        r->idtr_base = GLA_IDT;
        r->idtr_limit = 0xfff;
        r->tr = (struct cpu_segment){.selector = (uint16_t)(0x30 + 0x10 * v), .base = GLA_SYS + TSS_OFF + 0x80 * v,
                                     .limit = 0x67, .attr = 0x8b};
        r->rax = 0x1000 + v;
        r->rbx = GLA_DATA_A;
        r->rcx = 0x10;
        r->rdx = 0;
        r->rsi = GLA_DATA_B;
        r->rdi = GLA_RO;
        r->rbp = GLA_ALIAS;
        r->rsp = GLA_STACK + 0xf00 - 0x800 * v;
        r->r8 = GLA_SYS;
        r->r9 = GLA_IDT;
        r->r10 = 0x40000000;
        r->r11 = 0xc0000080;
        r->r12 = 0x10;
        r->r13 = 1;
        r->r14 = (uint64_t)-1;
        r->r15 = GLA_HANDLER;
    }
    FUZZ_SETUP(sim_vcpu_set_regs(t->d, 0, &t->boot[0]));
}

static void setup_monitors(struct target *t)
{
    struct sim_domain *d = t->d;
    for (unsigned i = 0; i < 3; i++)
        FUZZ_SETUP(sim_monitor_write_ctrlreg(d, i, true, true, 0, false));
    FUZZ_SETUP(sim_monitor_control_registers(d));
    for (size_t i = 0; i < sizeof(msrs) / sizeof(msrs[0]); i++)
        FUZZ_SETUP(sim_monitor_mov_to_msr(d, msrs[i], true, msrs[i] == 0xc0000082u));
    FUZZ_SETUP(sim_monitor_software_breakpoint(d, true));
    FUZZ_SETUP(sim_monitor_cpuid(d, true));
    FUZZ_SETUP(sim_monitor_descriptor_access(d, true));
    FUZZ_SETUP(sim_monitor_debug_exceptions(d, true, true));
    FUZZ_SETUP(sim_monitor_guest_request(d, true, true, true));
    FUZZ_SETUP(sim_monitor_singlestep(d, true));
    FUZZ_SETUP(sim_monitor_emul_unimplemented(d, true));
    if (t->altp2m) {
        FUZZ_SETUP(sim_altp2m_set_mode(d, SIM_ALTP2M_MIXED));
        FUZZ_SETUP(sim_altp2m_set_domain_state(d, true));
    }
}

static void setup(struct target *t, bool altp2m)
{
    t->altp2m = altp2m;
    struct sim_config cfg = {.mode = CPU_MODE_LONG, .ram_size = RAM, .nr_vcpus = VCPUS, .nr_online = 1,
                             .quantum = 40, .hypercalls = SIM_HYPERCALL_XEN, .deadlock_timeout = 2000};
    FUZZ_SETUP(sim_domain_create(&t->d, &cfg));
    struct sim_domain *d = t->d;
    struct guest_build b;
    FUZZ_SETUP(guest_build_init(&b, sim_gpa(d, 0, RAM), RAM, CPU_MODE_LONG, GFN_TABLES << 12, RAM, NULL, 0));
    setup_memory(t, &b);
    static const struct { uint64_t gla, gfn; unsigned rights; } maps[] = {
        {GLA_CODE, GFN_CODE, GUEST_BUILD_X},   {GLA_ALIAS, GFN_CODE, GUEST_BUILD_W},
        {GLA_DATA_A, GFN_DATA_A, GUEST_BUILD_W}, {GLA_DATA_B, GFN_DATA_B, GUEST_BUILD_W},
        {GLA_RO, GFN_RO, 0},                   {GLA_STACK, GFN_STACK, GUEST_BUILD_W},
        {GLA_IST, GFN_IST, GUEST_BUILD_W},     {GLA_SYS, GFN_SYS, 0},
        {GLA_IDT, GFN_IDT, 0},                 {GLA_HANDLER, GFN_HANDLER, GUEST_BUILD_X},
    };
    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
        FUZZ_SETUP(guest_build_map(&b, maps[i].gla, maps[i].gfn << 12, 0x1000, 0x1000, maps[i].rights));
    FUZZ_CHECK(b.tables == 4, "FUZZ SET-UP: %u page-table frames, the layout expects 4 (gfns 12-15)", b.tables);
    setup_regs(t, &b);

    struct ring_fds fds;
    FUZZ_SETUP(sim_monitor_enable(d, 7, &fds));
    FUZZ_SETUP(ring_back_attach(&t->back, &fds, vme_slot_size(7), 0));
    FUZZ_SETUP(evtchn_open(&t->evtchn, &fds, RING_ABI_PORT_CLIENT));
    evtchn_mask(t->evtchn); /* the client polls on its turn */
    sim_set_client(d, client_turn, t);
    /* Every monitor before the warm-up: the one code flush happens now, not per input. */
    setup_monitors(t);

    /* Warm-up: every page touched (A/D bits), the handlers translated. */
    struct sim_stop stop;
    FUZZ_SETUP(sim_run(d, 2000, &stop));
    FUZZ_CHECK(stop.reason == SIM_STOP_LIMIT, "FUZZ SET-UP: the warm-up stopped with %d (%s)", stop.reason,
               stop.why);
    FUZZ_CHECK(sim_monitor_enabled(d) && ring_nr_outstanding(d->monitor.ring) == 0,
               "FUZZ SET-UP: the warm-up raised events");
    /* The code page becomes HLT; its translations go (the restore of every input does the same). */
    uint8_t *code = sim_gpa(d, GFN_CODE << 12, 4096);
    FUZZ_CHECK(code != NULL, "FUZZ SET-UP: the code page is not RAM");
    memset(code, 0xf4, 4096);
    for (unsigned v = 0; v < VCPUS; v++)
        FUZZ_SETUP(cpu_frame_written(d->vcpus[v].cpu, code));
    FUZZ_SETUP(sim_vcpu_set_regs(d, 0, &t->boot[0]));
    FUZZ_CHECK(sim_vcpu_state(d, 0) == SIM_VCPU_RUNNABLE, "FUZZ SET-UP: vCPU 0 is not runnable after the warm-up");

    sim_set_observer(d, observer, NULL);
    FUZZ_SETUP(sim_snapshot_take(d, &t->snap));
    ring_back_save(t->back, &t->back0);
    FUZZ_SETUP(sim_mem_peek(d, 0, t->ram0, RAM));
}

/* ---- The responder (an in-process client: its turn comes as soon as a request is posted) ---- */

static unsigned insn_length(const struct vme_msg *req)
{
    switch (req->reason) {
    case VME_REASON_SOFTWARE_BREAKPOINT:
    case VME_REASON_DEBUG_EXCEPTION: return req->u.debug.insn_length;
    case VME_REASON_CPUID: return req->u.cpuid.insn_length;
    default: return 0;
    }
}

static void fuzz_registers(struct vme_regs *r, uint64_t k)
{
    uint64_t *gpr[16] = {&r->rax, &r->rcx, &r->rdx, &r->rbx, &r->rsp, &r->rbp, &r->rsi, &r->rdi,
                         &r->r8,  &r->r9,  &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15};
    uint16_t mask = S.h.reg_mask;
    for (unsigned i = 0; i < 14; i++)
        if (mask & (1u << i))
            *gpr[i] = splitmix(S.h.reg_seed + 16 * k + i);
    if (mask & (1u << 14))
        r->rflags = (splitmix(S.h.reg_seed + 16 * k + 14) & 0xdd5) | 2; /* CF PF AF ZF SF TF DF OF */
    if (mask & (1u << 15))
        r->rip = GLA_CODE + splitmix(S.h.reg_seed + 16 * k + 15) % (S.code_len ? S.code_len : 1);
}

static void respond(struct target *t, const struct vme_msg *req, struct vme_msg *rsp)
{
    struct sim_domain *d = t->d;
    const struct answer *a = &S.h.ans[S.nanswered % 4];
    memset(rsp, 0, sizeof(*rsp));
    rsp->version = 7;
    rsp->vcpu_id = req->vcpu_id;
    rsp->reason = req->reason;
    rsp->u = req->u;
    rsp->flags = a->flags & ~(VME_FLAG_VCPU_PAUSED | VME_FLAG_SET_REGISTERS | VME_FLAG_SET_EMUL_READ_DATA);
    rsp->flags |= req->flags & VME_FLAG_VCPU_PAUSED;
    if ((S.h.flags & 0x20) && S.nanswered == S.h.drop_at % 8)
        rsp->flags &= ~VME_FLAG_VCPU_PAUSED;
    rsp->altp2m_idx = (uint16_t)((a->act >> 4) & 3);
    unsigned len = insn_length(req);
    if ((a->act & 1) && len) {
        rsp->flags |= VME_FLAG_SET_REGISTERS;
        rsp->regs = req->regs;
        rsp->regs.rip += len;
    } else if ((a->act & 2) && req->vcpu_id < VCPUS) {
        if (req->reason == VME_REASON_SOFTWARE_BREAKPOINT
            && sim_inject_trap(d, req->vcpu_id, 3, SIM_ET_SW_EXC, -1, len, 0) == 0)
            S.reinjected_bp++;
        if (req->reason == VME_REASON_DEBUG_EXCEPTION)
            (void)sim_inject_trap(d, req->vcpu_id, 1, req->u.debug.type, -1, len, 0);
    }
    if (a->act & 8) {
        if (!(rsp->flags & VME_FLAG_SET_REGISTERS))
            rsp->regs = req->regs;
        rsp->flags |= VME_FLAG_SET_REGISTERS;
        fuzz_registers(&rsp->regs, S.nanswered);
        S.fuzzed_regs = true;
    }
    if (a->act & 0x40) {
        rsp->flags |= VME_FLAG_SET_EMUL_READ_DATA;
        rsp->emul_read.size = S.h.emul_size;
        for (unsigned i = 0; i < sizeof(rsp->emul_read.data); i++)
            rsp->emul_read.data[i] = (uint8_t)(S.h.reg_seed >> (8 * (i % 8))) ^ (uint8_t)i;
    }
    if ((a->act & 4) && req->reason == VME_REASON_MEM_ACCESS && req->u.mem_access.gfn < NR_FRAMES) {
        uint64_t gfn = req->u.mem_access.gfn;
        FUZZ_CHECK(sim_set_mem_access(d, 7, gfn, 1) == 0, "relaxing gfn %#llx failed: %s",
                   (unsigned long long)gfn, sim_error(d));
        uint16_t view = 0;
        if (sim_altp2m_active(d) && sim_altp2m_get_vcpu_view(d, req->vcpu_id, &view) == 0 && view)
            FUZZ_CHECK(sim_altp2m_set_mem_access(d, view, gfn, 7) == 0, "relaxing gfn %#llx in view %u failed: %s",
                       (unsigned long long)gfn, view, sim_error(d));
        S.relaxed = true;
    }
    if (a->act & 0x80)
        FUZZ_CHECK(sim_set_mem_access(d, 1, S.nanswered & 1 ? GFN_DATA_A : GFN_DATA_B, 1) == 0,
                   "restricting a data page failed: %s", sim_error(d));
}

static void client_turn(void *opaque)
{
    struct target *t = opaque;
    uint8_t slot[SLOT];
    bool any = false;
    int rc;
    while ((rc = ring_back_take_request(t->back, slot)) == 0) {
        struct vme_msg req, rsp;
        vme_decode(7, slot, &req);
        respond(t, &req, &rsp);
        FUZZ_CHECK(vme_encode(7, &rsp, slot) == 0, "the answer to a %s request cannot be encoded",
                   vme_reason_name(req.reason) ? vme_reason_name(req.reason) : "unknown");
        FUZZ_CHECK(ring_back_put_response(t->back, slot) == 0, "the answer to request %zu found no room: %s",
                   S.nanswered + 1, ring_back_error(t->back));
        S.nanswered++;
        any = true;
        if (S.nanswered >= S.cap && !S.capped) {
            /* Enough: the toolstack pauses the domain (xc_domain_pause), the run ends BLOCKED. */
            FUZZ_CHECK(sim_domain_pause(t->d) == 0, "xc_domain_pause failed: %s", sim_error(t->d));
            S.capped = true;
        }
    }
    FUZZ_CHECK(rc == -EAGAIN, "the responder's take failed (%d) on a ring nobody corrupted: %s", rc,
               ring_back_error(t->back));
    if (any && ring_back_push_responses(t->back))
        evtchn_notify(t->evtchn);
}

/* ---- The observer: every request is checked as it is posted ------------------------------ */

static void check_request(struct sim_domain *d, unsigned vcpu, const struct vme_msg *m)
{
    FUZZ_CHECK(vcpu < VCPUS && m->vcpu_id == vcpu, "a request of vCPU %u names vCPU %u", vcpu, m->vcpu_id);
    FUZZ_CHECK(m->version == 7, "a request of version %u on a version 7 ring", m->version);
    struct sim_vcpu *v = &d->vcpus[vcpu];
    const char *reason = vme_reason_name(m->reason) ? vme_reason_name(m->reason) : "unknown";
    bool alt = sim_altp2m_active(d);
    FUZZ_CHECK(!!(m->flags & VME_FLAG_ALTERNATE_P2M) == alt, "a %s request %s ALTERNATE_P2M while altp2m is %s",
               reason, m->flags & VME_FLAG_ALTERNATE_P2M ? "carries" : "lacks", alt ? "active" : "inactive");
    if (alt) {
        uint16_t view = 0;
        FUZZ_CHECK(sim_altp2m_get_vcpu_view(d, vcpu, &view) == 0 && m->altp2m_idx == view,
                   "a %s request says view %u, vCPU %u is on view %u", reason, m->altp2m_idx, vcpu, view);
        FUZZ_CHECK(sim_altp2m_views(d) & (1u << view), "vCPU %u runs on view %u, which does not exist", vcpu, view);
    }
    uint8_t b[2];
    uint64_t gpa = 0;
    unsigned len;
    /* A vCPU on other page tables (VCPUOP_initialise sets any CR3 without an event): any frame may be mapped. */
    const struct cpu_regs *boot = &S.t->boot[vcpu];
    if (m->regs.cr3 != boot->cr3 || m->regs.cr4 != boot->cr4 || ((m->regs.cr0 ^ boot->cr0) & 0x80000001ull)
        || ((m->regs.msr_efer ^ boot->efer) & ~0x400ull))
        S.paging_changed = true;
    if (!(m->regs.cr0 & 0x10000))
        S.wp_off = true;
    switch (m->reason) {
    case VME_REASON_MEM_ACCESS: {
        uint32_t f = m->u.mem_access.flags;
        uint64_t gfn = m->u.mem_access.gfn;
        FUZZ_CHECK(f & VME_MEM_ACCESS_GLA_VALID, "a MEM_ACCESS request without GLA_VALID");
        FUZZ_CHECK(!(f & VME_MEM_ACCESS_FAULT_WITH_GLA) != !(f & VME_MEM_ACCESS_FAULT_IN_GPT),
                   "a MEM_ACCESS request with flags %#x: exactly one of FAULT_WITH_GLA and FAULT_IN_GPT", f);
        FUZZ_CHECK(f & (VME_MEM_ACCESS_R | VME_MEM_ACCESS_W | VME_MEM_ACCESS_X),
                   "a MEM_ACCESS request with no access kind (flags %#x)", f);
        FUZZ_CHECK(gfn < NR_FRAMES && m->u.mem_access.offset < 4096, "a MEM_ACCESS request for gfn %#llx offset %#llx",
                   (unsigned long long)gfn, (unsigned long long)m->u.mem_access.offset);
        if (f & VME_MEM_ACCESS_FAULT_WITH_GLA) {
            uint64_t want = gfn << 12 | m->u.mem_access.offset;
            FUZZ_CHECK(translate(v, m->u.mem_access.gla, &gpa) && gpa == want,
                       "a MEM_ACCESS request says gla %#llx is gpa %#llx; the vCPU's page walk says %#llx",
                       (unsigned long long)m->u.mem_access.gla, (unsigned long long)want,
                       (unsigned long long)gpa);
        } else if (!S.paging_changed) {
            FUZZ_CHECK(is_table(gfn), "a FAULT_IN_GPT request for gfn %#llx, which is no page table",
                       (unsigned long long)gfn);
        }
        if (m->flags & VME_FLAG_VCPU_PAUSED) {
            enum p2m_access a;
            FUZZ_CHECK(p2m_get_access(sim_vcpu_p2m(v), gfn, &a) == 0 && p2m_access_violates(a, f & 7),
                       "a synchronous MEM_ACCESS request (kinds %#x) for gfn %#llx, whose access %s in view %u "
                       "allows it", f & 7, (unsigned long long)gfn, p2m_access_name(a), v->view);
        }
        break;
    }
    case VME_REASON_SOFTWARE_BREAKPOINT:
        /* The VM exit's instruction length: prefixes and the 0xCC. */
        len = m->u.debug.insn_length;
        FUZZ_CHECK(len >= 1 && len <= 15 && read_as_vcpu(v, m->regs.rip + len - 1, b, 1) && b[0] == 0xcc,
                   "a SOFTWARE_BREAKPOINT of length %u at rip %#llx, where the vCPU has no 0xCC", len,
                   (unsigned long long)m->regs.rip);
        FUZZ_CHECK(translate(v, m->regs.rip, &gpa) && gpa >> 12 == m->u.debug.gfn,
                   "a SOFTWARE_BREAKPOINT for gfn %#llx, rip %#llx is in gfn %#llx", (unsigned long long)m->u.debug.gfn,
                   (unsigned long long)m->regs.rip, (unsigned long long)(gpa >> 12));
        break;
    case VME_REASON_CPUID:
        len = m->u.cpuid.insn_length;
        FUZZ_CHECK(len >= 2 && len <= 15 && read_as_vcpu(v, m->regs.rip + len - 2, b, 2) && b[0] == 0x0f
                       && b[1] == 0xa2,
                   "a CPUID request (length %u) at rip %#llx, where the vCPU has no CPUID", len,
                   (unsigned long long)m->regs.rip);
        break;
    case VME_REASON_DEBUG_EXCEPTION:
        if (m->u.debug.type == SIM_ET_PRI_SW_EXC)
            FUZZ_CHECK((len = m->u.debug.insn_length) >= 1 && len <= 15
                           && read_as_vcpu(v, m->regs.rip + len - 1, b, 1) && b[0] == 0xf1,
                       "an ICEBP DEBUG_EXCEPTION of length %u at rip %#llx, where the vCPU has no F1", len,
                       (unsigned long long)m->regs.rip);
        else
            FUZZ_CHECK(m->u.debug.type == SIM_ET_HW_EXC && m->u.debug.insn_length == 0,
                       "a DEBUG_EXCEPTION of type %u, length %u (expected ICEBP or a single-step trap)",
                       m->u.debug.type, m->u.debug.insn_length);
        break;
    case VME_REASON_WRITE_CTRLREG: {
        unsigned i = m->u.write_ctrlreg.index;
        FUZZ_CHECK(i <= 2, "a WRITE_CTRLREG request for index %u (only CR0, CR3, CR4 are monitored)", i);
        uint64_t cur = i == 0 ? m->regs.cr0 : i == 1 ? m->regs.cr3 : m->regs.cr4;
        FUZZ_CHECK(m->u.write_ctrlreg.old_value == cur && m->u.write_ctrlreg.new_value != cur,
                   "a WRITE_CTRLREG request for CR%u: old %#llx, new %#llx, the register %#llx", i == 0 ? 0 : i == 1 ? 3 : 4,
                   (unsigned long long)m->u.write_ctrlreg.old_value, (unsigned long long)m->u.write_ctrlreg.new_value,
                   (unsigned long long)cur);
        uint64_t diff = m->u.write_ctrlreg.new_value ^ cur;
        if (i == 0 && (diff & 0x80010000ull)) /* PG, WP */
            S.wp_off = true;
        if ((i == 0 && (diff & 0x80000001ull)) || i == 1 || i == 2)
            S.paging_changed = true;
        break;
    }
    case VME_REASON_MOV_TO_MSR:
        if (m->u.mov_to_msr.msr == MSR_EFER && m->u.mov_to_msr.new_value != m->u.mov_to_msr.old_value)
            S.paging_changed = true;
        break;
    case VME_REASON_DESCRIPTOR_ACCESS:
        FUZZ_CHECK(m->u.desc.descriptor >= 1 && m->u.desc.descriptor <= 4, "a DESCRIPTOR_ACCESS for descriptor %u",
                   m->u.desc.descriptor);
        break;
    case VME_REASON_SINGLESTEP:
        FUZZ_CHECK(v->single_step, "a SINGLESTEP request for vCPU %u, which does not single-step", vcpu);
        break;
    default:
        break;
    }
}

static void observer(void *opaque, const struct sim_note *n)
{
    (void)opaque;
    struct sim_domain *d = S.t->d;
    if (tracing) {
        const char *r = n->msg && vme_reason_name(n->msg->reason) ? vme_reason_name(n->msg->reason) : "";
        fprintf(stderr, "  [%u] %s %s%s%s rip %#llx flags %#x\n", n->vcpu,
                n->kind == SIM_NOTE_REQUEST ? "request" : n->kind == SIM_NOTE_RESPONSE ? "response"
                : n->kind == SIM_NOTE_IGNORED ? "ignored" : "note", r, n->msg ? "" : n->text, n->msg ? "" : "",
                n->msg ? (unsigned long long)n->msg->regs.rip : 0ull, n->msg ? n->msg->flags : 0u);
    }
    switch (n->kind) {
    case SIM_NOTE_REQUEST:
        FUZZ_CHECK(n->msg != NULL, "a REQUEST note without its message");
        check_request(d, n->vcpu, n->msg);
        if ((n->msg->regs.rip & ~0xfffull) == GLA_HANDLER)
            S.handler_event = true;
        if (n->msg->flags & VME_FLAG_VCPU_PAUSED)
            S.posted_sync[n->vcpu]++;
        S.nposted++;
        if (S.fingerprint) {
            uint8_t slot[SLOT];
            FUZZ_CHECK(vme_encode(7, n->msg, slot) == 0, "a posted request cannot be encoded again");
            fp_add(slot, sizeof(slot));
        }
        break;
    case SIM_NOTE_RESPONSE:
    case SIM_NOTE_IGNORED:
        FUZZ_CHECK(n->msg != NULL, "a RESPONSE/IGNORED note without its message");
        FUZZ_CHECK(S.ntaken < S.nposted, "the simulator took response %zu with only %zu requests posted",
                   S.ntaken + 1, S.nposted);
        if (n->kind == SIM_NOTE_IGNORED || !(n->msg->flags & VME_FLAG_VCPU_PAUSED))
            S.unfaithful = true;
        if (n->kind == SIM_NOTE_RESPONSE) {
            FUZZ_CHECK(n->vcpu < VCPUS, "a response applied to vCPU %u of %u", n->vcpu, VCPUS);
            if (n->msg->flags & VME_FLAG_VCPU_PAUSED)
                S.unpaused[n->vcpu]++;
            if (n->msg->flags & VME_FLAG_EMULATE) {
                S.emulated = true;
                if (!(n->msg->flags & VME_FLAG_EMULATE_NOWRITE) || (n->msg->flags & VME_FLAG_SET_EMUL_READ_DATA))
                    S.emulated_write = true;
            }
        }
        S.ntaken++;
        fp_add(&n->kind, sizeof(n->kind));
        break;
    default:
        break;
    }
}

/* ---- Invariants ------------------------------------------------------------------------------ */

static void check_after_run(const struct sim_stop *stop)
{
    struct sim_domain *d = S.t->d;
    struct sim_monitor *m = &d->monitor;
    FUZZ_CHECK(m->ring != NULL, "the monitor ring is gone");
    uint32_t out = ring_nr_outstanding(m->ring);
    FUZZ_CHECK(S.nposted == S.ntaken + out, "requests lost or duplicated: %zu posted, %zu taken, %u outstanding",
               S.nposted, S.ntaken, out);
    FUZZ_CHECK(S.ntaken == S.nanswered, "the responder answered %zu requests, the simulator took %zu",
               S.nanswered, S.ntaken);
    if (stop->reason != SIM_STOP_CRASHED)
        FUZZ_CHECK(out == 0, "%u request(s) outstanding after sim_run (stop %d), though the responder answers "
                   "every request at once", out, stop->reason);
    FUZZ_CHECK(m->waitq_len == 0, "%u vCPU(s) wait for a ring slot; the responder keeps the ring empty", m->waitq_len);
    for (unsigned v = 0; v < VCPUS; v++) {
        unsigned pc = sim_vcpu_pause_count(d, v);
        FUZZ_CHECK(pc == S.posted_sync[v] - S.unpaused[v],
                   "vCPU %u: pause count %u, but %u synchronous requests and %u unpausing responses", v, pc,
                   S.posted_sync[v], S.unpaused[v]);
        if (pc)
            FUZZ_CHECK(sim_vcpu_state(d, v) != SIM_VCPU_RUNNABLE, "vCPU %u is runnable with pause count %u", v, pc);
        if (!S.unfaithful && out == 0)
            FUZZ_CHECK(pc == 0, "vCPU %u left paused (count %u) though every request was answered with VCPU_PAUSED",
                       v, pc);
        FUZZ_CHECK(!d->vcpus[v].waiting_slot, "vCPU %u waits for a ring slot", v);
    }
    if (!S.unfaithful && !S.capped)
        FUZZ_CHECK(stop->reason != SIM_STOP_BLOCKED && stop->reason != SIM_STOP_DEADLOCK,
                   "sim_run ended %s with every request answered faithfully and the domain not paused: %s",
                   stop->reason == SIM_STOP_BLOCKED ? "BLOCKED" : "DEADLOCK", stop->why);
    uint64_t ran = 0;
    for (unsigned v = 0; v < VCPUS; v++)
        ran += sim_vcpu_insns(d, v) - S.insns0[v];
    FUZZ_CHECK(ran == S.insns_run, "the vCPUs count %llu instructions, sim_run reported %llu",
               (unsigned long long)ran, (unsigned long long)S.insns_run);
}

/* Frames a guest write may reach: through a W mapping, in the host or in any view. */
static void writable_frames(bool out[NR_FRAMES])
{
    memset(out, 0, NR_FRAMES);
    for (size_t i = 0; i < sizeof(w_mapped) / sizeof(w_mapped[0]); i++) {
        uint64_t g = w_mapped[i];
        out[g] = true;
        for (unsigned v = 1; v <= S.nviews; v++)
            if (S.changed[v][g] && S.change_to[v][g] < NR_FRAMES)
                out[S.change_to[v][g]] = true;
    }
}

/* Each gfn's access in the host and in views 1, 2 as the input set them, before the guest ran. */
static enum p2m_access start_host[NR_FRAMES], start_view[3][NR_FRAMES];

/* Does the p2m forbid every guest write to frame g (identity-mapped) for the whole input? */
static bool p2m_protects(uint64_t g)
{
    if (!write_protected(start_host[g]))
        return false;
    for (unsigned v = 1; v <= S.nviews; v++) {
        if (S.changed[v][g] || !write_protected(start_view[v][g]))
            return false;
        for (size_t i = 0; i < sizeof(w_mapped) / sizeof(w_mapped[0]); i++)
            if (S.changed[v][w_mapped[i]] && S.change_to[v][w_mapped[i]] == g)
                return false;
    }
    return true;
}

static void record_start_access(struct sim_domain *d)
{
    for (uint64_t g = 0; g < NR_FRAMES; g++) {
        FUZZ_CHECK(p2m_get_access(d->host_p2m, g, &start_host[g]) == 0, "gfn %llu has no access", (unsigned long long)g);
        for (unsigned v = 1; v <= S.nviews; v++)
            FUZZ_CHECK(p2m_get_access(d->views[v].p2m, g, &start_view[v][g]) == 0, "gfn %llu has no access in view %u",
                       (unsigned long long)g, v);
    }
}

/*
 * Guest RAM as it is now, read with sim_mem_peek once per check: sim_gpa would count every frame
 * as written, and the next restore would copy all of them back and drop their translated code.
 */
static uint8_t ram_now[RAM];
static bool ram_now_valid;

static const uint8_t *guest_ram(void)
{
    if (!ram_now_valid) {
        int rc = sim_mem_peek(S.t->d, 0, ram_now, RAM);
        FUZZ_CHECK(rc == 0, "guest RAM cannot be read (%d): %s", rc, sim_error(S.t->d));
        ram_now_valid = true;
    }
    return ram_now;
}

static void first_difference(const uint8_t *a, const uint8_t *b, uint64_t gfn, const char *what)
{
    if (memcmp(a, b, 4096) == 0)
        return;
    unsigned off = 0;
    while (off < 4096 && a[off] == b[off])
        off++;
    FUZZ_CHECK(off == 4096, "%s: gpa %#llx was %#04x, is %#04x", what, (unsigned long long)(gfn << 12 | off), b[off],
               a[off]);
}

static void check_memory(void)
{
    struct sim_domain *d = S.t->d;
    const uint8_t *ram = guest_ram();
    const uint8_t *ram0 = S.t->ram0;
    bool w[NR_FRAMES];
    writable_frames(w);
    /* Paging registers as built (a VCPUOP_initialise from the guest sets them without an event). */
    for (unsigned v = 0; v < VCPUS; v++) {
        struct cpu_regs r;
        FUZZ_CHECK(sim_vcpu_get_regs(d, v, &r) == 0, "vCPU %u's registers cannot be read: %s", v, sim_error(d));
        const struct cpu_regs *b = &S.t->boot[v];
        if (!d->vcpus[v].initialised)
            continue; /* vCPU 1 never came up */
        if (r.cr3 != b->cr3 || ((r.cr0 ^ b->cr0) & 0x80000001ull) || r.cr4 != b->cr4
            || ((r.efer ^ b->efer) & ~0x400ull))
            S.paging_changed = true;
        if (!(r.cr0 & 0x10000))
            S.wp_off = true;
    }
    uint8_t expect[4096];
    for (uint64_t g = 0; g < NR_FRAMES; g++) {
        const uint8_t *now = ram + g * 4096, *then = ram0 + g * 4096;
        if (g == GFN_CODE) {
            memcpy(expect, then, 4096);
            memcpy(expect, S.code, S.code_len);
            then = expect;
        }
        if (w[g] || S.paging_changed)
            continue;
        if (is_table(g)) {
            if (memcmp(now, then, 4096) == 0)
                continue;
            for (unsigned i = 0; i < 4096; i += 8) {
                uint64_t a, b;
                memcpy(&a, now + i, 8);
                memcpy(&b, then + i, 8);
                FUZZ_CHECK(((a ^ b) & ~0x60ull) == 0,
                           "page table gfn %llu (mapped nowhere) changed beyond its A/D bits: entry %u was %#llx, is %#llx",
                           (unsigned long long)g, i / 8, (unsigned long long)b, (unsigned long long)a);
            }
            continue;
        }
        bool ro = false;
        for (size_t i = 0; i < sizeof(ro_mapped) / sizeof(ro_mapped[0]); i++)
            ro |= ro_mapped[i] == g;
        if (ro && S.wp_off)
            continue;
        first_difference(now, then, g, ro ? "a page the guest maps read-only changed"
                                          : "a frame no guest mapping reaches changed");
    }
    /* mem_access: a write-protected page stays as it was. */
    if (S.relaxed || S.emulated_write || S.paging_changed)
        return;
    for (size_t i = 0; i < sizeof(w_mapped) / sizeof(w_mapped[0]); i++) {
        uint64_t g = w_mapped[i];
        if (g == GFN_IST || !p2m_protects(g))
            continue;
        const uint8_t *then = ram0 + g * 4096;
        if (g == GFN_CODE) {
            memcpy(expect, then, 4096);
            memcpy(expect, S.code, S.code_len);
            then = expect;
        }
        first_difference(ram + g * 4096, then, g, "a write reached a page whose p2m access forbids writes (no "
                                                  "relax, no emulation)");
    }
}

/* Every INT3 in the code page reached the monitor: the guest's own #BP count is no higher than the re-injections. */
static void check_breakpoints(void)
{
    const uint8_t *ram = guest_ram();
    uint64_t seen, minus;
    memcpy(&seen, ram + (GFN_IST << 12) + BP_COUNT, 8);
    memcpy(&minus, ram + (GFN_IST << 12) + BP_COUNT + 8, 8);
    if (seen + minus != 0 || S.emulated || S.paging_changed || S.fuzzed_regs || S.handler_event)
        return; /* the guest wrote over the counters, an emulated INT3 may have been delivered, or
                   the handler's own run was steered (registers set by an answer, events inside it) */
    for (unsigned v = 1; v <= S.nviews; v++)
        if (S.changed[v][GFN_CODE])
            return; /* the handler reads the host's code page, the vCPU ran another frame */
    const uint8_t *code = ram + (GFN_CODE << 12);
    if (memcmp(code, S.code, S.code_len) != 0 || memcmp(code + S.code_len, S.t->ram0 + (GFN_CODE << 12) + S.code_len,
                                                        4096 - S.code_len) != 0)
        return; /* self-modified code: cpu/ rescans only on a new block size (cpu/cpu.h) */
    FUZZ_CHECK(seen <= S.reinjected_bp,
               "the guest took %llu #BP from an INT3 in its code page, the responder re-injected %u: an INT3 ran "
               "without a SOFTWARE_BREAKPOINT event while software_breakpoint monitoring is on",
               (unsigned long long)seen, S.reinjected_bp);
}

/* ---- One execution ---------------------------------------------------------------------------- */

static void parse(const uint8_t *data, size_t size)
{
    uint8_t h[HDR];
    memset(h, 0, sizeof(h));
    memcpy(h, data, size < HDR ? size : HDR);
    struct header *x = &S.h;
    x->flags = h[0];
    x->budget = h[1];
    x->seed = h[2];
    x->entry1 = h[3];
    for (unsigned i = 0; i < 6; i++) {
        x->p2m[i].page = h[4 + 2 * i];
        x->p2m[i].access = h[5 + 2 * i];
    }
    x->altp2m = h[16];
    for (unsigned v = 0; v < 2; v++) {
        const uint8_t *p = h + 17 + 7 * v;
        x->view[v].def = p[0];
        for (unsigned k = 0; k < 2; k++) {
            x->view[v].set[k].page = p[1 + 2 * k];
            x->view[v].set[k].access = p[2 + 2 * k];
        }
        x->view[v].old = p[5];
        x->view[v].new = p[6];
    }
    for (unsigned i = 0; i < 4; i++) {
        x->ans[i].flags = (uint16_t)(h[31 + 3 * i] | h[32 + 3 * i] << 8);
        x->ans[i].act = h[33 + 3 * i];
    }
    memcpy(&x->reg_seed, h + 43, 8);
    x->reg_mask = (uint16_t)(h[51] | h[52] << 8);
    x->cr = h[53];
    x->drop_at = h[54];
    x->emul_size = h[55];
    S.code = size > HDR ? data + HDR : data;
    S.code_len = size > HDR ? size - HDR : 0;
    if (S.code_len > MAX_CODE)
        S.code_len = MAX_CODE;
    S.budget = 100 + 10 * (uint64_t)(x->budget % 191);
}

static void trace_decision(void *opaque, const struct sim_schedule *sc)
{
    (void)opaque;
    fprintf(stderr, "  schedule %llu: vCPU %u for %llu instructions\n", (unsigned long long)sc->n, sc->vcpu,
            (unsigned long long)sc->quantum);
}

static void apply_settings(void)
{
    struct target *t = S.t;
    struct sim_domain *d = t->d;
    const struct header *h = &S.h;
    /* The code, right after the restore dropped the translations of what the page held. */
    uint8_t *code = sim_gpa(d, GFN_CODE << 12, 4096);
    FUZZ_CHECK(code != NULL, "the code page is not RAM after a restore");
    memcpy(code, S.code, S.code_len);
    for (unsigned i = 0; i < 6; i++) {
        uint64_t g = p2m_pages[h->p2m[i].page % 16];
        unsigned a = h->p2m[i].access % 11;
        FUZZ_CHECK(sim_set_mem_access(d, a, g, 1) == 0, "xc_set_mem_access(%u, gfn %llu) failed: %s", a,
                   (unsigned long long)g, sim_error(d));
    }
    if (t->altp2m) {
        S.nviews = 1 + (h->altp2m & 1);
        for (unsigned v = 1; v <= S.nviews; v++) {
            const struct view_settings *w = &h->view[v - 1];
            uint16_t idx;
            FUZZ_CHECK(sim_altp2m_create_view(d, w->def % 11, &idx) == 0 && idx == v,
                       "xc_altp2m_create_view gave view %u (expected %u): %s", idx, v, sim_error(d));
            for (unsigned k = 0; k < 2; k++) {
                uint64_t g = p2m_pages[w->set[k].page % 16];
                unsigned a = w->set[k].access % 11;
                FUZZ_CHECK(sim_altp2m_set_mem_access(d, idx, g, a) == 0, "xc_altp2m_set_mem_access(view %u, gfn %llu, "
                           "%u) failed: %s", v, (unsigned long long)g, a, sim_error(d));
            }
            uint64_t old = change_old[w->old % 5], new = change_new[w->new % 8];
            if (new != old) {
                FUZZ_CHECK(sim_altp2m_change_gfn(d, idx, old, new) == 0, "xc_altp2m_change_gfn(view %u, %llu, %llu) "
                           "failed: %s", v, (unsigned long long)old, (unsigned long long)new, sim_error(d));
                S.changed[v][old] = new != SIM_INVALID_GFN;
                S.change_to[v][old] = new;
            }
            if (h->altp2m & (0x40u << (v - 1)))
                FUZZ_CHECK(sim_altp2m_set_visibility(d, idx, false) == 0, "xc_altp2m_set_visibility failed: %s",
                           sim_error(d));
        }
        for (unsigned c = 0; c < VCPUS; c++) {
            uint16_t view = (uint16_t)(((h->altp2m >> (2 + 2 * c)) & 3) % (S.nviews + 1));
            FUZZ_CHECK(sim_altp2m_set_vcpu_view(d, c, view) == 0, "vCPU %u cannot go to view %u: %s", c, view,
                       sim_error(d));
        }
    }
    record_start_access(d);
    /* Monitor settings that do not change cpu/'s intercept mask (no code flush). */
    for (unsigned i = 0; i < 3; i++) {
        bool sync = (h->cr >> i) & 1, once = (h->cr >> (3 + i)) & 1;
        uint64_t mask = cr_masks[i][h->cr >> 6];
        if (sync && !once && !mask)
            continue; /* as set up */
        FUZZ_CHECK(sim_monitor_write_ctrlreg(d, i, false, false, 0, false) == 0
                   && sim_monitor_write_ctrlreg(d, i, true, sync, mask, once) == 0,
                   "write_ctrlreg %u cannot be set again: %s", i, sim_error(d));
    }
    if (h->flags & 4)
        FUZZ_CHECK(sim_monitor_inguest_pagefault(d, true) == 0, "inguest_pagefault: %s", sim_error(d));
    if (h->flags & 0x10)
        FUZZ_CHECK(sim_monitor_guest_request(d, false, false, false) == 0
                   && sim_monitor_guest_request(d, true, false, true) == 0, "guest_request: %s", sim_error(d));
    if (h->flags & 0x40)
        FUZZ_CHECK(sim_monitor_singlestep(d, false) == 0, "singlestep: %s", sim_error(d));
    if (h->flags & 8)
        FUZZ_CHECK(sim_debug_control_singlestep(d, 0, true) == 0, "debug_control: %s", sim_error(d));
    if (h->flags & 2) {
        struct cpu_regs r = t->boot[1];
        r.rip = GLA_CODE + (S.code_len ? h->entry1 % S.code_len : 0);
        FUZZ_CHECK(sim_vcpu_initialise(d, 1, &r) == 0 && sim_vcpu_up(d, 1) == 0, "vCPU 1 cannot come up: %s",
                   sim_error(d));
    }
    sim_set_seed(d, h->seed);
    sim_set_schedule_observer(d, tracing ? trace_decision : NULL, NULL);
    for (unsigned v = 0; v < VCPUS; v++)
        S.insns0[v] = sim_vcpu_insns(d, v);
}

static void run_guest(void)
{
    struct sim_domain *d = S.t->d;
    uint64_t left = S.budget;
    for (unsigned k = 0; k < MAX_RUNS && left; k++) {
        struct sim_stop stop;
        memset(&stop, 0xa5, sizeof(stop));
        int rc = sim_run(d, left, &stop);
        FUZZ_CHECK(rc == 0, "sim_run returned %d (%s): %s", rc, strerror(-rc), sim_error(d));
        FUZZ_CHECK(stop.reason >= SIM_STOP_LIMIT && stop.reason <= SIM_STOP_DEADLOCK, "sim_run stopped with reason %d",
                   (int)stop.reason);
        FUZZ_CHECK(memchr(stop.why, 0, sizeof(stop.why)) != NULL, "stop.why is not a string");
        FUZZ_CHECK(stop.reason != SIM_STOP_ERROR, "sim_run failed (SIM_STOP_ERROR, vCPU %u): %s", stop.vcpu, stop.why);
        FUZZ_CHECK(stop.insns <= left, "sim_run ran %llu instructions of a budget of %llu",
                   (unsigned long long)stop.insns, (unsigned long long)left);
        FUZZ_CHECK(stop.reason != SIM_STOP_LIMIT || stop.insns == left,
                   "sim_run stopped at its LIMIT after %llu of %llu instructions", (unsigned long long)stop.insns,
                   (unsigned long long)left);
        left -= stop.insns;
        S.insns_run += stop.insns;
        if (tracing)
            fprintf(stderr, "  sim_run(%llu): stop %d after %llu instructions %s\n", (unsigned long long)left + stop.insns,
                    stop.reason, (unsigned long long)stop.insns, stop.why);
        fp_add(&stop.reason, sizeof(stop.reason));
        fp_add(&stop.insns, sizeof(stop.insns));
        check_after_run(&stop);
        if (stop.reason != SIM_STOP_EVENT)
            break;
    }
}

static void trace_words(const uint64_t *w, size_t n)
{
    static const char *const names[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10",
                                        "r11", "r12", "r13", "r14", "r15", "rip", "rflags", "cr0", "cr2", "cr3",
                                        "cr4", "efer", "insns", "state", "pause"};
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "    %-6s %#llx\n", names[i], (unsigned long long)w[i]);
}

/* The machine's state at the end, for the determinism check. */
static void fingerprint_state(void)
{
    struct sim_domain *d = S.t->d;
    for (unsigned v = 0; v < VCPUS; v++) {
        struct cpu_regs r;
        memset(&r, 0, sizeof(r));
        FUZZ_CHECK(sim_vcpu_get_regs(d, v, &r) == 0, "vCPU %u's registers cannot be read", v);
        uint64_t words[] = {r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11,
                            r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags, r.cr0, r.cr2, r.cr3, r.cr4, r.efer,
                            sim_vcpu_insns(d, v), (uint64_t)sim_vcpu_state(d, v), sim_vcpu_pause_count(d, v)};
        fp_add(words, sizeof(words));
        if (tracing)
        {
            fprintf(stderr, "  vCPU %u at the end:\n", v);
            trace_words(words, sizeof(words) / 8);
        }
    }
    fp_add(guest_ram(), RAM);
    if (tracing)
        for (uint64_t g = 0; g < NR_FRAMES; g++)
            fprintf(stderr, "  frame %2llu: hash %016llx\n", (unsigned long long)g,
                    (unsigned long long)hash_bytes(0, guest_ram() + g * 4096, 4096));
}

static uint64_t execute(struct target *t, const uint8_t *data, size_t size, bool fingerprint)
{
    if (tracing) {
        fprintf(stderr, "execution %llu, domain %d%s, input ", (unsigned long long)executions, t == &T[1],
                fingerprint ? " (fingerprinted)" : "");
        for (size_t i = 0; i < size; i++)
            fprintf(stderr, "%02x", data[i]);
        fputc('\n', stderr);
    }
    double t0 = profiling ? now_ns() : 0;
    memset(&S, 0, sizeof(S));
    S.t = t;
    FUZZ_CHECK(sim_snapshot_restore(t->d, t->snap) == 0, "the snapshot does not restore: %s", sim_error(t->d));
    FUZZ_CHECK(ring_back_restore(t->back, &t->back0) == 0, "the responder's ring state does not restore");
    double t1 = profiling ? now_ns() : 0;
    parse(data, size);
    S.fingerprint = fingerprint;
    S.fp = 0xcbf29ce484222325ull;
    S.cap = S.budget + 16;
    apply_settings();
    double t2 = profiling ? now_ns() : 0;
    run_guest();
    double t3 = profiling ? now_ns() : 0;
    ram_now_valid = false;
    check_memory();
    check_breakpoints();
    if (fingerprint)
        fingerprint_state();
    if (profiling) {
        double t4 = now_ns();
        ph_ns[PH_RESTORE] += t1 - t0;
        ph_ns[PH_SETTINGS] += t2 - t1;
        ph_ns[PH_RUN] += t3 - t2;
        ph_ns[PH_CHECKS] += t4 - t3;
        ph_runs++;
    }
    return S.fp;
}

static void setup_all(void)
{
    const char *p = getenv("FUZZ_GUEST_PROFILE");
    profiling = p && *p && *p != '0';
    p = getenv("FUZZ_GUEST_TRACE");
    tracing = p && *p && *p != '0';
    p = getenv("FUZZ_GUEST_DET_PERIOD");
    if (p && strtoull(p, NULL, 0) > 0)
        det_period = strtoull(p, NULL, 0);
    if (profiling)
        atexit(profile_report);
    setup(&T[0], false);
    setup(&T[1], true);
}

/* libFuzzer (and tests/fuzz/driver.c) call this once, before the first input. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setup_all();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!T[0].d)
        setup_all(); /* AFL++'s driver, or one without the initialiser */
    struct target *t = &T[size ? data[0] & 1 : 0];
    if (++executions % det_period == 0) {
        uint64_t a = execute(t, data, size, true);
        uint64_t b = execute(t, data, size, true);
        FUZZ_CHECK(a == b, "the same input from the same snapshot ran differently (fingerprints %#llx, %#llx): "
                   "requests, stops, registers or memory differ", (unsigned long long)a, (unsigned long long)b);
    } else {
        execute(t, data, size, false);
    }
    return 0;
}
