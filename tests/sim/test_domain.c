/*
 * tests/sim/test_domain.c — the simulator's API against Xen's rules where a
 * scenario file cannot look: return codes of the libxc-like calls, the ring's
 * wait queue when a vCPU finds no free slot, monitor disable, duplicate
 * responses, a client that corrupts the ring, and the checked memory accessor.
 * Each domain: N vCPUs running `mov [rbx], rax; hlt` with rbx = a page whose
 * p2m access is r, so every vCPU raises one MEM_ACCESS event.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "sim_fixture.h"

#define RAM FIX_RAM
#define DATA_GFN FIX_DATA_GFN

struct fixture {
    struct sim_domain *d;
    struct ring_fds fds;
    struct fixture_client client;
    unsigned notes_ring;
    char ring_note[320];
};

static void on_note(void *opaque, const struct sim_note *n)
{
    struct fixture *f = opaque;
    if (n->kind == SIM_NOTE_RING) {
        f->notes_ring++;
        snprintf(f->ring_note, sizeof(f->ring_note), "%s", n->text);
    }
}

static void make(struct fixture *f, unsigned vcpus, bool ring)
{
    memset(f, 0, sizeof(*f));
    const uint8_t code[] = {0x48, 0x89, 0x03, 0xf4}; /* mov [rbx], rax; hlt */
    f->d = fixture_domain(vcpus, code, sizeof(code), FIX_DATA_GLA);
    sim_set_observer(f->d, on_note, f);
    SETUP(sim_p2m_set_access(f->d, 1 /* r */, DATA_GFN, 1));
    if (ring) {
        SETUP(sim_monitor_enable(f->d, 7, &f->fds));
        fixture_attach(&f->client, &f->fds);
    }
}

static void unmake(struct fixture *f)
{
    fixture_destroy(f->d, &f->client);
}

static struct sim_stop run_until_idle(struct fixture *f)
{
    return fixture_run_until_idle(f->d);
}

/* Answers `n` requests: relax nothing, VCPU_PAUSED only, as xen-access does; returns how many. */
static unsigned answer(struct fixture *f, unsigned n, uint32_t extra_flags)
{
    unsigned char slot[400];
    unsigned done = 0;
    while (done < n && ring_back_take_request(f->client.back, slot) == 0) {
        struct vme_msg req, rsp;
        vme_decode(7, slot, &req);
        memset(&rsp, 0, sizeof(rsp));
        rsp.version = 7;
        rsp.vcpu_id = req.vcpu_id;
        rsp.reason = req.reason;
        rsp.flags = (req.flags & VME_FLAG_VCPU_PAUSED) | extra_flags;
        rsp.u = req.u;
        vme_encode(7, &rsp, slot);
        ring_back_put_response(f->client.back, slot);
        done++;
    }
    if (ring_back_push_responses(f->client.back))
        evtchn_notify(f->client.evtchn);
    return done;
}

/* xc_monitor_enable on a domain that has a ring is -EBUSY; an unknown version -EINVAL. */
Test(sim_api, monitor_enable_errors)
{
    struct fixture f;
    make(&f, 1, true);
    struct ring_fds fds;
    cr_expect_eq(sim_monitor_enable(f.d, 7, &fds), -EBUSY);
    cr_expect(strstr(sim_error(f.d), "already enabled"), "%s", sim_error(f.d));
    cr_expect_eq(sim_monitor_disable(f.d), 0);
    cr_expect_eq(sim_monitor_enable(f.d, 2, &fds), -EINVAL);
    cr_expect_eq(sim_monitor_enable(f.d, 1, &fds), 0);
    unmake(&f);
}

/* xc_set_mem_access needs an active monitor ring (Xen: -ENODEV); ranges are checked. */
Test(sim_api, set_mem_access_errors)
{
    struct fixture f;
    make(&f, 1, false);
    cr_expect_eq(sim_set_mem_access(f.d, 3, DATA_GFN, 1), -ENODEV);
    struct ring_fds fds;
    cr_assert_eq(sim_monitor_enable(f.d, 7, &fds), 0);
    cr_expect_eq(sim_set_mem_access(f.d, 3, DATA_GFN, 1), 0);
    cr_expect_eq(sim_set_mem_access(f.d, 3, RAM / 4096, 1), -EINVAL);
    cr_expect_eq(sim_set_mem_access(f.d, 11, 0, 1), -EINVAL);
    unsigned a;
    cr_expect_eq(sim_get_mem_access(f.d, DATA_GFN, &a), 0);
    cr_expect_eq(a, 3);
    cr_expect_eq(sim_get_mem_access(f.d, RAM / 4096, &a), -EINVAL);
    unmake(&f);
}

/*
 * Nine vCPUs fault at once on an eight-slot ring: eight requests go in, the
 * ninth vCPU waits on the ring's wait queue (paused, but not for a response),
 * and its request goes in as soon as one response frees a slot.  Disabling the
 * ring while it waits is refused (Xen: -EBUSY).
 */
Test(sim_api, ring_full_wait_queue)
{
    struct fixture f;
    make(&f, 9, true);
    struct sim_stop stop = run_until_idle(&f);
    cr_expect_eq(stop.reason, SIM_STOP_BLOCKED);
    cr_expect_eq(ring_back_unconsumed_requests(f.client.back), 8);
    unsigned waiting = 0;
    for (unsigned v = 0; v < 9; v++) {
        cr_expect_eq(sim_vcpu_state(f.d, v), SIM_VCPU_PAUSED, "vCPU %u", v);
        waiting += sim_vcpu_pause_count(f.d, v) == 0;
    }
    cr_expect_eq(waiting, 1, "exactly one vCPU waits for a slot, not for a response");
    cr_expect_eq(sim_monitor_disable(f.d), -EBUSY);
    unsigned waiter = 9;
    for (unsigned v = 0; v < 9; v++)
        if (sim_vcpu_pause_count(f.d, v) == 0)
            waiter = v;
    /* Answer the oldest request without relaxing the page: its vCPU retries and faults again. */
    cr_expect_eq(answer(&f, 1, 0), 1);
    stop = run_until_idle(&f);
    cr_expect_eq(stop.reason, SIM_STOP_BLOCKED);
    cr_expect_eq(ring_back_unconsumed_requests(f.client.back), 7 + 1, "the waiting vCPU's request went in");
    cr_expect_eq(sim_vcpu_pause_count(f.d, waiter), 1, "vCPU %u now waits for its response", waiter);
    waiting = 0;
    for (unsigned v = 0; v < 9; v++)
        waiting += sim_vcpu_pause_count(f.d, v) == 0 && sim_vcpu_state(f.d, v) == SIM_VCPU_PAUSED;
    cr_expect_eq(waiting, 1, "the answered vCPU faulted again and now waits for a slot itself");
    unmake(&f);
}

/*
 * The "black eye" (vm_event_put_request, vm_event_wake_blocked): nine vCPUs
 * raise async CR4 events (nobody is paused for a response) on an eight-slot
 * ring.  Each vCPU that leaves fewer free slots than the domain has vCPUs is
 * paused anyway; the ninth finds the ring full and queues.  A freed slot goes
 * to the queued vCPU first; after that each consumed response releases as many
 * black-eyed vCPUs as slots are free at that moment, round robin from the last
 * one woken.
 */
Test(sim_api, ring_black_eye_round_robin)
{
    struct fixture f;
    memset(&f, 0, sizeof(f));
    /* mov rax, cr4; xor rax, 0x200 (OSFXSR: Xen sends only changed values); mov cr4, rax; hlt */
    const uint8_t code[] = {0x0f, 0x20, 0xe0, 0x48, 0x35, 0x00, 0x02, 0x00, 0x00, 0x0f, 0x22, 0xe0, 0xf4};
    f.d = fixture_domain(9, code, sizeof(code), FIX_DATA_GLA);
    SETUP(sim_monitor_enable(f.d, 7, &f.fds));
    fixture_attach(&f.client, &f.fds);
    SETUP(sim_monitor_write_ctrlreg(f.d, 2 /* CR4 */, true, false /* async */, 0, false));
    struct sim_stop stop = run_until_idle(&f);
    cr_assert_eq(stop.reason, SIM_STOP_BLOCKED, "stop %d: %s; insns %llu", stop.reason, stop.why,
                 (unsigned long long)sim_now(f.d));
    cr_expect_eq(ring_back_unconsumed_requests(f.client.back), 8);
    for (unsigned v = 0; v < 9; v++) {
        cr_expect_eq(sim_vcpu_state(f.d, v), SIM_VCPU_PAUSED, "vCPU %u", v);
        cr_expect_eq(sim_vcpu_pause_count(f.d, v), 0, "vCPU %u: async, not paused for a response", v);
    }
    /* One slot: the queued vCPU 8 posts its request (and gets a black eye in turn). */
    cr_expect_eq(answer(&f, 1, 0), 1);
    stop = run_until_idle(&f);
    cr_expect_eq(stop.reason, SIM_STOP_BLOCKED, "stop %d: %s", stop.reason, stop.why);
    for (unsigned v = 0; v < 9; v++)
        cr_expect_eq(sim_vcpu_state(f.d, v), SIM_VCPU_PAUSED, "vCPU %u", v);
    cr_expect_eq(ring_back_unconsumed_requests(f.client.back), 8, "7 left + vCPU 8's");
    /*
     * Three responses, each followed by a wake with the slots free at that moment (1, 2, 3):
     * vCPUs 0, then 1-2, then 3-5 are released, round robin after the last woken, and halt.
     */
    cr_expect_eq(answer(&f, 3, 0), 3);
    stop = run_until_idle(&f);
    cr_expect_eq(stop.reason, SIM_STOP_BLOCKED, "stop %d: %s", stop.reason, stop.why);
    for (unsigned v = 0; v < 9; v++)
        cr_expect_eq(sim_vcpu_state(f.d, v), v < 6 ? SIM_VCPU_HALTED : SIM_VCPU_PAUSED, "vCPU %u", v);
    /* Everything answered: every vCPU runs to its end; 9 requests in all, none twice. */
    unsigned answered = 4;
    for (int i = 0; i < 20 && stop.reason != SIM_STOP_HALTED; i++) {
        answered += answer(&f, 8, 0);
        stop = run_until_idle(&f);
    }
    cr_expect_eq(stop.reason, SIM_STOP_HALTED, "%s", stop.why);
    cr_expect_eq(answered, 9);
    unmake(&f);
}

/*
 * vm_event_disable releases nothing that waits for a response: a vCPU paused
 * for an event stays paused after the ring is gone.
 */
Test(sim_api, disable_keeps_paused_vcpus_paused)
{
    struct fixture f;
    make(&f, 1, true);
    struct sim_stop stop = run_until_idle(&f);
    cr_assert_eq(stop.reason, SIM_STOP_BLOCKED);
    cr_assert_eq(sim_vcpu_pause_count(f.d, 0), 1);
    cr_expect_eq(sim_monitor_disable(f.d), 0);
    cr_expect_not(sim_monitor_enabled(f.d));
    cr_expect_eq(sim_vcpu_pause_count(f.d, 0), 1);
    stop = run_until_idle(&f);
    cr_expect_eq(stop.reason, SIM_STOP_BLOCKED);
    unmake(&f);
}

/*
 * Flags act only on a vCPU paused for vm_event (vm_event_resume): a response
 * to an asynchronous (n2rwx) event is dropped, and the pause count never
 * goes below zero.
 */
Test(sim_api, response_to_async_event_ignored)
{
    struct fixture f;
    make(&f, 1, true);
    cr_assert_eq(sim_p2m_set_access(f.d, 9 /* n2rwx */, DATA_GFN, 1), 0);
    struct sim_stop stop;
    sim_run(f.d, 100000, &stop);
    cr_assert_eq(stop.reason, SIM_STOP_EVENT);
    cr_expect_eq(sim_vcpu_pause_count(f.d, 0), 0, "an n2rwx event does not pause");
    cr_expect_eq(answer(&f, 1, VME_FLAG_EMULATE), 1);
    stop = run_until_idle(&f);
    cr_expect_eq(stop.reason, SIM_STOP_HALTED, "the vCPU went on without waiting");
    cr_expect_eq(sim_vcpu_pause_count(f.d, 0), 0);
    unsigned a;
    sim_get_mem_access(f.d, DATA_GFN, &a);
    cr_expect_eq(a, 7, "n2rwx became rwx");
    unmake(&f);
}

/*
 * A client that corrupts rsp_prod: one ring note naming the values, no crash,
 * the vCPU stays paused with its request kept, and the domain reports it is
 * blocked instead of hanging.
 */
Test(sim_api, corrupt_ring_reported_once)
{
    struct fixture f;
    make(&f, 2, true);
    run_until_idle(&f);
    void *page = mmap(NULL, RING_ABI_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f.fds.shm, 0);
    cr_assert_neq(page, MAP_FAILED);
    struct ring_abi_sring_header *h = page;
    atomic_store(&h->rsp_prod, 77);
    evtchn_notify(f.client.evtchn);
    struct sim_stop stop = run_until_idle(&f);
    cr_expect_eq(stop.reason, SIM_STOP_BLOCKED);
    cr_expect_eq(f.notes_ring, 1);
    cr_expect(strstr(f.ring_note, "rsp_prod 77"), "%s", f.ring_note);
    evtchn_notify(f.client.evtchn);
    run_until_idle(&f);
    cr_expect_eq(f.notes_ring, 1, "reported once");
    cr_expect_eq(sim_vcpu_pause_count(f.d, 0) + sim_vcpu_pause_count(f.d, 1), 2);
    munmap(page, RING_ABI_PAGE_SIZE);
    unmake(&f);
}

/* The one accessor to guest RAM refuses anything not entirely inside it, without overflow. */
Test(sim_api, checked_guest_memory)
{
    struct fixture f;
    make(&f, 1, false);
    cr_expect_not_null(sim_gpa(f.d, RAM - 8, 8));
    cr_expect_null(sim_gpa(f.d, RAM - 4, 8));
    cr_expect_null(sim_gpa(f.d, UINT64_MAX, 2));
    cr_expect_null(sim_gpa(f.d, 8, UINT64_MAX));
    uint8_t b[4];
    cr_expect_eq(sim_mem_read(f.d, RAM, b, 1), -EFAULT);
    cr_expect(strstr(sim_error(f.d), "outside guest RAM"), "%s", sim_error(f.d));
    cr_expect_eq(sim_mem_write(f.d, RAM - 2, b, 4), -EFAULT);
    unmake(&f);
}
