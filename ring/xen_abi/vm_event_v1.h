/*
 * ring/xen_abi/vm_event_v1.h — vm_event interface version 1 (Xen 4.6–4.7), from
 * the project's seed header (v1/vm_event.h, unmodified) through a small include
 * shim (v1/xen.h, v1/io/ring.h).  It defines the same names as Xen 4.17's
 * <xen/vm_event.h>: a translation unit includes one version, never both.
 */
#ifndef VMISIM_VM_EVENT_V1_H
#define VMISIM_VM_EVENT_V1_H

#include "xen_tools.h"
#include "v1/vm_event.h"

_Static_assert(VM_EVENT_INTERFACE_VERSION == 1, "seed header is interface version 1");
_Static_assert(sizeof(vm_event_request_t) == 312, "v1 slot is 312 bytes");
_Static_assert(offsetof(vm_event_request_t, altp2m_idx) == 16, "v1 altp2m_idx");
_Static_assert(offsetof(vm_event_request_t, u) == 24, "v1 union u");
_Static_assert(offsetof(vm_event_request_t, data) == 56, "v1 data");
_Static_assert(sizeof(struct vm_event_regs_x86) == 256, "v1 regs_x86");
_Static_assert(sizeof(((vm_event_request_t *)0)->data.emul_read_data.data) == 252,
               "v1 emul_read_data holds 252 bytes");
_Static_assert(offsetof(struct vm_event_sring, ring) == 64, "v1 sring header");

#endif
