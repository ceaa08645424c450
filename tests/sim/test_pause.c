/*
 * tests/sim/test_pause.c — whole-domain pause (xc_domain_pause, domain_pause_by_systemcontroller)
 * composing with the vCPUs' vm_event pauses, as Xen counts them, and its return codes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "sim_fixture.h"

/* mov qword [rbx], 0x55; hlt */
static const uint8_t code[] = {0x48, 0xc7, 0x03, 0x55, 0x00, 0x00, 0x00, 0xf4};

/* Proves: a paused domain runs nothing (BLOCKED, no instruction); unpausing lets it run. */
Test(sim_pause, paused_domain_runs_nothing)
{
    struct sim_domain *d = fixture_domain(2, code, sizeof(code), FIX_DATA_GLA);
    cr_assert_eq(sim_domain_pause(d), 0);
    cr_expect_eq(sim_vcpu_state(d, 1), SIM_VCPU_PAUSED);
    struct sim_stop stop;
    cr_assert_eq(sim_run(d, 1000, &stop), 0);
    cr_expect_eq(stop.reason, SIM_STOP_BLOCKED);
    cr_expect_eq(stop.insns, 0);
    cr_assert_eq(sim_domain_unpause(d), 0);
    stop = fixture_run_until_idle(d);
    cr_expect_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    sim_domain_destroy(d);
}

/* Proves: the counts compose: a vCPU paused for an event and by the toolstack runs only after
 * both the response and the unpause, in either order; the toolstack's count nests. */
Test(sim_pause, composes_with_event_pause)
{
    struct sim_domain *d = fixture_domain(1, code, sizeof(code), FIX_DATA_GLA);
    struct ring_fds fds;
    struct fixture_client client = {0};
    SETUP(sim_monitor_enable(d, 7, &fds));
    fixture_attach(&client, &fds);
    SETUP(sim_p2m_set_access(d, 1 /* r */, FIX_DATA_GFN, 1));
    struct sim_stop stop;
    cr_assert_eq(sim_run(d, 1000, &stop), 0);
    cr_assert_eq(stop.reason, SIM_STOP_EVENT, "%s", stop.why);
    cr_assert_eq(sim_domain_pause(d), 0);
    cr_assert_eq(sim_domain_pause(d), 0);
    cr_expect_eq(sim_domain_pause_count(d), 2);
    unsigned char slot[400];
    cr_assert_eq(ring_back_take_request(client.back, slot), 0);
    struct vme_msg req, rsp;
    vme_decode(7, slot, &req);
    SETUP(sim_p2m_set_access(d, 7, FIX_DATA_GFN, 1));
    memset(&rsp, 0, sizeof(rsp));
    rsp.version = 7;
    rsp.reason = req.reason;
    rsp.flags = VME_FLAG_VCPU_PAUSED;
    rsp.u.mem_access = req.u.mem_access;
    fixture_respond(&client, &rsp);
    cr_assert_eq(sim_run(d, 1000, &stop), 0);
    cr_expect_eq(sim_vcpu_pause_count(d, 0), 0, "the response was taken");
    cr_expect_eq(stop.reason, SIM_STOP_BLOCKED, "still paused by the toolstack");
    cr_expect_eq(sim_vcpu_state(d, 0), SIM_VCPU_PAUSED);
    cr_assert_eq(sim_domain_unpause(d), 0);
    cr_assert_eq(sim_run(d, 1000, &stop), 0);
    cr_expect_eq(stop.reason, SIM_STOP_BLOCKED, "paused twice, unpaused once");
    cr_assert_eq(sim_domain_unpause(d), 0);
    stop = fixture_run_until_idle(d);
    cr_expect_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    uint64_t v = 0;
    SETUP(sim_mem_read(d, FIX_DATA_GFN << 12, &v, 8));
    cr_expect_eq(v, 0x55);
    fixture_destroy(d, &client);
}

/* Proves: Xen's return codes: unpause of a domain the toolstack did not pause is -EINVAL; the
 * 256th pause is -EOVERFLOW and changes nothing. */
Test(sim_pause, return_codes)
{
    struct sim_domain *d = fixture_domain(1, code, sizeof(code), FIX_DATA_GLA);
    cr_expect_eq(sim_domain_unpause(d), -EINVAL);
    for (unsigned i = 0; i < 255; i++)
        cr_assert_eq(sim_domain_pause(d), 0, "pause %u", i);
    cr_expect_eq(sim_domain_pause(d), -EOVERFLOW);
    cr_expect_eq(sim_domain_pause_count(d), 255);
    sim_domain_destroy(d);
}
