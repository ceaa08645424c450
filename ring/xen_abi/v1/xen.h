/* Shim for the seed header's #include "xen.h": Debian's libxen-dev public header. */
#include <xen/xen.h>
