/* sim/vme_v7.c — the vm_event codec for interface version 7 (Xen 4.17, libxen-dev). */
#include "vm_event_v7.h"
#define VME_CODEC_VERSION 7
#include "vme_codec.inc"
