/*
 * sim/snapshot.c — snapshots of the whole machine, in memory and in files
 * (sim/sim.h "Snapshots", docs/snapshot-format.md).
 *
 * Memory.  Every frame a snapshot must put back is a home frame (d->ram) or a
 * pool frame (d->pool, shared pages); other domains' frames are never part of
 * this domain's state (KVM maps are refused, below).  sim/memory.c and cpu/
 * mark each frame written in d->dirty (guest writes when a TLB fill hands out
 * W, the walker's A/D bits, emulation, exception frames, every host write of
 * sim/).  A take or restore starts a new period: d->dirty is folded into the
 * `diverged` set of every snapshot attached to the domain and cleared, and
 * every vCPU's TLB is flushed so that later writes refill and are marked.  A
 * restore of S copies back exactly S->diverged (then every other attached
 * snapshot's set grows by those frames, since they now hold S's bytes), so
 * restoring the same snapshot again and again, or alternating between
 * several, always copies only what changed since.
 *
 * The p2m.  Its arrays are p2m.c's own; what is public is the restricted
 * bitmap, whose bit is clear exactly when a gfn is rwx, ram_rw and not
 * shared.  Gfns whose bit is clear both now and in the snapshot are equal, so a
 * restore visits only the gfns restricted in either (few, in practice) and the
 * cost does not grow with RAM.
 *
 * Translated code.  A frame whose bytes were put back is handed to
 * cpu_frame_written for every vCPU: free unless code was fetched from it, else
 * its blocks (and only those) are invalidated.  A gfn whose frame changed
 * does the same for both frames.
 *
 * struct sim_domain, field by field:
 *   mode, ram_size, nr_vcpus, quantum, hypercalls, nr_gfns: the configuration:
 *     must match (-EINVAL).
 *   ram, pool: contents saved; restored by the diverged set.
 *   host_p2m, remapped, frame_of, views[]: saved and restored (frames encoded
 *     as "home frame i" / "pool frame i", never as pointers).
 *   access_required, next_vcpu, tot_pages, max_pages, sharing tables,
 *     controller_pause_count, altp2m_mode/active, mon, intercept, crashed,
 *     crash_why, shutdown, shutdown_reason, vcpus[] (struct sim_vcpu whole, with
 *     its cpu/ state): saved and restored.
 *   monitor, paging, sharing (struct sim_monitor): the ring must be the same
 *     ring object (ring_id) — its descriptors are in the client's hands — and
 *     its contents, indices, claims, wait queue and black eyes are restored.
 *   introspector, token, map_refs, foreign, targets, tokens_issued: KVM
 *     introspection belongs to two domains; take and restore refuse while a
 *     map exists either way (-EBUSY); tokens are left as they are.
 *   observer, client, trace_hypercalls, error: the caller's settings, kept.
 *   ran, code_flush_pending: kept (they only ever cause extra flushes).
 *   in_run, in_client, event_posted, event_vcpu, events_in_run: transient
 *     within one sim_run; take/restore run outside it.
 *   dirty, snapshots, snap_pages_restored: this file's bookkeeping.
 *   seed, sched_rng, sched_n (the scheduler), idle_time, idle_for (simulated
 *     time): saved and restored, so a restored run makes the same decisions.
 *   insns (instructions run), inject.next, inject.fired_at (the hypervisor
 *     script's position, sim/inject.c): saved and restored, so the script's
 *     steps fire again at the same instructions (next is capped at the
 *     script's length: the script may have been replaced since the take).
 *   inject.steps, n, bytes (the script): configuration, kept.  inject.outcome,
 *     at: kept (only steps before inject.next are reported from them).
 *   sched_observer, sched_source, deadlock_timeout: the caller's settings, kept.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sim_internal.h"

#define FRAME_RAM (1ull << 62)
#define FRAME_POOL (2ull << 62)
#define FRAME_KIND (3ull << 62)

/* A p2m as its public accessors give it. */
struct snap_p2m {
    uint8_t *access;      /* enum p2m_access per gfn */
    uint8_t *paging;      /* enum p2m_paging | SNAP_NO_FRAME */
    uint64_t *shared;     /* bitmap */
    uint64_t *restricted; /* bitmap, as the p2m had it */
    uint8_t default_access;
};
#define SNAP_NO_FRAME 0x80u

struct snap_view {
    bool exists, visible;
    struct snap_p2m p2m;
    uint64_t *present, *changed, *remapped;
    uint64_t *frame_of; /* encoded */
};

struct snap_ring {
    bool present;
    uint64_t id;
    uint32_t version, blocked, last_vcpu_wake_up, waitq_len;
    bool error_noted;
    unsigned *waitq; /* nr_vcpus */
    uint8_t *state;  /* ring_save */
    size_t state_len;
};

/* The domain's configuration: a snapshot restores only into the same. */
struct snap_config {
    uint32_t mode, nr_vcpus, hypercalls, pad;
    uint64_t ram_size, quantum;
};

/* The domain's scalar state (one fixed block: also the file's SCAL section). */
struct snap_scalars {
    uint64_t tot_pages, max_pages, next_handle;
    uint64_t seed, sched_rng, sched_n;  /* a restored seeded run goes on with the same decisions */
    uint64_t idle_time, idle_for;       /* simulated time (sim/wait.c) */
    uint64_t insns, inject_next, inject_fired_at; /* the hypervisor script's position (sim/inject.c) */
    uint32_t next_vcpu, controller_pause_count, altp2m_mode, intercept;
    uint32_t pool_nfree;
    uint8_t access_required, altp2m_active, crashed, shutdown;
    uint8_t shutdown_reason, sharing_enabled, has_tables, view0_exists, view0_visible, pad[3];
    char crash_why[256];
};

struct sim_snapshot {
    struct sim_domain *d; /* attached domain (its memory is tracked against ours), or NULL */
    struct sim_snapshot *next;
    struct snap_config cfg;
    uint64_t nr_gfns, words, frame_words;
    uint64_t *diverged; /* frames (home, then pool) where d's memory may differ from ours */
    uint8_t *ram, *pool;
    struct snap_scalars sc;
    struct sim_monitor_ctl mon;
    struct snap_p2m host;
    uint64_t *remapped, *frame_of;
    uint32_t *pool_free, *pool_refs, *gfn_pool;
    uint64_t *pool_handle;
    struct snap_view views[SIM_MAX_ALTP2M];
    struct sim_vcpu *vcpus;
    uint8_t *cpu;
    size_t cpu_size;
    struct snap_ring rings[3];
};

static struct sim_monitor *ring_of(struct sim_domain *d, unsigned i)
{
    return i == SIM_RING_MONITOR ? &d->monitor : i == SIM_RING_PAGING ? &d->paging : &d->sharing;
}

static bool bit(const uint64_t *map, uint64_t g)
{
    return (map[g / 64] >> (g % 64)) & 1;
}

/* ---- Allocation ------------------------------------------------------------- */

static void *map_zero(uint64_t bytes)
{
    /*
     * Untouched pages cost nothing: a sparse guest makes a sparse snapshot.  Huge pages where
     * the kernel offers them: a take touches every used page once, and on a virtual machine a
     * 4 KiB page fault costs tens of microseconds (measured: 1.2 s for 64 MiB without).
     */
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

static int p2m_alloc(struct snap_p2m *p, uint64_t n, uint64_t words)
{
    p->access = malloc(n);
    p->paging = malloc(n);
    p->shared = calloc(words, 8);
    p->restricted = calloc(words, 8);
    return p->access && p->paging && p->shared && p->restricted ? 0 : -ENOMEM;
}

static void p2m_release(struct snap_p2m *p)
{
    free(p->access);
    free(p->paging);
    free(p->shared);
    free(p->restricted);
    memset(p, 0, sizeof(*p));
}

static void view_release(struct snap_view *v)
{
    p2m_release(&v->p2m);
    free(v->present);
    free(v->changed);
    free(v->remapped);
    free(v->frame_of);
    memset(v, 0, sizeof(*v));
}

static int view_alloc(struct snap_view *v, uint64_t n, uint64_t words)
{
    v->present = calloc(words, 8);
    v->changed = calloc(words, 8);
    v->remapped = calloc(words, 8);
    v->frame_of = calloc(n, 8);
    if (!v->present || !v->changed || !v->remapped || !v->frame_of)
        return -ENOMEM;
    return p2m_alloc(&v->p2m, n, words);
}

static void detach_only(struct sim_snapshot *s)
{
    for (struct sim_snapshot **p = &s->d->snapshots; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    s->d = NULL;
    s->next = NULL;
}

static void detach(struct sim_snapshot *s)
{
    struct sim_domain *d = s->d;
    if (!d)
        return;
    detach_only(s);
    if (!d->snapshots) /* the last one: no exact tracking needed, full speed again */
        for (unsigned i = 0; i < d->nr_vcpus; i++)
            cpu_dirty_relax(d->vcpus[i].cpu);
}

void sim_snapshot_free(struct sim_snapshot *s)
{
    if (!s)
        return;
    detach(s);
    uint64_t bytes = s->cfg.ram_size;
    if (s->ram)
        munmap(s->ram, bytes);
    if (s->pool)
        munmap(s->pool, bytes);
    free(s->diverged);
    p2m_release(&s->host);
    free(s->remapped);
    free(s->frame_of);
    free(s->pool_free);
    free(s->pool_refs);
    free(s->gfn_pool);
    free(s->pool_handle);
    for (unsigned i = 0; i < SIM_MAX_ALTP2M; i++)
        view_release(&s->views[i]);
    free(s->vcpus);
    free(s->cpu);
    for (unsigned i = 0; i < 3; i++) {
        free(s->rings[i].waitq);
        free(s->rings[i].state);
    }
    free(s);
}

void sim_snapshot_detach_all(struct sim_domain *d)
{
    /* The domain is going: its vCPUs may be gone already, so no cpu/ call. */
    while (d->snapshots)
        detach_only(d->snapshots);
}

static struct snap_config config_of(const struct sim_domain *d)
{
    return (struct snap_config){.mode = (uint32_t)d->mode, .nr_vcpus = d->nr_vcpus,
                                .hypercalls = (uint32_t)d->hypercalls, .ram_size = d->ram_size,
                                .quantum = d->quantum};
}

/* A snapshot with every array for `cfg`, contents zero. */
static int snap_new(struct sim_domain *d, const struct snap_config *cfg, struct sim_snapshot **out)
{
    struct sim_snapshot *s = calloc(1, sizeof(*s));
    if (!s)
        return sim_set_error(d, -ENOMEM, "no memory for a snapshot");
    s->cfg = *cfg;
    s->nr_gfns = cfg->ram_size / CPU_PAGE_SIZE;
    s->words = (s->nr_gfns + 63) / 64;
    s->frame_words = (2 * s->nr_gfns + 63) / 64;
    s->cpu_size = cpu_state_size(d->vcpus[0].cpu);
    s->diverged = calloc(s->frame_words, 8);
    s->ram = map_zero(cfg->ram_size);
    s->pool = map_zero(cfg->ram_size);
    s->remapped = calloc(s->words, 8);
    s->frame_of = calloc(s->nr_gfns, 8);
    s->vcpus = calloc(cfg->nr_vcpus, sizeof(*s->vcpus));
    s->cpu = malloc(cfg->nr_vcpus * s->cpu_size);
    int rc = p2m_alloc(&s->host, s->nr_gfns, s->words);
    if (rc < 0 || !s->diverged || !s->ram || !s->pool || !s->remapped || !s->frame_of || !s->vcpus
        || !s->cpu) {
        sim_snapshot_free(s);
        return sim_set_error(d, -ENOMEM, "no memory for a snapshot of %llu MiB of RAM",
                             (unsigned long long)(cfg->ram_size >> 20));
    }
    *out = s;
    return 0;
}

static int sharing_alloc(struct sim_snapshot *s)
{
    uint64_t n = s->nr_gfns;
    s->pool_free = malloc(n * 4);
    s->pool_refs = malloc(n * 4);
    s->gfn_pool = malloc(n * 4);
    s->pool_handle = malloc(n * 8);
    return s->pool_free && s->pool_refs && s->gfn_pool && s->pool_handle ? 0 : -ENOMEM;
}

/* ---- Pieces ------------------------------------------------------------------- */

static uint64_t frame_encode(const struct sim_domain *d, const uint8_t *f)
{
    if (!f)
        return 0;
    if (f >= d->ram && (uint64_t)(f - d->ram) < d->ram_size)
        return FRAME_RAM | (uint64_t)(f - d->ram) / CPU_PAGE_SIZE;
    if (f >= d->pool && (uint64_t)(f - d->pool) < d->ram_size)
        return FRAME_POOL | (uint64_t)(f - d->pool) / CPU_PAGE_SIZE;
    return FRAME_KIND; /* another domain's frame: refused before we get here */
}

static uint8_t *frame_decode(const struct sim_domain *d, uint64_t v)
{
    uint64_t i = v & ~FRAME_KIND;
    if (i >= d->nr_gfns)
        return NULL;
    if ((v & FRAME_KIND) == FRAME_RAM)
        return d->ram + i * CPU_PAGE_SIZE;
    if ((v & FRAME_KIND) == FRAME_POOL)
        return d->pool + i * CPU_PAGE_SIZE;
    return NULL;
}

static void p2m_save(const struct p2m *p, struct snap_p2m *s, uint64_t n, uint64_t words)
{
    for (uint64_t g = 0; g < n; g++) {
        enum p2m_access a = P2M_ACCESS_RWX;
        p2m_get_access(p, g, &a);
        s->access[g] = (uint8_t)a;
        s->paging[g] = (uint8_t)(p2m_get_paging(p, g) | (p2m_paging_has_frame(p, g) ? 0 : SNAP_NO_FRAME));
        if (p2m_is_shared(p, g))
            s->shared[g / 64] |= 1ull << (g % 64);
    }
    memcpy(s->restricted, p2m_restricted_bitmap(p), words * 8);
    s->default_access = (uint8_t)p2m_default_access(p);
}

/* Puts the saved entries back: only gfns restricted now or then can differ (see the top). */
static void p2m_load(struct p2m *p, const struct snap_p2m *s, uint64_t words)
{
    const uint64_t *now = p2m_restricted_bitmap(p);
    for (uint64_t w = 0; w < words; w++) {
        uint64_t u = now[w] | s->restricted[w];
        while (u) {
            uint64_t g = w * 64 + (uint64_t)__builtin_ctzll(u);
            u &= u - 1;
            p2m_set_access(p, g, 1, (enum p2m_access)s->access[g], NULL);
            uint8_t t = s->paging[g];
            p2m_set_paging(p, g, (enum p2m_paging)(t & ~SNAP_NO_FRAME), !(t & SNAP_NO_FRAME));
            p2m_set_shared(p, g, bit(s->shared, g));
        }
    }
    p2m_set_access(p, ~0ull, 0, (enum p2m_access)s->default_access, NULL);
}

static int kvm_busy(struct sim_domain *d, const char *what)
{
    if (d->nr_foreign)
        return sim_set_error(d, -EBUSY, "%s: the domain maps %llu page(s) of another domain "
                             "(KVM_HC_MEM_MAP): unmap them first", what, (unsigned long long)d->nr_foreign);
    if (d->map_refs)
        for (uint64_t g = 0; g < d->nr_gfns; g++)
            if (d->map_refs[g])
                return sim_set_error(d, -EBUSY, "%s: another domain maps gfn %#llx of this one "
                                     "(KVM_HC_MEM_MAP): its pages are shared state; unmap first",
                                     what, (unsigned long long)g);
    return 0;
}

/* A new tracking period: what was written so far now separates the attached snapshots from d. */
static void fold_dirty(struct sim_domain *d, uint64_t words)
{
    for (struct sim_snapshot *s = d->snapshots; s; s = s->next)
        for (uint64_t w = 0; w < words; w++)
            s->diverged[w] |= d->dirty[w];
    memset(d->dirty, 0, words * 8);
}

static void attach(struct sim_domain *d, struct sim_snapshot *s)
{
    s->d = d;
    s->next = d->snapshots;
    d->snapshots = s;
}

static void restart_tracking(struct sim_domain *d)
{
    for (unsigned i = 0; i < d->nr_vcpus; i++)
        cpu_dirty_restart(d->vcpus[i].cpu);
}

static bool page_zero(const uint8_t *p)
{
    uint64_t acc = 0;
    for (size_t i = 0; i < CPU_PAGE_SIZE; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        acc |= v;
    }
    return acc == 0;
}

/* ---- Take ---------------------------------------------------------------------- */

int sim_snapshot_take(struct sim_domain *d, struct sim_snapshot **out)
{
    *out = NULL;
    if (d->in_run)
        return sim_set_error(d, -EBUSY, "a snapshot is taken between sim_run calls, not inside one");
    int rc = kvm_busy(d, "cannot take a snapshot");
    if (rc < 0)
        return rc;
    struct snap_config cfg = config_of(d);
    struct sim_snapshot *s;
    if ((rc = snap_new(d, &cfg, &s)) < 0)
        return rc;
    uint64_t n = s->nr_gfns;

    for (uint64_t g = 0; g < n; g++) {
        const uint8_t *src = d->ram + g * CPU_PAGE_SIZE;
        if (!page_zero(src))
            memcpy(s->ram + g * CPU_PAGE_SIZE, src, CPU_PAGE_SIZE);
    }
    /* Pool frames hold bytes only while some gfn is on them; free ones are rewritten before use. */
    if (d->pool_refs)
        for (uint64_t p = 0; p < n; p++)
            if (d->pool_refs[p])
                memcpy(s->pool + p * CPU_PAGE_SIZE, d->pool + p * CPU_PAGE_SIZE, CPU_PAGE_SIZE);

    p2m_save(d->host_p2m, &s->host, n, s->words);
    memcpy(s->remapped, d->remapped, s->words * 8);
    for (uint64_t g = 0; g < n; g++)
        s->frame_of[g] = frame_encode(d, d->frame_of[g]);

    struct snap_scalars *sc = &s->sc;
    sc->tot_pages = d->tot_pages;
    sc->max_pages = d->max_pages;
    sc->next_handle = d->next_handle;
    sc->next_vcpu = d->next_vcpu;
    sc->seed = d->seed;
    sc->sched_rng = d->sched_rng;
    sc->sched_n = d->sched_n;
    sc->idle_time = d->idle_time;
    sc->idle_for = d->idle_for;
    sc->insns = d->insns;
    sc->inject_next = d->inject.next;
    sc->inject_fired_at = d->inject.fired_at;
    sc->controller_pause_count = d->controller_pause_count;
    sc->altp2m_mode = (uint32_t)d->altp2m_mode;
    sc->intercept = d->intercept;
    sc->pool_nfree = d->pool_nfree;
    sc->access_required = d->access_required;
    sc->altp2m_active = d->altp2m_active;
    sc->crashed = d->crashed;
    sc->shutdown = d->shutdown;
    sc->shutdown_reason = d->shutdown_reason;
    sc->sharing_enabled = d->sharing_enabled;
    sc->has_tables = d->pool_free != NULL;
    sc->view0_exists = d->views[0].exists;
    sc->view0_visible = d->views[0].visible;
    memcpy(sc->crash_why, d->crash_why, sizeof(sc->crash_why));
    sc->crash_why[sizeof(sc->crash_why) - 1] = 0;
    s->mon = d->mon;

    rc = -ENOMEM;
    if (sc->has_tables) {
        if (sharing_alloc(s) < 0)
            goto nomem;
        memcpy(s->pool_free, d->pool_free, n * 4);
        memcpy(s->pool_refs, d->pool_refs, n * 4);
        memcpy(s->gfn_pool, d->gfn_pool, n * 4);
        memcpy(s->pool_handle, d->pool_handle, n * 8);
    }
    for (unsigned i = 1; i < SIM_MAX_ALTP2M; i++) {
        const struct sim_view *w = &d->views[i];
        struct snap_view *v = &s->views[i];
        if (!w->exists)
            continue;
        if (view_alloc(v, n, s->words) < 0)
            goto nomem;
        v->exists = true;
        v->visible = w->visible;
        p2m_save(w->p2m, &v->p2m, n, s->words);
        memcpy(v->present, w->present, s->words * 8);
        memcpy(v->changed, w->changed, s->words * 8);
        memcpy(v->remapped, w->remapped, s->words * 8);
        for (uint64_t g = 0; g < n; g++)
            v->frame_of[g] = frame_encode(d, w->frame_of[g]);
    }
    for (unsigned i = 0; i < 3; i++) {
        struct sim_monitor *m = ring_of(d, i);
        struct snap_ring *r = &s->rings[i];
        if (!m->ring)
            continue;
        r->present = true;
        r->id = ring_id(m->ring);
        r->version = m->version;
        r->blocked = m->blocked;
        r->last_vcpu_wake_up = m->last_vcpu_wake_up;
        r->waitq_len = m->waitq_len;
        r->error_noted = m->ring_error_noted;
        r->state_len = ring_state_size(m->ring);
        r->waitq = calloc(d->nr_vcpus, sizeof(*r->waitq));
        r->state = malloc(r->state_len);
        if (!r->waitq || !r->state)
            goto nomem;
        memcpy(r->waitq, m->waitq, d->nr_vcpus * sizeof(*r->waitq));
        if (ring_save(m->ring, r->state, r->state_len) < 0) {
            rc = sim_set_error(d, -EIO, "the %s ring's state could not be saved", m->name);
            goto fail;
        }
    }
    for (unsigned i = 0; i < d->nr_vcpus; i++) {
        s->vcpus[i] = d->vcpus[i];
        s->vcpus[i].domain = NULL; /* the live vCPU's pointers are kept at restore */
        s->vcpus[i].cpu = NULL;
        if ((rc = cpu_save(d->vcpus[i].cpu, s->cpu + i * s->cpu_size, s->cpu_size)) < 0) {
            rc = sim_set_error(d, rc, "vCPU %u: %s", i, cpu_error(d->vcpus[i].cpu));
            goto fail;
        }
    }
    fold_dirty(d, s->frame_words);
    attach(d, s);
    restart_tracking(d);
    *out = s;
    return 0;
nomem:
    rc = sim_set_error(d, -ENOMEM, "no memory for a snapshot");
fail:
    sim_snapshot_free(s);
    return rc;
}

/* ---- Restore -------------------------------------------------------------------- */

static int check_config(struct sim_domain *d, const struct snap_config *c)
{
    struct snap_config now = config_of(d);
    if (c->mode != now.mode)
        return sim_set_error(d, -EINVAL, "the snapshot is of a %s domain, this one runs %s",
                             c->mode == CPU_MODE_LONG ? "long-mode" : "32-bit PAE",
                             now.mode == CPU_MODE_LONG ? "long mode" : "32-bit PAE");
    if (c->ram_size != now.ram_size)
        return sim_set_error(d, -EINVAL, "the snapshot has %llu bytes of RAM, this domain %llu",
                             (unsigned long long)c->ram_size, (unsigned long long)now.ram_size);
    if (c->nr_vcpus != now.nr_vcpus)
        return sim_set_error(d, -EINVAL, "the snapshot has %u vCPU(s), this domain %u", c->nr_vcpus,
                             now.nr_vcpus);
    if (c->quantum != now.quantum || c->hypercalls != now.hypercalls)
        return sim_set_error(d, -EINVAL, "the snapshot's domain was configured otherwise (quantum %llu, "
                             "hypercall ABI %u; this one: %llu, %u)", (unsigned long long)c->quantum,
                             c->hypercalls, (unsigned long long)now.quantum, now.hypercalls);
    return 0;
}

/* Everything that can refuse, checked before anything changes. */
static int restore_check(struct sim_domain *d, struct sim_snapshot *s)
{
    if (d->in_run)
        return sim_set_error(d, -EBUSY, "a snapshot is restored between sim_run calls, not inside one");
    if (s->d && s->d != d)
        return sim_set_error(d, -EINVAL, "the snapshot belongs to another domain (its memory is tracked "
                             "against that one's)");
    int rc = check_config(d, &s->cfg);
    if (rc < 0)
        return rc;
    if ((rc = kvm_busy(d, "cannot restore a snapshot")) < 0)
        return rc;
    for (unsigned i = 0; i < 3; i++) {
        struct sim_monitor *m = ring_of(d, i);
        const struct snap_ring *r = &s->rings[i];
        if (!r->present && m->ring)
            return sim_set_error(d, -EBUSY, "the %s ring was enabled after the snapshot was taken: its "
                                 "client holds it; disable it before restoring", m->name);
        if (r->present && !m->ring)
            return sim_set_error(d, -EBUSY, "the snapshot has a %s ring and the domain has none now: a "
                                 "ring's descriptors cannot be brought back; enable it before restoring a "
                                 "snapshot read from a file, or keep it enabled", m->name);
        if (!r->present)
            continue;
        if (s->d && r->id != ring_id(m->ring))
            return sim_set_error(d, -EBUSY, "the %s ring was disabled and enabled again since the snapshot "
                                 "was taken: the client holds another ring now", m->name);
        if (r->version != m->version || r->state_len != ring_state_size(m->ring))
            return sim_set_error(d, -EBUSY, "the %s ring is of interface version %u, the snapshot's of %u",
                                 m->name, m->version, r->version);
    }
    /* Allocations, so that nothing can fail half-way. */
    if (s->sc.has_tables && !d->pool_free) {
        bool was = d->sharing_enabled;
        if ((rc = sim_sharing_control(d, true)) < 0)
            return rc;
        d->sharing_enabled = was;
    }
    for (unsigned i = 1; i < SIM_MAX_ALTP2M; i++) {
        struct sim_view *w = &d->views[i];
        if (!s->views[i].exists || w->p2m)
            continue;
        size_t words = s->words;
        if (p2m_create(&w->p2m, d->nr_gfns) < 0 || !(w->present = calloc(words, 8))
            || !(w->changed = calloc(words, 8)) || !(w->remapped = calloc(words, 8))
            || !(w->frame_of = calloc(d->nr_gfns, sizeof(*w->frame_of))))
            return sim_set_error(d, -ENOMEM, "no memory for altp2m view %u", i);
    }
    return 0;
}

/* New bytes (or another frame) at a gfn: no vCPU may run code translated from before. */
static void code_changed(struct sim_domain *d, const uint8_t *frame)
{
    if (!frame)
        return;
    for (unsigned i = 0; i < d->nr_vcpus; i++)
        cpu_frame_written(d->vcpus[i].cpu, frame);
}

static void restore_memory(struct sim_domain *d, struct sim_snapshot *s)
{
    uint64_t n = s->nr_gfns;
    fold_dirty(d, s->frame_words);
    if (!s->d) {
        /* Never restored into this domain: every home frame, every pool frame in use either side. */
        memset(s->diverged, 0xff, (n / 64) * 8);
        for (uint64_t g = n / 64 * 64; g < n; g++)
            s->diverged[g / 64] |= 1ull << (g % 64);
        for (uint64_t p = 0; p < n; p++)
            if ((s->pool_refs && s->pool_refs[p]) || (d->pool_refs && d->pool_refs[p]))
                s->diverged[(n + p) / 64] |= 1ull << ((n + p) % 64);
    }
    uint64_t copied = 0;
    for (uint64_t w = 0; w < s->frame_words; w++) {
        uint64_t u = s->diverged[w];
        while (u) {
            uint64_t f = w * 64 + (uint64_t)__builtin_ctzll(u);
            u &= u - 1;
            uint8_t *dst = f < n ? d->ram + f * CPU_PAGE_SIZE : d->pool + (f - n) * CPU_PAGE_SIZE;
            const uint8_t *src = f < n ? s->ram + f * CPU_PAGE_SIZE : s->pool + (f - n) * CPU_PAGE_SIZE;
            memcpy(dst, src, CPU_PAGE_SIZE);
            code_changed(d, dst);
            copied++;
        }
    }
    d->snap_pages_restored = copied;
    /* Those frames now hold this snapshot's bytes: for every other snapshot they may differ. */
    for (struct sim_snapshot *o = d->snapshots; o; o = o->next)
        if (o != s)
            for (uint64_t w = 0; w < s->frame_words; w++)
                o->diverged[w] |= s->diverged[w];
    memset(s->diverged, 0, s->frame_words * 8);
    if (!s->d)
        attach(d, s);
}

/* A frame map (host or view): only gfns remapped now or then can differ. */
static void restore_frames(struct sim_domain *d, uint64_t *map, uint8_t **frame_of, const uint64_t *smap,
                           const uint64_t *sframe_of, uint64_t words)
{
    for (uint64_t w = 0; w < words; w++) {
        uint64_t u = map[w] | smap[w];
        while (u) {
            uint64_t g = w * 64 + (uint64_t)__builtin_ctzll(u);
            u &= u - 1;
            uint8_t *f = bit(smap, g) ? frame_decode(d, sframe_of[g]) : NULL;
            if (f != frame_of[g]) {
                code_changed(d, frame_of[g] ? frame_of[g] : d->ram + g * CPU_PAGE_SIZE);
                code_changed(d, f ? f : d->ram + g * CPU_PAGE_SIZE);
            }
            frame_of[g] = f;
        }
        map[w] = smap[w];
    }
}

int sim_snapshot_restore(struct sim_domain *d, struct sim_snapshot *s)
{
    int rc = restore_check(d, s);
    if (rc < 0)
        return rc;
    uint64_t words = s->words, n = s->nr_gfns;
    restore_memory(d, s);
    p2m_load(d->host_p2m, &s->host, words);
    restore_frames(d, d->remapped, d->frame_of, s->remapped, s->frame_of, words);

    const struct snap_scalars *sc = &s->sc;
    if (sc->has_tables) {
        memcpy(d->pool_free, s->pool_free, n * 4);
        memcpy(d->pool_refs, s->pool_refs, n * 4);
        memcpy(d->gfn_pool, s->gfn_pool, n * 4);
        memcpy(d->pool_handle, s->pool_handle, n * 8);
    } else if (d->pool_free) {
        sim_sharing_free(d);
    }
    d->pool_nfree = sc->pool_nfree;
    d->next_handle = sc->next_handle;
    d->sharing_enabled = sc->sharing_enabled;
    d->tot_pages = sc->tot_pages;
    d->max_pages = sc->max_pages;

    for (unsigned i = 1; i < SIM_MAX_ALTP2M; i++) {
        struct sim_view *w = &d->views[i];
        const struct snap_view *v = &s->views[i];
        if (!v->exists) {
            if (w->p2m) {
                /* vCPUs on this view get theirs back below; until then none may use its freed bitmap. */
                for (unsigned k = 0; k < d->nr_vcpus; k++)
                    if (d->vcpus[k].view == i)
                        cpu_set_view(d->vcpus[k].cpu, p2m_restricted_bitmap(d->host_p2m), d->remapped);
                sim_altp2m_view_free(w);
            }
            continue;
        }
        w->exists = true;
        w->visible = v->visible;
        p2m_load(w->p2m, &v->p2m, words);
        memcpy(w->present, v->present, words * 8);
        restore_frames(d, w->changed, w->frame_of, v->changed, v->frame_of, words);
        memcpy(w->remapped, v->remapped, words * 8);
    }
    d->views[0].exists = sc->view0_exists;
    d->views[0].visible = sc->view0_visible;

    d->access_required = sc->access_required;
    d->next_vcpu = sc->next_vcpu < d->nr_vcpus ? sc->next_vcpu : 0;
    d->seed = sc->seed;
    d->sched_rng = sc->sched_rng;
    d->sched_n = sc->sched_n;
    d->idle_time = sc->idle_time;
    d->idle_for = sc->idle_for;
    d->insns = sc->insns;
    d->inject.next = sc->inject_next < d->inject.n ? (size_t)sc->inject_next : d->inject.n;
    d->inject.fired_at = sc->inject_fired_at <= sc->insns ? sc->inject_fired_at : sc->insns;
    d->controller_pause_count = sc->controller_pause_count;
    d->altp2m_mode = (enum sim_altp2m_mode)sc->altp2m_mode;
    d->altp2m_active = sc->altp2m_active;
    d->intercept = sc->intercept;
    d->crashed = sc->crashed;
    d->shutdown = sc->shutdown;
    d->shutdown_reason = sc->shutdown_reason;
    memcpy(d->crash_why, sc->crash_why, sizeof(d->crash_why));
    d->mon = s->mon;

    for (unsigned i = 0; i < 3; i++) {
        struct sim_monitor *m = ring_of(d, i);
        const struct snap_ring *r = &s->rings[i];
        if (!r->present)
            continue;
        ring_restore(m->ring, r->state, r->state_len); /* sizes checked by restore_check */
        m->blocked = r->blocked;
        m->last_vcpu_wake_up = r->last_vcpu_wake_up;
        m->waitq_len = r->waitq_len;
        m->ring_error_noted = r->error_noted;
        memcpy(m->waitq, r->waitq, d->nr_vcpus * sizeof(*m->waitq));
    }

    for (unsigned i = 0; i < d->nr_vcpus; i++) {
        struct sim_vcpu *v = &d->vcpus[i];
        struct sim_domain *dom = v->domain;
        struct cpu *c = v->cpu;
        *v = s->vcpus[i];
        v->domain = dom;
        v->cpu = c;
        if ((rc = cpu_restore(c, s->cpu + i * s->cpu_size, s->cpu_size)) < 0)
            return sim_set_error(d, rc, "vCPU %u: %s", i, cpu_error(c));
        bool in_view = d->altp2m_active && v->view && v->view < SIM_MAX_ALTP2M && d->views[v->view].exists;
        cpu_set_view(c, p2m_restricted_bitmap(in_view ? d->views[v->view].p2m : d->host_p2m),
                     in_view ? d->views[v->view].remapped : d->remapped);
    }
    /* The copies above are this snapshot's own bytes: nothing differs from it now. */
    memset(d->dirty, 0, s->frame_words * 8);
    restart_tracking(d);
    return 0;
}

uint64_t sim_snapshot_dirty_pages(const struct sim_domain *d)
{
    uint64_t words = (2 * d->nr_gfns + 63) / 64, n = 0;
    for (uint64_t w = 0; w < words; w++)
        n += (uint64_t)__builtin_popcountll(d->dirty[w]);
    return n;
}

uint64_t sim_snapshot_restored_pages(const struct sim_domain *d)
{
    return d->snap_pages_restored;
}

/* ---- Files (docs/snapshot-format.md) ------------------------------------------- */

#define SNAP_MAGIC "VMISNAP\n"
#define SNAP_VERSION 1u
#define TAG(a, b, c, e) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(e) << 24)
#define T_SCAL TAG('S', 'C', 'A', 'L')
#define T_RAM TAG('R', 'A', 'M', ' ')
#define T_POOL TAG('P', 'O', 'O', 'L')
#define T_P2MH TAG('P', '2', 'M', 'H')
#define T_FMAP TAG('F', 'M', 'A', 'P')
#define T_SHAR TAG('S', 'H', 'A', 'R')
#define T_VIEW TAG('V', 'I', 'E', 'W')
#define T_VCPU TAG('V', 'C', 'P', 'U')
#define T_RING TAG('R', 'I', 'N', 'G')
#define T_END TAG('E', 'N', 'D', ' ')

struct snap_file_header {
    char magic[8];
    uint32_t version, header_size;
    struct snap_config cfg;
    uint32_t vcpu_size, mon_size, scalars_size, pad;
    uint64_t cpu_state_size;
};
_Static_assert(sizeof(struct snap_file_header) == 72, "the file header is 72 bytes");

struct snap_section {
    uint32_t tag, pad;
    uint64_t length, checksum;
};

/* FNV-1a, 64 bits: catches damage, not malice (docs/snapshot-format.md). */
static uint64_t checksum(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* A growable buffer for one section's payload. */
struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool failed;
};

static void put(struct wbuf *b, const void *src, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->failed = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u32(struct wbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(struct wbuf *b, uint64_t v) { put(b, &v, 8); }

static int emit(FILE *f, uint32_t tag, struct wbuf *b)
{
    if (b->failed)
        return -ENOMEM;
    struct snap_section h = {.tag = tag, .length = b->len, .checksum = checksum(b->p, b->len)};
    int rc = fwrite(&h, sizeof(h), 1, f) == 1 && (b->len == 0 || fwrite(b->p, b->len, 1, f) == 1) ? 0 : -EIO;
    b->len = 0;
    return rc;
}

static void put_p2m(struct wbuf *b, const struct snap_p2m *p, uint64_t n, uint64_t words)
{
    put(b, p->access, n);
    put(b, p->paging, n);
    put(b, p->shared, words * 8);
    put(b, p->restricted, words * 8);
    put(b, &p->default_access, 1);
}

static void put_frames(struct wbuf *b, const uint8_t *base, uint64_t n, const uint32_t *refs)
{
    uint64_t count = 0;
    for (uint64_t i = 0; i < n; i++)
        count += (refs ? refs[i] != 0 : true) && !page_zero(base + i * CPU_PAGE_SIZE);
    put_u64(b, count);
    for (uint64_t i = 0; i < n; i++)
        if ((refs ? refs[i] != 0 : true) && !page_zero(base + i * CPU_PAGE_SIZE)) {
            put_u64(b, i);
            put(b, base + i * CPU_PAGE_SIZE, CPU_PAGE_SIZE);
        }
}

int sim_snapshot_write(struct sim_domain *d, const struct sim_snapshot *s, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return sim_set_error(d, -errno, "cannot create snapshot file %s: %s", path, strerror(errno));
    uint64_t n = s->nr_gfns, words = s->words;
    struct snap_file_header h;
    memset(&h, 0, sizeof(h));
    memcpy(h.magic, SNAP_MAGIC, 8);
    h.version = SNAP_VERSION;
    h.header_size = sizeof(h);
    h.cfg = s->cfg;
    h.vcpu_size = sizeof(struct sim_vcpu);
    h.mon_size = sizeof(struct sim_monitor_ctl);
    h.scalars_size = sizeof(struct snap_scalars);
    h.cpu_state_size = s->cpu_size;
    int rc = fwrite(&h, sizeof(h), 1, f) == 1 ? 0 : -EIO;
    struct wbuf b = {0};
    if (rc == 0) {
        put(&b, &s->sc, sizeof(s->sc));
        put(&b, &s->mon, sizeof(s->mon));
        rc = emit(f, T_SCAL, &b);
    }
    if (rc == 0) {
        put_frames(&b, s->ram, n, NULL);
        rc = emit(f, T_RAM, &b);
    }
    if (rc == 0 && s->sc.has_tables) {
        put_frames(&b, s->pool, n, s->pool_refs);
        if ((rc = emit(f, T_POOL, &b)) == 0) {
            put(&b, s->pool_free, n * 4);
            put(&b, s->pool_refs, n * 4);
            put(&b, s->gfn_pool, n * 4);
            put(&b, s->pool_handle, n * 8);
            rc = emit(f, T_SHAR, &b);
        }
    }
    if (rc == 0) {
        put_p2m(&b, &s->host, n, words);
        rc = emit(f, T_P2MH, &b);
    }
    if (rc == 0) {
        put(&b, s->remapped, words * 8);
        put(&b, s->frame_of, n * 8);
        rc = emit(f, T_FMAP, &b);
    }
    for (unsigned i = 1; i < SIM_MAX_ALTP2M && rc == 0; i++) {
        const struct snap_view *v = &s->views[i];
        if (!v->exists)
            continue;
        put_u32(&b, i);
        put_u32(&b, v->visible);
        put_p2m(&b, &v->p2m, n, words);
        put(&b, v->present, words * 8);
        put(&b, v->changed, words * 8);
        put(&b, v->remapped, words * 8);
        put(&b, v->frame_of, n * 8);
        rc = emit(f, T_VIEW, &b);
    }
    for (unsigned i = 0; i < s->cfg.nr_vcpus && rc == 0; i++) {
        put_u32(&b, i);
        put_u32(&b, 0);
        put(&b, &s->vcpus[i], sizeof(s->vcpus[i]));
        put(&b, s->cpu + i * s->cpu_size, s->cpu_size);
        rc = emit(f, T_VCPU, &b);
    }
    for (unsigned i = 0; i < 3 && rc == 0; i++) {
        const struct snap_ring *r = &s->rings[i];
        if (!r->present)
            continue;
        uint32_t hdr[6] = {i, r->version, r->blocked, r->last_vcpu_wake_up, r->waitq_len, r->error_noted};
        put(&b, hdr, sizeof(hdr));
        put_u64(&b, r->state_len);
        for (unsigned k = 0; k < s->cfg.nr_vcpus; k++)
            put_u32(&b, r->waitq[k]);
        put(&b, r->state, r->state_len);
        rc = emit(f, T_RING, &b);
    }
    if (rc == 0)
        rc = emit(f, T_END, &b);
    free(b.p);
    if (fclose(f) != 0 && rc == 0)
        rc = -EIO;
    if (rc < 0)
        return sim_set_error(d, rc, "cannot write snapshot file %s: %s", path,
                             rc == -ENOMEM ? "out of memory" : "write error");
    return 0;
}

/* A bounds-checked reader over one section's payload. */
struct rbuf {
    const uint8_t *p;
    size_t len, off;
};

static bool get(struct rbuf *r, void *dst, size_t n)
{
    if (n > r->len - r->off)
        return false;
    memcpy(dst, r->p + r->off, n);
    r->off += n;
    return true;
}

static bool get_p2m(struct rbuf *r, struct snap_p2m *p, uint64_t n, uint64_t words)
{
    if (!get(r, p->access, n) || !get(r, p->paging, n) || !get(r, p->shared, words * 8)
        || !get(r, p->restricted, words * 8) || !get(r, &p->default_access, 1))
        return false;
    for (uint64_t g = 0; g < n; g++)
        if (p->access[g] >= P2M_ACCESS_DEFAULT)
            return false;
    return p->default_access < P2M_ACCESS_DEFAULT;
}

static bool get_frames(struct rbuf *r, uint8_t *base, uint64_t n)
{
    uint64_t count;
    if (!get(r, &count, 8) || count > n)
        return false;
    for (uint64_t k = 0; k < count; k++) {
        uint64_t i;
        if (!get(r, &i, 8) || i >= n || !get(r, base + i * CPU_PAGE_SIZE, CPU_PAGE_SIZE))
            return false;
    }
    return true;
}

/* The parts of a vCPU that index arrays or strings: a file must not make them unsafe. */
static bool vcpu_sane(const struct sim_vcpu *v, unsigned id, unsigned nr)
{
    return v->id == id && v->view < SIM_MAX_ALTP2M && v->resume.emul_read.size <= VME_EMUL_READ_MAX_V7
           && memchr(v->fault, 0, sizeof(v->fault)) && nr > 0;
}

static int parse(struct sim_domain *d, struct sim_snapshot *s, uint32_t tag, struct rbuf *r, unsigned *seen_vcpus,
                 const char **what)
{
    uint64_t n = s->nr_gfns, words = s->words;
    switch (tag) {
    case T_SCAL:
        *what = "scalars";
        if (!get(r, &s->sc, sizeof(s->sc)) || !get(r, &s->mon, sizeof(s->mon)) || s->sc.pool_nfree > n
            || !memchr(s->sc.crash_why, 0, sizeof(s->sc.crash_why)) || s->sc.altp2m_mode > SIM_ALTP2M_LIMITED
            || (s->sc.intercept & ~CPU_INSN_ALL) || s->sc.inject_fired_at > s->sc.insns)
            return -1;
        return 0;
    case T_RAM:
        *what = "RAM";
        return get_frames(r, s->ram, n) ? 0 : -1;
    case T_POOL:
        *what = "pool";
        return get_frames(r, s->pool, n) ? 0 : -1;
    case T_SHAR:
        *what = "sharing tables";
        if ((!s->pool_free && sharing_alloc(s) < 0) || !get(r, s->pool_free, n * 4) || !get(r, s->pool_refs, n * 4)
            || !get(r, s->gfn_pool, n * 4) || !get(r, s->pool_handle, n * 8))
            return -1;
        for (uint64_t i = 0; i < n; i++)
            if (s->pool_free[i] >= n || (s->gfn_pool[i] >= n && s->gfn_pool[i] != UINT32_MAX))
                return -1;
        return 0;
    case T_P2MH:
        *what = "host p2m";
        return get_p2m(r, &s->host, n, words) ? 0 : -1;
    case T_FMAP:
        *what = "frame map";
        return get(r, s->remapped, words * 8) && get(r, s->frame_of, n * 8) ? 0 : -1;
    case T_VIEW: {
        *what = "altp2m view";
        uint32_t i, vis;
        if (!get(r, &i, 4) || !get(r, &vis, 4) || i == 0 || i >= SIM_MAX_ALTP2M || s->views[i].exists)
            return -1;
        struct snap_view *v = &s->views[i];
        if (view_alloc(v, n, words) < 0)
            return -1;
        v->exists = true;
        v->visible = vis != 0;
        return get_p2m(r, &v->p2m, n, words) && get(r, v->present, words * 8) && get(r, v->changed, words * 8)
                       && get(r, v->remapped, words * 8) && get(r, v->frame_of, n * 8)
                   ? 0 : -1;
    }
    case T_VCPU: {
        *what = "vCPU";
        uint32_t i, pad;
        if (!get(r, &i, 4) || !get(r, &pad, 4) || i >= s->cfg.nr_vcpus || (seen_vcpus[i / 32] >> (i % 32)) & 1)
            return -1;
        seen_vcpus[i / 32] |= 1u << (i % 32);
        struct sim_vcpu *v = &s->vcpus[i];
        if (!get(r, v, sizeof(*v)) || !get(r, s->cpu + (size_t)i * s->cpu_size, s->cpu_size))
            return -1;
        v->domain = NULL;
        v->cpu = NULL;
        return vcpu_sane(v, i, s->cfg.nr_vcpus) ? 0 : -1;
    }
    case T_RING: {
        *what = "ring";
        uint32_t hdr[6];
        uint64_t len;
        if (!get(r, hdr, sizeof(hdr)) || !get(r, &len, 8) || hdr[0] >= 3 || s->rings[hdr[0]].present
            || hdr[4] > s->cfg.nr_vcpus || len > r->len)
            return -1;
        struct snap_ring *g = &s->rings[hdr[0]];
        g->present = true;
        g->version = hdr[1];
        g->blocked = hdr[2];
        g->last_vcpu_wake_up = hdr[3] < s->cfg.nr_vcpus ? hdr[3] : 0;
        g->waitq_len = hdr[4];
        g->error_noted = hdr[5] != 0;
        g->state_len = len;
        g->waitq = calloc(s->cfg.nr_vcpus, sizeof(*g->waitq));
        g->state = malloc(len ? len : 1);
        if (!g->waitq || !g->state)
            return -1;
        for (unsigned k = 0; k < s->cfg.nr_vcpus; k++) {
            uint32_t q;
            if (!get(r, &q, 4) || q >= s->cfg.nr_vcpus)
                return -1;
            g->waitq[k] = q;
        }
        return get(r, g->state, len) ? 0 : -1;
    }
    default:
        (void)d;
        *what = "unknown";
        return -1;
    }
}

int sim_snapshot_read(struct sim_domain *d, const char *path, struct sim_snapshot **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return sim_set_error(d, -errno, "cannot open snapshot file %s: %s", path, strerror(errno));
    struct snap_file_header h;
    int rc = 0;
    struct sim_snapshot *s = NULL;
    uint8_t *payload = NULL;
#define BAD(...)                                                                                  \
    do {                                                                                          \
        rc = sim_set_error(d, -EINVAL, __VA_ARGS__);                                              \
        goto done;                                                                                \
    } while (0)
    if (fread(&h, sizeof(h), 1, f) != 1)
        BAD("%s is not a vmisim snapshot: it is shorter than the %zu-byte header", path, sizeof(h));
    if (memcmp(h.magic, SNAP_MAGIC, 8) != 0)
        BAD("%s is not a vmisim snapshot (bad magic)", path);
    if (h.version != SNAP_VERSION)
        BAD("%s is a snapshot of format version %u; this vmisim reads version %u", path, h.version, SNAP_VERSION);
    if (h.header_size != sizeof(h))
        BAD("%s: header size %u, expected %zu", path, h.header_size, sizeof(h));
    if ((rc = check_config(d, &h.cfg)) < 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", sim_error(d));
        BAD("%s does not fit this domain: %s", path, why);
    }
    if (h.vcpu_size != sizeof(struct sim_vcpu) || h.mon_size != sizeof(struct sim_monitor_ctl)
        || h.scalars_size != sizeof(struct snap_scalars) || h.cpu_state_size != cpu_state_size(d->vcpus[0].cpu))
        BAD("%s was written by a vmisim build with another state layout (vCPU %u/%zu, monitor %u/%zu, "
            "cpu %llu/%zu bytes): snapshot files are read by the build that wrote them", path, h.vcpu_size,
            sizeof(struct sim_vcpu), h.mon_size, sizeof(struct sim_monitor_ctl),
            (unsigned long long)h.cpu_state_size, cpu_state_size(d->vcpus[0].cpu));
    if ((rc = snap_new(d, &h.cfg, &s)) < 0)
        goto done;
    unsigned seen[SIM_MAX_VCPUS / 32] = {0};
    bool have_scal = false, have_ram = false, have_p2m = false, have_fmap = false, have_shar = false;
    for (unsigned k = 0;; k++) {
        struct snap_section sh;
        if (fread(&sh, sizeof(sh), 1, f) != 1)
            BAD("%s is truncated: section %u's header is missing (no END section)", path, k);
        if (sh.tag == T_END)
            break;
        if (sh.length > ((uint64_t)1 << 40))
            BAD("%s: section %u claims %llu bytes", path, k, (unsigned long long)sh.length);
        free(payload);
        payload = malloc(sh.length ? sh.length : 1);
        if (!payload) {
            rc = sim_set_error(d, -ENOMEM, "no memory for section %u of %s", k, path);
            goto done;
        }
        if (sh.length && fread(payload, sh.length, 1, f) != 1)
            BAD("%s is truncated in section %u (%llu bytes announced)", path, k, (unsigned long long)sh.length);
        if (checksum(payload, sh.length) != sh.checksum)
            BAD("%s is damaged: section %u's checksum does not match", path, k);
        struct rbuf r = {.p = payload, .len = sh.length};
        const char *what = "?";
        if (parse(d, s, sh.tag, &r, seen, &what) < 0 || r.off != r.len)
            BAD("%s: section %u (%s) is malformed", path, k, what);
        have_scal |= sh.tag == T_SCAL;
        have_ram |= sh.tag == T_RAM;
        have_p2m |= sh.tag == T_P2MH;
        have_fmap |= sh.tag == T_FMAP;
        have_shar |= sh.tag == T_SHAR;
    }
    for (unsigned i = 0; i < h.cfg.nr_vcpus; i++)
        if (!((seen[i / 32] >> (i % 32)) & 1))
            BAD("%s has no state for vCPU %u", path, i);
    if (!have_scal || !have_ram || !have_p2m || !have_fmap || have_shar != (s->sc.has_tables != 0))
        BAD("%s lacks a section every snapshot has (scalars, RAM, host p2m, frame map, sharing tables)", path);
    if (s->sc.next_vcpu >= h.cfg.nr_vcpus)
        BAD("%s: the scheduler's next vCPU %u does not exist", path, s->sc.next_vcpu);
done:
#undef BAD
    free(payload);
    fclose(f);
    if (rc < 0) {
        sim_snapshot_free(s);
        return rc;
    }
    *out = s;
    return 0;
}
