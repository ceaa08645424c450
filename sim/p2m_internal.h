/*
 * sim/p2m_internal.h — the p2m's access settings: Xen's mem_access.
 *
 * One `struct p2m` holds an access type per gfn (xenmem_access_t, Xen 4.17's
 * values) and the default access, as xc_set_mem_access / xc_get_mem_access
 * see them (xen/common/mem_access.c, xen/arch/x86/mm/mem_access.c).  It also
 * keeps the bitmap cpu/ reads (struct cpu_memory.restricted): a gfn's bit is
 * set exactly when its access is not rwx, it is in the paging path
 * (enum p2m_paging) or it is shared, so unrestricted pages cost cpu/ nothing.  An altp2m view will be another struct p2m.
 */
#ifndef VMISIM_P2M_INTERNAL_H
#define VMISIM_P2M_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

/* xenmem_access_t of Xen 4.17 (<xen/memory.h>); sim/p2m.c asserts the values. */
enum p2m_access {
    P2M_ACCESS_N = 0,
    P2M_ACCESS_R = 1,
    P2M_ACCESS_W = 2,
    P2M_ACCESS_RW = 3,
    P2M_ACCESS_X = 4,
    P2M_ACCESS_RX = 5,
    P2M_ACCESS_WX = 6,
    P2M_ACCESS_RWX = 7,
    P2M_ACCESS_RX2RW = 8, /* r-x; a write turns it into rw, no event */
    P2M_ACCESS_N2RWX = 9, /* ---; any access turns it into rwx, with an async event */
    P2M_ACCESS_DEFAULT = 10,
    P2M_ACCESS_COUNT
};

/* Access kinds, bit-compatible with cpu/'s CPU_R/W/X and Xen's MEM_ACCESS_R/W/X. */
#define P2M_R 1u
#define P2M_W 2u
#define P2M_X 4u

struct p2m;

/* A p2m for gfns [0, nr_gfns), every entry rwx, default access rwx. */
int p2m_create(struct p2m **out, uint64_t nr_gfns);
void p2m_destroy(struct p2m *p);
uint64_t p2m_nr_gfns(const struct p2m *p);

/*
 * xc_set_mem_access(access, first_gfn, nr): sets [first_gfn, first_gfn + nr);
 * P2M_ACCESS_DEFAULT means the default access as it is now.  first_gfn = ~0
 * sets the default access instead (nr ignored), as Xen does.  -EINVAL for an
 * unknown access type or a range beyond the p2m (nothing is changed then).
 * `*restricted` is set when some gfn lost a right it had (cpu/ must then
 * drop stale translations: cpu_p2m_restricted); may be NULL.
 */
int p2m_set_access(struct p2m *p, uint64_t first_gfn, uint64_t nr, enum p2m_access access,
                   bool *restricted);
/* xc_get_mem_access: the gfn's access type; -EINVAL beyond the p2m. */
int p2m_get_access(const struct p2m *p, uint64_t gfn, enum p2m_access *out);
enum p2m_access p2m_default_access(const struct p2m *p);

/* The rights an access type grants: P2M_R|W|X (rx2rw: r-x; n2rwx: none). */
unsigned p2m_access_rights(enum p2m_access a);
/* The rights of a gfn (rwx beyond the p2m: cpu/ never asks for those). */
unsigned p2m_rights(const struct p2m *p, uint64_t gfn);
/*
 * Xen's violation table (hvm_hap_nested_page_fault): does an access of
 * `kinds` (P2M_R|W|X) violate access type `a`?
 */
bool p2m_access_violates(enum p2m_access a, unsigned kinds);

/*
 * The gfn's place in the paging path (xen/arch/x86/mm/mem_paging.c), kept
 * apart from its access type: NONE is p2m_ram_rw.  The other states map
 * nothing (p2m_rights gives 0, the restricted bit is set); a gfn is
 * PAGING_OUT (nominated, contents still there), PAGED (evicted, contents
 * gone) or PAGING_IN (a guest touched it: the pager was asked for it).
 * The values are Xen 4.17's p2m_type_t where it has one (sim/paging.c).
 */
enum p2m_paging {
    P2M_PAGING_NONE = 0,
    P2M_PAGING_OUT = 9,  /* p2m_ram_paging_out */
    P2M_PAGING_PAGED = 10, /* p2m_ram_paged */
    P2M_PAGING_IN = 11,  /* p2m_ram_paging_in */
};
/* NONE beyond the p2m. */
enum p2m_paging p2m_get_paging(const struct p2m *p, uint64_t gfn);
/* Has the gfn a frame (Xen: mfn_valid)?  False once evicted, until loaded. */
bool p2m_paging_has_frame(const struct p2m *p, uint64_t gfn);
/*
 * Sets the state and whether a frame backs it (ignored beyond the p2m; NONE
 * always has its frame).  Leaving NONE takes every right away: the caller
 * drops cpu/'s translations (sim_p2m_changed).
 */
void p2m_set_paging(struct p2m *p, uint64_t gfn, enum p2m_paging state, bool has_frame);

/*
 * p2m_ram_shared (xen/arch/x86/mm/mem_sharing.c): the gfn's frame is shared
 * copy-on-write; it keeps its access type, minus W (a write unshares first).
 */
bool p2m_is_shared(const struct p2m *p, uint64_t gfn);
void p2m_set_shared(struct p2m *p, uint64_t gfn, bool shared);

/* One bit per gfn, set when the gfn's access is not rwx or it is in the paging path (cpu_memory.restricted). */
const uint64_t *p2m_restricted_bitmap(const struct p2m *p);

/* "rx2rw"; NULL for an unknown value. */
const char *p2m_access_name(enum p2m_access a);

#endif
