/*
 * tests/sim/test_paging.c — mem_paging (spec §6): the paging ring, the pager's
 * nominate / evict / load, p2m_mem_paging_populate when the guest touches a
 * page in the paging path, and p2m_mem_paging_resume.  Each domain: N vCPUs
 * running `mov rax, [rbx]; hlt` with rbx = a data page full of a pattern, so
 * every vCPU reads that page once.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hypercall_internal.h"
#include "sim_fixture.h"

#define RAM FIX_RAM
#define CODE_GPA FIX_CODE_GPA
#define DATA_GFN FIX_DATA_GFN
#define DATA_GVA FIX_DATA_GLA
#define READ_OFF 0x18u

struct fixture {
    struct sim_domain *d;
    struct ring_fds fds;
    struct fixture_client client;
    uint8_t saved[4096];   /* the pager's copy */
};

static void make(struct fixture *f, unsigned vcpus, bool ring)
{
    memset(f, 0, sizeof(*f));
    const uint8_t code[] = {0x48, 0x8b, 0x03, 0xf4}; /* mov rax, [rbx]; hlt */
    f->d = fixture_domain(vcpus, code, sizeof(code), DATA_GVA + READ_OFF);
    uint8_t pattern[4096];
    for (unsigned i = 0; i < sizeof(pattern); i++)
        pattern[i] = (uint8_t)(i * 7 + 3);
    SETUP(sim_mem_write(f->d, DATA_GFN << 12, pattern, sizeof(pattern)));
    if (ring) {
        SETUP(sim_paging_enable(f->d, 7, &f->fds));
        fixture_attach(&f->client, &f->fds);
    }
}

static void unmake(struct fixture *f)
{
    fixture_destroy(f->d, &f->client);
}

/* The pager pages the data page out: saves it, nominates, evicts. */
static void page_out(struct fixture *f)
{
    SETUP(sim_mem_read(f->d, DATA_GFN << 12, f->saved, sizeof(f->saved)));
    cr_assert_eq(sim_paging_nominate(f->d, DATA_GFN), 0, "%s", sim_error(f->d));
    cr_assert_eq(sim_paging_evict(f->d, DATA_GFN), 0, "%s", sim_error(f->d));
}

static uint64_t expected_qword(const struct fixture *f)
{
    uint64_t q;
    memcpy(&q, f->saved + READ_OFF, sizeof(q));
    return q;
}

static struct sim_stop run_until_idle(struct fixture *f)
{
    return fixture_run_until_idle(f->d);
}

/* Takes one request off the paging ring; false if none. */
static bool take(struct fixture *f, struct vme_msg *req)
{
    unsigned char slot[400];
    if (ring_back_take_request(f->client.back, slot) != 0)
        return false;
    vme_decode(7, slot, req);
    return true;
}

/* The pager's response: VCPU_PAUSED echoed, u.mem_paging echoed (plus extra flags). */
static void respond(struct fixture *f, const struct vme_msg *req, uint32_t paging_flags)
{
    struct vme_msg rsp;
    memset(&rsp, 0, sizeof(rsp));
    rsp.version = 7;
    rsp.vcpu_id = req->vcpu_id;
    rsp.reason = VME_REASON_MEM_PAGING;
    rsp.flags = req->flags & VME_FLAG_VCPU_PAUSED;
    rsp.u.paging.gfn = req->u.paging.gfn;
    rsp.u.paging.p2mt = req->u.paging.p2mt;
    rsp.u.paging.flags = paging_flags;
    fixture_respond(&f->client, &rsp);
}

static unsigned p2mt(struct fixture *f)
{
    unsigned t = 99;
    cr_assert_eq(sim_p2m_type(f->d, DATA_GFN, &t), 0);
    return t;
}

static uint64_t rax(struct fixture *f, unsigned v)
{
    struct cpu_regs r;
    cr_assert_eq(sim_vcpu_get_regs(f->d, v, &r), 0);
    return r.rax;
}

/* Evict drops the contents; the pager calls refuse what Xen refuses. */
Test(sim_paging, evict_drops_contents)
{
    struct fixture f;
    make(&f, 1, true);
    cr_expect_eq(sim_paging_evict(f.d, DATA_GFN), -EBUSY, "not nominated");
    cr_expect_eq(sim_paging_load(f.d, DATA_GFN, f.saved), -ENOENT, "ram_rw cannot be loaded");
    page_out(&f);
    cr_expect_eq(p2mt(&f), SIM_P2MT_PAGED);
    uint8_t now[4096], zero[4096] = {0};
    cr_expect_null(sim_gpa(f.d, DATA_GFN << 12, 8));
    cr_expect_eq(sim_tot_pages(f.d), RAM / 4096 - 1, "the frame left the domain");
    cr_expect(memcmp(f.saved, zero, sizeof(zero)) != 0);
    cr_expect_eq(sim_paging_nominate(f.d, DATA_GFN), -EBUSY, "paged is not pageable");
    cr_expect_eq(sim_paging_evict(f.d, DATA_GFN), -EBUSY, "already evicted");
    cr_expect_eq(sim_paging_nominate(f.d, RAM / 4096), -EBUSY, "beyond guest RAM");
    cr_expect_eq(sim_paging_load(f.d, DATA_GFN, NULL), -EINVAL, "no frame and no buffer");
    cr_expect_eq(sim_paging_enable(f.d, 7, &f.fds), -EBUSY);
    /* Load with no guest access at all: back at once, nothing on the ring. */
    cr_expect_eq(sim_paging_load(f.d, DATA_GFN, f.saved), 0, "%s", sim_error(f.d));
    cr_expect_eq(p2mt(&f), SIM_P2MT_RAM_RW);
    cr_expect_eq(sim_tot_pages(f.d), RAM / 4096);
    SETUP(sim_mem_read(f.d, DATA_GFN << 12, now, sizeof(now)));
    cr_expect(memcmp(now, f.saved, sizeof(now)) == 0);
    struct sim_stop stop = run_until_idle(&f);
    cr_expect_eq(stop.reason, SIM_STOP_HALTED);
    cr_expect_eq(ring_back_unconsumed_requests(f.client.back), 0);
    cr_expect_eq(rax(&f, 0), expected_qword(&f));
    unmake(&f);
}

/* Proves: a host read of a paged gfn (the toolstack's foreign mapping) is refused with
 * -ENOENT and asks the pager for the page with a FOREIGN request that pauses nobody and
 * carries no registers; a second read sends nothing more; after load the read works. */
Test(sim_paging, foreign_read_populates)
{
    struct fixture f;
    make(&f, 1, true);
    page_out(&f);
    uint8_t now[4096];
    cr_expect_eq(sim_mem_read(f.d, DATA_GFN << 12, now, sizeof(now)), -ENOENT,
                 "an evicted gfn has no frame to read");
    cr_expect(strstr(sim_error(f.d), "paged out") != NULL, "%s", sim_error(f.d));
    cr_expect_eq(p2mt(&f), SIM_P2MT_PAGING_IN);
    struct vme_msg req;
    cr_assert(take(&f, &req), "a MEM_PAGING request");
    cr_expect_eq(req.reason, VME_REASON_MEM_PAGING);
    cr_expect_eq(req.u.paging.gfn, DATA_GFN);
    cr_expect_eq(req.u.paging.p2mt, SIM_P2MT_PAGED);
    cr_expect(req.flags & VME_FLAG_FOREIGN, "flags %#x", req.flags);
    cr_expect(!(req.flags & VME_FLAG_VCPU_PAUSED), "nobody paused");
    cr_expect_eq(req.regs.rip, 0, "no registers in a paging request");
    cr_expect_eq(sim_mem_read(f.d, DATA_GFN << 12, now, sizeof(now)), -ENOENT);
    cr_expect(!take(&f, &req), "already on its way in: no second request");
    cr_assert_eq(sim_paging_load(f.d, DATA_GFN, f.saved), 0, "%s", sim_error(f.d));
    respond(&f, &(struct vme_msg){.vcpu_id = 0, .u.paging = {.gfn = DATA_GFN, .p2mt = SIM_P2MT_PAGED}}, 0);
    SETUP(sim_mem_read(f.d, DATA_GFN << 12, now, sizeof(now)));
    cr_expect(memcmp(now, f.saved, sizeof(now)) == 0);
    struct sim_stop stop = run_until_idle(&f);
    cr_expect_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    cr_expect_eq(rax(&f, 0), expected_qword(&f));
    unmake(&f);
}

/* Without the paging ring the pager's calls are -ENODEV. */
Test(sim_paging, needs_ring)
{
    struct fixture f;
    make(&f, 1, false);
    cr_expect_not(sim_paging_enabled(f.d));
    cr_expect_eq(sim_paging_nominate(f.d, DATA_GFN), -ENODEV);
    cr_expect_eq(sim_paging_evict(f.d, DATA_GFN), -ENODEV);
    cr_expect_eq(sim_paging_load(f.d, DATA_GFN, f.saved), -ENODEV);
    cr_expect_eq(sim_paging_resume(f.d), -ENODEV);
    cr_expect_eq(sim_paging_enable(f.d, 2, &f.fds), -EINVAL);
    unmake(&f);
}

/*
 * A guest read of the evicted page: one MEM_PAGING request (gfn, p2mt paged,
 * VCPU_PAUSED, no EVICT_FAIL), the vCPU paused; load + response bring the
 * exact contents back and the read returns them.
 */
Test(sim_paging, read_of_paged_page_round_trip)
{
    struct fixture f;
    make(&f, 1, true);
    page_out(&f);
    struct sim_stop stop = run_until_idle(&f);
    cr_assert_eq(stop.reason, SIM_STOP_BLOCKED);
    cr_expect_eq(sim_vcpu_state(f.d, 0), SIM_VCPU_PAUSED);
    cr_expect_eq(sim_vcpu_pause_count(f.d, 0), 1);
    cr_expect_eq(rax(&f, 0), 0x1000, "the read has not happened");
    cr_expect_eq(p2mt(&f), SIM_P2MT_PAGING_IN);
    struct vme_msg req;
    cr_assert(take(&f, &req));
    cr_expect_eq(req.version, 7);
    cr_expect_eq(req.reason, VME_REASON_MEM_PAGING);
    cr_expect_eq(req.vcpu_id, 0);
    cr_expect_eq(req.flags & VME_FLAG_VCPU_PAUSED, VME_FLAG_VCPU_PAUSED);
    cr_expect_eq(req.u.paging.gfn, DATA_GFN);
    cr_expect_eq(req.u.paging.p2mt, SIM_P2MT_PAGED);
    cr_expect_eq(req.u.paging.flags, 0);
    cr_expect_not(take(&f, &req), "one request only");
    cr_assert_eq(sim_paging_load(f.d, DATA_GFN, f.saved), 0, "%s", sim_error(f.d));
    cr_expect_eq(p2mt(&f), SIM_P2MT_RAM_RW, "loaded: ram_rw at once");
    cr_expect_eq(sim_vcpu_state(f.d, 0), SIM_VCPU_PAUSED, "still paused until the response");
    respond(&f, &req, 0);
    stop = run_until_idle(&f);
    cr_expect_eq(stop.reason, SIM_STOP_HALTED);
    cr_expect_eq(sim_vcpu_pause_count(f.d, 0), 0);
    cr_expect_eq(rax(&f, 0), expected_qword(&f), "rax %#llx", (unsigned long long)rax(&f, 0));
    uint8_t now[4096];
    SETUP(sim_mem_read(f.d, DATA_GFN << 12, now, sizeof(now)));
    cr_expect(memcmp(now, f.saved, sizeof(now)) == 0, "the exact contents are back");
    unmake(&f);
}

/*
 * Nominated but not evicted: the touch sends EVICT_FAIL (p2mt paging_out), the
 * evict now fails, and the response alone (no load) makes the page rw with its
 * contents intact.
 */
Test(sim_paging, evict_fail_when_nominated_only)
{
    struct fixture f;
    make(&f, 1, true);
    SETUP(sim_mem_read(f.d, DATA_GFN << 12, f.saved, sizeof(f.saved)));
    cr_assert_eq(sim_paging_nominate(f.d, DATA_GFN), 0);
    cr_expect_eq(p2mt(&f), SIM_P2MT_PAGING_OUT);
    struct sim_stop stop = run_until_idle(&f);
    cr_assert_eq(stop.reason, SIM_STOP_BLOCKED);
    struct vme_msg req;
    cr_assert(take(&f, &req));
    cr_expect_eq(req.reason, VME_REASON_MEM_PAGING);
    cr_expect_eq(req.u.paging.gfn, DATA_GFN);
    cr_expect_eq(req.u.paging.p2mt, SIM_P2MT_PAGING_OUT);
    cr_expect_eq(req.u.paging.flags, VME_MEM_PAGING_EVICT_FAIL);
    cr_expect_eq(req.flags & VME_FLAG_VCPU_PAUSED, VME_FLAG_VCPU_PAUSED);
    cr_expect_eq(p2mt(&f), SIM_P2MT_PAGING_IN);
    cr_expect_eq(sim_paging_evict(f.d, DATA_GFN), -EBUSY, "the guest touched it: evict fails");
    respond(&f, &req, 0);
    stop = run_until_idle(&f);
    cr_expect_eq(stop.reason, SIM_STOP_HALTED);
    cr_expect_eq(p2mt(&f), SIM_P2MT_RAM_RW);
    cr_expect_eq(rax(&f, 0), expected_qword(&f));
    unmake(&f);
}

/* DROP_PAGE in the response: the p2m is left alone; the vCPU is unpaused and touches it again. */
Test(sim_paging, drop_page_response_keeps_paging_in)
{
    struct fixture f;
    make(&f, 1, true);
    cr_assert_eq(sim_paging_nominate(f.d, DATA_GFN), 0);
    run_until_idle(&f);
    struct vme_msg req;
    cr_assert(take(&f, &req));
    respond(&f, &req, VME_MEM_PAGING_DROP_PAGE);
    struct sim_stop stop = run_until_idle(&f);
    cr_expect_eq(stop.reason, SIM_STOP_BLOCKED);
    cr_expect_eq(p2mt(&f), SIM_P2MT_PAGING_IN);
    cr_expect_eq(sim_vcpu_pause_count(f.d, 0), 0, "unpaused by the response");
    cr_expect_eq(sim_vcpu_state(f.d, 0), SIM_VCPU_PAUSED, "waits for the page on its way in");
    cr_expect_not(take(&f, &req), "no second request for a paging_in gfn");
    unmake(&f);
}

/* Two vCPUs read the same paged-out page: ONE request, both run again once it is back. */
Test(sim_paging, two_vcpus_one_request)
{
    struct fixture f;
    make(&f, 2, true);
    page_out(&f);
    struct sim_stop stop = run_until_idle(&f);
    cr_assert_eq(stop.reason, SIM_STOP_BLOCKED);
    struct vme_msg req;
    cr_assert(take(&f, &req));
    struct vme_msg extra;
    cr_expect_not(take(&f, &extra), "one request for two vCPUs");
    unsigned other = req.vcpu_id ^ 1;
    cr_expect_eq(sim_vcpu_state(f.d, 0), SIM_VCPU_PAUSED);
    cr_expect_eq(sim_vcpu_state(f.d, 1), SIM_VCPU_PAUSED);
    cr_expect_eq(sim_vcpu_pause_count(f.d, req.vcpu_id), 1);
    cr_expect_eq(sim_vcpu_pause_count(f.d, other), 0, "the second vCPU waits for the page, not a response");
    cr_assert_eq(sim_paging_load(f.d, DATA_GFN, f.saved), 0, "%s", sim_error(f.d));
    respond(&f, &req, 0);
    stop = run_until_idle(&f);
    cr_expect_eq(stop.reason, SIM_STOP_HALTED);
    for (unsigned v = 0; v < 2; v++) {
        cr_expect_eq(sim_vcpu_state(f.d, v), SIM_VCPU_HALTED, "vCPU %u", v);
        cr_expect_eq(rax(&f, v), expected_qword(&f), "vCPU %u", v);
    }
    cr_expect_not(take(&f, &extra));
    unmake(&f);
}

/* The second vCPU also runs again when the response alone brings the page back (nominated only). */
Test(sim_paging, two_vcpus_resume_without_load)
{
    struct fixture f;
    make(&f, 2, true);
    SETUP(sim_mem_read(f.d, DATA_GFN << 12, f.saved, sizeof(f.saved)));
    cr_assert_eq(sim_paging_nominate(f.d, DATA_GFN), 0);
    struct sim_stop stop = run_until_idle(&f);
    cr_assert_eq(stop.reason, SIM_STOP_BLOCKED);
    struct vme_msg req, extra;
    cr_assert(take(&f, &req));
    cr_expect_not(take(&f, &extra));
    respond(&f, &req, 0);
    stop = run_until_idle(&f);
    cr_expect_eq(stop.reason, SIM_STOP_HALTED);
    for (unsigned v = 0; v < 2; v++)
        cr_expect_eq(rax(&f, v), expected_qword(&f), "vCPU %u", v);
    unmake(&f);
}

/* A guest touching a paged-out gfn with no paging ring in place crashes the domain, as Xen. */
Test(sim_paging, no_ring_crashes_domain)
{
    struct fixture f;
    make(&f, 1, true);
    page_out(&f);
    cr_assert_eq(sim_paging_disable(f.d), 0);
    cr_expect_not(sim_paging_enabled(f.d));
    struct sim_stop stop;
    sim_run(f.d, 100000, &stop);
    cr_expect_eq(stop.reason, SIM_STOP_CRASHED);
    cr_expect(strstr(stop.why, "no paging ring"), "%s", stop.why);
    unmake(&f);
}

/* The paging ring and the monitor ring are separate: a MEM_ACCESS event goes to the monitor only. */
Test(sim_paging, rings_are_separate)
{
    struct fixture f;
    make(&f, 1, true);
    struct ring_fds mfds;
    cr_assert_eq(sim_monitor_enable(f.d, 7, &mfds), 0);
    cr_assert_eq(sim_set_mem_access(f.d, 0 /* n */, DATA_GFN, 1), 0);
    struct sim_stop stop = run_until_idle(&f);
    cr_expect_eq(stop.reason, SIM_STOP_BLOCKED);
    struct vme_msg req;
    cr_expect_not(take(&f, &req), "nothing on the paging ring");
    cr_expect_eq(sim_vcpu_pause_count(f.d, 0), 1);
    cr_expect_eq(sim_monitor_disable(f.d), 0);
    cr_expect(sim_paging_enabled(f.d));
    unmake(&f);
}

/* An in-process pager (sim_set_client): it loads and answers on its turn; the vCPU reads the page in one run. */
static void pager_turn(void *opaque)
{
    struct fixture *f = opaque;
    struct vme_msg req;
    while (take(f, &req)) {
        cr_expect_eq(sim_paging_load(f->d, req.u.paging.gfn, f->saved), 0, "%s", sim_error(f->d));
        respond(f, &req, 0);
    }
}

Test(sim_paging, in_process_pager)
{
    struct fixture f;
    make(&f, 2, true);
    page_out(&f);
    sim_set_client(f.d, pager_turn, &f);
    struct sim_stop stop;
    sim_run(f.d, 100000, &stop);
    cr_expect_eq(stop.reason, SIM_STOP_HALTED);
    for (unsigned v = 0; v < 2; v++)
        cr_expect_eq(rax(&f, v), expected_qword(&f), "vCPU %u", v);
    cr_expect_eq(p2mt(&f), SIM_P2MT_RAM_RW);
    unmake(&f);
}

/* The guest's code page paged out: fetching it populates too, and the loaded code runs. */
Test(sim_paging, paged_code_page)
{
    struct fixture f;
    make(&f, 1, true);
    SETUP(sim_mem_read(f.d, DATA_GFN << 12, f.saved, sizeof(f.saved)));
    uint8_t code[4096];
    SETUP(sim_mem_read(f.d, CODE_GPA, code, sizeof(code)));
    cr_assert_eq(sim_paging_nominate(f.d, CODE_GPA >> 12), 0);
    cr_assert_eq(sim_paging_evict(f.d, CODE_GPA >> 12), 0);
    struct sim_stop stop = run_until_idle(&f);
    cr_assert_eq(stop.reason, SIM_STOP_BLOCKED);
    struct vme_msg req;
    cr_assert(take(&f, &req));
    cr_expect_eq(req.u.paging.gfn, CODE_GPA >> 12);
    struct cpu_regs r;
    SETUP(sim_vcpu_get_regs(f.d, 0, &r));
    cr_expect_eq(r.rip, 0x400000, "paused before its first instruction");
    cr_expect_eq(req.regs.rip, 0, "paging requests carry no registers (Xen fills them for monitor events only)");
    cr_assert_eq(sim_paging_load(f.d, CODE_GPA >> 12, code), 0);
    respond(&f, &req, 0);
    stop = run_until_idle(&f);
    cr_expect_eq(stop.reason, SIM_STOP_HALTED);
    cr_expect_eq(rax(&f, 0), expected_qword(&f));
    unmake(&f);
}

/* Proves: a hypercall whose guest buffer is paged out gets -EFAULT, and the vCPU's own touch
 * pages the gfn in with the vCPU paused (VCPU_PAUSED, not FOREIGN), as __hvm_copy does. */
Test(sim_paging, hypercall_buffer_paged_out)
{
    struct fixture f;
    make(&f, 1, true);
    page_out(&f);
    uint64_t args[HCALL_MAX_ARGS] = {0 /* CONSOLEIO_write */, 8, DATA_GVA + READ_OFF};
    cr_expect_eq(hcall_invoke(f.d, 0, SIM_HYPERCALL_XEN, true, 18, args), -EFAULT);
    cr_expect_eq(p2mt(&f), SIM_P2MT_PAGING_IN);
    struct vme_msg req;
    cr_assert(take(&f, &req), "a MEM_PAGING request");
    cr_expect_eq(req.u.paging.gfn, DATA_GFN);
    cr_expect(req.flags & VME_FLAG_VCPU_PAUSED);
    cr_expect(!(req.flags & VME_FLAG_FOREIGN));
    cr_expect_eq(sim_vcpu_state(f.d, 0), SIM_VCPU_PAUSED);
    unmake(&f);
}
