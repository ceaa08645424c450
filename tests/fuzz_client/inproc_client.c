/*
 * tests/fuzz_client/inproc_client.c — "stepper", an in-process introspection client
 * for sim_fuzz_client (sim/sim.h), with one deliberate bug that can be turned off.
 *
 * What it does: the open-page / single-step / re-protect pattern of write monitors
 * (DRAKVUF, LibVMI's step-over-events).  Every guest page is read-only (rx).  A write
 * makes a synchronous MEM_ACCESS request; the client opens the page (rwx), adds it to the
 * vCPU's "open pages" record and answers with VCPU_PAUSED | TOGGLE_SINGLESTEP, so the vCPU
 * runs the one instruction (which may need several pages: its own page-table pages, whose
 * accessed/dirty bits the walker writes, and the data page).  The SINGLESTEP request that
 * follows re-protects every page of the record that no other vCPU holds open (a count per
 * gfn) and answers with TOGGLE_SINGLESTEP to stop stepping.  Every other request is
 * answered with its VCPU_PAUSED flag and nothing else.  The client works through the real
 * ring (ring_back_*, the doorbell) and reads requests as Xen's vm_event_request_t
 * (interface version 7, Debian's <xen/vm_event.h>).
 *
 * The deliberate bug, INPROC_BUG_ONE_RECORD: ONE open-pages record for the whole domain
 * instead of one per vCPU.  Each write event writes its vCPU into the record and adds its
 * page; only the first one since the last step turns single-stepping on; the SINGLESTEP
 * answer goes to the record's vCPU.  Realistic: such clients are written and tested
 * against a one-vCPU guest, where only one vCPU can be between its write event and its
 * single step.  With several vCPUs — two write events in a row before the first vCPU has
 * stepped, as a host delivers when vCPUs fault at once — the record names the second
 * vCPU: the first one's SINGLESTEP is answered for the second, which waits for nothing
 * (Xen ignores it: "Too many unpause attempts"), the first vCPU is never released, and the
 * second one is never stepped.  The fixed client keeps one record per vCPU and answers
 * every request for the vCPU that sent it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "inproc_client.h"
#include "ring.h"
#include "vm_event_v7.h"

#define ACCESS_RX 5  /* xenmem_access_t of Xen 4.17 */
#define ACCESS_RWX 7
#define PAGE_SHIFT 12
#define MAX_OPEN 16  /* pages one instruction may need open: page-table levels of two walks, data */

/* The pages the client opened for a vCPU's instruction, until that vCPU's single step. */
struct inproc_open_page {
    bool stepping;
    uint32_t vcpu;
    unsigned n;
    uint64_t gfn[MAX_OPEN];
};

static struct inproc_open_page *record_of(struct inproc_client *c, uint32_t vcpu)
{
    /* BUG (one-record): one record for all vCPUs. */
    return (c->bugs & INPROC_BUG_ONE_RECORD) ? &c->open[0] : &c->open[vcpu];
}

static void open_page(struct inproc_client *c, struct inproc_open_page *op, uint64_t gfn)
{
    for (unsigned i = 0; i < op->n; i++)
        if (op->gfn[i] == gfn)
            return; /* already open for this instruction */
    if (op->n == MAX_OPEN) {
        c->unrecorded++; /* more pages than any instruction needs: opened, but never re-protected */
    } else {
        op->gfn[op->n++] = gfn;
        c->open_count[gfn]++;
    }
    sim_set_mem_access(c->d, ACCESS_RWX, gfn, 1);
}

/* After the step: re-protect what no other vCPU still needs open. */
static void close_pages(struct inproc_client *c, struct inproc_open_page *op)
{
    for (unsigned i = 0; i < op->n; i++)
        if (--c->open_count[op->gfn[i]] == 0)
            sim_set_mem_access(c->d, ACCESS_RX, op->gfn[i], 1);
    op->n = 0;
    op->stepping = false;
}

/* Decides the answer to one request; rsp starts as the plain answer (vcpu_id, VCPU_PAUSED, reason). */
static void handle(struct inproc_client *c, const vm_event_request_t *req, vm_event_response_t *rsp)
{
    if (req->reason == VM_EVENT_REASON_MEM_ACCESS)
        rsp->u.mem_access = req->u.mem_access;
    if (req->vcpu_id >= c->nr_vcpus || !(req->flags & VM_EVENT_FLAG_VCPU_PAUSED)) {
        /*
         * Not from this domain, or asynchronous: the vCPU is not waiting, and Xen acts on
         * a toggle only while it is paused.  Answered as it is, nothing changed.
         */
        c->other++;
        return;
    }
    struct inproc_open_page *op = record_of(c, req->vcpu_id);
    switch (req->reason) {
    case VM_EVENT_REASON_MEM_ACCESS: {
        uint64_t gfn = req->u.mem_access.gfn;
        if (!(req->u.mem_access.flags & MEM_ACCESS_W) || gfn >= c->nr_gfns) {
            c->other++; /* not a write to a page the client protects (or beyond RAM): nothing to open */
            return;
        }
        c->opened++;
        open_page(c, op, gfn);
        op->vcpu = req->vcpu_id;
        if (!op->stepping) {
            rsp->flags |= VM_EVENT_FLAG_TOGGLE_SINGLESTEP;
            op->stepping = true;
        }
        return;
    }
    case VM_EVENT_REASON_SINGLESTEP:
        if (!op->stepping) {
            c->spurious_steps++; /* not a step the client asked for: do not toggle stepping on */
            return;
        }
        c->stepped++;
        rsp->vcpu_id = op->vcpu; /* the stepping vCPU (with the bug: the last one that faulted) */
        rsp->flags |= VM_EVENT_FLAG_TOGGLE_SINGLESTEP;
        close_pages(c, op);
        return;
    default:
        c->other++;
        return;
    }
}

/* The client's turn (sim_set_client): take every request, answer each, push, ring. */
static void turn(void *opaque)
{
    struct inproc_client *c = opaque;
    vm_event_request_t req;
    bool answered = false;
    evtchn_take_pending(c->evtchn);
    while (ring_back_take_request(c->back, &req) == 0) {
        c->requests++;
        vm_event_response_t rsp;
        memset(&rsp, 0, sizeof(rsp));
        rsp.version = VM_EVENT_INTERFACE_VERSION;
        rsp.vcpu_id = req.vcpu_id;
        rsp.flags = req.flags & VM_EVENT_FLAG_VCPU_PAUSED;
        rsp.reason = req.reason;
        if (req.version == VM_EVENT_INTERFACE_VERSION)
            handle(c, &req, &rsp);
        if (ring_back_put_response(c->back, &rsp) == 0)
            answered = true;
    }
    if (answered && ring_back_push_responses(c->back))
        evtchn_notify(c->evtchn);
}

static void release(struct inproc_client *c)
{
    if (c->d)
        sim_set_client(c->d, NULL, NULL);
    if (c->back)
        ring_back_detach(c->back);
    if (c->evtchn)
        evtchn_close(c->evtchn);
    free(c->open);
    free(c->open_count);
    c->back = NULL;
    c->evtchn = NULL;
    c->open = NULL;
    c->open_count = NULL;
    c->d = NULL;
}

static int attach(void *opaque, struct sim_domain *d)
{
    struct inproc_client *c = opaque;
    struct ring_fds fds;
    c->d = d;
    c->nr_vcpus = sim_nr_vcpus(d);
    c->nr_gfns = sim_ram_size(d) >> PAGE_SHIFT;
    c->open = calloc(c->nr_vcpus, sizeof(*c->open));
    c->open_count = calloc(c->nr_gfns, sizeof(*c->open_count));
    if (!c->open || !c->open_count) {
        release(c);
        return -ENOMEM;
    }
    int rc = sim_monitor_enable(d, VM_EVENT_INTERFACE_VERSION, &fds);
    if (rc == 0)
        rc = ring_back_attach(&c->back, &fds, sizeof(vm_event_request_t), 0);
    if (rc == 0)
        rc = evtchn_open(&c->evtchn, &fds, RING_ABI_PORT_CLIENT);
    if (rc == 0)
        rc = evtchn_mask(c->evtchn); /* an in-process client polls on its turn: no wake-ups */
    /* Every page read-only, the default first; single-step events for the step after a write. */
    if (rc == 0)
        rc = sim_set_mem_access(d, ACCESS_RX, ~0ull, 0);
    if (rc == 0)
        rc = sim_set_mem_access(d, ACCESS_RX, 0, c->nr_gfns);
    if (rc == 0)
        rc = sim_monitor_singlestep(d, true);
    if (rc < 0) {
        release(c);
        return rc;
    }
    sim_set_client(d, turn, c);
    return 0;
}

static void detach(void *opaque, struct sim_domain *d)
{
    struct inproc_client *c = opaque;
    (void)d;
    release(c);
}

struct sim_fuzz_client inproc_client(struct inproc_client *c, unsigned bugs)
{
    memset(c, 0, sizeof(*c));
    c->bugs = bugs;
    return (struct sim_fuzz_client){
        .name = bugs ? "stepper" : "stepper-fixed",
        .attach = attach,
        .detach = detach,
        .opaque = c,
    };
}
