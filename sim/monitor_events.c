/*
 * sim/monitor_events.c — the monitor events of intercepted instructions and
 * single-step, with their controls: Xen's xen/arch/x86/monitor.c
 * (arch_monitor_domctl_event), hvm/monitor.c (hvm_monitor_cr, hvm_monitor_msr,
 * hvm_monitor_debug), hvm/hvm.c (hvm_set_cr0/3/4, hvm_msr_write_intercept,
 * hvm_handle_xsetbv), vm_event.c (vm_event_register_write_resume) and
 * hvm/vm_event.c (hvm_vm_event_do_resume): spec §3 and §4.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hypercall_internal.h"
#include "sim_internal.h"

#define INVALID_GFN (~0ull)

/* ---- Controls ---------------------------------------------------------------- */

int sim_update_intercept(struct sim_domain *d)
{
    const struct sim_monitor_ctl *m = &d->mon;
    /* VMCALL/VMMCALL of the domain's hypercall ABI (none: not intercepted). */
    uint32_t mask = hcall_intercept_mask(d->hypercalls);
    if (m->cr_enabled & 7)
        mask |= 1u << CPU_INSN_MOV_CR;
    if (m->cr_enabled & 8)
        mask |= 1u << CPU_INSN_XSETBV;
    if (m->nr_msrs)
        mask |= 1u << CPU_INSN_WRMSR;
    if (m->software_breakpoint)
        mask |= 1u << CPU_INSN_INT3;
    if (m->cpuid)
        mask |= 1u << CPU_INSN_CPUID;
    /* vmx_set_descriptor_access_exiting: the eight instructions of exits 46 and 47. */
    if (m->descriptor_access)
        mask |= 1u << CPU_INSN_LGDT | 1u << CPU_INSN_LIDT | 1u << CPU_INSN_LLDT | 1u << CPU_INSN_LTR
                | 1u << CPU_INSN_SGDT | 1u << CPU_INSN_SIDT | 1u << CPU_INSN_SLDT | 1u << CPU_INSN_STR;
    /* Xen always intercepts #DB on VMX (XSA-156); the monitor only decides who gets it. */
    if (m->debug_exception)
        mask |= 1u << CPU_INSN_INT1 | 1u << CPU_INSN_DB_TRAP;
    /*
     * p2m_mem_access_check emulates a walk's violation only while a monitor ring
     * exists (vm_event_check_ring) and inguest_pagefault_disabled is set.
     */
    bool gpt_unchecked = m->inguest_pagefault_disabled && d->monitor.ring;
    for (unsigned i = 0; i < d->nr_vcpus; i++)
        cpu_set_gpt_unchecked(d->vcpus[i].cpu, gpt_unchecked);
    /* VMFUNC switches views where the mode lets the guest (altp2m_vcpu_update_vmfunc_ve). */
    if (d->altp2m_active && d->altp2m_mode != SIM_ALTP2M_EXTERNAL)
        mask |= 1u << CPU_INSN_VMFUNC;
    if (mask == d->intercept)
        return 0;
    /* A flush of the code cache per vCPU (~20 ms each): only when the monitors change. */
    for (unsigned i = 0; i < d->nr_vcpus; i++) {
        int rc = cpu_set_intercept(d->vcpus[i].cpu, mask);
        if (rc < 0)
            return sim_set_error(d, rc, "vCPU %u: cannot set the intercepts: %s", i,
                                 cpu_error(d->vcpus[i].cpu));
    }
    d->intercept = mask;
    return 0;
}

int sim_monitor_write_ctrlreg(struct sim_domain *d, unsigned index, bool enable, bool sync,
                              uint64_t bitmask, bool onchangeonly)
{
    struct sim_monitor_ctl *m = &d->mon;
    if (index >= 4)
        return sim_set_error(d, -EINVAL, "write_ctrlreg index %u: expected 0 (CR0), 1 (CR3), 2 (CR4) "
                             "or 3 (XCR0) (Xen: EINVAL)", index);
    uint8_t bit = (uint8_t)(1u << index);
    if (!!(m->cr_enabled & bit) == enable)
        return sim_set_error(d, -EEXIST, "write_ctrlreg index %u is already %s (Xen: EEXIST)", index,
                             enable ? "enabled" : "disabled");
    m->cr_sync = sync ? m->cr_sync | bit : m->cr_sync & (uint8_t)~bit;
    m->cr_onchangeonly = onchangeonly ? m->cr_onchangeonly | bit : m->cr_onchangeonly & (uint8_t)~bit;
    if (enable) {
        m->cr_mask[index] = bitmask;
        m->cr_enabled |= bit;
    } else {
        m->cr_mask[index] = 0;
        m->cr_enabled &= (uint8_t)~bit;
    }
    return sim_update_intercept(d);
}

/* monitor_bitmap_for_msr: the range and the bit, or -1 for an MSR outside the three ranges. */
static int msr_slot(uint32_t msr, uint32_t *bit)
{
    static const uint32_t base[SIM_MSR_RANGES] = {0, 0x40000000u, 0xc0000000u};
    for (int i = 0; i < SIM_MSR_RANGES; i++)
        if (msr - base[i] < SIM_MSR_RANGE_SIZE) {
            *bit = msr - base[i];
            return i;
        }
    return -1;
}

static bool msr_test(const struct sim_monitor_ctl *m, bool onchangeonly, uint32_t msr)
{
    uint32_t bit;
    int r = msr_slot(msr, &bit);
    if (r < 0)
        return false;
    const uint8_t *row = onchangeonly ? m->msr_onchangeonly[r] : m->msr_monitored[r];
    return row[bit / 8] >> (bit % 8) & 1;
}

static void msr_assign(uint8_t (*map)[SIM_MSR_RANGE_SIZE / 8], int r, uint32_t bit, bool on)
{
    if (on)
        map[r][bit / 8] |= (uint8_t)(1u << (bit % 8));
    else
        map[r][bit / 8] &= (uint8_t)~(1u << (bit % 8));
}

int sim_monitor_mov_to_msr(struct sim_domain *d, uint32_t msr, bool enable, bool onchangeonly)
{
    struct sim_monitor_ctl *m = &d->mon;
    /* Xen compares with the current status first: disabling an MSR out of range is EEXIST. */
    if (msr_test(m, false, msr) == enable)
        return sim_set_error(d, -EEXIST, "mov_to_msr %#x is already %s (Xen: EEXIST)", msr,
                             enable ? "enabled" : "disabled");
    uint32_t bit;
    int r = msr_slot(msr, &bit);
    if (r < 0)
        return sim_set_error(d, -EINVAL, "MSR %#x cannot be monitored: expected 0-0x1fff, "
                             "0x40000000-0x40001fff or 0xc0000000-0xc0001fff (Xen: EINVAL)", msr);
    msr_assign(m->msr_monitored, r, bit, enable);
    if (enable) {
        msr_assign(m->msr_onchangeonly, r, bit, onchangeonly);
        m->nr_msrs++;
    } else {
        /* Xen's monitor_disable_msr clears only the monitored bit. */
        m->nr_msrs--;
    }
    return sim_update_intercept(d);
}

int sim_monitor_software_breakpoint(struct sim_domain *d, bool enable)
{
    if (d->mon.software_breakpoint == enable)
        return sim_set_error(d, -EEXIST, "software_breakpoint is already %s (Xen: EEXIST)",
                             enable ? "enabled" : "disabled");
    d->mon.software_breakpoint = enable;
    return sim_update_intercept(d);
}

int sim_monitor_singlestep(struct sim_domain *d, bool enable)
{
    if (d->mon.singlestep == enable)
        return sim_set_error(d, -EEXIST, "singlestep is already %s (Xen: EEXIST)",
                             enable ? "enabled" : "disabled");
    d->mon.singlestep = enable;
    return 0;
}

/* arch_monitor_domctl_event, XEN_DOMCTL_MONITOR_EVENT_CPUID. */
int sim_monitor_cpuid(struct sim_domain *d, bool enable)
{
    if (d->mon.cpuid == enable)
        return sim_set_error(d, -EEXIST, "cpuid monitoring is already %s (Xen: EEXIST)",
                             enable ? "enabled" : "disabled");
    d->mon.cpuid = enable;
    return sim_update_intercept(d);
}

/* XEN_DOMCTL_MONITOR_EVENT_DESC_ACCESS (descriptor-table exiting is always available here). */
int sim_monitor_descriptor_access(struct sim_domain *d, bool enable)
{
    if (d->mon.descriptor_access == enable)
        return sim_set_error(d, -EEXIST, "descriptor_access monitoring is already %s (Xen: EEXIST)",
                             enable ? "enabled" : "disabled");
    d->mon.descriptor_access = enable;
    return sim_update_intercept(d);
}

/* XEN_DOMCTL_MONITOR_EVENT_DEBUG_EXCEPTION: sync is kept only while enabled, as Xen. */
int sim_monitor_debug_exceptions(struct sim_domain *d, bool enable, bool sync)
{
    if (d->mon.debug_exception == enable)
        return sim_set_error(d, -EEXIST, "debug_exception monitoring is already %s (Xen: EEXIST)",
                             enable ? "enabled" : "disabled");
    d->mon.debug_exception = enable;
    d->mon.debug_exception_sync = enable && sync;
    return sim_update_intercept(d);
}

/* XEN_DOMCTL_MONITOR_EVENT_INGUEST_PAGEFAULT: xc_monitor_inguest_pagefault(disable). */
int sim_monitor_inguest_pagefault(struct sim_domain *d, bool disable)
{
    if (d->mon.inguest_pagefault_disabled == disable)
        return sim_set_error(d, -EEXIST, "in-guest page faults are already %s (Xen: EEXIST)",
                             disable ? "disabled" : "enabled");
    d->mon.inguest_pagefault_disabled = disable;
    return sim_update_intercept(d);
}

/* XEN_DOMCTL_MONITOR_EVENT_EMUL_UNIMPLEMENTED. */
int sim_monitor_emul_unimplemented(struct sim_domain *d, bool enable)
{
    if (d->mon.emul_unimplemented == enable)
        return sim_set_error(d, -EEXIST, "emul_unimplemented monitoring is already %s (Xen: EEXIST)",
                             enable ? "enabled" : "disabled");
    d->mon.emul_unimplemented = enable;
    return 0;
}

int sim_monitor_control_registers(struct sim_domain *d)
{
    d->mon.control_register_values = true;
    return 0;
}

void sim_vcpu_sync_singlestep(struct sim_vcpu *v)
{
    cpu_set_singlestep(v->cpu, v->single_step);
}

int sim_debug_control_singlestep(struct sim_domain *d, unsigned vcpu, bool on)
{
    if (vcpu >= d->nr_vcpus)
        return sim_set_error(d, -EINVAL, "no vCPU %u (the domain has %u vCPU(s))", vcpu, d->nr_vcpus);
    d->vcpus[vcpu].single_step = on;
    sim_vcpu_sync_singlestep(&d->vcpus[vcpu]);
    return 0;
}

bool sim_vcpu_singlestep(const struct sim_domain *d, unsigned vcpu)
{
    return vcpu < d->nr_vcpus && d->vcpus[vcpu].single_step;
}

int sim_inject_trap(struct sim_domain *d, unsigned vcpu, unsigned vector, unsigned type,
                    int64_t error_code, unsigned insn_len, uint64_t cr2)
{
    if (vcpu >= d->nr_vcpus)
        return sim_set_error(d, -EINVAL, "no vCPU %u (the domain has %u vCPU(s))", vcpu, d->nr_vcpus);
    if (vector > 255 || type > 7 || insn_len > 15)
        return sim_set_error(d, -EINVAL, "inject_trap: vector %u type %u insn_len %u: expected "
                             "vector <= 255, type 0-7, insn_len <= 15", vector, type, insn_len);
    struct sim_vcpu *v = &d->vcpus[vcpu];
    if (v->trap.pending)
        return sim_set_error(d, -EBUSY, "vCPU %u already has a trap to inject (Xen: EBUSY)", vcpu);
    v->trap = (struct sim_trap){.pending = true, .vector = (uint8_t)vector, .type = (uint8_t)type,
                                .insn_len = (uint8_t)insn_len, .error_code = error_code, .cr2 = cr2};
    return 0;
}

/* ---- Events ------------------------------------------------------------------ */

/* gfn_of_rip: CS.base + rip through the guest's page walk, INVALID_GFN when it does not translate. */
static uint64_t gfn_of_rip(struct sim_vcpu *v)
{
    struct cpu_regs r;
    struct cpu_walk w;
    if (cpu_get_regs(v->cpu, &r) < 0)
        return INVALID_GFN;
    uint64_t gla = r.cs.base + r.rip;
    if (cpu_translate(v->cpu, gla, CPU_X, &w) < 0 || w.fault)
        return INVALID_GFN;
    return w.gpa >> CPU_PAGE_SHIFT;
}

/* hvm_monitor_cr's filter. */
static bool cr_fires(const struct sim_monitor_ctl *m, unsigned index, uint64_t new, uint64_t old)
{
    uint8_t bit = (uint8_t)(1u << index);
    return (m->cr_enabled & bit) && (!(m->cr_onchangeonly & bit) || new != old)
           && ((new ^ old) & ~m->cr_mask[index]) != 0;
}

static bool msr_fires(const struct sim_monitor_ctl *m, uint32_t msr, uint64_t new, uint64_t old)
{
    return msr_test(m, false, msr) && (!msr_test(m, true, msr) || new != old);
}

static unsigned cr_index(unsigned cr)
{
    return cr == 0 ? SIM_CTRLREG_CR0 : cr == 3 ? SIM_CTRLREG_CR3 : SIM_CTRLREG_CR4;
}

static uint64_t *cr_field(struct cpu_regs *r, unsigned cr)
{
    return cr == 0 ? &r->cr0 : cr == 3 ? &r->cr3 : &r->cr4;
}

bool sim_insn_wants_exit(struct sim_domain *d, struct sim_vcpu *v, const struct cpu_insn *in)
{
    const struct sim_monitor_ctl *m = &d->mon;
    struct cpu_regs r;
    switch (in->kind) {
    case CPU_INSN_MOV_CR:
        if (in->cr != 0 && in->cr != 3 && in->cr != 4)
            return false;
        if (cpu_get_regs(v->cpu, &r) < 0)
            return true;
        return cr_fires(m, cr_index(in->cr), in->value, *cr_field(&r, in->cr));
    case CPU_INSN_XSETBV:
        if (in->index != 0 || cpu_get_regs(v->cpu, &r) < 0 || !(r.cr4 & (1ull << 18)))
            return false; /* cpu/ raises #UD as without the intercept */
        return cr_fires(m, SIM_CTRLREG_XCR0, in->value, r.xcr0);
    case CPU_INSN_WRMSR:
        return msr_test(m, false, in->index);
    case CPU_INSN_INT3:
        return m->software_breakpoint;
    case CPU_INSN_CPUID:
        return m->cpuid;
    case CPU_INSN_LGDT: case CPU_INSN_LIDT: case CPU_INSN_LLDT: case CPU_INSN_LTR:
    case CPU_INSN_SGDT: case CPU_INSN_SIDT: case CPU_INSN_SLDT: case CPU_INSN_STR:
        return m->descriptor_access;
    case CPU_INSN_INT1:
    case CPU_INSN_DB_TRAP:
        return m->debug_exception;
    case CPU_INSN_VMFUNC:
        return (d->intercept >> CPU_INSN_VMFUNC) & 1;
    case CPU_INSN_VMCALL:
    case CPU_INSN_VMMCALL:
        /* Hypercalls are made outside the engine (sim/hypercall.c). */
        return hcall_is_hypercall(d, in);
    default:
        return false;
    }
}

/* The instruction's own effect, done by the hypervisor: RIP moves past it. */
static int retire(struct sim_vcpu *v, const struct cpu_insn *in)
{
    int rc = cpu_set_rip(v->cpu, in->rip + in->len);
    return rc < 0 ? rc : 1;
}

static int write_cr(struct sim_domain *d, struct sim_vcpu *v, unsigned cr, uint64_t value)
{
    struct cpu_regs r;
    int rc = cpu_get_regs(v->cpu, &r);
    if (rc == 0) {
        *cr_field(&r, cr) = value;
        rc = cpu_set_regs(v->cpu, &r);
    }
    if (rc < 0)
        return sim_set_error(d, rc, "vCPU %u: cannot write CR%u: %s", v->id, cr, cpu_error(v->cpu));
    return 0;
}

static int intercept_cr(struct sim_domain *d, struct sim_vcpu *v, const struct cpu_insn *in)
{
    struct cpu_regs r;
    int rc = cpu_get_regs(v->cpu, &r);
    if (rc < 0)
        return sim_set_error(d, rc, "vCPU %u: %s", v->id, cpu_error(v->cpu));
    unsigned index = in->kind == CPU_INSN_XSETBV ? SIM_CTRLREG_XCR0 : cr_index(in->cr);
    uint64_t old = in->kind == CPU_INSN_XSETBV ? r.xcr0 : *cr_field(&r, in->cr);
    bool deferred = false;
    if (cr_fires(&d->mon, index, in->value, old)) {
        struct vme_msg req;
        memset(&req, 0, sizeof(req));
        req.reason = VME_REASON_WRITE_CTRLREG;
        req.u.write_ctrlreg.index = index;
        req.u.write_ctrlreg.new_value = in->value;
        req.u.write_ctrlreg.old_value = old;
        bool sync = d->mon.cr_sync & (1u << index);
        rc = sim_monitor_traps(d, v, sync, &req);
        /* hvm_monitor_cr: defer when monitor_traps >= 0 and op 4 was issued; never XCR0. */
        deferred = rc >= 0 && d->mon.control_register_values && v->has_vm_event
                   && index != SIM_CTRLREG_XCR0;
    }
    if (in->kind == CPU_INSN_XSETBV) {
        r.xcr0 = in->value;
        r.rip = in->rip + in->len;
        rc = cpu_set_regs(v->cpu, &r);
        return rc < 0 ? sim_set_error(d, rc, "vCPU %u: %s", v->id, cpu_error(v->cpu)) : 1;
    }
    if (deferred) {
        struct sim_resume *s = &v->resume;
        if (in->cr == 0) { s->do_cr0 = true; s->cr0 = in->value; }
        else if (in->cr == 3) { s->do_cr3 = true; s->cr3 = in->value; }
        else { s->do_cr4 = true; s->cr4 = in->value; }
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL,
                 "the write of %#llx to CR%u is deferred until the response (monitor op 4)",
                 (unsigned long long)in->value, in->cr);
        return retire(v, in);
    }
    if ((rc = write_cr(d, v, in->cr, in->value)) < 0)
        return rc;
    return retire(v, in);
}

static int intercept_msr(struct sim_domain *d, struct sim_vcpu *v, const struct cpu_insn *in)
{
    uint64_t old;
    if (cpu_get_msr(v->cpu, in->index, &old) < 0) {
        /* hvm_msr_write_intercept: the old value cannot be read: the write fails, no event. */
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL,
                 "WRMSR %#x: the MSR cannot be read, so the write fails with #GP(0) and no event",
                 in->index);
        int rc = cpu_inject(v->cpu, 13, 0, 0);
        if (rc < 0) {
            v->state = SIM_VCPU_FAULTED;
            snprintf(v->fault, sizeof(v->fault), "vCPU %u: %s", v->id, cpu_error(v->cpu));
        }
        return 1;
    }
    bool deferred = false;
    if (msr_fires(&d->mon, in->index, in->value, old)) {
        struct vme_msg req;
        memset(&req, 0, sizeof(req));
        req.reason = VME_REASON_MOV_TO_MSR;
        req.u.mov_to_msr.msr = in->index;
        req.u.mov_to_msr.new_value = in->value;
        req.u.mov_to_msr.old_value = old;
        int rc = sim_monitor_traps(d, v, true, &req);
        deferred = rc >= 0 && d->mon.control_register_values && v->has_vm_event;
    }
    if (deferred) {
        v->resume.do_msr = true;
        v->resume.msr = in->index;
        v->resume.msr_value = in->value;
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL,
                 "the write of %#llx to MSR %#x is deferred until the response (monitor op 4)",
                 (unsigned long long)in->value, in->index);
        return retire(v, in);
    }
    int rc = cpu_set_msr(v->cpu, in->index, in->value);
    if (rc < 0)
        return sim_set_error(d, rc, "vCPU %u: cannot write MSR %#x: %s", v->id, in->index,
                             cpu_error(v->cpu));
    return retire(v, in);
}

/* Delivers a trap now (the vCPU is entering): software types return past the instruction. */
static void deliver_trap(struct sim_domain *d, struct sim_vcpu *v, const struct sim_trap *t)
{
    if (t->type >= SIM_ET_SW_INT && t->type <= SIM_ET_SW_EXC)
        cpu_set_rip(v->cpu, cpu_rip(v->cpu) + t->insn_len);
    int rc = cpu_inject(v->cpu, t->vector, t->error_code, t->cr2);
    if (rc < 0) {
        v->state = SIM_VCPU_FAULTED;
        snprintf(v->fault, sizeof(v->fault), "vCPU %u: injected trap: %s", v->id, cpu_error(v->cpu));
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "%s", v->fault);
        return;
    }
    sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "injected vector %u (type %u) into vCPU %u", t->vector,
             t->type, v->id);
}

static int intercept_int3(struct sim_domain *d, struct sim_vcpu *v, const struct cpu_insn *in)
{
    struct vme_msg req;
    memset(&req, 0, sizeof(req));
    req.reason = VME_REASON_SOFTWARE_BREAKPOINT;
    req.u.debug.gfn = gfn_of_rip(v);
    req.u.debug.type = SIM_ET_SW_EXC;
    req.u.debug.insn_length = in->len;
    int rc = sim_monitor_traps(d, v, true, &req);
    if (rc == 0) {
        /* No ring: Xen propagates #BP to the guest (vmx_propagate_intr). */
        struct sim_trap t = {.pending = true, .vector = 3, .type = SIM_ET_SW_EXC, .insn_len = in->len,
                             .error_code = -1};
        deliver_trap(d, v, &t);
        return 1;
    }
    /* Delivered: RIP stays on the INT3; the client re-injects or moves the vCPU on. */
    return 0;
}

/*
 * Executes the intercepted instruction as without the intercept: one step of
 * cpu/ (the answer cpu_insn_execute).  Returns the instructions completed or -errno.
 */
static int execute_one(struct sim_domain *d, struct sim_vcpu *v)
{
    cpu_insn_execute(v->cpu);
    struct cpu_exit ex;
    bool step = v->single_step;
    cpu_set_singlestep(v->cpu, true);
    int rc = cpu_run(v->cpu, 1, &ex);
    cpu_set_singlestep(v->cpu, step);
    if (rc < 0)
        return sim_set_error(d, rc, "vCPU %u: %s", v->id, cpu_error(v->cpu));
    if (ex.reason == CPU_EXIT_FAULT) {
        v->state = SIM_VCPU_FAULTED;
        snprintf(v->fault, sizeof(v->fault), "vCPU %u: %s", v->id, ex.fault.why);
    }
    return (int)ex.insns;
}

/*
 * CPUID: hvm_vmexit_cpuid (xen/arch/x86/hvm/hvm.c) puts the results in
 * rax..rdx first, then hvm_monitor_cpuid (hvm/monitor.c) sends the event
 * (always sync) with leaf and subleaf as they were; vmx.c advances RIP only
 * when no event was sent (rc == 0).  The results are Unicorn's CPUID.
 */
static int intercept_cpuid(struct sim_domain *d, struct sim_vcpu *v, const struct cpu_insn *in)
{
    int done = execute_one(d, v);
    if (done <= 0 || v->state != SIM_VCPU_RUNNABLE)
        return done;
    cpu_set_rip(v->cpu, in->rip); /* the event's registers show RIP at the CPUID */
    struct vme_msg req;
    memset(&req, 0, sizeof(req));
    req.reason = VME_REASON_CPUID;
    req.u.cpuid.insn_length = in->len;
    req.u.cpuid.leaf = in->index;
    req.u.cpuid.subleaf = in->sub;
    if (sim_monitor_traps(d, v, true, &req) > 0)
        return 0; /* the client moves RIP on (SET_REGISTERS rip + insn_length) */
    return retire(v, in); /* no ring: update_guest_eip */
}

/* Exit 46 (GDTR/IDTR) or 47 (LDTR/TR): the descriptor of vm_event.h (1 IDTR, 2 GDTR, 3 LDTR, 4 TR). */
static uint8_t desc_of(enum cpu_insn_kind k)
{
    switch (k) {
    case CPU_INSN_LIDT: case CPU_INSN_SIDT: return 1;
    case CPU_INSN_LGDT: case CPU_INSN_SGDT: return 2;
    case CPU_INSN_LLDT: case CPU_INSN_SLDT: return 3;
    default: return 4;
    }
}

/*
 * vmx_handle_descriptor_access -> hvm_descriptor_access_intercept ->
 * hvm_monitor_descriptor_access (sync): the instruction is not executed and
 * RIP stays on it; EMULATE in the response executes it at resume
 * (sim_emulate_check), otherwise the guest runs it again and it exits again.
 */
static int intercept_desc(struct sim_domain *d, struct sim_vcpu *v, const struct cpu_insn *in)
{
    struct vme_msg req;
    memset(&req, 0, sizeof(req));
    req.reason = VME_REASON_DESCRIPTOR_ACCESS;
    req.u.desc.instr_info = in->instr_info;
    req.u.desc.exit_qualification = in->displacement;
    req.u.desc.descriptor = desc_of(in->kind);
    req.u.desc.is_write = (in->instr_info >> 29) & 1; /* instr_write */
    if (sim_monitor_traps(d, v, true, &req) > 0)
        return 0;
    /*
     * No ring: Xen's monitor_traps returns 0 and the instruction is neither
     * emulated nor retired, so the guest would exit on it forever; vmisim
     * executes it instead (docs/xen-differences.md).
     */
    return execute_one(d, v);
}

/*
 * A #DB: vmx.c's TRAP_debug case -> hvm_monitor_debug(HVM_MONITOR_DEBUG_EXCEPTION)
 * with the interruption type (5 for ICEBP, 3 for a single-step trap), the
 * instruction length only for type >= 4, pending_dbg 0 (4.17 passes 0).  When
 * monitor_traps returns 0 (no ring, or an async event) the #DB is delivered as
 * vmx_propagate_intr does; a sync event leaves it to the client.
 */
static int intercept_debug(struct sim_domain *d, struct sim_vcpu *v, const struct cpu_insn *in)
{
    bool icebp = in->kind == CPU_INSN_INT1;
    struct vme_msg req;
    memset(&req, 0, sizeof(req));
    req.reason = VME_REASON_DEBUG_EXCEPTION;
    req.u.debug.gfn = gfn_of_rip(v);
    req.u.debug.type = icebp ? SIM_ET_PRI_SW_EXC : SIM_ET_HW_EXC;
    req.u.debug.insn_length = icebp ? in->len : 0;
    req.u.debug.pending_dbg = 0;
    if (sim_monitor_traps(d, v, d->mon.debug_exception_sync, &req) > 0)
        return 0; /* RIP at the ICEBP, or after the stepped instruction: the client re-injects */
    struct sim_trap t = {.pending = true, .vector = 1, .type = req.u.debug.type,
                         .insn_len = (uint8_t)req.u.debug.insn_length, .error_code = -1};
    deliver_trap(d, v, &t);
    return icebp ? 1 : 0; /* a trap after the stepped instruction adds none of its own */
}

int sim_insn_intercept(struct sim_domain *d, struct sim_vcpu *v, const struct cpu_insn *in)
{
    switch (in->kind) {
    case CPU_INSN_MOV_CR:
    case CPU_INSN_XSETBV:
        if (sim_insn_wants_exit(d, v, in))
            return intercept_cr(d, v, in);
        break;
    case CPU_INSN_WRMSR:
        if (sim_insn_wants_exit(d, v, in))
            return intercept_msr(d, v, in);
        break;
    case CPU_INSN_INT3:
        if (d->mon.software_breakpoint)
            return intercept_int3(d, v, in);
        break;
    case CPU_INSN_VMFUNC:
        if (sim_insn_wants_exit(d, v, in))
            return sim_altp2m_vmfunc(d, v, in);
        break;
    case CPU_INSN_CPUID:
        if (d->mon.cpuid)
            return intercept_cpuid(d, v, in);
        break;
    case CPU_INSN_LGDT: case CPU_INSN_LIDT: case CPU_INSN_LLDT: case CPU_INSN_LTR:
    case CPU_INSN_SGDT: case CPU_INSN_SIDT: case CPU_INSN_SLDT: case CPU_INSN_STR:
        if (d->mon.descriptor_access)
            return intercept_desc(d, v, in);
        break;
    case CPU_INSN_INT1:
    case CPU_INSN_DB_TRAP:
        if (d->mon.debug_exception)
            return intercept_debug(d, v, in);
        if (in->kind == CPU_INSN_DB_TRAP) {
            /* Intercepted no more (the monitor went off meanwhile): deliver it as the hardware. */
            struct sim_trap t = {.pending = true, .vector = 1, .type = SIM_ET_HW_EXC, .error_code = -1};
            deliver_trap(d, v, &t);
            return 0;
        }
        break;
    case CPU_INSN_VMCALL:
    case CPU_INSN_VMMCALL:
        if (hcall_is_hypercall(d, in))
            return hcall_dispatch(d, v, in);
        break;
    default:
        break;
    }
    /* Nothing for the monitor: the instruction executes as without the intercept. */
    return execute_one(d, v);
}

void sim_singlestep_done(struct sim_domain *d, struct sim_vcpu *v)
{
    if (!v->single_step || !d->mon.singlestep)
        return;
    struct vme_msg req;
    memset(&req, 0, sizeof(req));
    req.reason = VME_REASON_SINGLESTEP;
    req.u.debug.gfn = gfn_of_rip(v);
    sim_monitor_traps(d, v, true, &req);
}

void sim_register_write_resume(struct sim_domain *d, struct sim_vcpu *v, const struct vme_msg *rsp)
{
    if (!(rsp->flags & VME_FLAG_DENY))
        return;
    struct sim_resume *s = &v->resume;
    const char *what = NULL;
    if (rsp->reason == VME_REASON_MOV_TO_MSR) {
        what = s->do_msr ? "MSR" : NULL;
        s->do_msr = false;
    } else if (rsp->reason == VME_REASON_WRITE_CTRLREG) {
        switch (rsp->u.write_ctrlreg.index) {
        case SIM_CTRLREG_CR0: what = s->do_cr0 ? "CR0" : NULL; s->do_cr0 = false; break;
        case SIM_CTRLREG_CR3: what = s->do_cr3 ? "CR3" : NULL; s->do_cr3 = false; break;
        case SIM_CTRLREG_CR4: what = s->do_cr4 ? "CR4" : NULL; s->do_cr4 = false; break;
        default: break;
        }
    }
    if (what)
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "DENY: the deferred %s write is cancelled", what);
    else
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "DENY: no deferred write to cancel (nothing happens)");
}

void sim_vcpu_finish_resume(struct sim_domain *d, struct sim_vcpu *v)
{
    struct sim_resume *s = &v->resume;
    /* hvm_vm_event_do_resume: CR0, CR4, CR3, then the MSR. */
    if (s->do_cr0) {
        s->do_cr0 = false;
        write_cr(d, v, 0, s->cr0);
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "deferred write: CR0 = %#llx", (unsigned long long)s->cr0);
    }
    if (s->do_cr4) {
        s->do_cr4 = false;
        write_cr(d, v, 4, s->cr4);
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "deferred write: CR4 = %#llx", (unsigned long long)s->cr4);
    }
    if (s->do_cr3) {
        s->do_cr3 = false;
        write_cr(d, v, 3, s->cr3);
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "deferred write: CR3 = %#llx", (unsigned long long)s->cr3);
    }
    if (s->do_msr) {
        s->do_msr = false;
        if (cpu_set_msr(v->cpu, s->msr, s->msr_value) < 0)
            deliver_trap(d, v, &(struct sim_trap){.pending = true, .vector = 13, .type = SIM_ET_HW_EXC,
                                                  .error_code = 0});
        else
            sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "deferred write: MSR %#x = %#llx", s->msr,
                     (unsigned long long)s->msr_value);
    }
    if (v->trap.pending && v->state == SIM_VCPU_RUNNABLE) {
        struct sim_trap t = v->trap;
        v->trap.pending = false;
        deliver_trap(d, v, &t);
    }
}
