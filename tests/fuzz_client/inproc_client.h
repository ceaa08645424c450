/*
 * tests/fuzz_client/inproc_client.h — an in-process introspection client for
 * sim_fuzz_client (sim/sim.h), with a deliberate bug that can be turned off.
 * What it does and what its bug is: inproc_client.c.
 */
#ifndef VMISIM_TESTS_INPROC_CLIENT_H
#define VMISIM_TESTS_INPROC_CLIENT_H

#include <stdint.h>

#include "sim.h"

/* The deliberate bugs (bit mask). */
#define INPROC_BUG_ONE_RECORD (1u << 0) /* one "open pages" record for the whole domain, not one per vCPU */
#define INPROC_BUGS_ALL INPROC_BUG_ONE_RECORD

struct inproc_open_page;

struct inproc_client {
    unsigned bugs;
    struct sim_domain *d;
    struct ring_back *back;
    struct evtchn *evtchn;
    uint64_t nr_gfns;
    unsigned nr_vcpus;
    struct inproc_open_page *open; /* one per vCPU (with INPROC_BUG_ONE_RECORD only [0] is used) */
    uint32_t *open_count;          /* per gfn: how many vCPUs' records hold it open */
    /* What it saw (in this process: with isolate, each run's child has its own). */
    uint64_t requests, opened, stepped, spurious_steps, other, unrecorded;
};

/* A sim_fuzz_client for `c` with the given bugs (0: the fixed client); name is "stepper" or "stepper-fixed". */
struct sim_fuzz_client inproc_client(struct inproc_client *c, unsigned bugs);

#endif
