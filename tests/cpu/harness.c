/* tests/cpu/harness.c — see harness.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

static unsigned rights_cb(void *opaque, uint64_t gfn)
{
    struct harness *h = opaque;
    return gfn < sizeof(h->rights) ? h->rights[gfn] : CPU_RWX;
}

static uint8_t *frame_cb(void *opaque, uint64_t gfn)
{
    struct harness *h = opaque;
    return gfn < GUEST_RAM_SIZE / 4096 ? h->frames[gfn] : NULL;
}

int harness_setup(struct harness *h, enum cpu_mode mode, const char *program, uint32_t intercept,
                  char *err, size_t errlen)
{
    memset(h, 0, sizeof(*h));
    memset(h->rights, CPU_RWX, sizeof(h->rights));
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.bin", GUEST_BIN_DIR, program);
    int rc = guest_init(&h->g, mode, GUEST_RAM_SIZE);
    if (rc == 0)
        rc = guest_standard(&h->g, path);
    if (rc < 0) {
        snprintf(err, errlen, "setup: guest %s: %s", path, strerror(-rc));
        return rc;
    }
    struct cpu_config cfg = {.mode = mode, .mem = guest_memory(&h->g), .intercept = intercept};
    cfg.mem.restricted = h->restricted;
    cfg.mem.rights = rights_cb;
    cfg.mem.remapped = h->remapped;
    cfg.mem.frame = frame_cb;
    cfg.mem.opaque = h;
    if ((rc = cpu_create(&h->c, &cfg)) < 0) {
        snprintf(err, errlen, "setup: cpu_create: %s", strerror(-rc));
        return rc;
    }
    if ((rc = guest_boot(&h->g, h->c)) < 0) {
        snprintf(err, errlen, "setup: guest_boot: %s", strerror(-rc));
        return rc;
    }
    return 0;
}

void harness_teardown(struct harness *h)
{
    cpu_destroy(h->c);
    h->c = NULL;
    guest_fini(&h->g);
}

void harness_restrict(struct harness *h, uint64_t gfn, unsigned rights)
{
    h->rights[gfn] = (uint8_t)rights;
    if (rights == CPU_RWX)
        h->restricted[gfn / 64] &= ~(1ull << (gfn % 64));
    else
        h->restricted[gfn / 64] |= 1ull << (gfn % 64);
    cpu_p2m_restricted(h->c, gfn);
}

void harness_remap(struct harness *h, uint64_t gfn, uint8_t *frame)
{
    h->frames[gfn] = frame;
    h->remapped[gfn / 64] |= 1ull << (gfn % 64);
    cpu_p2m_restricted(h->c, gfn);
}

uint64_t harness_label(struct harness *h, unsigned i)
{
    return guest_read64(&h->g, GUEST_CODE_GPA + 0x908 + 8 * i);
}
