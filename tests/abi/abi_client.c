/*
 * tests/abi/abi_client.c — an introspection client in its own process that
 * knows the ring only through Xen's headers: the vm_event structures of
 * interface version ABI_VERSION (1: the seed header, 7: Debian's libxen-dev)
 * and <xen/io/ring.h>'s macros, used as xen-access uses them
 * (SHARED_RING_INIT, BACK_RING_INIT, RING_HAS_UNCONSUMED_REQUESTS,
 * RING_COPY_REQUEST, RING_GET_RESPONSE, RING_PUSH_RESPONSES_AND_CHECK_NOTIFY,
 * RING_FINAL_CHECK_FOR_REQUESTS).  From vmisim it uses only the doorbell.
 *
 * usage: abi_client SHM_FD TO_CLIENT_FD TO_SIMULATOR_FD COUNT
 * It checks every byte of COUNT requests, answers each, and exits 0; any
 * mismatch or a silence of 10 s makes it exit non-zero with a message.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#if ABI_VERSION == 1
#include "vm_event_v1.h"
_Static_assert(offsetof(vm_event_request_t, data.regs.x86.rip) == 200, "v1 rip");
#elif ABI_VERSION == 7
#include "vm_event_v7.h"
_Static_assert(offsetof(vm_event_request_t, data.regs.x86.rip) == 208, "v7 rip");
#else
#error "ABI_VERSION must be 1 or 7"
#endif
#include "abi_pattern.h"
#include "ring.h"

#define CLIENT_TIMEOUT_MS 10000
#define PAGE_4K 4096 /* XC_PAGE_SIZE, from xenctrl.h */

static int fail(const char *fmt, uint32_t i, const char *what)
{
    fprintf(stderr, "abi_client v%d: request %" PRIu32 ": ", ABI_VERSION, i);
    fprintf(stderr, fmt, what);
    fputc('\n', stderr);
    return 1;
}

static int check_request(const vm_event_request_t *req, uint32_t i)
{
    struct abi_fields f = abi_fields(i);
    unsigned char expect[sizeof(*req)];
    abi_request(expect, i, ABI_VERSION);
    if (req->version != VM_EVENT_INTERFACE_VERSION)
        return fail("%s", i, "version field differs");
    if (req->flags != f.flags || req->reason != VM_EVENT_REASON_MEM_ACCESS)
        return fail("%s", i, "flags or reason field differs");
    if (req->vcpu_id != f.vcpu_id || req->altp2m_idx != f.altp2m_idx)
        return fail("%s", i, "vcpu_id or altp2m_idx field differs");
    if (req->u.mem_access.gfn != f.gfn || req->u.mem_access.offset != f.offset
        || req->u.mem_access.gla != f.gla || req->u.mem_access.flags != f.access_flags)
        return fail("%s", i, "a u.mem_access field differs");
    if (req->data.regs.x86.rip != f.rip)
        return fail("%s", i, "data.regs.x86.rip differs");
    if (memcmp(req, expect, sizeof(*req)) != 0)
        return fail("%s", i, "the bytes differ from the pattern");
    return 0;
}

static void build_response(vm_event_response_t *rsp, const vm_event_request_t *req, uint32_t i)
{
    memset(rsp, 0, sizeof(*rsp));
    rsp->version = VM_EVENT_INTERFACE_VERSION;
    rsp->vcpu_id = req->vcpu_id;
    rsp->reason = req->reason;
    rsp->altp2m_idx = req->altp2m_idx;
    rsp->flags = (req->flags & VM_EVENT_FLAG_VCPU_PAUSED) | (i % 3 == 0 ? VM_EVENT_FLAG_EMULATE : 0);
    rsp->u.mem_access = req->u.mem_access;
    abi_fill((unsigned char *)&rsp->data, sizeof(rsp->data), i, 'r');
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s SHM_FD TO_CLIENT_FD TO_SIMULATOR_FD COUNT\n", argv[0]);
        return 2;
    }
    struct ring_fds fds = {atoi(argv[1]), atoi(argv[2]), atoi(argv[3])};
    uint32_t count = (uint32_t)strtoul(argv[4], NULL, 10);

    /* What xen-access does after xc_monitor_enable: map the page, init the ring itself. */
    void *page = mmap(NULL, PAGE_4K, PROT_READ | PROT_WRITE, MAP_SHARED, fds.shm, 0);
    struct evtchn *e;
    if (page == MAP_FAILED || evtchn_open(&e, &fds, RING_ABI_PORT_CLIENT) < 0) {
        fprintf(stderr, "abi_client v%d: cannot map the ring or open the doorbell\n", ABI_VERSION);
        return 2;
    }
    vm_event_sring_t *sring = page;
    vm_event_back_ring_t back;
    SHARED_RING_INIT(sring);
    BACK_RING_INIT(&back, sring, PAGE_4K);
    if (RING_SIZE(&back) != 8) {
        fprintf(stderr, "abi_client v%d: RING_SIZE is %u, expected 8\n", ABI_VERSION, RING_SIZE(&back));
        return 1;
    }
    evtchn_notify(e); /* ready */

    uint32_t seq = 0;
    while (seq < count) {
        int more;
        RING_FINAL_CHECK_FOR_REQUESTS(&back, more);
        if (!more) {
            int rc = evtchn_wait(e, CLIENT_TIMEOUT_MS);
            if (rc <= 0) {
                fprintf(stderr, "abi_client v%d: no request for %d ms after %" PRIu32 " of %" PRIu32 "\n",
                        ABI_VERSION, CLIENT_TIMEOUT_MS, seq, count);
                return 1;
            }
            evtchn_unmask(e);
        }
        while (RING_HAS_UNCONSUMED_REQUESTS(&back)) {
            vm_event_request_t req;
            vm_event_response_t rsp;
            RING_COPY_REQUEST(&back, back.req_cons, &req);
            back.req_cons++;
            if (check_request(&req, seq))
                return 1;
            build_response(&rsp, &req, seq);
            *RING_GET_RESPONSE(&back, back.rsp_prod_pvt) = rsp;
            back.rsp_prod_pvt++;
            seq++;
        }
        int notify;
        RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&back, notify);
        if (notify)
            evtchn_notify(e);
    }
    evtchn_close(e);
    munmap(page, PAGE_4K);
    return 0;
}
