/*
 * ring/xen_abi/xen_tools.h — what Xen's public headers expect from a toolstack
 * build before they are included: __XEN_TOOLS__ (the vm_event structures are
 * tools-only) and the ring barriers that libxenctrl normally provides.
 * Never put /usr/include/xen itself on the include path: its features.h
 * shadows glibc's.  Include <xen/...> instead.
 */
#ifndef VMISIM_XEN_TOOLS_H
#define VMISIM_XEN_TOOLS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef __XEN_TOOLS__
#define __XEN_TOOLS__ 1
#endif
#define xen_mb() atomic_thread_fence(memory_order_seq_cst)
#define xen_rmb() atomic_thread_fence(memory_order_acquire)
#define xen_wmb() atomic_thread_fence(memory_order_release)

#endif
