/*
 * tests/ring/test_evtchn.c — the doorbell behaves like a Xen event channel:
 * notify sets pending; delivery masks the port (Linux evtchn upcall); notifies
 * while masked coalesce and are delivered on unmask; nothing is lost.
 */
#include <errno.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ring_test_util.h"

struct bell {
    struct ring *ring;
    struct evtchn *sim, *client;
    struct ring_fds fds;
};

static struct bell bell_new(void)
{
    struct bell b;
    TEST_SETUP(ring_create(&b.ring, SLOT_V1, 0));
    b.fds = ring_fds(b.ring);
    b.sim = ring_evtchn(b.ring);
    TEST_SETUP(evtchn_open(&b.client, &b.fds, RING_ABI_PORT_CLIENT));
    return b;
}

static void bell_free(struct bell *b)
{
    evtchn_close(b->client);
    ring_destroy(b->ring);
}

static bool readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 1;
}

/* One notify, one delivery; taking it clears it. */
Test(evtchn, notify_delivers_once)
{
    struct bell b = bell_new();
    cr_expect_eq(evtchn_pending(b.client), 0);
    cr_assert_eq(evtchn_notify(b.sim), 0);
    cr_expect(readable(evtchn_fd(b.client)));
    cr_expect_eq(evtchn_pending(b.client), 1);
    cr_expect_eq(evtchn_pending(b.client), 0);
    cr_expect_eq(evtchn_pending(b.sim), 0, "the notify went to the other side only");
    bell_free(&b);
}

/*
 * Delivery masks the port: later notifies only set pending (no wake-up), and
 * coalesce into a single delivery when the receiver unmasks.
 */
Test(evtchn, masked_notifies_coalesce_until_unmask)
{
    struct bell b = bell_new();
    evtchn_notify(b.sim);
    cr_assert_eq(evtchn_pending(b.client), 1);
    evtchn_notify(b.sim);
    evtchn_notify(b.sim);
    cr_expect_not(readable(evtchn_fd(b.client)), "a masked port must not wake its owner");
    cr_assert_eq(evtchn_unmask(b.client), 0);
    cr_expect(readable(evtchn_fd(b.client)), "pending while masked: delivered on unmask");
    cr_expect_eq(evtchn_pending(b.client), 1);
    cr_expect_eq(evtchn_pending(b.client), 0, "three notifies, two deliveries, no more");
    cr_assert_eq(evtchn_unmask(b.client), 0);
    cr_expect_not(readable(evtchn_fd(b.client)), "unmask with nothing pending delivers nothing");
    bell_free(&b);
}

/* Notifies before the first delivery is taken coalesce too (eventfd counter read once). */
Test(evtchn, unread_notifies_coalesce)
{
    struct bell b = bell_new();
    for (int i = 0; i < 5; i++)
        evtchn_notify(b.client);
    cr_expect_eq(evtchn_pending(b.sim), 1);
    cr_expect_eq(evtchn_unmask(b.sim), 0);
    cr_expect_eq(evtchn_pending(b.sim), 1, "notifies 2-5 arrived while the port was masked");
    cr_expect_eq(evtchn_unmask(b.sim), 0);
    cr_expect_eq(evtchn_pending(b.sim), 0);
    bell_free(&b);
}

/* evtchn_wait times out rather than hanging; it returns 1 for a delivery. */
Test(evtchn, wait_times_out)
{
    struct bell b = bell_new();
    cr_expect_eq(evtchn_wait(b.client, 10), 0);
    evtchn_notify(b.sim);
    cr_expect_eq(evtchn_wait(b.client, 1000), 1);
    bell_free(&b);
}

/* Across processes: a child that inherited the descriptors rings the parent. */
Test(evtchn, across_processes)
{
    struct bell b = bell_new();
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct evtchn *c;
        if (evtchn_open(&c, &b.fds, RING_ABI_PORT_CLIENT) < 0)
            _exit(2);
        int got = evtchn_wait(c, 5000); /* wait for the parent's ring */
        evtchn_notify(c);
        _exit(got == 1 ? 0 : 1);
    }
    evtchn_notify(b.sim);
    cr_expect_eq(evtchn_wait(b.sim, 5000), 1, "the child's notify must arrive");
    int status;
    waitpid(pid, &status, 0);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child saw the parent's notify");
    bell_free(&b);
}

/* Only the two ports exist. */
Test(evtchn, bad_port_refused)
{
    struct bell b = bell_new();
    struct evtchn *e = NULL;
    cr_expect_eq(evtchn_open(&e, &b.fds, (enum ring_abi_port)2), -EINVAL);
    bell_free(&b);
}
