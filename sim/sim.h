/*
 * sim/sim.h — vmisim's hypervisor model: a domain with guest RAM, vCPUs, a
 * host p2m with Xen's mem_access types, and a vm_event monitor ring.
 *
 * The calls mirror what a client does with libxenctrl on a real Xen host
 * (xc_monitor_enable, xc_set_mem_access, ...), so an in-process client written
 * against this API behaves as it would on Xen, and clients in other processes
 * (which reach the same calls through a control socket) fit the same model.
 * The client always works through the real ring: sim_monitor_enable hands it
 * the ring's descriptors, exactly as xc_monitor_enable hands a ring page and
 * an event-channel port.
 *
 * Everything runs on the caller's thread and is deterministic: sim_run
 * schedules the vCPUs in fixed instruction quanta and returns whenever the
 * client may need to act.  Functions return 0 or a negative errno; sim_error
 * then holds one sentence saying what went wrong.
 */
#ifndef VMISIM_SIM_H
#define VMISIM_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu.h"
#include "ring.h"

#define SIM_MAX_VCPUS 64

struct sim_domain;

/*
 * The hypercall interface the guest sees (sim/hypercall.c, docs/adding-a-hypercall.md).
 * NONE: VMCALL and VMMCALL are not intercepted and raise #UD, as without a
 * hypervisor.  XEN: VMCALL (Intel) is a Xen hypercall, RAX = number, args
 * RDI RSI RDX R10 R8 (32-bit: EBX ECX EDX ESI EDI); VMMCALL raises #UD.
 * KVM: VMCALL or VMMCALL, the KVM VMI convention (64-bit RDI RSI ..., 32-bit EBX ECX ...).
 */
enum sim_hypercall_abi {
    SIM_HYPERCALL_NONE = 0,
    SIM_HYPERCALL_XEN,
    SIM_HYPERCALL_KVM,
};

struct sim_config {
    enum cpu_mode mode;   /* CPU_MODE_LONG or CPU_MODE_PAE32 */
    uint64_t ram_size;    /* bytes, a multiple of 4096 */
    unsigned nr_vcpus;    /* 1..SIM_MAX_VCPUS */
    uint64_t quantum;     /* instructions per scheduling quantum (0: 10,000) */
    enum sim_hypercall_abi hypercalls; /* 0: none (VMCALL raises #UD) */
    uint64_t deadlock_timeout; /* simulated instructions with every vCPU waiting for an in-process
                                  client before sim_run stops with SIM_STOP_DEADLOCK (0: 10,000,000) */
    unsigned nr_online;   /* vCPUs 0..nr_online-1 are up at creation (0: all); the others are
                             down and uninitialised until VCPUOP_initialise + VCPUOP_up */
    /* -- scheduling seed (issue 8) -- */
    uint64_t seed;        /* 0: round robin in fixed quanta; else the seed of the perturbed
                             schedule (sim_set_seed) */
};

int sim_domain_create(struct sim_domain **out, const struct sim_config *cfg);
void sim_domain_destroy(struct sim_domain *d);
/* The last error, one sentence ("" if none). */
const char *sim_error(const struct sim_domain *d);

/* ---- Guest memory: the one checked accessor ----------------------------- */

uint64_t sim_ram_size(const struct sim_domain *d);
/* Host address of [gpa, gpa + len), or NULL unless all of it is guest RAM. */
void *sim_gpa(struct sim_domain *d, uint64_t gpa, uint64_t len);
/*
 * The toolstack's reads and writes (a foreign mapping): page by page through
 * the gfn-to-frame map.  -EFAULT outside guest RAM; -ENOENT for a paged-out
 * gfn (the pager gets a FOREIGN MEM_PAGING request); a write to a shared gfn
 * unshares it first (-ENOMEM when the domain may not have the page).
 */
int sim_mem_read(struct sim_domain *d, uint64_t gpa, void *buf, uint64_t len);
int sim_mem_write(struct sim_domain *d, uint64_t gpa, const void *buf, uint64_t len);
/* sim_mem_read without side effects (no pager request): for inspecting final state. */
int sim_mem_peek(struct sim_domain *d, uint64_t gpa, void *buf, uint64_t len);

/* ---- vCPUs ---------------------------------------------------------------- */

unsigned sim_nr_vcpus(const struct sim_domain *d);
int sim_vcpu_get_regs(struct sim_domain *d, unsigned vcpu, struct cpu_regs *r);
int sim_vcpu_set_regs(struct sim_domain *d, unsigned vcpu, const struct cpu_regs *r);

enum sim_vcpu_state {
    SIM_VCPU_RUNNABLE,
    SIM_VCPU_PAUSED,  /* paused for vm_event: waiting for a response */
    SIM_VCPU_HALTED,  /* executed HLT */
    SIM_VCPU_FAULTED, /* a guest exception could not be delivered */
    SIM_VCPU_DOWN,    /* not brought up yet, or taken down (Xen's _VPF_down) */
};
enum sim_vcpu_state sim_vcpu_state(const struct sim_domain *d, unsigned vcpu);
/* Xen's v->vm_event_pause_count: how many responses with VCPU_PAUSED it awaits. */
unsigned sim_vcpu_pause_count(const struct sim_domain *d, unsigned vcpu);
uint64_t sim_vcpu_insns(const struct sim_domain *d, unsigned vcpu);
/*
 * Bringing vCPUs up and down, as Xen's VCPUOP_initialise / _up / _down
 * (sim/vcpu_op.c; the guest makes the same calls with __HYPERVISOR_vcpu_op).
 * initialise: the registers of a vCPU that has none yet (-EEXIST otherwise);
 * it stays down.  up: -EINVAL when not initialised.  down: the last vCPU up
 * going down shuts the domain down (poweroff).  -ENOENT for a bad id.
 */
int sim_vcpu_initialise(struct sim_domain *d, unsigned vcpu, const struct cpu_regs *regs);
int sim_vcpu_up(struct sim_domain *d, unsigned vcpu);
int sim_vcpu_down(struct sim_domain *d, unsigned vcpu);
bool sim_vcpu_is_up(const struct sim_domain *d, unsigned vcpu);
/*
 * xc_domain_pause / xc_domain_unpause (domain_pause_by_systemcontroller): a
 * count of its own, up to 255 (-EOVERFLOW beyond; unpause at 0: -EINVAL),
 * that composes with the vCPUs' vm_event pauses: a vCPU runs only when both
 * are zero.  A paused domain's vCPUs report SIM_VCPU_PAUSED.
 */
int sim_domain_pause(struct sim_domain *d);
int sim_domain_unpause(struct sim_domain *d);
unsigned sim_domain_pause_count(const struct sim_domain *d);

/* ---- mem_access (xc_set_mem_access, xc_get_mem_access) -------------------- */

/*
 * `access` is a xenmem_access_t of Xen 4.17 (0 n .. 7 rwx, 8 rx2rw, 9 n2rwx,
 * 10 default).  first_gfn = ~0 sets the default access.  Like Xen, it needs
 * an enabled monitor ring (-ENODEV otherwise); sim_p2m_set_access does the
 * same without that check, for building a domain.
 */
int sim_set_mem_access(struct sim_domain *d, unsigned access, uint64_t first_gfn, uint64_t nr);
int sim_p2m_set_access(struct sim_domain *d, unsigned access, uint64_t first_gfn, uint64_t nr);
int sim_get_mem_access(struct sim_domain *d, uint64_t gfn, unsigned *access);
/* xc_domain_set_access_required: a violation with no ring crashes the domain. */
void sim_set_access_required(struct sim_domain *d, bool required);

/* ---- The monitor ring (xc_monitor_enable, xc_monitor_disable) ------------- */

/*
 * Creates the domain's vm_event monitor ring, of interface version 1 or 7,
 * and returns the descriptors a client needs (owned by the domain, valid until
 * disable).  -EBUSY when a ring exists, as Xen.
 */
int sim_monitor_enable(struct sim_domain *d, unsigned version, struct ring_fds *fds);
/*
 * Tears the ring down as Xen's vm_event_disable does: vCPUs blocked for a
 * ring slot are released, vCPUs paused awaiting a response stay paused,
 * pending emulation is dropped.
 */
int sim_monitor_disable(struct sim_domain *d);
bool sim_monitor_enabled(const struct sim_domain *d);
/* xc_monitor_resume: take and apply the responses on the ring now. */
int sim_monitor_resume(struct sim_domain *d);

/* ---- Paging (xc_mem_paging_*: the paging ring and XENMEM_paging_op) -------- */

/*
 * The paging ring (HVM param 27, vm_event op mode PAGING): a second vm_event
 * ring, run exactly as the monitor ring (wait queue, black eye, responses
 * taken when its doorbell rings), carrying MEM_PAGING requests (sim/paging.c,
 * spec §6).  xc_mem_paging_enable / xc_mem_paging_disable; -EBUSY when it
 * exists.  Disabling keeps vCPUs paused for a paging response paused.
 */
int sim_paging_enable(struct sim_domain *d, unsigned version, struct ring_fds *fds);
int sim_paging_disable(struct sim_domain *d);
bool sim_paging_enabled(const struct sim_domain *d);
/* XEN_VM_EVENT_RESUME on the paging ring: take and apply its responses now. */
int sim_paging_resume(struct sim_domain *d);
/*
 * The pager's calls; all need the paging ring (-ENODEV).  nominate: a ram_rw
 * gfn becomes paging_out (-EBUSY otherwise, as Xen: not pageable, or no such
 * gfn).  evict: a paging_out gfn becomes paged and its contents are gone
 * (the frame is zeroed; -EBUSY unless paging_out, e.g. the guest touched it
 * meanwhile) — the pager keeps its own copy.  load (xc_mem_paging_load,
 * prep with a buffer): a paged or paging_in gfn gets its 4096 bytes back
 * from `page` (only when it has no frame: a nominated page that was never
 * evicted keeps its own) and becomes ram_rw at once; -ENOENT in any other
 * state, -EINVAL for a NULL page where one is needed.
 */
int sim_paging_nominate(struct sim_domain *d, uint64_t gfn);
int sim_paging_evict(struct sim_domain *d, uint64_t gfn);
int sim_paging_load(struct sim_domain *d, uint64_t gfn, const void *page);
/*
 * The gfn's p2m_type_t as Xen 4.17 numbers it on x86: 0 ram_rw (0 so that
 * p2m entries shared with the AMD IOMMU keep those bits clear; p2m_invalid
 * is 1), 9 paging_out, 10 paged, 11 paging_in, 12 ram_shared.  -EINVAL
 * beyond the p2m.
 */
#define SIM_P2MT_RAM_RW 0
#define SIM_P2MT_PAGING_OUT 9
#define SIM_P2MT_PAGED 10
#define SIM_P2MT_PAGING_IN 11
#define SIM_P2MT_RAM_SHARED 12
int sim_p2m_type(struct sim_domain *d, uint64_t gfn, unsigned *p2mt);

/* ---- Memory sharing (xc_memshr_*: XENMEM_sharing_op, the sharing ring) ---- */

/*
 * Copy-on-write sharing within the domain (xen/arch/x86/mm/mem_sharing.c,
 * sim/sharing.c).  sim_sharing_control is xc_memshr_control: sharing must be
 * on for nominate and share (-ENODEV otherwise, as Xen's memop).  Turning it
 * off keeps pages already shared.
 */
int sim_sharing_control(struct sim_domain *d, bool enable);
/*
 * The sharing ring (HVM param 29, xc_memshr_ring_enable): MEM_SHARING
 * requests, sent when a guest write must unshare a page and the domain may
 * not allocate one (tot_pages >= max_pages).  Run exactly as the monitor ring.
 */
int sim_sharing_ring_enable(struct sim_domain *d, unsigned version, struct ring_fds *fds);
int sim_sharing_ring_disable(struct sim_domain *d);
/* XEN_VM_EVENT_RESUME on the sharing ring. */
int sim_sharing_resume(struct sim_domain *d);
/*
 * xc_memshr_nominate_gfn: a ram_rw gfn becomes ram_shared (read-only; its
 * page leaves the domain's tot_pages) and gets a handle; an already shared
 * gfn gives its page's handle.  -EINVAL for a gfn that is not ram_rw RAM
 * (paged, beyond the p2m), -E2BIG when another domain maps it (KVM_HC_MEM_MAP:
 * extra references).
 */
int sim_sharing_nominate(struct sim_domain *d, uint64_t gfn, uint64_t *handle);
/*
 * xc_memshr_share_gfns with source and client in this domain: every gfn on
 * the client's page moves to the source's page, and the client's page is
 * freed.  Returns 0 (also when both are already one page),
 * XENMEM_SHARING_OP_S_HANDLE_INVALID (-10) or _C_HANDLE_INVALID (-9) when a
 * gfn is not shared or its handle is not its page's (Xen's codes).
 */
int sim_sharing_share(struct sim_domain *d, uint64_t source_gfn, uint64_t source_handle,
                      uint64_t client_gfn, uint64_t client_handle);
/* Pages the domain owns (d->tot_pages) and may own (d->max_pages; starts at the RAM size). */
uint64_t sim_tot_pages(const struct sim_domain *d);
uint64_t sim_max_pages(const struct sim_domain *d);
/* xc_domain_setmaxmem in pages: never refused; below tot_pages no allocation succeeds. */
void sim_set_max_pages(struct sim_domain *d, uint64_t pages);

/* ---- altp2m (HVMOP_altp2m, xc_altp2m_*; sim/altp2m.c, spec §5) ------------ */

/*
 * Alternate p2m views.  HVM_PARAM_ALTP2M's modes: disabled, mixed (the guest
 * may switch with VMFUNC and HVMOP), external (only the toolstack), limited
 * (the guest may switch with VMFUNC).  Once active, view 0 is the host p2m
 * and up to SIM_MAX_ALTP2M - 1 more views exist; each has its own access per
 * gfn (starting at its default access) and may show another gfn's frame at
 * a gfn (change_gfn).  Requests then carry ALTERNATE_P2M and the vCPU's view.
 */
enum sim_altp2m_mode {
    SIM_ALTP2M_DISABLED = 0,
    SIM_ALTP2M_MIXED = 1,
    SIM_ALTP2M_EXTERNAL = 2,
    SIM_ALTP2M_LIMITED = 3,
};
#define SIM_MAX_ALTP2M 10
/* HVM_PARAM_ALTP2M: -EINVAL for an unknown mode, -EBUSY while altp2m is active. */
int sim_altp2m_set_mode(struct sim_domain *d, enum sim_altp2m_mode mode);
/* xc_altp2m_set_domain_state: on puts every vCPU on view 0; off destroys every view. -EINVAL in mode disabled. */
int sim_altp2m_set_domain_state(struct sim_domain *d, bool active);
bool sim_altp2m_active(const struct sim_domain *d);
/* xc_altp2m_create_view: the first free index; -EINVAL when none is free or the access is unknown. */
int sim_altp2m_create_view(struct sim_domain *d, unsigned default_access, uint16_t *view);
/*
 * A view created as a copy of the host p2m: every gfn's access and the default
 * access as the host has them now, every entry held (as if each had been
 * copied in by a fault, so later host changes reach all of them).
 */
int sim_altp2m_create_view_copy(struct sim_domain *d, uint16_t *view);
/* xc_altp2m_destroy_view: -EBUSY for view 0 or a view in use, -EINVAL for no such view. */
int sim_altp2m_destroy_view(struct sim_domain *d, uint16_t view);
/* xc_altp2m_switch_to_view: every vCPU; -EINVAL for no such view or an invisible one. */
int sim_altp2m_switch_to_view(struct sim_domain *d, uint16_t view);
/* One vCPU (as a response's ALTERNATE_P2M does; visibility is not checked). */
int sim_altp2m_set_vcpu_view(struct sim_domain *d, unsigned vcpu, uint16_t view);
int sim_altp2m_get_vcpu_view(struct sim_domain *d, unsigned vcpu, uint16_t *view);
/* xc_altp2m_set_visibility: an invisible view cannot be switched to domain-wide or by VMFUNC. */
int sim_altp2m_set_visibility(struct sim_domain *d, uint16_t view, bool visible);
/* Bit i set: view i exists (bit 0 while active). */
uint32_t sim_altp2m_views(const struct sim_domain *d);
/*
 * xc_altp2m_set_mem_access (view 0: the host p2m) and its multi form
 * (xc_altp2m_set_mem_access_multi: gfns[i] gets access[i]); get reads one.
 * -EINVAL for an unknown access or gfn, -EOPNOTSUPP while inactive.
 */
int sim_altp2m_set_mem_access(struct sim_domain *d, uint16_t view, uint64_t gfn, unsigned access);
int sim_altp2m_set_mem_access_multi(struct sim_domain *d, uint16_t view, const uint64_t *gfns,
                                    const uint8_t *access, uint32_t nr);
int sim_altp2m_get_mem_access(struct sim_domain *d, uint16_t view, uint64_t gfn, unsigned *access);
/*
 * xc_altp2m_change_gfn: in the view, old_gfn shows new_gfn's frame (as the
 * view maps it) with new_gfn's access; new_gfn = ~0 removes old_gfn's entry
 * (the view's default access and the host's frame again).  Not for view 0.
 */
#define SIM_INVALID_GFN (~(uint64_t)0)
int sim_altp2m_change_gfn(struct sim_domain *d, uint16_t view, uint64_t old_gfn, uint64_t new_gfn);

/* ---- KVM introspection: KVMI_GET_MAP_TOKEN, KVM_HC_MEM_MAP / UNMAP ------- */

/*
 * A second domain, the introspector, maps pages of this one into its own
 * guest-physical space with KVM_HC_MEM_MAP (32) and a token this call issues
 * (KVMI_GET_MAP_TOKEN; sim/kvmi_mem.c).  The introspector must use the KVM
 * hypercall ABI.  Tokens are derived deterministically from a counter.
 * One introspector per domain (-EBUSY for another); call between sim_run
 * calls (-EBUSY inside one).  Destroying either domain undoes its maps.
 */
struct sim_map_token {
    uint64_t token[4];
};
int sim_kvmi_get_map_token(struct sim_domain *d, struct sim_domain *introspector,
                           struct sim_map_token *out);
/* Gfns of `introspector` now mapping a page of another domain. */
uint64_t sim_kvmi_nr_mapped(const struct sim_domain *introspector);

/* ---- Monitor controls (xc_monitor_*; XEN_DOMCTL_monitor_op) --------------- */

/*
 * They work with or without a ring (without one, events are skipped) and are
 * all cleared by sim_monitor_disable, as Xen's arch_monitor_cleanup_domain.
 * Like Xen, enabling what is enabled (or disabling what is disabled) gives
 * -EEXIST: to change parameters, disable then enable.
 */
#define SIM_CTRLREG_CR0 0
#define SIM_CTRLREG_CR3 1
#define SIM_CTRLREG_CR4 2
#define SIM_CTRLREG_XCR0 3
/* xc_monitor_write_ctrlreg: index 0-3 (CR0, CR3, CR4, XCR0), else -EINVAL. */
int sim_monitor_write_ctrlreg(struct sim_domain *d, unsigned index, bool enable, bool sync,
                              uint64_t bitmask, bool onchangeonly);
/* xc_monitor_mov_to_msr: MSRs 0-0x1fff, 0x40000000-0x40001fff, 0xc0000000-0xc0001fff. */
int sim_monitor_mov_to_msr(struct sim_domain *d, uint32_t msr, bool enable, bool onchangeonly);
int sim_monitor_software_breakpoint(struct sim_domain *d, bool enable);
int sim_monitor_singlestep(struct sim_domain *d, bool enable);
/*
 * XEN_DOMCTL_MONITOR_OP_CONTROL_REGISTERS (op 4, no libxc wrapper): monitored
 * CR0/CR3/CR4 and MSR writes are deferred until the response (DENY cancels
 * them).  Only a monitor disable turns it off.
 */
int sim_monitor_control_registers(struct sim_domain *d);
/*
 * xc_monitor_guest_request(enable, sync, allow_userspace): HVMOP_guest_request_vm_event
 * (and KVM_HC_XEN_HVM_OP 24) sends GUEST_REQUEST (reason 8, no payload);
 * allow_userspace lets CPL > 0 make that one hypercall.
 */
int sim_monitor_guest_request(struct sim_domain *d, bool enable, bool sync, bool allow_userspace);
/* xc_domain_debug_control(XEN_DOMCTL_DEBUG_OP_SINGLE_STEP_ON/OFF) for one vCPU. */
int sim_debug_control_singlestep(struct sim_domain *d, unsigned vcpu, bool on);
bool sim_vcpu_singlestep(const struct sim_domain *d, unsigned vcpu);

/*
 * xc_hvm_inject_trap: a trap delivered through the guest IDT at the vCPU's
 * next entry.  type is Xen's X86_EVENTTYPE_* (3 HW exception, 4 SW interrupt,
 * 5 privileged SW exception, 6 SW exception): for 4-6 the return address is
 * RIP + insn_len.  error_code < 0: none.  -EBUSY when one is already pending.
 */
#define SIM_ET_HW_EXC 3
#define SIM_ET_SW_INT 4
#define SIM_ET_PRI_SW_EXC 5
#define SIM_ET_SW_EXC 6
int sim_inject_trap(struct sim_domain *d, unsigned vcpu, unsigned vector, unsigned type,
                    int64_t error_code, unsigned insn_len, uint64_t cr2);

/* ---- Monitor controls of interface version 7 (Xen 4.17; sim/monitor_events.c) ---- */

/*
 * As the controls above: -EEXIST when the state is unchanged, cleared by
 * sim_monitor_disable.  Every one is in vmisim's capabilities (Intel, HAP),
 * so Xen's -EOPNOTSUPP never applies.
 * cpuid: CPUID (reason 10, sync) with the results already in rax..rdx, RIP at
 * the CPUID; the client moves RIP on (SET_REGISTERS).
 * descriptor_access: LGDT LIDT LLDT LTR SGDT SIDT SLDT STR (reason 13, sync),
 * not executed; EMULATE in the response executes it once, else it runs again.
 * debug_exceptions: #DB from ICEBP (type 5, length 1) and EFLAGS.TF single-step
 * traps (type 3) (reason 9); the #DB is not delivered when the vCPU is paused
 * (sync), the client re-injects it (sim_inject_trap vector 1).
 * inguest_pagefault(disable = true): a p2m violation of the guest's own page
 * walk (FAULT_IN_GPT) is emulated instead of reported.
 * emul_unimplemented: EMUL_UNIMPLEMENTED (reason 14) when an emulation a
 * response asked for cannot be done.
 */
int sim_monitor_cpuid(struct sim_domain *d, bool enable);
int sim_monitor_descriptor_access(struct sim_domain *d, bool enable);
int sim_monitor_debug_exceptions(struct sim_domain *d, bool enable, bool sync);
int sim_monitor_inguest_pagefault(struct sim_domain *d, bool disable);
int sim_monitor_emul_unimplemented(struct sim_domain *d, bool enable);

/* ---- Running ---------------------------------------------------------------- */

enum sim_stop_reason {
    SIM_STOP_LIMIT = 1, /* the instruction budget of this call was used */
    SIM_STOP_EVENT,     /* a request was put on the ring: the client may act */
    SIM_STOP_BLOCKED,   /* no vCPU can run: every live one waits for the client */
    SIM_STOP_HALTED,    /* every vCPU halted */
    SIM_STOP_CRASHED,   /* the domain crashed (e.g. access required, no ring) */
    SIM_STOP_FAULT,     /* a vCPU took an exception its guest cannot handle */
    SIM_STOP_ERROR,     /* vmisim itself failed: see sim_error */
    SIM_STOP_SHUTDOWN,  /* the guest shut the domain down (SCHEDOP_shutdown): why has the reason */
    SIM_STOP_DEADLOCK,  /* an in-process client let every vCPU wait for deadlock_timeout of
                           simulated time: why (and sim_wait_report) says who waits for what */
};

struct sim_stop {
    enum sim_stop_reason reason;
    uint64_t insns;  /* instructions executed by this call, all vCPUs */
    unsigned vcpu;   /* the vCPU concerned (EVENT, FAULT) */
    char why[256];   /* CRASHED, FAULT, ERROR: what happened */
};

/*
 * Runs the domain for at most max_insns instructions.  Before each quantum it
 * takes the client's responses if the client rang the doorbell (Xen's
 * vm_event_resume on the event-channel notification).  Returns 0 and fills
 * *stop; a negative errno only for misuse.
 */
int sim_run(struct sim_domain *d, uint64_t max_insns, struct sim_stop *stop);

/*
 * Simulated time, in instructions: every instruction the vCPUs ran, plus the
 * quanta that passed while every vCPU waited for an in-process client (each
 * such quantum is one more turn for the client).  Deterministic: never wall time.
 */
uint64_t sim_now(const struct sim_domain *d);
/*
 * Who waits for what, in one line: vCPUs awaiting a response, queued for a
 * ring slot, black-eyed, waiting for a page; the toolstack's pause; each
 * ring's outstanding requests and their vCPUs.  For a BLOCKED or DEADLOCK stop.
 */
void sim_wait_report(struct sim_domain *d, char *buf, size_t len);

/* SHUTDOWN_* reason of a domain that shut itself down (0 poweroff .. 5 soft_reset), or -1. */
int sim_domain_shutdown_reason(const struct sim_domain *d);
/* Every hypercall is reported as a SIM_NOTE_HYPERCALL with its decoded arguments and result. */
void sim_set_hypercall_trace(struct sim_domain *d, bool on);

/* ---- An in-process client's turn ---------------------------------------- */

/*
 * Registers the turn of an in-process client, the way a client thread would
 * wake on its event channel, but deterministic: whenever a request has been
 * put on the ring, the simulator calls fn (on its own thread, possibly from
 * inside the vCPU's run), then takes whatever responses the client put and
 * notified.  The client works through the real ring and the calls of this
 * header; it must not call sim_run.  When the response lets the vCPU go on
 * with nothing left to emulate, the vCPU continues without leaving the
 * engine: the fast path for event round trips.  With a client registered,
 * sim_run never stops with SIM_STOP_EVENT unless a vCPU keeps faulting
 * without progress (a client that never relaxes access).
 */
typedef void (*sim_client_fn)(void *opaque);
void sim_set_client(struct sim_domain *d, sim_client_fn fn, void *opaque);

/* ---- What the hypervisor did, for logs ------------------------------------ */

enum sim_note_kind {
    SIM_NOTE_REQUEST,   /* a request was put on the ring: `msg` points at it */
    SIM_NOTE_RESPONSE,  /* a response was taken and acted on */
    SIM_NOTE_IGNORED,   /* a response was taken and dropped (why says why, as Xen logs) */
    SIM_NOTE_ACTION,    /* something the hypervisor did: conversion, emulation, crash ... */
    SIM_NOTE_RING,      /* the ring broke: the client violated the protocol */
    SIM_NOTE_HYPERCALL, /* a hypercall and its result (sim_set_hypercall_trace) */
    SIM_NOTE_CONSOLE,   /* one line the guest wrote with console_io */
};

struct vme_msg;
struct sim_note {
    enum sim_note_kind kind;
    unsigned vcpu;
    const struct vme_msg *msg; /* REQUEST, RESPONSE, IGNORED */
    const char *text;          /* one sentence */
};
typedef void (*sim_observer_fn)(void *opaque, const struct sim_note *note);
void sim_set_observer(struct sim_domain *d, sim_observer_fn fn, void *opaque);

/* ---- Scheduling: seeds, each decision, a schedule source (issue 8) ------------ */

/*
 * The scheduler makes one decision before each stretch of guest execution:
 * which runnable vCPU runs and for how many instructions (its quantum; the
 * sim_run call's own budget may cut it shorter).  With seed 0 the decision
 * is round robin in fixed quanta (sim_config.quantum), as it always was.
 * With any other seed a small PRNG of vmisim's own (splitmix64, the same on
 * every machine) picks any runnable vCPU and a quantum of 1 to 2 x quantum,
 * one time in four only 1 to 8 instructions, so vCPUs interleave around
 * events; the same seed gives the same decisions, hence the same events.
 * Set the seed before the first sim_run (changing it later restarts the PRNG).
 */
void sim_set_seed(struct sim_domain *d, uint64_t seed);
uint64_t sim_seed(const struct sim_domain *d);

#define SIM_VCPU_WORDS ((SIM_MAX_VCPUS + 63) / 64)
struct sim_schedule {
    uint64_t n;               /* the domain's decision number, from 0 */
    unsigned vcpu;            /* the vCPU that runs */
    uint64_t quantum;         /* its instructions, >= 1 */
    uint64_t runnable[SIM_VCPU_WORDS]; /* bit i: vCPU i could run (for a source's checks) */
    char why[200];            /* a source that refuses a decision says why here */
};
/* Sees every decision, after it is made (recording, tracing). */
typedef void (*sim_schedule_observer_fn)(void *opaque, const struct sim_schedule *s);
void sim_set_schedule_observer(struct sim_domain *d, sim_schedule_observer_fn fn, void *opaque);
/*
 * Dictates every decision (replay): called with the scheduler's own choice
 * in *s, it may change vcpu and quantum.  A negative return, or a vCPU that
 * is not runnable, or a quantum of 0, stops sim_run with SIM_STOP_ERROR and
 * the reason in stop->why and sim_error (the source's `why` when it gave one).
 */
typedef int (*sim_schedule_source_fn)(void *opaque, struct sim_schedule *s);
void sim_set_schedule_source(struct sim_domain *d, sim_schedule_source_fn fn, void *opaque);

/* ---- Snapshots (sim/snapshot.c, docs/snapshot-format.md) ------------------ */

/*
 * A snapshot holds the whole machine: guest RAM and the pool of shared pages,
 * every vCPU (registers, FPU/SSE, descriptor caches, pause counts, pending
 * resume work, single-step, injected trap, altp2m view), the host p2m, the
 * gfn-to-frame map, the sharing tables, altp2m and every view, the monitor
 * controls and intercept mask, the three rings (contents, indices, claims,
 * wait queues, doorbell bits), page accounting, crash/shutdown and the
 * toolstack pause count.  Not in it: the observer, the in-process client and
 * the hypercall trace setting (the caller's), KVM tokens; a client's own ring
 * indices are the client's to save (ring_back_save).
 *
 * take copies everything (RAM in full); restore copies back only the frames
 * written since this snapshot was taken or last restored (dirty tracking covers
 * guest writes, page-table A/D bits, emulation, injected exception frames and
 * every host write of sim/), however many snapshots of the domain exist.  Both
 * run between sim_run calls only (-EBUSY inside one).  Refused with -EBUSY:
 * while another domain maps this one's pages or this one maps another's
 * (KVM_HC_MEM_MAP), or when a ring exists now that the snapshot does not have
 * (or the reverse, or it was disabled and enabled again) — the client holds
 * that ring's descriptors.  -EINVAL for a snapshot of another configuration or
 * one attached to another domain.  Free snapshots with sim_snapshot_free, in
 * any order with the domain.
 */
struct sim_snapshot;
int sim_snapshot_take(struct sim_domain *d, struct sim_snapshot **out);
int sim_snapshot_restore(struct sim_domain *d, struct sim_snapshot *s);
void sim_snapshot_free(struct sim_snapshot *s);
/*
 * To and from a file (docs/snapshot-format.md): versioned, every section
 * checksummed; a file read back restores exactly as the snapshot written.
 * read checks the file against d's configuration (-EINVAL with the reason);
 * a damaged, truncated or foreign file gives -EINVAL (-EIO/-ENOENT for the
 * file system) with the reason in sim_error(d).  A snapshot read from a file
 * is attached to d by its first restore (which copies all of RAM).
 */
int sim_snapshot_write(struct sim_domain *d, const struct sim_snapshot *s, const char *path);
int sim_snapshot_read(struct sim_domain *d, const char *path, struct sim_snapshot **out);
/* Frames (home and pool) written since the last take or restore. */
uint64_t sim_snapshot_dirty_pages(const struct sim_domain *d);
/* Pages the last sim_snapshot_restore copied back. */
uint64_t sim_snapshot_restored_pages(const struct sim_domain *d);


/* ---- Fuzzing a client (sim/fuzz_client.c; docs/fuzzing.md) ----------------- */

/*
 * `vmisim fuzz-client` in-process: the simulator drives a client written
 * against this API with event streams generated from a seed — valid per the
 * vm_event ABI, hostile in content and timing (extreme fields, bursts that
 * fill the ring, every vCPU at once, reasons the client never enabled, guest
 * memory rewritten while the client reads it) — and watches for the client's
 * failures: a crash (with `isolate`, each run is a forked child), a hang in
 * simulated time, a response that breaks the protocol, a vCPU never released.
 * A failure is minimised and written as a scenario file (a `hypervisor:`
 * section, docs/scenario-format.md) that replays it.
 */
struct sim_fuzz_client {
    const char *name;
    /*
     * Attach to a freshly built domain as the client does at its start:
     * sim_monitor_enable, its side of the ring (ring_back_attach), the
     * controls and p2m settings it wants, sim_set_client for its turns.
     * 0, or a negative errno: a set-up error (not a finding).
     */
    int (*attach)(void *opaque, struct sim_domain *d);
    /* Let go of everything attach made (the client's exit path); after every run. */
    void (*detach)(void *opaque, struct sim_domain *d);
    void *opaque;
};

struct sim_fuzz_options {
    uint64_t seed;            /* run i uses seed + i */
    unsigned runs;            /* 0: the default budget, 200 runs */
    unsigned vcpus;           /* 0: 4 */
    unsigned max_steps;       /* most hypervisor steps per run; 0: 48 */
    unsigned ring_version;    /* 0: 7 */
    unsigned ring_pages;      /* 0: 1 */
    const char *reproducer;   /* the minimised failing scenario is written here (NULL: not written) */
    bool isolate;             /* fork a child per run: a crashing client becomes a finding */
    bool verbose;             /* one line per run on stderr */
};

enum sim_fuzz_failure {
    SIM_FUZZ_NONE = 0,
    SIM_FUZZ_CRASH,           /* the client died (signal, sanitizer, abort) */
    SIM_FUZZ_HANG,            /* the client stopped taking requests (simulated time) */
    SIM_FUZZ_PROTOCOL,        /* a response or ring index that breaks the protocol */
    SIM_FUZZ_UNRELEASED,      /* a vCPU left paused: request taken, never answered or answered without VCPU_PAUSED */
};

struct sim_fuzz_result {
    enum sim_fuzz_failure failure;
    uint64_t seed;            /* of the failing run */
    unsigned runs;            /* runs done */
    unsigned steps;           /* steps of the failing run as generated */
    unsigned minimised_steps; /* and after minimising */
    char what[512];           /* one sentence: what the client did wrong */
};

/* Names: "crash", "hang", "protocol", "unreleased", "none". */
const char *sim_fuzz_failure_name(enum sim_fuzz_failure f);
/* Fuzzes the client; 0 with *res (res->failure says whether one was found), or a negative errno. */
int sim_fuzz_client(const struct sim_fuzz_client *c, const struct sim_fuzz_options *o,
                    struct sim_fuzz_result *res);
/*
 * One run whose choices come from `data` (a fuzzer's input) instead of a seed:
 * called from LLVMFuzzerTestOneInput, it lets a coverage-guided fuzzer
 * (libFuzzer, AFL++) steer the event streams by the coverage of a client built
 * with -fsanitize=fuzzer (docs/fuzzing.md).  Never isolated: the fuzzer sees
 * a crash itself.  A failure is reported in *res (not minimised) and, with
 * o->reproducer, written as a scenario; the caller aborts so the fuzzer keeps
 * the input.  Options other than vcpus, max_steps, ring_version, reproducer
 * and verbose are ignored.
 */
int sim_fuzz_client_input(const struct sim_fuzz_client *c, const uint8_t *data, size_t size,
                          const struct sim_fuzz_options *o, struct sim_fuzz_result *res);
/* Runs a reproducer (or any scenario with a `hypervisor:` section) once against the client. */
int sim_fuzz_client_replay(const struct sim_fuzz_client *c, const char *scenario_path, bool isolate,
                           struct sim_fuzz_result *res);

#endif
