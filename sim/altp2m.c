/*
 * sim/altp2m.c — alternate p2m views as Xen 4.17 runs them (xen/arch/x86/mm/altp2m.c,
 * p2m.c's altp2m part, hvm.c do_altp2m_op; spec §5).
 *
 * View 0 is the host p2m (d->host_p2m and its bitmaps).  Views 1..9 each have a
 * struct p2m of their own for the access of every gfn (an entry the view does not
 * hold has the view's default access, which is what Xen copies in on a fault), a
 * `present` bitmap of the entries the view holds (host changes propagate to those,
 * p2m_altp2m_propagate_change), and their own frame map for change_gfn.  The host's
 * paging and sharing states are mirrored into every view, so cpu/ needs one
 * restriction bitmap and one remap bitmap per view: switching a vCPU's view is
 * swapping two pointers and flushing its TLB (cpu_set_view), never retranslating
 * code.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

static bool bit(const uint64_t *map, uint64_t g)
{
    return (map[g / 64] >> (g % 64)) & 1;
}

static void set_bit_to(uint64_t *map, uint64_t g, bool on)
{
    if (on)
        map[g / 64] |= 1ull << (g % 64);
    else
        map[g / 64] &= ~(1ull << (g % 64));
}

static struct sim_view *vcpu_view(struct sim_vcpu *v)
{
    struct sim_domain *d = v->domain;
    return d->altp2m_active && v->view ? &d->views[v->view] : NULL;
}

struct p2m *sim_vcpu_p2m(struct sim_vcpu *v)
{
    struct sim_view *w = vcpu_view(v);
    return w ? w->p2m : v->domain->host_p2m;
}

unsigned sim_vcpu_rights(void *opaque, uint64_t gfn)
{
    return p2m_rights(sim_vcpu_p2m(opaque), gfn);
}

uint8_t *sim_vcpu_frame(void *opaque, uint64_t gfn)
{
    struct sim_vcpu *v = opaque;
    struct sim_domain *d = v->domain;
    if (gfn >= d->nr_gfns)
        return NULL;
    struct sim_view *w = vcpu_view(v);
    if (w && bit(w->changed, gfn))
        return w->frame_of[gfn];
    return d->frame_of[gfn];
}

/* cpu/ follows the vCPU's view: its restriction and remap bitmaps. */
static void load_view(struct sim_vcpu *v)
{
    struct sim_view *w = vcpu_view(v);
    struct sim_domain *d = v->domain;
    cpu_set_view(v->cpu, p2m_restricted_bitmap(w ? w->p2m : d->host_p2m), w ? w->remapped : d->remapped);
}

static void switch_vcpu(struct sim_vcpu *v, uint16_t idx)
{
    if (v->view == idx)
        return;
    v->view = idx;
    load_view(v);
}

/* ---- Host changes carried into the views --------------------------------- */

void sim_set_paging(struct sim_domain *d, uint64_t gfn, enum p2m_paging state, bool has_frame)
{
    p2m_set_paging(d->host_p2m, gfn, state, has_frame);
    for (unsigned i = 1; i < SIM_MAX_ALTP2M; i++)
        if (d->views[i].exists)
            p2m_set_paging(d->views[i].p2m, gfn, state, has_frame);
}

void sim_set_shared(struct sim_domain *d, uint64_t gfn, bool shared)
{
    p2m_set_shared(d->host_p2m, gfn, shared);
    for (unsigned i = 1; i < SIM_MAX_ALTP2M; i++)
        if (d->views[i].exists)
            p2m_set_shared(d->views[i].p2m, gfn, shared);
}

void sim_altp2m_host_access_changed(struct sim_domain *d, uint64_t first_gfn, uint64_t nr)
{
    if (!d->altp2m_active)
        return;
    for (unsigned i = 1; i < SIM_MAX_ALTP2M; i++) {
        struct sim_view *w = &d->views[i];
        if (!w->exists)
            continue;
        for (uint64_t g = first_gfn; g < first_gfn + nr && g < d->nr_gfns; g++) {
            if (!bit(w->present, g) || bit(w->changed, g))
                continue;
            enum p2m_access a;
            if (p2m_get_access(d->host_p2m, g, &a) == 0)
                p2m_set_access(w->p2m, g, 1, a, NULL);
        }
    }
}

void sim_altp2m_host_frame_changed(struct sim_domain *d, uint64_t gfn)
{
    for (unsigned i = 1; i < SIM_MAX_ALTP2M; i++) {
        struct sim_view *w = &d->views[i];
        if (w->exists && !bit(w->changed, gfn))
            set_bit_to(w->remapped, gfn, bit(d->remapped, gfn));
    }
}

/*
 * gfn's access in view idx: on view 0 (the host) the change reaches the views'
 * held entries; in another view the entry becomes held.  True when a right was lost.
 */
static bool set_access_in(struct sim_domain *d, uint16_t idx, uint64_t gfn, enum p2m_access a)
{
    bool lost = false;
    if (idx == 0) {
        if (p2m_set_access(d->host_p2m, gfn, 1, a, &lost) == 0)
            sim_altp2m_host_access_changed(d, gfn, 1);
    } else if (p2m_set_access(d->views[idx].p2m, gfn, 1, a, &lost) == 0) {
        set_bit_to(d->views[idx].present, gfn, true);
    }
    return lost;
}

bool sim_vcpu_set_access(struct sim_vcpu *v, uint64_t gfn, enum p2m_access a)
{
    return set_access_in(v->domain, vcpu_view(v) ? v->view : 0, gfn, a);
}

/* ---- The toolstack's HVMOP_altp2m ----------------------------------------- */

int sim_altp2m_set_mode(struct sim_domain *d, enum sim_altp2m_mode mode)
{
    if ((unsigned)mode > SIM_ALTP2M_LIMITED)
        return sim_set_error(d, -EINVAL, "altp2m mode %u is not one of Xen's (0 disabled, 1 mixed, "
                             "2 external, 3 limited)", (unsigned)mode);
    if (d->altp2m_active)
        return sim_set_error(d, -EBUSY, "the altp2m mode cannot change while altp2m is active");
    d->altp2m_mode = mode;
    return sim_update_intercept(d);
}

void sim_altp2m_view_free(struct sim_view *w)
{
    p2m_destroy(w->p2m);
    free(w->present);
    free(w->changed);
    free(w->remapped);
    free(w->frame_of);
    memset(w, 0, sizeof(*w));
}

void sim_altp2m_free(struct sim_domain *d)
{
    for (unsigned i = 0; i < SIM_MAX_ALTP2M; i++)
        sim_altp2m_view_free(&d->views[i]);
}

static int need_active(struct sim_domain *d, const char *what)
{
    if (d->altp2m_active)
        return 0;
    return sim_set_error(d, -EOPNOTSUPP, "%s: altp2m is not active (sim_altp2m_set_domain_state first; "
                         "Xen: EOPNOTSUPP)", what);
}

static int need_view(struct sim_domain *d, uint16_t idx, const char *what)
{
    int rc = need_active(d, what);
    if (rc < 0)
        return rc;
    if (idx >= SIM_MAX_ALTP2M || (idx && !d->views[idx].exists))
        return sim_set_error(d, -EINVAL, "%s: there is no altp2m view %u", what, idx);
    return 0;
}

int sim_altp2m_set_domain_state(struct sim_domain *d, bool active)
{
    if (d->altp2m_mode == SIM_ALTP2M_DISABLED)
        return sim_set_error(d, -EINVAL, "altp2m is disabled for the domain (HVM_PARAM_ALTP2M): "
                             "set a mode with sim_altp2m_set_mode first (Xen: EINVAL)");
    if (active == d->altp2m_active)
        return 0;
    d->altp2m_active = active;
    d->views[0] = (struct sim_view){.exists = active, .visible = true};
    for (unsigned i = 0; i < d->nr_vcpus; i++) {
        d->vcpus[i].view = 0;
        load_view(&d->vcpus[i]);
    }
    if (!active) /* p2m_flush_altp2m: every view goes */
        for (unsigned i = 1; i < SIM_MAX_ALTP2M; i++)
            sim_altp2m_view_free(&d->views[i]);
    return sim_update_intercept(d);
}

bool sim_altp2m_active(const struct sim_domain *d)
{
    return d->altp2m_active;
}

int sim_altp2m_create_view(struct sim_domain *d, unsigned default_access, uint16_t *out)
{
    int rc = need_active(d, "xc_altp2m_create_view");
    if (rc < 0)
        return rc;
    if (default_access >= P2M_ACCESS_COUNT)
        return sim_set_error(d, -EINVAL, "access %u is not a xenmem_access_t value", default_access);
    unsigned i = 1;
    while (i < SIM_MAX_ALTP2M && d->views[i].exists)
        i++;
    if (i == SIM_MAX_ALTP2M)
        return sim_set_error(d, -EINVAL, "all %u altp2m views exist: destroy one first (Xen: EINVAL)",
                             SIM_MAX_ALTP2M);
    struct sim_view *w = &d->views[i];
    size_t words = (d->nr_gfns + 63) / 64;
    if ((rc = p2m_create(&w->p2m, d->nr_gfns)) < 0)
        return sim_set_error(d, rc, "no memory for an altp2m view");
    w->present = calloc(words, 8);
    w->changed = calloc(words, 8);
    w->remapped = malloc(words * 8);
    w->frame_of = calloc(d->nr_gfns, sizeof(*w->frame_of));
    if (!w->present || !w->changed || !w->remapped || !w->frame_of) {
        sim_altp2m_view_free(w);
        return sim_set_error(d, -ENOMEM, "no memory for an altp2m view");
    }
    memcpy(w->remapped, d->remapped, words * 8);
    /* "default" means the host's default access, as xc_altp2m_create_view passes it on. */
    enum p2m_access a = default_access == P2M_ACCESS_DEFAULT ? p2m_default_access(d->host_p2m)
                                                             : (enum p2m_access)default_access;
    p2m_set_access(w->p2m, ~0ull, 0, a, NULL);
    p2m_set_access(w->p2m, 0, d->nr_gfns, a, NULL);
    /* The host's paging and sharing states hold in every view. */
    for (uint64_t g = 0; g < d->nr_gfns; g++) {
        enum p2m_paging t = p2m_get_paging(d->host_p2m, g);
        if (t != P2M_PAGING_NONE)
            p2m_set_paging(w->p2m, g, t, p2m_paging_has_frame(d->host_p2m, g));
        if (p2m_is_shared(d->host_p2m, g))
            p2m_set_shared(w->p2m, g, true);
    }
    w->exists = w->visible = true;
    *out = (uint16_t)i;
    sim_note(d, SIM_NOTE_ACTION, 0, NULL, "altp2m view %u created (default access %s)", i, p2m_access_name(a));
    return 0;
}

int sim_altp2m_create_view_copy(struct sim_domain *d, uint16_t *out)
{
    int rc = sim_altp2m_create_view(d, P2M_ACCESS_DEFAULT, out);
    if (rc < 0)
        return rc;
    struct sim_view *w = &d->views[*out];
    for (uint64_t g = 0; g < d->nr_gfns; g++) {
        enum p2m_access a;
        p2m_get_access(d->host_p2m, g, &a);
        p2m_set_access(w->p2m, g, 1, a, NULL);
    }
    memset(w->present, 0xff, ((d->nr_gfns + 63) / 64) * 8);
    return 0;
}

int sim_altp2m_destroy_view(struct sim_domain *d, uint16_t idx)
{
    int rc = need_view(d, idx, "xc_altp2m_destroy_view");
    if (rc < 0)
        return rc;
    if (idx == 0)
        return sim_set_error(d, -EBUSY, "view 0 cannot be destroyed (Xen: EBUSY)");
    for (unsigned i = 0; i < d->nr_vcpus; i++)
        if (d->vcpus[i].view == idx)
            return sim_set_error(d, -EBUSY, "view %u is in use by vCPU %u (Xen: EBUSY)", idx, i);
    sim_altp2m_view_free(&d->views[idx]);
    return 0;
}

int sim_altp2m_switch_to_view(struct sim_domain *d, uint16_t idx)
{
    int rc = need_view(d, idx, "xc_altp2m_switch_to_view");
    if (rc < 0)
        return rc;
    if (!d->views[idx].visible)
        return sim_set_error(d, -EINVAL, "view %u is not visible (xc_altp2m_set_visibility; Xen: EINVAL)", idx);
    for (unsigned i = 0; i < d->nr_vcpus; i++)
        switch_vcpu(&d->vcpus[i], idx);
    return 0;
}

int sim_altp2m_set_vcpu_view(struct sim_domain *d, unsigned vcpu, uint16_t idx)
{
    int rc = need_view(d, idx, "switching a vCPU's view");
    if (rc < 0)
        return rc;
    if (vcpu >= d->nr_vcpus)
        return sim_set_error(d, -EINVAL, "no vCPU %u (the domain has %u vCPU(s))", vcpu, d->nr_vcpus);
    switch_vcpu(&d->vcpus[vcpu], idx);
    return 0;
}

int sim_altp2m_get_vcpu_view(struct sim_domain *d, unsigned vcpu, uint16_t *idx)
{
    int rc = need_active(d, "reading a vCPU's view");
    if (rc < 0)
        return rc;
    if (vcpu >= d->nr_vcpus)
        return sim_set_error(d, -EINVAL, "no vCPU %u (the domain has %u vCPU(s))", vcpu, d->nr_vcpus);
    *idx = d->vcpus[vcpu].view;
    return 0;
}

int sim_altp2m_set_visibility(struct sim_domain *d, uint16_t idx, bool visible)
{
    int rc = need_view(d, idx, "xc_altp2m_set_visibility");
    if (rc < 0)
        return rc;
    d->views[idx].visible = visible;
    return 0;
}

uint32_t sim_altp2m_views(const struct sim_domain *d)
{
    uint32_t m = 0;
    for (unsigned i = 0; i < SIM_MAX_ALTP2M; i++)
        if (d->views[i].exists)
            m |= 1u << i;
    return m;
}

int sim_altp2m_set_mem_access_multi(struct sim_domain *d, uint16_t idx, const uint64_t *gfns,
                                    const uint8_t *access, uint32_t nr)
{
    int rc = need_view(d, idx, "xc_altp2m_set_mem_access");
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < nr; i++)
        if (gfns[i] >= d->nr_gfns || access[i] >= P2M_ACCESS_COUNT)
            return sim_set_error(d, -EINVAL, "entry %u: gfn %#llx / access %u is not valid (nothing was set)",
                                 i, (unsigned long long)gfns[i], access[i]);
    for (uint32_t i = 0; i < nr; i++)
        if (set_access_in(d, idx, gfns[i], (enum p2m_access)access[i]))
            sim_p2m_changed(d, gfns[i], 1);
    return 0;
}

int sim_altp2m_set_mem_access(struct sim_domain *d, uint16_t idx, uint64_t gfn, unsigned access)
{
    uint8_t a = access < 256 ? (uint8_t)access : 0xff;
    return sim_altp2m_set_mem_access_multi(d, idx, &gfn, &a, 1);
}

int sim_altp2m_get_mem_access(struct sim_domain *d, uint16_t idx, uint64_t gfn, unsigned *access)
{
    int rc = need_view(d, idx, "xc_altp2m_get_mem_access");
    if (rc < 0)
        return rc;
    enum p2m_access a;
    if (p2m_get_access(idx ? d->views[idx].p2m : d->host_p2m, gfn, &a) < 0)
        return sim_set_error(d, -EINVAL, "gfn %#llx is beyond guest RAM", (unsigned long long)gfn);
    *access = a;
    return 0;
}

int sim_altp2m_change_gfn(struct sim_domain *d, uint16_t idx, uint64_t old_gfn, uint64_t new_gfn)
{
    int rc = need_view(d, idx, "xc_altp2m_change_gfn");
    if (rc < 0)
        return rc;
    if (idx == 0)
        return sim_set_error(d, -EINVAL, "change_gfn works on views 1 to %u, not the host p2m", SIM_MAX_ALTP2M - 1);
    if (old_gfn >= d->nr_gfns || (new_gfn != SIM_INVALID_GFN && new_gfn >= d->nr_gfns))
        return sim_set_error(d, -EINVAL, "gfn %#llx is beyond guest RAM",
                             (unsigned long long)(old_gfn >= d->nr_gfns ? old_gfn : new_gfn));
    struct sim_view *w = &d->views[idx];
    if (new_gfn == SIM_INVALID_GFN) {
        /* The entry goes: the next access copies the host's again, with the view's default access. */
        set_bit_to(w->changed, old_gfn, false);
        set_bit_to(w->present, old_gfn, false);
        w->frame_of[old_gfn] = NULL;
        set_bit_to(w->remapped, old_gfn, bit(d->remapped, old_gfn));
        p2m_set_access(w->p2m, old_gfn, 1, p2m_default_access(w->p2m), NULL);
    } else {
        /* new_gfn's effective entry in this view: its frame and its access. */
        uint8_t *frame = bit(w->changed, new_gfn) ? w->frame_of[new_gfn] : sim_frame(d, new_gfn);
        if (!frame)
            return sim_set_error(d, -EINVAL, "gfn %#llx has no frame (paged out): nothing to show at "
                                 "gfn %#llx", (unsigned long long)new_gfn, (unsigned long long)old_gfn);
        enum p2m_access a;
        p2m_get_access(w->p2m, new_gfn, &a);
        p2m_set_access(w->p2m, old_gfn, 1, a, NULL);
        set_bit_to(w->present, old_gfn, true);
        set_bit_to(w->changed, old_gfn, true);
        set_bit_to(w->remapped, old_gfn, true);
        w->frame_of[old_gfn] = frame;
    }
    sim_p2m_changed(d, old_gfn, 1);
    if (d->ran)
        d->code_flush_pending = true; /* other bytes at the gfn: code translated there must go */
    return 0;
}

/* ---- Switches from a response and from the guest ---------------------------- */

void sim_altp2m_check(struct sim_domain *d, struct sim_vcpu *v, uint16_t idx)
{
    /* p2m_altp2m_check: only while active, to an existing view; visibility is not checked. */
    if (!d->altp2m_active || idx >= SIM_MAX_ALTP2M || !d->views[idx].exists)
        return;
    switch_vcpu(v, idx);
    sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "vCPU %u switched to altp2m view %u (ALTERNATE_P2M)", v->id, idx);
}

int sim_altp2m_vmfunc(struct sim_domain *d, struct sim_vcpu *v, const struct cpu_insn *in)
{
    struct cpu_regs r;
    int rc = cpu_get_regs(v->cpu, &r);
    if (rc < 0)
        return sim_set_error(d, rc, "vCPU %u: %s", v->id, cpu_error(v->cpu));
    /* VMFUNC leaf 0 (EPTP switching) to a visible view; anything else: #UD (vmx_vmfunc_intercept). */
    uint64_t idx = r.rcx & 0xffffffffu;
    if ((r.rax & 0xffffffffu) == 0 && idx < SIM_MAX_ALTP2M && d->views[idx].exists && d->views[idx].visible) {
        switch_vcpu(v, (uint16_t)idx);
        if ((rc = cpu_set_rip(v->cpu, in->rip + in->len)) < 0)
            return sim_set_error(d, rc, "vCPU %u: %s", v->id, cpu_error(v->cpu));
        sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "VMFUNC: vCPU %u switched to altp2m view %u", v->id, (unsigned)idx);
        return 1;
    }
    sim_note(d, SIM_NOTE_ACTION, v->id, NULL, "VMFUNC leaf %llu, view %llu: not a visible view, #UD",
             (unsigned long long)(r.rax & 0xffffffffu), (unsigned long long)idx);
    return cpu_inject(v->cpu, 6, -1, 0) < 0 ? sim_set_error(d, -EFAULT, "vCPU %u: %s", v->id, cpu_error(v->cpu)) : 0;
}
