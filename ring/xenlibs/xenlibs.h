/*
 * ring/xenlibs/xenlibs.h — what the drop-in libraries share among themselves
 * (exported in the private node VMISIM_PRIVATE_1 of libxenevtchn; no client
 * should use it).
 */
#ifndef VMISIM_XENLIBS_H
#define VMISIM_XENLIBS_H

#include <stdint.h>

#include "ring.h"

/* libxenctrl's xc_monitor_enable hands the ring's descriptors to libxenevtchn (which owns them). */
int vmisim_evtchn_register(uint32_t domid, uint32_t port, const struct ring_fds *fds);
/* xc_monitor_disable: the ring is gone; ports already bound keep their own copies. */
void vmisim_evtchn_forget(uint32_t domid, uint32_t port);

#endif
