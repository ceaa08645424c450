/*
 * tests/fuzz/fuzz_responses.c — a hostile vm_event client on the real ring while a guest runs.
 *
 * Four vCPUs loop writing a page the client made read-only (`mov [rbx], rax; inc rcx;
 * jmp`), under full monitoring (mem_access plus every interception monitor).  The input is
 * a stream of client actions (the format is below and in docs/fuzzing.md): take requests,
 * put well-formed or raw responses, push, ring the doorbell, write any value into
 * rsp_prod / req_event / rsp_event, overwrite slots, change the page's access, let the
 * simulator run.  Proves, after every action and at the end of the input:
 *   - the simulator does not crash, sim_run returns, its stop reason is a known one;
 *   - nothing duplicated or lost on the simulator's side: the requests it still holds as
 *     outstanding (ring_outstanding) are, byte for byte and in order, exactly the posted
 *     requests (observer notes) that no taken response has consumed yet;
 *   - Xen's pause accounting: each vCPU's pause count is its synchronous requests minus the
 *     responses with VCPU_PAUSED applied to it; a vCPU with a pause count does not run;
 *     a vCPU waiting for a slot is on the wait queue exactly once;
 *   - while the client answered faithfully (each response named its request's vCPU and
 *     VCPU_PAUSED), a paused vCPU has exactly as many synchronous requests outstanding as
 *     its pause count: none left paused without its event;
 *   - while the client did not corrupt rsp_prod or request slots, the k-th request it takes
 *     is the k-th the simulator posted (none duplicated, none skipped);
 *   - guest memory outside the page the guest writes is unchanged.
 * The domain is built once; each input starts from a snapshot (sim_snapshot_restore, and
 * the client's ring_back_restore), so an execution costs microseconds.
 *
 * Input format, one action after another (a byte `op`, op % 12, then its arguments;
 * missing bytes read as 0):
 *   0 RUN n16         sim_run for 1 + n % 20000 instructions
 *   1 TAKE            ring_back_take_request
 *   2 RESPOND f16 m8  answer the oldest unanswered taken request: flags f, m bit 0: vcpu_id
 *                     = (m >> 1) & 7 instead of the request's, m bit 4: version 1, SET_REGISTERS
 *                     moves rip by (int8)m; then ring_back_put_response
 *   3 RAW o16 n8 ...  a response: the last taken request's bytes with n input bytes at o % 400
 *   4 PUSH            ring_back_push_responses, and notify if it says so
 *   5 NOTIFY          evtchn_notify on the client's side
 *   6 INDEX w8 v32    w % 3: rsp_prod, req_event, rsp_event; w bit 7: v as it is, else the
 *                     current value + (int8)v
 *   7 ACCESS a8       sim_set_mem_access(a % 11) on the guest's page
 *   8 SLOT s8 o16 n8 ... n input bytes into request slot s % 8 at o % 400
 *   9 RESUME          sim_monitor_resume (xc_monitor_resume)
 *  10 DOORBELL        the client takes and unmasks its own doorbell
 *  11 FINAL           ring_back_final_check_for_requests
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

#include "fuzz.h"
#include "guest_build_internal.h"
#include "sim_internal.h"

#define RAM (256u << 10)
#define CODE_GPA 0x10000ull
#define DATA_GFN 0x20ull
#define DATA_GLA 0x600000ull
#define VCPUS 4
#define SLOT 400
#define MAX_POSTED 2048
#define MAX_TAKEN 2048
#define MAX_INSNS_PER_INPUT 400000ull

/* loop: mov [rbx], rax ; inc rcx ; jmp loop */
static const uint8_t guest_code[] = {0x48, 0x89, 0x03, 0x48, 0xff, 0xc1, 0xeb, 0xf8};

static struct {
    struct sim_domain *d;
    struct sim_snapshot *snap;
    struct ring_back *back;
    struct evtchn *evtchn;
    struct ring_back_state back0;
    struct ring_abi_sring_header *sring; /* the client's own mapping of page 0 */
    uint8_t *ram0;                       /* guest RAM at the snapshot */
} F;

/* What the observer saw during one input (the simulator's side of the accounting). */
static struct state {
    uint8_t posted[MAX_POSTED][SLOT];
    uint32_t posted_vcpu[MAX_POSTED], posted_flags[MAX_POSTED];
    size_t nposted, ntaken; /* requests posted; responses the simulator took (applied or ignored) */
    unsigned posted_sync[VCPUS], unpaused[VCPUS];
    bool overflow;          /* more requests than the harness keeps: the input stops */
    bool unfaithful;        /* a response did not name its request's vCPU and VCPU_PAUSED */
    /* The client's side. */
    uint8_t taken[MAX_TAKEN][SLOT];
    size_t ntaken_client, nanswered;
    bool tainted;           /* rsp_prod or a slot was written raw: the client's view may legitimately differ */
    uint64_t insns;
} S;

static void observer(void *opaque, const struct sim_note *n)
{
    (void)opaque;
    switch (n->kind) {
    case SIM_NOTE_REQUEST:
        FUZZ_CHECK(n->msg != NULL, "a REQUEST note without its message");
        FUZZ_CHECK(n->vcpu < VCPUS, "a request from vCPU %u of %u", n->vcpu, VCPUS);
        if (S.nposted == MAX_POSTED) {
            S.overflow = true;
            return;
        }
        FUZZ_SETUP(vme_encode(7, n->msg, S.posted[S.nposted]));
        S.posted_vcpu[S.nposted] = n->msg->vcpu_id;
        S.posted_flags[S.nposted] = n->msg->flags;
        if (n->msg->flags & VME_FLAG_VCPU_PAUSED)
            S.posted_sync[n->vcpu]++;
        S.nposted++;
        break;
    case SIM_NOTE_RESPONSE:
    case SIM_NOTE_IGNORED:
        FUZZ_CHECK(n->msg != NULL, "a RESPONSE/IGNORED note without its message");
        if (S.overflow)
            return;
        FUZZ_CHECK(S.ntaken < S.nposted, "the simulator took response %zu with only %zu requests posted",
                   S.ntaken + 1, S.nposted);
        if (n->kind == SIM_NOTE_IGNORED || n->msg->vcpu_id != S.posted_vcpu[S.ntaken]
            || (n->msg->flags & VME_FLAG_VCPU_PAUSED) != (S.posted_flags[S.ntaken] & VME_FLAG_VCPU_PAUSED))
            S.unfaithful = true;
        if (n->kind == SIM_NOTE_RESPONSE && (n->msg->flags & VME_FLAG_VCPU_PAUSED)) {
            FUZZ_CHECK(n->vcpu < VCPUS, "a response applied to vCPU %u of %u", n->vcpu, VCPUS);
            S.unpaused[n->vcpu]++;
        }
        S.ntaken++;
        break;
    default:
        break;
    }
}

static void setup(void)
{
    struct sim_config cfg = {.mode = CPU_MODE_LONG, .ram_size = RAM, .nr_vcpus = VCPUS, .quantum = 37,
                             .hypercalls = SIM_HYPERCALL_XEN};
    FUZZ_SETUP(sim_domain_create(&F.d, &cfg));
    struct sim_domain *d = F.d;
    FUZZ_SETUP(sim_mem_write(d, CODE_GPA, guest_code, sizeof(guest_code)));
    struct guest_build b;
    struct guest_build_range avoid[] = {{CODE_GPA, 0x1000}, {DATA_GFN << 12, 0x1000}};
    FUZZ_SETUP(guest_build_init(&b, sim_gpa(d, 0, RAM), RAM, CPU_MODE_LONG, 0, RAM, avoid, 2));
    FUZZ_SETUP(guest_build_map(&b, 0x400000, CODE_GPA, 0x1000, 0x1000, GUEST_BUILD_X));
    FUZZ_SETUP(guest_build_map(&b, DATA_GLA, DATA_GFN << 12, 0x1000, 0x1000, GUEST_BUILD_W));
    for (unsigned v = 0; v < VCPUS; v++) {
        struct cpu_regs r;
        FUZZ_SETUP(sim_vcpu_get_regs(d, v, &r));
        guest_build_boot_regs(&b, &r, 0x400000, 0, 0);
        r.rbx = DATA_GLA + 8 * v;
        r.rax = 0x1000 + v;
        FUZZ_SETUP(sim_vcpu_set_regs(d, v, &r));
    }
    struct ring_fds fds;
    FUZZ_SETUP(sim_monitor_enable(d, 7, &fds));
    FUZZ_SETUP(ring_back_attach(&F.back, &fds, vme_slot_size(7), 0));
    FUZZ_SETUP(evtchn_open(&F.evtchn, &fds, RING_ABI_PORT_CLIENT));
    F.sring = mmap(NULL, RING_ABI_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fds.shm, 0);
    FUZZ_CHECK(F.sring != MAP_FAILED, "FUZZ SET-UP: cannot map the ring page");
    /* Warm up with the page writable: every vCPU runs, the page tables' A/D bits are set. */
    struct sim_stop stop;
    FUZZ_SETUP(sim_run(d, 4000, &stop));
    FUZZ_CHECK(stop.reason == SIM_STOP_LIMIT, "FUZZ SET-UP: the warm-up stopped with %d: %s", stop.reason, stop.why);
    /*
     * Full monitoring, within reason: every interception monitor whose change does not
     * flush the code cache, plus int3, CPUID and debug exceptions (each change of the
     * intercept mask flushes every vCPU's code cache: 20 ms to a second each, and over
     * ten seconds before a vCPU's first run, hence after the warm-up).
     */
    FUZZ_SETUP(sim_monitor_software_breakpoint(d, true));
    FUZZ_SETUP(sim_monitor_cpuid(d, true));
    FUZZ_SETUP(sim_monitor_debug_exceptions(d, true, true));
    FUZZ_SETUP(sim_monitor_singlestep(d, true));
    FUZZ_SETUP(sim_monitor_guest_request(d, true, true, false));
    FUZZ_SETUP(sim_monitor_emul_unimplemented(d, true));
    FUZZ_SETUP(sim_set_mem_access(d, 1 /* r */, DATA_GFN, 1));
    for (unsigned v = 0; v < VCPUS; v++)
        FUZZ_CHECK(sim_vcpu_insns(d, v) > 0, "FUZZ SET-UP: vCPU %u did not run in the warm-up", v);
    sim_set_observer(d, observer, NULL);
    FUZZ_SETUP(sim_snapshot_take(d, &F.snap));
    ring_back_save(F.back, &F.back0);
    F.ram0 = malloc(RAM);
    FUZZ_CHECK(F.ram0 != NULL, "FUZZ SET-UP: out of memory");
    memcpy(F.ram0, sim_gpa(d, 0, RAM), RAM);
}

/* ---- The input ---------------------------------------------------------------- */

struct input {
    const uint8_t *p;
    size_t n, i;
};

static uint8_t get8(struct input *in)
{
    return in->i < in->n ? in->p[in->i++] : 0;
}
static uint16_t get16(struct input *in)
{
    uint16_t lo = get8(in);
    return (uint16_t)(lo | (uint16_t)get8(in) << 8);
}
static uint32_t get32(struct input *in)
{
    uint32_t lo = get16(in);
    return lo | (uint32_t)get16(in) << 16;
}

/* ---- Invariants ------------------------------------------------------------------ */

static void check_state(void)
{
    struct sim_domain *d = F.d;
    struct sim_monitor *m = &d->monitor;
    FUZZ_CHECK(m->ring != NULL, "the monitor ring is gone");
    if (S.overflow)
        return;
    uint32_t out = ring_nr_outstanding(m->ring);
    FUZZ_CHECK(S.nposted == S.ntaken + out,
               "requests lost or duplicated: %zu posted, %zu answered, %u outstanding", S.nposted, S.ntaken, out);
    unsigned out_sync[VCPUS] = {0};
    for (uint32_t i = 0; i < out; i++) {
        uint8_t slot[SLOT];
        FUZZ_CHECK(ring_outstanding(m->ring, i, slot) == 0, "outstanding request %u of %u unreadable", i, out);
        size_t k = S.ntaken + i;
        FUZZ_CHECK(memcmp(slot, S.posted[k], SLOT) == 0,
                   "outstanding request %u is not posted request %zu (vCPU %u): the simulator's copy changed or "
                   "the order is wrong", i, k, S.posted_vcpu[k]);
        if (S.posted_flags[k] & VME_FLAG_VCPU_PAUSED)
            out_sync[S.posted_vcpu[k]]++;
    }
    unsigned waiting = 0;
    for (unsigned v = 0; v < VCPUS; v++) {
        unsigned pc = sim_vcpu_pause_count(d, v);
        FUZZ_CHECK(pc == S.posted_sync[v] - S.unpaused[v],
                   "vCPU %u: pause count %u, but %u synchronous requests and %u unpausing responses", v, pc,
                   S.posted_sync[v], S.unpaused[v]);
        if (pc)
            FUZZ_CHECK(sim_vcpu_state(d, v) != SIM_VCPU_RUNNABLE, "vCPU %u is runnable with pause count %u", v, pc);
        if (!S.unfaithful)
            FUZZ_CHECK(pc == out_sync[v],
                       "vCPU %u left paused without its event: pause count %u, %u synchronous requests outstanding "
                       "(every response so far was faithful)", v, pc, out_sync[v]);
        unsigned inq = 0;
        for (unsigned j = 0; j < m->waitq_len; j++)
            inq += m->waitq[j] == v;
        bool ws = d->vcpus[v].waiting_slot;
        FUZZ_CHECK(inq == (ws ? 1u : 0u), "vCPU %u: waiting_slot %d but %u times on the wait queue", v, ws, inq);
        waiting += ws;
    }
    FUZZ_CHECK(m->waitq_len == waiting, "%u entries on the wait queue, %u vCPUs waiting", m->waitq_len, waiting);
}

static void check_memory(void)
{
    const uint8_t *ram = sim_gpa(F.d, 0, RAM);
    FUZZ_CHECK(ram != NULL, "guest RAM is gone");
    for (uint64_t gfn = 0; gfn < RAM / 4096; gfn++) {
        if (gfn == DATA_GFN)
            continue;
        if (memcmp(ram + gfn * 4096, F.ram0 + gfn * 4096, 4096) == 0)
            continue;
        unsigned off = 0;
        while (ram[gfn * 4096 + off] == F.ram0[gfn * 4096 + off])
            off++;
        FUZZ_CHECK(0, "guest memory outside the written page changed: gpa %#llx was %#x, is %#x",
                   (unsigned long long)(gfn * 4096 + off), F.ram0[gfn * 4096 + off], ram[gfn * 4096 + off]);
    }
}

/* ---- The client's actions ------------------------------------------------------- */

static void act_run(struct input *in)
{
    uint64_t n = 1 + get16(in) % 20000;
    if (S.insns >= MAX_INSNS_PER_INPUT)
        return;
    struct sim_stop stop;
    memset(&stop, 0xa5, sizeof(stop));
    int rc = sim_run(F.d, n, &stop);
    FUZZ_CHECK(rc == 0, "sim_run returned %d (%s): %s", rc, strerror(-rc), sim_error(F.d));
    FUZZ_CHECK(stop.reason >= SIM_STOP_LIMIT && stop.reason <= SIM_STOP_DEADLOCK, "sim_run stopped with reason %d",
               (int)stop.reason);
    FUZZ_CHECK(memchr(stop.why, 0, sizeof(stop.why)) != NULL, "stop.why is not a string");
    FUZZ_CHECK(stop.insns <= n, "sim_run ran %llu instructions of a budget of %llu", (unsigned long long)stop.insns,
               (unsigned long long)n);
    S.insns += stop.insns ? stop.insns : 1;
}

static void act_take(void)
{
    uint8_t slot[SLOT];
    int rc = ring_back_take_request(F.back, slot);
    if (S.tainted || S.overflow)
        return;
    FUZZ_CHECK(rc == 0 || rc == -EAGAIN, "the client's take failed (%d) on a ring only it could break: %s", rc,
               ring_back_error(F.back));
    if (rc)
        return;
    size_t k = S.ntaken_client;
    FUZZ_CHECK(k < S.nposted, "the client took request %zu but only %zu were posted (a duplicate)", k + 1, S.nposted);
    FUZZ_CHECK(memcmp(slot, S.posted[k], SLOT) == 0,
               "the client's request %zu is not the simulator's request %zu (vCPU %u): duplicated or skipped", k, k,
               S.posted_vcpu[k]);
    if (k < MAX_TAKEN)
        memcpy(S.taken[k], slot, SLOT);
    S.ntaken_client++;
}

/* The request the next answer is for: the oldest taken and unanswered, else the last taken. */
static const uint8_t *answer_base(void)
{
    static const uint8_t zero[SLOT];
    size_t n = S.ntaken_client < MAX_TAKEN ? S.ntaken_client : MAX_TAKEN;
    if (S.nanswered < n)
        return S.taken[S.nanswered];
    return n ? S.taken[n - 1] : zero;
}

static void act_respond(struct input *in)
{
    uint16_t flags = get16(in);
    uint8_t mod = get8(in);
    struct vme_msg req, rsp;
    vme_decode(7, answer_base(), &req);
    rsp = req;
    rsp.version = mod & 0x10 ? 1 : 7;
    rsp.flags = flags;
    if (mod & 1)
        rsp.vcpu_id = (mod >> 1) & 7;
    if (flags & VME_FLAG_SET_REGISTERS)
        rsp.regs.rip += (uint64_t)(int64_t)(int8_t)mod;
    if (flags & VME_FLAG_SET_EMUL_READ_DATA)
        rsp.emul_read.size = mod;
    uint8_t slot[SLOT];
    if (vme_encode(7, &rsp, slot) < 0)
        return;
    if (ring_back_put_response(F.back, slot) == 0)
        S.nanswered++;
}

static void overlay(struct input *in, uint8_t *slot)
{
    unsigned off = get16(in) % SLOT, n = get8(in);
    for (unsigned j = 0; j < n; j++)
        slot[(off + j) % SLOT] = get8(in);
}

static void act_raw(struct input *in)
{
    uint8_t slot[SLOT];
    memcpy(slot, answer_base(), SLOT);
    overlay(in, slot);
    if (ring_back_put_response(F.back, slot) == 0)
        S.nanswered++;
}

static void act_index(struct input *in)
{
    uint8_t w = get8(in);
    uint32_t v = get32(in);
    _Atomic ring_idx_t *idx[] = {&F.sring->rsp_prod, &F.sring->req_event, &F.sring->rsp_event};
    _Atomic ring_idx_t *p = idx[(w & 0x7f) % 3];
    ring_idx_t nv = w & 0x80 ? v : atomic_load(p) + (ring_idx_t)(int32_t)(int8_t)v;
    atomic_store(p, nv);
    if (p == &F.sring->rsp_prod)
        S.tainted = true;
}

static void act_slot(struct input *in)
{
    unsigned s = get8(in) % ring_back_nr_slots(F.back);
    uint8_t *slot = (uint8_t *)F.sring + sizeof(struct ring_abi_sring_header) + (size_t)s * SLOT;
    overlay(in, slot);
    S.tainted = true;
}

/* libFuzzer (and tests/fuzz/driver.c) call this once, before the first input. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setup();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!F.d)
        setup(); /* AFL++'s driver, or one without the initialiser */
    FUZZ_CHECK(sim_snapshot_restore(F.d, F.snap) == 0, "the snapshot does not restore: %s", sim_error(F.d));
    FUZZ_CHECK(ring_back_restore(F.back, &F.back0) == 0, "the client's ring state does not restore");
    memset(&S, 0, offsetof(struct state, taken));
    S.ntaken_client = S.nanswered = 0;
    S.tainted = false;
    S.insns = 0;
    check_memory();
    check_state();

    struct input in = {data, size, 0};
    while (in.i < in.n && !S.overflow) {
        switch (get8(&in) % 12) {
        case 0: act_run(&in); break;
        case 1: act_take(); break;
        case 2: act_respond(&in); break;
        case 3: act_raw(&in); break;
        case 4:
            if (ring_back_push_responses(F.back))
                evtchn_notify(F.evtchn);
            break;
        case 5: evtchn_notify(F.evtchn); break;
        case 6: act_index(&in); break;
        case 7: (void)sim_set_mem_access(F.d, get8(&in) % 11, DATA_GFN, 1); break;
        case 8: act_slot(&in); break;
        case 9: FUZZ_CHECK(sim_monitor_resume(F.d) == 0, "sim_monitor_resume failed: %s", sim_error(F.d)); break;
        case 10:
            if (evtchn_pending(F.evtchn) > 0)
                evtchn_unmask(F.evtchn);
            break;
        case 11: (void)ring_back_final_check_for_requests(F.back); break;
        }
        check_state();
    }
    /* The simulator still answers: one more slice after whatever the client did. */
    struct input tail = {(const uint8_t *)"\xff\x0f", 2, 0};
    S.insns = 0;
    act_run(&tail);
    check_state();
    check_memory();
    return 0;
}
