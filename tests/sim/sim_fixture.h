/*
 * tests/sim/sim_fixture.h — the tiny domain the sim/ tests share: vCPUs running a
 * few bytes of code at gla 0x400000 (gpa FIX_CODE_GPA) with one data page at
 * FIX_DATA_GLA (gfn FIX_DATA_GFN), rbx set by the test and rax = 0x1000 + vCPU.
 * Set-up failures are errors in the test, not failures of the code under test.
 */
#ifndef VMISIM_TESTS_SIM_FIXTURE_H
#define VMISIM_TESTS_SIM_FIXTURE_H

#include <criterion/criterion.h>

#include "guest_build_internal.h"
#include "sim_internal.h"

#define FIX_RAM (1u << 20)
#define FIX_CODE_GPA 0x10000ull
#define FIX_DATA_GFN 0x20ull
#define FIX_DATA_GLA 0x600000ull

#define SETUP(expr)                                                                            \
    do {                                                                                       \
        if ((expr) < 0)                                                                        \
            cr_assert_fail("TEST ERROR (set-up, not the code under test): %s", #expr);         \
    } while (0)

/*
 * A domain from `cfg` with `code` at gla 0x400000 and `data_pages` data pages from
 * FIX_DATA_GLA (gfn FIX_DATA_GFN onwards), writable.
 */
static inline struct sim_domain *fixture_domain_cfg(const struct sim_config *cfg, const uint8_t *code,
                                                    size_t len, uint64_t rbx, unsigned data_pages)
{
    struct sim_domain *d = NULL;
    SETUP(sim_domain_create(&d, cfg));
    SETUP(sim_mem_write(d, FIX_CODE_GPA, code, len));
    struct guest_build b;
    struct guest_build_range avoid[] = {{FIX_CODE_GPA, 0x1000}, {FIX_DATA_GFN << 12, 0x1000ull * data_pages}};
    SETUP(guest_build_init(&b, sim_gpa(d, 0, cfg->ram_size), cfg->ram_size, CPU_MODE_LONG, 0, cfg->ram_size,
                           avoid, 2));
    SETUP(guest_build_map(&b, 0x400000, FIX_CODE_GPA, 0x1000, 0x1000, GUEST_BUILD_X));
    SETUP(guest_build_map(&b, FIX_DATA_GLA, FIX_DATA_GFN << 12, 0x1000ull * data_pages, 0x1000, GUEST_BUILD_W));
    for (unsigned v = 0; v < cfg->nr_vcpus; v++) {
        struct cpu_regs r;
        SETUP(sim_vcpu_get_regs(d, v, &r));
        guest_build_boot_regs(&b, &r, 0x400000, 0, 0);
        r.rbx = rbx;
        r.rax = 0x1000 + v;
        SETUP(sim_vcpu_set_regs(d, v, &r));
    }
    return d;
}

static inline struct sim_domain *fixture_domain(unsigned vcpus, const uint8_t *code, size_t len,
                                                uint64_t rbx)
{
    struct sim_config cfg = {.mode = CPU_MODE_LONG, .ram_size = FIX_RAM, .nr_vcpus = vcpus};
    return fixture_domain_cfg(&cfg, code, len, rbx, 1);
}

/* A test's client side of a ring: attach to its descriptors as a real client does. */
struct fixture_client {
    struct ring_back *back;
    struct evtchn *evtchn;
};

static inline void fixture_attach(struct fixture_client *c, const struct ring_fds *fds)
{
    SETUP(ring_back_attach(&c->back, fds, vme_slot_size(7), 0));
    SETUP(evtchn_open(&c->evtchn, fds, RING_ABI_PORT_CLIENT));
}

/* Puts one v7 response on the ring, pushes it and rings the doorbell if the simulator asked. */
static inline void fixture_respond(struct fixture_client *c, const struct vme_msg *rsp)
{
    unsigned char slot[400];
    SETUP(vme_encode(7, rsp, slot));
    ring_back_put_response(c->back, slot);
    if (ring_back_push_responses(c->back))
        evtchn_notify(c->evtchn);
}

/* Detaches the client (if attached) and destroys the domain. */
static inline void fixture_destroy(struct sim_domain *d, struct fixture_client *c)
{
    ring_back_detach(c->back);
    evtchn_close(c->evtchn);
    sim_domain_destroy(d);
}

/* Runs until the domain stops for a reason other than a new event. */
static inline struct sim_stop fixture_run_until_idle(struct sim_domain *d)
{
    struct sim_stop stop;
    for (int i = 0; i < 1000; i++) {
        sim_run(d, 100000, &stop);
        if (stop.reason != SIM_STOP_EVENT)
            return stop;
    }
    cr_assert_fail("the domain never became idle");
    return stop;
}

#endif
