/* tests/ring/ring_test_util.h — fixtures shared by the ring tests. */
#ifndef VMISIM_RING_TEST_UTIL_H
#define VMISIM_RING_TEST_UTIL_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring.h"

#define SLOT_V1 312u
#define SLOT_V7 400u

/* A deterministic, slot-sized message: every byte depends on `seq` and `tag`. */
static inline void fill_msg(unsigned char *buf, size_t len, uint32_t seq, unsigned char tag)
{
    uint32_t x = seq * 2654435761u ^ tag;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)(x ^ i);
    }
}

/*
 * An error in the test itself (its set-up failed), kept apart from a failure of
 * the thing tested: the message says which, so nobody debugs the ring for it.
 */
#define TEST_ERROR(...) cr_assert_fail("TEST ERROR (set-up, not the code under test): " __VA_ARGS__)
#define TEST_SETUP(expr)                                                                    \
    do {                                                                                    \
        int rc_ = (expr);                                                                   \
        if (rc_ < 0)                                                                        \
            TEST_ERROR("%s = %d (%s)", #expr, rc_, strerror(-rc_));                         \
    } while (0)

struct pair {
    struct ring *front;
    struct ring_back *back;
    struct ring_fds fds;
    size_t slot;
};

static inline struct pair pair_new(size_t slot, ring_idx_t start)
{
    struct pair p = {.slot = slot};
    TEST_SETUP(ring_create(&p.front, slot, start));
    p.fds = ring_fds(p.front);
    TEST_SETUP(ring_back_attach(&p.back, &p.fds, slot, start));
    return p;
}

static inline void pair_free(struct pair *p)
{
    ring_back_detach(p->back);
    ring_destroy(p->front);
}

/* The shared page, mapped a second time the way a hostile client would see it. */
static inline struct ring_abi_sring_header *raw_header(const struct pair *p)
{
    void *page = mmap(NULL, RING_ABI_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, p->fds.shm, 0);
    if (page == MAP_FAILED)
        TEST_ERROR("cannot map the ring page");
    return page;
}

static inline void raw_unmap(struct ring_abi_sring_header *h)
{
    munmap(h, RING_ABI_PAGE_SIZE);
}

#endif
