/*
 * sim/paging.c — mem_paging as Xen 4.17 runs it (xen/arch/x86/mm/mem_paging.c,
 * spec §6): the paging ring, the pager's XENMEM_paging_op calls (nominate,
 * evict, prep/load), p2m_mem_paging_populate when a guest vCPU touches a gfn
 * in the paging path, and p2m_mem_paging_resume for the pager's response.
 * The ring itself is sim/monitor.c's, with d->paging as the ring.
 *
 * A gfn's paging state lives in the p2m beside its access type
 * (p2m_get_paging); while it is not ram_rw the p2m grants it no right, so
 * cpu/ stops on any access and sim_mem_access_fault hands it here.
 */
#include <errno.h>
#include <string.h>

#include "sim_internal.h"
#include "xen_tools.h"
#include <xen/xen.h>
#include <xen/vm_event.h>

_Static_assert(MEM_PAGING_DROP_PAGE == VME_MEM_PAGING_DROP_PAGE
                   && MEM_PAGING_EVICT_FAIL == VME_MEM_PAGING_EVICT_FAIL,
               "MEM_PAGING flags are Xen's");
_Static_assert(SIM_P2MT_PAGING_OUT == P2M_PAGING_OUT && SIM_P2MT_PAGED == P2M_PAGING_PAGED
                   && SIM_P2MT_PAGING_IN == P2M_PAGING_IN,
               "paging states are Xen 4.17's p2m_type_t");

int sim_paging_enable(struct sim_domain *d, unsigned version, struct ring_fds *fds)
{
    /* HAP, no IOMMU, no PoD: none of Xen's other refusals (-ENODEV, -EMLINK, -EXDEV) apply. */
    return sim_ring_enable(d, &d->paging, version, fds);
}

int sim_paging_disable(struct sim_domain *d)
{
    if (!d->paging.ring)
        return 0;
    return sim_ring_disable(d, &d->paging);
}

bool sim_paging_enabled(const struct sim_domain *d)
{
    return d->paging.ring != NULL;
}

static int need_ring(struct sim_domain *d, const char *what)
{
    if (d->paging.ring)
        return 0;
    return sim_set_error(d, -ENODEV, "%s needs an enabled paging ring (Xen returns -ENODEV)", what);
}

/*
 * cpu/ drops its translations of the gfn; when its contents changed, code
 * translated from it is flushed before the next run (never from inside the
 * engine, where a pager running as an in-process client may call us).
 */
static void gfn_changed(struct sim_domain *d, uint64_t gfn, bool contents)
{
    sim_p2m_changed(d, gfn, 1);
    if (contents && d->ran)
        d->code_flush_pending = true;
}

/* The gfn is ram_rw again: vCPUs that waited for it without a request of their own run. */
static void paging_wake(struct sim_domain *d, uint64_t gfn)
{
    for (unsigned i = 0; i < d->nr_vcpus; i++) {
        struct sim_vcpu *v = &d->vcpus[i];
        if (v->paging_wait && v->paging_gfn == gfn) {
            v->paging_wait = false;
            sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "gfn %#llx is back: vCPU %u runs again",
                     (unsigned long long)gfn, v->id);
        }
    }
}

int sim_paging_nominate(struct sim_domain *d, uint64_t gfn)
{
    int rc = need_ring(d, "xc_mem_paging_nominate");
    if (rc < 0)
        return rc;
    /* Only p2m_is_pageable gfns (ram_rw, not shared) whose page has no extra reference. */
    if (gfn >= p2m_nr_gfns(d->host_p2m) || p2m_get_paging(d->host_p2m, gfn) != P2M_PAGING_NONE
        || p2m_is_shared(d->host_p2m, gfn))
        return sim_set_error(d, -EBUSY, "gfn %#llx cannot be nominated: it is not ram_rw guest RAM (Xen: EBUSY)",
                             (unsigned long long)gfn);
    if (d->map_refs && d->map_refs[gfn])
        return sim_set_error(d, -EBUSY, "gfn %#llx cannot be nominated: another domain maps its page "
                             "(KVM_HC_MEM_MAP), an extra reference (Xen: EBUSY)", (unsigned long long)gfn);
    sim_set_paging(d, gfn, P2M_PAGING_OUT, true);
    gfn_changed(d, gfn, false);
    return 0;
}

int sim_paging_evict(struct sim_domain *d, uint64_t gfn)
{
    int rc = need_ring(d, "xc_mem_paging_evict");
    if (rc < 0)
        return rc;
    if (p2m_get_paging(d->host_p2m, gfn) != P2M_PAGING_OUT || !p2m_paging_has_frame(d->host_p2m, gfn))
        return sim_set_error(d, -EBUSY, "gfn %#llx cannot be evicted: it is not paging_out (not nominated, "
                             "or the guest touched it since) (Xen: EBUSY)", (unsigned long long)gfn);
    /* The frame is freed: scrub_one_page, and the gfn maps nothing. */
    memset(d->ram + gfn * CPU_PAGE_SIZE, 0, CPU_PAGE_SIZE);
    sim_mem_dirty(d, d->ram + gfn * CPU_PAGE_SIZE); /* a snapshot restore must put it back */
    d->tot_pages--;
    sim_set_paging(d, gfn, P2M_PAGING_PAGED, false);
    gfn_changed(d, gfn, true);
    return 0;
}

int sim_paging_load(struct sim_domain *d, uint64_t gfn, const void *page)
{
    int rc = need_ring(d, "xc_mem_paging_load");
    if (rc < 0)
        return rc;
    enum p2m_paging t = p2m_get_paging(d->host_p2m, gfn);
    if (gfn >= p2m_nr_gfns(d->host_p2m) || (t != P2M_PAGING_IN && t != P2M_PAGING_PAGED))
        return sim_set_error(d, -ENOENT, "gfn %#llx cannot be loaded: it is neither paged nor paging_in (Xen: ENOENT)",
                             (unsigned long long)gfn);
    bool copied = false;
    if (!p2m_paging_has_frame(d->host_p2m, gfn)) {
        if (!page)
            return sim_set_error(d, -EINVAL, "gfn %#llx has no frame: loading it needs the page's contents (Xen: EINVAL)",
                                 (unsigned long long)gfn);
        /* p2m_mem_paging_prep allocates the page: within max_pages only. */
        if (d->tot_pages >= d->max_pages)
            return sim_set_error(d, -ENOMEM, "gfn %#llx cannot be loaded: the domain has max_pages (%llu) "
                                 "pages already (Xen: ENOMEM); raise it first", (unsigned long long)gfn,
                                 (unsigned long long)d->max_pages);
        memcpy(d->ram + gfn * CPU_PAGE_SIZE, page, CPU_PAGE_SIZE);
        sim_mem_dirty(d, d->ram + gfn * CPU_PAGE_SIZE);
        d->tot_pages++;
        copied = true;
    }
    /* "Make the page already guest-accessible": ram_rw now (log-dirty is never on). */
    sim_set_paging(d, gfn, P2M_PAGING_NONE, true);
    gfn_changed(d, gfn, copied);
    sim_note(d, SIM_NOTE_ACTION, 0, NULL, "gfn %#llx loaded by the pager: ram_rw", (unsigned long long)gfn);
    paging_wake(d, gfn);
    return 0;
}

int sim_p2m_type(struct sim_domain *d, uint64_t gfn, unsigned *p2mt)
{
    if (gfn >= p2m_nr_gfns(d->host_p2m))
        return sim_set_error(d, -EINVAL, "gfn %#llx is beyond the p2m (%#llx gfns)",
                             (unsigned long long)gfn, (unsigned long long)p2m_nr_gfns(d->host_p2m));
    enum p2m_paging t = p2m_get_paging(d->host_p2m, gfn);
    *p2mt = t != P2M_PAGING_NONE ? (unsigned)t
            : p2m_is_shared(d->host_p2m, gfn) ? SIM_P2MT_RAM_SHARED : SIM_P2MT_RAM_RW;
    return 0;
}

void sim_paging_populate(struct sim_domain *d, struct sim_vcpu *v, uint64_t gfn)
{
    struct sim_monitor *m = &d->paging;
    enum p2m_paging t = p2m_get_paging(d->host_p2m, gfn);
    if (t == P2M_PAGING_NONE)
        return;
    /* "We're paging. There should be a ring." */
    if (!m->ring) {
        sim_domain_crash(d, "vCPU %u touched gfn %#llx (%s) with no paging ring in place", v->id,
                         (unsigned long long)gfn,
                         t == P2M_PAGING_OUT ? "paging_out" : t == P2M_PAGING_PAGED ? "paged" : "paging_in");
        return;
    }
    if (t == P2M_PAGING_IN) {
        /*
         * Already on its way in: no second request.  The vCPU waits until the
         * gfn is ram_rw again (load, or the response to the first request).
         */
        v->paging_wait = true;
        v->paging_gfn = gfn;
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL,
                 "gfn %#llx is already paging_in: no request, vCPU %u waits for the page",
                 (unsigned long long)gfn, v->id);
        return;
    }
    struct vme_msg req;
    memset(&req, 0, sizeof(req));
    req.reason = VME_REASON_MEM_PAGING;
    req.u.paging.gfn = gfn;
    req.u.paging.p2mt = (uint32_t)t; /* the type before paging_in */
    /* A nominated page was never evicted: the pager's evict will fail now. */
    if (t == P2M_PAGING_OUT)
        req.u.paging.flags |= VME_MEM_PAGING_EVICT_FAIL;
    sim_set_paging(d, gfn, P2M_PAGING_IN, p2m_paging_has_frame(d->host_p2m, gfn));
    sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "vCPU %u touched gfn %#llx (%s): paging_in, the pager is asked",
             v->id, (unsigned long long)gfn, t == P2M_PAGING_OUT ? "paging_out" : "paged");
    /* A full ring queues the vCPU with its request (the state change above is already made). */
    if (sim_ring_claim(d, m, v, true, &req) == 0)
        sim_ring_post(d, m, v, true, &req);
}

void sim_paging_populate_foreign(struct sim_domain *d, uint64_t gfn)
{
    if (p2m_get_paging(d->host_p2m, gfn) != P2M_PAGING_PAGED || !d->paging.ring)
        return; /* on its way in already, or nobody to ask (Xen: no ring, no crash for a foreign caller) */
    struct vme_msg req;
    memset(&req, 0, sizeof(req));
    req.reason = VME_REASON_MEM_PAGING;
    req.u.paging.gfn = gfn;
    req.u.paging.p2mt = P2M_PAGING_PAGED;
    if (sim_ring_post_foreign(d, &d->paging, &req) < 0)
        return; /* a full ring: the slot could not be had, the gfn stays paged (Xen returns early too) */
    sim_set_paging(d, gfn, P2M_PAGING_IN, false);
    sim_note(d, SIM_NOTE_ACTION, 0, NULL, "the toolstack touched paged gfn %#llx: paging_in, the pager is asked "
             "(FOREIGN)", (unsigned long long)gfn);
}

void sim_p2m_paging_resume(struct sim_domain *d, const struct vme_msg *rsp)
{
    if (rsp->u.paging.flags & VME_MEM_PAGING_DROP_PAGE)
        return;
    uint64_t gfn = rsp->u.paging.gfn;
    /* Only pages prepared properly, or nominated but never evicted: paging_in with a frame. */
    if (p2m_get_paging(d->host_p2m, gfn) != P2M_PAGING_IN || !p2m_paging_has_frame(d->host_p2m, gfn))
        return;
    sim_set_paging(d, gfn, P2M_PAGING_NONE, true);
    gfn_changed(d, gfn, false);
    sim_note(d, SIM_NOTE_ACTION, rsp->vcpu_id, NULL, "gfn %#llx is ram_rw again (p2m_mem_paging_resume)",
             (unsigned long long)gfn);
    paging_wake(d, gfn);
}
