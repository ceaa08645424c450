/*
 * tests/sim/test_sharing.c — memory sharing (sim/sharing.c) as Xen's mem_sharing.c runs it:
 * nominate and share with their handles and error codes, the copy-on-write break on a guest
 * write, Xen's page accounting, the ENOMEM request on the sharing ring and its response, the
 * domain crash with no helper, and the rules between sharing, paging and host writes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "sim_fixture.h"
#include "xen_tools.h"
#include <xen/xen.h>
#include <xen/memory.h>

#define A_GFN FIX_DATA_GFN
#define B_GFN (FIX_DATA_GFN + 1)
#define B_GLA (FIX_DATA_GLA + 0x1000)
#define NR_PAGES (FIX_RAM / 4096)

struct fixture {
    struct sim_domain *d;
    struct ring_fds fds;
    struct fixture_client client;
    uint64_t ha, hb;
};

/* rbx = B's gla: read B into rax, write 0x55 to B, read A into rcx. */
static const uint8_t cow_code[] = {
    0x48, 0x8b, 0x03,                                  /* mov rax, [rbx] */
    0x48, 0xc7, 0x03, 0x55, 0x00, 0x00, 0x00,          /* mov qword [rbx], 0x55 */
    0x48, 0x8b, 0x8b, 0x00, 0xf0, 0xff, 0xff,          /* mov rcx, [rbx - 0x1000] */
    0xf4,                                              /* hlt */
};

static void fill(struct fixture *f, uint64_t gfn, uint8_t seed)
{
    uint8_t page[4096];
    for (unsigned i = 0; i < sizeof(page); i++)
        page[i] = (uint8_t)(i * 13 + seed);
    SETUP(sim_mem_write(f->d, gfn << 12, page, sizeof(page)));
}

static uint64_t qword(struct fixture *f, uint64_t gpa)
{
    uint64_t q = 0;
    cr_assert_eq(sim_mem_read(f->d, gpa, &q, 8), 0, "%s", sim_error(f->d));
    return q;
}

static unsigned p2mt(struct fixture *f, uint64_t gfn)
{
    unsigned t = 99;
    cr_assert_eq(sim_p2m_type(f->d, gfn, &t), 0);
    return t;
}

static struct cpu_regs regs(struct fixture *f)
{
    struct cpu_regs r;
    cr_assert_eq(sim_vcpu_get_regs(f->d, 0, &r), 0);
    return r;
}

/* A domain whose data pages A and B differ; B then shares A's page (B's contents are gone). */
static void make_shared(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    struct sim_config cfg = {.mode = CPU_MODE_LONG, .ram_size = FIX_RAM, .nr_vcpus = 1};
    f->d = fixture_domain_cfg(&cfg, cow_code, sizeof(cow_code), B_GLA, 2);
    fill(f, A_GFN, 1);
    fill(f, B_GFN, 2);
    SETUP(sim_sharing_control(f->d, true));
    SETUP(sim_sharing_nominate(f->d, A_GFN, &f->ha));
    SETUP(sim_sharing_nominate(f->d, B_GFN, &f->hb));
    SETUP(sim_sharing_share(f->d, A_GFN, f->ha, B_GFN, f->hb));
}

static void unmake(struct fixture *f)
{
    fixture_destroy(f->d, &f->client);
}

/* Proves: nominate and share follow Xen: sharing off -> ENODEV; handles; a re-nominate gives
 * the same handle; wrong or missing handles -> S_HANDLE_INVALID / C_HANDLE_INVALID, nothing
 * changed; after share both gfns read the source's bytes, are ram_shared, and one page left
 * the domain for each nominate (page_make_sharable). */
Test(sim_sharing, nominate_and_share)
{
    struct fixture f = {0};
    struct sim_config cfg = {.mode = CPU_MODE_LONG, .ram_size = FIX_RAM, .nr_vcpus = 1};
    f.d = fixture_domain_cfg(&cfg, cow_code, sizeof(cow_code), B_GLA, 2);
    fill(&f, A_GFN, 1);
    fill(&f, B_GFN, 2);
    uint64_t a0 = qword(&f, A_GFN << 12), b0 = qword(&f, B_GFN << 12);
    cr_assert_neq(a0, b0, "setup: pages differ");
    uint64_t h;
    cr_expect_eq(sim_sharing_nominate(f.d, A_GFN, &h), -ENODEV, "sharing is off");
    SETUP(sim_sharing_control(f.d, true));
    cr_expect_eq(sim_sharing_nominate(f.d, NR_PAGES, &h), -EINVAL, "beyond RAM");
    cr_assert_eq(sim_sharing_nominate(f.d, A_GFN, &f.ha), 0, "%s", sim_error(f.d));
    cr_assert_eq(sim_sharing_nominate(f.d, A_GFN, &h), 0);
    cr_expect_eq(h, f.ha, "an already shared gfn gives its page's handle");
    cr_expect_eq(p2mt(&f, A_GFN), SIM_P2MT_RAM_SHARED);
    cr_expect_eq(sim_sharing_share(f.d, A_GFN, f.ha, B_GFN, 12345), XENMEM_SHARING_OP_C_HANDLE_INVALID,
                 "client not nominated");
    cr_assert_eq(sim_sharing_nominate(f.d, B_GFN, &f.hb), 0);
    cr_expect_neq(f.ha, f.hb);
    cr_expect_eq(sim_tot_pages(f.d), NR_PAGES - 2, "each nominated page left the domain");
    cr_expect_eq(sim_sharing_share(f.d, A_GFN, f.ha + 100, B_GFN, f.hb), XENMEM_SHARING_OP_S_HANDLE_INVALID);
    cr_expect_eq(sim_sharing_share(f.d, A_GFN, f.ha, B_GFN, f.hb + 100), XENMEM_SHARING_OP_C_HANDLE_INVALID);
    cr_expect_eq(sim_sharing_share(f.d, A_GFN + 2, 1, B_GFN, f.hb), XENMEM_SHARING_OP_S_HANDLE_INVALID,
                 "source not nominated");
    cr_expect_eq(qword(&f, B_GFN << 12), b0, "refused shares changed nothing");
    cr_assert_eq(sim_sharing_share(f.d, A_GFN, f.ha, B_GFN, f.hb), 0, "%s", sim_error(f.d));
    cr_expect_eq(qword(&f, B_GFN << 12), a0, "the client now reads the source's page");
    cr_expect_eq(qword(&f, A_GFN << 12), a0);
    cr_expect_eq(p2mt(&f, B_GFN), SIM_P2MT_RAM_SHARED);
    cr_expect_eq(sim_sharing_share(f.d, A_GFN, f.ha, B_GFN, f.hb), 0, "already one page: success");
    cr_assert_eq(sim_sharing_nominate(f.d, B_GFN, &h), 0);
    cr_expect_eq(h, f.ha, "the client's gfn now has the source page's handle");
    cr_expect_eq(sim_tot_pages(f.d), NR_PAGES - 2, "the client page was dom_cow's: no change");
    unmake(&f);
}

/* Proves: the copy-on-write break: the guest reads the shared bytes through B, its write to B
 * unshares B (a new page within max_pages) and lands only there; A keeps the shared bytes and
 * stays shared (now the page's last gfn); the accounting gains the one page. */
Test(sim_sharing, cow_break_on_guest_write)
{
    struct fixture f;
    make_shared(&f);
    uint64_t a0 = qword(&f, A_GFN << 12);
    struct sim_stop stop = fixture_run_until_idle(f.d);
    cr_assert_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    struct cpu_regs r = regs(&f);
    cr_expect_eq(r.rax, a0, "B read the shared page");
    cr_expect_eq(r.rcx, a0, "A reads the shared page");
    cr_expect_eq(qword(&f, B_GFN << 12), 0x55, "the write landed in B's own page");
    cr_expect_eq(qword(&f, (B_GFN << 12) + 0xff8), qword(&f, (A_GFN << 12) + 0xff8),
                 "B's new page is a copy of the shared one");
    cr_expect_eq(qword(&f, A_GFN << 12), a0, "A untouched by B's write");
    cr_expect_eq(p2mt(&f, B_GFN), SIM_P2MT_RAM_RW, "B unshared");
    cr_expect_eq(p2mt(&f, A_GFN), SIM_P2MT_RAM_SHARED, "A still shared");
    cr_expect_eq(sim_tot_pages(f.d), NR_PAGES - 1);
    unmake(&f);
}

/* Proves: when unsharing needs a page beyond max_pages, the write does not happen; a
 * MEM_SHARING request (gfn, p2mt ram_shared, VCPU_PAUSED) goes on the sharing ring and the
 * vCPU waits; after the helper raises max_pages and answers, the write is retried and done. */
Test(sim_sharing, enomem_request_and_response)
{
    struct fixture f;
    make_shared(&f);
    SETUP(sim_sharing_ring_enable(f.d, 7, &f.fds));
    fixture_attach(&f.client, &f.fds);
    uint64_t a0 = qword(&f, A_GFN << 12);
    sim_set_max_pages(f.d, sim_tot_pages(f.d));
    struct sim_stop stop;
    cr_assert_eq(sim_run(f.d, 100000, &stop), 0);
    cr_assert_eq(stop.reason, SIM_STOP_EVENT, "%s", stop.why);
    unsigned char slot[400];
    cr_assert_eq(ring_back_take_request(f.client.back, slot), 0, "a request on the sharing ring");
    struct vme_msg req;
    vme_decode(7, slot, &req);
    cr_expect_eq(req.reason, VME_REASON_MEM_SHARING);
    cr_expect_eq(req.u.sharing.gfn, B_GFN);
    cr_expect_eq(req.u.sharing.p2mt, SIM_P2MT_RAM_SHARED);
    cr_expect(req.flags & VME_FLAG_VCPU_PAUSED);
    cr_expect_eq(sim_vcpu_state(f.d, 0), SIM_VCPU_PAUSED);
    cr_expect_eq(qword(&f, B_GFN << 12), a0, "the write did not happen");
    cr_expect_eq(regs(&f).rax, a0, "the read before it did");
    /* Still paused without an answer. */
    cr_assert_eq(sim_run(f.d, 100000, &stop), 0);
    cr_expect_neq(stop.reason, SIM_STOP_HALTED);
    sim_set_max_pages(f.d, sim_max_pages(f.d) + 1);
    struct vme_msg rsp;
    memset(&rsp, 0, sizeof(rsp));
    rsp.version = 7;
    rsp.vcpu_id = req.vcpu_id;
    rsp.reason = VME_REASON_MEM_SHARING;
    rsp.flags = VME_FLAG_VCPU_PAUSED;
    rsp.u.sharing = req.u.sharing;
    fixture_respond(&f.client, &rsp);
    stop = fixture_run_until_idle(f.d);
    cr_assert_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    cr_expect_eq(qword(&f, B_GFN << 12), 0x55, "the retried write went through");
    cr_expect_eq(qword(&f, A_GFN << 12), a0);
    cr_expect_eq(ring_back_unconsumed_requests(f.client.back), 0, "one request in all");
    unmake(&f);
}

/* Proves: ENOMEM with no sharing ring crashes the domain ("ENOMEM and no helper"). */
Test(sim_sharing, enomem_without_ring_crashes)
{
    struct fixture f;
    make_shared(&f);
    sim_set_max_pages(f.d, 0);
    struct sim_stop stop;
    cr_assert_eq(sim_run(f.d, 100000, &stop), 0);
    cr_expect_eq(stop.reason, SIM_STOP_CRASHED);
    cr_expect(strstr(stop.why, "no sharing ring") != NULL, "%s", stop.why);
    unmake(&f);
}

/* Proves: the last gfn on a shared page takes the page back without an allocation: a write to
 * a page nominated alone succeeds even at max_pages, with no event. */
Test(sim_sharing, last_gfn_needs_no_page)
{
    struct fixture f = {0};
    struct sim_config cfg = {.mode = CPU_MODE_LONG, .ram_size = FIX_RAM, .nr_vcpus = 1};
    f.d = fixture_domain_cfg(&cfg, cow_code, sizeof(cow_code), B_GLA, 2);
    SETUP(sim_sharing_control(f.d, true));
    SETUP(sim_sharing_nominate(f.d, B_GFN, &f.hb));
    sim_set_max_pages(f.d, sim_tot_pages(f.d));
    struct sim_stop stop = fixture_run_until_idle(f.d);
    cr_assert_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    cr_expect_eq(qword(&f, B_GFN << 12), 0x55);
    cr_expect_eq(p2mt(&f, B_GFN), SIM_P2MT_RAM_RW);
    cr_expect_eq(sim_tot_pages(f.d), NR_PAGES);
    unmake(&f);
}

/* Proves: a host write (sim_mem_write: the toolstack through a foreign mapping) unshares too,
 * and is refused with -ENOMEM and a clear error when no page can be had, changing nothing. */
Test(sim_sharing, host_write_unshares)
{
    struct fixture f;
    make_shared(&f);
    uint64_t a0 = qword(&f, A_GFN << 12), v = 0x1234;
    sim_set_max_pages(f.d, sim_tot_pages(f.d));
    cr_expect_eq(sim_mem_write(f.d, (B_GFN << 12) + 8, &v, 8), -ENOMEM);
    cr_expect(strstr(sim_error(f.d), "max_pages") != NULL, "%s", sim_error(f.d));
    cr_expect_eq(qword(&f, (A_GFN << 12) + 8), qword(&f, (B_GFN << 12) + 8), "still one page");
    sim_set_max_pages(f.d, NR_PAGES);
    cr_assert_eq(sim_mem_write(f.d, (B_GFN << 12) + 8, &v, 8), 0, "%s", sim_error(f.d));
    cr_expect_eq(qword(&f, (B_GFN << 12) + 8), 0x1234);
    cr_expect_eq(qword(&f, A_GFN << 12), a0);
    cr_expect_neq(qword(&f, (A_GFN << 12) + 8), 0x1234, "A untouched");
    cr_expect_eq(p2mt(&f, B_GFN), SIM_P2MT_RAM_RW);
    unmake(&f);
}

/* Proves: sharing and paging exclude each other as in Xen: a shared gfn is not pageable
 * (EBUSY) and a paged gfn is not sharable (EINVAL). */
Test(sim_sharing, paging_and_sharing_exclusive)
{
    struct fixture f;
    make_shared(&f);
    SETUP(sim_paging_enable(f.d, 7, &f.fds));
    cr_expect_eq(sim_paging_nominate(f.d, A_GFN), -EBUSY);
    uint64_t h;
    SETUP(sim_paging_nominate(f.d, A_GFN + 2));
    SETUP(sim_paging_evict(f.d, A_GFN + 2));
    cr_expect_eq(sim_sharing_nominate(f.d, A_GFN + 2, &h), -EINVAL);
    unmake(&f);
}
