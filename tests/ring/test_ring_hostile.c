/*
 * tests/ring/test_ring_hostile.c — a client that breaks the protocol.
 *
 * Everything the simulator reads from the shared page is untrusted.  Each test
 * corrupts one thing and proves: one clear error naming the index values, no
 * crash or hang, and no request already queued is lost.
 */
#include <errno.h>
#include <stdlib.h>

#include "ring_test_util.h"

/* Puts n requests tagged 'q' with sequence numbers 0..n-1 and pushes them. */
static void put_n(struct pair *p, uint32_t n)
{
    unsigned char msg[SLOT_V7];
    for (uint32_t i = 0; i < n; i++) {
        fill_msg(msg, p->slot, i, 'q');
        cr_assert_eq(ring_put_request(p->front, msg), 0);
    }
    ring_push_requests(p->front);
}

/* The outstanding requests are still exactly what was put, oldest first. */
static void expect_outstanding_intact(struct pair *p, uint32_t first, uint32_t n)
{
    unsigned char msg[SLOT_V7], got[SLOT_V7];
    cr_expect_eq(ring_nr_outstanding(p->front), n);
    for (uint32_t i = 0; i < n; i++) {
        cr_assert_eq(ring_outstanding(p->front, i, got), 0);
        fill_msg(msg, p->slot, first + i, 'q');
        cr_expect_arr_eq(got, msg, p->slot, "outstanding request %u changed", first + i);
    }
}

/* rsp_prod claiming more responses than requests outstanding → -EPROTO, named values. */
Test(ring_hostile, rsp_prod_beyond_requests)
{
    struct pair p = pair_new(SLOT_V7, 0);
    put_n(&p, 2);
    struct ring_abi_sring_header *h = raw_header(&p);
    atomic_store(&h->rsp_prod, 1000);
    unsigned char got[SLOT_V7];
    cr_expect_eq(ring_take_response(p.front, got), -EPROTO);
    const char *err = ring_error(p.front);
    cr_expect(strstr(err, "rsp_prod 1000") && strstr(err, "more responses than requests"),
              "error must name the value and the rule: %s", err);
    cr_expect(strstr(err, "rsp_cons 0") && strstr(err, "req_prod 2"), "error: %s", err);
    cr_expect(ring_is_broken(p.front));
    expect_outstanding_intact(&p, 0, 2);
    raw_unmap(h);
    pair_free(&p);
}

/* rsp_prod one step back after the simulator has seen it further on → -EPROTO. */
Test(ring_hostile, rsp_prod_moves_backwards)
{
    struct pair p = pair_new(SLOT_V1, 0);
    put_n(&p, 3);
    unsigned char msg[SLOT_V1];
    for (int i = 0; i < 3; i++) {
        ring_back_take_request(p.back, msg);
        ring_back_put_response(p.back, msg);
    }
    ring_back_push_responses(p.back);
    cr_assert_eq(ring_take_response(p.front, msg), 0);
    struct ring_abi_sring_header *h = raw_header(&p);
    atomic_store(&h->rsp_prod, 2); /* it was 3: response 2 "unpublished" */
    cr_expect_eq(ring_take_response(p.front, msg), -EPROTO);
    cr_expect(strstr(ring_error(p.front), "moved backwards"), "%s", ring_error(p.front));
    cr_expect(strstr(ring_error(p.front), "rsp_prod was 3"), "%s", ring_error(p.front));
    expect_outstanding_intact(&p, 1, 2);
    raw_unmap(h);
    pair_free(&p);
}

/* rsp_prod far behind rsp_cons (a client that re-ran SHARED_RING_INIT mid-stream). */
Test(ring_hostile, rsp_prod_reset_to_zero)
{
    struct pair p = pair_new(SLOT_V1, 100);
    put_n(&p, 1);
    struct ring_abi_sring_header *h = raw_header(&p);
    atomic_store(&h->rsp_prod, 0);
    unsigned char msg[SLOT_V1];
    cr_expect_eq(ring_take_response(p.front, msg), -EPROTO);
    cr_expect(strstr(ring_error(p.front), "rsp_prod 0 moved backwards"), "%s", ring_error(p.front));
    expect_outstanding_intact(&p, 0, 1);
    raw_unmap(h);
    pair_free(&p);
}

/*
 * Once broken, the ring stays broken: every call fails with -EPROTO, the
 * first error message is kept (reported once), and nothing is put or taken.
 */
Test(ring_hostile, broken_ring_is_sticky)
{
    struct pair p = pair_new(SLOT_V1, 0);
    put_n(&p, 1);
    struct ring_abi_sring_header *h = raw_header(&p);
    atomic_store(&h->rsp_prod, 77);
    unsigned char msg[SLOT_V1] = {0};
    cr_assert_eq(ring_take_response(p.front, msg), -EPROTO);
    char first[256];
    snprintf(first, sizeof(first), "%s", ring_error(p.front));
    atomic_store(&h->rsp_prod, 99);
    cr_expect_eq(ring_take_response(p.front, msg), -EPROTO);
    cr_expect_eq(ring_final_check_for_responses(p.front), -EPROTO);
    cr_expect_eq(ring_put_request(p.front, msg), -EPROTO);
    cr_expect_eq(ring_claim(p.front), -EPROTO);
    cr_expect_str_eq(ring_error(p.front), first);
    expect_outstanding_intact(&p, 0, 1);
    raw_unmap(h);
    pair_free(&p);
}

/*
 * A client that scribbles over the request slots after reading them changes
 * nothing the simulator holds: its own copies of outstanding requests survive.
 */
Test(ring_hostile, scribbled_request_slots)
{
    struct pair p = pair_new(SLOT_V7, 0);
    put_n(&p, 8);
    struct ring_abi_sring_header *h = raw_header(&p);
    memset((unsigned char *)h + 64, 0xa5, 8 * SLOT_V7);
    expect_outstanding_intact(&p, 0, 8);
    raw_unmap(h);
    pair_free(&p);
}

/* req_event garbage only affects the notify decision: the ring keeps working. */
Test(ring_hostile, garbage_req_event)
{
    struct pair p = pair_new(SLOT_V1, 0);
    struct ring_abi_sring_header *h = raw_header(&p);
    atomic_store(&h->req_event, 0xdeadbeef);
    put_n(&p, 2);
    unsigned char msg[SLOT_V1];
    cr_expect_eq(ring_back_take_request(p.back, msg), 0);
    cr_expect_not(ring_is_broken(p.front));
    raw_unmap(h);
    pair_free(&p);
}

/* The back end refuses a req_prod that claims more requests than the ring holds. */
Test(ring_hostile, back_end_refuses_req_prod_overflow)
{
    struct pair p = pair_new(SLOT_V1, 0);
    struct ring_abi_sring_header *h = raw_header(&p);
    atomic_store(&h->req_prod, 9);
    unsigned char msg[SLOT_V1];
    cr_expect_eq(ring_back_take_request(p.back, msg), -EPROTO);
    cr_expect(strstr(ring_back_error(p.back), "req_prod 9"), "%s", ring_back_error(p.back));
    raw_unmap(h);
    pair_free(&p);
}

/* A shared-memory object too small for a ring is refused, never mapped and faulted on. */
Test(ring_hostile, short_shm_refused)
{
    int fd = memfd_create("short", MFD_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 100), 0);
    struct ring_fds fds = {.shm = fd, .to_client = -1, .to_simulator = -1};
    struct ring_back *b = NULL;
    cr_expect_eq(ring_back_attach(&b, &fds, SLOT_V1, 0), -EINVAL);
    struct evtchn *e = NULL;
    cr_expect_eq(evtchn_open(&e, &fds, RING_ABI_PORT_CLIENT), -EINVAL);
    close(fd);
}
