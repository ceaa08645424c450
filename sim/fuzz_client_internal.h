/*
 * sim/fuzz_client_internal.h — `vmisim fuzz-client` (sim/fuzz_client.c):
 * what the command line and the C API share.  Not public API: the C API is
 * sim_fuzz_client() in sim/sim.h.
 */
#ifndef VMISIM_FUZZ_CLIENT_INTERNAL_H
#define VMISIM_FUZZ_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "sim.h"

/* One fuzzing session: which client, how runs are made and judged. */
struct fz_config {
    unsigned vcpus, version, max_steps, runs;
    uint64_t seed;
    bool verbose;
    const char *reproducer;
    char *code_hex;           /* the guest's code as a hex byte string (guest_prepare) */
    /* In-process: the client and whether each run is a forked child. */
    const struct sim_fuzz_client *client;
    bool isolate;
    /* Out of process: the command (argv with {domid} and {socket}), the drop-in libraries. */
    char *const *argv;
    const char *xenlibs;
    uint32_t domid;
    long hang_ms;             /* wall-clock time without progress that counts as a hang */
    char dir[64];             /* a private directory for the socket and the client's output */
};

/* sim/fuzz_client.c: the `vmisim fuzz-client` command. */
int vmisim_fuzz_client(int argc, char **argv);

#endif
