/*
 * ring/xenlibs/xenforeignmemory.c — the drop-in libxenforeignmemory.so.1.
 *
 * Xen maps foreign frames through privcmd (tools/libs/foreignmemory/linux.c);
 * here the handle is a connection to `vmisim serve`, which answers a map with
 * the guest RAM memfd and each gfn's offset in it; the pages are mapped
 * MAP_SHARED, so the client sees (and writes) the guest's own bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <xenforeignmemory.h>

#include "xl_conn.h"

struct xenforeignmemory_handle {
    struct xl_conn conn;
};

xenforeignmemory_handle *xenforeignmemory_open(struct xentoollog_logger *logger, unsigned open_flags)
{
    (void)logger, (void)open_flags;
    xenforeignmemory_handle *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    int rc = xl_connect(&h->conn, "xenforeignmemory_open");
    if (rc < 0) {
        free(h);
        errno = -rc;
        return NULL;
    }
    return h;
}

int xenforeignmemory_close(xenforeignmemory_handle *fmem)
{
    if (!fmem)
        return 0;
    xl_close(&fmem->conn);
    free(fmem);
    return 0;
}

void *xenforeignmemory_map(xenforeignmemory_handle *fmem, uint32_t dom, int prot, size_t pages,
                           const xen_pfn_t arr[], int err[])
{
    if (!fmem) {
        errno = EINVAL;
        return NULL;
    }
    return xl_map(&fmem->conn, dom, prot, pages, arr, err);
}

void *xenforeignmemory_map2(xenforeignmemory_handle *fmem, uint32_t domid, void *addr, int prot, int flags,
                            size_t pages, const xen_pfn_t arr[], int err[])
{
    /* Only "anywhere": a fixed address would need the caller's placement rules. */
    if (addr || flags) {
        errno = EOPNOTSUPP;
        return NULL;
    }
    return xenforeignmemory_map(fmem, domid, prot, pages, arr, err);
}

int xenforeignmemory_unmap(xenforeignmemory_handle *fmem, void *addr, size_t pages)
{
    (void)fmem;
    return munmap(addr, pages * 4096);
}

int xenforeignmemory_restrict(xenforeignmemory_handle *fmem, domid_t domid)
{
    (void)fmem, (void)domid;
    XL_NOT_IMPLEMENTED();
    return -1;
}

xenforeignmemory_resource_handle *xenforeignmemory_map_resource(xenforeignmemory_handle *fmem, domid_t domid,
                                                                unsigned int type, unsigned int id,
                                                                unsigned long frame, unsigned long nr_frames,
                                                                void **paddr, int prot, int flags)
{
    (void)fmem, (void)domid, (void)type, (void)id, (void)frame, (void)nr_frames, (void)paddr, (void)prot,
        (void)flags;
    XL_NOT_IMPLEMENTED();
    return NULL;
}

int xenforeignmemory_unmap_resource(xenforeignmemory_handle *fmem, xenforeignmemory_resource_handle *fres)
{
    (void)fmem, (void)fres;
    XL_NOT_IMPLEMENTED();
    return -1;
}

int xenforeignmemory_resource_size(xenforeignmemory_handle *fmem, domid_t domid, unsigned int type,
                                   unsigned int id, size_t *size)
{
    (void)fmem, (void)domid, (void)type, (void)id, (void)size;
    XL_NOT_IMPLEMENTED();
    return -1;
}
