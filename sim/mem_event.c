/*
 * sim/mem_event.c — mem_access violations and the emulation a response asks
 * for: Xen's hvm_hap_nested_page_fault / p2m_mem_access_check
 * (xen/arch/x86/hvm/hvm.c, xen/arch/x86/mm/mem_access.c), vm_event_emulate_check
 * (xen/arch/x86/vm_event.c) and hvm_vm_event_do_resume (xen/arch/x86/hvm/vm_event.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sim_internal.h"

/* A conversion on the p2m the vCPU runs on (its altp2m view, or the host's). */
static void set_one(struct sim_domain *d, struct sim_vcpu *v, uint64_t gfn, enum p2m_access a)
{
    if (sim_vcpu_set_access(v, gfn, a))
        sim_p2m_changed(d, gfn, 1);
}

void sim_mem_access_fault(struct sim_domain *d, struct sim_vcpu *v, const struct cpu_access *a)
{
    uint64_t gfn = a->gpa >> CPU_PAGE_SHIFT;
    enum p2m_access access;
    /* Judged by the vCPU's view (p2m_mem_access_check on the altp2m in use). */
    if (p2m_get_access(sim_vcpu_p2m(v), gfn, &access) < 0) {
        sim_domain_crash(d, "vCPU %u accessed gfn %#llx, beyond guest RAM", v->id, (unsigned long long)gfn);
        return;
    }
    /* A gfn in the paging path maps nothing, whatever its access: p2m_mem_paging_populate. */
    if (p2m_get_paging(d->host_p2m, gfn) != P2M_PAGING_NONE) {
        sim_paging_populate(d, v, gfn);
        return;
    }
    /*
     * A write to a shared page unshares it first (get_gfn_type_access with
     * P2M_UNSHARE); when no page can be had, the sharing ring is told and the
     * vCPU waits.  What is left is judged by the access type as usual.
     */
    if ((a->kind & P2M_W) && p2m_is_shared(d->host_p2m, gfn)) {
        sim_sharing_write_fault(d, v, gfn);
        if (p2m_is_shared(d->host_p2m, gfn))
            return;
    }
    if (!p2m_access_violates(access, a->kind))
        return; /* a stale translation: the access simply retries */

    /* 1. A write to rx2rw turns it into rw and retries, with no event. */
    if ((a->kind & P2M_W) && access == P2M_ACCESS_RX2RW) {
        set_one(d, v, gfn, P2M_ACCESS_RW);
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL,
                 "write to gfn %#llx (rx2rw): access becomes rw, no event", (unsigned long long)gfn);
        return;
    }
    /* 2. n2rwx becomes rwx; the event is asynchronous and the access goes ahead. */
    bool sync = true;
    if (access == P2M_ACCESS_N2RWX) {
        set_one(d, v, gfn, P2M_ACCESS_RWX);
        sync = false;
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL,
                 "access to gfn %#llx (n2rwx): access becomes rwx, the event is asynchronous",
                 (unsigned long long)gfn);
    }
    /* 3. No listener. */
    if (!d->monitor.ring) {
        if (d->access_required) {
            sim_domain_crash(d, "vCPU %u violated access %s of gfn %#llx with no vm_event listener "
                             "and access required (xc_domain_set_access_required)",
                             v->id, p2m_access_name(access), (unsigned long long)gfn);
            return;
        }
        if (access != P2M_ACCESS_N2RWX) {
            set_one(d, v, gfn, P2M_ACCESS_RWX);
            sim_note(d, SIM_NOTE_ACTION, v->id, NULL,
                     "no vm_event listener: restrictions on gfn %#llx lifted (rwx), access retried",
                     (unsigned long long)gfn);
        }
        return;
    }
    /*
     * 4. inguest_pagefault_disabled with a ring: Xen emulates the instruction instead of
     * reporting a violation of its page walk.  vmisim never gets here with one: the walker's
     * own accesses are not checked then (cpu_set_gpt_unchecked, sim_update_intercept), so the
     * walk completes and only the instruction's own access is judged, as Xen's emulation
     * (send_event) judges it.
     * 5. The request.
     */
    struct vme_msg req;
    memset(&req, 0, sizeof(req));
    req.reason = VME_REASON_MEM_ACCESS;
    req.u.mem_access.gfn = gfn;
    req.u.mem_access.offset = a->gpa & (CPU_PAGE_SIZE - 1);
    if (a->gla_valid) {
        req.u.mem_access.flags |= VME_MEM_ACCESS_GLA_VALID;
        req.u.mem_access.gla = a->gla;
    }
    req.u.mem_access.flags |= a->in_gpt ? VME_MEM_ACCESS_FAULT_IN_GPT : VME_MEM_ACCESS_FAULT_WITH_GLA;
    req.u.mem_access.flags |= a->kind & (VME_MEM_ACCESS_R | VME_MEM_ACCESS_W | VME_MEM_ACCESS_X);
    sim_monitor_traps(d, v, sync, &req);
}

void sim_emulate_check(struct sim_domain *d, struct sim_vcpu *v, const struct vme_msg *rsp)
{
    if (!(rsp->flags & VME_FLAG_EMULATE)) {
        v->resume.emulate_flags = 0;
        return;
    }
    if (rsp->reason == VME_REASON_DESCRIPTOR_ACCESS) {
        /* vm_event_emulate_check: honoured unconditionally for a descriptor access. */
        if (rsp->flags & VME_FLAG_SET_EMUL_READ_DATA) {
            v->resume.emul_read.size = rsp->emul_read.size;
            memcpy(v->resume.emul_read.data, rsp->emul_read.data, sizeof(v->resume.emul_read.data));
        }
        v->resume.emulate_flags = rsp->flags;
        return;
    }
    if (rsp->reason != VME_REASON_MEM_ACCESS) {
        /* SOFTWARE_BREAKPOINT emulation needs SET_EMUL_INSN_DATA, which vmisim does not serve. */
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL,
                 "EMULATE in a %s response does nothing (Xen honours it for MEM_ACCESS and "
                 "DESCRIPTOR_ACCESS here)",
                 vme_reason_name(rsp->reason) ? vme_reason_name(rsp->reason) : "unknown");
        return;
    }
    /*
     * p2m_mem_access_emulate_check: emulate only while the response's R/W/X
     * (the client must echo the request's mem_access) still violates the
     * gfn's current access.  A failed lookup counts as a violation.
     */
    enum p2m_access access;
    bool violation = true;
    if (p2m_get_access(sim_vcpu_p2m(v), rsp->u.mem_access.gfn, &access) == 0)
        violation = p2m_access_violates(access, rsp->u.mem_access.flags);
    if (!violation && !(rsp->u.mem_access.flags & (VME_MEM_ACCESS_R | VME_MEM_ACCESS_W | VME_MEM_ACCESS_X))) {
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL,
                 "EMULATE ignored: the response's u.mem_access carries no R/W/X bits (Xen needs "
                 "the client to echo the request's mem_access), so the instruction re-executes");
        return;
    }
    if (!violation) {
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL,
                 "EMULATE not needed: gfn %#llx no longer forbids the access, so the instruction "
                 "runs natively", (unsigned long long)rsp->u.mem_access.gfn);
        return;
    }
    if (rsp->flags & VME_FLAG_SET_EMUL_READ_DATA) {
        v->resume.emul_read.size = rsp->emul_read.size;
        memcpy(v->resume.emul_read.data, rsp->emul_read.data, sizeof(v->resume.emul_read.data));
    }
    v->resume.emulate_flags = rsp->flags;
}

static void apply_gprs(struct sim_vcpu *v, const struct vme_regs *g)
{
    struct cpu_regs r;
    if (cpu_get_regs(v->cpu, &r) < 0)
        return;
    /* vm_event_set_registers: GPRs, rflags and rip; CRs, segments and MSRs are ignored. */
    r.rax = g->rax; r.rbx = g->rbx; r.rcx = g->rcx; r.rdx = g->rdx;
    r.rsp = g->rsp; r.rbp = g->rbp; r.rsi = g->rsi; r.rdi = g->rdi;
    r.r8 = g->r8; r.r9 = g->r9; r.r10 = g->r10; r.r11 = g->r11;
    r.r12 = g->r12; r.r13 = g->r13; r.r14 = g->r14; r.r15 = g->r15;
    r.rflags = g->rflags;
    r.rip = g->rip;
    cpu_set_regs(v->cpu, &r);
}

static int do_emulation(struct sim_domain *d, struct sim_vcpu *v);

int sim_vcpu_do_resume(struct sim_domain *d, struct sim_vcpu *v)
{
    if (v->resume.set_gprs) {
        v->resume.set_gprs = false;
        apply_gprs(v, &v->resume.gprs);
    }
    int done = do_emulation(d, v);
    if (done < 0)
        return done;
    /* Then the deferred register writes and a pending trap. */
    sim_vcpu_finish_resume(d, v);
    return done;
}

static int do_emulation(struct sim_domain *d, struct sim_vcpu *v)
{
    uint32_t flags = v->resume.emulate_flags;
    if (!flags)
        return 0;
    v->resume.emulate_flags = 0;
    /* The order of the flag descriptions in public/vm_event.h. */
    unsigned how = 0;
    const uint8_t *data = NULL;
    size_t len = 0;
    const char *kind = "EMULATE";
    if (flags & VME_FLAG_SET_EMUL_READ_DATA) {
        how = CPU_EMUL_READ_DATA;
        data = v->resume.emul_read.data;
        /*
         * Xen copies min(access size, size) from a buffer of this capacity; a
         * size beyond the capacity would make Xen read past its buffer, so
         * vmisim clamps it to the capacity (docs/xen-differences.md).
         */
        len = v->resume.emul_read.size;
        if (len > vme_emul_read_max(d->monitor.version))
            len = vme_emul_read_max(d->monitor.version);
        kind = "SET_EMUL_READ_DATA";
    } else if (flags & VME_FLAG_EMULATE_NOWRITE) {
        how = CPU_EMUL_NOWRITE;
        kind = "EMULATE_NOWRITE";
    }
    struct cpu_exit ex;
    int rc = cpu_emulate(v->cpu, how, data, len, &ex);
    if (rc == -E2BIG && d->mon.emul_unimplemented) {
        /*
         * The one emulation vmisim cannot do (more pages than cpu/'s scratch frames): as
         * hvm_emulate_one_vm_event on X86EMUL_UNIMPLEMENTED, hvm_monitor_emul_unimplemented
         * sends EMUL_UNIMPLEMENTED (sync, no payload) and the instruction is not executed.
         */
        struct vme_msg req;
        memset(&req, 0, sizeof(req));
        req.reason = VME_REASON_EMUL_UNIMPLEMENTED;
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "%s: %s cannot be done", kind, cpu_error(v->cpu));
        sim_monitor_traps(d, v, true, &req);
        return 0;
    }
    if (rc < 0)
        return sim_set_error(d, rc, "vCPU %u: emulation failed: %s", v->id, cpu_error(v->cpu));
    int done = 0;
    switch (ex.reason) {
    case CPU_EXIT_STEP:
        v->insns++;
        done = 1;
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "emulated one instruction (%s)", kind);
        break;
    case CPU_EXIT_FAULT:
        v->state = SIM_VCPU_FAULTED;
        snprintf(v->fault, sizeof(v->fault), "vCPU %u: during emulation: %s", v->id, ex.fault.why);
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "%s", v->fault);
        break;
    case CPU_EXIT_HLT:
        v->insns++;
        done = 1;
        v->state = SIM_VCPU_HALTED;
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "emulated HLT: vCPU %u halted", v->id);
        break;
    default:
        /* The instruction did not complete in emulation: the vCPU runs it natively. */
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL,
                 "emulation (%s) did not complete the instruction; it re-executes", kind);
        break;
    }
    return done;
}
