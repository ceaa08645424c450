/*
 * sim/monitor.c — the vm_event rings as Xen runs them
 * (xen/common/vm_event.c, xen/common/monitor.c: spec §1 and §4): the
 * monitor ring and the paging ring share every piece (struct sim_monitor
 * is one ring; sim/paging.c adds what is paging's own).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

int sim_ring_enable(struct sim_domain *d, struct sim_monitor *m, unsigned version, struct ring_fds *fds)
{
    if (m->ring)
        return sim_set_error(d, -EBUSY, "the %s ring is already enabled (Xen: EBUSY)", m->name);
    if (!vme_version_supported(version))
        return sim_set_error(d, -EINVAL, "vm_event interface version %u is not supported: use 1 or 7", version);
    m->waitq = calloc(d->nr_vcpus, sizeof(*m->waitq));
    if (!m->waitq)
        return sim_set_error(d, -ENOMEM, "out of memory");
    int rc = ring_create(&m->ring, vme_slot_size(version), 0);
    if (rc < 0) {
        free(m->waitq);
        m->waitq = NULL;
        return sim_set_error(d, rc, "cannot create the vm_event %s ring: %s", m->name, strerror(-rc));
    }
    m->version = version;
    m->evtchn = ring_evtchn(m->ring);
    if (d->client)
        evtchn_mask(m->evtchn);
    m->blocked = m->waitq_len = 0;
    m->last_vcpu_wake_up = d->nr_vcpus - 1;
    m->ring_error_noted = false;
    *fds = ring_fds(m->ring);
    return 0;
}

int sim_monitor_enable(struct sim_domain *d, unsigned version, struct ring_fds *fds)
{
    int rc = sim_ring_enable(d, &d->monitor, version, fds);
    if (rc < 0)
        return rc;
    /* vm_event_enable allocates v->arch.vm_event for every vCPU. */
    for (unsigned i = 0; i < d->nr_vcpus; i++) {
        d->vcpus[i].has_vm_event = true;
        memset(&d->vcpus[i].resume, 0, sizeof(d->vcpus[i].resume));
    }
    /* inguest_pagefault_disabled acts only while a ring exists (p2m_mem_access_check). */
    return sim_update_intercept(d);
}

void sim_ring_free(struct sim_monitor *m)
{
    unsigned idx = m->idx;
    const char *name = m->name;
    ring_destroy(m->ring);
    free(m->waitq);
    memset(m, 0, sizeof(*m));
    m->idx = idx;
    m->name = name;
}

void sim_monitor_free(struct sim_domain *d)
{
    sim_ring_free(&d->monitor);
    sim_ring_free(&d->paging);
    sim_ring_free(&d->sharing);
}

int sim_ring_disable(struct sim_domain *d, struct sim_monitor *m)
{
    if (m->waitq_len)
        return sim_set_error(d, -EBUSY, "%u vCPU(s) still wait for a %s ring slot: the ring cannot be disabled (Xen: EBUSY)",
                             m->waitq_len, m->name);
    /* Only the black-eyed vCPUs are released; those awaiting a response stay paused. */
    for (unsigned i = 0; i < d->nr_vcpus; i++)
        d->vcpus[i].ring_blocked &= (uint8_t)~(1u << m->idx);
    sim_ring_free(m);
    return 0;
}

int sim_monitor_disable(struct sim_domain *d)
{
    struct sim_monitor *m = &d->monitor;
    if (!m->ring)
        return 0;
    int rc = sim_ring_disable(d, m);
    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < d->nr_vcpus; i++) {
        struct sim_vcpu *v = &d->vcpus[i];
        /* Freeing v->arch.vm_event drops pending emulation and register writes. */
        v->has_vm_event = false;
        memset(&v->resume, 0, sizeof(v->resume));
    }
    /* arch_monitor_cleanup_domain: every monitor setting goes with the ring. */
    memset(&d->mon, 0, sizeof(d->mon));
    return sim_update_intercept(d);
}

bool sim_monitor_enabled(const struct sim_domain *d)
{
    return d->monitor.ring != NULL;
}

/* Puts a request whose slot is already claimed (the rest of monitor_traps). */
void sim_ring_post(struct sim_domain *d, struct sim_monitor *m, struct sim_vcpu *v, bool sync,
                   struct vme_msg *req)
{
    unsigned char slot[400];
    req->vcpu_id = v->id;
    /* vm_event_put_request always writes the ring's interface version. */
    req->version = m->version;
    if (sync) {
        req->flags |= VME_FLAG_VCPU_PAUSED;
        v->pause_count++; /* vm_event_vcpu_pause */
    }
    /* Only monitor_traps fills the registers and says which altp2m view the vCPU is on. */
    if (m->idx == SIM_RING_MONITOR) {
        sim_fill_regs(v, &req->regs);
        if (d->altp2m_active) {
            req->flags |= VME_FLAG_ALTERNATE_P2M;
            req->altp2m_idx = v->view;
        }
    }
    int rc = vme_encode(m->version, req, slot);
    if (rc < 0) {
        ring_cancel_claim(m->ring);
        if (sync)
            v->pause_count--;
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL,
                 "a %s event cannot be carried by a version %u ring: not sent",
                 vme_reason_name(req->reason) ? vme_reason_name(req->reason) : "unknown", m->version);
        return;
    }
    ring_put_claimed(m->ring, slot);
    ring_push_requests(m->ring);
    /*
     * The "black eye": a guest vCPU that leaves fewer free slots than the
     * domain has vCPUs, and is not paused for this event, is paused until
     * slots free up, so no event it raises later can be lost.
     */
    if (ring_available(m->ring) < d->nr_vcpus && v->pause_count == 0
        && !(v->ring_blocked & (1u << m->idx))) {
        v->ring_blocked |= (uint8_t)(1u << m->idx);
        m->blocked++;
    }
    /* Xen notifies after every request, whatever req_event says. */
    evtchn_notify(m->evtchn);
    d->event_posted = true;
    d->event_vcpu = v->id;
    d->events_in_run++;
    sim_note(d, SIM_NOTE_REQUEST, v->id, req, "request");
}

static void monitor_ring_broken(struct sim_domain *d, struct sim_monitor *m)
{
    if (m->ring_error_noted)
        return;
    m->ring_error_noted = true;
    sim_set_error(d, -EPROTO, "%s", ring_error(m->ring));
    sim_note(d, SIM_NOTE_RING, 0, NULL, "%s", ring_error(m->ring));
}

int sim_ring_claim(struct sim_domain *d, struct sim_monitor *m, struct sim_vcpu *v, bool sync,
                   const struct vme_msg *req)
{
    if (!m->ring)
        return -EOPNOTSUPP;
    int rc = ring_claim(m->ring);
    if (rc < 0) {
        /*
         * Full: the vCPU waits on the ring's wait queue, its request kept.  A
         * broken ring is treated the same way, so nothing is lost while the
         * client is replaced (Xen would read the corrupt indices blindly).
         */
        if (rc == -EPROTO)
            monitor_ring_broken(d, m);
        v->waiting_slot = true;
        v->slot_req = *req;
        v->slot_req_sync = sync;
        m->waitq[m->waitq_len++] = v->id;
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL,
                 "vCPU %u waits for a free %s ring slot (%u requests await responses)", v->id,
                 m->name, ring_nr_outstanding(m->ring));
        return 1;
    }
    return 0;
}

int sim_ring_post_foreign(struct sim_domain *d, struct sim_monitor *m, struct vme_msg *req)
{
    unsigned char slot[400];
    if (!m->ring)
        return -EOPNOTSUPP;
    /* A foreign caller never sleeps for a slot (vm_event_grab_slot with foreign = 1). */
    int rc = ring_claim(m->ring);
    if (rc == -EPROTO)
        monitor_ring_broken(d, m);
    if (rc < 0)
        return rc == -EPROTO ? rc : -EBUSY;
    /* vm_event_put_request: not from the domain's own vCPU, so FOREIGN; no vCPU is paused. */
    req->flags |= VME_FLAG_FOREIGN;
    req->version = m->version;
    req->vcpu_id = 0;
    if ((rc = vme_encode(m->version, req, slot)) < 0) {
        ring_cancel_claim(m->ring);
        return rc;
    }
    ring_put_claimed(m->ring, slot);
    ring_push_requests(m->ring);
    evtchn_notify(m->evtchn);
    d->event_posted = true;
    d->events_in_run++;
    sim_note(d, SIM_NOTE_REQUEST, 0, req, "request (foreign)");
    return 0;
}

int sim_monitor_traps(struct sim_domain *d, struct sim_vcpu *v, bool sync, struct vme_msg *req)
{
    struct sim_monitor *m = &d->monitor;
    if (!m->ring)
        return 0; /* no ring: the event is skipped and the vCPU continues */
    if (sim_ring_claim(d, m, v, sync, req) == 1)
        return 1;
    sim_ring_post(d, m, v, sync, req);
    return sync ? 1 : 0;
}

/* vm_event_wake: waiters on the queue first, then black-eyed vCPUs round robin. */
static void monitor_wake(struct sim_domain *d, struct sim_monitor *m)
{
    while (m->waitq_len && ring_available(m->ring) > 0) {
        struct sim_vcpu *v = &d->vcpus[m->waitq[0]];
        memmove(m->waitq, m->waitq + 1, (m->waitq_len - 1) * sizeof(*m->waitq));
        m->waitq_len--;
        v->waiting_slot = false;
        if (ring_claim(m->ring) == 0)
            sim_ring_post(d, m, v, v->slot_req_sync, &v->slot_req);
    }
    if (m->waitq_len)
        return;
    uint32_t avail = ring_available(m->ring);
    for (unsigned j = 0, i = m->last_vcpu_wake_up + 1; j < d->nr_vcpus && m->blocked && avail;
         j++, i++) {
        struct sim_vcpu *v = &d->vcpus[i % d->nr_vcpus];
        if (v->ring_blocked & (1u << m->idx)) {
            v->ring_blocked &= (uint8_t)~(1u << m->idx);
            avail--;
            m->blocked--;
            m->last_vcpu_wake_up = v->id;
        }
    }
}

/* vm_event_resume's work for one response (spec §1, "Processing order"). */
static void monitor_apply(struct sim_domain *d, struct sim_monitor *m, const struct vme_msg *rsp)
{
    if (rsp->version != m->version) {
        sim_note(d, SIM_NOTE_IGNORED, rsp->vcpu_id, rsp,
                 "response skipped: its version is %u, the ring's interface version is %u "
                 "(Xen logs \"vm_event interface version mismatch\")", rsp->version, m->version);
        return;
    }
    if (rsp->vcpu_id >= d->nr_vcpus) {
        sim_note(d, SIM_NOTE_IGNORED, rsp->vcpu_id, rsp,
                 "response skipped: vcpu_id %u is out of range (the domain has %u vCPU(s))",
                 rsp->vcpu_id, d->nr_vcpus);
        return;
    }
    struct sim_vcpu *v = &d->vcpus[rsp->vcpu_id];
    /* vm_event_resume: p2m_mem_paging_resume comes before the checks on a paused vCPU. */
    if (rsp->reason == VME_REASON_MEM_PAGING)
        sim_p2m_paging_resume(d, rsp);
    if (v->pause_count == 0) {
        sim_note(d, SIM_NOTE_IGNORED, v->id, rsp,
                 "response ignored: vCPU %u is not paused for vm_event (a response to an "
                 "async event, or a duplicate)", v->id);
        return;
    }
    uint32_t known = (1u << VME_FLAG_COUNT) - 1;
    if (rsp->flags & ~known)
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL,
                 "response flags %#x include bits no Xen defines (%#x): ignored, as Xen does",
                 rsp->flags, rsp->flags & ~known);
    /* vm_event_resume's order: emulate check, DENY, single-step, (altp2m), registers, unpause. */
    sim_emulate_check(d, v, rsp);
    sim_register_write_resume(d, v, rsp);
    if (rsp->flags & VME_FLAG_TOGGLE_SINGLESTEP) {
        v->single_step = !v->single_step;
        sim_vcpu_sync_singlestep(v);
    }
    if (rsp->flags & VME_FLAG_ALTERNATE_P2M)
        sim_altp2m_check(d, v, rsp->altp2m_idx);
    if (rsp->flags & VME_FLAG_SET_REGISTERS) {
        v->resume.set_gprs = true;
        v->resume.gprs = rsp->regs;
    }
    sim_note(d, SIM_NOTE_RESPONSE, v->id, rsp, "response");
    if (rsp->flags & VME_FLAG_VCPU_PAUSED)
        v->pause_count--; /* vm_event_vcpu_unpause; the count is > 0 here */
}

static void monitor_resume(struct sim_domain *d, struct sim_monitor *m)
{
    unsigned char slot[400];
    struct vme_msg rsp;
    int rc;
    while ((rc = ring_take_response(m->ring, slot)) == 0) {
        vme_decode(m->version, slot, &rsp);
        monitor_apply(d, m, &rsp);
        monitor_wake(d, m);
    }
    if (rc == -EPROTO)
        monitor_ring_broken(d, m);
}

static void ring_poll(struct sim_domain *d, struct sim_monitor *m)
{
    if (!m->ring)
        return;
    if (d->client) {
        /* An in-process client: our port stays masked (sim_set_client), its notify is a pending bit. */
        if (!evtchn_take_pending(m->evtchn))
            return;
    } else {
        if (evtchn_pending(m->evtchn) <= 0)
            return;
        evtchn_unmask(m->evtchn);
    }
    monitor_resume(d, m);
}

void sim_monitor_poll(struct sim_domain *d)
{
    /* The paging ring first: a page brought back lets vCPUs run before the monitor's responses. */
    ring_poll(d, &d->paging);
    ring_poll(d, &d->sharing);
    ring_poll(d, &d->monitor);
}

int sim_monitor_resume(struct sim_domain *d)
{
    if (!d->monitor.ring)
        return sim_set_error(d, -ENODEV, "no monitor ring is enabled");
    monitor_resume(d, &d->monitor);
    return 0;
}

int sim_sharing_resume(struct sim_domain *d)
{
    if (!d->sharing.ring)
        return sim_set_error(d, -ENODEV, "no sharing ring is enabled");
    monitor_resume(d, &d->sharing);
    return 0;
}

int sim_paging_resume(struct sim_domain *d)
{
    if (!d->paging.ring)
        return sim_set_error(d, -ENODEV, "no paging ring is enabled");
    monitor_resume(d, &d->paging);
    return 0;
}
