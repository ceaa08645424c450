/*
 * tests/fuzz/fuzz.h — what every fuzz target shares: the libFuzzer entry
 * point's prototype and FUZZ_CHECK, the harness's way to report a broken
 * invariant.  A broken invariant is a finding, so it aborts with one clear
 * line: libFuzzer (and AFL++, and tests/fuzz/driver.c) then keep the input.
 * Failures of the harness's own set-up say "FUZZ SET-UP" instead: they are
 * not findings in the simulator.
 */
#ifndef VMISIM_TESTS_FUZZ_H
#define VMISIM_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional: called once before the first input (weak, so a target may leave it out). */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

#define FUZZ_CHECK(cond, ...)                                                                   \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "FUZZ INVARIANT BROKEN (%s:%d): ", __FILE__, __LINE__);              \
            fprintf(stderr, __VA_ARGS__);                                                       \
            fputc('\n', stderr);                                                                \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

#define FUZZ_SETUP(expr)                                                                        \
    do {                                                                                        \
        if ((expr) < 0) {                                                                       \
            fprintf(stderr, "FUZZ SET-UP failed (not a finding): %s\n", #expr);                 \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

#endif
