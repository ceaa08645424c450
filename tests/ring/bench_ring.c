/*
 * tests/ring/bench_ring.c — what the vm_event ring costs, measured in one run:
 *   1. in-process: put + take of a request/response pair (front and back end
 *      in this process, through the shared mapping), ns per pair;
 *   2. cross-process round trip with doorbell wake-ups (both sides sleep in
 *      poll until notified), µs median and p99;
 *   3. cross-process round trip with busy-polling on the indices.
 * Run it with `meson test -C build --benchmark --verbose` or directly.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"

#define SLOT 400 /* interface version 7 */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_ring: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
    exit(1);
}

static double bench_in_process(long pairs)
{
    struct ring *r;
    struct ring_back *b;
    int rc = ring_create(&r, SLOT, 0);
    if (rc < 0)
        die("ring_create", rc);
    struct ring_fds fds = ring_fds(r);
    if ((rc = ring_back_attach(&b, &fds, SLOT, 0)) < 0)
        die("ring_back_attach", rc);
    unsigned char req[SLOT] = {1}, rsp[SLOT];
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_ns();
        for (long i = 0; i < pairs; i++) {
            req[0] = (unsigned char)i;
            if (ring_put_request(r, req) < 0)
                die("put", -EBUSY);
            ring_push_requests(r);
            ring_back_take_request(b, rsp);
            ring_back_put_response(b, rsp);
            ring_back_push_responses(b);
            if (ring_take_response(r, rsp) < 0 || rsp[0] != (unsigned char)i)
                die("take_response", -EPROTO);
        }
        double per = (now_ns() - t0) / (double)pairs;
        if (per < best)
            best = per;
    }
    ring_back_detach(b);
    ring_destroy(r);
    return best;
}

/* The client: echo every request as a response, forever, until killed. */
static void echo_client(const struct ring_fds *fds, bool wakeups, long spin_ns)
{
    struct ring_back *b;
    struct evtchn *e;
    if (ring_back_attach(&b, fds, SLOT, 0) < 0 || evtchn_open(&e, fds, RING_ABI_PORT_CLIENT) < 0)
        _exit(1);
    evtchn_set_spin(e, spin_ns);
    unsigned char msg[SLOT];
    for (;;) {
        if (wakeups && !ring_back_final_check_for_requests(b)) {
            if (evtchn_wait(e, 10000) <= 0)
                _exit(2);
            evtchn_unmask(e);
        }
        bool any = false;
        while (ring_back_take_request(b, msg) == 0) {
            ring_back_put_response(b, msg);
            any = true;
        }
        if (any && ring_back_push_responses(b) && wakeups)
            evtchn_notify(e);
    }
}

struct latency { double median_us, p99_us; };

/* Sorts the samples, frees them, and returns their median and 99th percentile. */
static struct latency latency_of(double *samples, int n)
{
    qsort(samples, (size_t)n, sizeof(double), cmp_double);
    struct latency l = {samples[n / 2], samples[(int)(n * 0.99)]};
    free(samples);
    return l;
}

static struct latency bench_cross_process(int rounds, bool wakeups, long spin_ns)
{
    struct ring *r;
    int rc = ring_create(&r, SLOT, 0);
    if (rc < 0)
        die("ring_create", rc);
    struct ring_fds fds = ring_fds(r);
    struct evtchn *e = ring_evtchn(r);
    evtchn_set_spin(e, spin_ns);
    pid_t pid = fork();
    if (pid < 0)
        die("fork", errno);
    if (pid == 0)
        echo_client(&fds, wakeups, spin_ns);
    double *samples = calloc((size_t)rounds, sizeof(double));
    unsigned char req[SLOT] = {0}, rsp[SLOT];
    int warmup = rounds / 10;
    for (int i = -warmup; i < rounds; i++) {
        double t0 = now_ns();
        req[0] = (unsigned char)i;
        ring_put_request(r, req);
        ring_push_requests(r);
        if (wakeups)
            evtchn_notify(e);
        for (;;) {
            rc = ring_take_response(r, rsp);
            if (rc == 0)
                break;
            if (rc != -EAGAIN)
                die(ring_error(r), rc);
            if (wakeups && ring_final_check_for_responses(r) == 0) {
                if (evtchn_wait(e, 10000) <= 0)
                    die("the client went silent", ETIMEDOUT);
                evtchn_unmask(e);
            }
        }
        if (i >= 0)
            samples[i] = (now_ns() - t0) / 1000.0;
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ring_destroy(r);
    return latency_of(samples, rounds);
}

/* The machine's floor: two processes ping-pong over two eventfds, no ring at all. */
static struct latency bench_os_wakeup(int rounds)
{
    struct ring *r;
    int rc = ring_create(&r, SLOT, 0);
    if (rc < 0)
        die("ring_create", rc);
    struct ring_fds fds = ring_fds(r);
    uint64_t v = 1;
    pid_t pid = fork();
    if (pid < 0)
        die("fork", errno);
    if (pid == 0) {
        struct pollfd pfd = {.fd = fds.to_client, .events = POLLIN};
        for (;;) {
            if (poll(&pfd, 1, 10000) != 1 || read(fds.to_client, &v, 8) != 8
                || write(fds.to_simulator, &v, 8) != 8)
                _exit(2);
        }
    }
    double *samples = calloc((size_t)rounds, sizeof(double));
    struct pollfd pfd = {.fd = fds.to_simulator, .events = POLLIN};
    for (int i = -rounds / 10; i < rounds; i++) {
        double t0 = now_ns();
        if (write(fds.to_client, &v, 8) != 8 || poll(&pfd, 1, 10000) != 1
            || read(fds.to_simulator, &v, 8) != 8)
            die("eventfd ping-pong", errno);
        if (i >= 0)
            samples[i] = (now_ns() - t0) / 1000.0;
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ring_destroy(r);
    return latency_of(samples, rounds);
}

int main(void)
{
    printf("vmisim ring benchmark (interface v7 slots, %d bytes)\n", SLOT);
    double pair = bench_in_process(2000000);
    printf("  in-process put+take of a request/response pair:      %8.1f ns   (goal <= 100 ns)\n",
           pair);
    struct latency w = bench_cross_process(20000, true, EVTCHN_DEFAULT_SPIN_NS);
    printf("  cross-process round trip, doorbell wake-ups:          %8.2f us median, %6.2f us p99"
           "   (goal <= 10 us median; evtchn_wait spins %ld us before sleeping)\n",
           w.median_us, w.p99_us, EVTCHN_DEFAULT_SPIN_NS / 1000);
    struct latency s = bench_cross_process(20000, true, 0);
    printf("  cross-process round trip, doorbell, always sleeping:  %8.2f us median, %6.2f us p99\n",
           s.median_us, s.p99_us);
    struct latency os = bench_os_wakeup(20000);
    printf("    (this machine's floor for that: eventfd ping-pong,  %8.2f us median, %6.2f us p99)\n",
           os.median_us, os.p99_us);
    struct latency p = bench_cross_process(200000, false, 0);
    printf("  cross-process round trip, busy-polling the indices:   %8.2f us median, %6.2f us p99\n",
           p.median_us, p.p99_us);
    return 0;
}
