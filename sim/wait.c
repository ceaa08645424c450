/*
 * sim/wait.c — a domain whose vCPUs all wait: what each waits for, and the
 * simulated-time deadline after which an in-process client that never
 * answers is reported as a deadlock instead of being waited for forever.
 *
 * On Xen a client that takes every request of a full ring and waits for yet
 * another event before answering hangs the guest for good: the vCPU that
 * would raise that event sleeps on the ring's wait queue
 * (vm_event_wait_slot) until a response frees a slot.  vmisim keeps Xen's
 * rules and turns the hang into a report, measured in simulated time so that
 * the same scenario gives the same report on every machine.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sim_internal.h"

/* Appends to buf (always NUL-terminated, silently cut when full). */
static void put(char *buf, size_t len, size_t *off, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
    if (*off + 1 >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *off, len - *off, fmt, ap);
    va_end(ap);
    if (n > 0)
        *off = *off + (size_t)n < len ? *off + (size_t)n : len - 1;
}

/* "vCPUs 0-7, 9": the ids set in mask, ranges folded. */
static void put_vcpus(char *buf, size_t len, size_t *off, const bool *mask, unsigned n)
{
    unsigned count = 0;
    for (unsigned i = 0; i < n; i++)
        count += mask[i];
    put(buf, len, off, "%s ", count == 1 ? "vCPU" : "vCPUs");
    bool first = true;
    for (unsigned i = 0; i < n; i++) {
        if (!mask[i])
            continue;
        unsigned j = i;
        while (j + 1 < n && mask[j + 1])
            j++;
        put(buf, len, off, "%s%u", first ? "" : ", ", i);
        if (j > i)
            put(buf, len, off, "-%u", j);
        first = false;
        i = j;
    }
}

static void ring_state(struct sim_domain *d, const struct sim_monitor *m, char *buf, size_t len, size_t *off)
{
    if (!m->ring)
        return;
    uint32_t slots = ring_nr_slots(m->ring), outstanding = ring_nr_outstanding(m->ring);
    bool owners[SIM_MAX_VCPUS] = {false};
    bool any = false;
    unsigned char slot[400];
    for (uint32_t i = 0; i < outstanding; i++) {
        struct vme_msg req;
        if (ring_outstanding(m->ring, i, slot) == 0 && vme_decode(m->version, slot, &req) == 0
            && req.vcpu_id < d->nr_vcpus && !(req.flags & VME_FLAG_FOREIGN)) {
            owners[req.vcpu_id] = true;
            any = true;
        }
    }
    put(buf, len, off, "; the %s ring: %" PRIu32 " of %" PRIu32 " slots hold requests awaiting a response",
        m->name, outstanding, slots);
    if (any) {
        put(buf, len, off, " (from ");
        put_vcpus(buf, len, off, owners, d->nr_vcpus);
        put(buf, len, off, ")");
    }
    if (m->waitq_len)
        put(buf, len, off, ", %u vCPU(s) queued for a slot", m->waitq_len);
}

void sim_wait_report(struct sim_domain *d, char *buf, size_t len)
{
    size_t off = 0;
    if (!len)
        return;
    buf[0] = 0;
    static const struct { const char *what; } kinds[] = {
        {"wait for a response with VCPU_PAUSED"},
        {"wait for a free ring slot (Xen's vm_event_wait_slot)"},
        {"are paused until the ring has free slots (Xen's \"black eye\")"},
        {"wait for a page on its way in"},
    };
    bool mask[4][SIM_MAX_VCPUS];
    bool has[4] = {false};
    memset(mask, 0, sizeof(mask));
    for (unsigned i = 0; i < d->nr_vcpus; i++) {
        const struct sim_vcpu *v = &d->vcpus[i];
        if (v->down || v->state != SIM_VCPU_RUNNABLE)
            continue;
        int k = v->waiting_slot ? 1 : v->pause_count ? 0 : v->ring_blocked ? 2 : v->paging_wait ? 3 : -1;
        if (k >= 0)
            has[k] = mask[k][i] = true;
    }
    bool first = true;
    for (unsigned k = 0; k < 4; k++) {
        if (!has[k])
            continue;
        put(buf, len, &off, "%s", first ? "" : "; ");
        put_vcpus(buf, len, &off, mask[k], d->nr_vcpus);
        put(buf, len, &off, " %s", kinds[k].what);
        first = false;
    }
    if (d->controller_pause_count)
        put(buf, len, &off, "%sthe toolstack paused the domain (xc_domain_pause, count %u)", first ? "" : "; ",
            d->controller_pause_count);
    ring_state(d, &d->monitor, buf, len, &off);
    ring_state(d, &d->paging, buf, len, &off);
    ring_state(d, &d->sharing, buf, len, &off);
}

uint64_t sim_now(const struct sim_domain *d)
{
    uint64_t t = d->idle_time;
    for (unsigned i = 0; i < d->nr_vcpus; i++)
        t += d->vcpus[i].insns;
    return t;
}

/* Does some live vCPU wait for something only the client (or the toolstack) can give? */
static bool waits_for_client(const struct sim_domain *d)
{
    for (unsigned i = 0; i < d->nr_vcpus; i++) {
        const struct sim_vcpu *v = &d->vcpus[i];
        if (!v->down && v->state == SIM_VCPU_RUNNABLE
            && (v->pause_count || v->waiting_slot || v->ring_blocked || v->paging_wait))
            return true;
    }
    return false;
}

int sim_idle_wait(struct sim_domain *d, struct sim_stop *stop)
{
    if (!d->client || d->in_client || !waits_for_client(d))
        return 0;
    uint64_t tick = d->quantum;
    while (d->idle_for < d->deadlock_timeout) {
        /* One quantum of simulated time passes with every vCPU waiting; the client gets a turn. */
        d->idle_time += tick;
        d->idle_for += tick;
        d->in_client = true;
        d->event_posted = false;
        d->client(d->client_opaque);
        d->in_client = false;
        sim_monitor_poll(d);
        bool progress = d->event_posted || d->crashed || d->shutdown;
        for (unsigned i = 0; i < d->nr_vcpus && !progress; i++)
            progress = sim_vcpu_runnable(&d->vcpus[i]);
        if (progress) {
            d->idle_for = 0;
            return 1;
        }
    }
    /* The whole report is sim_wait_report's; the stop carries as much as fits. */
    char report[sizeof(stop->why)];
    sim_wait_report(d, report, sizeof(report));
    stop->reason = SIM_STOP_DEADLOCK;
    stop->vcpu = 0;
    snprintf(stop->why, sizeof(stop->why), "%.*s", (int)sizeof(stop->why) - 1, report);
    return -EDEADLK;
}
