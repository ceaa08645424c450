/* tests/sim/bench_clock.h — the one clock the sim/ benchmarks read (monotonic, in ns). */
#ifndef VMISIM_TESTS_SIM_BENCH_CLOCK_H
#define VMISIM_TESTS_SIM_BENCH_CLOCK_H

#include <time.h>

static inline double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

#endif
