/*
 * sim/vcpu_op.c — bringing vCPUs up and down: Xen's __HYPERVISOR_vcpu_op
 * (xen/common/domain.c do_vcpu_op) for HVM guests, and the same operations
 * for the toolstack and scenarios.
 *
 * Xen's model, followed here: a vCPU is either up or "down" (_VPF_down in
 * v->pause_flags).  A down vCPU never runs, whatever its other pause counts.
 * VCPUOP_initialise gives a not yet initialised vCPU its register state
 * (arch_set_info_hvm_guest with a struct vcpu_hvm_context) and leaves it down;
 * VCPUOP_up wakes an initialised vCPU (-EINVAL otherwise); VCPUOP_down takes
 * one down, and the last vCPU going down shuts the domain down (poweroff).
 * vCPU ids the domain does not have are -ENOENT.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <xen/xen.h>
#include <xen/hvm/hvm_vcpu.h>

#include "hypercall_internal.h"

/* The guest hands Xen's own layout (xen/include/public/hvm/hvm_vcpu.h): keep it frozen. */
_Static_assert(sizeof(struct vcpu_hvm_context) == 128, "vcpu_hvm_context is 128 bytes");
_Static_assert(offsetof(struct vcpu_hvm_context, cpu_regs) == 8, "cpu_regs follows mode and pad");
_Static_assert(offsetof(struct vcpu_hvm_x86_64, cr0) == 80, "x86_64.cr0");
_Static_assert(offsetof(struct vcpu_hvm_x86_32, efer) == 56, "x86_32.efer");
_Static_assert(offsetof(struct vcpu_hvm_x86_32, cs_ar) == 104, "x86_32.cs_ar");

#define X86_CR0_PE 0x1ull
#define X86_CR0_PG 0x80000000ull
#define X86_CR4_PAE 0x20ull
#define X86_EFER_LME 0x100ull
#define X86_EFER_LMA 0x400ull

static struct sim_vcpu *vcpu_of(struct sim_domain *d, unsigned vcpu)
{
    return vcpu < d->nr_vcpus ? &d->vcpus[vcpu] : NULL;
}

int sim_vcpu_up(struct sim_domain *d, unsigned vcpu)
{
    struct sim_vcpu *v = vcpu_of(d, vcpu);
    if (!v)
        return sim_set_error(d, -ENOENT, "no vCPU %u (the domain has %u vCPU(s); Xen: ENOENT)", vcpu,
                             d->nr_vcpus);
    if (!v->initialised)
        return sim_set_error(d, -EINVAL, "vCPU %u has no register state yet: VCPUOP_initialise it "
                             "first (Xen: EINVAL)", vcpu);
    if (v->down) {
        v->down = false;
        sim_note(d, SIM_NOTE_ACTION, vcpu, NULL, "vCPU %u is up", vcpu);
    }
    return 0;
}

int sim_vcpu_down(struct sim_domain *d, unsigned vcpu)
{
    struct sim_vcpu *v = vcpu_of(d, vcpu);
    if (!v)
        return sim_set_error(d, -ENOENT, "no vCPU %u (the domain has %u vCPU(s); Xen: ENOENT)", vcpu,
                             d->nr_vcpus);
    bool other_up = false;
    for (unsigned i = 0; i < d->nr_vcpus; i++)
        other_up |= i != vcpu && !d->vcpus[i].down;
    if (!other_up) {
        /* do_vcpu_op: "Last vcpu going down?" -> domain_shutdown(d, SHUTDOWN_poweroff). */
        if (!d->shutdown) {
            d->shutdown = true;
            d->shutdown_reason = 0;
            sim_note(d, SIM_NOTE_ACTION, vcpu, NULL, "vCPU %u, the last one up, went down: the domain "
                     "shuts down (poweroff), as Xen does", vcpu);
        }
        return 0;
    }
    if (!v->down) {
        v->down = true;
        sim_note(d, SIM_NOTE_ACTION, vcpu, NULL, "vCPU %u is down", vcpu);
    }
    return 0;
}

bool sim_vcpu_is_up(const struct sim_domain *d, unsigned vcpu)
{
    return vcpu < d->nr_vcpus && !d->vcpus[vcpu].down;
}

int sim_vcpu_initialise(struct sim_domain *d, unsigned vcpu, const struct cpu_regs *regs)
{
    struct sim_vcpu *v = vcpu_of(d, vcpu);
    if (!v)
        return sim_set_error(d, -ENOENT, "no vCPU %u (the domain has %u vCPU(s); Xen: ENOENT)", vcpu,
                             d->nr_vcpus);
    if (v->initialised)
        return sim_set_error(d, -EEXIST, "vCPU %u already has its register state (Xen: EEXIST)", vcpu);
    int rc = cpu_set_regs(v->cpu, regs);
    if (rc < 0)
        return sim_set_error(d, rc, "vCPU %u: %s", vcpu, cpu_error(v->cpu));
    /* arch_set_info_hvm_guest: is_initialised = 1 and _VPF_down set; VCPUOP_up wakes it. */
    v->initialised = true;
    v->down = true;
    return 0;
}

/* ---- The hypercall ------------------------------------------------------------------------ */

static int64_t vcpu_target(struct hcall_ctx *c, struct sim_vcpu **out)
{
    /* do_vcpu_op: a vCPU id the domain does not have is -ENOENT. */
    *out = vcpu_of(c->d, (unsigned)c->arg[1]);
    return c->arg[1] >= c->d->nr_vcpus ? -ENOENT : 0;
}

int64_t hcall_pre_vcpu_initialise(struct hcall_ctx *c)
{
    struct sim_vcpu *t;
    int64_t rc = vcpu_target(c, &t);
    if (rc < 0)
        return rc;
    /* copy_from_guest(&ctxt, arg, 1). */
    c->buf_len = sizeof(struct vcpu_hvm_context);
    return hcall_read_guest(c, c->arg[2], c->buf, c->buf_len);
}

/*
 * arch_set_info_hvm_guest's checks and register state.  Where vmisim cannot
 * follow Xen (cpu/ runs one paging mode per domain, segment caches come from
 * the GDT the vCPU was built with) the call is refused with -EINVAL and a
 * note, or the difference is documented (docs/xen-differences.md).
 */
static int64_t hvm_context_regs(struct hcall_ctx *c, const struct vcpu_hvm_context *ctx, struct cpu_regs *r,
                                char *why, size_t whylen)
{
    bool lm = c->d->mode == CPU_MODE_LONG;
    if (ctx->pad != 0) {
        snprintf(why, whylen, "the context's pad field is not zero");
        return -EINVAL;
    }
    if (ctx->mode == VCPU_HVM_MODE_64B) {
        const struct vcpu_hvm_x86_64 *x = &ctx->cpu_regs.x86_64;
        uint64_t top = x->rip >> 47;
        if (top != 0 && top != 0x1ffff) {
            snprintf(why, whylen, "RIP %#" PRIx64 " is not canonical", x->rip);
            return -EINVAL;
        }
        if (!(x->cr0 & X86_CR0_PG) || !(x->cr4 & X86_CR4_PAE) || !(x->efer & X86_EFER_LME)) {
            snprintf(why, whylen, "a 64-bit context needs CR0.PG, CR4.PAE and EFER.LME (cr0 %#" PRIx64
                     ", cr4 %#" PRIx64 ", efer %#" PRIx64 ")", x->cr0, x->cr4, x->efer);
            return -EINVAL;
        }
        if (!lm) {
            snprintf(why, whylen, "vmisim: a 64-bit context in a 32-bit PAE domain (cpu/ runs one paging "
                     "mode per domain)");
            return -EINVAL;
        }
        r->rax = x->rax; r->rcx = x->rcx; r->rdx = x->rdx; r->rbx = x->rbx;
        r->rsp = x->rsp; r->rbp = x->rbp; r->rsi = x->rsi; r->rdi = x->rdi;
        r->rip = x->rip;
        r->rflags = x->rflags | 2; /* bit 1 is always set */
        r->cr0 = x->cr0;
        r->cr3 = x->cr3;
        r->cr4 = x->cr4;
        /* hvm_set_efer: LMA follows LME with paging on. */
        r->efer = x->efer | X86_EFER_LMA;
        return 0;
    }
    if (ctx->mode == VCPU_HVM_MODE_32B) {
        const struct vcpu_hvm_x86_32 *x = &ctx->cpu_regs.x86_32;
        if (lm) {
            snprintf(why, whylen, "vmisim: a 32-bit context in a long-mode domain (cpu/ runs one paging "
                     "mode per domain)");
            return -EINVAL;
        }
        if (!(x->cr0 & X86_CR0_PE) || !(x->cr0 & X86_CR0_PG) || !(x->cr4 & X86_CR4_PAE)) {
            snprintf(why, whylen, "vmisim: a 32-bit PAE domain's vCPU needs CR0.PE, CR0.PG and CR4.PAE "
                     "(cr0 %#" PRIx32 ", cr4 %#" PRIx32 ")", x->cr0, x->cr4);
            return -EINVAL;
        }
        if (x->cs_base || x->ds_base || x->ss_base || x->es_base) {
            snprintf(why, whylen, "vmisim: only flat segments (base 0) are supported in a vCPU context");
            return -EINVAL;
        }
        r->rax = x->eax; r->rcx = x->ecx; r->rdx = x->edx; r->rbx = x->ebx;
        r->rsp = x->esp; r->rbp = x->ebp; r->rsi = x->esi; r->rdi = x->edi;
        r->rip = x->eip;
        r->rflags = x->eflags | 2;
        r->cr0 = x->cr0;
        r->cr3 = x->cr3;
        r->cr4 = x->cr4;
        r->efer = x->efer;
        return 0;
    }
    snprintf(why, whylen, "mode %" PRIu32 " is neither VCPU_HVM_MODE_32B (0) nor VCPU_HVM_MODE_64B (1)",
             ctx->mode);
    return -EINVAL;
}

int64_t hcall_call_vcpu_initialise(struct hcall_ctx *c)
{
    struct sim_vcpu *t = vcpu_of(c->d, (unsigned)c->arg[1]);
    struct vcpu_hvm_context ctx;
    memcpy(&ctx, c->buf, sizeof(ctx));
    if (t->initialised)
        return -EEXIST; /* arch_initialise_vcpu: v->is_initialised ? -EEXIST */
    /*
     * The vCPU keeps the descriptor tables and segment selectors it was built
     * with (Xen loads flat caches with selector 0); registers, control
     * registers and EFER come from the context.
     */
    struct cpu_regs r;
    if (cpu_get_regs(t->cpu, &r) < 0)
        return -EINVAL;
    char why[200];
    int64_t rc = hvm_context_regs(c, &ctx, &r, why, sizeof(why));
    if (rc < 0) {
        sim_note(c->d, SIM_NOTE_ACTION, c->v->id, NULL, "VCPUOP_initialise of vCPU %u refused (EINVAL): %s",
                 t->id, why);
        snprintf(c->wrote, sizeof(c->wrote), "%.150s", why);
        return rc;
    }
    if (sim_vcpu_initialise(c->d, t->id, &r) < 0) {
        sim_note(c->d, SIM_NOTE_ACTION, c->v->id, NULL, "VCPUOP_initialise of vCPU %u refused (EINVAL): %s",
                 t->id, sim_error(c->d));
        return -EINVAL;
    }
    snprintf(c->wrote, sizeof(c->wrote), "vCPU %u: rip %#" PRIx64 ", rsp %#" PRIx64 ", cr3 %#" PRIx64
             " (still down)", t->id, r.rip, r.rsp, r.cr3);
    return 0;
}

int64_t hcall_call_vcpu_up(struct hcall_ctx *c)
{
    struct sim_vcpu *t;
    int64_t rc = vcpu_target(c, &t);
    if (rc < 0)
        return rc;
    if (!t->initialised)
        return -EINVAL;
    return sim_vcpu_up(c->d, t->id) < 0 ? -EINVAL : 0;
}

int64_t hcall_call_vcpu_down(struct hcall_ctx *c)
{
    struct sim_vcpu *t;
    int64_t rc = vcpu_target(c, &t);
    if (rc < 0)
        return rc;
    return sim_vcpu_down(c->d, t->id);
}

int64_t hcall_call_vcpu_is_up(struct hcall_ctx *c)
{
    struct sim_vcpu *t;
    int64_t rc = vcpu_target(c, &t);
    if (rc < 0)
        return rc;
    return t->down ? 0 : 1; /* rc = !(v->pause_flags & VPF_down) */
}
