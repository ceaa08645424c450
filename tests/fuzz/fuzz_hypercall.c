/*
 * tests/fuzz/fuzz_hypercall.c — hypercall arguments: a guest that makes whatever
 * hypercalls the input describes, with whatever registers and guest buffers.
 *
 * Four guests, built once: the Xen ABI in long mode and in 32-bit PAE (3 vCPUs, only vCPU
 * 0 up: vcpu_op may bring the others up with the input's vcpu_hvm_context), the KVM ABI
 * in long mode and in 32-bit PAE (the introspector of a fifth domain, whose map token
 * sits in the guest's read-only page, for KVM_HC_MEM_MAP/UNMAP).  vCPU 0 runs a loop
 * (below) over a script of descriptors in guest memory: load RAX, RBX, RCX, RDX, RSI,
 * RDI, R8, R10 (32-bit: EAX..EDI), VMCALL or VMMCALL, store RAX into the descriptor,
 * next.  Every guest has a monitor ring (interface version 7) whose client is the
 * harness: it answers GUEST_REQUESTs faithfully, at once, late, or only at the end.
 *
 * The guest's view of memory (the same GLAs in both modes):
 *   0x400000  code, read + execute            (gpa 0x10000)
 *   0x600000  script: header + descriptors, rw (gpa 0x20000, 2 pages)
 *   0x602000  scratch: a 256-byte slot per hypercall, rw (gpa 0x22000, 4 pages)
 *   0x606000  read-only page (the KVM token, a pattern) (gpa 0x26000)
 *   GDT       read-only, at the top of the address space (gpa 0x27000)
 *   anything else: not mapped; the page tables (top of RAM) are not mapped either.
 * Pointer arguments usually point into the hypercall's scratch slot, sometimes just
 * before the read-only page (a buffer crossing into it), into it (crossing its end into
 * nothing), into unmapped or non-canonical space, or anywhere.
 *
 * Invariants, after every sim_run and at the end:
 *   - sim_run returns 0 with a known stop reason other than SIM_STOP_ERROR, within its
 *     instruction budget; the simulator still answers (one more run at the end);
 *   - every hypercall vCPU 0 made got 0 or a negative errno, and the right one where the
 *     rules of the call decide it: -ENOSYS (KVM: -KVM_ENOSYS) for an undeclared number or
 *     sub-op, -EFAULT exactly when a buffer the call reads is not readable (an address
 *     the harness knows is unmapped, non-canonical, or crossing into such a page), 0 for
 *     a readable one, -ENOENT for a vCPU id the domain does not have, -EINVAL for a
 *     guest request with a non-NULL argument, 1 only from VCPUOP_is_up;
 *   - a hypercall writes guest memory only where it may: Xen's copy_to_guest goes through
 *     the guest's page walk with the write bit in the error code (hvm_copy_to_guest_linear,
 *     __hvm_copy: a read-only or absent mapping is -EFAULT), so no hypercall writes the
 *     read-only page, the page tables, or memory mapped nowhere.  All of RAM but the
 *     guest-writable script and scratch pages is compared with the snapshot (the page
 *     tables ignoring their accessed/dirty bits), and the KVM target's RAM outside the
 *     pages KVM_HC_MEM_MAP mapped;
 *   - Xen's pause accounting: each vCPU's pause count is its synchronous requests still
 *     outstanding on the ring (the client is faithful, so none left paused without its
 *     event); a paused vCPU has a reason; the wait queue is consistent;
 *   - a GUEST_REQUEST only while the monitor asked for it.
 * A vCPU brought up with a context that escapes the page tables the harness built (another
 * CR3, CR0.WP clear, ...) may write any memory as a guest: the memory check is skipped
 * for that input, and the result checks whenever a second vCPU ran the script.  With
 * FUZZ_HYPERCALL_VERBOSE set, one line per input says what was checked.
 *
 * Input format (missing bytes read as 0):
 *   byte 0   domain: % 4: 0 Xen long mode, 1 Xen PAE, 2 KVM long mode, 3 KVM PAE
 *   byte 1   controls: bit 0 guest_request monitor on, bit 1 sync, bit 2 allow_userspace;
 *            bits 3-4 the client: 0 and 3 answer at every stop, 1 every other stop,
 *            2 only at the end
 *   then up to 64 hypercalls, each
 *     sel8      the call: sel % number of the ABI's templates (below)
 *     flags8    bit 0 VMMCALL; bit 1 the number is nr32 (not the template's); bit 2 arg 0
 *               (the sub-op) from the input too; bit 5 nr32 repeated in the high half;
 *               bits 3-4 the slot's contents: 0 the payload, 1 a valid vcpu_hvm_context
 *               for the domain's mode with the payload over it, 2 the KVM map token with
 *               the payload over it, 3 nothing
 *     nr32
 *     5 x (how8 val32)  argument i: how % 8: 0 val, 1 (int32)val, 2 this hypercall's
 *               scratch slot + val % 4096, 3 the read-only page - val % 256, 4 the
 *               read-only page + val % 4096, 5 0x700000 + val (unmapped), 6 non-canonical
 *               2^63 + val, 7 val in both halves
 *     len8 payload[len]   written into the slot (kinds 1 and 2: the first byte is an
 *               offset into the template, the rest goes there)
 * tests/fuzz/corpus/make_hypercall.py writes the corpus.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <xen/xen.h>
#include <xen/hvm/hvm_vcpu.h>

#include "fuzz.h"
#include "guest_build_internal.h"
#include "hypercall_internal.h"
#include "sim_internal.h"

#define RAM (256u << 10)
#define TARGET_RAM (64u << 10)
#define CODE_GPA 0x10000ull
#define CODE_GLA 0x400000ull
#define SCRIPT_GPA 0x20000ull
#define SCRIPT_GLA 0x600000ull
#define SCRIPT_SIZE 0x2000ull
#define SCRATCH_GPA 0x22000ull
#define SCRATCH_GLA 0x602000ull
#define SCRATCH_SIZE 0x4000ull
#define SLOT_SIZE 256u
#define RO_GPA 0x26000ull
#define RO_GLA 0x606000ull
#define UNMAPPED_GLA 0x700000ull
#define GDT_GPA 0x27000ull
#define GDT_GLA64 0xfffffffffffff000ull /* where vmisim run puts it too (sim/runner.c) */
#define GDT_GLA32 0xfffff000ull
#define DESC_SIZE 80u
#define DESC_FIRST 64u /* the header holds the GLA of the next descriptor */
#define MAX_CALLS 64u
#define SENTINEL 0x5a5a5a5a5a5a5a5aull
#define STEP_INSNS 4000u
#define MAX_STEPS 40u
#define RING_SLOT 400u
#define MAX_VCPUS 3u
#define KVM_ENOSYS 1000

/*
 * vCPU 0's loop (nasm; descriptor: +0 rax +8 rbx +16 rcx +24 rdx +32 rsi +40 rdi +48 r8
 * +56 r10, +64 bit 0 VMMCALL, +71 bit 7 end, +72 the result).  The pointer is reloaded
 * from the header after the call: KVM clobbers RDX R8 R9 R10 (EDX ESI EDI EBP).
 *   loop: mov rbp, [abs 0x600000]      ; 32-bit: mov ebp, [0x600000]
 *         test byte [rbp+71], 0x80
 *         jnz done
 *         mov rax, [rbp] ... mov r10, [rbp+56]
 *         test byte [rbp+64], 1
 *         jnz vmm
 *         vmcall
 *         jmp after
 *   vmm:  vmmcall
 *   after: mov rbp, [abs 0x600000]
 *         mov [rbp+72], rax              ; 32-bit: eax, the low half of the result
 *         add qword [abs 0x600000], 80
 *         jmp loop
 *   done: hlt
 *         jmp done
 */
static const uint8_t code64[] = {
    0x48, 0x8b, 0x2c, 0x25, 0x00, 0x00, 0x60, 0x00, 0xf6, 0x45, 0x47, 0x80, 0x75, 0x45, 0x48, 0x8b, 0x45, 0x00,
    0x48, 0x8b, 0x5d, 0x08, 0x48, 0x8b, 0x4d, 0x10, 0x48, 0x8b, 0x55, 0x18, 0x48, 0x8b, 0x75, 0x20, 0x48, 0x8b,
    0x7d, 0x28, 0x4c, 0x8b, 0x45, 0x30, 0x4c, 0x8b, 0x55, 0x38, 0xf6, 0x45, 0x40, 0x01, 0x75, 0x05, 0x0f, 0x01,
    0xc1, 0xeb, 0x03, 0x0f, 0x01, 0xd9, 0x48, 0x8b, 0x2c, 0x25, 0x00, 0x00, 0x60, 0x00, 0x48, 0x89, 0x45, 0x48,
    0x48, 0x83, 0x04, 0x25, 0x00, 0x00, 0x60, 0x00, 0x50, 0xeb, 0xad, 0xf4, 0xeb, 0xfd};
#define DONE64 0x53 /* the hlt of `done` */
#define DONE32 0x3e
static const uint8_t code32[] = {
    0x8b, 0x2d, 0x00, 0x00, 0x60, 0x00, 0xf6, 0x45, 0x47, 0x80, 0x75, 0x32, 0x8b, 0x45, 0x00, 0x8b, 0x5d, 0x08,
    0x8b, 0x4d, 0x10, 0x8b, 0x55, 0x18, 0x8b, 0x75, 0x20, 0x8b, 0x7d, 0x28, 0xf6, 0x45, 0x40, 0x01, 0x75, 0x05,
    0x0f, 0x01, 0xc1, 0xeb, 0x03, 0x0f, 0x01, 0xd9, 0x8b, 0x2d, 0x00, 0x00, 0x60, 0x00, 0x89, 0x45, 0x48, 0x83,
    0x05, 0x00, 0x00, 0x60, 0x00, 0x50, 0xeb, 0xc2, 0xf4, 0xeb, 0xfd};

/* ---- The calls an input chooses from -------------------------------------------------- */

enum call_kind {
    K_UNDECLARED, /* nothing in hcall_table: -ENOSYS / -KVM_ENOSYS */
    K_GUEST_REQUEST,
    K_YIELD,
    K_SHUTDOWN,
    K_CONSOLE,
    K_VCPU_INIT,
    K_VCPU_UP,
    K_VCPU_DOWN,
    K_VCPU_IS_UP,
    K_MEM_MAP,
    K_MEM_UNMAP,
};

struct call_template {
    uint64_t nr, op;
    bool has_op;
};

/* Xen: the declared calls, and neighbours that are not declared (memory_op, altp2m, domctl ...). */
static const struct call_template xen_calls[] = {
    {34, 24, true}, {29, 0, true},  {29, 2, true},  {18, 0, true},  {24, 0, true},  {24, 1, true},
    {24, 2, true},  {24, 3, true},  {34, 25, true}, {34, 0, true},  {12, 0, true},  {12, 6, true},
    {29, 1, true},  {29, 3, true},  {18, 1, true},  {24, 4, true},  {24, 10, true}, {36, 0, false},
    {35, 0, false}, {13, 0, true},  {0, 0, false},  {63, 0, false}, {34, 24, true}, {24, 0, true},
};
/* KVM: KVM_HC_XEN_HVM_OP, MEM_MAP/UNMAP, and KVM's own numbers vmisim does not serve. */
static const struct call_template kvm_calls[] = {
    {34, 24, true}, {32, 0, false}, {33, 0, false}, {34, 25, true}, {1, 0, false},  {5, 0, false},
    {9, 0, false},  {10, 0, false}, {11, 0, false}, {12, 0, false}, {32, 0, false}, {34, 24, true},
};

/* ---- The domains ------------------------------------------------------------------- */

struct dom {
    const char *name;
    enum cpu_mode mode;
    enum sim_hypercall_abi abi;
    unsigned nvcpus;
    struct sim_domain *d;
    struct sim_snapshot *snap;
    struct ring_back *back;
    struct evtchn *evtchn;
    struct ring_back_state back0;
    uint8_t *ram0;
    uint64_t root;   /* CR3 of the tables the harness built */
    uint64_t pt_lo;  /* page-table frames: [pt_lo, RAM) */
    struct cpu_regs boot;
    /* KVM: the domain it introspects (never runs; one introspector per domain). */
    struct sim_domain *target;
    struct sim_snapshot *target_snap;
    uint8_t *target_ram0;
    struct sim_map_token token;
};

static struct dom D[4] = {
    {.name = "xen-long", .mode = CPU_MODE_LONG, .abi = SIM_HYPERCALL_XEN, .nvcpus = MAX_VCPUS},
    {.name = "xen-pae", .mode = CPU_MODE_PAE32, .abi = SIM_HYPERCALL_XEN, .nvcpus = MAX_VCPUS},
    {.name = "kvm-long", .mode = CPU_MODE_LONG, .abi = SIM_HYPERCALL_KVM, .nvcpus = 1},
    {.name = "kvm-pae", .mode = CPU_MODE_PAE32, .abi = SIM_HYPERCALL_KVM, .nvcpus = 1},
};

static bool ready;
static bool verbose; /* FUZZ_HYPERCALL_VERBOSE set: one line per input on stderr (what was checked) */

/* What one input did, as the observer and the run loop saw it. */
static struct state {
    bool guest_request;        /* the guest_request monitor is on */
    unsigned requests;
    bool judged[MAX_VCPUS];
    bool unconstrained;          /* a vCPU came up able to write any memory */
    bool mapped_gfn[RAM / 4096]; /* introspector gfns a KVM_HC_MEM_MAP mapped (zeroed on unmap) */
    bool target_gfn[TARGET_RAM / 4096];
    bool any_map;
    unsigned checked;            /* results checked */
    unsigned executed;           /* results present */
} S;

static void judge_vcpus(struct dom *x);

static void observer(void *opaque, const struct sim_note *n)
{
    struct dom *x = opaque;
    switch (n->kind) {
    case SIM_NOTE_REQUEST:
        FUZZ_CHECK(n->msg != NULL, "a REQUEST note without its message");
        FUZZ_CHECK(n->vcpu < x->nvcpus, "a request from vCPU %u of %u", n->vcpu, x->nvcpus);
        FUZZ_CHECK(S.guest_request, "%s: a request (reason %u) while the guest_request monitor is off", x->name,
                   n->msg->reason);
        FUZZ_CHECK(n->msg->reason == VME_REASON_GUEST_REQUEST, "%s: a request of reason %u, only GUEST_REQUEST "
                   "is enabled", x->name, n->msg->reason);
        S.requests++;
        break;
    case SIM_NOTE_HYPERCALL: {
        /* A vCPU brought up by this call has not run yet: judge it now. */
        judge_vcpus(x);
        struct sim_domain *d = x->d;
        for (uint64_t g = 0; d->foreign && g < d->nr_gfns && g < RAM / 4096; g++)
            if (d->foreign[g].target) {
                S.mapped_gfn[g] = true;
                S.any_map = true;
                if (d->foreign[g].gfn < TARGET_RAM / 4096)
                    S.target_gfn[d->foreign[g].gfn] = true;
            }
        break;
    }
    default:
        break;
    }
}

static struct dom *build_domain(struct dom *x)
{
    struct sim_config cfg = {.mode = x->mode, .ram_size = RAM, .nr_vcpus = x->nvcpus, .nr_online = 1,
                             .quantum = 61, .hypercalls = x->abi};
    FUZZ_SETUP(sim_domain_create(&x->d, &cfg));
    struct sim_domain *d = x->d;
    bool lm = x->mode == CPU_MODE_LONG;
    FUZZ_SETUP(sim_mem_write(d, CODE_GPA, lm ? code64 : code32, lm ? sizeof(code64) : sizeof(code32)));
    struct guest_build b;
    struct guest_build_range avoid[] = {{CODE_GPA, 0x1000}, {SCRIPT_GPA, GDT_GPA + 0x1000 - SCRIPT_GPA}};
    FUZZ_SETUP(guest_build_init(&b, sim_gpa(d, 0, RAM), RAM, x->mode, 0x30000, RAM, avoid, 2));
    FUZZ_SETUP(guest_build_map(&b, CODE_GLA, CODE_GPA, 0x1000, 0x1000, GUEST_BUILD_X));
    FUZZ_SETUP(guest_build_map(&b, SCRIPT_GLA, SCRIPT_GPA, SCRIPT_SIZE + SCRATCH_SIZE, 0x1000, GUEST_BUILD_W));
    FUZZ_SETUP(guest_build_map(&b, RO_GLA, RO_GPA, 0x1000, 0x1000, 0));
    /* A GDT, read-only (without one, CS.L is not known and 64-bit code takes the 32-bit convention). */
    uint64_t gdt_gla = lm ? GDT_GLA64 : GDT_GLA32;
    FUZZ_SETUP(guest_build_map(&b, gdt_gla, GDT_GPA, 0x1000, 0x1000, 0));
    uint16_t gdt_limit = guest_build_gdt(&b, GDT_GPA);
    x->root = b.root;
    x->pt_lo = b.next_frame + 4096; /* the last frame handed out */
    FUZZ_CHECK(x->pt_lo >= 0x30000 && x->pt_lo < RAM, "FUZZ SET-UP: page tables at %#llx",
               (unsigned long long)x->pt_lo);
    /* The read-only page: a pattern (the KVM guests' token is written over its start). */
    uint8_t page[4096];
    for (unsigned i = 0; i < sizeof(page); i++)
        page[i] = (uint8_t)(0xc3 ^ i);
    FUZZ_SETUP(sim_mem_write(d, RO_GPA, page, sizeof(page)));
    /* Every vCPU gets the segments and tables; only vCPU 0 is initialised and up. */
    for (unsigned v = 0; v < x->nvcpus; v++) {
        struct cpu_regs r;
        FUZZ_SETUP(sim_vcpu_get_regs(d, v, &r));
        guest_build_boot_regs(&b, &r, CODE_GLA, gdt_gla, gdt_limit);
        FUZZ_SETUP(sim_vcpu_set_regs(d, v, &r));
        if (v == 0)
            x->boot = r;
    }
    struct ring_fds fds;
    FUZZ_SETUP(sim_monitor_enable(d, 7, &fds));
    FUZZ_SETUP(ring_back_attach(&x->back, &fds, vme_slot_size(7), 0));
    FUZZ_SETUP(evtchn_open(&x->evtchn, &fds, RING_ABI_PORT_CLIENT));
    sim_set_hypercall_trace(d, true);
    sim_set_observer(d, observer, x);
    return x;
}

static void setup(void)
{
    for (unsigned i = 0; i < 4; i++)
        build_domain(&D[i]);
    for (unsigned i = 2; i < 4; i++) {
        /* The domain a KVM guest introspects: never runs, its token in the guest's read-only page. */
        struct dom *x = &D[i];
        struct sim_config tcfg = {.mode = CPU_MODE_LONG, .ram_size = TARGET_RAM, .nr_vcpus = 1,
                                  .hypercalls = SIM_HYPERCALL_KVM};
        FUZZ_SETUP(sim_domain_create(&x->target, &tcfg));
        uint8_t page[4096];
        for (unsigned g = 0; g < TARGET_RAM / 4096; g++) {
            memset(page, (int)(0x40 + g), sizeof(page));
            FUZZ_SETUP(sim_mem_write(x->target, (uint64_t)g * 4096, page, sizeof(page)));
        }
        FUZZ_SETUP(sim_kvmi_get_map_token(x->target, x->d, &x->token));
        FUZZ_SETUP(sim_mem_write(x->d, RO_GPA, &x->token, sizeof(x->token)));
        FUZZ_SETUP(sim_snapshot_take(x->target, &x->target_snap));
        x->target_ram0 = malloc(TARGET_RAM);
        FUZZ_CHECK(x->target_ram0 != NULL, "FUZZ SET-UP: out of memory");
        memcpy(x->target_ram0, sim_gpa(x->target, 0, TARGET_RAM), TARGET_RAM);
    }
    for (unsigned i = 0; i < 4; i++) {
        struct dom *x = &D[i];
        FUZZ_SETUP(sim_snapshot_take(x->d, &x->snap));
        ring_back_save(x->back, &x->back0);
        x->ram0 = malloc(RAM);
        FUZZ_CHECK(x->ram0 != NULL, "FUZZ SET-UP: out of memory");
        memcpy(x->ram0, sim_gpa(x->d, 0, RAM), RAM);
    }
    ready = true;
}

/*
 * The toolstack writes the script and the scratch slots, as sim_mem_write would, but with
 * the precise code invalidation a snapshot restore uses (cpu_frame_written: free unless
 * code was fetched from the frame) instead of sim_mem_write's flush of every vCPU's whole
 * code cache at the next run, which costs a 32 MiB memset per vCPU (Unicorn's
 * tcg_region_reset_all): 100 executions/s instead of thousands.
 */
static void toolstack_write(struct dom *x, uint64_t gpa, const uint8_t *buf, uint64_t len)
{
    while (len) {
        uint64_t off = gpa & 0xfff, n = 4096 - off < len ? 4096 - off : len;
        uint8_t *frame = sim_frame(x->d, gpa >> 12);
        FUZZ_CHECK(frame != NULL, "FUZZ SET-UP: gpa %#llx has no frame", (unsigned long long)gpa);
        memcpy(frame + off, buf, n);
        sim_mem_dirty(x->d, frame);
        for (unsigned v = 0; v < x->nvcpus; v++)
            FUZZ_SETUP(cpu_frame_written(x->d->vcpus[v].cpu, frame));
        gpa += n;
        buf += n;
        len -= n;
    }
}

/* ---- The input ------------------------------------------------------------------------ */

struct input {
    const uint8_t *p;
    size_t n, i;
};

static uint8_t get8(struct input *in)
{
    return in->i < in->n ? in->p[in->i++] : 0;
}
static uint32_t get32(struct input *in)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < 4; i++)
        v |= (uint32_t)get8(in) << (8 * i);
    return v;
}

/* One hypercall as the harness made it, and what it expects of the result. */
struct call {
    enum call_kind kind;
    bool vmmcall;
    uint64_t nr;
    uint64_t arg[HCALL_MAX_ARGS]; /* as the ABI decodes them (32-bit: truncated) */
};

static bool is64(const struct dom *x)
{
    return x->mode == CPU_MODE_LONG;
}

/* ---- What the guest can read: the harness's own map of its page tables ----------------- */

static bool mapped_page(uint64_t page, bool wide)
{
    return page == CODE_GLA || (page >= SCRIPT_GLA && page < RO_GLA + 0x1000)
           || page == (wide ? GDT_GLA64 : GDT_GLA32);
}

static bool canonical(uint64_t gla)
{
    uint64_t top = gla >> 47;
    return top == 0 || top == 0x1ffff;
}

/* hcall_read_guest's walk, from the harness's side: every page of the buffer readable. */
static bool readable(uint64_t gla, uint64_t len, bool wide)
{
    if (!wide)
        gla &= 0xffffffffu;
    while (len) {
        if ((wide && !canonical(gla)) || !mapped_page(gla & ~0xfffull, wide))
            return false;
        uint64_t chunk = 0x1000 - (gla & 0xfff);
        if (chunk > len)
            chunk = len;
        gla += chunk;
        len -= chunk;
        if (!wide)
            gla &= 0xffffffffu;
    }
    return true;
}

/* ---- Building the script ---------------------------------------------------------------- */

static uint64_t arg_value(uint8_t how, uint32_t val, unsigned k)
{
    switch (how % 8) {
    case 0: return val;
    case 1: return (uint64_t)(int64_t)(int32_t)val;
    case 2: return SCRATCH_GLA + (uint64_t)k * SLOT_SIZE + val % 4096;
    case 3: return RO_GLA - val % 256;
    case 4: return RO_GLA + val % 4096;
    case 5: return UNMAPPED_GLA + val;
    case 6: return (1ull << 63) + val;
    default: return (uint64_t)val << 32 | val;
    }
}

static enum call_kind kind_of(const struct dom *x, uint64_t nr, uint64_t op)
{
    /* The declared table, by ABI, number and sub-op (docs/adding-a-hypercall.md). */
    if (x->abi == SIM_HYPERCALL_XEN) {
        if (nr == 34 && op == 24) return K_GUEST_REQUEST;
        if (nr == 29 && op == 0) return K_YIELD;
        if (nr == 29 && op == 2) return K_SHUTDOWN;
        if (nr == 18 && op == 0) return K_CONSOLE;
        if (nr == 24 && op <= 3) return (enum call_kind)(K_VCPU_INIT + op);
        return K_UNDECLARED;
    }
    if (nr == 34 && op == 24) return K_GUEST_REQUEST;
    if (nr == 32) return K_MEM_MAP;
    if (nr == 33) return K_MEM_UNMAP;
    return K_UNDECLARED;
}

/*
 * A vcpu_hvm_context Xen accepts for the domain's mode: vCPU 0's tables, RIP at the hlt
 * of `done` (the payload may move it, e.g. onto the loop).
 */
static void context_template(const struct dom *x, struct vcpu_hvm_context *c)
{
    memset(c, 0, sizeof(*c));
    const struct cpu_regs *b = &x->boot;
    if (x->mode == CPU_MODE_LONG) {
        c->mode = VCPU_HVM_MODE_64B;
        struct vcpu_hvm_x86_64 *r = &c->cpu_regs.x86_64;
        r->rip = CODE_GLA + DONE64;
        r->rflags = 2;
        r->cr0 = b->cr0;
        r->cr3 = b->cr3;
        r->cr4 = b->cr4;
        r->efer = b->efer;
    } else {
        c->mode = VCPU_HVM_MODE_32B;
        struct vcpu_hvm_x86_32 *r = &c->cpu_regs.x86_32;
        r->eip = (uint32_t)CODE_GLA + DONE32;
        r->eflags = 2;
        r->cr0 = (uint32_t)b->cr0;
        r->cr3 = (uint32_t)b->cr3;
        r->cr4 = (uint32_t)b->cr4;
        r->efer = b->efer;
        r->cs_limit = r->ds_limit = r->ss_limit = r->es_limit = 0xffffffffu;
        r->cs_ar = 0xc9b;
        r->ds_ar = r->ss_ar = r->es_ar = 0xc93;
    }
}

/* Reads one hypercall of the input; writes its descriptor and its scratch slot. */
static void read_call(struct input *in, struct dom *x, unsigned k, struct call *c, uint8_t *desc, uint8_t *slot)
{
    bool wide = is64(x);
    uint8_t sel = get8(in), flags = get8(in);
    uint32_t nr32 = get32(in);
    uint64_t raw[HCALL_MAX_ARGS];
    for (unsigned i = 0; i < HCALL_MAX_ARGS; i++) {
        uint8_t how = get8(in);
        raw[i] = arg_value(how, get32(in), k);
    }
    const struct call_template *t = x->abi == SIM_HYPERCALL_XEN
        ? &xen_calls[sel % (sizeof(xen_calls) / sizeof(xen_calls[0]))]
        : &kvm_calls[sel % (sizeof(kvm_calls) / sizeof(kvm_calls[0]))];
    uint64_t nr = t->nr;
    if (flags & 2)
        nr = flags & 0x20 ? (uint64_t)nr32 << 32 | nr32 : nr32;
    if (t->has_op && !(flags & 4) && !(flags & 2))
        raw[0] = t->op;
    c->vmmcall = flags & 1;

    /* The registers, by the ABI's convention (sim/hypercall.c decode, kvm_vmi_hypercalls.txt). */
    uint64_t rax = nr, rbx, rcx, rdx, rsi, rdi, r8, r10;
    bool kvm_own = x->abi == SIM_HYPERCALL_KVM && wide && nr != 34;
    if (!wide || kvm_own) {
        rbx = raw[0]; rcx = raw[1]; rdx = raw[2]; rsi = raw[3];
        rdi = raw[4]; r8 = raw[4] ^ 0x8888; r10 = raw[4] ^ 0x1010;
    } else {
        rdi = raw[0]; rsi = raw[1]; rdx = raw[2]; r10 = raw[3]; r8 = raw[4];
        rbx = raw[4] ^ 0xbbbb; rcx = raw[4] ^ 0xcccc;
    }
    uint64_t regs[8] = {rax, rbx, rcx, rdx, rsi, rdi, r8, r10};
    memcpy(desc, regs, sizeof(regs));
    uint64_t fl = c->vmmcall ? 1 : 0, result = SENTINEL;
    memcpy(desc + 64, &fl, 8);
    memcpy(desc + 72, &result, 8);

    /* What sim/hypercall.c will decode. */
    c->nr = wide ? nr : (uint32_t)nr;
    for (unsigned i = 0; i < HCALL_MAX_ARGS; i++)
        c->arg[i] = wide ? raw[i] : (uint32_t)raw[i];
    if (kvm_own)
        c->arg[4] = 0;
    c->kind = kind_of(x, c->nr, c->arg[0]);

    /* The slot. */
    unsigned contents = (flags >> 3) & 3;
    unsigned len = get8(in);
    memset(slot, 0, SLOT_SIZE);
    if (contents == 1) {
        struct vcpu_hvm_context ctx;
        context_template(x, &ctx);
        memcpy(slot, &ctx, sizeof(ctx));
    } else if (contents == 2) {
        memcpy(slot, &x->token, sizeof(x->token));
    }
    if (contents == 0) {
        for (unsigned j = 0; j < len; j++)
            slot[j] = get8(in);
    } else if (len) {
        unsigned off = get8(in);
        for (unsigned j = 1; j < len; j++)
            slot[(off + j - 1) % SLOT_SIZE] = get8(in);
    }
}

/* ---- Invariants ------------------------------------------------------------------------ */

/* Can this vCPU write memory the harness's page tables do not let the guest write? */
static bool constrained(const struct dom *x, const struct cpu_regs *r)
{
    const uint64_t CR0_PE = 1, CR0_WP = 1ull << 16, CR0_PG = 1ull << 31, CR4_PAE = 1ull << 5,
                   CR4_LA57 = 1ull << 12;
    uint64_t base = x->mode == CPU_MODE_LONG ? r->cr3 & ~0xfffull : r->cr3 & ~0x1full;
    return (r->cr0 & (CR0_PE | CR0_WP | CR0_PG)) == (CR0_PE | CR0_WP | CR0_PG) && (r->cr4 & CR4_PAE)
           && !(r->cr4 & CR4_LA57) && base == x->root && (r->cs.selector & 3) == 0;
}

static void judge_vcpus(struct dom *x)
{
    for (unsigned v = 1; v < x->nvcpus; v++) {
        if (S.judged[v] || !x->d->vcpus[v].initialised)
            continue;
        S.judged[v] = true;
        struct cpu_regs r;
        FUZZ_CHECK(sim_vcpu_get_regs(x->d, v, &r) == 0, "vCPU %u's registers are unreadable: %s", v,
                   sim_error(x->d));
        if (!constrained(x, &r))
            S.unconstrained = true;
    }
}

static void check_state(struct dom *x)
{
    struct sim_domain *d = x->d;
    struct sim_monitor *m = &d->monitor;
    FUZZ_CHECK(m->ring != NULL, "%s: the monitor ring is gone", x->name);
    uint32_t out = ring_nr_outstanding(m->ring);
    unsigned out_sync[MAX_VCPUS] = {0};
    for (uint32_t i = 0; i < out; i++) {
        uint8_t slot[RING_SLOT];
        struct vme_msg req;
        FUZZ_CHECK(ring_outstanding(m->ring, i, slot) == 0, "outstanding request %u of %u unreadable", i, out);
        FUZZ_CHECK(vme_decode(7, slot, &req) == 0, "outstanding request %u does not decode", i);
        FUZZ_CHECK(req.vcpu_id < x->nvcpus, "outstanding request %u names vCPU %u", i, req.vcpu_id);
        if (req.flags & VME_FLAG_VCPU_PAUSED)
            out_sync[req.vcpu_id]++;
    }
    unsigned waiting = 0;
    for (unsigned v = 0; v < x->nvcpus; v++) {
        const struct sim_vcpu *vc = &d->vcpus[v];
        unsigned pc = sim_vcpu_pause_count(d, v);
        FUZZ_CHECK(pc == out_sync[v], "%s: vCPU %u has pause count %u but %u synchronous request(s) outstanding "
                   "(the client answered every request it took faithfully)", x->name, v, pc, out_sync[v]);
        if (sim_vcpu_state(d, v) == SIM_VCPU_PAUSED)
            FUZZ_CHECK(pc || vc->ring_blocked || vc->waiting_slot || vc->paging_wait,
                       "%s: vCPU %u is paused with no event, slot or page to wait for", x->name, v);
        unsigned inq = 0;
        for (unsigned j = 0; j < m->waitq_len; j++)
            inq += m->waitq[j] == v;
        FUZZ_CHECK(inq == (vc->waiting_slot ? 1u : 0u), "%s: vCPU %u: waiting_slot %d but %u times on the wait "
                   "queue", x->name, v, vc->waiting_slot, inq);
        waiting += vc->waiting_slot;
    }
    FUZZ_CHECK(m->waitq_len == waiting, "%s: %u entries on the wait queue, %u vCPUs waiting", x->name,
               m->waitq_len, waiting);
}

static bool guest_writable(uint64_t gpa)
{
    return gpa >= SCRIPT_GPA && gpa < SCRATCH_GPA + SCRATCH_SIZE;
}

static void check_memory(struct dom *x)
{
    const uint8_t *ram = x->d->ram; /* home frames: a KVM map aliases a gfn, not its frame */
    FUZZ_CHECK(ram != NULL, "%s: guest RAM is gone", x->name);
    if (!S.unconstrained) {
        for (uint64_t gpa = 0; gpa < RAM; gpa += 4096) {
            if (guest_writable(gpa) || S.mapped_gfn[gpa / 4096] || !memcmp(ram + gpa, x->ram0 + gpa, 4096))
                continue;
            bool tables = gpa >= x->pt_lo;
            for (unsigned off = 0; off < 4096; off += 8) {
                uint64_t now, was;
                memcpy(&now, ram + gpa + off, 8);
                memcpy(&was, x->ram0 + gpa + off, 8);
                /* A page walk sets accessed (bit 5) and dirty (bit 6); nothing else may change. */
                uint64_t mask = tables ? ~0x60ull : ~0ull;
                FUZZ_CHECK((now & mask) == (was & mask),
                           "%s: guest memory the guest may not write changed: gpa %#llx (%s) was %#llx, is %#llx",
                           x->name, (unsigned long long)(gpa + off),
                           tables ? "a page table" : gpa == RO_GPA ? "the read-only page" : gpa == CODE_GPA
                           ? "the code page" : "mapped nowhere", (unsigned long long)was, (unsigned long long)now);
            }
        }
    }
    if (x->abi == SIM_HYPERCALL_KVM) {
        const uint8_t *tram = sim_gpa(x->target, 0, TARGET_RAM);
        for (uint64_t g = 0; g < TARGET_RAM / 4096; g++)
            FUZZ_CHECK(S.target_gfn[g] || !memcmp(tram + g * 4096, x->target_ram0 + g * 4096, 4096),
                       "%s: the introspected domain's gfn %#llx changed, and no KVM_HC_MEM_MAP mapped it", x->name,
                       (unsigned long long)g);
    }
}

static const char *kind_name(enum call_kind k)
{
    static const char *const names[] = {"undeclared", "guest_request", "sched_op(yield)", "sched_op(shutdown)",
                                        "console_io(write)", "vcpu_op(initialise)", "vcpu_op(up)", "vcpu_op(down)",
                                        "vcpu_op(is_up)", "KVM_HC_MEM_MAP", "KVM_HC_MEM_UNMAP"};
    return names[k];
}

/* Errors Xen's public errno.h defines (1..133 minus gaps): what a Xen hypercall may return. */
static bool xen_errno(int64_t e)
{
    return e >= 1 && e <= 133 && e != 41 && e != 58;
}

/*
 * The k-th hypercall's result.  inits[v]: a VCPUOP_initialise of v succeeded earlier in the
 * input (vCPU 0 always has its state).
 */
static void check_result(struct dom *x, unsigned k, const struct call *c, int64_t got, bool inits[MAX_VCPUS])
{
    bool wide = is64(x), kvm = x->abi == SIM_HYPERCALL_KVM;
    const char *what = kind_name(c->kind);
#define EXPECT(cond, ...)                                                                                          \
    FUZZ_CHECK(cond, "%s: hypercall %u (%s, nr %llu, args %#llx %#llx %#llx %#llx %#llx) returned %lld: %s",     \
               x->name, k, what, (unsigned long long)c->nr, (unsigned long long)c->arg[0],                      \
               (unsigned long long)c->arg[1], (unsigned long long)c->arg[2], (unsigned long long)c->arg[3],        \
               (unsigned long long)c->arg[4], (long long)got, __VA_ARGS__)
    EXPECT(got == 0 || got == 1 || (got < 0 && (xen_errno(-got) || (kvm && got == -KVM_ENOSYS))),
           "neither 0 nor a negative errno of the ABI");
    switch (c->kind) {
    case K_UNDECLARED:
        EXPECT(got == (kvm ? -KVM_ENOSYS : -ENOSYS), "an undeclared call gets -ENOSYS (KVM: -KVM_ENOSYS)");
        break;
    case K_GUEST_REQUEST:
        EXPECT(got == (c->arg[1] ? -EINVAL : 0), "guest_request: -EINVAL for a non-NULL argument, else 0");
        break;
    case K_YIELD:
        EXPECT(got == 0, "sched_op(yield) returns 0");
        break;
    case K_SHUTDOWN:
        EXPECT(got == (readable(c->arg[1], 4, wide) ? 0 : -EFAULT),
               "-EFAULT exactly when struct sched_shutdown is not readable");
        break;
    case K_CONSOLE: {
        uint64_t n = c->arg[1] > HCALL_BUF_MAX ? HCALL_BUF_MAX : c->arg[1];
        EXPECT(got == (readable(c->arg[2], n, wide) ? 0 : -EFAULT),
               "-EFAULT exactly when the first min(count, 4096) bytes are not readable");
        break;
    }
    case K_VCPU_INIT:
        if (c->arg[1] >= x->nvcpus)
            EXPECT(got == -ENOENT, "a vCPU id the domain does not have is -ENOENT");
        else if (!readable(c->arg[2], sizeof(struct vcpu_hvm_context), wide))
            EXPECT(got == -EFAULT, "an unreadable vcpu_hvm_context is -EFAULT");
        else if (inits[c->arg[1]])
            EXPECT(got == -EEXIST, "a vCPU with its state already is -EEXIST");
        else
            EXPECT(got == 0 || got == -EINVAL, "initialise gives 0 or -EINVAL (a context Xen refuses)");
        if (got == 0 && c->arg[1] < x->nvcpus)
            inits[c->arg[1]] = true;
        break;
    case K_VCPU_UP:
        if (c->arg[1] >= x->nvcpus)
            EXPECT(got == -ENOENT, "a vCPU id the domain does not have is -ENOENT");
        else
            EXPECT(got == (inits[c->arg[1]] ? 0 : -EINVAL), "up: 0 once initialised, else -EINVAL");
        break;
    case K_VCPU_DOWN:
        EXPECT(got == (c->arg[1] >= x->nvcpus ? -ENOENT : 0), "down: -ENOENT for a bad id, else 0");
        break;
    case K_VCPU_IS_UP:
        if (c->arg[1] >= x->nvcpus)
            EXPECT(got == -ENOENT, "a vCPU id the domain does not have is -ENOENT");
        else
            EXPECT(got == 0 || got == 1, "is_up is 0 or 1");
        break;
    case K_MEM_MAP:
        if (!readable(c->arg[0], sizeof(struct sim_map_token), wide))
            EXPECT(got == -EFAULT, "an unreadable token is -KVM_EFAULT");
        else
            EXPECT(got == 0 || got == -EFAULT, "KVM_HC_MEM_MAP returns 0 or -KVM_EFAULT");
        break;
    case K_MEM_UNMAP:
        EXPECT(got == 0 || got == -EFAULT, "KVM_HC_MEM_UNMAP returns 0 or -KVM_EFAULT");
        break;
    }
    if (got == 1)
        EXPECT(c->kind == K_VCPU_IS_UP, "only VCPUOP_is_up returns 1");
#undef EXPECT
}

static void check_results(struct dom *x, const struct call *calls, unsigned ncalls)
{
    uint64_t done = CODE_GLA + (is64(x) ? DONE64 : DONE32);
    for (unsigned v = 1; v < x->nvcpus; v++) {
        /* Another vCPU that did more than halt may have run the loop too: the script is not vCPU 0's alone. */
        struct cpu_regs r;
        FUZZ_CHECK(sim_vcpu_get_regs(x->d, v, &r) == 0, "vCPU %u's registers are unreadable", v);
        uint64_t n = sim_vcpu_insns(x->d, v);
        if (n && (n > 2 || r.rip < done || r.rip > done + 3))
            return;
    }
    bool inits[MAX_VCPUS] = {true};
    bool stopped = false;
    for (unsigned k = 0; k < ncalls; k++) {
        /* The home frame: results written before a KVM map over the script page are there. */
        uint64_t res;
        memcpy(&res, x->d->ram + SCRIPT_GPA + DESC_FIRST + (uint64_t)k * DESC_SIZE + 72, 8);
        bool wide = is64(x);
        bool done = wide ? res != SENTINEL : (uint32_t)res != (uint32_t)SENTINEL;
        if (!done) {
            stopped = true;
            continue;
        }
        FUZZ_CHECK(!stopped, "%s: hypercall %u has a result but an earlier one has none", x->name, k);
        S.executed++;
        FUZZ_CHECK(!calls[k].vmmcall || x->abi == SIM_HYPERCALL_KVM,
                   "%s: hypercall %u made with VMMCALL under the Xen ABI returned (it raises #UD)", x->name, k);
        int64_t got = wide ? (int64_t)res : (int64_t)(int32_t)(uint32_t)res;
        if (!wide)
            FUZZ_CHECK(res >> 32 == SENTINEL >> 32, "a 32-bit guest's store wrote 8 bytes");
        check_result(x, k, &calls[k], got, inits);
        S.checked++;
        if (calls[k].kind == K_MEM_MAP && got == 0)
            return; /* its gfn may now be any page, even the script's: what follows is not the script */
    }
}

/* ---- Running ---------------------------------------------------------------------------- */

static void answer_all(struct dom *x)
{
    uint8_t slot[RING_SLOT];
    bool any = false;
    while (ring_back_take_request(x->back, slot) == 0) {
        struct vme_msg req;
        FUZZ_CHECK(vme_decode(7, slot, &req) == 0, "%s: a request on the ring does not decode", x->name);
        struct vme_msg rsp = req;
        rsp.flags = req.flags & VME_FLAG_VCPU_PAUSED;
        FUZZ_SETUP(vme_encode(7, &rsp, slot));
        FUZZ_CHECK(ring_back_put_response(x->back, slot) == 0, "%s: no room for a response: %s", x->name,
                   ring_back_error(x->back));
        any = true;
    }
    if (any && ring_back_push_responses(x->back))
        evtchn_notify(x->evtchn);
}

static void run_step(struct dom *x, uint64_t budget, struct sim_stop *stop)
{
    memset(stop, 0xa5, sizeof(*stop));
    int rc = sim_run(x->d, budget, stop);
    FUZZ_CHECK(rc == 0, "%s: sim_run returned %d (%s): %s", x->name, rc, strerror(-rc), sim_error(x->d));
    FUZZ_CHECK(stop->reason >= SIM_STOP_LIMIT && stop->reason <= SIM_STOP_DEADLOCK, "sim_run stopped with reason %d",
               (int)stop->reason);
    FUZZ_CHECK(memchr(stop->why, 0, sizeof(stop->why)) != NULL, "stop.why is not a string");
    FUZZ_CHECK(stop->reason != SIM_STOP_ERROR, "%s: sim_run failed on guest input: %s", x->name, stop->why);
    FUZZ_CHECK(stop->insns <= budget, "%s: sim_run ran %llu instructions of a budget of %llu", x->name,
               (unsigned long long)stop->insns, (unsigned long long)budget);
    judge_vcpus(x);
    check_state(x);
}

/* The KVM guests' maps of the target go before either snapshot is restored (both refuse while they exist). */
static void unmap_all(struct dom *x)
{
    struct sim_domain *d = x->d;
    char why[160];
    for (uint64_t g = 0; d->foreign && d->nr_foreign && g < d->nr_gfns; g++)
        if (d->foreign[g].target)
            FUZZ_CHECK(sim_kvmi_mem_unmap(d, g * 4096, why, sizeof(why)) == 0, "unmap of gfn %#llx: %s",
                       (unsigned long long)g, why);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    verbose = getenv("FUZZ_HYPERCALL_VERBOSE") != NULL;
    setup();
    return 0;
}

/*
 * Guest RAM is a MAP_SHARED memfd (sim/memory.c), so under AFL++'s fork server a child
 * inherits the RAM the previous child left, but not its dirty bitmap: the first input of
 * each process marks every frame dirty, and the restore copies all of them back.
 */
static void new_process(void)
{
    static pid_t pid;
    if (getpid() == pid)
        return;
    pid = getpid();
    for (unsigned i = 0; i < 4; i++) {
        struct sim_domain *ds[2] = {D[i].d, D[i].target};
        for (unsigned j = 0; j < 2; j++)
            for (uint64_t g = 0; ds[j] && g < ds[j]->nr_gfns; g++)
                sim_mem_dirty(ds[j], ds[j]->ram + g * 4096);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready)
        setup(); /* AFL++'s driver, or one without the initialiser */
    new_process();
    struct input in = {data, size, 0};
    struct dom *x = &D[get8(&in) % 4];
    if (x->abi == SIM_HYPERCALL_KVM) {
        unmap_all(x);
        FUZZ_CHECK(sim_snapshot_restore(x->target, x->target_snap) == 0, "%s: the target does not restore: %s",
                   x->name, sim_error(x->target));
    }
    FUZZ_CHECK(sim_snapshot_restore(x->d, x->snap) == 0, "%s: the snapshot does not restore: %s", x->name,
               sim_error(x->d));
    FUZZ_CHECK(ring_back_restore(x->back, &x->back0) == 0, "the client's ring state does not restore");
    memset(&S, 0, sizeof(S));
    check_memory(x);
    check_state(x);

    uint8_t ctl = get8(&in);
    if (ctl & 1) {
        S.guest_request = true;
        FUZZ_SETUP(sim_monitor_guest_request(x->d, true, ctl & 2, ctl & 4));
    }
    unsigned policy = (ctl >> 3) & 3;

    /* The script and the scratch slots, written as the toolstack would (restored next time). */
    static uint8_t script[SCRIPT_SIZE], scratch[SCRATCH_SIZE];
    static struct call calls[MAX_CALLS];
    memset(script, 0, sizeof(script));
    unsigned ncalls = 0;
    while (in.i < in.n && ncalls < MAX_CALLS) {
        read_call(&in, x, ncalls, &calls[ncalls], script + DESC_FIRST + ncalls * DESC_SIZE,
                  scratch + ncalls * SLOT_SIZE);
        ncalls++;
    }
    uint64_t first = SCRIPT_GLA + DESC_FIRST;
    memcpy(script, &first, 8);
    script[DESC_FIRST + ncalls * DESC_SIZE + 71] = 0x80; /* the end */
    memset(scratch + ncalls * SLOT_SIZE, 0, sizeof(scratch) - ncalls * SLOT_SIZE);
    toolstack_write(x, SCRIPT_GPA, script, SCRIPT_SIZE);
    toolstack_write(x, SCRATCH_GPA, scratch, SCRATCH_SIZE);

    struct sim_stop stop;
    unsigned idle = 0;
    for (unsigned step = 0; step < MAX_STEPS; step++) {
        run_step(x, STEP_INSNS, &stop);
        if (stop.reason == SIM_STOP_EVENT || stop.reason == SIM_STOP_BLOCKED) {
            if (policy == 0 || policy == 3 || (policy == 1 && (step & 1)))
                answer_all(x);
            else if (policy == 2 && stop.reason == SIM_STOP_BLOCKED)
                break;
        }
        if (stop.reason == SIM_STOP_HALTED || stop.reason == SIM_STOP_SHUTDOWN || stop.reason == SIM_STOP_CRASHED)
            break;
        idle = stop.insns ? 0 : idle + 1;
        if (idle > 3)
            break;
    }
    check_results(x, calls, ncalls);
    check_memory(x);
    enum sim_stop_reason last = stop.reason;

    /* The simulator still answers: every request answered, one more slice. */
    answer_all(x);
    run_step(x, 1000, &stop);
    answer_all(x);
    run_step(x, 1000, &stop);
    check_memory(x);
    if (verbose)
        fprintf(stderr, "fuzz_hypercall: %s, %u call(s), %u result(s), %u checked, stop %d, %u request(s), %s%s\n",
                x->name, ncalls, S.executed, S.checked, (int)last, S.requests,
                S.unconstrained ? "memory unchecked (a vCPU escaped the page tables)" : "memory checked",
                S.any_map ? ", KVM maps" : "");
    return 0;
}
