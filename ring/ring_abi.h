/*
 * ring/ring_abi.h — the memory both sides of a vmisim vm_event ring share.
 *
 * This is an ABI, not an implementation: the simulator (the ring's front end,
 * Xen's role) and an introspection client (the back end) in another process
 * both map it.  Its layout is frozen by the _Static_asserts below.
 *
 * The shared memory object (a memfd) holds two pages:
 *   page 0  the shared ring, byte for byte Xen's `struct vm_event_sring`
 *           (xen/include/public/io/ring.h, DEFINE_RING_TYPES): a 64-byte header
 *           followed by RING_SIZE slots of the request/response union;
 *   page 1  vmisim's event channel: the pending and mask bits of the two ports
 *           of the doorbell (on Xen these live in the shared_info page).
 * A client written with Xen's ring macros maps page 0 and nothing else of it.
 */
#ifndef VMISIM_RING_ABI_H
#define VMISIM_RING_ABI_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RING_ABI_PAGE_SIZE 4096u
#define RING_ABI_SHM_SIZE (2u * RING_ABI_PAGE_SIZE)
#define RING_ABI_EVTCHN_OFFSET RING_ABI_PAGE_SIZE

/* Xen's RING_IDX: free-running 32-bit indices, wrapping modulo 2^32. */
typedef uint32_t ring_idx_t;

/*
 * The header of Xen's shared ring page.  The indices are C11 atomics so that
 * every access to shared memory is a single, untorn load or store; on x86-64 an
 * _Atomic uint32_t has the size and alignment of a uint32_t (asserted below).
 */
struct ring_abi_sring_header {
    _Atomic ring_idx_t req_prod;  /* written by the front end (simulator) */
    _Atomic ring_idx_t req_event; /* written by the back end: notify me at this req_prod */
    _Atomic ring_idx_t rsp_prod;  /* written by the back end (client) */
    _Atomic ring_idx_t rsp_event; /* written by the front end: notify me at this rsp_prod */
    uint8_t pvt_pad[4];           /* Xen's `pvt` union, unused by vm_event */
    uint8_t pad[44];              /* Xen's `__pad` */
};

_Static_assert(sizeof(_Atomic ring_idx_t) == 4 && alignof(_Atomic ring_idx_t) == 4,
               "ring indices must have the layout of Xen's RING_IDX");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "shared-memory atomics must be lock-free");
_Static_assert(offsetof(struct ring_abi_sring_header, req_prod) == 0, "req_prod");
_Static_assert(offsetof(struct ring_abi_sring_header, req_event) == 4, "req_event");
_Static_assert(offsetof(struct ring_abi_sring_header, rsp_prod) == 8, "rsp_prod");
_Static_assert(offsetof(struct ring_abi_sring_header, rsp_event) == 12, "rsp_event");
_Static_assert(offsetof(struct ring_abi_sring_header, pvt_pad) == 16, "pvt");
_Static_assert(offsetof(struct ring_abi_sring_header, pad) == 20, "__pad");
_Static_assert(sizeof(struct ring_abi_sring_header) == 64, "slots start at byte 64");

/*
 * Xen's __RING_SIZE: as many slots as fit in the page after the header,
 * rounded down to a power of two.  8 for vm_event v1 (312 bytes) and v7 (400).
 */
static inline uint32_t ring_abi_nr_slots(size_t bytes, size_t slot_size)
{
    if (slot_size == 0 || bytes <= sizeof(struct ring_abi_sring_header))
        return 0;
    size_t n = (bytes - sizeof(struct ring_abi_sring_header)) / slot_size;
    if (n > UINT32_MAX)
        n = UINT32_MAX;
    uint32_t p = 1;
    if (n == 0)
        return 0;
    while (p <= n / 2)
        p <<= 1;
    return p;
}

/*
 * One port of the doorbell, with Xen's event-channel bits
 * (xen/common/event_channel.c, evtchn_2l): `pending` is set by a notify;
 * delivery to the port's owner (an eventfd write) happens only while the port
 * is unmasked, and masks it, as Linux's evtchn driver does on each upcall; the
 * owner unmasks it when it is ready for the next one.  Notifies that arrive
 * while the port is pending or masked coalesce into one delivery.
 */
struct ring_abi_evtchn_port {
    _Atomic uint32_t pending;
    _Atomic uint32_t masked;
    uint8_t pad[56]; /* one cache line per port: the two sides write different ports */
};

enum ring_abi_port {
    RING_ABI_PORT_SIMULATOR = 0, /* raised by the client: responses are waiting */
    RING_ABI_PORT_CLIENT = 1,    /* raised by the simulator: requests are waiting */
};

struct ring_abi_evtchn_page {
    struct ring_abi_evtchn_port port[2];
};

_Static_assert(sizeof(struct ring_abi_evtchn_port) == 64, "port layout");
_Static_assert(offsetof(struct ring_abi_evtchn_port, masked) == 4, "port layout");
_Static_assert(offsetof(struct ring_abi_evtchn_page, port[1]) == 64, "port layout");
_Static_assert(sizeof(struct ring_abi_evtchn_page) <= RING_ABI_PAGE_SIZE, "fits page 1");

#endif
