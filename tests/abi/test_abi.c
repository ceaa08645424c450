/*
 * tests/abi/test_abi.c — vmisim's ring against a client built only with Xen's
 * headers, in another process.
 *
 * The simulator side (this process) puts 10,000 requests whose every byte is
 * known and checks every byte of the 10,000 responses; the client
 * (abi_client.c, compiled once against the seed v1 header and once against
 * libxen-dev's v7 header) checks every byte of each request through Xen's
 * structures and ring macros.  The two sides share no layout code: only raw
 * offsets here, only Xen's structs there.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "abi_pattern.h"
#include "ring.h"

#define ABI_COUNT 10000
#define ABI_TIMEOUT_MS 10000

static pid_t spawn_client(const char *path, const struct ring_fds *fds, uint32_t count)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* The ring's descriptors are close-on-exec: hand exactly these three over. */
    int keep[] = {fds->shm, fds->to_client, fds->to_simulator};
    for (int k = 0; k < 3; k++)
        fcntl(keep[k], F_SETFD, 0);
    char a[3][16], n[16];
    for (int k = 0; k < 3; k++)
        snprintf(a[k], sizeof(a[k]), "%d", keep[k]);
    snprintf(n, sizeof(n), "%u", count);
    execl(path, path, a[0], a[1], a[2], n, (char *)NULL);
    fprintf(stderr, "TEST ERROR (set-up): cannot run %s: %s\n", path, strerror(errno));
    _exit(127);
}

/* Waits for the client's doorbell; a silent client fails the test, never hangs it. */
static void wait_client(struct evtchn *e, uint32_t answered)
{
    int rc = evtchn_wait(e, ABI_TIMEOUT_MS);
    cr_assert_eq(rc, 1, "the client went silent after %u responses (rc %d)", answered, rc);
    evtchn_unmask(e);
}

static void run_abi(const char *client, unsigned version)
{
    size_t slot = abi_slot_size(version);
    struct ring *r;
    int rc = ring_create(&r, slot, 0);
    if (rc < 0)
        cr_assert_fail("TEST ERROR (set-up): ring_create: %s", strerror(-rc));
    struct ring_fds fds = ring_fds(r);
    struct evtchn *e = ring_evtchn(r);
    pid_t pid = spawn_client(client, &fds, ABI_COUNT);
    if (pid < 0)
        cr_assert_fail("TEST ERROR (set-up): fork: %s", strerror(errno));

    wait_client(e, 0); /* the client has run SHARED_RING_INIT and BACK_RING_INIT */
    unsigned char buf[400], expect[400];
    uint32_t sent = 0, answered = 0;
    while (answered < ABI_COUNT) {
        bool put = false;
        while (sent < ABI_COUNT && ring_available(r) > 0) {
            abi_request(buf, sent, version);
            cr_assert_eq(ring_put_request(r, buf), 0);
            sent++;
            put = true;
        }
        if (put) {
            ring_push_requests(r);
            evtchn_notify(e); /* as Xen: always */
        }
        while ((rc = ring_take_response(r, buf)) == 0) {
            abi_response(expect, answered, version);
            for (size_t k = 0; k < slot; k++)
                cr_assert_eq(buf[k], expect[k], "v%u response %u: byte %zu is %#x, expected %#x",
                             version, answered, k, buf[k], expect[k]);
            answered++;
        }
        cr_assert_eq(rc, -EAGAIN, "ring error: %s", ring_error(r));
        if (answered < ABI_COUNT && ring_final_check_for_responses(r) == 0
            && (sent == ABI_COUNT || ring_available(r) == 0))
            wait_client(e, answered);
    }
    int status;
    waitpid(pid, &status, 0);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the v%u client reported a mismatch (exit status %#x, see its stderr)", version, status);
    ring_destroy(r);
}

/* Interface version 1: the client is compiled against the seed header. */
Test(abi, v1_client_10000_requests, .timeout = 120)
{
    run_abi(ABI_CLIENT_V1, 1);
}

/* Interface version 7: the client is compiled against Debian's <xen/vm_event.h>. */
Test(abi, v7_client_10000_requests, .timeout = 120)
{
    run_abi(ABI_CLIENT_V7, 7);
}
