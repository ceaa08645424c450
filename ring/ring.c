/*
 * ring/ring.c — the front end of the vm_event ring: the simulator's side,
 * Xen's role in xen/common/vm_event.c (FRONT_RING_INIT, vm_event_put_request,
 * vm_event_get_response, __vm_event_claim_slot, vm_event_cancel_slot).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ring_internal.h"

struct ring {
    void *shm;
    struct ring_abi_sring_header *sring;
    size_t slot_size;
    uint32_t nr_slots;
    /* Xen's front_ring private indices. */
    ring_idx_t req_prod_pvt;
    ring_idx_t rsp_cons;
    ring_idx_t rsp_prod_seen;   /* the highest valid rsp_prod read so far */
    uint32_t claimed;           /* slots reserved by ring_claim, not yet put */
    unsigned char *outstanding; /* private copies of the requests awaiting a response */
    struct ring_fds fds;
    struct evtchn *evtchn;
    bool broken;
    char error[256];
    uint64_t id; /* ring_id: a process-wide counter */
};

static _Atomic uint64_t ring_next_id = 1;

static void ring_close_fds(struct ring_fds *fds)
{
    int *all[] = {&fds->shm, &fds->to_client, &fds->to_simulator};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (*all[i] >= 0) {
            close(*all[i]);
            *all[i] = -1;
        }
}

int ring_create(struct ring **out, size_t slot_size, ring_idx_t start_index)
{
    uint32_t nr_slots = ring_abi_nr_slots(RING_ABI_PAGE_SIZE, slot_size);
    if (nr_slots == 0)
        return -EINVAL;
    struct ring *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->fds = (struct ring_fds){.shm = -1, .to_client = -1, .to_simulator = -1};
    r->slot_size = slot_size;
    r->nr_slots = nr_slots;
    r->id = atomic_fetch_add(&ring_next_id, 1);
    r->req_prod_pvt = r->rsp_cons = r->rsp_prod_seen = start_index;
    int rc = -ENOMEM;
    r->outstanding = calloc(nr_slots, slot_size);
    if (!r->outstanding)
        goto fail;
    if ((rc = ring_shm_create(&r->fds.shm)) < 0)
        goto fail;
    r->fds.to_client = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    r->fds.to_simulator = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->fds.to_client < 0 || r->fds.to_simulator < 0) {
        rc = -errno;
        goto fail;
    }
    if ((rc = ring_shm_map(r->fds.shm, &r->shm)) < 0)
        goto fail;
    if ((rc = evtchn_open(&r->evtchn, &r->fds, RING_ABI_PORT_SIMULATOR)) < 0)
        goto fail;
    r->sring = ring_shm_header(r->shm);
    /* SHARED_RING_INIT, attached at start_index (the memfd is already zero-filled). */
    ring_store(&r->sring->req_prod, start_index);
    ring_store(&r->sring->rsp_prod, start_index);
    ring_store(&r->sring->req_event, start_index + 1);
    ring_store(&r->sring->rsp_event, start_index + 1);
    *out = r;
    return 0;
fail:
    ring_destroy(r);
    return rc;
}

void ring_destroy(struct ring *r)
{
    if (!r)
        return;
    evtchn_close(r->evtchn);
    ring_shm_unmap(r->shm);
    ring_close_fds(&r->fds);
    free(r->outstanding);
    free(r);
}

struct ring_fds ring_fds(const struct ring *r)
{
    return r->fds;
}

struct evtchn *ring_evtchn(struct ring *r)
{
    return r->evtchn;
}

uint32_t ring_nr_slots(const struct ring *r)
{
    return r->nr_slots;
}

size_t ring_slot_size(const struct ring *r)
{
    return r->slot_size;
}

uint32_t ring_free_requests(const struct ring *r)
{
    /* RING_FREE_REQUESTS: only our private indices, never the client's. */
    return r->nr_slots - (r->req_prod_pvt - r->rsp_cons);
}

uint32_t ring_available(const struct ring *r)
{
    return ring_free_requests(r) - r->claimed;
}

int ring_claim(struct ring *r)
{
    if (r->broken)
        return -EPROTO;
    if (ring_available(r) == 0)
        return -EBUSY;
    r->claimed++;
    return 0;
}

int ring_cancel_claim(struct ring *r)
{
    if (r->claimed == 0)
        return -EINVAL;
    r->claimed--;
    return 0;
}

int ring_put_claimed(struct ring *r, const void *req)
{
    if (r->claimed == 0)
        return -EINVAL;
    if (r->broken)
        return -EPROTO;
    uint32_t i = r->req_prod_pvt & (r->nr_slots - 1);
    memcpy(r->outstanding + (size_t)i * r->slot_size, req, r->slot_size);
    memcpy(ring_shm_slot(r->shm, r->slot_size, r->nr_slots, r->req_prod_pvt), req, r->slot_size);
    r->req_prod_pvt++;
    r->claimed--;
    return 0;
}

int ring_put_request(struct ring *r, const void *req)
{
    int rc = ring_claim(r);
    return rc < 0 ? rc : ring_put_claimed(r, req);
}

bool ring_push_requests(struct ring *r)
{
    /* RING_PUSH_REQUESTS_AND_CHECK_NOTIFY. */
    ring_idx_t old = ring_load(&r->sring->req_prod);
    ring_idx_t new = r->req_prod_pvt;
    ring_wmb(); /* the client sees the requests before the new producer index */
    ring_store(&r->sring->req_prod, new);
    ring_mb(); /* the client sees the new requests before we read req_event */
    ring_idx_t event = ring_load(&r->sring->req_event);
    return (ring_idx_t)(new - event) < (ring_idx_t)(new - old);
}

static int ring_fail(struct ring *r, const char *what, ring_idx_t rsp_prod)
{
    if (!r->broken) {
        snprintf(r->error, sizeof(r->error),
                 "vm_event ring: the client's rsp_prod %u %s (rsp_prod was %u, rsp_cons %u, "
                 "req_prod %u, %u request(s) outstanding); no response taken, outstanding "
                 "requests kept",
                 rsp_prod, what, r->rsp_prod_seen, r->rsp_cons, r->req_prod_pvt,
                 r->req_prod_pvt - r->rsp_cons);
        r->broken = true;
    }
    return -EPROTO;
}

/* Responses the client has published beyond rsp_cons, checked against what it can have done. */
static int ring_unconsumed_responses(struct ring *r)
{
    if (r->broken)
        return -EPROTO;
    ring_idx_t prod = ring_load(&r->sring->rsp_prod);
    ring_rmb(); /* read the responses only after the index that publishes them */
    /* Indices wrap modulo 2^32: "behind" means within half the index space below. */
    if ((int32_t)(prod - r->rsp_prod_seen) < 0)
        return ring_fail(r, "moved backwards", prod);
    if (prod - r->rsp_cons > r->req_prod_pvt - r->rsp_cons)
        return ring_fail(r, "claims more responses than requests outstanding", prod);
    r->rsp_prod_seen = prod;
    return (int)(prod - r->rsp_cons);
}

int ring_take_response(struct ring *r, void *rsp)
{
    int avail = ring_unconsumed_responses(r);
    if (avail <= 0)
        return avail < 0 ? avail : -EAGAIN;
    /* One copy out of shared memory; the caller validates the copy, never the slot. */
    memcpy(rsp, ring_shm_slot(r->shm, r->slot_size, r->nr_slots, r->rsp_cons), r->slot_size);
    r->rsp_cons++;
    /* vm_event_get_response: re-arm so the client's next response notifies us. */
    ring_store(&r->sring->rsp_event, r->rsp_cons + 1);
    return 0;
}

int ring_final_check_for_responses(struct ring *r)
{
    int avail = ring_unconsumed_responses(r);
    if (avail != 0)
        return avail < 0 ? avail : 1;
    ring_store(&r->sring->rsp_event, r->rsp_cons + 1);
    ring_mb();
    avail = ring_unconsumed_responses(r);
    return avail < 0 ? avail : avail > 0;
}

uint32_t ring_nr_outstanding(const struct ring *r)
{
    return r->req_prod_pvt - r->rsp_cons;
}

int ring_outstanding(const struct ring *r, uint32_t i, void *req)
{
    if (i >= ring_nr_outstanding(r))
        return -ERANGE;
    uint32_t slot = (r->rsp_cons + i) & (r->nr_slots - 1);
    memcpy(req, r->outstanding + (size_t)slot * r->slot_size, r->slot_size);
    return 0;
}

struct ring_indices ring_indices(const struct ring *r)
{
    return (struct ring_indices){
        .req_prod_pvt = r->req_prod_pvt,
        .rsp_cons = r->rsp_cons,
        .req_prod = ring_load(&r->sring->req_prod),
        .req_event = ring_load(&r->sring->req_event),
        .rsp_prod = ring_load(&r->sring->rsp_prod),
        .rsp_event = ring_load(&r->sring->rsp_event),
    };
}

bool ring_is_broken(const struct ring *r)
{
    return r->broken;
}

const char *ring_error(const struct ring *r)
{
    return r->error;
}

/* ---- Snapshots ------------------------------------------------------------ */

#define RING_STATE_MAGIC 0x31474e52u /* "RNG1" */

/* The blob's header; the outstanding copies and the two shared pages follow. */
struct ring_state {
    uint32_t magic;
    uint32_t nr_slots;
    uint64_t slot_size;
    ring_idx_t req_prod_pvt, rsp_cons, rsp_prod_seen;
    uint32_t claimed;
    uint8_t broken, pad[7];
    uint64_t to_client, to_simulator; /* eventfd counters: deliveries not yet taken */
    char error[256];
};

uint64_t ring_id(const struct ring *r)
{
    return r->id;
}

size_t ring_state_size(const struct ring *r)
{
    return sizeof(struct ring_state) + (size_t)r->nr_slots * r->slot_size + RING_ABI_SHM_SIZE;
}

/* Reads (and so clears) a non-blocking eventfd's counter: 0 when nothing is pending. */
static uint64_t eventfd_take(int fd)
{
    uint64_t v = 0;
    ssize_t n;
    do
        n = read(fd, &v, sizeof(v));
    while (n < 0 && errno == EINTR);
    return n == sizeof(v) ? v : 0;
}

static void eventfd_give(int fd, uint64_t v)
{
    if (v == 0)
        return;
    ssize_t n;
    do
        n = write(fd, &v, sizeof(v));
    while (n < 0 && errno == EINTR);
}

int ring_save(struct ring *r, void *buf, size_t len)
{
    if (len < ring_state_size(r))
        return -EINVAL;
    struct ring_state h;
    memset(&h, 0, sizeof(h));
    h.magic = RING_STATE_MAGIC;
    h.nr_slots = r->nr_slots;
    h.slot_size = r->slot_size;
    h.req_prod_pvt = r->req_prod_pvt;
    h.rsp_cons = r->rsp_cons;
    h.rsp_prod_seen = r->rsp_prod_seen;
    h.claimed = r->claimed;
    h.broken = r->broken;
    memcpy(h.error, r->error, sizeof(h.error));
    /* An eventfd cannot be peeked: take the count and give it straight back. */
    h.to_client = eventfd_take(r->fds.to_client);
    eventfd_give(r->fds.to_client, h.to_client);
    h.to_simulator = eventfd_take(r->fds.to_simulator);
    eventfd_give(r->fds.to_simulator, h.to_simulator);
    uint8_t *p = buf;
    memcpy(p, &h, sizeof(h));
    p += sizeof(h);
    memcpy(p, r->outstanding, (size_t)r->nr_slots * r->slot_size);
    p += (size_t)r->nr_slots * r->slot_size;
    memcpy(p, r->shm, RING_ABI_SHM_SIZE);
    return 0;
}

int ring_restore(struct ring *r, const void *buf, size_t len)
{
    struct ring_state h;
    if (len != ring_state_size(r))
        return -EINVAL;
    memcpy(&h, buf, sizeof(h));
    if (h.magic != RING_STATE_MAGIC || h.nr_slots != r->nr_slots || h.slot_size != r->slot_size
        || h.req_prod_pvt - h.rsp_cons > h.nr_slots
        || h.claimed > h.nr_slots - (h.req_prod_pvt - h.rsp_cons)
        || memchr(h.error, 0, sizeof(h.error)) == NULL)
        return -EINVAL;
    const uint8_t *p = (const uint8_t *)buf + sizeof(h);
    memcpy(r->outstanding, p, (size_t)r->nr_slots * r->slot_size);
    p += (size_t)r->nr_slots * r->slot_size;
    memcpy(r->shm, p, RING_ABI_SHM_SIZE);
    r->req_prod_pvt = h.req_prod_pvt;
    r->rsp_cons = h.rsp_cons;
    r->rsp_prod_seen = h.rsp_prod_seen;
    r->claimed = h.claimed;
    r->broken = h.broken;
    memcpy(r->error, h.error, sizeof(r->error));
    eventfd_take(r->fds.to_client);
    eventfd_give(r->fds.to_client, h.to_client);
    eventfd_take(r->fds.to_simulator);
    eventfd_give(r->fds.to_simulator, h.to_simulator);
    return 0;
}
