/*
 * sim/inject.c — the hypervisor's own script (inject_internal.h): requests it
 * raises and guest memory it writes by itself, at instruction counts, for a
 * scenario's `hypervisor:` section and `vmisim fuzz-client`.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

/* The highest reason a step may name: IO_INSTRUCTION (16), as client.events[].expect.reason. */
#define INJECT_REASON_MAX 16u

static const char *const field_names[INJECT_F_COUNT] = {
    [INJECT_F_GFN] = "gfn", [INJECT_F_OFFSET] = "offset", [INJECT_F_GLA] = "gla",
    [INJECT_F_ACCESS] = "access", [INJECT_F_GLA_VALID] = "gla_valid", [INJECT_F_FAULT] = "fault",
    [INJECT_F_ACCESS_FLAGS] = "access_flags", [INJECT_F_INDEX] = "index",
    [INJECT_F_NEW_VALUE] = "new_value", [INJECT_F_OLD_VALUE] = "old_value", [INJECT_F_MSR] = "msr",
    [INJECT_F_INSN_LENGTH] = "insn_length", [INJECT_F_TYPE] = "type",
    [INJECT_F_PENDING_DBG] = "pending_dbg", [INJECT_F_LEAF] = "leaf", [INJECT_F_SUBLEAF] = "subleaf",
    [INJECT_F_DESCRIPTOR] = "descriptor", [INJECT_F_IS_WRITE] = "is_write",
    [INJECT_F_INSTR_INFO] = "instr_info", [INJECT_F_EXIT_QUALIFICATION] = "exit_qualification",
    [INJECT_F_VECTOR] = "vector", [INJECT_F_ERROR_CODE] = "error_code", [INJECT_F_CR2] = "cr2",
    [INJECT_F_EXIT_REASON] = "exit_reason", [INJECT_F_QUALIFICATION] = "qualification",
};

const char *inject_field_name(unsigned field)
{
    return field < INJECT_F_COUNT ? field_names[field] : NULL;
}

#define F(name) (1u << INJECT_F_##name)

/*
 * What Xen 4.17's vm_event_request_t carries for each reason (public/vm_event.h),
 * as far as vmisim's codec writes it: u.software_breakpoint is written as gfn,
 * insn_length and type (no pending_dbg), so a breakpoint takes only those.
 */
uint32_t inject_fields_allowed(unsigned reason)
{
    switch (reason) {
    case VME_REASON_MEM_ACCESS:
        return F(GFN) | F(OFFSET) | F(GLA) | F(ACCESS) | F(GLA_VALID) | F(FAULT) | F(ACCESS_FLAGS);
    case VME_REASON_WRITE_CTRLREG:
        return F(INDEX) | F(NEW_VALUE) | F(OLD_VALUE);
    case VME_REASON_MOV_TO_MSR:
        return F(MSR) | F(NEW_VALUE) | F(OLD_VALUE);
    case VME_REASON_SOFTWARE_BREAKPOINT:
        return F(GFN) | F(INSN_LENGTH) | F(TYPE);
    case VME_REASON_DEBUG_EXCEPTION:
        return F(GFN) | F(INSN_LENGTH) | F(TYPE) | F(PENDING_DBG);
    case VME_REASON_SINGLESTEP:
        return F(GFN);
    case VME_REASON_CPUID:
        return F(LEAF) | F(SUBLEAF) | F(INSN_LENGTH);
    case VME_REASON_DESCRIPTOR_ACCESS:
        return F(DESCRIPTOR) | F(IS_WRITE) | F(INSTR_INFO) | F(EXIT_QUALIFICATION);
    case VME_REASON_INTERRUPT:
        return F(VECTOR) | F(TYPE) | F(ERROR_CODE) | F(CR2);
    case VME_REASON_VMEXIT:
        return F(EXIT_REASON) | F(QUALIFICATION);
    default: /* UNKNOWN, GUEST_REQUEST, PRIVILEGED_CALL, EMUL_UNIMPLEMENTED, IO_INSTRUCTION */
        return 0;
    }
}

uint64_t inject_field_max(unsigned reason, unsigned field)
{
    switch (field) {
    case INJECT_F_ACCESS:
        return 7;
    case INJECT_F_GLA_VALID:
    case INJECT_F_IS_WRITE:
        return 1;
    case INJECT_F_FAULT:
        return VME_MEM_ACCESS_FAULT_IN_GPT;
    case INJECT_F_TYPE:
        /* vm_event_debug.type is a uint8_t; vm_event_interrupt_x86.type a uint32_t. */
        return reason == VME_REASON_INTERRUPT ? UINT32_MAX : UINT8_MAX;
    case INJECT_F_DESCRIPTOR:
        return UINT8_MAX;
    case INJECT_F_ACCESS_FLAGS:
    case INJECT_F_INDEX:
    case INJECT_F_INSN_LENGTH:
    case INJECT_F_LEAF:
    case INJECT_F_SUBLEAF:
    case INJECT_F_INSTR_INFO:
    case INJECT_F_VECTOR:
    case INJECT_F_ERROR_CODE:
        return UINT32_MAX;
    default:
        return UINT64_MAX;
    }
}

void inject_build_request(const struct inject_step *st, struct vme_msg *req)
{
    const uint64_t *f = st->field;
    memset(req, 0, sizeof(*req));
    req->reason = st->reason;
    switch (st->reason) {
    case VME_REASON_MEM_ACCESS:
        req->u.mem_access.gfn = f[INJECT_F_GFN];
        req->u.mem_access.offset = f[INJECT_F_OFFSET];
        req->u.mem_access.gla = f[INJECT_F_GLA];
        if (st->given & F(ACCESS_FLAGS))
            req->u.mem_access.flags = (uint32_t)f[INJECT_F_ACCESS_FLAGS];
        else
            req->u.mem_access.flags = (uint32_t)((f[INJECT_F_ACCESS] & 7)
                                                 | (f[INJECT_F_GLA_VALID] ? VME_MEM_ACCESS_GLA_VALID : 0)
                                                 | (f[INJECT_F_FAULT] & (VME_MEM_ACCESS_FAULT_WITH_GLA
                                                                         | VME_MEM_ACCESS_FAULT_IN_GPT)));
        break;
    case VME_REASON_WRITE_CTRLREG:
        req->u.write_ctrlreg.index = (uint32_t)f[INJECT_F_INDEX];
        req->u.write_ctrlreg.new_value = f[INJECT_F_NEW_VALUE];
        req->u.write_ctrlreg.old_value = f[INJECT_F_OLD_VALUE];
        break;
    case VME_REASON_MOV_TO_MSR:
        req->u.mov_to_msr.msr = f[INJECT_F_MSR];
        req->u.mov_to_msr.new_value = f[INJECT_F_NEW_VALUE];
        req->u.mov_to_msr.old_value = f[INJECT_F_OLD_VALUE];
        break;
    case VME_REASON_SOFTWARE_BREAKPOINT:
    case VME_REASON_DEBUG_EXCEPTION:
    case VME_REASON_SINGLESTEP:
        req->u.debug.gfn = f[INJECT_F_GFN];
        req->u.debug.insn_length = (uint32_t)f[INJECT_F_INSN_LENGTH];
        req->u.debug.type = (uint8_t)f[INJECT_F_TYPE];
        req->u.debug.pending_dbg = f[INJECT_F_PENDING_DBG];
        break;
    case VME_REASON_CPUID:
        req->u.cpuid.insn_length = (uint32_t)f[INJECT_F_INSN_LENGTH];
        req->u.cpuid.leaf = (uint32_t)f[INJECT_F_LEAF];
        req->u.cpuid.subleaf = (uint32_t)f[INJECT_F_SUBLEAF];
        break;
    case VME_REASON_DESCRIPTOR_ACCESS:
        req->u.desc.descriptor = (uint8_t)f[INJECT_F_DESCRIPTOR];
        req->u.desc.is_write = f[INJECT_F_IS_WRITE] ? 1 : 0;
        req->u.desc.instr_info = (uint32_t)f[INJECT_F_INSTR_INFO];
        req->u.desc.exit_qualification = f[INJECT_F_EXIT_QUALIFICATION];
        break;
    case VME_REASON_INTERRUPT:
        req->u.interrupt.vector = (uint32_t)f[INJECT_F_VECTOR];
        req->u.interrupt.type = (uint32_t)f[INJECT_F_TYPE];
        req->u.interrupt.error_code = (uint32_t)f[INJECT_F_ERROR_CODE];
        req->u.interrupt.cr2 = f[INJECT_F_CR2];
        break;
    case VME_REASON_VMEXIT:
        req->u.vmexit.reason = f[INJECT_F_EXIT_REASON];
        req->u.vmexit.qualification = f[INJECT_F_QUALIFICATION];
        break;
    default:
        break;
    }
}

#undef F

/* ---- The script ------------------------------------------------------------ */

static void script_free(struct sim_inject *in)
{
    free(in->steps);
    free(in->outcome);
    free(in->at);
    free(in->bytes);
    memset(in, 0, sizeof(*in));
}

void inject_free(struct sim_domain *d)
{
    script_free(&d->inject);
}

/* Can domain d run step k?  0, or -EINVAL with sim_error saying why. */
static int check_step(struct sim_domain *d, const struct inject_step *st, size_t k)
{
    if (st->kind == INJECT_EVENT) {
        if (st->vcpu >= d->nr_vcpus)
            return sim_set_error(d, -EINVAL, "hypervisor step %zu: vCPU %" PRIu32 " does not exist (the "
                                 "domain has %u vCPU(s))", k, st->vcpu, d->nr_vcpus);
        if (st->reason > INJECT_REASON_MAX || st->reason == VME_REASON_MEM_PAGING
            || st->reason == VME_REASON_MEM_SHARING)
            return sim_set_error(d, -EINVAL, "hypervisor step %zu: reason %" PRIu32 " cannot be injected "
                                 "(0-16, and MEM_PAGING and MEM_SHARING belong to their own rings)", k,
                                 st->reason);
        return 0;
    }
    if (st->kind == INJECT_WRITE) {
        if (st->gpa > d->ram_size || st->size > d->ram_size - st->gpa)
            return sim_set_error(d, -EINVAL, "hypervisor step %zu: a write of %" PRIu64 " byte(s) at gpa %#"
                                 PRIx64 " reaches beyond guest RAM (%#" PRIx64 " bytes)", k, st->size,
                                 st->gpa, d->ram_size);
        return 0;
    }
    return sim_set_error(d, -EINVAL, "hypervisor step %zu: unknown kind %d (expected an event or a write)",
                         k, (int)st->kind);
}

int inject_set(struct sim_domain *d, const struct inject_step *steps, size_t n)
{
    if (d->inject.polling)
        return sim_set_error(d, -EBUSY, "the script cannot be replaced while its steps run (from an "
                             "observer's note of a step); replace it after sim_run returns");
    if (n > INJECT_MAX_STEPS)
        return sim_set_error(d, -EINVAL, "a script of %zu steps; at most %u are allowed", n, INJECT_MAX_STEPS);
    if (n && !steps)
        return sim_set_error(d, -EINVAL, "a script of %zu steps without the steps", n);
    uint64_t nbytes = 0;
    for (size_t k = 0; k < n; k++) {
        int rc = check_step(d, &steps[k], k);
        if (rc < 0)
            return rc;
        if (steps[k].kind == INJECT_WRITE && steps[k].bytes)
            nbytes += steps[k].size; /* each <= RAM (1 GiB), at most 10,000: no overflow */
    }
    struct sim_inject in = {.n = n};
    if (n) {
        in.steps = malloc(n * sizeof(*in.steps));
        in.outcome = calloc(n, sizeof(*in.outcome));
        in.at = calloc(n, sizeof(*in.at));
        in.bytes = nbytes && nbytes <= SIZE_MAX ? malloc((size_t)nbytes) : NULL;
        if (!in.steps || !in.outcome || !in.at || (nbytes && !in.bytes)) {
            script_free(&in);
            return sim_set_error(d, -ENOMEM, "out of memory for a script of %zu steps", n);
        }
        memcpy(in.steps, steps, n * sizeof(*in.steps));
        uint64_t off = 0;
        for (size_t k = 0; k < n; k++) {
            struct inject_step *st = &in.steps[k];
            if (st->kind != INJECT_WRITE || !st->bytes) {
                st->bytes = NULL;
                continue;
            }
            if (st->size)
                memcpy(in.bytes + off, st->bytes, (size_t)st->size);
            st->bytes = in.bytes + off;
            off += st->size;
        }
    }
    script_free(&d->inject);
    in.fired_at = d->insns;
    d->inject = in;
    return 0;
}

int inject_set_kept(struct sim_domain *d, const struct inject_step *steps, size_t n, const bool *keep)
{
    if (n > INJECT_MAX_STEPS)
        return sim_set_error(d, -EINVAL, "a script of %zu steps; at most %u are allowed", n, INJECT_MAX_STEPS);
    if (n && (!steps || !keep))
        return sim_set_error(d, -EINVAL, "a script of %zu steps without the steps or the keep mask", n);
    struct inject_step *kept = malloc((n ? n : 1) * sizeof(*kept));
    if (!kept)
        return sim_set_error(d, -ENOMEM, "out of memory for a script of %zu steps", n);
    size_t m = 0;
    uint64_t carry = 0;
    for (size_t k = 0; k < n; k++) {
        if (!keep[k]) {
            carry = steps[k].after > UINT64_MAX - carry ? UINT64_MAX : carry + steps[k].after;
            continue;
        }
        kept[m] = steps[k];
        kept[m].after = carry > UINT64_MAX - kept[m].after ? UINT64_MAX : kept[m].after + carry;
        carry = 0;
        m++;
    }
    int rc = inject_set(d, kept, m);
    free(kept);
    return rc;
}

size_t inject_nr(const struct sim_domain *d)
{
    return d->inject.n;
}

size_t inject_next(const struct sim_domain *d)
{
    return d->inject.next;
}

bool inject_done(const struct sim_domain *d)
{
    return d->inject.next >= d->inject.n;
}

enum inject_outcome inject_outcome(const struct sim_domain *d, size_t k, uint64_t *at)
{
    const struct sim_inject *in = &d->inject;
    if (k >= in->n || k >= in->next)
        return INJECT_PENDING;
    if (at)
        *at = in->at[k];
    return (enum inject_outcome)in->outcome[k];
}

uint64_t inject_insns(const struct sim_domain *d)
{
    return d->insns;
}

uint64_t inject_budget(const struct sim_domain *d, uint64_t budget)
{
    const struct sim_inject *in = &d->inject;
    if (in->next >= in->n)
        return budget;
    uint64_t ran = d->insns - in->fired_at, after = in->steps[in->next].after;
    if (ran >= after)
        return budget; /* due, but waiting for its vCPU: the guest runs on as it would */
    return after - ran < budget ? after - ran : budget;
}

/* ---- Firing ------------------------------------------------------------------ */

/* "hypervisor step 3 (line 40)" */
static void step_name(char *buf, size_t len, const struct inject_step *st, size_t k)
{
    if (st->line)
        snprintf(buf, len, "hypervisor step %zu (line %" PRIu32 ")", k, st->line);
    else
        snprintf(buf, len, "hypervisor step %zu", k);
}

static const char *reason_name(unsigned reason, char *buf, size_t len)
{
    const char *name = vme_reason_name(reason);
    if (name)
        return name;
    snprintf(buf, len, reason == 16 ? "IO_INSTRUCTION" : "reason %u", reason);
    return buf;
}

/* Work the vCPU does at its next entry (hvm_do_resume): Xen can raise no event before it. */
static bool entry_pending(const struct sim_vcpu *v)
{
    const struct sim_resume *r = &v->resume;
    return r->emulate_flags || r->set_gprs || r->do_cr0 || r->do_cr3 || r->do_cr4 || r->do_msr
           || v->trap.pending;
}

static enum inject_outcome fire_event(struct sim_domain *d, const struct inject_step *st, size_t k)
{
    struct sim_vcpu *v = &d->vcpus[st->vcpu];
    char name[64], rbuf[32];
    const char *reason = reason_name(st->reason, rbuf, sizeof(rbuf));
    step_name(name, sizeof(name), st, k);
    if (!d->monitor.ring) {
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "%s: no monitor ring, so the %s request for vCPU %u is "
                 "dropped (Xen sends no event without a ring)", name, reason, v->id);
        return INJECT_DROPPED;
    }
    unsigned version = d->monitor.version;
    if (st->reason >= VME_REASON_COUNT || st->reason > vme_max_reason(version)) {
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "%s skipped: a version %u ring cannot carry %s (reason %"
                 PRIu32 ")", name, version, reason, st->reason);
        return INJECT_SKIPPED;
    }
    struct vme_msg req;
    inject_build_request(st, &req);
    sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "%s: the hypervisor raises %s for vCPU %u (%s) at guest "
             "instruction %" PRIu64, name, reason, v->id, st->sync ? "sync" : "async", d->insns);
    /* monitor_traps, as every event: a full ring queues the vCPU; controls are not consulted. */
    sim_monitor_traps(d, v, st->sync, &req);
    return INJECT_FIRED;
}

static enum inject_outcome fire_write(struct sim_domain *d, const struct inject_step *st, size_t k)
{
    char name[64];
    step_name(name, sizeof(name), st, k);
    int rc = 0;
    if (st->bytes) {
        rc = sim_mem_write(d, st->gpa, st->bytes, st->size);
    } else {
        uint8_t chunk[4096];
        memset(chunk, st->fill, sizeof(chunk));
        for (uint64_t off = 0; off < st->size && rc == 0; off += sizeof(chunk)) {
            uint64_t len = st->size - off < sizeof(chunk) ? st->size - off : sizeof(chunk);
            rc = sim_mem_write(d, st->gpa + off, chunk, len);
        }
    }
    if (rc < 0) {
        sim_note(d, SIM_NOTE_ACTION, 0, NULL, "%s: the write of %" PRIu64 " byte(s) at gpa %#" PRIx64
                 " failed: %s", name, st->size, st->gpa, d->error);
        return INJECT_SKIPPED;
    }
    if (st->bytes)
        sim_note(d, SIM_NOTE_ACTION, 0, NULL, "%s: the hypervisor writes %" PRIu64 " byte(s) at gpa %#" PRIx64
                 " (from outside the vCPUs: no p2m check) at guest instruction %" PRIu64, name, st->size,
                 st->gpa, d->insns);
    else
        sim_note(d, SIM_NOTE_ACTION, 0, NULL, "%s: the hypervisor fills %" PRIu64 " byte(s) at gpa %#" PRIx64
                 " with 0x%02x (from outside the vCPUs: no p2m check) at guest instruction %" PRIu64, name,
                 st->size, st->gpa, st->fill, d->insns);
    return INJECT_FIRED;
}

void inject_poll(struct sim_domain *d)
{
    struct sim_inject *in = &d->inject;
    in->polling = true;
    while (in->next < in->n) {
        size_t k = in->next;
        const struct inject_step *st = &in->steps[k];
        if (d->insns - in->fired_at < st->after)
            break;
        enum inject_outcome out;
        if (st->kind == INJECT_EVENT) {
            struct sim_vcpu *v = &d->vcpus[st->vcpu];
            const char *dead = v->state == SIM_VCPU_HALTED    ? "has halted"
                               : v->state == SIM_VCPU_FAULTED ? "has faulted"
                               : v->down                      ? "is down"
                                                              : NULL;
            if (dead) {
                char name[64], rbuf[32];
                step_name(name, sizeof(name), st, k);
                sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "%s skipped: vCPU %u %s, so it raises no %s "
                         "event", name, v->id, dead, reason_name(st->reason, rbuf, sizeof(rbuf)));
                out = INJECT_SKIPPED;
            } else if (d->crashed || d->shutdown || !sim_vcpu_runnable(v) || entry_pending(v)) {
                break; /* it waits; the rest of the guest runs on */
            } else {
                out = fire_event(d, st, k);
            }
        } else {
            out = fire_write(d, st, k);
        }
        in->outcome[k] = (uint8_t)out;
        in->at[k] = d->insns;
        in->fired_at = d->insns;
        in->next = k + 1;
    }
    in->polling = false;
}
