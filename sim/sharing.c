/*
 * sim/sharing.c — copy-on-write memory sharing as Xen 4.17 runs it
 * (xen/arch/x86/mm/mem_sharing.c, spec §6): xc_memshr_control, nominate
 * (a gfn becomes p2m_ram_shared with a handle), share (the client's page is
 * merged into the source's and freed), unsharing on a write
 * (__mem_sharing_unshare_page), and mem_sharing_notify_enomem: the
 * MEM_SHARING request on the sharing ring when the domain may not allocate
 * the private page a write needs.
 *
 * Where the bytes are: a shared page lives in the domain's pool (dom_cow's
 * pages); every gfn on it is remapped there (sim_gfn_set_frame).  Unsharing
 * copies the page back into the gfn's home frame.  Accounting is Xen's: a
 * nominated page leaves tot_pages (page_make_sharable), the last gfn of a
 * page takes it back without an allocation (page_make_private), any other
 * gfn needs a new page within max_pages (alloc_domheap_page), else ENOMEM.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"
#include "xen_tools.h"
#include <xen/xen.h>
#include <xen/memory.h>

_Static_assert(SIM_P2MT_RAM_SHARED == 12, "p2m_ram_shared is Xen 4.17's 12");

#define NO_POOL UINT32_MAX

static uint8_t *pool_frame(struct sim_domain *d, uint32_t idx)
{
    return d->pool + (uint64_t)idx * CPU_PAGE_SIZE;
}

int sim_sharing_control(struct sim_domain *d, bool enable)
{
    if (enable && !d->pool_free) {
        uint64_t n = d->nr_gfns;
        d->pool_free = malloc(n * sizeof(*d->pool_free));
        d->pool_refs = calloc(n, sizeof(*d->pool_refs));
        d->pool_handle = calloc(n, sizeof(*d->pool_handle));
        d->gfn_pool = malloc(n * sizeof(*d->gfn_pool));
        if (!d->pool_free || !d->pool_refs || !d->pool_handle || !d->gfn_pool) {
            sim_sharing_free(d);
            return sim_set_error(d, -ENOMEM, "no memory for the sharing bookkeeping of %llu gfns",
                                 (unsigned long long)n);
        }
        /* A stack popping frame 0 first: the same frames in the same order every run. */
        for (uint64_t i = 0; i < n; i++) {
            d->pool_free[i] = (uint32_t)(n - 1 - i);
            d->gfn_pool[i] = NO_POOL;
        }
        d->pool_nfree = (uint32_t)n;
    }
    d->sharing_enabled = enable;
    return 0;
}

void sim_sharing_free(struct sim_domain *d)
{
    free(d->pool_free);
    free(d->pool_refs);
    free(d->pool_handle);
    free(d->gfn_pool);
    d->pool_free = NULL;
    d->pool_refs = NULL;
    d->pool_handle = NULL;
    d->gfn_pool = NULL;
    d->sharing_enabled = false;
}

int sim_sharing_ring_enable(struct sim_domain *d, unsigned version, struct ring_fds *fds)
{
    return sim_ring_enable(d, &d->sharing, version, fds);
}

int sim_sharing_ring_disable(struct sim_domain *d)
{
    return d->sharing.ring ? sim_ring_disable(d, &d->sharing) : 0;
}

static int need_sharing(struct sim_domain *d, const char *what)
{
    if (d->sharing_enabled)
        return 0;
    return sim_set_error(d, -ENODEV, "%s: memory sharing is off for the domain; turn it on with "
                         "sim_sharing_control (xc_memshr_control) first (Xen: ENODEV)", what);
}

int sim_sharing_nominate(struct sim_domain *d, uint64_t gfn, uint64_t *handle)
{
    int rc = need_sharing(d, "xc_memshr_nominate_gfn");
    if (rc < 0)
        return rc;
    *handle = 0;
    if (gfn >= d->nr_gfns)
        return sim_set_error(d, -EINVAL, "gfn %#llx is beyond guest RAM: nothing to nominate (Xen: EINVAL)",
                             (unsigned long long)gfn);
    if (p2m_is_shared(d->host_p2m, gfn)) {
        *handle = d->pool_handle[d->gfn_pool[gfn]]; /* already shared: its page's handle */
        return 0;
    }
    if (p2m_get_paging(d->host_p2m, gfn) != P2M_PAGING_NONE)
        return sim_set_error(d, -EINVAL, "gfn %#llx is in the paging path, not sharable ram_rw (Xen: EINVAL)",
                             (unsigned long long)gfn);
    if (d->map_refs && d->map_refs[gfn])
        return sim_set_error(d, -E2BIG, "gfn %#llx is mapped by another domain (KVM_HC_MEM_MAP): its page "
                             "has extra references and cannot be made sharable (Xen: E2BIG)",
                             (unsigned long long)gfn);
    uint32_t idx = d->pool_free[--d->pool_nfree];
    memcpy(pool_frame(d, idx), d->ram + gfn * CPU_PAGE_SIZE, CPU_PAGE_SIZE);
    sim_mem_dirty(d, pool_frame(d, idx));
    d->pool_refs[idx] = 1;
    d->pool_handle[idx] = ++d->next_handle;
    d->gfn_pool[gfn] = idx;
    d->tot_pages--; /* page_make_sharable: the page now belongs to dom_cow */
    sim_set_shared(d, gfn, true);
    sim_gfn_set_frame(d, gfn, pool_frame(d, idx));
    *handle = d->pool_handle[idx];
    sim_note(d, SIM_NOTE_ACTION, 0, NULL, "gfn %#llx nominated for sharing: ram_shared, handle %llu",
             (unsigned long long)gfn, (unsigned long long)*handle);
    return 0;
}

int sim_sharing_share(struct sim_domain *d, uint64_t sgfn, uint64_t sh, uint64_t cgfn, uint64_t ch)
{
    int rc = need_sharing(d, "xc_memshr_share_gfns");
    if (rc < 0)
        return rc;
    if (sgfn >= d->nr_gfns || cgfn >= d->nr_gfns)
        return sim_set_error(d, -EINVAL, "gfn %#llx is beyond guest RAM (Xen: EINVAL)",
                             (unsigned long long)(sgfn >= d->nr_gfns ? sgfn : cgfn));
    bool s_shared = p2m_is_shared(d->host_p2m, sgfn), c_shared = p2m_is_shared(d->host_p2m, cgfn);
    if (s_shared && c_shared && d->gfn_pool[sgfn] == d->gfn_pool[cgfn])
        return 0; /* "the pages are already the same ... great success!" */
    if (!s_shared || d->pool_handle[d->gfn_pool[sgfn]] != sh)
        return sim_set_error(d, XENMEM_SHARING_OP_S_HANDLE_INVALID,
                             "source gfn %#llx is %s (XENMEM_SHARING_OP_S_HANDLE_INVALID)",
                             (unsigned long long)sgfn, s_shared ? "shared under another handle" : "not nominated");
    if (!c_shared || d->pool_handle[d->gfn_pool[cgfn]] != ch)
        return sim_set_error(d, XENMEM_SHARING_OP_C_HANDLE_INVALID,
                             "client gfn %#llx is %s (XENMEM_SHARING_OP_C_HANDLE_INVALID)",
                             (unsigned long long)cgfn, c_shared ? "shared under another handle" : "not nominated");
    uint32_t sidx = d->gfn_pool[sgfn], cidx = d->gfn_pool[cgfn];
    /* Every gfn on the client's page moves to the source's (rmap order: ascending gfn here). */
    for (uint64_t g = 0; g < d->nr_gfns && d->pool_refs[cidx]; g++) {
        if (d->gfn_pool[g] != cidx)
            continue;
        d->gfn_pool[g] = sidx;
        d->pool_refs[cidx]--;
        d->pool_refs[sidx]++;
        sim_gfn_set_frame(d, g, pool_frame(d, sidx));
    }
    /* The client page is freed (it was dom_cow's: tot_pages does not change). */
    d->pool_handle[cidx] = 0;
    d->pool_free[d->pool_nfree++] = cidx;
    sim_note(d, SIM_NOTE_ACTION, 0, NULL, "gfn %#llx now shares gfn %#llx's page (%u gfn(s) on it)",
             (unsigned long long)cgfn, (unsigned long long)sgfn, d->pool_refs[sidx]);
    return 0;
}

int sim_sharing_unshare(struct sim_domain *d, uint64_t gfn)
{
    if (!p2m_is_shared(d->host_p2m, gfn))
        return 0; /* "Has someone already unshared it?" */
    uint32_t idx = d->gfn_pool[gfn];
    bool last = d->pool_refs[idx] == 1;
    /* Any gfn but the page's last needs a new page of the domain's own. */
    if (!last && d->tot_pages >= d->max_pages)
        return -ENOMEM;
    memcpy(d->ram + gfn * CPU_PAGE_SIZE, pool_frame(d, idx), CPU_PAGE_SIZE);
    sim_mem_dirty(d, d->ram + gfn * CPU_PAGE_SIZE);
    d->tot_pages++;
    if (--d->pool_refs[idx] == 0) {
        d->pool_handle[idx] = 0;
        d->pool_free[d->pool_nfree++] = idx;
    }
    d->gfn_pool[gfn] = NO_POOL;
    sim_set_shared(d, gfn, false);
    sim_gfn_set_frame(d, gfn, NULL);
    return 0;
}

void sim_sharing_write_fault(struct sim_domain *d, struct sim_vcpu *v, uint64_t gfn)
{
    if (sim_sharing_unshare(d, gfn) == 0) {
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "write to shared gfn %#llx: unshared (copy-on-write), "
                 "the write goes ahead", (unsigned long long)gfn);
        return;
    }
    /* mem_sharing_notify_enomem: the helper on the sharing ring must find memory. */
    if (!d->sharing.ring) {
        sim_domain_crash(d, "vCPU %u wrote to shared gfn %#llx, unsharing needs a page beyond max_pages "
                         "(%llu) and there is no sharing ring (Xen: \"ENOMEM and no helper\")", v->id,
                         (unsigned long long)gfn, (unsigned long long)d->max_pages);
        return;
    }
    struct vme_msg req;
    memset(&req, 0, sizeof(req));
    req.reason = VME_REASON_MEM_SHARING;
    req.u.sharing.gfn = gfn;
    req.u.sharing.p2mt = SIM_P2MT_RAM_SHARED;
    sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "write to shared gfn %#llx: unsharing needs a page beyond "
             "max_pages (%llu): ENOMEM, the sharing ring is told and vCPU %u waits", (unsigned long long)gfn,
             (unsigned long long)d->max_pages, v->id);
    /* The vCPU pauses (VCPU_PAUSED) and retries its write once the helper answers. */
    if (sim_ring_claim(d, &d->sharing, v, true, &req) == 0)
        sim_ring_post(d, &d->sharing, v, true, &req);
}

uint64_t sim_tot_pages(const struct sim_domain *d)
{
    return d->tot_pages;
}

uint64_t sim_max_pages(const struct sim_domain *d)
{
    return d->max_pages;
}

void sim_set_max_pages(struct sim_domain *d, uint64_t pages)
{
    /* XEN_DOMCTL_max_mem: no check against tot_pages ("ratchet down"). */
    d->max_pages = pages;
}
