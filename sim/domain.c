/*
 * sim/domain.c — a domain: guest RAM, vCPUs, the host p2m, and the scheduler
 * that runs the vCPUs in fixed quanta on the caller's thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "hypercall_internal.h"
#include "sim_internal.h"

#define SIM_DEFAULT_QUANTUM 10000
/* Idle simulated time before an in-process client that never answers is a deadlock (sim/wait.c). */
#define SIM_DEFAULT_DEADLOCK_TIMEOUT 10000000ull

int sim_set_error(struct sim_domain *d, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->error, sizeof(d->error), fmt, ap);
    va_end(ap);
    return err;
}

const char *sim_error(const struct sim_domain *d)
{
    return d->error;
}

void sim_note(struct sim_domain *d, enum sim_note_kind kind, unsigned vcpu,
              const struct vme_msg *msg, const char *fmt, ...)
{
    if (!d->observer)
        return;
    char text[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    struct sim_note note = {.kind = kind, .vcpu = vcpu, .msg = msg, .text = text};
    d->observer(d->observer_opaque, &note);
}

void sim_set_observer(struct sim_domain *d, sim_observer_fn fn, void *opaque)
{
    d->observer = fn;
    d->observer_opaque = opaque;
}

void sim_domain_crash(struct sim_domain *d, const char *fmt, ...)
{
    if (d->crashed)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->crash_why, sizeof(d->crash_why), fmt, ap);
    va_end(ap);
    d->crashed = true;
    sim_note(d, SIM_NOTE_ACTION, 0, NULL, "domain crashed: %s", d->crash_why);
}


void sim_set_client(struct sim_domain *d, sim_client_fn fn, void *opaque)
{
    d->client = fn;
    d->client_opaque = opaque;
    struct sim_monitor *rings[] = {&d->paging, &d->sharing, &d->monitor};
    for (unsigned i = 0; i < 3; i++) {
        struct evtchn *e = rings[i]->ring ? rings[i]->evtchn : NULL;
        if (!e)
            continue;
        if (fn) {
            /* Polled, not woken: mask our port; a delivery already made is acted on now. */
            evtchn_mask(e);
            if (evtchn_pending(e) > 0) {
                if (rings[i] == &d->paging)
                    sim_paging_resume(d);
                else if (rings[i] == &d->sharing)
                    sim_sharing_resume(d);
                else
                    sim_monitor_resume(d);
            }
        } else {
            /* Woken again: unmasking delivers whatever became pending meanwhile. */
            evtchn_unmask(e);
        }
    }
}

/*
 * The in-process client's turn: as long as requests were posted, let it act,
 * then take its responses (as if its notification had arrived).  Iterative,
 * never re-entrant: taking responses can post a queued vCPU's request.
 */
static void sim_client_turn(struct sim_domain *d)
{
    if (!d->client || d->in_client)
        return;
    d->in_client = true;
    while (d->event_posted) {
        d->event_posted = false;
        d->client(d->client_opaque);
        sim_monitor_poll(d);
    }
    d->in_client = false;
}

/* A vCPU faulting on the same access this many times in a row leaves the engine. */
#define SIM_MAX_SAME_FAULT 16

/*
 * cpu/'s in-engine handler: a refused access is judged right here, inside the
 * vCPU's run.  When nothing is left for the vCPU to wait for (a conversion, no
 * listener, or an in-process client that answered at once) it goes on without
 * leaving the engine; otherwise the run stops.
 */
static enum cpu_verdict sim_cpu_handler(void *opaque, struct cpu *c, const struct cpu_exit *ev)
{
    struct sim_vcpu *v = opaque;
    struct sim_domain *d = v->domain;
    if (ev->reason == CPU_EXIT_INSN) {
        /* Nothing for the monitor: it runs as if not intercepted, without leaving the engine. */
        if (sim_insn_wants_exit(d, v, &ev->insn))
            return CPU_STOP;
        cpu_insn_execute(c);
        return CPU_RESUME;
    }
    if (ev->reason != CPU_EXIT_ACCESS)
        return CPU_STOP;
    sim_mem_access_fault(d, v, &ev->access);
    v->access_handled = true;
    if (d->crashed)
        return CPU_STOP;
    sim_client_turn(d);
    if (d->event_posted || !sim_vcpu_runnable(v) || v->resume.emulate_flags || v->resume.set_gprs
        || d->code_flush_pending)
        return CPU_STOP;
    uint64_t rip = cpu_rip(c);
    if (rip == v->last_fault_rip && ev->access.gpa == v->last_fault_gpa) {
        if (++v->same_fault >= SIM_MAX_SAME_FAULT)
            return CPU_STOP;
    } else {
        v->same_fault = 0;
        v->last_fault_rip = rip;
        v->last_fault_gpa = ev->access.gpa;
    }
    v->access_handled = false;
    return CPU_RESUME;
}

int sim_domain_create(struct sim_domain **out, const struct sim_config *cfg)
{
    if (cfg->ram_size == 0 || cfg->ram_size % CPU_PAGE_SIZE || cfg->nr_vcpus == 0
        || cfg->nr_vcpus > SIM_MAX_VCPUS || cfg->nr_online > cfg->nr_vcpus
        || (cfg->mode != CPU_MODE_LONG && cfg->mode != CPU_MODE_PAE32)
        || (unsigned)cfg->hypercalls > SIM_HYPERCALL_KVM)
        return -EINVAL;
    struct sim_domain *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->mode = cfg->mode;
    d->ram_size = cfg->ram_size;
    d->nr_vcpus = cfg->nr_vcpus;
    d->quantum = cfg->quantum ? cfg->quantum : SIM_DEFAULT_QUANTUM;
    d->deadlock_timeout = cfg->deadlock_timeout ? cfg->deadlock_timeout : SIM_DEFAULT_DEADLOCK_TIMEOUT;
    sim_set_seed(d, cfg->seed);
    d->hypercalls = cfg->hypercalls;
    d->monitor.idx = SIM_RING_MONITOR;
    d->monitor.name = "monitor";
    d->paging.idx = SIM_RING_PAGING;
    d->paging.name = "paging";
    d->sharing.idx = SIM_RING_SHARING;
    d->sharing.name = "sharing";
    /* Only the ABI's VMCALL/VMMCALL, set at creation (no code-cache flush). */
    d->intercept = hcall_intercept_mask(cfg->hypercalls);
    int rc = -ENOMEM;
    if ((rc = sim_memory_init(d)) < 0 || (rc = p2m_create(&d->host_p2m, d->nr_gfns)) < 0)
        goto fail;
    d->vcpus = calloc(cfg->nr_vcpus, sizeof(*d->vcpus));
    if (!d->vcpus)
        goto fail;
    struct cpu_config cc = {
        .mode = cfg->mode,
        .mem = {.ram = d->ram, .size = d->ram_size,
                .restricted = p2m_restricted_bitmap(d->host_p2m),
                .rights = sim_vcpu_rights, .remapped = d->remapped, .frame = sim_vcpu_frame},
        .intercept = d->intercept,
    };
    for (unsigned i = 0; i < cfg->nr_vcpus; i++) {
        struct sim_vcpu *v = &d->vcpus[i];
        v->domain = d;
        v->id = i;
        v->state = SIM_VCPU_RUNNABLE;
        /* Xen's secondary vCPUs start down, without register state, until the guest brings them up. */
        v->initialised = !cfg->nr_online || i < cfg->nr_online;
        v->down = !v->initialised;
        cc.mem.opaque = v; /* the vCPU's view decides its rights and frames */
        if ((rc = cpu_create(&v->cpu, &cc)) < 0)
            goto fail;
        cpu_set_handler(v->cpu, sim_cpu_handler, v);
    }
    /* The pool of shared pages is reachable from the start: no mapping during a run. */
    if ((rc = sim_memory_map_into(d, d)) < 0)
        goto fail;
    *out = d;
    return 0;
fail:
    sim_domain_destroy(d);
    return rc;
}

void sim_domain_destroy(struct sim_domain *d)
{
    if (!d)
        return;
    sim_kvmi_free(d);
    inject_free(d);
    sim_monitor_free(d);
    sim_sharing_free(d);
    sim_altp2m_free(d);
    if (d->vcpus)
        for (unsigned i = 0; i < d->nr_vcpus; i++)
            cpu_destroy(d->vcpus[i].cpu);
    free(d->vcpus);
    p2m_destroy(d->host_p2m);
    sim_memory_free(d);
    free(d);
}

/* ---- vCPUs --------------------------------------------------------------- */

unsigned sim_nr_vcpus(const struct sim_domain *d)
{
    return d->nr_vcpus;
}

static struct sim_vcpu *sim_vcpu(const struct sim_domain *d, unsigned vcpu)
{
    return vcpu < d->nr_vcpus ? &d->vcpus[vcpu] : NULL;
}

int sim_vcpu_get_regs(struct sim_domain *d, unsigned vcpu, struct cpu_regs *r)
{
    struct sim_vcpu *v = sim_vcpu(d, vcpu);
    if (!v)
        return sim_set_error(d, -EINVAL, "no vCPU %u (the domain has %u vCPU(s))", vcpu, d->nr_vcpus);
    int rc = cpu_get_regs(v->cpu, r);
    return rc < 0 ? sim_set_error(d, rc, "vCPU %u: %s", vcpu, cpu_error(v->cpu)) : 0;
}

int sim_vcpu_set_regs(struct sim_domain *d, unsigned vcpu, const struct cpu_regs *r)
{
    struct sim_vcpu *v = sim_vcpu(d, vcpu);
    if (!v)
        return sim_set_error(d, -EINVAL, "no vCPU %u (the domain has %u vCPU(s))", vcpu, d->nr_vcpus);
    int rc = cpu_set_regs(v->cpu, r);
    return rc < 0 ? sim_set_error(d, rc, "vCPU %u: %s", vcpu, cpu_error(v->cpu)) : 0;
}

bool sim_vcpu_runnable(const struct sim_vcpu *v)
{
    return v->state == SIM_VCPU_RUNNABLE && !v->down && v->pause_count == 0 && !v->ring_blocked
           && !v->waiting_slot && !v->paging_wait && v->domain->controller_pause_count == 0;
}

int sim_domain_pause(struct sim_domain *d)
{
    /* Xen caps the toolstack's count at 255 so repeated calls cannot overflow d->pause_count. */
    if (d->controller_pause_count == 255)
        return sim_set_error(d, -EOVERFLOW, "the domain is already paused 255 times by the toolstack "
                             "(Xen: EOVERFLOW)");
    d->controller_pause_count++;
    return 0;
}

int sim_domain_unpause(struct sim_domain *d)
{
    if (d->controller_pause_count == 0)
        return sim_set_error(d, -EINVAL, "the domain is not paused by the toolstack (Xen: EINVAL)");
    d->controller_pause_count--;
    return 0;
}

unsigned sim_domain_pause_count(const struct sim_domain *d)
{
    return d->controller_pause_count;
}

enum sim_vcpu_state sim_vcpu_state(const struct sim_domain *d, unsigned vcpu)
{
    const struct sim_vcpu *v = sim_vcpu(d, vcpu);
    if (!v)
        return SIM_VCPU_FAULTED;
    if (v->state != SIM_VCPU_RUNNABLE)
        return v->state;
    if (v->down)
        return SIM_VCPU_DOWN;
    return sim_vcpu_runnable(v) ? SIM_VCPU_RUNNABLE : SIM_VCPU_PAUSED;
}

unsigned sim_vcpu_pause_count(const struct sim_domain *d, unsigned vcpu)
{
    const struct sim_vcpu *v = sim_vcpu(d, vcpu);
    return v ? v->pause_count : 0;
}

uint64_t sim_vcpu_insns(const struct sim_domain *d, unsigned vcpu)
{
    const struct sim_vcpu *v = sim_vcpu(d, vcpu);
    return v ? v->insns : 0;
}

/* vm_event_fill_regs (xen/arch/x86/vm_event.c). */
void sim_fill_regs(struct sim_vcpu *v, struct vme_regs *out)
{
    struct cpu_regs r;
    memset(out, 0, sizeof(*out));
    if (cpu_get_regs(v->cpu, &r) < 0)
        return;
    out->rax = r.rax; out->rcx = r.rcx; out->rdx = r.rdx; out->rbx = r.rbx;
    out->rsp = r.rsp; out->rbp = r.rbp; out->rsi = r.rsi; out->rdi = r.rdi;
    out->r8 = r.r8; out->r9 = r.r9; out->r10 = r.r10; out->r11 = r.r11;
    out->r12 = r.r12; out->r13 = r.r13; out->r14 = r.r14; out->r15 = r.r15;
    out->rflags = r.rflags;
    out->dr6 = 0xffff0ff0; /* the architectural reset value: cpu/ does not model DR6 */
    out->dr7 = r.dr7;
    out->rip = r.rip;
    out->cr0 = r.cr0; out->cr2 = r.cr2; out->cr3 = r.cr3; out->cr4 = r.cr4;
    out->sysenter_cs = r.sysenter_cs; out->sysenter_esp = r.sysenter_esp;
    out->sysenter_eip = r.sysenter_eip;
    out->msr_efer = r.efer; out->msr_star = r.star; out->msr_lstar = r.lstar;
    out->gdtr_base = r.gdtr_base;
    out->gdtr_limit = r.gdtr_limit;
    out->vmtrace_pos = ~0ull; /* vmtrace is never on */
    out->fs_base = r.fs_base; out->gs_base = r.gs_base; out->shadow_gs = r.shadow_gs;
    out->cs_base = (uint32_t)r.cs.base; out->ss_base = (uint32_t)r.ss.base;
    out->ds_base = (uint32_t)r.ds.base; out->es_base = (uint32_t)r.es.base;
    const struct cpu_segment *src[6] = {&r.cs, &r.ss, &r.ds, &r.es, &r.fs, &r.gs};
    struct vme_selector *dst[6] = {&out->cs, &out->ss, &out->ds, &out->es, &out->fs, &out->gs};
    for (int i = 0; i < 6; i++) {
        /* Xen's segment_register.attr: access byte in bits 0-7, flags (AVL, L, D/B, G) in 8-11. */
        uint32_t attr = (src[i]->attr & 0xff) | ((src[i]->attr >> 4) & 0xf00);
        bool g = attr & 0x800;
        dst[i]->sel = src[i]->selector;
        dst[i]->ar = attr;
        /* vm_event_pack_segment_register: the limit in pages when G is set. */
        dst[i]->limit = g ? src[i]->limit >> 12 : src[i]->limit;
    }
    out->cs_arbytes = out->cs.ar;
}

void sim_p2m_changed(struct sim_domain *d, uint64_t first_gfn, uint64_t nr)
{
    for (unsigned i = 0; i < d->nr_vcpus; i++)
        for (uint64_t g = first_gfn; g < first_gfn + nr; g++)
            cpu_p2m_restricted(d->vcpus[i].cpu, g);
}

/* ---- mem_access ---------------------------------------------------------- */

int sim_p2m_set_access(struct sim_domain *d, unsigned access, uint64_t first_gfn, uint64_t nr)
{
    bool lost;
    int rc = p2m_set_access(d->host_p2m, first_gfn, nr, (enum p2m_access)access, &lost);
    if (rc < 0)
        return sim_set_error(d, rc, "cannot set access %u on gfns %#llx+%#llx: %s (the p2m has %#llx gfns, access types are 0-10)",
                             access, (unsigned long long)first_gfn, (unsigned long long)nr,
                             (unsigned)access >= P2M_ACCESS_COUNT ? "unknown access type" : "range beyond the p2m",
                             (unsigned long long)p2m_nr_gfns(d->host_p2m));
    if (first_gfn != ~0ull)
        sim_altp2m_host_access_changed(d, first_gfn, nr);
    if (lost)
        sim_p2m_changed(d, first_gfn, nr);
    return 0;
}

int sim_set_mem_access(struct sim_domain *d, unsigned access, uint64_t first_gfn, uint64_t nr)
{
    /* xen/common/mem_access.c: mem_access needs an active monitor ring. */
    if (!d->monitor.ring)
        return sim_set_error(d, -ENODEV, "xc_set_mem_access needs an enabled monitor ring (Xen returns -ENODEV)");
    return sim_p2m_set_access(d, access, first_gfn, nr);
}

int sim_get_mem_access(struct sim_domain *d, uint64_t gfn, unsigned *access)
{
    enum p2m_access a;
    int rc = p2m_get_access(d->host_p2m, gfn, &a);
    if (rc < 0)
        return sim_set_error(d, rc, "gfn %#llx is beyond the p2m (%#llx gfns)",
                             (unsigned long long)gfn, (unsigned long long)p2m_nr_gfns(d->host_p2m));
    *access = a;
    return 0;
}

void sim_set_access_required(struct sim_domain *d, bool required)
{
    d->access_required = required;
}

/* ---- Running ---------------------------------------------------------------- */

static void sim_stop_set(struct sim_stop *stop, enum sim_stop_reason reason, unsigned vcpu,
                         const char *why)
{
    stop->reason = reason;
    stop->vcpu = vcpu;
    snprintf(stop->why, sizeof(stop->why), "%s", why ? why : "");
}

/* Next runnable vCPU, round robin from the cursor; NULL when none. */
static struct sim_vcpu *sim_pick(struct sim_domain *d)
{
    for (unsigned k = 0; k < d->nr_vcpus; k++) {
        struct sim_vcpu *v = &d->vcpus[(d->next_vcpu + k) % d->nr_vcpus];
        if (sim_vcpu_runnable(v))
            return v;
    }
    return NULL;
}

/* ---- Scheduling decisions: round robin, seeded, or dictated (issue 8) ---- */

void sim_set_seed(struct sim_domain *d, uint64_t seed)
{
    d->seed = seed;
    d->sched_rng = seed;
}

uint64_t sim_seed(const struct sim_domain *d)
{
    return d->seed;
}

void sim_set_schedule_observer(struct sim_domain *d, sim_schedule_observer_fn fn, void *opaque)
{
    d->sched_observer = fn;
    d->sched_observer_opaque = opaque;
}

void sim_set_schedule_source(struct sim_domain *d, sim_schedule_source_fn fn, void *opaque)
{
    d->sched_source = fn;
    d->sched_source_opaque = opaque;
}

/*
 * splitmix64 (Steele, Lea, Flood): a few lines, no state but one word, and
 * integer arithmetic only, so a seed gives the same numbers on every machine
 * and compiler, which is what makes a failing seed reproduce elsewhere.
 */
static uint64_t sched_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static bool sched_bit(const uint64_t *set, unsigned i)
{
    return (set[i / 64] >> (i % 64)) & 1;
}

/*
 * The decision before a stretch of guest execution.  `v` is round robin's
 * choice, which seed 0 keeps with d->quantum, so the schedule of seed 0 is
 * exactly the one vmisim always had.  A seed draws the vCPU among the
 * runnable ones and the quantum; a source (replay) has the last word.
 * Returns the vCPU to run, or NULL with d->error set.
 */
static struct sim_vcpu *sim_decide(struct sim_domain *d, struct sim_vcpu *v, uint64_t *quantum)
{
    struct sim_schedule s = {.n = d->sched_n, .vcpu = v->id, .quantum = d->quantum};
    unsigned nr_runnable = 0;
    if (d->seed || d->sched_source || d->sched_observer)
        for (unsigned i = 0; i < d->nr_vcpus; i++)
            if (sim_vcpu_runnable(&d->vcpus[i])) {
                s.runnable[i / 64] |= 1ull << (i % 64);
                nr_runnable++;
            }
    if (d->seed) {
        /* Any runnable vCPU, evenly. */
        uint64_t k = sched_random(&d->sched_rng) % nr_runnable;
        for (unsigned i = 0; i < d->nr_vcpus; i++)
            if (sched_bit(s.runnable, i) && k-- == 0) {
                s.vcpu = i;
                break;
            }
        /* A quarter of the quanta are tiny: the other vCPUs then run between two events. */
        uint64_t q = sched_random(&d->sched_rng);
        s.quantum = (q & 3) == 0 ? 1 + (q >> 2) % 8 : 1 + (q >> 2) % (2 * d->quantum);
    }
    if (d->sched_source) {
        int rc = d->sched_source(d->sched_source_opaque, &s);
        if (rc < 0) {
            sim_set_error(d, rc, "the schedule source refused decision %llu: %s",
                          (unsigned long long)s.n, s.why[0] ? s.why : "no reason given");
            return NULL;
        }
        if (s.vcpu >= d->nr_vcpus || !sched_bit(s.runnable, s.vcpu) || s.quantum == 0) {
            char list[200] = "none";
            size_t off = 0;
            for (unsigned i = 0; i < d->nr_vcpus && off < sizeof(list); i++)
                if (sched_bit(s.runnable, i)) {
                    int w = snprintf(list + off, sizeof(list) - off, "%s%u", off ? ", " : "", i);
                    off += w > 0 ? (size_t)w : 0;
                }
            if (s.quantum == 0)
                sim_set_error(d, -EINVAL, "scheduling decision %llu: a quantum of 0 instructions "
                              "(a source must give at least 1)", (unsigned long long)s.n);
            else
                sim_set_error(d, -EINVAL, "scheduling decision %llu: vCPU %u is not runnable now "
                              "(runnable: %s)", (unsigned long long)s.n, s.vcpu, list);
            return NULL;
        }
    }
    d->sched_n++;
    if (d->sched_observer)
        d->sched_observer(d->sched_observer_opaque, &s);
    *quantum = s.quantum;
    return &d->vcpus[s.vcpu];
}

/* Why nothing can run. */
static void sim_idle_reason(struct sim_domain *d, struct sim_stop *stop)
{
    unsigned halted = 0;
    for (unsigned i = 0; i < d->nr_vcpus; i++) {
        struct sim_vcpu *v = &d->vcpus[i];
        if (v->state == SIM_VCPU_FAULTED) {
            sim_stop_set(stop, SIM_STOP_FAULT, i, v->fault);
            return;
        }
        /* A vCPU that is down waits for nobody: the guest is over when the others halted. */
        halted += v->state == SIM_VCPU_HALTED || v->down;
    }
    if (halted == d->nr_vcpus)
        sim_stop_set(stop, SIM_STOP_HALTED, 0, NULL);
    else
        sim_stop_set(stop, SIM_STOP_BLOCKED, 0, NULL);
}

static void sim_vcpu_fault(struct sim_domain *d, struct sim_vcpu *v, const struct cpu_fault *f)
{
    v->state = SIM_VCPU_FAULTED;
    snprintf(v->fault, sizeof(v->fault), "vCPU %u: %s", v->id, f->why);
    sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "%s", v->fault);
}

/* Events one sim_run call handles in-process before it hands control back. */
#define SIM_MAX_EVENTS_PER_RUN 100000

static int run_domain(struct sim_domain *d, uint64_t max_insns, struct sim_stop *stop)
{
    memset(stop, 0, sizeof(*stop));
    d->event_posted = false;
    d->events_in_run = 0;
    for (;;) {
        if (d->crashed) {
            sim_stop_set(stop, SIM_STOP_CRASHED, 0, d->crash_why);
            return 0;
        }
        if (d->shutdown) {
            /* domain_shutdown: every vCPU is paused for good; the client keeps its ring. */
            static const char *const names[] = {"poweroff", "reboot", "suspend", "crash", "watchdog",
                                                "soft_reset"};
            char why[64];
            snprintf(why, sizeof(why), "reason %s (%u)",
                     d->shutdown_reason < 6 ? names[d->shutdown_reason] : "unknown", d->shutdown_reason);
            sim_monitor_poll(d);
            sim_client_turn(d);
            if (d->event_posted) {
                sim_stop_set(stop, SIM_STOP_EVENT, d->event_vcpu, NULL);
                return 0;
            }
            sim_stop_set(stop, SIM_STOP_SHUTDOWN, 0, why);
            return 0;
        }
        sim_monitor_poll(d);
        /* The hypervisor's own script (sim/inject.c): steps due now, before the client's turn. */
        inject_poll(d);
        sim_client_turn(d);
        if (d->event_posted || d->events_in_run > SIM_MAX_EVENTS_PER_RUN) {
            sim_stop_set(stop, SIM_STOP_EVENT, d->event_vcpu, NULL);
            return 0;
        }
        struct sim_vcpu *v = sim_pick(d);
        if (!v) {
            /* An in-process client gets turns in simulated time, up to the deadlock timeout. */
            int waited = sim_idle_wait(d, stop);
            if (waited > 0)
                continue;
            if (waited == 0)
                sim_idle_reason(d, stop);
            return 0;
        }
        if (stop->insns >= max_insns) {
            sim_stop_set(stop, SIM_STOP_LIMIT, 0, NULL);
            return 0;
        }
        uint64_t quantum;
        if (!(v = sim_decide(d, v, &quantum))) {
            sim_stop_set(stop, SIM_STOP_ERROR, 0, d->error);
            return 0;
        }
        int rc = sim_vcpu_do_resume(d, v);
        if (rc < 0) {
            sim_stop_set(stop, SIM_STOP_ERROR, v->id, d->error);
            return 0;
        }
        stop->insns += (uint64_t)rc;
        d->insns += (uint64_t)rc;
        /* An emulated instruction may have used the last of the budget: the loop's top stops at LIMIT. */
        if (!sim_vcpu_runnable(v) || d->crashed || d->event_posted || d->shutdown || stop->insns >= max_insns)
            continue;
        if (d->code_flush_pending) {
            /* Page contents changed under translated code (sim/paging.c): retranslate. */
            d->code_flush_pending = false;
            for (unsigned i = 0; i < d->nr_vcpus; i++)
                cpu_flush_code(d->vcpus[i].cpu);
        }
        d->ran = true;
        uint64_t budget = max_insns - stop->insns;
        if (budget > quantum)
            budget = quantum;
        /* A script step due within the quantum cuts it, so the step fires on its instruction. */
        budget = inject_budget(d, budget);
        struct cpu_exit ex;
        rc = cpu_run(v->cpu, budget, &ex);
        if (rc < 0) {
            sim_set_error(d, rc, "vCPU %u: %s", v->id, cpu_error(v->cpu));
            sim_stop_set(stop, SIM_STOP_ERROR, v->id, d->error);
            return 0;
        }
        stop->insns += ex.insns;
        v->insns += ex.insns;
        d->insns += ex.insns;
        switch (ex.reason) {
        case CPU_EXIT_STEP:
            /* An MTF exit: the SINGLESTEP event when its monitor is on. */
            sim_singlestep_done(d, v);
            d->next_vcpu = (v->id + 1) % d->nr_vcpus;
            break;
        case CPU_EXIT_LIMIT:
        case CPU_EXIT_PAUSE:
            d->next_vcpu = (v->id + 1) % d->nr_vcpus;
            break;
        case CPU_EXIT_ACCESS:
            if (!v->access_handled)
                sim_mem_access_fault(d, v, &ex.access);
            v->access_handled = false;
            break;
        case CPU_EXIT_HLT:
            v->state = SIM_VCPU_HALTED;
            sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "vCPU %u halted", v->id);
            /* VMX: with MTF on, the MTF exit comes on the boundary after HLT, in the HLT
             * activity state: the SINGLESTEP event of the HLT itself (the vCPU stays halted). */
            sim_singlestep_done(d, v);
            break;
        case CPU_EXIT_FAULT:
            sim_vcpu_fault(d, v, &ex.fault);
            break;
        case CPU_EXIT_INSN:
            /* A monitored instruction (sim/monitor_events.c). */
            rc = sim_insn_intercept(d, v, &ex.insn);
            if (rc < 0) {
                sim_stop_set(stop, SIM_STOP_ERROR, v->id, d->error);
                return 0;
            }
            stop->insns += (uint64_t)rc;
            v->insns += (uint64_t)rc;
            d->insns += (uint64_t)rc;
            if (v->state == SIM_VCPU_FAULTED)
                sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "%s", v->fault);
            break;
        }
    }
}

int sim_run(struct sim_domain *d, uint64_t max_insns, struct sim_stop *stop)
{
    /* Marked so that what must not happen during a run (mapping areas into vCPUs) can refuse. */
    d->in_run = true;
    int rc = run_domain(d, max_insns, stop);
    d->in_run = false;
    return rc;
}
