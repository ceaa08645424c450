/*
 * sim/ring_demo.c — `vmisim ring-demo`: the simulator and a client in another
 * process exchange vm_event requests and responses over the real ring, and the
 * program says in words what each side did.  Ten vCPUs fault at once on an
 * 8-slot ring, so it also shows Xen's slot accounting: a slot is free again only
 * once its response has been taken, and a vCPU that finds no free slot waits.
 * Finally the client corrupts rsp_prod on purpose, and the simulator refuses it.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ring.h"
#include "vm_event_v1.h"
#include "vmisim.h"

#define DEMO_VCPUS 10
#define DEMO_TIMEOUT_MS 5000
#define DEMO_GFN_BASE 0x1000u

static const char *access_kind(uint32_t flags)
{
    if (flags & MEM_ACCESS_X)
        return "execute";
    if (flags & MEM_ACCESS_W)
        return "write";
    return "read";
}

static void demo_request(vm_event_request_t *req, uint32_t vcpu)
{
    memset(req, 0, sizeof(*req));
    req->version = VM_EVENT_INTERFACE_VERSION;
    req->flags = VM_EVENT_FLAG_VCPU_PAUSED;
    req->reason = VM_EVENT_REASON_MEM_ACCESS;
    req->vcpu_id = vcpu;
    req->u.mem_access.gfn = DEMO_GFN_BASE + vcpu;
    req->u.mem_access.offset = 0x10 * vcpu;
    req->u.mem_access.gla = 0xffff800000000000ull + (req->u.mem_access.gfn << 12)
                            + req->u.mem_access.offset;
    req->u.mem_access.flags = MEM_ACCESS_GLA_VALID | MEM_ACCESS_FAULT_WITH_GLA
                              | (vcpu % 3 == 0 ? MEM_ACCESS_X : MEM_ACCESS_W);
    req->data.regs.x86.rip = 0xffffffff81000000ull + 0x40 * vcpu;
}

/* ---- the client process ------------------------------------------------- */

static int client_main(const struct ring_fds *fds)
{
    struct ring_back *back;
    struct evtchn *e;
    if (ring_back_attach(&back, fds, sizeof(vm_event_request_t), 0) < 0
        || evtchn_open(&e, fds, RING_ABI_PORT_CLIENT) < 0) {
        fprintf(stderr, "[client] could not map the ring or bind the event channel\n");
        return 1;
    }
    printf("[client] (process %d) mapped the ring page and bound the event channel; "
           "waiting for events.\n", (int)getpid());
    fflush(stdout);
    evtchn_notify(e); /* "ready" */
    unsigned answered = 0;
    for (;;) {
        int rc = evtchn_wait(e, DEMO_TIMEOUT_MS);
        if (rc <= 0) {
            fprintf(stderr, "[client] no event for %d ms, giving up\n", DEMO_TIMEOUT_MS);
            return 1;
        }
        evtchn_unmask(e);
        vm_event_request_t req;
        while (ring_back_take_request(back, &req) == 0) {
            if (answered == DEMO_VCPUS) {
                /* The last act: misbehave on purpose. */
                printf("[client] took request: MEM_ACCESS from vCPU %" PRIu32 ". This time the "
                       "client misbehaves on purpose and writes rsp_prod = 1000 without answering.\n",
                       req.vcpu_id);
                fflush(stdout);
                void *page = mmap(NULL, RING_ABI_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                                  fds->shm, 0);
                if (page != MAP_FAILED) {
                    struct ring_abi_sring_header *h = page;
                    atomic_store(&h->rsp_prod, 1000);
                    munmap(page, RING_ABI_PAGE_SIZE);
                }
                evtchn_notify(e);
                ring_back_detach(back);
                evtchn_close(e);
                return 0;
            }
            printf("[client] took request: MEM_ACCESS, vCPU %" PRIu32 " tried to %s gfn %#" PRIx64
                   " at offset %#" PRIx64 " (gla %#" PRIx64 ", rip %#" PRIx64 "); "
                   "answers VCPU_PAUSED: let it run again.\n",
                   req.vcpu_id, access_kind(req.u.mem_access.flags), req.u.mem_access.gfn,
                   req.u.mem_access.offset, req.u.mem_access.gla, req.data.regs.x86.rip);
            vm_event_response_t rsp;
            memset(&rsp, 0, sizeof(rsp));
            rsp.version = VM_EVENT_INTERFACE_VERSION;
            rsp.vcpu_id = req.vcpu_id;
            rsp.reason = req.reason;
            rsp.flags = req.flags & VM_EVENT_FLAG_VCPU_PAUSED;
            rsp.u.mem_access = req.u.mem_access;
            ring_back_put_response(back, &rsp);
            answered++;
        }
        ring_back_push_responses(back);
        fflush(stdout);
        evtchn_notify(e);
    }
}

/* ---- the simulator (this process) --------------------------------------- */

static int demo_fail(const char *what, int rc)
{
    fprintf(stderr, "vmisim ring-demo: %s: %s\n", what, strerror(-rc));
    return 1;
}

/* Waits for the client's doorbell, or gives up: the demo never hangs. */
static int demo_wait(struct evtchn *e)
{
    int rc = evtchn_wait(e, DEMO_TIMEOUT_MS);
    if (rc == 0) {
        fprintf(stderr, "vmisim ring-demo: the client did not ring the doorbell within %d ms\n",
                DEMO_TIMEOUT_MS);
        return -ETIMEDOUT;
    }
    if (rc > 0)
        evtchn_unmask(e);
    return rc < 0 ? rc : 0;
}

/* Puts requests for waiting vCPUs while slots are free; returns how many went in. */
static unsigned demo_post(struct ring *r, uint32_t *next_vcpu, uint32_t last_vcpu)
{
    unsigned posted = 0;
    while (*next_vcpu < last_vcpu && ring_claim(r) == 0) {
        vm_event_request_t req;
        demo_request(&req, *next_vcpu);
        ring_put_claimed(r, &req);
        printf("[sim]    vCPU %" PRIu32 " tried to %s gfn %#" PRIx64 ", which the p2m does not "
               "allow: vCPU paused, MEM_ACCESS request put in slot %u.\n",
               req.vcpu_id, access_kind(req.u.mem_access.flags), req.u.mem_access.gfn,
               (ring_indices(r).req_prod_pvt - 1) & (ring_nr_slots(r) - 1));
        (*next_vcpu)++;
        posted++;
    }
    if (*next_vcpu < last_vcpu)
        printf("[sim]    vCPUs %" PRIu32 "-%" PRIu32 " faulted too, but all %u slots hold requests "
               "still awaiting answers: as on Xen, they wait until a response frees a slot.\n",
               *next_vcpu, last_vcpu - 1, ring_nr_slots(r));
    return posted;
}

int vmisim_ring_demo(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: vmisim ring-demo\n");
        return 2;
    }
    struct ring *r;
    int rc = ring_create(&r, sizeof(vm_event_request_t), 0);
    if (rc < 0)
        return demo_fail("cannot create the ring", rc);
    struct ring_fds fds = ring_fds(r);
    struct evtchn *e = ring_evtchn(r);
    printf("vmisim ring demo: a hypervisor (the simulator) and an introspection client, two "
           "processes, talking over Xen's vm_event ring.\n\n");
    printf("[sim]    Created the monitor ring as Xen does when a client enables monitoring: one "
           "%u-byte shared page (memfd) holding %u slots of %zu bytes (vm_event interface "
           "version %d), and an event channel so each side can ring the other's doorbell.\n",
           RING_ABI_PAGE_SIZE, ring_nr_slots(r), ring_slot_size(r), VM_EVENT_INTERFACE_VERSION);
    fflush(stdout);

    pid_t pid = fork();
    if (pid < 0) {
        ring_destroy(r);
        return demo_fail("cannot start the client process", -errno);
    }
    if (pid == 0)
        _exit(client_main(&fds));

    int status = 1;
    if ((rc = demo_wait(e)) < 0)
        goto out;
    uint32_t next_vcpu = 0, answered = 0;
    while (answered < DEMO_VCPUS) {
        if (demo_post(r, &next_vcpu, DEMO_VCPUS) > 0) {
            ring_push_requests(r);
            evtchn_notify(e); /* Xen notifies after every request, whatever req_event says */
            printf("[sim]    Published the requests (req_prod = %u) and rang the client's "
                   "doorbell.\n", ring_indices(r).req_prod);
            fflush(stdout);
        }
        if ((rc = demo_wait(e)) < 0)
            goto out;
        vm_event_response_t rsp;
        while ((rc = ring_take_response(r, &rsp)) == 0) {
            printf("[sim]    Took the response for vCPU %" PRIu32 ": VCPU_PAUSED is set, so "
                   "vCPU %" PRIu32 " runs again; its slot is free.\n", rsp.vcpu_id, rsp.vcpu_id);
            answered++;
        }
        if (rc != -EAGAIN) {
            fprintf(stderr, "vmisim ring-demo: %s\n", ring_error(r));
            goto out;
        }
    }
    struct ring_indices idx = ring_indices(r);
    printf("[sim]    All %u events answered, none lost or repeated: req_prod = rsp_prod = %u. "
           "The indices only ever grow and wrap at 2^32; a slot is index mod %u.\n\n",
           DEMO_VCPUS, idx.rsp_prod, ring_nr_slots(r));

    vm_event_request_t req;
    demo_request(&req, 0);
    ring_put_request(r, &req);
    ring_push_requests(r);
    evtchn_notify(e);
    printf("[sim]    vCPU 0 faults once more: request put in slot %u, doorbell rung.\n",
           (ring_indices(r).req_prod_pvt - 1) & (ring_nr_slots(r) - 1));
    fflush(stdout);
    if ((rc = demo_wait(e)) < 0)
        goto out;
    vm_event_response_t rsp;
    rc = ring_take_response(r, &rsp);
    if (rc != -EPROTO) {
        fprintf(stderr, "vmisim ring-demo: the corrupted rsp_prod was not detected (%d)\n", rc);
        goto out;
    }
    printf("[sim]    Refused: %s.\n", ring_error(r));
    printf("[sim]    Nothing was lost: the ring kept its own copy of the %u unanswered request(s) "
           "(vCPU %" PRIu32 "), ready to be sent again to a client that attaches afresh.\n",
           ring_nr_outstanding(r),
           ring_outstanding(r, 0, &req) == 0 ? req.vcpu_id : UINT32_MAX);
    status = 0;
out:
    if (status != 0 && rc < 0 && rc != -EPROTO)
        fprintf(stderr, "vmisim ring-demo: stopped: %s\n", strerror(-rc));
    fflush(stdout);
    int child_status = 0;
    if (status != 0)
        kill(pid, SIGKILL);
    waitpid(pid, &child_status, 0);
    if (!WIFEXITED(child_status) || WEXITSTATUS(child_status) != 0)
        status = 1;
    ring_destroy(r);
    if (status == 0)
        printf("\nDone. The client process exited cleanly; the simulator never trusted what it "
               "read from shared memory.\n");
    return status;
}
