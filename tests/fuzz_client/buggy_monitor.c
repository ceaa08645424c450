/*
 * tests/fuzz_client/buggy_monitor.c — a deliberately buggy introspection client, the
 * example `vmisim fuzz-client` must catch (issue 10, section 2; docs/fuzzing.md).
 *
 * It is written the way Xen's own tools/misc/xen-access.c is, against the real Xen
 * libraries' API only (xc_interface_open, xc_monitor_enable, xenevtchn_*,
 * xc_set_mem_access, xc_domain_maximum_gpfn, the ring macros of <xen/io/ring.h>,
 * vm_event_request_t of <xen/vm_event.h>), so it builds and runs on a real Xen host
 * as well as against `vmisim serve` with vmisim's drop-in libraries:
 *
 *   buggy_monitor DOMID [--fixed] [--bug=gfn-table] [--bug=unknown-reason]
 *
 * What it does: a write monitor.  Every page of the guest is made read-only (rx) as in
 * xen-access's `write` mode; the first write to a page is counted in a per-page
 * statistics table and the page is opened again (rwx); software breakpoints are
 * monitored too and re-injected into the guest when the int3 is still there (read through
 * a foreign mapping: another vCPU may have removed it meanwhile).  On SIGINT or SIGTERM it answers what is
 * left on the ring, undoes its settings, disables the ring (xc_monitor_disable), prints
 * its statistics and exits 0, as xen-access does.
 *
 * The deliberate bugs (default: both; --bug=NAME selects some; --fixed: none):
 *
 *   gfn-table       The statistics table has xc_domain_maximum_gpfn() + 1 entries and is
 *                   indexed with the request's u.mem_access.gfn without a bounds check.
 *                   Realistic: the client assumes the hypervisor only reports gfns it saw
 *                   in the domain's p2m at start-up, but the maximum gpfn can grow (memory
 *                   hot-add, ballooning, grant/foreign mappings placed above RAM), and
 *                   MEM_ACCESS for an altp2m view's change_gfn target or a page-walk
 *                   fault may name a gfn the client never enumerated.  The result is an
 *                   out-of-bounds heap write: a crash (SIGSEGV for a far gfn; under
 *                   AddressSanitizer a heap-buffer-overflow report for any gfn beyond).
 *                   `vmisim fuzz-client` reports it as "crash".
 *
 *   unknown-reason  For a request whose reason the client did not enable it logs
 *                   "unexpected event" and `continue`s without putting a response, so
 *                   the vCPU that sent it (VM_EVENT_FLAG_VCPU_PAUSED) is never released.
 *                   Realistic: events of a monitor the client disabled can still be on
 *                   the ring (or arrive from a vCPU that was already past its check), and
 *                   xen-access itself `continue`s without a response on a version
 *                   mismatch and on any failed libxc call in its loop.  The guest's vCPU
 *                   stays paused for ever: a hang of the guest, not of the client.
 *                   `vmisim fuzz-client` reports it as "unreleased" (while the client
 *                   answers later requests).
 *
 * The fixed variant checks the gfn (an out-of-range gfn is counted apart and answered,
 * its access left alone) and answers every request, whatever its reason, with the
 * request's VCPU_PAUSED flag, as Xen requires.  Exit status: 0 after a clean shutdown,
 * 1 when set-up or the ring failed, 2 for a usage error.
 */
#define __XEN_TOOLS__ 1
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define XC_WANT_COMPAT_DEVICEMODEL_API 1 /* xc_hvm_inject_trap, as xen-access */
#include <xenctrl.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xen/vm_event.h>

#define X86_TRAP_INT3 3 /* xen/arch/x86/include/asm/processor.h, as xen-access defines it */

enum bug {
    BUG_GFN_TABLE = 1u << 0,
    BUG_UNKNOWN_REASON = 1u << 1,
};

/* Per guest page: what the monitor learnt about its writes. */
struct page_stats {
    uint64_t writes;
    uint64_t first_rip;  /* where the first write came from */
    uint64_t first_gla;
    uint32_t vcpus_seen; /* bit v: vCPU v (mod 32) wrote the page */
    uint32_t reserved;
};

struct monitor {
    xc_interface *xch;
    xenevtchn_handle *xce;
    xenforeignmemory_handle *fmem; /* to read the instruction at a breakpoint */
    domid_t domid;
    void *ring_page;
    vm_event_back_ring_t back;
    uint32_t remote_port;
    int local_port;
    bool ring_enabled, bound;
    xen_pfn_t max_gpfn;
    struct page_stats *stats; /* max_gpfn + 1 entries */
    uint64_t beyond_max;      /* MEM_ACCESS requests for a gfn beyond max_gpfn (fixed variant) */
    uint64_t breakpoints, unexpected, answered;
    bool breakpoint_monitor;
    unsigned bugs;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

static void usage(const char *prog)
{
    fprintf(stderr, "usage: %s DOMID [--fixed] [--bug=gfn-table] [--bug=unknown-reason]\n"
                    "  a write monitor with deliberate bugs (default: all of them; --fixed: none)\n",
            prog);
}

/* xen-access's xc_wait_for_event_or_timeout: the pending port, -1 on timeout, < -1 on error. */
static int wait_for_event(struct monitor *m, int timeout_ms)
{
    struct pollfd p = {.fd = xenevtchn_fd(m->xce), .events = POLLIN | POLLERR};
    int rc = poll(&p, 1, timeout_ms);
    if (rc < 0)
        return errno == EINTR ? -1 : -errno - 1;
    if (rc == 0)
        return -1;
    int port = xenevtchn_pending(m->xce);
    if (port < 0)
        return errno == EAGAIN ? -1 : -errno - 1;
    if (xenevtchn_unmask(m->xce, (evtchn_port_t)port) != 0)
        return -errno - 1;
    return port;
}

static void take_request(struct monitor *m, vm_event_request_t *req)
{
    RING_COPY_REQUEST(&m->back, m->back.req_cons, req);
    m->back.req_cons++;
    m->back.sring->req_event = m->back.req_cons + 1;
}

static void put_response(struct monitor *m, const vm_event_response_t *rsp)
{
    memcpy(RING_GET_RESPONSE(&m->back, m->back.rsp_prod_pvt), rsp, sizeof(*rsp));
    m->back.rsp_prod_pvt++;
    RING_PUSH_RESPONSES(&m->back);
    m->answered++;
}

/* A write to a watched page: count it, then let the page be written freely, as xen-access `write`. */
static void on_mem_access(struct monitor *m, const vm_event_request_t *req)
{
    uint64_t gfn = req->u.mem_access.gfn;
    if (!(m->bugs & BUG_GFN_TABLE) && gfn > m->max_gpfn) {
        /* Not a page the monitor enumerated: count it, leave its access alone. */
        m->beyond_max++;
        return;
    }
    struct page_stats *s = &m->stats[gfn]; /* BUG (gfn-table): no bounds check without --fixed */
    if (s->writes++ == 0) {
        s->first_rip = req->data.regs.x86.rip;
        s->first_gla = req->u.mem_access.gla;
    }
    s->vcpus_seen |= 1u << (req->vcpu_id % 32);
    if (!(req->u.mem_access.flags & MEM_ACCESS_W))
        return; /* a read or fetch of a page the monitor did not restrict that way: nothing to relax */
    if (xc_set_mem_access(m->xch, m->domid, XENMEM_access_rwx, gfn, 1) != 0)
        fprintf(stderr, "buggy_monitor: cannot open gfn %#" PRIx64 " again: %s\n", gfn, strerror(errno));
}

/*
 * Whether the guest's instruction at the breakpoint's rip is an int3 now.  Another vCPU (or
 * this monitor) may have removed it since the vCPU trapped: then the breakpoint is not the
 * guest's own and must not be re-injected (the vCPU simply runs the instruction again).
 */
static bool int3_at(struct monitor *m, const vm_event_request_t *req)
{
    xen_pfn_t gfn = req->u.software_breakpoint.gfn;
    int err = 0;
    if (gfn > m->max_gpfn)
        return false;
    uint8_t *page = xenforeignmemory_map(m->fmem, m->domid, PROT_READ, 1, &gfn, &err);
    if (!page || err) {
        if (page)
            xenforeignmemory_unmap(m->fmem, page, 1);
        return false;
    }
    bool int3 = page[req->data.regs.x86.rip & (XC_PAGE_SIZE - 1)] == 0xcc;
    xenforeignmemory_unmap(m->fmem, page, 1);
    return int3;
}

static void on_breakpoint(struct monitor *m, const vm_event_request_t *req)
{
    m->breakpoints++;
    if (!int3_at(m, req)) {
        fprintf(stderr, "buggy_monitor: vCPU %u: no int3 at rip %" PRIx64 " (gfn %" PRIx64 ") now: not re-injected\n",
                req->vcpu_id, (uint64_t)req->data.regs.x86.rip, (uint64_t)req->u.software_breakpoint.gfn);
        return;
    }
    /* Give the guest its int3, as xen-access does; a failure is logged, the vCPU still answered. */
    if (xc_hvm_inject_trap(m->xch, m->domid, req->vcpu_id, X86_TRAP_INT3, req->u.software_breakpoint.type,
                           (uint32_t)-1, req->u.software_breakpoint.insn_length, 0) != 0)
        fprintf(stderr, "buggy_monitor: cannot re-inject the breakpoint of vCPU %u: %s\n", req->vcpu_id,
                strerror(errno));
}

/* Takes and answers every request on the ring; 0, or -1 when the ring cannot be trusted. */
static int serve_requests(struct monitor *m, bool shutting_down)
{
    while (RING_HAS_UNCONSUMED_REQUESTS(&m->back)) {
        vm_event_request_t req;
        take_request(m, &req);
        if (req.version != VM_EVENT_INTERFACE_VERSION) {
            fprintf(stderr, "buggy_monitor: vm_event interface version %u, expected %u\n", req.version,
                    VM_EVENT_INTERFACE_VERSION);
            return -1;
        }
        vm_event_response_t rsp;
        memset(&rsp, 0, sizeof(rsp));
        rsp.version = VM_EVENT_INTERFACE_VERSION;
        rsp.vcpu_id = req.vcpu_id;
        rsp.flags = req.flags & VM_EVENT_FLAG_VCPU_PAUSED;
        rsp.reason = req.reason;

        if (req.reason == VM_EVENT_REASON_MEM_ACCESS) {
            if (!shutting_down)
                on_mem_access(m, &req);
            rsp.u.mem_access = req.u.mem_access;
        } else if (req.reason == VM_EVENT_REASON_SOFTWARE_BREAKPOINT && m->breakpoint_monitor) {
            if (!shutting_down)
                on_breakpoint(m, &req);
        } else {
            m->unexpected++;
            fprintf(stderr, "buggy_monitor: unexpected event: reason %u from vCPU %u\n", req.reason,
                    req.vcpu_id);
            if (m->bugs & BUG_UNKNOWN_REASON)
                continue; /* BUG (unknown-reason): no response, the vCPU stays paused */
        }
        put_response(m, &rsp);
    }
    return 0;
}

static int monitor_open(struct monitor *m)
{
    if (!(m->xch = xc_interface_open(NULL, NULL, 0))) {
        fprintf(stderr, "buggy_monitor: xc_interface_open: %s\n", strerror(errno));
        return -1;
    }
    m->ring_page = xc_monitor_enable(m->xch, m->domid, &m->remote_port);
    if (!m->ring_page) {
        fprintf(stderr, "buggy_monitor: xc_monitor_enable(domain %u): %s%s\n", m->domid, strerror(errno),
                errno == EBUSY ? " (another monitor is active on this domain)" : "");
        return -1;
    }
    m->ring_enabled = true;
    if (!(m->xce = xenevtchn_open(NULL, 0))) {
        fprintf(stderr, "buggy_monitor: xenevtchn_open: %s\n", strerror(errno));
        return -1;
    }
    m->local_port = xenevtchn_bind_interdomain(m->xce, m->domid, m->remote_port);
    if (m->local_port < 0) {
        fprintf(stderr, "buggy_monitor: xenevtchn_bind_interdomain: %s\n", strerror(errno));
        return -1;
    }
    m->bound = true;
    SHARED_RING_INIT((vm_event_sring_t *)m->ring_page);
    BACK_RING_INIT(&m->back, (vm_event_sring_t *)m->ring_page, XC_PAGE_SIZE);
    if (xc_domain_maximum_gpfn(m->xch, m->domid, &m->max_gpfn) != 0) {
        fprintf(stderr, "buggy_monitor: xc_domain_maximum_gpfn: %s\n", strerror(errno));
        return -1;
    }
    if (!(m->stats = calloc(m->max_gpfn + 1, sizeof(*m->stats)))) {
        fprintf(stderr, "buggy_monitor: no memory for %" PRIu64 " pages of statistics\n",
                (uint64_t)m->max_gpfn + 1);
        return -1;
    }
    /* Every page read-only, the default first (xen-access `write`, but up to and including max_gpfn). */
    if (xc_set_mem_access(m->xch, m->domid, XENMEM_access_rx, ~0ull, 0) != 0
        || xc_set_mem_access(m->xch, m->domid, XENMEM_access_rx, 0, (uint32_t)(m->max_gpfn + 1)) != 0) {
        fprintf(stderr, "buggy_monitor: xc_set_mem_access(rx): %s\n", strerror(errno));
        return -1;
    }
    if (!(m->fmem = xenforeignmemory_open(NULL, 0))) {
        fprintf(stderr, "buggy_monitor: xenforeignmemory_open: %s\n", strerror(errno));
        return -1;
    }
    if (xc_monitor_software_breakpoint(m->xch, m->domid, true) != 0) {
        fprintf(stderr, "buggy_monitor: xc_monitor_software_breakpoint: %s\n", strerror(errno));
        return -1;
    }
    m->breakpoint_monitor = true;
    return 0;
}

/* Undoes the monitor's settings (errors only logged: the domain may be gone). */
static void monitor_unwatch(struct monitor *m)
{
    if (m->breakpoint_monitor && xc_monitor_software_breakpoint(m->xch, m->domid, false) != 0)
        fprintf(stderr, "buggy_monitor: disabling breakpoint monitoring: %s\n", strerror(errno));
    m->breakpoint_monitor = false;
    if (m->ring_enabled
        && (xc_set_mem_access(m->xch, m->domid, XENMEM_access_rwx, ~0ull, 0) != 0
            || xc_set_mem_access(m->xch, m->domid, XENMEM_access_rwx, 0, (uint32_t)(m->max_gpfn + 1)) != 0))
        fprintf(stderr, "buggy_monitor: restoring rwx: %s\n", strerror(errno));
}

/* xen-access's xenaccess_teardown: 0, or -1 when a step failed. */
static int monitor_close(struct monitor *m)
{
    int rc = 0;
    if (m->ring_page)
        munmap(m->ring_page, XC_PAGE_SIZE);
    if (m->ring_enabled && xc_monitor_disable(m->xch, m->domid) != 0) {
        fprintf(stderr, "buggy_monitor: xc_monitor_disable: %s\n", strerror(errno));
        rc = -1;
    }
    if (m->bound && xenevtchn_unbind(m->xce, (evtchn_port_t)m->local_port) != 0) {
        fprintf(stderr, "buggy_monitor: xenevtchn_unbind: %s\n", strerror(errno));
        rc = -1;
    }
    if (m->fmem && xenforeignmemory_close(m->fmem) != 0)
        rc = -1;
    if (m->xce && xenevtchn_close(m->xce) != 0)
        rc = -1;
    if (m->xch && xc_interface_close(m->xch) != 0)
        rc = -1;
    free(m->stats);
    return rc;
}

static void print_stats(const struct monitor *m)
{
    uint64_t pages = 0;
    for (uint64_t g = 0; m->stats && g <= m->max_gpfn; g++) {
        const struct page_stats *s = &m->stats[g];
        if (!s->writes)
            continue;
        pages++;
        printf("gfn %" PRIx64 ": %" PRIu64 " write(s), first at rip %" PRIx64 " gla %" PRIx64 ", vCPUs %#x\n", g,
               s->writes, s->first_rip, s->first_gla, s->vcpus_seen);
    }
    printf("buggy_monitor: %" PRIu64 " page(s) written, %" PRIu64 " access(es) beyond max gfn %" PRIx64 ", %" PRIu64
           " breakpoint(s), %" PRIu64 " unexpected event(s), %" PRIu64 " response(s)\n",
           pages, m->beyond_max, (uint64_t)m->max_gpfn, m->breakpoints, m->unexpected, m->answered);
}

static int parse_args(int argc, char **argv, struct monitor *m)
{
    bool fixed = false, chosen = false;
    int domid = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--fixed"))
            fixed = true;
        else if (!strcmp(a, "--bug=gfn-table"))
            m->bugs |= BUG_GFN_TABLE, chosen = true;
        else if (!strcmp(a, "--bug=unknown-reason"))
            m->bugs |= BUG_UNKNOWN_REASON, chosen = true;
        else if (a[0] != '-' && domid < 0) {
            char *end;
            long v = strtol(a, &end, 0);
            if (*end || v < 0 || v > 0x7fef) {
                fprintf(stderr, "buggy_monitor: bad domain id '%s'\n", a);
                return -1;
            }
            domid = (int)v;
        } else {
            fprintf(stderr, "buggy_monitor: unknown argument '%s'\n", a);
            return -1;
        }
    }
    if (domid < 0 || (fixed && chosen)) {
        if (fixed && chosen)
            fprintf(stderr, "buggy_monitor: --fixed and --bug= exclude each other\n");
        return -1;
    }
    m->domid = (domid_t)domid;
    if (fixed)
        m->bugs = 0;
    else if (!chosen)
        m->bugs = BUG_GFN_TABLE | BUG_UNKNOWN_REASON;
    return 0;
}

int main(int argc, char **argv)
{
    static struct monitor m; /* static: xen-access keeps its state for the signal-driven shutdown too */
    if (parse_args(argc, argv, &m) < 0) {
        usage(argv[0]);
        return 2;
    }
    struct sigaction act = {.sa_handler = on_signal};
    sigemptyset(&act.sa_mask);
    sigaction(SIGHUP, &act, NULL);
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);

    int rc = monitor_open(&m);
    if (rc == 0)
        fprintf(stderr, "buggy_monitor: watching domain %u, max gfn %" PRIx64 ", bugs:%s%s%s\n", m.domid,
                (uint64_t)m.max_gpfn, m.bugs & BUG_GFN_TABLE ? " gfn-table" : "",
                m.bugs & BUG_UNKNOWN_REASON ? " unknown-reason" : "", m.bugs ? "" : " none");
    bool shutting_down = false;
    while (rc == 0) {
        if (interrupted && !shutting_down) {
            fprintf(stderr, "buggy_monitor: shutting down on signal %d\n", (int)interrupted);
            monitor_unwatch(&m);
            shutting_down = true; /* one more round answers what is still on the ring */
        }
        int port = wait_for_event(&m, shutting_down ? 0 : 100);
        if (port < -1) {
            fprintf(stderr, "buggy_monitor: waiting for events: %s\n", strerror(-port - 1));
            rc = -1;
            break;
        }
        if (serve_requests(&m, shutting_down) < 0)
            rc = -1;
        /* Tell the hypervisor the responses are there (xen-access notifies every round). */
        if (xenevtchn_notify(m.xce, (evtchn_port_t)m.local_port) != 0) {
            fprintf(stderr, "buggy_monitor: xenevtchn_notify: %s\n", strerror(errno));
            rc = -1;
        }
        if (shutting_down)
            break;
    }
    if (rc == 0)
        print_stats(&m);
    if (monitor_close(&m) != 0)
        rc = -1;
    return rc == 0 ? 0 : 1;
}
