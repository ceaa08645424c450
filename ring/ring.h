/*
 * ring/ring.h — vmisim's vm_event ring: Xen's shared ring, for real.
 *
 * The simulator is the ring's front end (Xen's role: it puts requests and
 * takes responses); an introspection client is the back end.  The ring lives
 * in a memfd another process can map (layout: ring/ring_abi.h) and comes with
 * a doorbell that behaves like a Xen event channel (notify, pending, unmask),
 * built on two eventfds.  A client needs three file descriptors, `struct
 * ring_fds`, and may then use Xen's own <xen/io/ring.h> macros on page 0.
 *
 * Every value read from shared memory is untrusted: responses and requests are
 * copied out of their slot before anyone looks at them, and the indices are
 * checked against what the other side can legitimately have done.
 *
 * Functions return 0 (or a count) on success and a negative errno on failure.
 * When a function fails because the other side broke the protocol, it returns
 * -EPROTO and the ring keeps one sentence describing what was wrong, with the
 * index values, in ring_error(); the caller reports it, with its own context.
 */
#ifndef VMISIM_RING_H
#define VMISIM_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring_abi.h"

/* The three descriptors a client needs, e.g. passed over a unix socket. */
struct ring_fds {
    int shm;          /* memfd: page 0 the shared ring, page 1 the doorbell state */
    int to_client;    /* eventfd the client waits on (port RING_ABI_PORT_CLIENT) */
    int to_simulator; /* eventfd the simulator waits on (port RING_ABI_PORT_SIMULATOR) */
};

/* ---- Event channel (doorbell) ------------------------------------------- */

struct evtchn;

/*
 * Opens one side of the doorbell.  `local` is the port this side receives on.
 * The descriptors are borrowed, not owned: close them after evtchn_close().
 */
int evtchn_open(struct evtchn **out, const struct ring_fds *fds, enum ring_abi_port local);
void evtchn_close(struct evtchn *e);
/* A descriptor that polls readable when an event has been delivered to us. */
int evtchn_fd(const struct evtchn *e);
/* Sets the other side's port pending; delivers it unless it is masked. */
int evtchn_notify(struct evtchn *e);
/*
 * Takes a delivered event: 1 if there was one (our port is now masked until
 * evtchn_unmask, as after a Linux evtchn upcall), 0 if none.  Never blocks.
 */
int evtchn_pending(struct evtchn *e);
/* Unmasks our port; an event that became pending meanwhile is delivered now. */
int evtchn_unmask(struct evtchn *e);
/*
 * Masks our port: the peer's notifies then only set it pending, with no
 * eventfd write (no system call on either side).  For a side that polls
 * instead of sleeping, as an in-process client does.
 */
int evtchn_mask(struct evtchn *e);
/* Takes the pending bit of our (masked) port: 1 if the peer notified since, else 0. */
int evtchn_take_pending(struct evtchn *e);
/*
 * Waits at most timeout_ms (-1: forever) for a delivery, then takes it as
 * evtchn_pending does.  Returns 1, or 0 on timeout.  It first watches the
 * port for a short while (evtchn_set_spin) before it sleeps in poll().
 */
int evtchn_wait(struct evtchn *e, int timeout_ms);
/*
 * How long evtchn_wait watches the port before sleeping, in ns (0: sleep at
 * once).  The default is about the cost of one sleep/wake-up on a virtual
 * machine, so a peer that answers quickly is not paid for with a wake-up.
 */
#define EVTCHN_DEFAULT_SPIN_NS 20000L
void evtchn_set_spin(struct evtchn *e, long spin_ns);

/* ---- Front end: the simulator ------------------------------------------- */

struct ring;

/*
 * Creates a ring for slots of `slot_size` bytes (sizeof(vm_event_request_t) of
 * the interface version in use: 312 for v1, 400 for v7) in a fresh memfd and
 * its doorbell.  The shared page is initialised as SHARED_RING_INIT does, with
 * every index at `start_index` (FRONT_RING_ATTACH; 0 for a client that runs
 * BACK_RING_INIT, as xen-access does).
 */
int ring_create(struct ring **out, size_t slot_size, ring_idx_t start_index);
void ring_destroy(struct ring *r);

/* The descriptors to hand to the client (still owned by the ring). */
struct ring_fds ring_fds(const struct ring *r);
/* The simulator's side of the doorbell. */
struct evtchn *ring_evtchn(struct ring *r);

uint32_t ring_nr_slots(const struct ring *r);
size_t ring_slot_size(const struct ring *r);
/* Xen's RING_FREE_REQUESTS: a slot is free again once its response was taken. */
uint32_t ring_free_requests(const struct ring *r);
/* Free slots not reserved by ring_claim(): what a new producer may still take. */
uint32_t ring_available(const struct ring *r);

/*
 * Slot reservation, as Xen's __vm_event_claim_slot / vm_event_cancel_slot: a
 * producer claims a slot before it commits to an event, so the put cannot fail
 * for lack of space.  ring_claim returns -EBUSY when nothing is available.
 */
int ring_claim(struct ring *r);
int ring_cancel_claim(struct ring *r);

/*
 * Copies a request into the next slot and keeps a private copy of it until its
 * response is taken.  ring_put_claimed uses a slot reserved by ring_claim;
 * ring_put_request claims one itself and returns -EBUSY when the ring is full.
 * The request is not visible to the client until ring_push_requests.
 */
int ring_put_claimed(struct ring *r, const void *req);
int ring_put_request(struct ring *r, const void *req);

/*
 * Publishes the requests put so far (RING_PUSH_REQUESTS_AND_CHECK_NOTIFY) and
 * returns whether the client asked to be notified (req_event).  Xen's
 * vm_event_put_request ignores that answer and always notifies.
 */
bool ring_push_requests(struct ring *r);

/*
 * Takes the next response: copies it out of its slot into `rsp` (slot_size
 * bytes), advances rsp_cons and re-arms rsp_event = rsp_cons + 1, as Xen's
 * vm_event_get_response does.  Returns 0, -EAGAIN when there is none, or
 * -EPROTO when rsp_prod is impossible (more responses than requests
 * outstanding, or moved backwards); the ring then stays broken (every call
 * returns -EPROTO) and keeps its outstanding requests for ring_outstanding.
 */
int ring_take_response(struct ring *r, void *rsp);

/*
 * RING_FINAL_CHECK_FOR_RESPONSES: 1 if responses are waiting; otherwise sets
 * rsp_event so the next response notifies us, checks again and returns 0/1.
 */
int ring_final_check_for_responses(struct ring *r);

/* Requests put and not yet answered, oldest first. */
uint32_t ring_nr_outstanding(const struct ring *r);
/* Our private copy of outstanding request `i` (0 = oldest): the client cannot change it. */
int ring_outstanding(const struct ring *r, uint32_t i, void *req);

/* The current indices, for logs and tests. */
struct ring_indices {
    ring_idx_t req_prod_pvt, rsp_cons;                /* private to the front end */
    ring_idx_t req_prod, req_event, rsp_prod, rsp_event; /* as read from shared memory */
};
struct ring_indices ring_indices(const struct ring *r);

bool ring_is_broken(const struct ring *r);
/* What went wrong, in one sentence with the index values ("" if nothing). */
const char *ring_error(const struct ring *r);

/* ---- Back end: a client ------------------------------------------------- */

struct ring_back;

/*
 * Maps the shared ring of `fds->shm` as the back end, at `start_index`
 * (BACK_RING_ATTACH).  It does not re-initialise the shared page.
 */
int ring_back_attach(struct ring_back **out, const struct ring_fds *fds, size_t slot_size,
                     ring_idx_t start_index);
void ring_back_detach(struct ring_back *b);

uint32_t ring_back_nr_slots(const struct ring_back *b);
/* XEN_RING_NR_UNCONSUMED_REQUESTS. */
uint32_t ring_back_unconsumed_requests(const struct ring_back *b);
/*
 * Copies the next request out of its slot.  0, -EAGAIN when there is none, or
 * -EPROTO when req_prod claims more requests than the ring can hold
 * (RING_REQUEST_PROD_OVERFLOW); see ring_back_error.
 */
int ring_back_take_request(struct ring_back *b, void *req);
/* Puts a response for a request taken earlier; -ENOSPC if every taken request is answered. */
int ring_back_put_response(struct ring_back *b, const void *rsp);
/* RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: publishes, returns whether to notify. */
bool ring_back_push_responses(struct ring_back *b);
/* RING_FINAL_CHECK_FOR_REQUESTS: 1 if requests are waiting, else arms req_event. */
int ring_back_final_check_for_requests(struct ring_back *b);
const char *ring_back_error(const struct ring_back *b);

/* ---- Snapshots ------------------------------------------------------------ */

/*
 * A ring's identity: unique among the rings this process created (a ring
 * destroyed and created again is another ring, whatever its address).
 */
uint64_t ring_id(const struct ring *r);
/*
 * The front end's whole state as one blob: both shared pages (the requests
 * and responses in their slots, the four indices, both doorbell ports'
 * pending and mask bits), the private indices, claims, the private copies of
 * outstanding requests, the broken flag and its sentence, and the deliveries
 * waiting in each doorbell's eventfd.  ring_restore puts all of it back into
 * the same ring (its descriptors stay valid, so a client stays attached);
 * -EINVAL for a blob of another slot size or a damaged one.  Neither may run
 * while the client touches the ring: the client's own private indices are
 * its to save (ring_back_save).
 */
size_t ring_state_size(const struct ring *r);
int ring_save(struct ring *r, void *buf, size_t len);
int ring_restore(struct ring *r, const void *buf, size_t len);

/* The back end's private indices (BACK_RING's rsp_prod_pvt and req_cons). */
struct ring_back_state {
    ring_idx_t rsp_prod_pvt;
    ring_idx_t req_cons;
};
void ring_back_save(const struct ring_back *b, struct ring_back_state *st);
/* -EINVAL when the indices are impossible (more responses than requests taken). */
int ring_back_restore(struct ring_back *b, const struct ring_back_state *st);

#endif
