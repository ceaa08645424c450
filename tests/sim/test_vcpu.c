/*
 * tests/sim/test_vcpu.c — bringing vCPUs up and down (Xen's VCPUOP_initialise,
 * _up, _down, _is_up, sim/vcpu_op.c), and what a domain whose vCPUs all wait
 * for an in-process client does (sim/wait.c): turns for the client in
 * simulated time, then a deadlock report instead of a hang.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <xen/xen.h>
#include <xen/hvm/hvm_vcpu.h>

#include "hypercall_internal.h"
#include "sim_fixture.h"

/* mov qword [rbx], 0x55; hlt */
static const uint8_t code[] = {0x48, 0xc7, 0x03, 0x55, 0x00, 0x00, 0x00, 0xf4};

static struct sim_domain *domain_online(unsigned vcpus, unsigned online, uint64_t deadlock_timeout)
{
    struct sim_config cfg = {.mode = CPU_MODE_LONG, .ram_size = FIX_RAM, .nr_vcpus = vcpus,
                             .nr_online = online, .hypercalls = SIM_HYPERCALL_XEN,
                             .deadlock_timeout = deadlock_timeout};
    return fixture_domain_cfg(&cfg, code, sizeof(code), FIX_DATA_GLA, 1);
}

/* Proves: vCPUs beyond nr_online start down and never run; up needs initialise first (EINVAL),
 * initialise leaves the vCPU down, a second initialise is EEXIST, up makes it run. */
Test(sim_vcpu, down_until_initialised_and_up)
{
    struct sim_domain *d = domain_online(2, 1, 0);
    cr_expect_eq(sim_vcpu_state(d, 1), SIM_VCPU_DOWN);
    cr_expect(!sim_vcpu_is_up(d, 1));
    struct sim_stop stop = fixture_run_until_idle(d);
    cr_expect_eq(stop.reason, SIM_STOP_HALTED, "vCPU 0 halted, vCPU 1 is down: %s", stop.why);
    cr_expect_eq(sim_vcpu_insns(d, 1), 0, "a down vCPU never runs");
    cr_expect_eq(sim_vcpu_up(d, 1), -EINVAL);
    struct cpu_regs r;
    SETUP(sim_vcpu_get_regs(d, 1, &r));
    r.rip = 0x400000;
    cr_assert_eq(sim_vcpu_initialise(d, 1, &r), 0);
    cr_expect_eq(sim_vcpu_state(d, 1), SIM_VCPU_DOWN, "initialise leaves it down");
    cr_expect_eq(sim_vcpu_initialise(d, 1, &r), -EEXIST);
    cr_assert_eq(sim_vcpu_up(d, 1), 0);
    stop = fixture_run_until_idle(d);
    cr_expect_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    cr_expect_eq(sim_vcpu_insns(d, 1), 2);
    cr_expect_eq(sim_vcpu_up(d, 2), -ENOENT);
    cr_expect_eq(sim_vcpu_down(d, 7), -ENOENT);
    sim_domain_destroy(d);
}

/* Proves: VCPUOP_down of the last vCPU up shuts the domain down (poweroff), as do_vcpu_op does;
 * taking down one of two only stops that one. */
Test(sim_vcpu, last_down_shuts_the_domain_down)
{
    struct sim_domain *d = domain_online(2, 0, 0);
    cr_assert_eq(sim_vcpu_down(d, 1), 0);
    cr_expect_eq(sim_vcpu_state(d, 1), SIM_VCPU_DOWN);
    cr_expect_eq(sim_domain_shutdown_reason(d), -1);
    cr_assert_eq(sim_vcpu_down(d, 0), 0);
    cr_expect_eq(sim_domain_shutdown_reason(d), 0, "poweroff");
    struct sim_stop stop;
    sim_run(d, 1000, &stop);
    cr_expect_eq(stop.reason, SIM_STOP_SHUTDOWN);
    sim_domain_destroy(d);
}

static int64_t vcpu_op(struct sim_domain *d, uint64_t cmd, uint64_t vcpu, uint64_t arg)
{
    uint64_t args[HCALL_MAX_ARGS] = {cmd, vcpu, arg, 0, 0};
    return hcall_invoke(d, 0, SIM_HYPERCALL_XEN, true, 24, args);
}

static struct vcpu_hvm_context good_context(struct sim_domain *d)
{
    struct cpu_regs r;
    SETUP(sim_vcpu_get_regs(d, 0, &r));
    struct vcpu_hvm_context ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.mode = VCPU_HVM_MODE_64B;
    ctx.cpu_regs.x86_64.rip = 0x400000;
    ctx.cpu_regs.x86_64.rax = 0x77;
    ctx.cpu_regs.x86_64.rsp = 0x5000;
    ctx.cpu_regs.x86_64.rflags = 2;
    ctx.cpu_regs.x86_64.cr0 = r.cr0;
    ctx.cpu_regs.x86_64.cr3 = r.cr3;
    ctx.cpu_regs.x86_64.cr4 = r.cr4;
    ctx.cpu_regs.x86_64.efer = r.efer;
    return ctx;
}

/* Proves: the guest's VCPUOP_initialise applies arch_set_info_hvm_guest's checks (pad, canonical
 * RIP, CR0.PG/CR4.PAE/EFER.LME, the mode) with EINVAL and nothing changed; a bad pointer is
 * EFAULT, a bad id ENOENT; a good context sets the registers and VCPUOP_up / _is_up work. */
Test(sim_vcpu, hypercall_initialise_checks)
{
    struct sim_domain *d = domain_online(2, 1, 0);
    struct vcpu_hvm_context ctx = good_context(d);
    const uint64_t gpa = FIX_DATA_GFN << 12;
    static const char *const cases[] = {"pad not zero", "non-canonical rip", "no EFER.LME",
                                        "32-bit context in a long-mode domain", "unknown mode"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct vcpu_hvm_context b = ctx;
        switch (i) {
        case 0: b.pad = 1; break;
        case 1: b.cpu_regs.x86_64.rip = 0x0000800000000000ull; break;
        case 2: b.cpu_regs.x86_64.efer &= ~0x500ull; break;
        case 3: b.mode = VCPU_HVM_MODE_32B; break;
        default: b.mode = 7; break;
        }
        SETUP(sim_mem_write(d, gpa, &b, sizeof(b)));
        cr_expect_eq(vcpu_op(d, 0, 1, FIX_DATA_GLA), -EINVAL, "%s", cases[i]);
    }
    cr_expect_eq(sim_vcpu_state(d, 1), SIM_VCPU_DOWN);
    cr_expect_eq(vcpu_op(d, 1, 1, 0), -EINVAL, "up before initialise");
    cr_expect_eq(vcpu_op(d, 0, 1, 0x7ff000000000ull), -EFAULT, "an unmapped context");
    cr_expect_eq(vcpu_op(d, 0, 2, FIX_DATA_GLA), -ENOENT);
    SETUP(sim_mem_write(d, gpa, &ctx, sizeof(ctx)));
    cr_assert_eq(vcpu_op(d, 0, 1, FIX_DATA_GLA), 0);
    cr_expect_eq(vcpu_op(d, 3, 1, 0), 0, "is_up: still down");
    cr_expect_eq(vcpu_op(d, 0, 1, FIX_DATA_GLA), -EEXIST);
    cr_assert_eq(vcpu_op(d, 1, 1, 0), 0);
    cr_expect_eq(vcpu_op(d, 3, 1, 0), 1, "is_up");
    struct cpu_regs r;
    SETUP(sim_vcpu_get_regs(d, 1, &r));
    cr_expect_eq(r.rip, 0x400000);
    cr_expect_eq(r.rax, 0x77);
    cr_expect_eq(r.rsp, 0x5000);
    sim_domain_destroy(d);
}

/* ---- In-process clients and simulated time ------------------------------------------------ */

struct slow_client {
    struct sim_domain *d;
    struct fixture_client c;
    unsigned turns;        /* calls so far */
    unsigned answer_after; /* answers everything taken once turns reaches it (0: never) */
    unsigned taken, answered;
    struct vme_msg held[SIM_MAX_VCPUS];
};

static void slow_client_turn(void *opaque)
{
    struct slow_client *s = opaque;
    s->turns++;
    unsigned char slot[400];
    while (ring_back_take_request(s->c.back, slot) == 0) {
        cr_assert_lt(s->taken, SIM_MAX_VCPUS, "more requests than vCPUs: one was duplicated");
        vme_decode(7, slot, &s->held[s->taken++]);
    }
    if (!s->answer_after || s->turns < s->answer_after)
        return;
    for (; s->answered < s->taken; s->answered++) {
        struct vme_msg rsp = s->held[s->answered];
        rsp.flags = VME_FLAG_VCPU_PAUSED | VME_FLAG_EMULATE;
        fixture_respond(&s->c, &rsp);
    }
}

static void start_slow_client(struct slow_client *s, struct sim_domain *d, unsigned answer_after)
{
    struct ring_fds fds;
    memset(s, 0, sizeof(*s));
    s->d = d;
    s->answer_after = answer_after;
    SETUP(sim_monitor_enable(d, 7, &fds));
    fixture_attach(&s->c, &fds);
    sim_set_client(d, slow_client_turn, s);
    SETUP(sim_p2m_set_access(d, 1 /* r */, FIX_DATA_GFN, 1));
}

/* Proves: 16 vCPUs, an 8-slot ring and a client that takes every request and answers none:
 * sim_run does not hang; after the deadlock timeout of simulated time it stops with
 * SIM_STOP_DEADLOCK, saying who waits for what; nothing was lost or duplicated; the same
 * run gives the same report and the same simulated time. */
Test(sim_wait, client_that_never_answers_is_a_deadlock)
{
    char first[256] = "";
    uint64_t first_now = 0;
    for (int run = 0; run < 2; run++) {
        struct sim_domain *d = domain_online(16, 0, 200000);
        struct slow_client s;
        start_slow_client(&s, d, 0);
        struct sim_stop stop;
        cr_assert_eq(sim_run(d, 10000000, &stop), 0);
        cr_assert_eq(stop.reason, SIM_STOP_DEADLOCK, "stop %d: %s", stop.reason, stop.why);
        cr_expect(strstr(stop.why, "vCPUs 0-7 wait for a response with VCPU_PAUSED"), "%s", stop.why);
        cr_expect(strstr(stop.why, "vCPUs 8-15 wait for a free ring slot"), "%s", stop.why);
        cr_expect(strstr(stop.why, "8 of 8 slots"), "%s", stop.why);
        cr_expect_eq(s.taken, 8, "every posted request reached the client once");
        cr_expect_geq(s.turns, 200000 / 10000, "the client had a turn per idle quantum");
        uint64_t now = sim_now(d);
        cr_expect_geq(now, 200000);
        if (run == 0) {
            snprintf(first, sizeof(first), "%s", stop.why);
            first_now = now;
        } else {
            cr_expect_str_eq(stop.why, first, "the same report");
            cr_expect_eq(now, first_now, "the same simulated time");
        }
        fixture_destroy(d, &s.c);
    }
}

/* Proves: a slow client — one that answers only on its 5th turn, long after the requests came —
 * is not a deadlock: idle turns are given in simulated time, the responses free the ring,
 * the waiting vCPUs post theirs, and every vCPU's write is emulated and done. */
Test(sim_wait, slow_client_is_not_a_deadlock)
{
    struct sim_domain *d = domain_online(16, 0, 0);
    struct slow_client s;
    start_slow_client(&s, d, 5);
    struct sim_stop stop;
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(sim_run(d, 10000000, &stop), 0);
        if (stop.reason != SIM_STOP_EVENT)
            break;
    }
    cr_expect_eq(stop.reason, SIM_STOP_HALTED, "stop %d: %s", stop.reason, stop.why);
    cr_expect_eq(s.taken, 16);
    cr_expect_eq(s.answered, 16);
    for (unsigned v = 0; v < 16; v++)
        cr_expect_eq(sim_vcpu_state(d, v), SIM_VCPU_HALTED, "vCPU %u", v);
    uint64_t val = 0;
    SETUP(sim_mem_read(d, FIX_DATA_GFN << 12, &val, 8));
    cr_expect_eq(val, 0x55);
    fixture_destroy(d, &s.c);
}

/* Proves: 64 vCPUs (the most a domain may have) share guest memory and one 8-slot ring: each
 * writes its own id to its own slot of one protected page, every write raises exactly one
 * event (taken once, answered once, through wait queue and black eyes), and every write lands. */
Test(sim_vcpu, sixty_four_vcpus_one_page)
{
    static const uint8_t own_slot[] = {0x48, 0x89, 0x84, 0xc3, 0x00, 0x80, 0xff, 0xff, /* mov [rbx+rax*8-0x8000], rax */
                                       0xf4};                                          /* hlt */
    struct sim_config cfg = {.mode = CPU_MODE_LONG, .ram_size = FIX_RAM, .nr_vcpus = SIM_MAX_VCPUS};
    struct sim_domain *d = fixture_domain_cfg(&cfg, own_slot, sizeof(own_slot), FIX_DATA_GLA, 1);
    struct slow_client s;
    start_slow_client(&s, d, 1);
    struct sim_stop stop;
    for (int i = 0; i < 200; i++) {
        cr_assert_eq(sim_run(d, 10000000, &stop), 0);
        if (stop.reason != SIM_STOP_EVENT)
            break;
    }
    cr_expect_eq(stop.reason, SIM_STOP_HALTED, "stop %d: %s", stop.reason, stop.why);
    cr_expect_eq(s.taken, SIM_MAX_VCPUS);
    cr_expect_eq(s.answered, SIM_MAX_VCPUS);
    bool seen[SIM_MAX_VCPUS] = {false};
    for (unsigned i = 0; i < s.taken; i++) {
        cr_assert_lt(s.held[i].vcpu_id, SIM_MAX_VCPUS);
        cr_expect(!seen[s.held[i].vcpu_id], "vCPU %u's request arrived twice", s.held[i].vcpu_id);
        seen[s.held[i].vcpu_id] = true;
    }
    for (unsigned v = 0; v < SIM_MAX_VCPUS; v++) {
        uint64_t val = 0;
        SETUP(sim_mem_read(d, (FIX_DATA_GFN << 12) + 8ull * v, &val, 8));
        cr_expect_eq(val, 0x1000 + v, "vCPU %u's write", v);
    }
    fixture_destroy(d, &s.c);
}
