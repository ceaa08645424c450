/*
 * tests/sim/test_schedule.c — the scheduler's decisions (sim_set_seed, the
 * schedule observer and source; issue 8).  It proves: seed 0 is round robin
 * in fixed quanta, decision after decision; a seed gives the same decisions
 * every time, other seeds other ones, and quanta stay within 1..2 x quantum;
 * a source dictates which vCPU runs and for how long; a source that names a
 * vCPU that cannot run, or refuses, stops the run with SIM_STOP_ERROR and a
 * message saying so.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sim_fixture.h"

#define QUANTUM 100
#define MAX_DECISIONS 256

/* Two vCPUs that spin forever: every stop is the budget's. */
static const uint8_t spin[] = {0xeb, 0xfe}; /* jmp $ */

struct log {
    size_t n;
    struct sim_schedule s[MAX_DECISIONS];
};

static void observe(void *opaque, const struct sim_schedule *s)
{
    struct log *l = opaque;
    if (l->n < MAX_DECISIONS)
        l->s[l->n++] = *s;
}

static struct sim_domain *spinner(unsigned vcpus, uint64_t seed)
{
    struct sim_config cfg = {.mode = CPU_MODE_LONG, .ram_size = FIX_RAM, .nr_vcpus = vcpus,
                             .quantum = QUANTUM, .seed = seed};
    return fixture_domain_cfg(&cfg, spin, sizeof(spin), 0, 1);
}

/* Runs a spinning domain from `seed` for `insns` instructions, logging every decision. */
static void decisions(unsigned vcpus, uint64_t seed, uint64_t insns, struct log *l)
{
    memset(l, 0, sizeof(*l));
    struct sim_domain *d = spinner(vcpus, seed);
    sim_set_schedule_observer(d, observe, l);
    struct sim_stop stop;
    cr_assert_eq(sim_run(d, insns, &stop), 0);
    cr_assert_eq(stop.reason, SIM_STOP_LIMIT, "%s", stop.why);
    cr_assert_eq(stop.insns, insns);
    sim_domain_destroy(d);
}

Test(schedule, seed_zero_is_round_robin_in_fixed_quanta)
{
    struct log l;
    decisions(3, 0, 10 * QUANTUM, &l);
    cr_assert_eq(l.n, 10);
    for (size_t i = 0; i < l.n; i++) {
        cr_expect_eq(l.s[i].n, i);
        cr_expect_eq(l.s[i].vcpu, i % 3, "decision %zu ran vCPU %u", i, l.s[i].vcpu);
        cr_expect_eq(l.s[i].quantum, QUANTUM);
        cr_expect_eq(l.s[i].runnable[0], 7);
    }
}

Test(schedule, a_seed_repeats_itself_and_others_differ)
{
    static struct log a, b, c;
    decisions(4, 42, 20 * QUANTUM, &a);
    decisions(4, 42, 20 * QUANTUM, &b);
    decisions(4, 43, 20 * QUANTUM, &c);
    cr_assert_eq(a.n, b.n);
    cr_assert(a.n > 10, "%zu decisions", a.n);
    bool other = a.n != c.n, vcpus[4] = {false}, tiny = false;
    for (size_t i = 0; i < a.n; i++) {
        cr_expect(a.s[i].vcpu == b.s[i].vcpu && a.s[i].quantum == b.s[i].quantum, "decision %zu differs", i);
        cr_expect(a.s[i].quantum >= 1 && a.s[i].quantum <= 2 * QUANTUM, "quantum %llu",
                  (unsigned long long)a.s[i].quantum);
        vcpus[a.s[i].vcpu] = true;
        tiny |= a.s[i].quantum <= 8;
        if (i < c.n)
            other |= a.s[i].vcpu != c.s[i].vcpu || a.s[i].quantum != c.s[i].quantum;
    }
    cr_expect(other, "seeds 42 and 43 made the same decisions");
    cr_expect(vcpus[0] && vcpus[1] && vcpus[2] && vcpus[3], "a seed must reach every vCPU");
    cr_expect(tiny, "some quanta must be tiny (1 to 8 instructions)");
}

/* A source that always runs vCPU `want` for 7 instructions (or refuses with -EIO when want is ~0). */
static int dictate(void *opaque, struct sim_schedule *s)
{
    unsigned want = *(unsigned *)opaque;
    if (want == ~0u) {
        snprintf(s->why, sizeof(s->why), "the recording has run out");
        return -EIO;
    }
    s->vcpu = want;
    s->quantum = 7;
    return 0;
}

Test(schedule, a_source_dictates_vcpu_and_quantum)
{
    struct sim_domain *d = spinner(2, 99); /* the seed is overruled */
    unsigned want = 1;
    struct log l = {0};
    sim_set_schedule_source(d, dictate, &want);
    sim_set_schedule_observer(d, observe, &l);
    struct sim_stop stop;
    cr_assert_eq(sim_run(d, 70, &stop), 0);
    cr_expect_eq(stop.reason, SIM_STOP_LIMIT, "%s", stop.why);
    cr_expect_eq(sim_vcpu_insns(d, 0), 0);
    cr_expect_eq(sim_vcpu_insns(d, 1), 70);
    cr_expect_eq(l.n, 10, "70 instructions in quanta of 7");
    sim_domain_destroy(d);
}

Test(schedule, a_source_naming_a_vcpu_that_cannot_run_stops_the_run)
{
    struct sim_domain *d = spinner(2, 0);
    d->vcpus[1].pause_count = 1; /* as if it awaited a response */
    unsigned want = 1;
    sim_set_schedule_source(d, dictate, &want);
    struct sim_stop stop;
    cr_assert_eq(sim_run(d, 100, &stop), 0);
    cr_expect_eq(stop.reason, SIM_STOP_ERROR);
    cr_expect(strstr(stop.why, "vCPU 1 is not runnable now (runnable: 0)"), "%s", stop.why);
    cr_expect_eq(sim_vcpu_insns(d, 1), 0);
    want = 5;
    d->vcpus[1].pause_count = 0;
    cr_assert_eq(sim_run(d, 100, &stop), 0);
    cr_expect(strstr(stop.why, "vCPU 5 is not runnable now (runnable: 0, 1)"), "%s", stop.why);
    want = ~0u;
    cr_assert_eq(sim_run(d, 100, &stop), 0);
    cr_expect_eq(stop.reason, SIM_STOP_ERROR);
    cr_expect(strstr(stop.why, "the recording has run out"), "%s", stop.why);
    sim_domain_destroy(d);
}
