/* sim/sim_internal.h — the domain's state, shared by sim/'s own files; not public API. */
#ifndef VMISIM_SIM_INTERNAL_H
#define VMISIM_SIM_INTERNAL_H

#include <stdarg.h>

#include "inject_internal.h"
#include "p2m_internal.h"
#include "sim.h"
#include "vm_event_internal.h"

/*
 * What Xen keeps in v->arch.vm_event between vm_event_resume (which only
 * records a response's wishes) and the vCPU's next run (hvm_vm_event_do_resume,
 * which acts on them).
 */
struct sim_resume {
    uint32_t emulate_flags;                         /* the response's flags, 0: no emulation */
    struct { uint32_t size; uint8_t data[VME_EMUL_READ_MAX_V7]; } emul_read;
    bool set_gprs;                                  /* SET_REGISTERS */
    struct vme_regs gprs;
    /* Xen's monitor_write_data: writes deferred to the response (op 4 only). */
    bool do_cr0, do_cr3, do_cr4, do_msr;
    uint64_t cr0, cr3, cr4, msr_value;
    uint32_t msr;
};

/* A trap to inject at the vCPU's next entry (xc_hvm_inject_trap, v->arch.hvm.inject_event). */
struct sim_trap {
    bool pending;
    uint8_t vector, type, insn_len;
    int64_t error_code; /* < 0: none */
    uint64_t cr2;
};

/* The monitor controls (d->arch.monitor), kept with or without a ring. */
#define SIM_MSR_RANGES 3
#define SIM_MSR_RANGE_SIZE 0x2000
struct sim_monitor_ctl {
    uint8_t cr_enabled, cr_sync, cr_onchangeonly; /* bit = write_ctrlreg index 0..3 */
    uint64_t cr_mask[4];
    uint8_t msr_monitored[SIM_MSR_RANGES][SIM_MSR_RANGE_SIZE / 8];
    uint8_t msr_onchangeonly[SIM_MSR_RANGES][SIM_MSR_RANGE_SIZE / 8];
    unsigned nr_msrs;           /* MSRs monitored */
    bool software_breakpoint;
    bool singlestep;
    bool control_register_values; /* XEN_DOMCTL_MONITOR_OP_CONTROL_REGISTERS */
    bool guest_request, guest_request_sync, guest_request_userspace;
    /* Interface-7 events (issue 9): xc_monitor_cpuid, _descriptor_access, _debug_exceptions,
     * _inguest_pagefault, _emul_unimplemented. */
    bool cpuid, descriptor_access, debug_exception, debug_exception_sync;
    bool inguest_pagefault_disabled, emul_unimplemented;
};

struct sim_vcpu {
    struct sim_domain *domain;
    unsigned id;
    struct cpu *cpu;
    enum sim_vcpu_state state;   /* RUNNABLE, HALTED or FAULTED; PAUSED is derived */
    unsigned pause_count;        /* Xen's vm_event_pause_count */
    uint8_t ring_blocked;        /* paused by a ring's "black eye" (_VPF_mem_access): bit = ring index */
    bool waiting_slot;           /* on a ring's wait queue with `slot_req` to post */
    bool paging_wait;            /* waits for gfn `paging_gfn`, already on its way in (no request of its own) */
    uint64_t paging_gfn;
    bool slot_req_sync;
    struct vme_msg slot_req;
    struct sim_resume resume;
    bool has_vm_event;           /* Xen's v->arch.vm_event: allocated by monitor enable */
    bool single_step;            /* Xen's v->arch.hvm.single_step (MTF), flipped by TOGGLE_SINGLESTEP */
    struct sim_trap trap;        /* xc_hvm_inject_trap, delivered at the next entry */
    uint64_t insns;
    bool access_handled;         /* the in-engine handler already dealt with the exit */
    uint64_t last_fault_rip, last_fault_gpa;
    unsigned same_fault;         /* in-engine retries of one fault without progress */
    char fault[200];
    uint16_t view;               /* the altp2m view it runs on (0: the host p2m), while altp2m is active */
    bool down;                   /* Xen's _VPF_down: never runs until VCPUOP_up (sim/vcpu_op.c) */
    bool initialised;            /* Xen's v->is_initialised: has its register state */
};

/* One altp2m view (d->arch.altp2m_p2m[i]); view 0 is the host p2m itself. */
struct sim_view {
    bool exists, visible;
    struct p2m *p2m;             /* access per gfn and default access; mirrors the host's paging/sharing states */
    uint64_t *present;           /* gfns the view holds an entry of its own for (host changes propagate to them) */
    uint64_t *changed;           /* gfns remapped by change_gfn */
    uint64_t *remapped;          /* changed | the host's remapped: cpu/'s bitmap for this view */
    uint8_t **frame_of;          /* the frame of a changed gfn */
};

/*
 * One vm_event ring (Xen's struct vm_event_domain): the monitor ring
 * (d->monitor, HVM param 28) or the paging ring (d->paging, HVM param 27).
 * sim/monitor.c runs both.
 */
#define SIM_RING_MONITOR 0
#define SIM_RING_PAGING 1
#define SIM_RING_SHARING 2
struct sim_monitor {
    unsigned idx;                /* SIM_RING_MONITOR or SIM_RING_PAGING */
    const char *name;            /* "monitor", "paging": for messages */
    struct ring *ring;           /* NULL: no ring */
    unsigned version;
    struct evtchn *evtchn;       /* the simulator's side of the doorbell */
    unsigned blocked;            /* vCPUs with ring_blocked */
    unsigned last_vcpu_wake_up;
    unsigned *waitq;             /* vCPU ids waiting for a slot, FIFO */
    unsigned waitq_len;
    bool ring_error_noted;       /* a broken ring is reported once */
};

struct sim_domain {
    enum cpu_mode mode;
    uint8_t *ram;
    uint64_t ram_size;
    struct p2m *host_p2m;
    bool access_required;
    unsigned nr_vcpus;
    struct sim_vcpu *vcpus;
    uint64_t quantum;
    unsigned next_vcpu;          /* round-robin cursor */
    struct sim_monitor monitor;
    struct sim_monitor paging;   /* the paging ring (xc_mem_paging_enable), sim/paging.c */
    struct sim_monitor sharing;  /* the sharing ring (xc_memshr_ring_enable), sim/sharing.c */
    /*
     * Guest-physical memory, one map with one lookup (sim_frame, sim/memory.c):
     * gfn's frame is ram + gfn * 4096 (its home frame) unless its bit is set in
     * `remapped`; then it is frame_of[gfn] (a shared page in `pool`, another
     * domain's page).  cpu/ reads the same two (cpu_memory.remapped/frame).
     */
    uint64_t nr_gfns;
    uint64_t *remapped;
    uint8_t **frame_of;
    int ram_fd;                  /* the memfd behind ram (offset 0) and pool (offset ram_size) */
    uint64_t tot_pages, max_pages; /* d->tot_pages, d->max_pages */
    /* mem_sharing (sim/sharing.c): shared pages live in `pool` (dom_cow's pages). */
    bool sharing_enabled;
    uint8_t *pool;               /* nr_gfns frames, mapped in every vCPU (cpu_map_area) */
    uint32_t *pool_free;         /* free pool frames, a stack */
    uint32_t pool_nfree;
    uint32_t *pool_refs;         /* gfns on each pool frame */
    uint64_t *pool_handle;       /* each pool frame's sharing handle */
    uint32_t *gfn_pool;          /* the pool frame of a shared gfn */
    uint64_t next_handle;
    /* KVM introspection maps (sim/kvmi_mem.c). */
    struct sim_domain *introspector;  /* the domain our token was issued to */
    struct sim_map_token token;
    bool has_token;
    uint16_t *map_refs;          /* per gfn: introspector gfns mapping it (Xen/KVM: extra page references) */
    struct sim_foreign { struct sim_domain *target; uint64_t gfn; } *foreign; /* per gfn of an introspector */
    uint64_t nr_foreign;
#define SIM_MAX_TARGETS 4
    struct sim_domain *targets[SIM_MAX_TARGETS];
    unsigned nr_targets;
    uint64_t tokens_issued;
    bool in_run;                 /* inside sim_run */
    unsigned controller_pause_count; /* xc_domain_pause (d->controller_pause_count) */
    enum sim_altp2m_mode altp2m_mode;
    bool altp2m_active;
    struct sim_view views[SIM_MAX_ALTP2M];
    struct sim_monitor_ctl mon;  /* monitor controls (xc_monitor_write_ctrlreg ...) */
    uint32_t intercept;          /* cpu/'s intercept mask now in force */
    bool crashed;
    enum sim_hypercall_abi hypercalls;
    bool trace_hypercalls;
    bool shutdown;               /* SCHEDOP_shutdown: every vCPU stops */
    uint8_t shutdown_reason;
    bool ran;                    /* some vCPU has run: its translated code may be stale after a write */
    bool code_flush_pending;     /* a page's contents changed (paging): flush translated code outside the engine */
    char crash_why[256];
    bool event_posted;           /* a request went on the ring during this sim_run */
    unsigned event_vcpu;
    sim_observer_fn observer;
    void *observer_opaque;
    sim_client_fn client;        /* an in-process client's turn (sim_set_client) */
    void *client_opaque;
    bool in_client;
    uint64_t events_in_run;
    /* Simulated time (sim/wait.c): sim_now = the vCPUs' instructions + idle_time. */
    uint64_t idle_time;          /* quanta that passed with every vCPU waiting for the client */
    uint64_t idle_for;           /* of which since the last progress */
    uint64_t deadlock_timeout;   /* idle simulated instructions before SIM_STOP_DEADLOCK */
    char error[256];
    /* -- scheduling (issue 8): seed, PRNG, decisions, their observer and source -- */
    uint64_t seed;               /* 0: round robin in fixed quanta */
    uint64_t sched_rng;          /* splitmix64 state */
    uint64_t sched_n;            /* decisions made */
    sim_schedule_observer_fn sched_observer;
    void *sched_observer_opaque;
    sim_schedule_source_fn sched_source;
    void *sched_source_opaque;
    /* ---- Snapshots (sim/snapshot.c; dirty marking in sim/memory.c) ---- */
    /*
     * Frames written since the last snapshot take or restore: bit f is home frame f
     * (d->ram), bit nr_gfns + p is pool frame p.  A take or restore folds it into every
     * snapshot attached to the domain (their `diverged` sets) and clears it.
     */
    uint64_t *dirty;
    struct sim_snapshot *snapshots; /* attached snapshots, a list */
    uint64_t snap_pages_restored;   /* pages the last restore copied */
    /* ---- The hypervisor's own script (sim/inject.c, inject_internal.h) ---- */
    uint64_t insns;              /* guest instructions run, as sim_run counts them, over all runs */
    struct sim_inject {
        struct inject_step *steps; /* configuration: a restore keeps it */
        uint8_t *outcome;        /* enum inject_outcome of each step */
        uint64_t *at;            /* d->insns when each step fired */
        uint8_t *bytes;          /* the write steps' bytes (steps point into it) */
        size_t n;
        size_t next;             /* the next step to fire (state) */
        uint64_t fired_at;       /* d->insns when the previous step fired, or the script was set (state) */
        bool polling;            /* inside inject_poll: the script must not be replaced */
    } inject;
};

/* domain.c */
int sim_set_error(struct sim_domain *d, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sim_note(struct sim_domain *d, enum sim_note_kind kind, unsigned vcpu,
              const struct vme_msg *msg, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void sim_domain_crash(struct sim_domain *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool sim_vcpu_runnable(const struct sim_vcpu *v);
/* Copies the vCPU's registers into a vm_event register block (vm_event_fill_regs). */
void sim_fill_regs(struct sim_vcpu *v, struct vme_regs *out);
/* Drops cpu/'s stale translations of gfns that lost rights. */
void sim_p2m_changed(struct sim_domain *d, uint64_t first_gfn, uint64_t nr);

/* monitor.c */
/*
 * monitor_traps: claims a slot (or queues the vCPU), pauses a sync vCPU,
 * fills the common fields and the registers, and puts the request.
 * Returns 1 when the vCPU was paused (or queued), 0 when it continues,
 * negative on error.  With no ring it returns 0 and sends nothing.
 */
int sim_monitor_traps(struct sim_domain *d, struct sim_vcpu *v, bool sync, struct vme_msg *req);
/*
 * The ring machinery behind both rings.  sim_ring_claim: vm_event_claim_slot
 * for a guest vCPU: 0 with a slot claimed, 1 when the vCPU was queued with
 * `req` (posted once a slot frees), -EOPNOTSUPP with no ring.  sim_ring_post:
 * vm_event_put_request on a claimed slot (sync: the vCPU is paused).
 */
int sim_ring_claim(struct sim_domain *d, struct sim_monitor *m, struct sim_vcpu *v, bool sync,
                   const struct vme_msg *req);
void sim_ring_post(struct sim_domain *d, struct sim_monitor *m, struct sim_vcpu *v, bool sync,
                   struct vme_msg *req);
/*
 * vm_event_put_request from outside the domain (the toolstack touching a
 * paged gfn): FOREIGN, vcpu_id 0, nobody paused, no waiting for a slot
 * (-EBUSY when the ring is full, -EOPNOTSUPP with no ring).
 */
int sim_ring_post_foreign(struct sim_domain *d, struct sim_monitor *m, struct vme_msg *req);
int sim_ring_enable(struct sim_domain *d, struct sim_monitor *m, unsigned version, struct ring_fds *fds);
/* vm_event_disable's ring part: -EBUSY while vCPUs wait for a slot; black eyes are released. */
int sim_ring_disable(struct sim_domain *d, struct sim_monitor *m);
void sim_ring_free(struct sim_monitor *m);
/* vm_event_resume on every ring whose doorbell rang. */
void sim_monitor_poll(struct sim_domain *d);
void sim_monitor_free(struct sim_domain *d);

/* wait.c */
/*
 * Nothing can run.  With an in-process client and vCPUs waiting for it,
 * simulated time passes in quanta, the client gets a turn each quantum:
 * 1 when something can go on, -EDEADLK (stop filled: SIM_STOP_DEADLOCK and
 * the report) after deadlock_timeout without progress, 0 when there is no
 * in-process client or nothing waits for it (the caller reports BLOCKED).
 */
int sim_idle_wait(struct sim_domain *d, struct sim_stop *stop);

/* memory.c */
/* The frame behind gfn, or NULL (beyond RAM, or paged out: no frame). */
uint8_t *sim_frame(struct sim_domain *d, uint64_t gfn);
/*
 * Backs gfn by `frame` (NULL: its home frame again) and drops cpu/'s
 * translations of it; translated code is flushed before the next run.
 */
void sim_gfn_set_frame(struct sim_domain *d, uint64_t gfn, uint8_t *frame);
int sim_memory_init(struct sim_domain *d);
void sim_memory_free(struct sim_domain *d);
/* Maps the domain's RAM and pool into every vCPU of `into` (cpu_map_area). */
int sim_memory_map_into(struct sim_domain *d, struct sim_domain *into);

/* sharing.c */
/*
 * __mem_sharing_unshare_page: a shared gfn gets a private page.  0 (also when
 * it is not shared), -ENOMEM when the domain may not allocate a page.
 */
int sim_sharing_unshare(struct sim_domain *d, uint64_t gfn);
/* A guest vCPU's write hit a shared gfn: unshare, or mem_sharing_notify_enomem. */
void sim_sharing_write_fault(struct sim_domain *d, struct sim_vcpu *v, uint64_t gfn);
void sim_sharing_free(struct sim_domain *d);

/* kvmi_mem.c */
int64_t sim_kvmi_mem_map(struct sim_domain *d, const struct sim_map_token *token, uint64_t gpa,
                         uint64_t map_gpa, char *why, size_t whylen);
int64_t sim_kvmi_mem_unmap(struct sim_domain *d, uint64_t map_gpa, char *why, size_t whylen);
/* Undoes every map from and into the domain (destroy). */
void sim_kvmi_free(struct sim_domain *d);

/* altp2m.c */
/* The p2m a vCPU's accesses are judged by: its view's, or the host's. */
struct p2m *sim_vcpu_p2m(struct sim_vcpu *v);
/* cpu_memory.rights / .frame for a vCPU (opaque: the sim_vcpu). */
unsigned sim_vcpu_rights(void *opaque, uint64_t gfn);
uint8_t *sim_vcpu_frame(void *opaque, uint64_t gfn);
/* Host p2m changes, applied to the host and carried into the views (p2m_altp2m_propagate_change). */
void sim_set_paging(struct sim_domain *d, uint64_t gfn, enum p2m_paging state, bool has_frame);
void sim_set_shared(struct sim_domain *d, uint64_t gfn, bool shared);
void sim_altp2m_host_access_changed(struct sim_domain *d, uint64_t first_gfn, uint64_t nr);
void sim_altp2m_host_frame_changed(struct sim_domain *d, uint64_t gfn);
/* A conversion (rx2rw, n2rwx) on the vCPU's own view: true when a right was lost. */
bool sim_vcpu_set_access(struct sim_vcpu *v, uint64_t gfn, enum p2m_access a);
/* p2m_altp2m_check: a response's ALTERNATE_P2M. */
void sim_altp2m_check(struct sim_domain *d, struct sim_vcpu *v, uint16_t idx);
/* A guest VMFUNC: returns the instructions completed (0, 1) or -errno. */
int sim_altp2m_vmfunc(struct sim_domain *d, struct sim_vcpu *v, const struct cpu_insn *in);
void sim_altp2m_free(struct sim_domain *d);
/* Frees one view's tables and clears it (destroy, snapshot restore). */
void sim_altp2m_view_free(struct sim_view *w);

/* paging.c */
/* A guest vCPU touched a gfn in the paging path: p2m_mem_paging_populate. */
void sim_paging_populate(struct sim_domain *d, struct sim_vcpu *v, uint64_t gfn);
/*
 * The toolstack (a host read or write) touched gfn, which has no frame:
 * p2m_mem_paging_populate from a foreign context.  A paged gfn becomes
 * paging_in and the pager gets a FOREIGN request; nobody waits.
 */
void sim_paging_populate_foreign(struct sim_domain *d, uint64_t gfn);
/* p2m_mem_paging_resume, for a MEM_PAGING response. */
void sim_p2m_paging_resume(struct sim_domain *d, const struct vme_msg *rsp);

/* monitor_events.c */
/* Is this instruction's intercept one that needs work outside the engine (an event, an injection)? */
bool sim_insn_wants_exit(struct sim_domain *d, struct sim_vcpu *v, const struct cpu_insn *in);
/* An intercepted instruction, outside the engine: events, deferral, the instruction's effect.
 * Returns the instructions completed (0 or 1) or -errno. */
int sim_insn_intercept(struct sim_domain *d, struct sim_vcpu *v, const struct cpu_insn *in);
/* A single-step exit: the SINGLESTEP event when the monitor is on. */
void sim_singlestep_done(struct sim_domain *d, struct sim_vcpu *v);
/* vm_event_register_write_resume (DENY). */
void sim_register_write_resume(struct sim_domain *d, struct sim_vcpu *v, const struct vme_msg *rsp);
/* The deferred CR0, CR4, CR3, MSR writes, then a pending trap (end of hvm_do_resume). */
void sim_vcpu_finish_resume(struct sim_domain *d, struct sim_vcpu *v);
/* cpu/'s intercept mask from the monitors now enabled. */
int sim_update_intercept(struct sim_domain *d);
/* v->single_step changed: tell cpu/. */
void sim_vcpu_sync_singlestep(struct sim_vcpu *v);

/* mem_event.c */
/* The vCPU's access was refused by cpu/: Xen's hvm_hap_nested_page_fault + p2m_mem_access_check. */
void sim_mem_access_fault(struct sim_domain *d, struct sim_vcpu *v, const struct cpu_access *a);
/* hvm_vm_event_do_resume: SET_REGISTERS, then the pending emulation: instructions emulated (0, 1) or -errno. */
int sim_vcpu_do_resume(struct sim_domain *d, struct sim_vcpu *v);
/* vm_event_emulate_check, for one response to a paused vCPU. */
void sim_emulate_check(struct sim_domain *d, struct sim_vcpu *v, const struct vme_msg *rsp);

/* memory.c, snapshot.c: dirty tracking */
/* Marks the frame at host address `frame` (page aligned) dirty in the domain that owns it
 * (this one, or a domain it maps pages of). */
void sim_mem_dirty(struct sim_domain *d, const uint8_t *frame);
/* cpu/'s dirty hook (opaque: the sim_vcpu). */
void sim_vcpu_dirty(void *opaque, uint8_t *frame);
/* The domain is going away: its snapshots stay valid but unattached. */
void sim_snapshot_detach_all(struct sim_domain *d);

#endif
