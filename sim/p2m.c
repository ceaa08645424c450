/*
 * sim/p2m.c — mem_access settings of one p2m (see p2m_internal.h).
 */
#include <errno.h>
#include <stdlib.h>

#include "p2m_internal.h"
#include "xen_tools.h"
#include <xen/xen.h>
#include <xen/memory.h>

_Static_assert(XENMEM_access_n == (int)P2M_ACCESS_N && XENMEM_access_rwx == (int)P2M_ACCESS_RWX
                   && XENMEM_access_rx2rw == (int)P2M_ACCESS_RX2RW
                   && XENMEM_access_n2rwx == (int)P2M_ACCESS_N2RWX
                   && XENMEM_access_default == (int)P2M_ACCESS_DEFAULT,
               "p2m access values are Xen 4.17's xenmem_access_t");

struct p2m {
    uint64_t nr_gfns;
    uint8_t *access; /* enum p2m_access per gfn, never P2M_ACCESS_DEFAULT */
    uint64_t *restricted;
    uint8_t *paging; /* enum p2m_paging per gfn, | P2M_NO_FRAME when its frame was freed */
    uint64_t *shared; /* one bit per gfn: p2m_ram_shared */
    enum p2m_access default_access;
};

static bool is_shared(const struct p2m *p, uint64_t g)
{
    return (p->shared[g / 64] >> (g % 64)) & 1;
}

/* The restricted bit: the access is not rwx, the gfn is in the paging path, or it is shared. */
static void p2m_update_bit(struct p2m *p, uint64_t g)
{
    uint64_t bit = 1ull << (g % 64);
    if (p->access[g] == P2M_ACCESS_RWX && p->paging[g] == 0 && !is_shared(p, g))
        p->restricted[g / 64] &= ~bit;
    else
        p->restricted[g / 64] |= bit;
}

static const char *const p2m_access_names[P2M_ACCESS_COUNT] = {
    "n", "r", "w", "rw", "x", "rx", "wx", "rwx", "rx2rw", "n2rwx", "default",
};

int p2m_create(struct p2m **out, uint64_t nr_gfns)
{
    if (nr_gfns == 0 || nr_gfns > (UINT64_MAX >> 1) / 64)
        return -EINVAL;
    struct p2m *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->nr_gfns = nr_gfns;
    p->default_access = P2M_ACCESS_RWX;
    p->access = malloc(nr_gfns);
    p->restricted = calloc((nr_gfns + 63) / 64, sizeof(uint64_t));
    p->paging = calloc(nr_gfns, 1);
    p->shared = calloc((nr_gfns + 63) / 64, sizeof(uint64_t));
    if (!p->access || !p->restricted || !p->paging || !p->shared) {
        p2m_destroy(p);
        return -ENOMEM;
    }
    for (uint64_t g = 0; g < nr_gfns; g++)
        p->access[g] = P2M_ACCESS_RWX;
    *out = p;
    return 0;
}

void p2m_destroy(struct p2m *p)
{
    if (!p)
        return;
    free(p->access);
    free(p->restricted);
    free(p->paging);
    free(p->shared);
    free(p);
}

uint64_t p2m_nr_gfns(const struct p2m *p)
{
    return p->nr_gfns;
}

unsigned p2m_access_rights(enum p2m_access a)
{
    switch (a) {
    case P2M_ACCESS_RX2RW:
        return P2M_R | P2M_X;
    case P2M_ACCESS_N2RWX:
        return 0;
    default:
        /* n..rwx are the R/W/X bits themselves. */
        return (unsigned)a < P2M_ACCESS_RX2RW ? (unsigned)a : 0;
    }
}

bool p2m_access_violates(enum p2m_access a, unsigned kinds)
{
    return (kinds & ~p2m_access_rights(a) & (P2M_R | P2M_W | P2M_X)) != 0;
}

int p2m_set_access(struct p2m *p, uint64_t first_gfn, uint64_t nr, enum p2m_access access,
                   bool *restricted)
{
    if (restricted)
        *restricted = false;
    if ((unsigned)access >= P2M_ACCESS_COUNT)
        return -EINVAL;
    if (first_gfn == ~0ull) {
        /* XENMEM_access_op_set_access with pfn ~0: the default access (host p2m). */
        if (access != P2M_ACCESS_DEFAULT)
            p->default_access = access;
        return 0;
    }
    if (first_gfn >= p->nr_gfns || nr > p->nr_gfns - first_gfn)
        return -EINVAL;
    enum p2m_access a = access == P2M_ACCESS_DEFAULT ? p->default_access : access;
    unsigned rights = p2m_access_rights(a);
    bool lost = false;
    for (uint64_t g = first_gfn; g < first_gfn + nr; g++) {
        lost |= (p2m_access_rights((enum p2m_access)p->access[g]) & ~rights) != 0;
        p->access[g] = (uint8_t)a;
        p2m_update_bit(p, g);
    }
    if (restricted)
        *restricted = lost;
    return 0;
}

int p2m_get_access(const struct p2m *p, uint64_t gfn, enum p2m_access *out)
{
    if (gfn >= p->nr_gfns)
        return -EINVAL;
    *out = (enum p2m_access)p->access[gfn];
    return 0;
}

enum p2m_access p2m_default_access(const struct p2m *p)
{
    return p->default_access;
}

unsigned p2m_rights(const struct p2m *p, uint64_t gfn)
{
    if (gfn >= p->nr_gfns)
        return P2M_R | P2M_W | P2M_X;
    /* A gfn in the paging path has no mapping at all, whatever its access type. */
    if (p->paging[gfn] != 0)
        return 0;
    unsigned r = p2m_access_rights((enum p2m_access)p->access[gfn]);
    /* A shared page is read-only in the EPT, whatever its access: a write must unshare it. */
    return is_shared(p, gfn) ? r & ~P2M_W : r;
}

#define P2M_NO_FRAME 0x80u

enum p2m_paging p2m_get_paging(const struct p2m *p, uint64_t gfn)
{
    return gfn < p->nr_gfns ? (enum p2m_paging)(p->paging[gfn] & ~P2M_NO_FRAME) : P2M_PAGING_NONE;
}

bool p2m_paging_has_frame(const struct p2m *p, uint64_t gfn)
{
    return gfn < p->nr_gfns && !(p->paging[gfn] & P2M_NO_FRAME);
}

void p2m_set_paging(struct p2m *p, uint64_t gfn, enum p2m_paging state, bool has_frame)
{
    if (gfn >= p->nr_gfns)
        return;
    p->paging[gfn] = (uint8_t)(state | (has_frame || state == P2M_PAGING_NONE ? 0 : P2M_NO_FRAME));
    p2m_update_bit(p, gfn);
}

bool p2m_is_shared(const struct p2m *p, uint64_t gfn)
{
    return gfn < p->nr_gfns && is_shared(p, gfn);
}

void p2m_set_shared(struct p2m *p, uint64_t gfn, bool shared)
{
    if (gfn >= p->nr_gfns)
        return;
    if (shared)
        p->shared[gfn / 64] |= 1ull << (gfn % 64);
    else
        p->shared[gfn / 64] &= ~(1ull << (gfn % 64));
    p2m_update_bit(p, gfn);
}

const uint64_t *p2m_restricted_bitmap(const struct p2m *p)
{
    return p->restricted;
}

const char *p2m_access_name(enum p2m_access a)
{
    return (unsigned)a < P2M_ACCESS_COUNT ? p2m_access_names[a] : NULL;
}
