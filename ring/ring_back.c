/*
 * ring/ring_back.c — the back end of the vm_event ring: a client's side, with
 * the semantics of Xen's BACK_RING_* macros (xen/include/public/io/ring.h) as
 * xen-access uses them.  vmisim's in-process clients, tests and benchmarks use
 * it; a client in another process may use Xen's macros instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring_internal.h"

struct ring_back {
    void *shm;
    struct ring_abi_sring_header *sring;
    size_t slot_size;
    uint32_t nr_slots;
    ring_idx_t rsp_prod_pvt;
    ring_idx_t req_cons;
    char error[200];
};

int ring_back_attach(struct ring_back **out, const struct ring_fds *fds, size_t slot_size,
                     ring_idx_t start_index)
{
    uint32_t nr_slots = ring_abi_nr_slots(RING_ABI_PAGE_SIZE, slot_size);
    if (nr_slots == 0)
        return -EINVAL;
    struct ring_back *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    int rc = ring_shm_map(fds->shm, &b->shm);
    if (rc < 0) {
        free(b);
        return rc;
    }
    b->sring = ring_shm_header(b->shm);
    b->slot_size = slot_size;
    b->nr_slots = nr_slots;
    b->rsp_prod_pvt = b->req_cons = start_index;
    *out = b;
    return 0;
}

void ring_back_detach(struct ring_back *b)
{
    if (!b)
        return;
    ring_shm_unmap(b->shm);
    free(b);
}

uint32_t ring_back_nr_slots(const struct ring_back *b)
{
    return b->nr_slots;
}

static uint32_t ring_back_unconsumed_at(const struct ring_back *b, ring_idx_t prod)
{
    /* XEN_RING_NR_UNCONSUMED_REQUESTS: never more than the slots not holding our responses. */
    uint32_t req = prod - b->req_cons;
    uint32_t rsp = b->nr_slots - (b->req_cons - b->rsp_prod_pvt);
    return req < rsp ? req : rsp;
}

uint32_t ring_back_unconsumed_requests(const struct ring_back *b)
{
    return ring_back_unconsumed_at(b, ring_load(&b->sring->req_prod));
}

int ring_back_take_request(struct ring_back *b, void *req)
{
    ring_idx_t prod = ring_load(&b->sring->req_prod);
    ring_rmb(); /* read the requests only after the index that publishes them */
    if ((ring_idx_t)(prod - b->rsp_prod_pvt) > b->nr_slots) { /* RING_REQUEST_PROD_OVERFLOW */
        snprintf(b->error, sizeof(b->error),
                 "vm_event ring: req_prod %u claims more requests than the ring holds "
                 "(req_cons %u, rsp_prod %u, %u slots)",
                 prod, b->req_cons, b->rsp_prod_pvt, b->nr_slots);
        return -EPROTO;
    }
    if (ring_back_unconsumed_at(b, prod) == 0)
        return -EAGAIN;
    memcpy(req, ring_shm_slot(b->shm, b->slot_size, b->nr_slots, b->req_cons), b->slot_size);
    b->req_cons++;
    return 0;
}

int ring_back_put_response(struct ring_back *b, const void *rsp)
{
    if (b->rsp_prod_pvt == b->req_cons)
        return -ENOSPC;
    memcpy(ring_shm_slot(b->shm, b->slot_size, b->nr_slots, b->rsp_prod_pvt), rsp, b->slot_size);
    b->rsp_prod_pvt++;
    return 0;
}

bool ring_back_push_responses(struct ring_back *b)
{
    /* RING_PUSH_RESPONSES_AND_CHECK_NOTIFY. */
    ring_idx_t old = ring_load(&b->sring->rsp_prod);
    ring_idx_t new = b->rsp_prod_pvt;
    ring_wmb();
    ring_store(&b->sring->rsp_prod, new);
    ring_mb();
    ring_idx_t event = ring_load(&b->sring->rsp_event);
    return (ring_idx_t)(new - event) < (ring_idx_t)(new - old);
}

int ring_back_final_check_for_requests(struct ring_back *b)
{
    /* RING_FINAL_CHECK_FOR_REQUESTS. */
    if (ring_back_unconsumed_requests(b))
        return 1;
    ring_store(&b->sring->req_event, b->req_cons + 1);
    ring_mb();
    return ring_back_unconsumed_requests(b) != 0;
}

const char *ring_back_error(const struct ring_back *b)
{
    return b->error;
}

void ring_back_save(const struct ring_back *b, struct ring_back_state *st)
{
    st->rsp_prod_pvt = b->rsp_prod_pvt;
    st->req_cons = b->req_cons;
}

int ring_back_restore(struct ring_back *b, const struct ring_back_state *st)
{
    /* A back end never answers a request it has not taken, nor holds more than the ring. */
    if ((ring_idx_t)(st->req_cons - st->rsp_prod_pvt) > b->nr_slots)
        return -EINVAL;
    b->rsp_prod_pvt = st->rsp_prod_pvt;
    b->req_cons = st->req_cons;
    b->error[0] = 0;
    return 0;
}
