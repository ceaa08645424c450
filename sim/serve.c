/*
 * sim/serve.c — `vmisim serve`: one domain, served to Xen clients in other
 * processes over a unix socket (ring/xenctl_abi.h, docs/xen-clients.md).
 *
 * The scenario gives the guest (code, mappings, p2m, altp2m mode, registers);
 * everything a scripted client would do is left to the client that attaches:
 * the drop-in libxenctrl turns each libxc call into one control message and
 * this file answers it with the sim.h call that models Xen's hypercall.  The
 * guest runs with sim_run in bounded slices between polls of the socket and
 * the ring's doorbell; while nothing can run it sleeps in poll.
 *
 * Start gating: Xen's vm_event_enable only initialises the front end's
 * private indices (xen/common/vm_event.c, vm_event_enable) and the client runs
 * SHARED_RING_INIT after xc_monitor_enable returns (tools/misc/xen-access.c,
 * xenaccess_init), so a request put on the ring in between would be wiped.
 * By default (--start notify) the guest therefore stays paused after each
 * monitor enable until the client first rings the doorbell, which xen-access
 * does at the end of its first loop iteration, after all its setup.
 *
 * A client that disconnects (or dies) has its ring torn down as Xen's
 * vm_event_disable does (sim_monitor_disable: vCPUs awaiting a response stay
 * paused).  vmisim keeps those vCPUs' outstanding requests and puts them on
 * the next client's ring once that client is ready, so a dead client never
 * wedges the guest for good (on Xen the ring would simply stay, orphaned).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "runner_internal.h"
#include "serve_internal.h"
#include "xenctl_abi.h"

#define SERVE_MAX_CONNS 16
#define SERVE_SLICE 200000u    /* instructions per sim_run between polls */
#define SERVE_IDLE_MS 100      /* poll timeout while nothing can run */
#define SERVE_SPIN_NS 50000L   /* watch the doorbell this long before sleeping (see below) */
#define SERVE_MONITOR_PORT 3u  /* the "Xen-side" port xc_monitor_enable returns */

enum serve_start { START_NOTIFY, START_NOW };

struct conn {
    int fd;
    unsigned id;
    size_t have;                /* bytes of the current message in buf */
    unsigned pauses;            /* xc_domain_pause calls not yet undone */
    /* 8-aligned: the payload after the 24-byte header is read as its structure. */
    _Alignas(8) uint8_t buf[sizeof(struct xenctl_hdr) + XENCTL_MAX_PAYLOAD];
};

struct serve {
    struct sim_domain *d;
    uint32_t domid;
    const char *path;
    int lfd;
    struct conn *conns[SERVE_MAX_CONNS];
    unsigned next_conn_id;
    struct conn *monitor_owner;  /* the connection that enabled the ring */
    enum serve_start start;
    bool awaiting_go;            /* a ring was enabled: the guest waits for the client's first notify */
    bool started;                /* the guest has been let run at least once */
    long start_timeout_ms;       /* 0: wait for a client for ever */
    long t0_ms;
    bool exit_when_over;
    bool verbose;
    bool quiet;                  /* no progress lines (vmisim fuzz-client runs serve inside) */
    bool hot;                    /* the guest made progress: poll again without sleeping */
    long spin_until;             /* watch the doorbell without sleeping until then (now_ns) */
    sim_observer_fn user_note;   /* serve_set_observer: notes after serve's own accounting */
    void *user_note_opaque;
    bool over;                   /* the guest has ended */
    char end[600];
    struct vme_msg *orphans;     /* requests of a client that went away, for the next one */
    size_t nr_orphans;
    uint64_t requests, responses, insns;
    unsigned clients_seen;
};

static volatile sig_atomic_t serve_signal;

static void on_signal(int sig)
{
    serve_signal = sig;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* A progress line on stderr, unless the server runs quietly inside vmisim fuzz-client. */
static void say(const struct serve *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const struct serve *sv, const char *fmt, ...)
{
    if (sv->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("vmisim serve: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

static void on_note(void *opaque, const struct sim_note *note)
{
    struct serve *sv = opaque;
    if (sv->user_note)
        sv->user_note(sv->user_note_opaque, note);
    if (note->kind == SIM_NOTE_REQUEST)
        sv->requests++;
    else if (note->kind == SIM_NOTE_RESPONSE)
        sv->responses++;
    if (sv->verbose || note->kind == SIM_NOTE_RING)
        say(sv, "vCPU %u: %s\n", note->vcpu, note->text ? note->text : "");
}

/* ---- Connections -------------------------------------------------------------- */

static int send_msg(int fd, const struct xenctl_hdr *h, const void *payload, const int *fds, unsigned nfds)
{
    struct iovec iov[2] = {{(void *)h, sizeof(*h)}, {(void *)payload, h->len}};
    union {
        struct cmsghdr c;
        char b[CMSG_SPACE(4 * sizeof(int))];
    } ctl;
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = h->len ? 2 : 1};
    if (nfds) {
        memset(&ctl, 0, sizeof(ctl));
        msg.msg_control = ctl.b;
        msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    size_t total = sizeof(*h) + h->len, sent = 0;
    while (sent < total) {
        /* MSG_DONTWAIT: a client that does not read its answers is dropped, never waited for. */
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        sent += (size_t)n;
        /* Descriptors go with the first byte only; skip what was sent. */
        msg.msg_control = NULL;
        msg.msg_controllen = 0;
        xenctl_iov_advance(&msg, (size_t)n);
    }
    return 0;
}

static void conn_close(struct serve *sv, unsigned slot, const char *why);

/* ---- Orphaned requests: a client went away while vCPUs waited for it ----------- */

static void save_orphans(struct serve *sv)
{
    struct sim_domain *d = sv->d;
    struct sim_monitor *m = &d->monitor;
    if (!m->ring)
        return;
    uint32_t n = ring_nr_outstanding(m->ring);
    struct vme_msg *o = n ? realloc(sv->orphans, (sv->nr_orphans + n) * sizeof(*o)) : NULL;
    if (n && !o) {
        say(sv, "out of memory: %u outstanding request(s) of the client that went away "
                "are lost; their vCPUs stay paused\n", n);
        return;
    }
    if (o)
        sv->orphans = o;
    for (uint32_t i = 0; i < n; i++) {
        unsigned char slot[400];
        struct vme_msg msg;
        if (ring_outstanding(m->ring, i, slot) < 0 || vme_decode(m->version, slot, &msg) < 0)
            continue;
        /* Only a request its vCPU still waits for needs an answer from the next client. */
        if ((msg.flags & VME_FLAG_VCPU_PAUSED) && msg.vcpu_id < d->nr_vcpus && d->vcpus[msg.vcpu_id].pause_count)
            sv->orphans[sv->nr_orphans++] = msg;
    }
}

/* The new client is ready (its first notify): its ring gets the requests nobody answered. */
static void post_orphans(struct serve *sv)
{
    struct sim_monitor *m = &sv->d->monitor;
    if (!sv->nr_orphans || !m->ring)
        return;
    size_t i = 0;
    for (; i < sv->nr_orphans; i++) {
        unsigned char slot[400];
        struct vme_msg msg = sv->orphans[i];
        msg.version = m->version;
        if (vme_encode(m->version, &msg, slot) < 0 || ring_put_request(m->ring, slot) < 0)
            break;
        sv->requests++;
    }
    if (i) {
        ring_push_requests(m->ring);
        evtchn_notify(m->evtchn);
        say(sv, "%zu request(s) the previous client left unanswered put on the new "
                "client's ring\n", i);
    }
    memmove(sv->orphans, sv->orphans + i, (sv->nr_orphans - i) * sizeof(*sv->orphans));
    sv->nr_orphans -= i;
}

static void monitor_teardown(struct serve *sv, const char *why)
{
    struct sim_domain *d = sv->d;
    if (!sim_monitor_enabled(d))
        return;
    save_orphans(sv);
    int rc = sim_monitor_disable(d);
    if (rc < 0) {
        /* Only vCPUs queued for a full ring (async events) make Xen refuse: the ring stays. */
        say(sv, "the monitor ring of the client that %s cannot be torn down: %s\n", why,
                sim_error(d));
        return;
    }
    say(sv, "the client %s: its monitor ring is torn down (as xc_monitor_disable)%s\n", why,
            sv->nr_orphans ? "; vCPUs awaiting its responses stay paused until the next client" : "");
    sv->awaiting_go = false;
}

static void conn_close(struct serve *sv, unsigned slot, const char *why)
{
    struct conn *c = sv->conns[slot];
    if (!c)
        return;
    if (sv->monitor_owner == c) {
        monitor_teardown(sv, why);
        sv->monitor_owner = NULL;
    }
    /* Its toolstack pauses go with it: a dead client must not keep the domain paused. */
    while (c->pauses) {
        sim_domain_unpause(sv->d);
        c->pauses--;
    }
    /* A plain disconnect is news only with --verbose; a protocol violation always is. */
    if (sv->verbose || (strcmp(why, "disconnected") && strncmp(why, "was disconnected", 16)))
        say(sv, "client %u: connection closed (%s)\n", c->id, why);
    close(c->fd);
    free(c);
    sv->conns[slot] = NULL;
}

/* ---- The calls ------------------------------------------------------------------- */

struct answer {
    int32_t rc;
    uint32_t len;
    int fds[3];
    unsigned nfds;
    union {
        struct xenctl_info info;
        struct xenctl_u32 u32;
        struct xenctl_u64 u64;
        struct xenctl_port port;
        struct xenctl_altp2m altp2m;
        struct xenctl_vcpu_regs regs;
        int64_t offsets[XENCTL_MAX_MAP_PAGES];
    } p;
};

/* The payload must be exactly the op's structure (or empty): anything else is -EINVAL. */
#define NEED(type)                                                                                  \
    do {                                                                                            \
        if (len != sizeof(type))                                                                    \
            return -EINVAL;                                                                         \
    } while (0)
#define NEED_NONE()                                                                                 \
    do {                                                                                            \
        if (len != 0)                                                                               \
            return -EINVAL;                                                                         \
    } while (0)

static int do_monitor(struct serve *sv, const struct xenctl_monitor *mo)
{
    struct sim_domain *d = sv->d;
    switch (mo->event) {
    case XENCTL_MON_WRITE_CTRLREG:
        return sim_monitor_write_ctrlreg(d, mo->index, mo->enable, mo->sync, mo->bitmask, mo->onchangeonly);
    case XENCTL_MON_MOV_TO_MSR:
        return sim_monitor_mov_to_msr(d, mo->index, mo->enable, mo->onchangeonly);
    case XENCTL_MON_SOFTWARE_BREAKPOINT:
        return sim_monitor_software_breakpoint(d, mo->enable);
    case XENCTL_MON_SINGLESTEP:
        return sim_monitor_singlestep(d, mo->enable);
    case XENCTL_MON_GUEST_REQUEST:
        return sim_monitor_guest_request(d, mo->enable, mo->sync, mo->enable && mo->allow_userspace);
    case XENCTL_MON_DEBUG_EXCEPTIONS:
        return sim_monitor_debug_exceptions(d, mo->enable, mo->sync);
    case XENCTL_MON_CPUID:
        return sim_monitor_cpuid(d, mo->enable);
    case XENCTL_MON_DESC_ACCESS:
        return sim_monitor_descriptor_access(d, mo->enable);
    case XENCTL_MON_INGUEST_PAGEFAULT:
        /* xc_monitor_inguest_pagefault(disable): "enable" here is the client's `disable`. */
        return sim_monitor_inguest_pagefault(d, mo->enable);
    case XENCTL_MON_EMUL_UNIMPLEMENTED:
        return sim_monitor_emul_unimplemented(d, mo->enable);
    default:
        return -EINVAL;
    }
}

static int do_altp2m(struct serve *sv, const struct xenctl_altp2m *a, struct answer *ans)
{
    struct sim_domain *d = sv->d;
    unsigned access = 0;
    int rc;
    ans->p.altp2m = *a;
    ans->len = sizeof(ans->p.altp2m);
    switch (a->op) {
    case XENCTL_ALTP2M_SET_DOMAIN_STATE:
        return sim_altp2m_set_domain_state(d, a->access != 0);
    case XENCTL_ALTP2M_GET_DOMAIN_STATE:
        ans->p.altp2m.access = sim_altp2m_active(d);
        return 0;
    case XENCTL_ALTP2M_CREATE_VIEW:
        return sim_altp2m_create_view(d, a->access, &ans->p.altp2m.view);
    case XENCTL_ALTP2M_DESTROY_VIEW:
        return sim_altp2m_destroy_view(d, a->view);
    case XENCTL_ALTP2M_SWITCH_TO_VIEW:
        return sim_altp2m_switch_to_view(d, a->view);
    case XENCTL_ALTP2M_SET_MEM_ACCESS:
        return sim_altp2m_set_mem_access(d, a->view, a->gfn, a->access);
    case XENCTL_ALTP2M_GET_MEM_ACCESS:
        rc = sim_altp2m_get_mem_access(d, a->view, a->gfn, &access);
        ans->p.altp2m.access = access;
        return rc;
    case XENCTL_ALTP2M_CHANGE_GFN:
        return sim_altp2m_change_gfn(d, a->view, a->gfn, a->gfn2);
    default:
        return -EINVAL;
    }
}

static void regs_out(const struct cpu_regs *r, struct xenctl_vcpu_regs *o)
{
    o->rax = r->rax, o->rbx = r->rbx, o->rcx = r->rcx, o->rdx = r->rdx;
    o->rsi = r->rsi, o->rdi = r->rdi, o->rbp = r->rbp, o->rsp = r->rsp;
    o->r8 = r->r8, o->r9 = r->r9, o->r10 = r->r10, o->r11 = r->r11;
    o->r12 = r->r12, o->r13 = r->r13, o->r14 = r->r14, o->r15 = r->r15;
    o->rip = r->rip, o->rflags = r->rflags;
    o->cr0 = r->cr0, o->cr2 = r->cr2, o->cr3 = r->cr3, o->cr4 = r->cr4, o->dr7 = r->dr7;
    o->fs_base = r->fs_base, o->gs_base = r->gs_base, o->shadow_gs = r->shadow_gs;
    o->cs = r->cs.selector, o->ss = r->ss.selector, o->ds = r->ds.selector;
    o->es = r->es.selector, o->fs = r->fs.selector, o->gs = r->gs.selector;
}

/* xc_vcpu_setcontext: the general registers, rip, rflags and the control registers. */
static void regs_in(const struct xenctl_vcpu_regs *o, struct cpu_regs *r)
{
    r->rax = o->rax, r->rbx = o->rbx, r->rcx = o->rcx, r->rdx = o->rdx;
    r->rsi = o->rsi, r->rdi = o->rdi, r->rbp = o->rbp, r->rsp = o->rsp;
    r->r8 = o->r8, r->r9 = o->r9, r->r10 = o->r10, r->r11 = o->r11;
    r->r12 = o->r12, r->r13 = o->r13, r->r14 = o->r14, r->r15 = o->r15;
    r->rip = o->rip, r->rflags = o->rflags;
    r->cr0 = o->cr0, r->cr2 = o->cr2, r->cr3 = o->cr3, r->cr4 = o->cr4, r->dr7 = o->dr7;
    r->fs_base = o->fs_base, r->gs_base = o->gs_base, r->shadow_gs = o->shadow_gs;
}

static int do_call(struct serve *sv, struct conn *c, const struct xenctl_hdr *h, const uint8_t *p,
                   struct answer *ans)
{
    struct sim_domain *d = sv->d;
    uint32_t len = h->len;
    int rc;
    if (h->domid != sv->domid)
        return -ESRCH; /* Xen: no such domain */
    switch (h->op) {
    case XENCTL_OP_GETINFO: {
        NEED_NONE();
        struct xenctl_info *i = &ans->p.info;
        memset(i, 0, sizeof(*i));
        i->domid = sv->domid;
        i->flags = XENCTL_INFO_HVM | XENCTL_INFO_HAP;
        if (sim_domain_pause_count(d) || (sv->awaiting_go || !sv->started))
            i->flags |= XENCTL_INFO_PAUSED;
        int sr = sim_domain_shutdown_reason(d);
        if (sr >= 0) {
            i->flags |= XENCTL_INFO_SHUTDOWN;
            i->shutdown_reason = (uint32_t)sr;
        }
        if (d->crashed)
            i->flags |= XENCTL_INFO_CRASHED;
        unsigned online = 0;
        bool running = false;
        for (unsigned v = 0; v < sim_nr_vcpus(d); v++) {
            online += sim_vcpu_is_up(d, v);
            i->cpu_insns += sim_vcpu_insns(d, v);
            running |= sim_vcpu_state(d, v) == SIM_VCPU_RUNNABLE;
        }
        i->flags |= running ? XENCTL_INFO_RUNNING : XENCTL_INFO_BLOCKED;
        i->nr_vcpus = sim_nr_vcpus(d);
        i->nr_online_vcpus = online;
        i->tot_pages = sim_tot_pages(d);
        i->max_pages = sim_max_pages(d);
        ans->len = sizeof(*i);
        return 0;
    }
    case XENCTL_OP_MAX_GPFN:
        NEED_NONE();
        /* XENMEM_maximum_gpfn: the highest gfn, not a count. */
        ans->p.u64.value = sim_ram_size(d) / CPU_PAGE_SIZE - 1;
        ans->len = sizeof(ans->p.u64);
        return 0;
    case XENCTL_OP_PAUSE:
        NEED_NONE();
        if ((rc = sim_domain_pause(d)) == 0)
            c->pauses++;
        return rc;
    case XENCTL_OP_UNPAUSE:
        NEED_NONE();
        if ((rc = sim_domain_unpause(d)) == 0 && c->pauses)
            c->pauses--;
        return rc;
    case XENCTL_OP_MONITOR_ENABLE: {
        NEED(struct xenctl_u32);
        const struct xenctl_u32 *v = (const void *)p;
        struct ring_fds fds;
        if ((rc = sim_monitor_enable(d, v->value, &fds)) < 0)
            return rc;
        sv->monitor_owner = c;
        /* The client re-initialises the shared ring now: nothing may be put on it before its first notify. */
        sv->awaiting_go = sv->start == START_NOTIFY || sv->nr_orphans;
        ans->p.port = (struct xenctl_port){.port = SERVE_MONITOR_PORT, .version = v->value};
        ans->len = sizeof(ans->p.port);
        ans->fds[0] = fds.shm, ans->fds[1] = fds.to_client, ans->fds[2] = fds.to_simulator;
        ans->nfds = 3;
        sv->clients_seen++;
        say(sv, "client %u enabled the monitor ring (interface version %u)\n", c->id,
                v->value);
        return 0;
    }
    case XENCTL_OP_MONITOR_DISABLE:
        NEED_NONE();
        /* vm_event_domctl: DISABLE with no ring is -EINVAL. */
        if (!sim_monitor_enabled(d))
            return -EINVAL;
        if ((rc = sim_monitor_disable(d)) == 0) {
            sv->monitor_owner = NULL;
            sv->awaiting_go = false;
        }
        return rc;
    case XENCTL_OP_MONITOR_CONTROL:
        NEED(struct xenctl_monitor);
        return do_monitor(sv, (const void *)p);
    case XENCTL_OP_SET_ACCESS_REQUIRED:
        NEED(struct xenctl_u32);
        sim_set_access_required(d, ((const struct xenctl_u32 *)(const void *)p)->value != 0);
        return 0;
    case XENCTL_OP_SET_MEM_ACCESS: {
        NEED(struct xenctl_mem_access);
        const struct xenctl_mem_access *a = (const void *)p;
        return sim_set_mem_access(d, a->access, a->first_gfn, a->nr);
    }
    case XENCTL_OP_GET_MEM_ACCESS: {
        NEED(struct xenctl_mem_access);
        const struct xenctl_mem_access *a = (const void *)p;
        unsigned access = 0;
        /* xen/common/mem_access.c: like set, it needs the monitor ring. */
        if (!sim_monitor_enabled(d))
            return -ENODEV;
        if ((rc = sim_get_mem_access(d, a->first_gfn, &access)) < 0)
            return rc;
        ans->p.u32 = (struct xenctl_u32){.value = access};
        ans->len = sizeof(ans->p.u32);
        return 0;
    }
    case XENCTL_OP_DEBUG_CONTROL: {
        NEED(struct xenctl_debug);
        const struct xenctl_debug *dc = (const void *)p;
        /* xen/arch/x86/domctl.c XEN_DOMCTL_debug_op: -EINVAL for vcpu >= max_vcpus. */
        if (dc->vcpu >= sim_nr_vcpus(d) || dc->op > 1)
            return -EINVAL;
        return sim_debug_control_singlestep(d, dc->vcpu, dc->op == 1);
    }
    case XENCTL_OP_INJECT_TRAP: {
        NEED(struct xenctl_trap);
        const struct xenctl_trap *t = (const void *)p;
        if (t->vcpu >= sim_nr_vcpus(d))
            return -EINVAL;
        int64_t ec = t->error_code == 0xffffffffu ? -1 : (int64_t)t->error_code;
        return sim_inject_trap(d, t->vcpu, t->vector, t->type, ec, t->insn_len, t->cr2);
    }
    case XENCTL_OP_ALTP2M:
        NEED(struct xenctl_altp2m);
        return do_altp2m(sv, (const void *)p, ans);
    case XENCTL_OP_VCPU_GETCONTEXT: {
        NEED(struct xenctl_u32);
        uint32_t vcpu = ((const struct xenctl_u32 *)(const void *)p)->value;
        struct cpu_regs r;
        if (vcpu >= sim_nr_vcpus(d))
            return -ESRCH; /* XEN_DOMCTL_getvcpucontext: no such vCPU */
        if ((rc = sim_vcpu_get_regs(d, vcpu, &r)) < 0)
            return rc;
        memset(&ans->p.regs, 0, sizeof(ans->p.regs));
        ans->p.regs.vcpu = vcpu;
        regs_out(&r, &ans->p.regs);
        ans->len = sizeof(ans->p.regs);
        return 0;
    }
    case XENCTL_OP_VCPU_SETCONTEXT: {
        NEED(struct xenctl_vcpu_regs);
        const struct xenctl_vcpu_regs *o = (const void *)p;
        struct cpu_regs r;
        if (o->vcpu >= sim_nr_vcpus(d))
            return -ESRCH;
        if ((rc = sim_vcpu_get_regs(d, o->vcpu, &r)) < 0)
            return rc;
        regs_in(o, &r);
        return sim_vcpu_set_regs(d, o->vcpu, &r);
    }
    case XENCTL_OP_FOREIGN_MAP: {
        const struct xenctl_map *m = (const void *)p;
        if (len < sizeof(*m) || m->nr == 0 || m->nr > XENCTL_MAX_MAP_PAGES
            || len != sizeof(*m) + (uint64_t)m->nr * sizeof(uint64_t))
            return -EINVAL;
        int fd = sim_ram_memfd(d);
        if (fd < 0)
            return -ENODEV;
        const uint8_t *g = p + sizeof(*m);
        for (uint32_t i = 0; i < m->nr; i++) {
            uint64_t gfn, off = 0;
            memcpy(&gfn, g + i * sizeof(gfn), sizeof(gfn));
            int r = sim_foreign_frame(d, gfn, &off);
            ans->p.offsets[i] = r < 0 ? r : (int64_t)off;
        }
        /* The client may change guest code through the mapping: retranslate before the next run. */
        if (m->prot & 2 /* PROT_WRITE */)
            d->code_flush_pending = d->ran;
        ans->len = m->nr * sizeof(int64_t);
        ans->fds[0] = fd;
        ans->nfds = 1;
        return 0;
    }
    default:
        return -ENOSYS;
    }
}

/* One complete message in c->buf: answer it.  Returns false when the connection must close. */
static bool handle(struct serve *sv, struct conn *c, const struct xenctl_hdr *h)
{
    static struct answer ans; /* large (a map's offsets); the server answers one call at a time */
    memset(&ans, 0, offsetof(struct answer, p));
    /*
     * On Xen a notify runs vm_event_resume inside EVTCHNOP_send (xen/common/vm_event.c,
     * monitor_notification), so responses notified before this call have been taken by
     * the time it arrives (xen-access answers, notifies, then xc_monitor_disable).
     */
    struct sim_monitor *m = &sv->d->monitor;
    if (m->evtchn) {
        struct pollfd bell = {.fd = evtchn_fd(m->evtchn), .events = POLLIN};
        if (poll(&bell, 1, 0) == 1)
            sim_monitor_resume(sv->d);
    }
    sv->d->error[0] = '\0'; /* so a failure's log line carries this call's reason, not an older one */
    ans.rc = do_call(sv, c, h, c->buf + sizeof(*h), &ans);
    if (ans.rc < 0) {
        ans.len = 0;
        ans.nfds = 0;
        if (sv->verbose)
            say(sv, "client %u: op %u failed: %s%s%s\n", c->id, h->op, strerror(-ans.rc),
                    sim_error(sv->d)[0] ? ": " : "", sim_error(sv->d));
    }
    struct xenctl_hdr r = {.magic = XENCTL_MAGIC, .version = XENCTL_VERSION, .op = h->op, .domid = h->domid,
                           .seq = h->seq, .rc = ans.rc, .len = ans.len};
    return send_msg(c->fd, &r, &ans.p, ans.fds, ans.nfds) == 0;
}

/* Reads what the client sent; answers every complete message.  False: close it. */
static bool conn_readable(struct serve *sv, struct conn *c, const char **why)
{
    for (;;) {
        size_t want = sizeof(struct xenctl_hdr);
        const struct xenctl_hdr *h = (const void *)c->buf;
        if (c->have >= sizeof(*h)) {
            if (h->magic != XENCTL_MAGIC || h->version != XENCTL_VERSION || h->len > XENCTL_MAX_PAYLOAD) {
                /* The stream cannot be resynchronised: say why, then close. */
                struct xenctl_hdr r = {.magic = XENCTL_MAGIC, .version = XENCTL_VERSION, .op = h->op,
                                       .domid = h->domid, .seq = h->seq, .rc = -EPROTO};
                send_msg(c->fd, &r, NULL, NULL, 0);
                *why = "sent a malformed message (bad magic, version or length)";
                return false;
            }
            want += h->len;
        }
        if (c->have == want && c->have >= sizeof(*h)) {
            if (!handle(sv, c, h)) {
                *why = "does not read its answers";
                return false;
            }
            c->have = 0;
            continue;
        }
        /* Descriptors from a client are never wanted: MSG_CMSG_CLOEXEC, then closed. */
        char ctl[CMSG_SPACE(8 * sizeof(int))];
        struct iovec iov = {c->buf + c->have, want - c->have};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
        ssize_t n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); n >= 0 && cm; cm = CMSG_NXTHDR(&msg, cm))
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
                for (size_t k = 0; k < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int), sizeof(fd));
                    close(fd);
                }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return true;
        if (n <= 0) {
            *why = n == 0 ? "disconnected" : "lost its connection";
            return false;
        }
        c->have += (size_t)n;
    }
}

static void accept_client(struct serve *sv)
{
    int fd = accept4(sv->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    for (unsigned i = 0; i < SERVE_MAX_CONNS; i++)
        if (!sv->conns[i]) {
            struct conn *c = calloc(1, sizeof(*c));
            if (!c)
                break;
            c->fd = fd;
            c->id = ++sv->next_conn_id;
            sv->conns[i] = c;
            if (sv->verbose)
                say(sv, "client %u connected\n", c->id);
            return;
        }
    say(sv, "a client was refused: %d connections are open already\n", SERVE_MAX_CONNS);
    close(fd);
}

/* ---- The socket ------------------------------------------------------------------- */

static int listen_on(const char *path, int *out, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "the socket path %s is too long (at most %zu bytes)", path,
                 sizeof(sa.sun_path) - 1);
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a socket: %s", strerror(errno));
        return -errno;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        /* A live server keeps its socket; a stale one (nobody listening) is replaced. */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live = probe >= 0 && S_ISSOCK(st.st_mode) && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        if (probe >= 0)
            close(probe);
        if (live || !S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "%s %s: choose another path with --socket", path,
                     live ? "is in use by another vmisim serve" : "exists and is not a socket");
            close(fd);
            return -EADDRINUSE;
        }
        unlink(path);
    }
    /*
     * Created 0600: only this user may drive the domain (as only root opens
     * /dev/xen/privcmd).  Bound under a temporary name and renamed once
     * listening, so a client that sees the path can always connect.
     */
    struct sockaddr_un tmp = sa;
    if (snprintf(tmp.sun_path, sizeof(tmp.sun_path), "%s.new", path) >= (int)sizeof(tmp.sun_path))
        tmp = sa;
    unlink(tmp.sun_path);
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&tmp, sizeof(tmp));
    umask(old);
    if (rc < 0 || listen(fd, 8) < 0 || (strcmp(tmp.sun_path, path) && rename(tmp.sun_path, path) < 0)) {
        int rc_errno = -errno;
        unlink(tmp.sun_path);
        snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(-rc_errno));
        close(fd);
        return rc_errno;
    }
    *out = fd;
    return 0;
}

/* ---- Running ----------------------------------------------------------------------- */

static const char *stop_name(enum sim_stop_reason r)
{
    switch (r) {
    case SIM_STOP_HALTED: return "halted";
    case SIM_STOP_CRASHED: return "was crashed";
    case SIM_STOP_FAULT: return "took an exception it cannot handle";
    case SIM_STOP_SHUTDOWN: return "shut the domain down";
    case SIM_STOP_ERROR: return "stopped on a vmisim error";
    case SIM_STOP_DEADLOCK: return "deadlocked";
    default: return "stopped";
    }
}

/* One slice of guest execution.  Returns true when it should run again at once. */
static bool run_slice(struct serve *sv)
{
    struct sim_stop st;
    memset(&st, 0, sizeof(st));
    if (sim_run(sv->d, SERVE_SLICE, &st) < 0) {
        snprintf(sv->end, sizeof(sv->end), "vmisim error: %.300s", sim_error(sv->d));
        sv->over = true;
        return false;
    }
    sv->insns += st.insns;
    switch (st.reason) {
    case SIM_STOP_LIMIT:
    case SIM_STOP_EVENT:
        return true;
    case SIM_STOP_BLOCKED:
        return false;
    default:
        snprintf(sv->end, sizeof(sv->end), "the guest %s after %" PRIu64 " instruction(s)%s%s", stop_name(st.reason),
                 sv->insns, st.why[0] ? ": " : "", st.why);
        sv->over = true;
        if (!sv->quiet) {
            printf("vmisim serve: %s\n", sv->end);
            fflush(stdout);
        }
        return false;
    }
}

/* Connected clients, and clients in the listen queue not yet accepted. */
static bool any_client(const struct serve *sv)
{
    for (unsigned i = 0; i < SERVE_MAX_CONNS; i++)
        if (sv->conns[i])
            return true;
    struct pollfd p = {.fd = sv->lfd, .events = POLLIN};
    return sv->lfd >= 0 && poll(&p, 1, 0) == 1;
}

int serve_poll(struct serve *sv, int max_sleep_ms)
{
    struct pollfd pfd[SERVE_MAX_CONNS + 2];
    unsigned slot_of[SERVE_MAX_CONNS + 2];
    nfds_t n = 0;
    int listener = -1, bell = -1;
    if (sv->lfd >= 0) {
        listener = (int)n;
        pfd[n++] = (struct pollfd){.fd = sv->lfd, .events = POLLIN};
    }
    if (sv->d->monitor.evtchn) {
        bell = (int)n;
        pfd[n++] = (struct pollfd){.fd = evtchn_fd(sv->d->monitor.evtchn), .events = POLLIN};
    }
    for (unsigned i = 0; i < SERVE_MAX_CONNS; i++)
        if (sv->conns[i]) {
            slot_of[n] = i;
            pfd[n++] = (struct pollfd){.fd = sv->conns[i]->fd, .events = POLLIN};
        }
    /*
     * While vCPUs wait for a client that answers within microseconds, watch for a
     * while before sleeping: a poll that sleeps costs a wake-up (~10 µs on a virtual
     * machine) per round trip (docs/performance.md).
     */
    int timeout = sv->hot || now_ns() < sv->spin_until ? 0 : SERVE_IDLE_MS;
    if (max_sleep_ms >= 0 && timeout > max_sleep_ms)
        timeout = max_sleep_ms;
    int r = poll(pfd, n, timeout);
    if (r < 0 && errno != EINTR)
        return -errno;
    bool rang = r > 0 && bell >= 0 && (pfd[bell].revents & POLLIN);
    if (r > 0) {
        if (listener >= 0 && (pfd[listener].revents & POLLIN))
            accept_client(sv);
        for (nfds_t k = 0; k < n; k++) {
            if ((int)k == bell || (int)k == listener || !pfd[k].revents)
                continue;
            struct conn *c = sv->conns[slot_of[k]];
            const char *why = "disconnected";
            if (c && !conn_readable(sv, c, &why))
                conn_close(sv, slot_of[k], why);
        }
        /* The client's first notify after enabling the ring: it has initialised the ring, go. */
        if (rang && sv->awaiting_go && sv->d->monitor.evtchn) {
            sv->awaiting_go = false;
            if (!sv->started)
                say(sv, "the client is ready: the guest starts\n");
            sv->started = true;
            post_orphans(sv);
        }
    }
    if (!sv->started && !sv->awaiting_go
        && (sv->start == START_NOW
            || (sv->start_timeout_ms > 0 && now_ms() - sv->t0_ms >= sv->start_timeout_ms))) {
        say(sv, "the guest starts %s\n",
            sv->start == START_NOW ? "(--start now)" : "(no client became ready within --start-timeout)");
        sv->started = true;
    }
    if (sv->over || !sv->started || sv->awaiting_go) {
        sv->hot = false;
        return 0;
    }
    sv->hot = run_slice(sv);
    if (!sv->hot && !sv->over && sv->d->monitor.evtchn && (rang || timeout == 0))
        sv->spin_until = now_ns() + SERVE_SPIN_NS;
    return 0;
}

int serve_open(const struct scenario *s, const struct serve_opts *o, struct serve **out, char *err, size_t errlen)
{
    *out = NULL;
    if (s->paging.given || s->sharing.given || s->introspector.given) {
        snprintf(err, errlen, "%s: paging, sharing and introspector sections are not supported by serve "
                 "(the client attaches only a monitor ring)", s->name);
        return -EINVAL;
    }
    struct serve *sv = calloc(1, sizeof(*sv));
    if (!sv) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    sv->domid = o->domid;
    sv->path = o->socket_path;
    sv->lfd = -1;
    sv->start = o->start_now ? START_NOW : START_NOTIFY;
    sv->start_timeout_ms = o->start_timeout_ms;
    sv->verbose = o->verbose;
    sv->quiet = o->quiet;
    int rc = run_build_domain(s, &sv->d, err, errlen);
    if (rc < 0) {
        free(sv);
        return rc;
    }
    /* HVM_PARAM_ALTP2M as the domain was built; the client activates altp2m and makes its views. */
    if (s->altp2m.given && (rc = sim_altp2m_set_mode(sv->d, (enum sim_altp2m_mode)s->altp2m.mode)) < 0) {
        snprintf(err, errlen, "%s: altp2m: %s", s->name, sim_error(sv->d));
        serve_close(sv);
        return rc;
    }
    sim_set_observer(sv->d, on_note, sv);
    if (sv->path && (rc = listen_on(sv->path, &sv->lfd, err, errlen)) < 0) {
        sv->path = NULL; /* not ours to unlink */
        serve_close(sv);
        return rc;
    }
    sv->t0_ms = now_ms();
    *out = sv;
    return 0;
}

int serve_add_conn(struct serve *sv, int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    for (unsigned i = 0; i < SERVE_MAX_CONNS; i++)
        if (!sv->conns[i]) {
            struct conn *c = calloc(1, sizeof(*c));
            if (!c)
                return -ENOMEM;
            c->fd = fd;
            c->id = ++sv->next_conn_id;
            sv->conns[i] = c;
            return 0;
        }
    return -EMFILE;
}

void serve_set_observer(struct serve *sv, sim_observer_fn fn, void *opaque)
{
    sv->user_note = fn;
    sv->user_note_opaque = opaque;
}

struct sim_domain *serve_domain(const struct serve *sv)
{
    return sv->d;
}

bool serve_started(const struct serve *sv)
{
    return sv->started;
}

const char *serve_end(const struct serve *sv)
{
    return sv->over ? sv->end : NULL;
}

void serve_close(struct serve *sv)
{
    if (!sv)
        return;
    for (unsigned i = 0; i < SERVE_MAX_CONNS; i++)
        conn_close(sv, i, "was disconnected: the server stops");
    if (sv->lfd >= 0)
        close(sv->lfd);
    if (sv->path)
        unlink(sv->path);
    free(sv->orphans);
    sim_domain_destroy(sv->d);
    free(sv);
}

/* ---- The command ---------------------------------------------------------------------- */

static void serve_usage(FILE *f)
{
    fprintf(f,
            "usage: vmisim serve SCENARIO.yaml [--socket PATH] [--domid N] [--start notify|now]\n"
            "                    [--start-timeout SECONDS] [--exit-when-halted] [--verbose]\n"
            "  Runs the scenario's guest as domain N (default 1) for Xen clients in other processes:\n"
            "  point them at the socket (default $VMISIM_SOCKET, else " XENCTL_DEFAULT_SOCKET ") and\n"
            "  LD_LIBRARY_PATH=<builddir>/ring/xenlibs (docs/xen-clients.md).\n"
            "  --start notify   the guest waits for the client's first event-channel notify after\n"
            "                   xc_monitor_enable (default); --start now: it runs at once\n"
            "  --start-timeout  start anyway if no client is ready within SECONDS (default: wait)\n"
            "  --exit-when-halted  exit once the guest has ended and every client has gone\n");
}

int vmisim_serve(int argc, char **argv)
{
    struct serve_opts o = {.domid = 1};
    bool exit_when_over = false;
    const char *file = NULL;
    o.socket_path = getenv("VMISIM_SOCKET");
    if (!o.socket_path || !*o.socket_path)
        o.socket_path = XENCTL_DEFAULT_SOCKET;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--socket") && v) {
            o.socket_path = v, i++;
        } else if (!strcmp(a, "--domid") && v) {
            unsigned long n = strtoul(v, &end, 0);
            if (*end || !*v || n >= 0x7ff0) { /* DOMID_FIRST_RESERVED */
                fprintf(stderr, "vmisim serve: --domid %s: expected a domain id below 0x7ff0\n", v);
                return 2;
            }
            o.domid = (uint32_t)n, i++;
        } else if (!strcmp(a, "--start") && v && (!strcmp(v, "notify") || !strcmp(v, "now"))) {
            o.start_now = !strcmp(v, "now"), i++;
        } else if (!strcmp(a, "--start-timeout") && v) {
            double sec = strtod(v, &end);
            if (*end || !*v || sec < 0 || sec > 1e6) {
                fprintf(stderr, "vmisim serve: --start-timeout %s: expected seconds\n", v);
                return 2;
            }
            o.start_timeout_ms = (long)(sec * 1000), i++;
        } else if (!strcmp(a, "--exit-when-halted")) {
            exit_when_over = true;
        } else if (!strcmp(a, "--verbose")) {
            o.verbose = true;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            serve_usage(stdout);
            return 0;
        } else if (a[0] != '-' && !file) {
            file = a;
        } else {
            fprintf(stderr, "vmisim serve: unknown or incomplete option '%s'\n", a);
            serve_usage(stderr);
            return 2;
        }
    }
    if (!file) {
        serve_usage(stderr);
        return 2;
    }
    char err[700];
    struct scenario *s = NULL;
    if (scenario_load(file, &s, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    struct serve *sv = NULL;
    if (serve_open(s, &o, &sv, err, sizeof(err)) < 0) {
        fprintf(stderr, "vmisim serve: %s\n", err);
        scenario_free(s);
        return 2;
    }
    if (s->has_client)
        fprintf(stderr, "vmisim serve: %s: the scenario's client section is ignored: the attaching client "
                "plays the client\n", file);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    printf("vmisim serve: domain %" PRIu32 " (%s, %u vCPU(s), %" PRIu64 " KiB) listening on %s\n", sv->domid,
           s->name, sim_nr_vcpus(sv->d), sim_ram_size(sv->d) >> 10, sv->path);
    fflush(stdout);
    int rc = 0;
    while (!serve_signal) {
        if ((rc = serve_poll(sv, -1)) < 0) {
            fprintf(stderr, "vmisim serve: poll failed: %s\n", strerror(-rc));
            break;
        }
        if (sv->over && exit_when_over && !any_client(sv))
            break;
    }
    for (unsigned i = 0; i < SERVE_MAX_CONNS; i++)
        conn_close(sv, i, "was disconnected: the server stops");
    if (!sv->over)
        snprintf(sv->end, sizeof(sv->end), "the guest had not ended (%s after %" PRIu64 " instruction(s))",
                 sv->started ? "running" : "never started", sv->insns);
    printf("vmisim serve: summary: %" PRIu64 " request(s) sent, %" PRIu64 " response(s) taken, %u client(s); %s%s\n",
           sv->requests, sv->responses, sv->clients_seen, sv->end,
           serve_signal ? serve_signal == SIGINT ? "; stopped by SIGINT" : "; stopped by SIGTERM" : "");
    fflush(stdout);
    serve_close(sv);
    scenario_free(s);
    return rc < 0 ? 1 : 0;
}
