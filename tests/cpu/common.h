/* tests/cpu/common.h — Criterion glue for the cpu/ tests. */
#ifndef VMISIM_TESTS_CPU_COMMON_H
#define VMISIM_TESTS_CPU_COMMON_H

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "harness.h"

/* Setup failures are "the test itself went wrong": reported with "setup:". */
#define SETUP(h, mode, prog, icpt)                                             \
    do {                                                                       \
        char e_[256];                                                          \
        if (harness_setup((h), (mode), (prog), (icpt), e_, sizeof(e_)) < 0)    \
            cr_assert_fail("%s", e_);                                          \
    } while (0)

#define RUN(h, max, ex)                                                        \
    do {                                                                       \
        int rc_ = cpu_run((h)->c, (max), (ex));                                \
        cr_assert_eq(rc_, 0, "cpu_run: %d (%s)", rc_, cpu_error((h)->c));      \
    } while (0)

#define REASON(ex, want) cr_assert_eq((ex)->reason, (want), "exit reason %d, expected %d", (ex)->reason, (want))

#endif
