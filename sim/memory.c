/*
 * sim/memory.c — guest-physical memory: one map, one lookup.
 *
 * A domain's RAM is one buffer of frames, frame g being gfn g's home frame.
 * Xen's p2m maps a gfn to any machine frame; vmisim does the same for the
 * gfns that need it (a shared page, another domain's page mapped with
 * KVM_HC_MEM_MAP): their bit in d->remapped is set and d->frame_of[gfn]
 * names the frame.  sim_frame is the one lookup; cpu/ sees the same map
 * through cpu_memory.remapped/frame, so the guest, the page walker and the
 * simulator's own reads and writes always agree on where a gfn's bytes are.
 *
 * sim_mem_read / sim_mem_write are the checked accessor for everything
 * outside the guest (the API, clients, hypercall buffers): overflow-checked,
 * page by page, refusing what has no frame, unsharing before a write.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/mman.h>

#include "sim_internal.h"
#include "serve_internal.h"

/*
 * Guest RAM and the pool of shared pages live in one memfd (RAM at offset 0,
 * the pool at ram_size), mapped MAP_SHARED: a client in another process maps
 * guest frames from it (xenforeignmemory_map through `vmisim serve`, as Xen's
 * privcmd maps machine frames).  The memfd is sparse: untouched pages cost
 * nothing, as the anonymous MAP_NORESERVE mapping it replaces.
 */
static int map_ram(struct sim_domain *d)
{
    int fd = memfd_create("vmisim-guest-ram", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)(2 * d->ram_size)) < 0) {
        int err = -errno;
        if (fd >= 0)
            close(fd);
        return err;
    }
    void *ram = mmap(NULL, d->ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    void *pool = mmap(NULL, d->ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
                      (off_t)d->ram_size);
    if (ram == MAP_FAILED || pool == MAP_FAILED) {
        int err = -errno;
        if (ram != MAP_FAILED)
            munmap(ram, d->ram_size);
        if (pool != MAP_FAILED)
            munmap(pool, d->ram_size);
        close(fd);
        return err;
    }
    d->ram = ram;
    d->pool = pool;
    d->ram_fd = fd;
    return 0;
}

int sim_memory_init(struct sim_domain *d)
{
    d->nr_gfns = d->ram_size / CPU_PAGE_SIZE;
    d->tot_pages = d->max_pages = d->nr_gfns;
    d->ram_fd = -1;
    /* dom_cow's pages for this domain (the pool): at most one per gfn. */
    int rc = map_ram(d);
    d->remapped = calloc((d->nr_gfns + 63) / 64, sizeof(uint64_t));
    d->frame_of = calloc(d->nr_gfns, sizeof(*d->frame_of));
    /* Home frames then pool frames: 2 * nr_gfns bits (sim/snapshot.c). */
    d->dirty = calloc((2 * d->nr_gfns + 63) / 64, sizeof(uint64_t));
    if (rc < 0)
        return rc;
    if (!d->remapped || !d->frame_of || !d->dirty)
        return -ENOMEM;
    return 0;
}

void sim_memory_free(struct sim_domain *d)
{
    sim_snapshot_detach_all(d);
    free(d->dirty);
    if (d->ram)
        munmap(d->ram, d->ram_size);
    if (d->pool)
        munmap(d->pool, d->ram_size);
    if (d->ram_fd >= 0)
        close(d->ram_fd);
    d->ram_fd = -1;
    free(d->remapped);
    free(d->frame_of);
}

int sim_ram_memfd(const struct sim_domain *d)
{
    return d->ram_fd;
}

int sim_foreign_frame(struct sim_domain *d, uint64_t gfn, uint64_t *offset)
{
    if (gfn >= d->nr_gfns)
        return -EINVAL;
    uint8_t *f = sim_frame(d, gfn);
    /* Xen's privcmd answers ENOENT for a paged-out gfn (and the pager is asked for it). */
    if (!f) {
        sim_paging_populate_foreign(d, gfn);
        return -ENOENT;
    }
    if (f >= d->ram && (uint64_t)(f - d->ram) < d->ram_size)
        *offset = (uint64_t)(f - d->ram);
    else if (f >= d->pool && (uint64_t)(f - d->pool) < d->ram_size)
        *offset = d->ram_size + (uint64_t)(f - d->pool);
    else
        return -EOPNOTSUPP; /* another domain's page (KVM_HC_MEM_MAP): not in our memfd */
    /* The client may write through its mapping: a snapshot must treat the frame as written. */
    sim_mem_dirty(d, f);
    return 0;
}

int sim_memory_map_into(struct sim_domain *d, struct sim_domain *into)
{
    for (unsigned i = 0; i < into->nr_vcpus; i++) {
        struct cpu *c = into->vcpus[i].cpu;
        int rc = 0;
        if (into != d)
            rc = cpu_map_area(c, d->ram, d->ram_size);
        if (rc == 0)
            rc = cpu_map_area(c, d->pool, d->ram_size);
        if (rc < 0)
            return sim_set_error(into, rc, "vCPU %u cannot reach another memory area (%s)%s", i,
                                 cpu_error(c), rc == -EBUSY ? ": call between sim_run calls" : "");
        /* Every guest write through this vCPU is reported (sim/snapshot.c). */
        if (into == d)
            cpu_set_dirty_hook(c, sim_vcpu_dirty, &into->vcpus[i]);
    }
    return 0;
}

/* ---- Dirty tracking (sim/snapshot.c restores only what changed) ---------------- */

static bool mark_in(struct sim_domain *d, const uint8_t *frame)
{
    uint64_t f;
    if (frame >= d->ram && (uint64_t)(frame - d->ram) < d->ram_size)
        f = (uint64_t)(frame - d->ram) / CPU_PAGE_SIZE;
    else if (frame >= d->pool && (uint64_t)(frame - d->pool) < d->ram_size)
        f = d->nr_gfns + (uint64_t)(frame - d->pool) / CPU_PAGE_SIZE;
    else
        return false;
    d->dirty[f / 64] |= 1ull << (f % 64);
    return true;
}

void sim_mem_dirty(struct sim_domain *d, const uint8_t *frame)
{
    if (!frame || mark_in(d, frame))
        return;
    /* An introspector's vCPU writing a page it mapped (KVM_HC_MEM_MAP): the target's frame. */
    for (unsigned i = 0; i < d->nr_targets; i++)
        if (mark_in(d->targets[i], frame))
            return;
}

void sim_vcpu_dirty(void *opaque, uint8_t *frame)
{
    struct sim_vcpu *v = opaque;
    sim_mem_dirty(v->domain, frame);
}

static bool is_remapped(const struct sim_domain *d, uint64_t gfn)
{
    return (d->remapped[gfn / 64] >> (gfn % 64)) & 1;
}

uint8_t *sim_frame(struct sim_domain *d, uint64_t gfn)
{
    if (gfn >= d->nr_gfns)
        return NULL;
    if (is_remapped(d, gfn))
        return d->frame_of[gfn];
    /* A paged-out gfn has no frame: its home frame was scrubbed and freed. */
    if (!p2m_paging_has_frame(d->host_p2m, gfn))
        return NULL;
    return d->ram + gfn * CPU_PAGE_SIZE;
}

void sim_gfn_set_frame(struct sim_domain *d, uint64_t gfn, uint8_t *frame)
{
    if (gfn >= d->nr_gfns)
        return;
    /*
     * Whatever the caller wrote into the old or the new frame around this change (unshare,
     * nominate, a zeroed page after an unmap) is covered: both count as written, and the home
     * frame too (a snapshot must put the bytes of each back).
     */
    sim_mem_dirty(d, d->ram + gfn * CPU_PAGE_SIZE);
    sim_mem_dirty(d, d->frame_of[gfn]);
    sim_mem_dirty(d, frame);
    d->frame_of[gfn] = frame;
    if (frame)
        d->remapped[gfn / 64] |= 1ull << (gfn % 64);
    else
        d->remapped[gfn / 64] &= ~(1ull << (gfn % 64));
    sim_altp2m_host_frame_changed(d, gfn);
    sim_p2m_changed(d, gfn, 1);
    /* Code translated from the old frame must not run for the new one (never flushed in the engine). */
    if (d->ran)
        d->code_flush_pending = true;
}

uint64_t sim_ram_size(const struct sim_domain *d)
{
    return d->ram_size;
}

void *sim_gpa(struct sim_domain *d, uint64_t gpa, uint64_t len)
{
    /* Written so that no sum can overflow: gpa + len is never computed. */
    if (gpa > d->ram_size || len > d->ram_size - gpa)
        return NULL;
    /* Contiguous only where every page is its own home frame and has it. */
    uint64_t first = gpa / CPU_PAGE_SIZE, last = len ? (gpa + len - 1) / CPU_PAGE_SIZE : first;
    for (uint64_t g = first; g <= last && g < d->nr_gfns; g++)
        if (is_remapped(d, g) || !p2m_paging_has_frame(d->host_p2m, g))
            return NULL;
    /* The caller gets a writable pointer: every frame it covers counts as written. */
    for (uint64_t g = first; g <= last && g < d->nr_gfns; g++)
        sim_mem_dirty(d, d->ram + g * CPU_PAGE_SIZE);
    return d->ram + gpa;
}

/* One page's part of an access: 0 with its frame, or the error that says why not. */
static int frame_for(struct sim_domain *d, uint64_t gfn, bool write, bool populate, uint8_t **out)
{
    *out = NULL;
    if (write && p2m_is_shared(d->host_p2m, gfn) && sim_sharing_unshare(d, gfn) < 0)
        return sim_set_error(d, -ENOMEM, "gfn %#llx is shared and unsharing it for this write needs a page "
                             "the domain may not have (tot_pages %llu, max_pages %llu): raise max_pages "
                             "(sim_set_max_pages) and retry", (unsigned long long)gfn,
                             (unsigned long long)d->tot_pages, (unsigned long long)d->max_pages);
    *out = sim_frame(d, gfn);
    if (!*out) {
        /* Xen refuses the foreign mapping with ENOENT and asks the pager for the page. */
        if (populate)
            sim_paging_populate_foreign(d, gfn);
        return sim_set_error(d, -ENOENT, "gfn %#llx is paged out: it has no contents until the pager loads "
                             "it (sim_paging_load); retry then", (unsigned long long)gfn);
    }
    return 0;
}

/*
 * A host write changed `frame`: code translated from it must not run again.
 * Only the vCPUs that fetched code from it pay (cpu_frame_written; a flush of
 * the whole code cache costs milliseconds).  From inside the engine (an
 * in-process client's turn) the running vCPU cannot drop blocks: then every
 * vCPU retranslates before the next run.  Before any vCPU ran there is nothing.
 */
static void code_written(struct sim_domain *d, const uint8_t *frame)
{
    if (!d->ran)
        return;
    for (unsigned i = 0; i < d->nr_vcpus; i++)
        if (cpu_frame_written(d->vcpus[i].cpu, frame) < 0)
            d->code_flush_pending = true;
}

static int ram_access(struct sim_domain *d, uint64_t gpa, void *buf, uint64_t len, bool write, bool populate)
{
    if (gpa > d->ram_size || len > d->ram_size - gpa)
        return sim_set_error(d, -EFAULT, "guest-physical range %#llx+%#llx is outside guest RAM (%#llx bytes)",
                             (unsigned long long)gpa, (unsigned long long)len,
                             (unsigned long long)d->ram_size);
    uint8_t *b = buf;
    while (len) {
        uint64_t off = gpa % CPU_PAGE_SIZE, chunk = CPU_PAGE_SIZE - off;
        if (chunk > len)
            chunk = len;
        uint8_t *f = NULL;
        int rc = frame_for(d, gpa / CPU_PAGE_SIZE, write, populate, &f);
        if (rc < 0)
            return rc;
        if (write) {
            memcpy(f + off, b, chunk);
            sim_mem_dirty(d, f);
            code_written(d, f);
        } else
            memcpy(b, f + off, chunk);
        b += chunk;
        gpa += chunk;
        len -= chunk;
    }
    return 0;
}

int sim_mem_read(struct sim_domain *d, uint64_t gpa, void *buf, uint64_t len)
{
    return ram_access(d, gpa, buf, len, false, true);
}

int sim_mem_peek(struct sim_domain *d, uint64_t gpa, void *buf, uint64_t len)
{
    return ram_access(d, gpa, buf, len, false, false);
}

int sim_mem_write(struct sim_domain *d, uint64_t gpa, const void *buf, uint64_t len)
{
    return ram_access(d, gpa, (void *)buf, len, true, true);
}
