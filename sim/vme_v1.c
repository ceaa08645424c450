/* sim/vme_v1.c — the vm_event codec for interface version 1 (the seed header). */
#include "vm_event_v1.h"
#define VME_CODEC_VERSION 1
#include "vme_codec.inc"
