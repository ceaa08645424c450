/*
 * sim/inject_internal.h — the hypervisor's own script: vm_event requests the
 * hypervisor raises and guest-memory writes it makes by itself, independent
 * of what the guest code does (a scenario's `hypervisor:` section,
 * docs/scenario-format.md; `vmisim fuzz-client` generates such scripts).
 *
 * A domain holds one script, a list of steps run in order.  Step k fires
 * when `after` guest instructions (the domain's vCPUs together, as sim_run
 * counts them) have run since step k-1 fired (the first: since the script
 * was set), and, for an event step, its vCPU can take an event now: it is
 * runnable (up, not halted or faulted, no pause count, no black eye, not
 * waiting for a ring slot or a page, the domain not paused, crashed or shut
 * down) and nothing is pending for its next entry (an emulation,
 * SET_REGISTERS, a deferred register write, an injected trap): Xen raises an
 * event from a vmexit, which comes after that entry.  While that does not
 * hold, the step waits and the guest runs on.  A step whose vCPU halted,
 * faulted or is down is skipped with a note, so a script never waits for
 * ever on a dead vCPU.
 *
 * An event step goes through sim_monitor_traps, the path of every real event
 * (a full ring queues the vCPU, the black eye, the ring's version, the
 * registers, ALTERNATE_P2M), whatever monitors the client enabled: the point
 * is events it did not ask for.  No monitor ring: dropped with a note (Xen:
 * no ring, no event); a reason the ring's version cannot carry: skipped with
 * a note.  A write step is sim_mem_write: a write from outside the vCPUs (a
 * device's DMA, another domain with the page mapped), with no p2m check; it
 * marks the frames dirty and retranslates code as any host write.
 *
 * Every step that fires, is skipped or dropped is reported as one
 * SIM_NOTE_ACTION, "hypervisor step K: ..." (K from 0, as hypervisor[K] in
 * the file).  Deterministic: firing depends only on instruction counts and
 * vCPU states.  In a snapshot the position (next step, the instruction
 * counts) is state; the script itself is configuration, kept by a restore.
 *
 * This header needs nothing of sim/'s internals: scenario_internal.h holds
 * the parsed steps in this form.
 */
#ifndef VMISIM_INJECT_INTERNAL_H
#define VMISIM_INJECT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sim_domain;
struct vme_msg;

#define INJECT_MAX_STEPS 10000u

enum inject_kind {
    INJECT_EVENT, /* post a vm_event request for a vCPU */
    INJECT_WRITE, /* write guest memory (sim_mem_write) */
};

/*
 * The payload of an event step, one value per key as the file writes it
 * (docs/scenario-format.md, `hypervisor`).  Which keys a reason takes is
 * inject_fields_allowed(reason); a key not given is 0.
 */
enum inject_field {
    INJECT_F_GFN,                /* u.mem_access.gfn; breakpoint/debug/singlestep gfn */
    INJECT_F_OFFSET,             /* u.mem_access.offset (any u64) */
    INJECT_F_GLA,                /* u.mem_access.gla */
    INJECT_F_ACCESS,             /* MEM_ACCESS_R|W|X bits (1, 2, 4) */
    INJECT_F_GLA_VALID,          /* 0 or 1: MEM_ACCESS_GLA_VALID */
    INJECT_F_FAULT,              /* 0, 0x10 (FAULT_WITH_GLA) or 0x20 (FAULT_IN_GPT) */
    INJECT_F_ACCESS_FLAGS,       /* u.mem_access.flags whole (u32): replaces the three above */
    INJECT_F_INDEX,              /* u.write_ctrlreg.index (u32: 0 cr0, 1 cr3, 2 cr4, 3 xcr0) */
    INJECT_F_NEW_VALUE,          /* WRITE_CTRLREG, MOV_TO_MSR */
    INJECT_F_OLD_VALUE,          /* WRITE_CTRLREG, MOV_TO_MSR (v1 carries none for MSRs) */
    INJECT_F_MSR,                /* u.mov_to_msr.msr */
    INJECT_F_INSN_LENGTH,        /* SOFTWARE_BREAKPOINT, DEBUG_EXCEPTION, CPUID (u32) */
    INJECT_F_TYPE,               /* breakpoint/debug type (u8); INTERRUPT type (u32) */
    INJECT_F_PENDING_DBG,        /* DEBUG_EXCEPTION */
    INJECT_F_LEAF,               /* CPUID (u32) */
    INJECT_F_SUBLEAF,            /* CPUID (u32) */
    INJECT_F_DESCRIPTOR,         /* DESCRIPTOR_ACCESS (u8) */
    INJECT_F_IS_WRITE,           /* DESCRIPTOR_ACCESS: 0 or 1 */
    INJECT_F_INSTR_INFO,         /* DESCRIPTOR_ACCESS (u32) */
    INJECT_F_EXIT_QUALIFICATION, /* DESCRIPTOR_ACCESS */
    INJECT_F_VECTOR,             /* INTERRUPT (u32) */
    INJECT_F_ERROR_CODE,         /* INTERRUPT (u32) */
    INJECT_F_CR2,                /* INTERRUPT */
    INJECT_F_EXIT_REASON,        /* VMEXIT: u.vmexit.arch.vmx.reason */
    INJECT_F_QUALIFICATION,      /* VMEXIT */
    INJECT_F_COUNT
};

/* One step of the script. */
struct inject_step {
    enum inject_kind kind;
    uint64_t after;          /* guest instructions since the previous step fired */
    /* INJECT_EVENT */
    uint32_t reason;         /* VM_EVENT_REASON_*: 0-16, never MEM_PAGING (3) or MEM_SHARING (2) */
    uint32_t vcpu;           /* below the domain's vCPUs */
    bool sync;               /* VCPU_PAUSED: the vCPU waits for the response */
    uint32_t given;          /* bit f: field[f] was given (only ACCESS_FLAGS's bit matters) */
    uint64_t field[INJECT_F_COUNT];
    /* INJECT_WRITE: `size` bytes at `gpa`: `bytes`, or `fill` when bytes is NULL */
    uint64_t gpa, size;
    const uint8_t *bytes;
    uint8_t fill;
    uint32_t line, column;   /* of the step in its file, for notes (0: none) */
};

/* What became of a step. */
enum inject_outcome {
    INJECT_PENDING,  /* not yet (or not since the last snapshot restore) */
    INJECT_FIRED,    /* the request was sent (or the vCPU queued for a slot); the write done */
    INJECT_SKIPPED,  /* its vCPU halted, faulted or is down; the version lacks the reason; a write failed */
    INJECT_DROPPED,  /* no monitor ring: no event (as Xen) */
};

/* ---- The payload's keys ---------------------------------------------------- */

/* "gfn" for INJECT_F_GFN; NULL beyond. */
const char *inject_field_name(unsigned field);
/* The fields a request of `reason` may carry (bit f = field f); 0: no payload. */
uint32_t inject_fields_allowed(unsigned reason);
/* The largest value of `field` for `reason` (its width on the wire: u8, u32, u64). */
uint64_t inject_field_max(unsigned reason, unsigned field);
/* The request of an event step: reason and payload (sim_monitor_traps fills the rest). */
void inject_build_request(const struct inject_step *st, struct vme_msg *req);

/* ---- The script of a domain ----------------------------------------------- */

/*
 * Installs a copy of `steps` (n <= INJECT_MAX_STEPS; the bytes of write
 * steps copied too) as d's script, replacing any, from step 0, counting
 * instructions from now.  n = 0 removes the script.  -EINVAL (sim_error
 * says which step and why) for a step the domain cannot run: a vCPU it does
 * not have, a write beyond its RAM, an unknown kind or reason, MEM_PAGING or
 * MEM_SHARING; -EBUSY from an observer's callback while the script runs;
 * -ENOMEM.  On error the old script is kept.
 */
int inject_set(struct sim_domain *d, const struct inject_step *steps, size_t n);
/*
 * inject_set with the steps whose keep[i] is true, for minimising: a dropped
 * step's `after` is added to the next kept step's, so the kept steps fire at
 * the same instruction counts as before wherever nothing waited.
 */
int inject_set_kept(struct sim_domain *d, const struct inject_step *steps, size_t n, const bool *keep);
/* Steps in the script; the index of the next step to fire (== inject_nr when done). */
size_t inject_nr(const struct sim_domain *d);
size_t inject_next(const struct sim_domain *d);
/* Every step fired (or was skipped or dropped). */
bool inject_done(const struct sim_domain *d);
/*
 * Step k's outcome and, when it is not pending, the domain's instruction
 * count (inject_insns) when it fired; steps from inject_next on are pending.
 */
enum inject_outcome inject_outcome(const struct sim_domain *d, size_t k, uint64_t *at);
/* Guest instructions the domain has run (what sim_run counts, summed over its runs). */
uint64_t inject_insns(const struct sim_domain *d);

/* ---- For sim/domain.c and sim/snapshot.c -------------------------------- */

/* Fires every step that is due now, in order (run_domain, once per scheduling decision). */
void inject_poll(struct sim_domain *d);
/* `budget` cut to the instructions left until the next step is due, so it fires on time (>= 1). */
uint64_t inject_budget(const struct sim_domain *d, uint64_t budget);
/* The domain is destroyed. */
void inject_free(struct sim_domain *d);

#endif
