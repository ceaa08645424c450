/*
 * sim/kvmi_mem.c — KVM introspection's page maps (../shared/seeds/
 * kvm_vmi_hypercalls.txt): KVMI_GET_MAP_TOKEN issues a token for a domain;
 * the introspector, another domain, passes it to KVM_HC_MEM_MAP (32) with a
 * gpa of the introspected domain and a gpa of its own, which from then on
 * reaches the introspected page ("both guest physical addresses will end up
 * pointing to the same physical page").  KVM_HC_MEM_UNMAP (33) gives the
 * introspector's gpa a fresh page.
 *
 * The introspector's vCPUs reach the other domain's frames because its RAM
 * and pool are mapped into them when the token is issued
 * (sim_memory_map_into); the alias itself is a remapped gfn (sim/memory.c).
 * A mapped page holds a reference: it cannot be paged out or shared.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

/* splitmix64: tokens are unguessable to the guest, and the same in every run. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int sim_kvmi_get_map_token(struct sim_domain *d, struct sim_domain *intro, struct sim_map_token *out)
{
    if (!intro || intro == d)
        return sim_set_error(d, -EINVAL, "KVMI_GET_MAP_TOKEN needs another domain as the introspector");
    if (intro->hypercalls != SIM_HYPERCALL_KVM)
        return sim_set_error(d, -EINVAL, "the introspector must use the KVM hypercall ABI "
                             "(sim_config.hypercalls = SIM_HYPERCALL_KVM) to call KVM_HC_MEM_MAP");
    if (d->introspector && d->introspector != intro)
        return sim_set_error(d, -EBUSY, "the domain already has an introspector; one at a time");
    if (d->in_run || intro->in_run)
        return sim_set_error(d, -EBUSY, "KVMI_GET_MAP_TOKEN must be called between sim_run calls");
    if (!d->map_refs && !(d->map_refs = calloc(d->nr_gfns, sizeof(*d->map_refs))))
        return sim_set_error(d, -ENOMEM, "no memory for the map references");
    if (!intro->foreign && !(intro->foreign = calloc(intro->nr_gfns, sizeof(*intro->foreign))))
        return sim_set_error(d, -ENOMEM, "no memory for the introspector's map table");
    if (d->introspector != intro) {
        if (intro->nr_targets == SIM_MAX_TARGETS)
            return sim_set_error(d, -ENOSPC, "the introspector already holds tokens of %u domains (the most)",
                                 SIM_MAX_TARGETS);
        int rc = sim_memory_map_into(d, intro);
        if (rc < 0)
            return sim_set_error(d, rc, "%s", intro->error);
        intro->targets[intro->nr_targets++] = d;
        d->introspector = intro;
    }
    /* A new token replaces the old one (the one KVMI would hand out now). */
    uint64_t seed = mix(0x6b766d69ull ^ (d->nr_gfns << 20) ^ ++d->tokens_issued);
    for (unsigned i = 0; i < 4; i++)
        d->token.token[i] = seed = mix(seed);
    d->has_token = true;
    *out = d->token;
    return 0;
}

uint64_t sim_kvmi_nr_mapped(const struct sim_domain *intro)
{
    return intro->nr_foreign;
}

/* The introspector's gfn back to a page of its own, fresh (zeroed). */
static void unmap_one(struct sim_domain *d, uint64_t mgfn)
{
    struct sim_foreign *f = &d->foreign[mgfn];
    if (f->target && f->target->map_refs)
        f->target->map_refs[f->gfn]--;
    f->target = NULL;
    f->gfn = 0;
    d->nr_foreign--;
    memset(d->ram + mgfn * CPU_PAGE_SIZE, 0, CPU_PAGE_SIZE);
    sim_mem_dirty(d, d->ram + mgfn * CPU_PAGE_SIZE);
    sim_gfn_set_frame(d, mgfn, NULL);
}

int64_t sim_kvmi_mem_map(struct sim_domain *d, const struct sim_map_token *token, uint64_t gpa,
                         uint64_t map_gpa, char *why, size_t whylen)
{
    struct sim_domain *t = NULL;
    for (unsigned i = 0; i < d->nr_targets && !t; i++)
        if (d->targets[i]->has_token && !memcmp(&d->targets[i]->token, token, sizeof(*token)))
            t = d->targets[i];
    if (!t) {
        snprintf(why, whylen, "the token is not one KVMI_GET_MAP_TOKEN issued to this domain");
        return -EFAULT;
    }
    uint64_t tgfn = gpa / CPU_PAGE_SIZE, mgfn = map_gpa / CPU_PAGE_SIZE;
    if (tgfn >= t->nr_gfns) {
        snprintf(why, whylen, "gpa %#llx is beyond the introspected domain's RAM", (unsigned long long)gpa);
        return -EFAULT;
    }
    if (mgfn >= d->nr_gfns) {
        snprintf(why, whylen, "map gpa %#llx is beyond the introspector's RAM", (unsigned long long)map_gpa);
        return -EFAULT;
    }
    if (p2m_is_shared(d->host_p2m, mgfn) || p2m_get_paging(d->host_p2m, mgfn) != P2M_PAGING_NONE) {
        snprintf(why, whylen, "map gpa %#llx is shared or paged out in the introspector", (unsigned long long)map_gpa);
        return -EFAULT;
    }
    /* The page is pinned writable: a shared page must become private first. */
    if (sim_sharing_unshare(t, tgfn) < 0) {
        snprintf(why, whylen, "gpa %#llx is a shared page and unsharing it needs a page beyond max_pages",
                 (unsigned long long)gpa);
        return -EFAULT;
    }
    uint8_t *frame = sim_frame(t, tgfn);
    if (!frame || p2m_get_paging(t->host_p2m, tgfn) != P2M_PAGING_NONE) {
        snprintf(why, whylen, "gpa %#llx is paged out in the introspected domain", (unsigned long long)gpa);
        return -EFAULT;
    }
    if (d->foreign[mgfn].target)
        unmap_one(d, mgfn); /* "the guest physical address ... that will be replaced" */
    t->map_refs[tgfn]++;
    d->foreign[mgfn] = (struct sim_foreign){.target = t, .gfn = tgfn};
    d->nr_foreign++;
    sim_gfn_set_frame(d, mgfn, frame);
    snprintf(why, whylen, "gfn %#llx now reaches the introspected domain's gfn %#llx",
             (unsigned long long)mgfn, (unsigned long long)tgfn);
    return 0;
}

int64_t sim_kvmi_mem_unmap(struct sim_domain *d, uint64_t map_gpa, char *why, size_t whylen)
{
    uint64_t mgfn = map_gpa / CPU_PAGE_SIZE;
    if (mgfn >= d->nr_gfns || !d->foreign || !d->foreign[mgfn].target) {
        snprintf(why, whylen, "map gpa %#llx maps no page of another domain", (unsigned long long)map_gpa);
        return -EFAULT;
    }
    unmap_one(d, mgfn);
    snprintf(why, whylen, "gfn %#llx has a fresh page of its own", (unsigned long long)mgfn);
    return 0;
}

void sim_kvmi_free(struct sim_domain *d)
{
    /* As introspector: every alias goes, the targets forget us. */
    if (d->foreign) {
        for (uint64_t g = 0; g < d->nr_gfns && d->nr_foreign; g++)
            if (d->foreign[g].target)
                unmap_one(d, g);
        for (unsigned i = 0; i < d->nr_targets; i++)
            if (d->targets[i]->introspector == d) {
                d->targets[i]->introspector = NULL;
                d->targets[i]->has_token = false;
            }
        free(d->foreign);
        d->foreign = NULL;
    }
    /* As target: the introspector's aliases of our pages get fresh pages. */
    struct sim_domain *intro = d->introspector;
    if (intro) {
        for (uint64_t g = 0; intro->foreign && g < intro->nr_gfns && intro->nr_foreign; g++)
            if (intro->foreign[g].target == d)
                unmap_one(intro, g);
        for (unsigned i = 0; i < intro->nr_targets; i++)
            if (intro->targets[i] == d) {
                intro->targets[i] = intro->targets[--intro->nr_targets];
                break;
            }
        d->introspector = NULL;
    }
    free(d->map_refs);
    d->map_refs = NULL;
}
