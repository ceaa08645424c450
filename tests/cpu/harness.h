/*
 * tests/cpu/harness.h — what every cpu/ test uses: a booted guest with the
 * standard layout and a vCPU on it, restriction bitmap and rights table, and
 * label addresses of the test programs.  Setup failures abort the test with
 * "setup:" in the message (the test itself went wrong), distinct from the
 * assertions on the behaviour tested.
 */
#ifndef VMISIM_TESTS_CPU_HARNESS_H
#define VMISIM_TESTS_CPU_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu.h"
#include "guest.h"

struct harness {
    struct guest g;
    struct cpu *c;
    uint64_t restricted[(GUEST_RAM_SIZE / 4096) / 64];
    uint8_t rights[GUEST_RAM_SIZE / 4096];
    uint64_t remapped[(GUEST_RAM_SIZE / 4096) / 64];
    uint8_t *frames[GUEST_RAM_SIZE / 4096]; /* the frame of a remapped gfn (NULL: none) */
};

/* 0 or a negative errno with a message in `err`. */
int harness_setup(struct harness *h, enum cpu_mode mode, const char *program, uint32_t intercept,
                  char *err, size_t errlen);
void harness_teardown(struct harness *h);
/* Restricts gfn to `rights` (and tells the vCPU); rights == CPU_RWX lifts it. */
void harness_restrict(struct harness *h, uint64_t gfn, unsigned rights);
/* Backs gfn by `frame` (NULL: no frame) and tells the vCPU. */
void harness_remap(struct harness *h, uint64_t gfn, uint8_t *frame);
/* Entry `i` of the program's label table (a list of qwords at GUEST_CODE_GLA + 0x908). */
uint64_t harness_label(struct harness *h, unsigned i);
/* Checked GPA of a GLA in the data area. */
#define DATA_GPA(gla) (GUEST_DATA_GPA + ((gla) - GUEST_DATA_GLA))

#endif
