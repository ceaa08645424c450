/* Shim for the seed header's #include "io/ring.h": Debian's libxen-dev public header. */
#include <xen/io/ring.h>
