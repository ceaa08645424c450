/* ring/ring_internal.h — helpers shared by ring/'s own files; not public API. */
#ifndef VMISIM_RING_INTERNAL_H
#define VMISIM_RING_INTERNAL_H

#include <stdatomic.h>

#include "ring.h"

/* Xen's barriers (xen_wmb, xen_rmb, xen_mb), as C11 fences. */
#define ring_wmb() atomic_thread_fence(memory_order_release)
#define ring_rmb() atomic_thread_fence(memory_order_acquire)
#define ring_mb() atomic_thread_fence(memory_order_seq_cst)

/* Indices are read and written relaxed; ordering comes from the fences above, as in Xen. */
#define ring_load(p) atomic_load_explicit((p), memory_order_relaxed)
#define ring_store(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)

/* Creates the shared memory object (RING_ABI_SHM_SIZE bytes, sealed against resizing). */
int ring_shm_create(int *fd_out);
/* Maps RING_ABI_SHM_SIZE bytes of `fd` read-write and shared; checks its size first. */
int ring_shm_map(int fd, void **out);
void ring_shm_unmap(void *p);

static inline struct ring_abi_sring_header *ring_shm_header(void *shm)
{
    return (struct ring_abi_sring_header *)shm;
}

static inline unsigned char *ring_shm_slot(void *shm, size_t slot_size, uint32_t nr_slots,
                                           ring_idx_t idx)
{
    return (unsigned char *)shm + sizeof(struct ring_abi_sring_header)
           + (size_t)(idx & (nr_slots - 1)) * slot_size;
}

#endif
