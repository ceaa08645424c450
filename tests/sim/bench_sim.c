/*
 * tests/sim/bench_sim.c — what a mem_access event costs end to end, measured
 * in one run, through the real ring with an in-process client:
 *   1. the event round trip: a guest write faults on a restricted page, the
 *      request goes on the ring, the client (through ring_back_*, as a real
 *      client) relaxes the page, restricts the other one, answers
 *      VCPU_PAUSED and notifies, the simulator takes the response and the
 *      write completes; median and p99 of the time from one event to the next
 *      (the guest runs 3 instructions between them).  Twice: with the client
 *      registered as the simulator's in-process client (sim_set_client: the
 *      event is resolved without leaving the vCPU's run) and driven from
 *      outside sim_run (each event stops the run);
 *   2. guest instructions per second with one event every ~10,000
 *      instructions, against the same loop with no restricted page.
 * Run with `meson test -C build --benchmark --verbose` or directly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guest_build_internal.h"
#include "bench_clock.h"
#include "sim.h"
#include "vm_event_internal.h"

#define RAM (32u << 20)
#define SWEEP_GLA 0x10000000ull
#define SWEEP_GPA 0x200000ull
#define SWEEP_PAGES 4096u
#define CODE_GLA 0x400000ull
#define CODE_GPA 0x10000ull
#define PAGE_A_GLA 0x600000ull
#define PAGE_A_GFN 0x20ull
#define PAGE_B_GFN 0x21ull

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_sim: %s: %s\n", what, why);
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* write [rbx] (page A), write [rdx] (page B), each after `spin` iterations of dec/jnz, forever. */
static size_t loop_code(uint8_t *c, uint32_t spin)
{
    size_t n = 0;
    const uint8_t head[] = {0x48, 0xc7, 0xc3, 0x00, 0x00, 0x60, 0x00,  /* mov rbx, 0x600000 */
                            0x48, 0xc7, 0xc2, 0x00, 0x10, 0x60, 0x00}; /* mov rdx, 0x601000 */
    memcpy(c, head, sizeof(head));
    n = sizeof(head);
    size_t outer = n;
    for (int half = 0; half < 2; half++) {
        if (spin) {
            c[n++] = 0xb9; /* mov ecx, spin */
            memcpy(c + n, &spin, 4);
            n += 4;
            c[n++] = 0xff; c[n++] = 0xc9; /* dec ecx */
            c[n++] = 0x75; c[n++] = 0xfc; /* jnz -4 */
        }
        c[n++] = 0x48; c[n++] = 0x89; c[n++] = half ? 0x02 : 0x03; /* mov [rdx]/[rbx], rax */
    }
    c[n] = 0xeb; /* jmp outer */
    c[n + 1] = (uint8_t)(int8_t)((int)outer - (int)(n + 2));
    return n + 2;
}

/* write [rbx]; rbx += 4 KiB; after SWEEP_PAGES pages start again; forever. */
static size_t sweep_code(uint8_t *c)
{
    const uint8_t code[] = {
        0x48, 0xc7, 0xc1, 0x00, 0x00, 0x00, 0x11,  /* mov rcx, SWEEP_GLA + SWEEP_PAGES * 4K */
        0x48, 0xc7, 0xc3, 0x00, 0x00, 0x00, 0x10,  /* outer: mov rbx, SWEEP_GLA */
        0x48, 0x89, 0x03,                          /* inner: mov [rbx], rax */
        0x48, 0x81, 0xc3, 0x00, 0x10, 0x00, 0x00,  /* add rbx, 0x1000 */
        0x48, 0x39, 0xcb,                          /* cmp rbx, rcx */
        0x72, 0xf1,                                /* jb inner */
        0xeb, 0xe8,                                /* jmp outer */
    };
    memcpy(c, code, sizeof(code));
    return sizeof(code);
}

struct bench {
    struct sim_domain *d;
    struct ring_back *back;
    struct evtchn *evtchn;
    unsigned version;
    uint64_t events;
    bool sweep;              /* the xen-access "write" pattern over SWEEP_PAGES pages */
    double *stamps;
    size_t nstamps, cap;
};

/* The client: each request relaxes its page and restricts the other (xen-access style). */
static void client(void *opaque)
{
    struct bench *b = opaque;
    unsigned char slot[400];
    bool any = false;
    while (ring_back_take_request(b->back, slot) == 0) {
        struct vme_msg req, rsp;
        vme_decode(b->version, slot, &req);
        if (b->nstamps < b->cap)
            b->stamps[b->nstamps++] = now_ns();
        uint64_t gfn = req.u.mem_access.gfn;
        if (b->sweep) {
            /*
             * xen-access "write" mode: relax the page.  To sweep again, the last
             * page restricts all the others (not itself: its write must go on)
             * and the first page restricts the last.
             */
            uint64_t first = SWEEP_GPA >> 12, last = first + SWEEP_PAGES - 1;
            sim_set_mem_access(b->d, 7 /* rwx */, gfn, 1);
            if (gfn == last)
                sim_set_mem_access(b->d, 5 /* rx */, first, SWEEP_PAGES - 1);
            else if (gfn == first)
                sim_set_mem_access(b->d, 5 /* rx */, last, 1);
        } else {
            sim_set_mem_access(b->d, 3 /* rw */, gfn, 1);
            sim_set_mem_access(b->d, 1 /* r */, gfn == PAGE_A_GFN ? PAGE_B_GFN : PAGE_A_GFN, 1);
        }
        memset(&rsp, 0, sizeof(rsp));
        rsp.version = b->version;
        rsp.vcpu_id = req.vcpu_id;
        rsp.reason = req.reason;
        rsp.flags = req.flags & VME_FLAG_VCPU_PAUSED;
        rsp.u = req.u;
        vme_encode(b->version, &rsp, slot);
        ring_back_put_response(b->back, slot);
        b->events++;
        any = true;
    }
    if (any && ring_back_push_responses(b->back))
        evtchn_notify(b->evtchn);
}

static void setup(struct bench *b, uint32_t spin, bool restricted, bool sweep)
{
    memset(b, 0, sizeof(*b));
    b->version = 7;
    b->sweep = sweep;
    struct sim_config cfg = {.mode = CPU_MODE_LONG, .ram_size = RAM, .nr_vcpus = 1, .quantum = 1000000};
    if (sim_domain_create(&b->d, &cfg) < 0)
        die("sim_domain_create", "failed");
    uint8_t code[64];
    size_t len = sweep ? sweep_code(code) : loop_code(code, spin);
    sim_mem_write(b->d, CODE_GPA, code, len);
    struct guest_build g;
    struct guest_build_range avoid[] = {{CODE_GPA, 0x1000}, {PAGE_A_GFN << 12, 0x2000},
                                        {SWEEP_GPA, SWEEP_PAGES * 0x1000ull}};
    if (guest_build_init(&g, sim_gpa(b->d, 0, RAM), RAM, CPU_MODE_LONG, 0, RAM, avoid, 3) < 0
        || guest_build_map(&g, CODE_GLA, CODE_GPA, 0x1000, 0x1000, GUEST_BUILD_X) < 0
        || guest_build_map(&g, PAGE_A_GLA, PAGE_A_GFN << 12, 0x2000, 0x1000, GUEST_BUILD_W) < 0
        || guest_build_map(&g, SWEEP_GLA, SWEEP_GPA, SWEEP_PAGES * 0x1000ull, 0x1000, GUEST_BUILD_W) < 0)
        die("guest_build", g.error);
    struct cpu_regs r;
    sim_vcpu_get_regs(b->d, 0, &r);
    guest_build_boot_regs(&g, &r, CODE_GLA, 0, 0);
    sim_vcpu_set_regs(b->d, 0, &r);
    struct ring_fds fds;
    if (sim_monitor_enable(b->d, b->version, &fds) < 0
        || ring_back_attach(&b->back, &fds, vme_slot_size(b->version), 0) < 0
        || evtchn_open(&b->evtchn, &fds, RING_ABI_PORT_CLIENT) < 0)
        die("monitor", sim_error(b->d));
    /* The client polls the ring on its turn instead of sleeping: its port stays masked. */
    evtchn_mask(b->evtchn);
    if (sweep)
        sim_set_mem_access(b->d, 5 /* rx */, SWEEP_GPA >> 12, SWEEP_PAGES);
    else if (restricted)
        sim_set_mem_access(b->d, 1 /* r */, PAGE_A_GFN, 1);
}

static void teardown(struct bench *b)
{
    ring_back_detach(b->back);
    evtchn_close(b->evtchn);
    sim_domain_destroy(b->d);
    free(b->stamps);
}

struct latency { double median_us, p99_us; uint64_t events; };

static struct latency round_trip(bool in_process, bool sweep, uint64_t events)
{
    struct bench b;
    setup(&b, 0, true, sweep);
    b.cap = events + 1;
    b.stamps = calloc(b.cap, sizeof(double));
    if (in_process)
        sim_set_client(b.d, client, &b);
    while (b.events < events) {
        struct sim_stop stop;
        sim_run(b.d, 1000000, &stop);
        if (stop.reason == SIM_STOP_EVENT)
            client(&b);
        else if (stop.reason != SIM_STOP_LIMIT)
            die("sim_run", stop.why[0] ? stop.why : sim_error(b.d));
    }
    size_t n = b.nstamps - 1;
    double *gaps = calloc(n, sizeof(double));
    for (size_t i = 0; i < n; i++)
        gaps[i] = (b.stamps[i + 1] - b.stamps[i]) / 1000.0;
    /* The first events pay for the engine's warm-up: skip a tenth. */
    size_t skip = n / 10;
    qsort(gaps + skip, n - skip, sizeof(double), cmp_double);
    struct latency l = {gaps[skip + (n - skip) / 2], gaps[skip + (size_t)((double)(n - skip) * 0.99)], b.events};
    free(gaps);
    teardown(&b);
    return l;
}

/* MIPS of the 10,000-instruction loop, with an event at each write or none. */
static double mips(bool events, uint64_t insns)
{
    struct bench b;
    setup(&b, 5000, events, false);
    sim_set_client(b.d, client, &b);
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        struct sim_stop stop;
        double t0 = now_ns();
        sim_run(b.d, insns, &stop);
        double t = now_ns() - t0;
        if (stop.reason != SIM_STOP_LIMIT)
            die("sim_run", stop.why[0] ? stop.why : sim_error(b.d));
        double m = (double)stop.insns / t * 1e3;
        if (m > best)
            best = m;
    }
    if (events && b.events == 0)
        die("mips", "no event fired");
    teardown(&b);
    return best;
}

int main(void)
{
    printf("vmisim mem_access event benchmark (vm_event v7, in-process client on the real ring)\n");
    printf("  event round trip: guest write faults -> request -> client answers -> the write completes\n");
    struct latency sw = round_trip(true, true, 200000);
    printf("  xen-access write pattern, in-process client:     %6.2f us median, %6.2f us p99"
           "   (goal <= 2 us median; %llu events)\n", sw.median_us, sw.p99_us, (unsigned long long)sw.events);
    struct latency in = round_trip(true, false, 200000);
    printf("  two pages re-restricted per event, in-process:   %6.2f us median, %6.2f us p99"
           "   (each event also restricts a page: a TLB flush)\n", in.median_us, in.p99_us);
    struct latency out = round_trip(false, true, 50000);
    printf("  xen-access write pattern, client between runs:   %6.2f us median, %6.2f us p99"
           "   (every event leaves and re-enters the engine)\n", out.median_us, out.p99_us);
    double quiet = mips(false, 50000000), busy = mips(true, 50000000);
    printf("  guest MIPS, no events:                           %8.1f\n", quiet);
    printf("  guest MIPS, one event every ~10,000 instructions: %7.1f   (%.2fx of no events)\n",
           busy, busy / quiet);
    return 0;
}
