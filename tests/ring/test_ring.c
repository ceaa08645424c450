/*
 * tests/ring/test_ring.c — the vm_event ring against Xen's io/ring.h rules.
 *
 * Each test names the rule it proves.  The front end is the simulator (Xen's
 * role), the back end the client; a "raw" mapping plays a hostile client.
 */
#include <errno.h>
#include <stdlib.h>

#include "ring_test_util.h"

/* Xen's __RING_SIZE: (4096 - 64) / slot, rounded down to a power of two. */
Test(ring_layout, slot_count_is_xens)
{
    struct { size_t slot; uint32_t expect; } cases[] = {
        {SLOT_V1, 8}, {SLOT_V7, 8}, {376, 8}, {384, 8}, {2000, 2}, {4032, 1}, {1, 2048},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ring *r;
        TEST_SETUP(ring_create(&r, cases[i].slot, 0));
        cr_expect_eq(ring_nr_slots(r), cases[i].expect, "slot %zu: %u slots, expected %u",
                     cases[i].slot, ring_nr_slots(r), cases[i].expect);
        ring_destroy(r);
    }
}

/* A slot that does not fit the page after the 64-byte header is refused. */
Test(ring_layout, oversized_slot_is_refused)
{
    struct ring *r = NULL;
    cr_expect_eq(ring_create(&r, 4033, 0), -EINVAL);
    cr_expect_eq(ring_create(&r, 0, 0), -EINVAL);
    cr_expect_null(r);
}

/*
 * SHARED_RING_INIT as seen in the raw page: req_prod=rsp_prod=0,
 * req_event=rsp_event=1; a pushed request sits at byte 64 + slot * size, and
 * req_prod moves only when the request is pushed.
 */
Test(ring_layout, shared_page_bytes)
{
    struct pair p = pair_new(SLOT_V1, 0);
    struct ring_abi_sring_header *h = raw_header(&p);
    const uint32_t *w = (const uint32_t *)(const void *)h;
    cr_expect_eq(w[0], 0);
    cr_expect_eq(w[1], 1);
    cr_expect_eq(w[2], 0);
    cr_expect_eq(w[3], 1);
    unsigned char msg[SLOT_V1];
    for (uint32_t i = 0; i < 3; i++) {
        fill_msg(msg, sizeof(msg), i, 'q');
        cr_assert_eq(ring_put_request(p.front, msg), 0);
    }
    cr_expect_eq(w[0], 0, "req_prod must not move before the push");
    ring_push_requests(p.front);
    cr_expect_eq(w[0], 3);
    for (uint32_t i = 0; i < 3; i++) {
        fill_msg(msg, sizeof(msg), i, 'q');
        cr_expect_arr_eq((unsigned char *)h + 64 + i * SLOT_V1, msg, SLOT_V1, "slot %u", i);
    }
    raw_unmap(h);
    pair_free(&p);
}

/*
 * RING_FREE_REQUESTS: the client taking a request frees nothing; a slot is
 * free again only when the simulator has taken its response.
 */
Test(ring_slots, slot_freed_only_when_response_taken)
{
    struct pair p = pair_new(SLOT_V7, 0);
    unsigned char msg[SLOT_V7];
    fill_msg(msg, sizeof(msg), 1, 'q');
    cr_assert_eq(ring_free_requests(p.front), 8);
    cr_assert_eq(ring_put_request(p.front, msg), 0);
    ring_push_requests(p.front);
    cr_expect_eq(ring_free_requests(p.front), 7);
    cr_assert_eq(ring_back_take_request(p.back, msg), 0);
    cr_expect_eq(ring_free_requests(p.front), 7, "taking the request must not free the slot");
    cr_assert_eq(ring_back_put_response(p.back, msg), 0);
    ring_back_push_responses(p.back);
    cr_expect_eq(ring_free_requests(p.front), 7, "an untaken response must not free the slot");
    cr_assert_eq(ring_take_response(p.front, msg), 0);
    cr_expect_eq(ring_free_requests(p.front), 8);
    pair_free(&p);
}

/* A full ring refuses the next request with -EBUSY and changes nothing. */
Test(ring_slots, full_ring_is_ebusy)
{
    struct pair p = pair_new(SLOT_V1, 0);
    unsigned char msg[SLOT_V1];
    for (uint32_t i = 0; i < 8; i++) {
        fill_msg(msg, sizeof(msg), i, 'q');
        cr_assert_eq(ring_put_request(p.front, msg), 0, "request %u", i);
    }
    struct ring_indices before = ring_indices(p.front);
    fill_msg(msg, sizeof(msg), 99, 'q');
    cr_expect_eq(ring_put_request(p.front, msg), -EBUSY);
    cr_expect_eq(ring_claim(p.front), -EBUSY);
    struct ring_indices after = ring_indices(p.front);
    cr_expect_eq(after.req_prod_pvt, before.req_prod_pvt);
    cr_expect_eq(ring_nr_outstanding(p.front), 8);
    /* The oldest outstanding request is still request 0, untouched by the refused put. */
    unsigned char got[SLOT_V1];
    cr_assert_eq(ring_outstanding(p.front, 0, got), 0);
    fill_msg(msg, sizeof(msg), 0, 'q');
    cr_expect_arr_eq(got, msg, SLOT_V1);
    pair_free(&p);
}

/* Claims reserve slots (Xen's __vm_event_claim_slot): puts never fail for a claimed slot. */
Test(ring_slots, claim_reserves_a_slot)
{
    struct pair p = pair_new(SLOT_V1, 0);
    unsigned char msg[SLOT_V1] = {0};
    cr_expect_eq(ring_put_claimed(p.front, msg), -EINVAL, "put without a claim");
    cr_expect_eq(ring_cancel_claim(p.front), -EINVAL, "cancel without a claim");
    for (int i = 0; i < 8; i++)
        cr_assert_eq(ring_claim(p.front), 0);
    cr_expect_eq(ring_available(p.front), 0);
    cr_expect_eq(ring_free_requests(p.front), 8, "claims are not requests");
    cr_expect_eq(ring_put_request(p.front, msg), -EBUSY, "every free slot is claimed");
    cr_assert_eq(ring_cancel_claim(p.front), 0);
    cr_expect_eq(ring_available(p.front), 1);
    cr_assert_eq(ring_put_claimed(p.front, msg), 0);
    cr_expect_eq(ring_free_requests(p.front), 7);
    cr_expect_eq(ring_available(p.front), 1, "7 free slots, 6 still claimed");
    pair_free(&p);
}

/*
 * The free-running indices wrap past 2^32: starting 5 below it, 1,000 round
 * trips carry every byte intact and every count stays right.
 */
Test(ring_slots, indices_wrap_past_2_32)
{
    ring_idx_t start = UINT32_MAX - 5;
    struct pair p = pair_new(SLOT_V7, start);
    unsigned char msg[SLOT_V7], got[SLOT_V7];
    for (uint32_t i = 0; i < 1000; i++) {
        uint32_t batch = 1 + i % 8;
        for (uint32_t k = 0; k < batch; k++) {
            fill_msg(msg, sizeof(msg), i * 8 + k, 'q');
            cr_assert_eq(ring_put_request(p.front, msg), 0, "round %u put %u", i, k);
        }
        ring_push_requests(p.front);
        cr_assert_eq(ring_free_requests(p.front), 8 - batch);
        for (uint32_t k = 0; k < batch; k++) {
            cr_assert_eq(ring_back_take_request(p.back, got), 0);
            fill_msg(msg, sizeof(msg), i * 8 + k, 'q');
            cr_assert_arr_eq(got, msg, SLOT_V7, "request %u/%u corrupted", i, k);
            fill_msg(msg, sizeof(msg), i * 8 + k, 'r');
            cr_assert_eq(ring_back_put_response(p.back, msg), 0);
        }
        ring_back_push_responses(p.back);
        for (uint32_t k = 0; k < batch; k++) {
            cr_assert_eq(ring_take_response(p.front, got), 0, "round %u response %u: %s", i, k,
                         ring_error(p.front));
            fill_msg(msg, sizeof(msg), i * 8 + k, 'r');
            cr_assert_arr_eq(got, msg, SLOT_V7, "response %u/%u corrupted", i, k);
        }
        cr_assert_eq(ring_take_response(p.front, got), -EAGAIN);
        cr_assert_eq(ring_free_requests(p.front), 8);
    }
    struct ring_indices idx = ring_indices(p.front);
    cr_expect_lt(idx.rsp_cons, start, "the indices must have wrapped");
    cr_expect_eq(idx.rsp_prod, idx.req_prod);
    pair_free(&p);
}

/*
 * RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: the first push notifies (req_event
 * starts at 1); a push while the client has not re-armed req_event does not;
 * after RING_FINAL_CHECK_FOR_REQUESTS re-arms it, the next push does.
 */
Test(ring_notify, front_push_follows_req_event)
{
    struct pair p = pair_new(SLOT_V1, 0);
    unsigned char msg[SLOT_V1] = {0};
    ring_put_request(p.front, msg);
    cr_expect(ring_push_requests(p.front), "first request: req_event = 1");
    ring_put_request(p.front, msg);
    cr_expect_not(ring_push_requests(p.front), "client has not asked for more");
    cr_assert_eq(ring_back_take_request(p.back, msg), 0);
    cr_assert_eq(ring_back_take_request(p.back, msg), 0);
    cr_expect_eq(ring_back_final_check_for_requests(p.back), 0);
    cr_expect_eq(ring_indices(p.front).req_event, 3, "req_event = req_cons + 1");
    ring_put_request(p.front, msg);
    cr_expect(ring_push_requests(p.front), "req_event was re-armed");
    cr_expect_eq(ring_back_final_check_for_requests(p.back), 1, "a request is waiting");
    /* A push of nothing new never notifies. */
    cr_expect_not(ring_push_requests(p.front));
    pair_free(&p);
}

/*
 * The client's RING_PUSH_RESPONSES_AND_CHECK_NOTIFY against Xen's re-arming:
 * vm_event_get_response sets rsp_event = rsp_cons + 1 after every response it
 * takes, so the client's next response always asks for a notification.
 */
Test(ring_notify, back_push_follows_rsp_event)
{
    struct pair p = pair_new(SLOT_V1, 0);
    unsigned char msg[SLOT_V1] = {0};
    for (int i = 0; i < 3; i++)
        ring_put_request(p.front, msg);
    ring_push_requests(p.front);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(ring_back_take_request(p.back, msg), 0);
    ring_back_put_response(p.back, msg);
    cr_expect(ring_back_push_responses(p.back), "rsp_event starts at 1");
    ring_back_put_response(p.back, msg);
    cr_expect_not(ring_back_push_responses(p.back), "the simulator has not re-armed rsp_event");
    cr_assert_eq(ring_take_response(p.front, msg), 0);
    cr_expect_eq(ring_indices(p.front).rsp_event, 2, "re-armed to rsp_cons + 1 after a take");
    cr_assert_eq(ring_take_response(p.front, msg), 0);
    cr_expect_eq(ring_indices(p.front).rsp_event, 3);
    ring_back_put_response(p.back, msg);
    cr_expect(ring_back_push_responses(p.back));
    pair_free(&p);
}

/* RING_FINAL_CHECK_FOR_RESPONSES: 0 and re-armed when idle, 1 when a response waits. */
Test(ring_notify, final_check_for_responses)
{
    struct pair p = pair_new(SLOT_V1, 0);
    unsigned char msg[SLOT_V1] = {0};
    cr_expect_eq(ring_final_check_for_responses(p.front), 0);
    cr_expect_eq(ring_indices(p.front).rsp_event, 1);
    ring_put_request(p.front, msg);
    ring_push_requests(p.front);
    ring_back_take_request(p.back, msg);
    ring_back_put_response(p.back, msg);
    ring_back_push_responses(p.back);
    cr_expect_eq(ring_final_check_for_responses(p.front), 1);
    pair_free(&p);
}

/*
 * Requests and responses are not matched (Xen's vm_event_resume): a client
 * may answer several outstanding requests in any order; the simulator takes
 * the responses in the order the client put them.
 */
Test(ring_slots, responses_in_any_order)
{
    struct pair p = pair_new(SLOT_V1, 0);
    unsigned char msg[SLOT_V1], got[SLOT_V1];
    for (uint32_t i = 0; i < 5; i++) {
        fill_msg(msg, sizeof(msg), i, 'q');
        ring_put_request(p.front, msg);
    }
    ring_push_requests(p.front);
    for (uint32_t i = 0; i < 5; i++)
        cr_assert_eq(ring_back_take_request(p.back, got), 0);
    for (uint32_t i = 5; i-- > 0;) {
        fill_msg(msg, sizeof(msg), i, 'r');
        cr_assert_eq(ring_back_put_response(p.back, msg), 0);
    }
    cr_expect_eq(ring_back_put_response(p.back, msg), -ENOSPC, "more responses than requests");
    ring_back_push_responses(p.back);
    for (uint32_t i = 5; i-- > 0;) {
        cr_assert_eq(ring_take_response(p.front, got), 0);
        fill_msg(msg, sizeof(msg), i, 'r');
        cr_expect_arr_eq(got, msg, SLOT_V1, "response for request %u", i);
    }
    pair_free(&p);
}
