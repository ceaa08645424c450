/*
 * tests/sim/test_altp2m.c — altp2m views (sim/altp2m.c) as Xen 4.17 runs them (spec §5): the
 * lifecycle and its return codes, access judged by the vCPU's view, requests that say which
 * view, ALTERNATE_P2M in a response, change_gfn for reads, writes and removal, host changes
 * reaching only the entries a view holds, and VMFUNC from the guest.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "sim_fixture.h"

#define A_GFN FIX_DATA_GFN
#define B_GFN (FIX_DATA_GFN + 1)

struct fixture {
    struct sim_domain *d;
    struct ring_fds fds;
    struct fixture_client client;
};

/* rbx = A's gla: rax = [rbx]; [rbx + 8] = 0x55; hlt. */
static const uint8_t rw_code[] = {
    0x48, 0x8b, 0x03,                               /* mov rax, [rbx] */
    0x48, 0xc7, 0x43, 0x08, 0x55, 0x00, 0x00, 0x00, /* mov qword [rbx+8], 0x55 */
    0xf4,                                           /* hlt */
};

static void make(struct fixture *f, const uint8_t *code, size_t len, bool ring)
{
    memset(f, 0, sizeof(*f));
    struct sim_config cfg = {.mode = CPU_MODE_LONG, .ram_size = FIX_RAM, .nr_vcpus = 1};
    f->d = fixture_domain_cfg(&cfg, code, len, FIX_DATA_GLA, 2);
    uint64_t a = 0xaaaa, b = 0xbbbb;
    SETUP(sim_mem_write(f->d, A_GFN << 12, &a, 8));
    SETUP(sim_mem_write(f->d, B_GFN << 12, &b, 8));
    if (ring) {
        SETUP(sim_monitor_enable(f->d, 7, &f->fds));
        fixture_attach(&f->client, &f->fds);
    }
}

static void unmake(struct fixture *f)
{
    fixture_destroy(f->d, &f->client);
}

static uint64_t reg_rax(struct fixture *f)
{
    struct cpu_regs r;
    cr_assert_eq(sim_vcpu_get_regs(f->d, 0, &r), 0);
    return r.rax;
}

static uint64_t qword(struct fixture *f, uint64_t gpa)
{
    uint64_t q = 0;
    cr_assert_eq(sim_mem_peek(f->d, gpa, &q, 8), 0, "%s", sim_error(f->d));
    return q;
}

static uint16_t view_of(struct fixture *f)
{
    uint16_t v = 99;
    cr_assert_eq(sim_altp2m_get_vcpu_view(f->d, 0, &v), 0, "%s", sim_error(f->d));
    return v;
}

/* Proves: the lifecycle's return codes: disabled -> EINVAL, inactive -> EOPNOTSUPP, nine views
 * after view 0 then EINVAL, view 0 and a view in use -> EBUSY, an unknown view -> EINVAL, no
 * mode change while active, and turning altp2m off destroys every view. */
Test(sim_altp2m, lifecycle)
{
    struct fixture f;
    make(&f, rw_code, sizeof(rw_code), false);
    uint16_t idx;
    cr_expect_eq(sim_altp2m_set_domain_state(f.d, true), -EINVAL, "mode disabled");
    cr_expect_eq(sim_altp2m_create_view(f.d, 7, &idx), -EOPNOTSUPP);
    cr_expect_eq(sim_altp2m_set_mode(f.d, 4), -EINVAL);
    SETUP(sim_altp2m_set_mode(f.d, SIM_ALTP2M_EXTERNAL));
    cr_assert_eq(sim_altp2m_set_domain_state(f.d, true), 0, "%s", sim_error(f.d));
    cr_expect_eq(sim_altp2m_views(f.d), 1u, "view 0 only");
    cr_expect_eq(view_of(&f), 0);
    cr_expect_eq(sim_altp2m_set_mode(f.d, SIM_ALTP2M_MIXED), -EBUSY);
    cr_expect_eq(sim_altp2m_create_view(f.d, 11, &idx), -EINVAL, "unknown access");
    for (unsigned i = 1; i < SIM_MAX_ALTP2M; i++) {
        cr_assert_eq(sim_altp2m_create_view(f.d, 7, &idx), 0, "%s", sim_error(f.d));
        cr_expect_eq(idx, i);
    }
    cr_expect_eq(sim_altp2m_create_view(f.d, 7, &idx), -EINVAL, "no free view");
    cr_expect_eq(sim_altp2m_views(f.d), (1u << SIM_MAX_ALTP2M) - 1);
    cr_expect_eq(sim_altp2m_destroy_view(f.d, 0), -EBUSY);
    SETUP(sim_altp2m_set_vcpu_view(f.d, 0, 3));
    cr_expect_eq(sim_altp2m_destroy_view(f.d, 3), -EBUSY, "in use");
    cr_expect_eq(sim_altp2m_destroy_view(f.d, 4), 0);
    cr_expect_eq(sim_altp2m_destroy_view(f.d, 4), -EINVAL, "gone");
    cr_expect_eq(sim_altp2m_create_view(f.d, 7, &idx), 0);
    cr_expect_eq(idx, 4, "the first free index again");
    cr_expect_eq(sim_altp2m_switch_to_view(f.d, 12), -EINVAL);
    SETUP(sim_altp2m_set_visibility(f.d, 5, false));
    cr_expect_eq(sim_altp2m_switch_to_view(f.d, 5), -EINVAL, "invisible");
    cr_expect_eq(sim_altp2m_set_vcpu_view(f.d, 0, 5), 0, "a per-vCPU switch ignores visibility");
    cr_assert_eq(sim_altp2m_set_domain_state(f.d, false), 0);
    cr_expect_eq(sim_altp2m_views(f.d), 0u);
    cr_expect_eq(sim_altp2m_get_vcpu_view(f.d, 0, &idx), -EOPNOTSUPP);
    unmake(&f);
}

/* Proves: access is judged by the vCPU's view: A is rwx on the host and r in view 1; on view 1
 * the write faults and the request carries ALTERNATE_P2M with altp2m_idx 1; the response's
 * ALTERNATE_P2M with idx 0 moves the vCPU to view 0, where the write completes. */
Test(sim_altp2m, access_by_view_and_response_switch)
{
    struct fixture f;
    make(&f, rw_code, sizeof(rw_code), true);
    SETUP(sim_altp2m_set_mode(f.d, SIM_ALTP2M_EXTERNAL));
    SETUP(sim_altp2m_set_domain_state(f.d, true));
    uint16_t idx;
    SETUP(sim_altp2m_create_view(f.d, 7, &idx));
    cr_assert_eq(sim_altp2m_set_mem_access(f.d, idx, A_GFN, 1 /* r */), 0, "%s", sim_error(f.d));
    unsigned a;
    cr_expect_eq(sim_altp2m_get_mem_access(f.d, idx, A_GFN, &a), 0);
    cr_expect_eq(a, 1);
    cr_expect_eq(sim_altp2m_get_mem_access(f.d, 0, A_GFN, &a), 0);
    cr_expect_eq(a, 7, "the host is untouched");
    SETUP(sim_altp2m_switch_to_view(f.d, idx));
    struct sim_stop stop;
    cr_assert_eq(sim_run(f.d, 1000, &stop), 0);
    cr_assert_eq(stop.reason, SIM_STOP_EVENT, "%s", stop.why);
    unsigned char slot[400];
    cr_assert_eq(ring_back_take_request(f.client.back, slot), 0);
    struct vme_msg req;
    vme_decode(7, slot, &req);
    cr_expect_eq(req.reason, VME_REASON_MEM_ACCESS);
    cr_expect(req.flags & VME_FLAG_ALTERNATE_P2M, "flags %#x", req.flags);
    cr_expect_eq(req.altp2m_idx, idx);
    cr_expect_eq(qword(&f, (A_GFN << 12) + 8), 0, "the write did not happen");
    struct vme_msg rsp;
    memset(&rsp, 0, sizeof(rsp));
    rsp.version = 7;
    rsp.vcpu_id = 0;
    rsp.reason = req.reason;
    rsp.flags = VME_FLAG_VCPU_PAUSED | VME_FLAG_ALTERNATE_P2M;
    rsp.altp2m_idx = 0;
    rsp.u.mem_access = req.u.mem_access;
    fixture_respond(&f.client, &rsp);
    stop = fixture_run_until_idle(f.d);
    cr_assert_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    cr_expect_eq(view_of(&f), 0, "switched by the response");
    cr_expect_eq(qword(&f, (A_GFN << 12) + 8), 0x55);
    cr_expect_eq(ring_back_unconsumed_requests(f.client.back), 0, "one event in all");
    unmake(&f);
}

/* Proves: change_gfn: on view 1, gfn A shows B's frame for reads and writes while view 0 and
 * A's own frame are untouched; removing the entry (INVALID_GFN) shows A's frame again. */
Test(sim_altp2m, change_gfn)
{
    struct fixture f;
    make(&f, rw_code, sizeof(rw_code), false);
    SETUP(sim_altp2m_set_mode(f.d, SIM_ALTP2M_EXTERNAL));
    SETUP(sim_altp2m_set_domain_state(f.d, true));
    uint16_t idx;
    SETUP(sim_altp2m_create_view(f.d, 7, &idx));
    cr_expect_eq(sim_altp2m_change_gfn(f.d, 0, A_GFN, B_GFN), -EINVAL, "not the host p2m");
    cr_expect_eq(sim_altp2m_change_gfn(f.d, idx, A_GFN, FIX_RAM / 4096), -EINVAL, "beyond RAM");
    cr_assert_eq(sim_altp2m_change_gfn(f.d, idx, A_GFN, B_GFN), 0, "%s", sim_error(f.d));
    SETUP(sim_altp2m_set_vcpu_view(f.d, 0, idx));
    struct sim_stop stop = fixture_run_until_idle(f.d);
    cr_assert_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    cr_expect_eq(reg_rax(&f), 0xbbbb, "view 1 reads B's frame at A");
    cr_expect_eq(qword(&f, (B_GFN << 12) + 8), 0x55, "and writes it");
    cr_expect_eq(qword(&f, (A_GFN << 12) + 8), 0, "A's own frame untouched");
    /* Again on view 0, then on view 1 with the entry removed. */
    struct cpu_regs r;
    for (int round = 0; round < 2; round++) {
        SETUP(sim_vcpu_get_regs(f.d, 0, &r));
        r.rip = 0x400000;
        r.rax = 0;
        SETUP(sim_vcpu_set_regs(f.d, 0, &r));
        f.d->vcpus[0].state = SIM_VCPU_RUNNABLE;
        if (round == 0) {
            SETUP(sim_altp2m_set_vcpu_view(f.d, 0, 0));
        } else {
            SETUP(sim_altp2m_set_vcpu_view(f.d, 0, idx));
            cr_assert_eq(sim_altp2m_change_gfn(f.d, idx, A_GFN, SIM_INVALID_GFN), 0);
        }
        stop = fixture_run_until_idle(f.d);
        cr_assert_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
        cr_expect_eq(reg_rax(&f), 0xaaaa, "round %d reads A's own frame", round);
    }
    unmake(&f);
}

/* Proves: a host access change propagates to the entries a view holds (set by the client) and
 * not to the others, which keep the view's default access. */
Test(sim_altp2m, host_changes_reach_held_entries)
{
    struct fixture f;
    make(&f, rw_code, sizeof(rw_code), false);
    SETUP(sim_altp2m_set_mode(f.d, SIM_ALTP2M_EXTERNAL));
    SETUP(sim_altp2m_set_domain_state(f.d, true));
    uint16_t idx;
    SETUP(sim_altp2m_create_view(f.d, 5 /* rx */, &idx));
    SETUP(sim_altp2m_set_mem_access(f.d, idx, A_GFN, 3 /* rw */));
    SETUP(sim_p2m_set_access(f.d, 1 /* r */, A_GFN, 2));
    unsigned a;
    SETUP(sim_altp2m_get_mem_access(f.d, idx, A_GFN, &a));
    cr_expect_eq(a, 1, "the held entry took the host's change");
    SETUP(sim_altp2m_get_mem_access(f.d, idx, B_GFN, &a));
    cr_expect_eq(a, 5, "the other keeps the view's default");
    unmake(&f);
}

/* Proves: a view made as a copy of the host p2m has the host's access per gfn and default, and
 * holds every entry: a later host change reaches it (unlike an empty view's unheld entries). */
Test(sim_altp2m, view_copy)
{
    struct fixture f;
    make(&f, rw_code, sizeof(rw_code), false);
    SETUP(sim_p2m_set_access(f.d, 1 /* r */, A_GFN, 1));
    SETUP(sim_altp2m_set_mode(f.d, SIM_ALTP2M_EXTERNAL));
    SETUP(sim_altp2m_set_domain_state(f.d, true));
    uint16_t copy, empty;
    cr_assert_eq(sim_altp2m_create_view_copy(f.d, &copy), 0, "%s", sim_error(f.d));
    SETUP(sim_altp2m_create_view(f.d, 7, &empty));
    unsigned a;
    SETUP(sim_altp2m_get_mem_access(f.d, copy, A_GFN, &a));
    cr_expect_eq(a, 1, "the host's access, copied");
    SETUP(sim_altp2m_get_mem_access(f.d, copy, B_GFN, &a));
    cr_expect_eq(a, 7);
    SETUP(sim_p2m_set_access(f.d, 2 /* w */, B_GFN, 1));
    SETUP(sim_altp2m_get_mem_access(f.d, copy, B_GFN, &a));
    cr_expect_eq(a, 2, "a held entry follows the host");
    SETUP(sim_altp2m_get_mem_access(f.d, empty, B_GFN, &a));
    cr_expect_eq(a, 7, "an unheld entry keeps the view's default");
    unmake(&f);
}

/* Proves: the multi form sets each gfn its own access in the view, checks every entry first
 * (a bad gfn or access sets nothing, -EINVAL) and works on view 0 (the host p2m) too. */
Test(sim_altp2m, set_mem_access_multi)
{
    struct fixture f;
    make(&f, rw_code, sizeof(rw_code), false);
    SETUP(sim_altp2m_set_mode(f.d, SIM_ALTP2M_EXTERNAL));
    SETUP(sim_altp2m_set_domain_state(f.d, true));
    uint16_t idx;
    SETUP(sim_altp2m_create_view(f.d, 7, &idx));
    uint64_t gfns[3] = {A_GFN, B_GFN, FIX_RAM / 4096};
    uint8_t acc[3] = {1, 5, 3};
    cr_expect_eq(sim_altp2m_set_mem_access_multi(f.d, idx, gfns, acc, 3), -EINVAL, "gfn beyond RAM");
    unsigned a;
    SETUP(sim_altp2m_get_mem_access(f.d, idx, A_GFN, &a));
    cr_expect_eq(a, 7, "nothing set");
    acc[1] = 11;
    cr_expect_eq(sim_altp2m_set_mem_access_multi(f.d, idx, gfns, acc, 2), -EINVAL, "unknown access");
    acc[1] = 5;
    cr_assert_eq(sim_altp2m_set_mem_access_multi(f.d, idx, gfns, acc, 2), 0, "%s", sim_error(f.d));
    SETUP(sim_altp2m_get_mem_access(f.d, idx, A_GFN, &a));
    cr_expect_eq(a, 1);
    SETUP(sim_altp2m_get_mem_access(f.d, idx, B_GFN, &a));
    cr_expect_eq(a, 5);
    cr_assert_eq(sim_altp2m_set_mem_access_multi(f.d, 0, gfns, acc, 1), 0);
    SETUP(sim_altp2m_get_mem_access(f.d, 0, A_GFN, &a));
    cr_expect_eq(a, 1, "view 0 is the host p2m");
    cr_expect_eq(sim_altp2m_set_mem_access_multi(f.d, 7, gfns, acc, 1), -EINVAL, "no view 7");
    unmake(&f);
}

/* mov eax, 0; mov ecx, 1; vmfunc; hlt */
static const uint8_t vmfunc_code[] = {0xb8, 0, 0, 0, 0, 0xb9, 1, 0, 0, 0, 0x0f, 0x01, 0xd4, 0xf4};

/* Proves: VMFUNC leaf 0 switches the vCPU to a visible view in mode mixed; to an invisible view,
 * or in mode external, it is #UD (here: a fault, the fixture has no IDT) and the view stays. */
Test(sim_altp2m, vmfunc)
{
    static const enum sim_altp2m_mode modes[] = {SIM_ALTP2M_MIXED, SIM_ALTP2M_MIXED, SIM_ALTP2M_EXTERNAL};
    for (int t = 0; t < 3; t++) {
        struct fixture f;
        make(&f, vmfunc_code, sizeof(vmfunc_code), false);
        SETUP(sim_altp2m_set_mode(f.d, modes[t]));
        SETUP(sim_altp2m_set_domain_state(f.d, true));
        uint16_t idx;
        SETUP(sim_altp2m_create_view(f.d, 7, &idx));
        if (t == 1)
            SETUP(sim_altp2m_set_visibility(f.d, idx, false));
        struct sim_stop stop;
        cr_assert_eq(sim_run(f.d, 1000, &stop), 0);
        if (t == 0) {
            cr_expect_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
            cr_expect_eq(view_of(&f), 1, "switched by the guest");
        } else {
            cr_expect_neq(stop.reason, SIM_STOP_HALTED, "case %d: #UD, not a switch", t);
            cr_expect_eq(view_of(&f), 0, "case %d", t);
        }
        unmake(&f);
    }
}
