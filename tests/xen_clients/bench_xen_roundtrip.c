/*
 * tests/xen_clients/bench_xen_roundtrip.c — the cross-process mem_access round
 * trip through the drop-in libraries: the guest's write faults, `vmisim serve`
 * puts a MEM_ACCESS request on the ring and notifies; this process (a
 * xen-access-style client: poll on xenevtchn_fd, pending, unmask, answer,
 * xenevtchn_notify) answers without relaxing the page, so the vCPU retries and
 * faults again.  The time from one request to the next is one round trip:
 * response, notify, resume, the retried write, the next request and its
 * wake-up.  Prints the median and p99 (docs/performance.md).
 *
 *   bench_xen_roundtrip VMISIM SCENARIO DIR [ROUNDS]
 */
#define __XEN_TOOLS__ 1
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xenevtchn.h>
#include <xen/vm_event.h>

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_xen_roundtrip VMISIM SCENARIO DIR [ROUNDS]\n");
        return 2;
    }
    long rounds = argc > 4 ? atol(argv[4]) : 20000;
    if (rounds < 10)
        rounds = 10;
    char sock[200];
    snprintf(sock, sizeof(sock), "%.150s/bench-%d.sock", argv[3], (int)getpid());
    unlink(sock);
    pid_t srv = fork();
    if (srv == 0) {
        execl(argv[1], argv[1], "serve", argv[2], "--socket", sock, "--exit-when-halted", (char *)NULL);
        _exit(127);
    }
    struct stat st;
    for (int i = 0; i < 500 && stat(sock, &st) != 0; i++)
        usleep(10000);
    setenv("VMISIM_SOCKET", sock, 1);
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    uint32_t remote;
    void *page = xch ? xc_monitor_enable(xch, 1, &remote) : NULL;
    xenevtchn_handle *xce = xenevtchn_open(NULL, 0);
    int port = page && xce ? xenevtchn_bind_interdomain(xce, 1, remote) : -1;
    if (port < 0) {
        fprintf(stderr, "bench: cannot attach to vmisim serve: %s\n", strerror(errno));
        kill(srv, SIGTERM);
        waitpid(srv, NULL, 0);
        return 1;
    }
    vm_event_back_ring_t back;
    SHARED_RING_INIT((vm_event_sring_t *)page);
    BACK_RING_INIT(&back, (vm_event_sring_t *)page, XC_PAGE_SIZE);
    xc_set_mem_access(xch, 1, XENMEM_access_r, 0x20, 1);
    long *lat = calloc((size_t)rounds + 1, sizeof(long));
    long n = 0, last = 0;
    int rc = xenevtchn_notify(xce, (evtchn_port_t)port); /* the "go" */
    while (rc == 0 && n <= rounds) {
        struct pollfd p = {.fd = xenevtchn_fd(xce), .events = POLLIN};
        if (poll(&p, 1, 1000) != 1) {
            fprintf(stderr, "bench: no request within a second after %ld round trips\n", n);
            rc = -1;
            break;
        }
        xenevtchn_pending(xce);
        xenevtchn_unmask(xce, (evtchn_port_t)port);
        while (RING_HAS_UNCONSUMED_REQUESTS(&back)) {
            vm_event_request_t req;
            vm_event_response_t rsp;
            RING_COPY_REQUEST(&back, back.req_cons, &req);
            back.req_cons++;
            back.sring->req_event = back.req_cons + 1;
            long t = now_ns();
            if (n > 0)
                lat[n - 1] = t - last;
            last = t;
            n++;
            if (n > rounds)
                xc_set_mem_access(xch, 1, XENMEM_access_rwx, req.u.mem_access.gfn, 1);
            memset(&rsp, 0, sizeof(rsp));
            rsp.version = VM_EVENT_INTERFACE_VERSION;
            rsp.vcpu_id = req.vcpu_id;
            rsp.flags = req.flags & VM_EVENT_FLAG_VCPU_PAUSED;
            rsp.reason = req.reason;
            memcpy(RING_GET_RESPONSE(&back, back.rsp_prod_pvt), &rsp, sizeof(rsp));
            back.rsp_prod_pvt++;
            RING_PUSH_RESPONSES(&back);
        }
        rc = xenevtchn_notify(xce, (evtchn_port_t)port);
    }
    munmap(page, XC_PAGE_SIZE);
    xc_monitor_disable(xch, 1);
    xenevtchn_unbind(xce, (evtchn_port_t)port);
    xenevtchn_close(xce);
    xc_interface_close(xch);
    int status = 0;
    waitpid(srv, &status, 0);
    if (rc != 0 || n <= rounds) {
        free(lat);
        return 1;
    }
    qsort(lat, (size_t)rounds, sizeof(long), cmp);
    printf("xen clients: cross-process mem_access round trip (xc/xenevtchn drop-ins <-> vmisim serve), %ld rounds: "
           "median %.2f us, p99 %.2f us\n", rounds, lat[rounds / 2] / 1000.0, lat[rounds * 99 / 100] / 1000.0);
    free(lat);
    return 0;
}
