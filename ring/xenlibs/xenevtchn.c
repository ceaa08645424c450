/*
 * ring/xenlibs/xenevtchn.c — the drop-in libxenevtchn.so.1.
 *
 * On Xen a handle is an open /dev/xen/evtchn and a port is bound with
 * IOCTL_EVTCHN_BIND_INTERDOMAIN (tools/libs/evtchn/linux.c).  Here a bound
 * port is one side of a vmisim ring's doorbell (ring/evtchn.c), whose
 * descriptors xc_monitor_enable received from `vmisim serve`: both libraries
 * live in one process, and libxenctrl registers them here, keyed by (domid,
 * remote port), through a private symbol (node VMISIM_PRIVATE_1).  The
 * handle's descriptor is an epoll set of its ports' eventfds, so it polls
 * readable when any bound port has an event, as the evtchn device does.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <xenevtchn.h>

#include "ring.h"
#include "xenlibs.h"
#include "xl_conn.h"

/* ---- The registry: rings xc_monitor_enable received, by (domid, remote port) ---- */

#define XL_MAX_RINGS 16
static struct {
    int used;
    uint32_t domid, port;
    struct ring_fds fds; /* owned by the registry */
} registry[XL_MAX_RINGS];
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

static void close_fds(struct ring_fds *f)
{
    if (f->shm >= 0)
        close(f->shm);
    if (f->to_client >= 0)
        close(f->to_client);
    if (f->to_simulator >= 0)
        close(f->to_simulator);
    f->shm = f->to_client = f->to_simulator = -1;
}

int vmisim_evtchn_register(uint32_t domid, uint32_t port, const struct ring_fds *fds)
{
    int rc = -ENOSPC;
    pthread_mutex_lock(&registry_lock);
    for (unsigned i = 0; i < XL_MAX_RINGS; i++)
        if (registry[i].used && registry[i].domid == domid && registry[i].port == port) {
            close_fds(&registry[i].fds);
            registry[i].used = 0;
        }
    for (unsigned i = 0; i < XL_MAX_RINGS; i++)
        if (!registry[i].used) {
            registry[i].used = 1;
            registry[i].domid = domid;
            registry[i].port = port;
            registry[i].fds = *fds;
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&registry_lock);
    return rc;
}

void vmisim_evtchn_forget(uint32_t domid, uint32_t port)
{
    pthread_mutex_lock(&registry_lock);
    for (unsigned i = 0; i < XL_MAX_RINGS; i++)
        if (registry[i].used && registry[i].domid == domid && registry[i].port == port) {
            close_fds(&registry[i].fds);
            registry[i].used = 0;
        }
    pthread_mutex_unlock(&registry_lock);
}

/* A copy of the registered descriptors (dup'ed: the caller owns them), or -EINVAL. */
static int registry_dup(uint32_t domid, uint32_t port, struct ring_fds *out)
{
    int rc = -EINVAL;
    pthread_mutex_lock(&registry_lock);
    for (unsigned i = 0; i < XL_MAX_RINGS; i++)
        if (registry[i].used && registry[i].domid == domid && registry[i].port == port) {
            out->shm = fcntl(registry[i].fds.shm, F_DUPFD_CLOEXEC, 0);
            out->to_client = fcntl(registry[i].fds.to_client, F_DUPFD_CLOEXEC, 0);
            out->to_simulator = fcntl(registry[i].fds.to_simulator, F_DUPFD_CLOEXEC, 0);
            rc = out->shm < 0 || out->to_client < 0 || out->to_simulator < 0 ? -EMFILE : 0;
            if (rc < 0)
                close_fds(out);
            break;
        }
    pthread_mutex_unlock(&registry_lock);
    return rc;
}

/* ---- Handles ---------------------------------------------------------------------- */

#define XL_MAX_PORTS 8
#define XL_FIRST_LOCAL_PORT 5 /* any number: Xen's local ports are the kernel's choice */

struct xl_port {
    int used;
    struct ring_fds fds;
    struct evtchn *e;
    struct ring_abi_evtchn_port *mine; /* our port's bits in the doorbell page, for the spin */
    void *page;
};

struct xenevtchn_handle {
    int epfd;
    long spin_ns;
    pthread_mutex_t lock;
    struct xl_port ports[XL_MAX_PORTS];
};

/*
 * After a notify, watch our own port for a while: a simulator that answers
 * within microseconds (the guest retries the access and faults again) has
 * then delivered before the client sleeps in poll, which saves a wake-up
 * (~10 µs on a virtual machine).  VMISIM_EVTCHN_SPIN_NS sets it (0: off).
 */
static long spin_from_env(void)
{
    const char *s = getenv("VMISIM_EVTCHN_SPIN_NS");
    if (!s || !*s)
        return 20000;
    long v = strtol(s, NULL, 10);
    return v < 0 ? 0 : v > 10000000 ? 10000000 : v;
}

xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *logger, unsigned int open_flags)
{
    (void)logger;
    /* tools/libs/evtchn/core.c: only XENEVTCHN_NO_CLOEXEC is known. */
    if (open_flags & ~XENEVTCHN_NO_CLOEXEC) {
        errno = EINVAL;
        return NULL;
    }
    xenevtchn_handle *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    x->epfd = epoll_create1(open_flags & XENEVTCHN_NO_CLOEXEC ? 0 : EPOLL_CLOEXEC);
    if (x->epfd < 0) {
        int err = errno;
        free(x);
        errno = err;
        return NULL;
    }
    x->spin_ns = spin_from_env();
    pthread_mutex_init(&x->lock, NULL);
    return x;
}

static void port_release(xenevtchn_handle *x, struct xl_port *p)
{
    epoll_ctl(x->epfd, EPOLL_CTL_DEL, p->fds.to_client, NULL);
    evtchn_close(p->e);
    if (p->page)
        munmap(p->page, RING_ABI_SHM_SIZE);
    close_fds(&p->fds);
    memset(p, 0, sizeof(*p));
}

int xenevtchn_close(xenevtchn_handle *x)
{
    if (!x)
        return 0;
    for (unsigned i = 0; i < XL_MAX_PORTS; i++)
        if (x->ports[i].used)
            port_release(x, &x->ports[i]);
    close(x->epfd);
    pthread_mutex_destroy(&x->lock);
    free(x);
    return 0;
}

xenevtchn_handle *xenevtchn_fdopen(struct xentoollog_logger *logger, int fd, unsigned open_flags)
{
    (void)logger, (void)fd, (void)open_flags;
    XL_NOT_IMPLEMENTED();
    return NULL;
}

int xenevtchn_restrict(xenevtchn_handle *xce, domid_t domid)
{
    (void)xce, (void)domid;
    XL_NOT_IMPLEMENTED();
    return -1;
}

int xenevtchn_fd(xenevtchn_handle *xce)
{
    return xce->epfd;
}

static struct xl_port *port_of(xenevtchn_handle *x, evtchn_port_t port)
{
    if (port < XL_FIRST_LOCAL_PORT || port >= XL_FIRST_LOCAL_PORT + XL_MAX_PORTS)
        return NULL;
    struct xl_port *p = &x->ports[port - XL_FIRST_LOCAL_PORT];
    return p->used ? p : NULL;
}

xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle *x, uint32_t domid, evtchn_port_t remote_port)
{
    pthread_mutex_lock(&x->lock);
    struct xl_port *p = NULL;
    unsigned i;
    for (i = 0; i < XL_MAX_PORTS && !p; i++)
        if (!x->ports[i].used)
            p = &x->ports[i];
    int rc = p ? registry_dup(domid, remote_port, &p->fds) : -ENOSPC;
    if (rc == 0 && (rc = evtchn_open(&p->e, &p->fds, RING_ABI_PORT_CLIENT)) < 0)
        close_fds(&p->fds);
    if (rc == 0) {
        void *page = mmap(NULL, RING_ABI_SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, p->fds.shm, 0);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i - 1};
        if (page == MAP_FAILED || epoll_ctl(x->epfd, EPOLL_CTL_ADD, p->fds.to_client, &ev) < 0) {
            rc = -errno;
            if (page != MAP_FAILED)
                munmap(page, RING_ABI_SHM_SIZE);
            evtchn_close(p->e);
            close_fds(&p->fds);
        } else {
            p->page = page;
            p->mine = &((struct ring_abi_evtchn_page *)((char *)page + RING_ABI_EVTCHN_OFFSET))
                           ->port[RING_ABI_PORT_CLIENT];
            p->used = 1;
        }
    }
    pthread_mutex_unlock(&x->lock);
    if (rc < 0) {
        /* EVTCHNOP_bind_interdomain: -EINVAL when the remote port is not one offered to us. */
        errno = -rc;
        return -1;
    }
    return (xenevtchn_port_or_error_t)(XL_FIRST_LOCAL_PORT + (i - 1));
}

xenevtchn_port_or_error_t xenevtchn_bind_unbound_port(xenevtchn_handle *xce, uint32_t domid)
{
    (void)xce, (void)domid;
    XL_NOT_IMPLEMENTED();
    return -1;
}

xenevtchn_port_or_error_t xenevtchn_bind_virq(xenevtchn_handle *xce, unsigned int virq)
{
    (void)xce, (void)virq;
    XL_NOT_IMPLEMENTED();
    return -1;
}

int xenevtchn_unbind(xenevtchn_handle *x, evtchn_port_t port)
{
    pthread_mutex_lock(&x->lock);
    struct xl_port *p = port_of(x, port);
    if (p)
        port_release(x, p);
    pthread_mutex_unlock(&x->lock);
    if (!p) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

static long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

int xenevtchn_notify(xenevtchn_handle *x, evtchn_port_t port)
{
    struct xl_port *p = port_of(x, port);
    if (!p) {
        errno = EINVAL;
        return -1;
    }
    uint32_t masked0 = atomic_load(&p->mine->masked);
    int rc = evtchn_notify(p->e);
    if (rc < 0)
        return xl_ret(rc);
    if (x->spin_ns) {
        long deadline = mono_ns() + x->spin_ns;
        for (unsigned i = 1;; i++) {
            /* An answer: our port pending, or delivered (delivery masks it). */
            if (atomic_load(&p->mine->pending) || (!masked0 && atomic_load(&p->mine->masked)))
                break;
            __builtin_ia32_pause();
            if (i % 64 == 0 && mono_ns() > deadline)
                break;
        }
    }
    return 0;
}

xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *x)
{
    for (unsigned i = 0; i < XL_MAX_PORTS; i++) {
        struct xl_port *p = &x->ports[i];
        if (!p->used)
            continue;
        int rc = evtchn_pending(p->e);
        if (rc > 0)
            return (xenevtchn_port_or_error_t)(XL_FIRST_LOCAL_PORT + i);
        if (rc < 0)
            return xl_ret(rc);
    }
    /* Linux's read() would block; ours does not: poll xenevtchn_fd first, as xen-access does. */
    errno = EAGAIN;
    return -1;
}

int xenevtchn_unmask(xenevtchn_handle *x, evtchn_port_t port)
{
    struct xl_port *p = port_of(x, port);
    if (!p) {
        errno = EINVAL;
        return -1;
    }
    return xl_ret(evtchn_unmask(p->e));
}
