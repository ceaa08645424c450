/*
 * tests/fuzz/fuzz_client_input.c — coverage-guided fuzzing of an in-process
 * client (issue 10, section 2; docs/fuzzing.md, "Coverage guidance").
 *
 * The input's bytes are the choices of sim_fuzz_client_input's event-stream
 * generator (how many steps, which reason, vCPU, field values, bursts,
 * floods, rewrites), so libFuzzer or AFL++ steer the streams by the coverage
 * of the client built into this binary — here tests/fuzz_client's "stepper".
 * A run that finds a client failure is a finding: FUZZ_CHECK aborts, the
 * fuzzer keeps the input, and the scenario that replays it is written to
 * $VMISIM_FUZZ_REPRODUCER (default fuzz-client-input-repro.yaml).
 *
 * What it proves in CI (the regression driver, the fixed stepper): the
 * generator takes any bytes — empty, short, long — and a correct client is
 * never flagged.  VMISIM_FUZZ_STEPPER_BUGS=1 fuzzes the buggy stepper
 * instead (the docs' demonstration: libFuzzer finds its bug).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "inproc_client.h"
#include "sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct inproc_client state;
    const char *bugs = getenv("VMISIM_FUZZ_STEPPER_BUGS");
    const char *repro = getenv("VMISIM_FUZZ_REPRODUCER");
    struct sim_fuzz_client c = inproc_client(&state, bugs && *bugs && strcmp(bugs, "0") ? INPROC_BUGS_ALL : 0);
    struct sim_fuzz_options o = {.reproducer = repro && *repro ? repro : "fuzz-client-input-repro.yaml"};
    struct sim_fuzz_result r;
    int rc = sim_fuzz_client_input(&c, data, size, &o, &r);
    FUZZ_SETUP(rc);
    FUZZ_CHECK(r.failure == SIM_FUZZ_NONE, "the client failed (%s): %s; %u step(s); reproducer %s",
               sim_fuzz_failure_name(r.failure), r.what, r.steps, o.reproducer);
    return 0;
}
