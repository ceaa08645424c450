/*
 * ring/xen_abi/vm_event_v7.h — vm_event interface version 7 (Xen 4.15–4.17+),
 * from Debian's libxen-dev <xen/vm_event.h>.  It defines the same names as the
 * v1 header: a translation unit includes one version, never both.
 */
#ifndef VMISIM_VM_EVENT_V7_H
#define VMISIM_VM_EVENT_V7_H

#include "xen_tools.h"
#include <xen/xen.h>
#include <xen/vm_event.h>

_Static_assert(VM_EVENT_INTERFACE_VERSION == 7, "libxen-dev's vm_event.h is interface version 7");
_Static_assert(sizeof(vm_event_request_t) == 400, "v7 slot is 400 bytes");
_Static_assert(offsetof(vm_event_request_t, altp2m_idx) == 16, "v7 altp2m_idx");
_Static_assert(offsetof(vm_event_request_t, u) == 24, "v7 union u");
_Static_assert(offsetof(vm_event_request_t, data) == 56, "v7 data");
_Static_assert(sizeof(((vm_event_request_t *)0)->data.emul.read.data) == 340,
               "v7 emul read data holds 340 bytes");
_Static_assert(offsetof(struct vm_event_sring, ring) == 64, "v7 sring header");

#endif
