/*
 * ring/evtchn.c — a doorbell with Xen event-channel semantics on eventfds.
 *
 * Each port has a pending and a mask bit in shared memory (page 1 of the ring's
 * memfd, struct ring_abi_evtchn_port), as Xen's 2-level ABI keeps them in the
 * shared_info page.  Delivering an event writes the owner's eventfd and masks
 * the port, as Linux's evtchn driver does on each upcall; the owner unmasks it
 * when it wants the next one (xenevtchn_unmask).  Notifies while the port is
 * pending or masked coalesce, exactly like Xen's: a receiver must re-check the
 * ring after unmasking, never count notifications.
 */
#include <errno.h>
#include <poll.h>
#include <time.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "ring_internal.h"

struct evtchn {
    void *shm;
    struct ring_abi_evtchn_port *local, *remote;
    int local_fd, remote_fd;
    long spin_ns; /* evtchn_wait watches the port this long before it sleeps */
};

static struct ring_abi_evtchn_page *evtchn_page(void *shm)
{
    return (struct ring_abi_evtchn_page *)((unsigned char *)shm + RING_ABI_EVTCHN_OFFSET);
}

int evtchn_open(struct evtchn **out, const struct ring_fds *fds, enum ring_abi_port local)
{
    if (local != RING_ABI_PORT_SIMULATOR && local != RING_ABI_PORT_CLIENT)
        return -EINVAL;
    struct evtchn *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    int rc = ring_shm_map(fds->shm, &e->shm);
    if (rc < 0) {
        free(e);
        return rc;
    }
    struct ring_abi_evtchn_page *page = evtchn_page(e->shm);
    bool sim = local == RING_ABI_PORT_SIMULATOR;
    e->local = &page->port[local];
    e->remote = &page->port[sim ? RING_ABI_PORT_CLIENT : RING_ABI_PORT_SIMULATOR];
    e->local_fd = sim ? fds->to_simulator : fds->to_client;
    e->remote_fd = sim ? fds->to_client : fds->to_simulator;
    e->spin_ns = EVTCHN_DEFAULT_SPIN_NS;
    *out = e;
    return 0;
}

void evtchn_close(struct evtchn *e)
{
    if (!e)
        return;
    ring_shm_unmap(e->shm);
    free(e);
}

int evtchn_fd(const struct evtchn *e)
{
    return e->local_fd;
}

/*
 * Delivers `port` if it is pending and unmasked.  Masking first (the CAS)
 * makes exactly one of several racing deliverers write the eventfd.
 */
static int evtchn_try_deliver(struct ring_abi_evtchn_port *port, int fd)
{
    for (;;) {
        uint32_t unmasked = 0;
        if (!atomic_load(&port->pending)
            || !atomic_compare_exchange_strong(&port->masked, &unmasked, 1))
            return 0;
        if (atomic_exchange(&port->pending, 0))
            break;
        /* Another deliverer took the event between our loads: undo the mask, look again. */
        atomic_store(&port->masked, 0);
    }
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(fd, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
    return n == sizeof(one) ? 0 : -errno;
}

int evtchn_notify(struct evtchn *e)
{
    atomic_store(&e->remote->pending, 1);
    return evtchn_try_deliver(e->remote, e->remote_fd);
}

int evtchn_pending(struct evtchn *e)
{
    uint64_t count;
    ssize_t n;
    do
        n = read(e->local_fd, &count, sizeof(count));
    while (n < 0 && errno == EINTR);
    if (n == sizeof(count))
        return 1;
    if (n < 0 && errno == EAGAIN)
        return 0;
    return n < 0 ? -errno : -EIO;
}

int evtchn_mask(struct evtchn *e)
{
    atomic_store(&e->local->masked, 1);
    return 0;
}

int evtchn_take_pending(struct evtchn *e)
{
    return atomic_exchange(&e->local->pending, 0) != 0;
}

int evtchn_unmask(struct evtchn *e)
{
    atomic_store(&e->local->masked, 0);
    return evtchn_try_deliver(e->local, e->local_fd);
}

void evtchn_set_spin(struct evtchn *e, long spin_ns)
{
    e->spin_ns = spin_ns < 0 ? 0 : spin_ns;
}

static long evtchn_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static inline void evtchn_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/*
 * Watches our port for up to spin_ns: a delivery masks it (in shared memory)
 * before it writes the eventfd, so seeing `masked` set means the eventfd is
 * about to be readable.  Waking a sleeping process costs ~10 µs per direction
 * on a virtual machine; a peer that answers quickly is caught by the spin.
 */
static bool evtchn_spin(struct evtchn *e)
{
    if (e->spin_ns == 0)
        return false;
    long deadline = evtchn_now_ns() + e->spin_ns;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&e->local->masked, memory_order_acquire))
            return true;
        evtchn_cpu_relax();
        if (i % 64 == 0 && evtchn_now_ns() > deadline)
            return false;
    }
}

int evtchn_wait(struct evtchn *e, int timeout_ms)
{
    evtchn_spin(e);
    struct pollfd pfd = {.fd = e->local_fd, .events = POLLIN};
    int n;
    do
        n = poll(&pfd, 1, timeout_ms);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (n == 0)
        return 0;
    return evtchn_pending(e);
}
