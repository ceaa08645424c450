/*
 * tests/sim/bench_vcpus.c — mem_access events per second with 1, 4 and 16
 * vCPUs and an in-process client (sim_set_client), in one run.
 *
 * Every vCPU runs the same loop: write page A, write page B, forever, with
 * `spin` dec/jnz iterations before each write.  Each vCPU has its own pair
 * of pages, one of them restricted to r: each write faults, the client (on
 * the real ring, as a real client) relaxes the faulting page, restricts the
 * vCPU's other one and answers VCPU_PAUSED.  The scheduler interleaves the
 * vCPUs in quanta of 10,000 instructions (the default), so the ring carries
 * requests of several vCPUs, and the same work is done per event whatever the
 * vCPU count: the figure shows what the scheduler and the many-vCPU ring
 * machinery cost.  Reported: events/s, and the ratio to 1 vCPU.
 * Run with `meson test -C build --benchmark --verbose` or directly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guest_build_internal.h"
#include "bench_clock.h"
#include "sim.h"
#include "vm_event_internal.h"

#define RAM (16u << 20)
#define CODE_GLA 0x400000ull
#define CODE_GPA 0x10000ull
#define PAGES_GLA 0x600000ull
#define PAGES_GFN 0x100ull /* vCPU i: gfns PAGES_GFN + 2i (A) and + 2i + 1 (B) */

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_vcpus: %s: %s\n", what, why);
    exit(1);
}

/* write [rbx] (page A), write [rdx] (page B), each after `spin` iterations of dec/jnz, forever. */
static size_t loop_code(uint8_t *c, uint32_t spin)
{
    size_t n = 0, outer = 0;
    for (int half = 0; half < 2; half++) {
        if (spin) { /* with 0, dec would wrap and spin 2^32 times */
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

struct bench {
    struct sim_domain *d;
    struct ring_back *back;
    struct evtchn *evtchn;
    uint64_t events;
};

static void client(void *opaque)
{
    struct bench *b = opaque;
    unsigned char slot[400];
    bool any = false;
    while (ring_back_take_request(b->back, slot) == 0) {
        struct vme_msg req, rsp;
        vme_decode(7, slot, &req);
        uint64_t gfn = req.u.mem_access.gfn;
        sim_set_mem_access(b->d, 3 /* rw */, gfn, 1);
        sim_set_mem_access(b->d, 1 /* r */, gfn ^ 1, 1); /* the vCPU's other page */
        memset(&rsp, 0, sizeof(rsp));
        rsp.version = 7;
        rsp.vcpu_id = req.vcpu_id;
        rsp.reason = req.reason;
        rsp.flags = req.flags & VME_FLAG_VCPU_PAUSED;
        rsp.u = req.u;
        vme_encode(7, &rsp, slot);
        ring_back_put_response(b->back, slot);
        b->events++;
        any = true;
    }
    if (any && ring_back_push_responses(b->back))
        evtchn_notify(b->evtchn);
}

static void setup(struct bench *b, unsigned vcpus, uint32_t spin)
{
    memset(b, 0, sizeof(*b));
    struct sim_config cfg = {.mode = CPU_MODE_LONG, .ram_size = RAM, .nr_vcpus = vcpus};
    if (sim_domain_create(&b->d, &cfg) < 0)
        die("sim_domain_create", "failed");
    uint8_t code[64];
    size_t len = loop_code(code, spin);
    sim_mem_write(b->d, CODE_GPA, code, len);
    struct guest_build g;
    struct guest_build_range avoid[] = {{CODE_GPA, 0x1000}, {PAGES_GFN << 12, 2ull * vcpus * 0x1000}};
    if (guest_build_init(&g, sim_gpa(b->d, 0, RAM), RAM, CPU_MODE_LONG, 0, RAM, avoid, 2) < 0
        || guest_build_map(&g, CODE_GLA, CODE_GPA, 0x1000, 0x1000, GUEST_BUILD_X) < 0
        || guest_build_map(&g, PAGES_GLA, PAGES_GFN << 12, 2ull * vcpus * 0x1000, 0x1000, GUEST_BUILD_W) < 0)
        die("guest_build", g.error);
    for (unsigned v = 0; v < vcpus; v++) {
        struct cpu_regs r;
        sim_vcpu_get_regs(b->d, v, &r);
        guest_build_boot_regs(&g, &r, CODE_GLA, 0, 0);
        r.rbx = PAGES_GLA + 2ull * v * 0x1000;
        r.rdx = r.rbx + 0x1000;
        sim_vcpu_set_regs(b->d, v, &r);
    }
    struct ring_fds fds;
    if (sim_monitor_enable(b->d, 7, &fds) < 0 || ring_back_attach(&b->back, &fds, vme_slot_size(7), 0) < 0
        || evtchn_open(&b->evtchn, &fds, RING_ABI_PORT_CLIENT) < 0)
        die("monitor", sim_error(b->d));
    evtchn_mask(b->evtchn);
    for (unsigned v = 0; v < vcpus; v++)
        sim_set_mem_access(b->d, 1 /* r */, PAGES_GFN + 2ull * v, 1);
    sim_set_client(b->d, client, b);
}

static void teardown(struct bench *b)
{
    ring_back_detach(b->back);
    evtchn_close(b->evtchn);
    sim_domain_destroy(b->d);
}

/* Events per second over `events` events (after a warm-up of a tenth as many). */
static double events_per_s(unsigned vcpus, uint32_t spin, uint64_t events, double *insns_per_event)
{
    struct bench b;
    setup(&b, vcpus, spin);
    struct sim_stop stop;
    while (b.events < events / 10)
        if (sim_run(b.d, 1000000, &stop) < 0 || (stop.reason != SIM_STOP_LIMIT && stop.reason != SIM_STOP_EVENT))
            die("sim_run", stop.why[0] ? stop.why : sim_error(b.d));
    uint64_t e0 = b.events, i0 = sim_now(b.d);
    double t0 = now_ns();
    while (b.events - e0 < events)
        if (sim_run(b.d, 1000000, &stop) < 0 || (stop.reason != SIM_STOP_LIMIT && stop.reason != SIM_STOP_EVENT))
            die("sim_run", stop.why[0] ? stop.why : sim_error(b.d));
    double secs = (now_ns() - t0) / 1e9;
    uint64_t done = b.events - e0;
    *insns_per_event = (double)(sim_now(b.d) - i0) / (double)done;
    teardown(&b);
    return (double)done / secs;
}

int main(void)
{
    static const unsigned counts[] = {1, 4, 16};
    static const uint32_t spins[] = {0, 1000};
    printf("mem_access events per second, in-process client, each vCPU on its own two pages\n");
    fflush(stdout);
    printf("%-8s %20s %14s %10s\n", "vCPUs", "instructions/event", "events/s", "vs 1 vCPU");
    for (size_t s = 0; s < sizeof(spins) / sizeof(spins[0]); s++) {
        double base = 0;
        for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
            double per_event = 0;
            double eps = events_per_s(counts[i], spins[s], spins[s] ? 40000 : 200000, &per_event);
            if (i == 0)
                base = eps;
            printf("%-8u %20.1f %14.0f %9.2fx\n", counts[i], per_event, eps, eps / base);
            fflush(stdout);
        }
    }
    return 0;
}
