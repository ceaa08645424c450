/*
 * tests/fuzz_client/test_inproc.c — sim_fuzz_client against the in-process client
 * "stepper" (inproc_client.c), buggy and fixed, with the default budget.
 *
 *   test_inproc WORKDIR [-v]      (-v: one line per run on stderr)
 *
 * Proves:
 *   1. the buggy stepper (one open-page record for all vCPUs) is caught within the
 *      default budget (200 runs), as a vCPU left paused (SIM_FUZZ_UNRELEASED), and a
 *      minimised reproducer is written: a scenario file with a few hypervisor steps;
 *   2. the reproducer replays the failure (sim_fuzz_client_replay, same class), and does
 *      not fail the fixed stepper (it shows the bug, not an artefact of the harness);
 *   3. the fixed stepper is not flagged over the whole default budget: no false
 *      positive, and no reproducer is written.
 * Every run is isolated (a forked child), as a crash of the client must be a finding.
 * Prints what failed and exits 1; 0 when everything held.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "inproc_client.h"
#include "sim.h"

#define EXPECTED SIM_FUZZ_PROTOCOL
#define DEFAULT_BUDGET 200u
#define MAX_MINIMISED_STEPS 8u

static int failures;
#define CHECK(cond, ...)                                                                             \
    do {                                                                                             \
        if (!(cond)) {                                                                               \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                          \
            fprintf(stderr, __VA_ARGS__);                                                            \
            fprintf(stderr, "\n");                                                                   \
            failures++;                                                                              \
        }                                                                                            \
    } while (0)

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void show(const char *what, const struct sim_fuzz_result *r, double secs)
{
    printf("%s: %s after %u run(s) (seed %llu), %u step(s), %u minimised, %.1f s: %s\n", what,
           sim_fuzz_failure_name(r->failure), r->runs, (unsigned long long)r->seed, r->steps, r->minimised_steps,
           secs, r->what);
}

/* The reproducer's steps: list items of its `hypervisor:` section. */
static unsigned count_steps(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[1024];
    bool in = false;
    unsigned n = 0;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "hypervisor:", 11)) {
            in = true;
            continue;
        }
        if (in && line[0] != ' ' && line[0] != '-' && line[0] != '#' && line[0] != '\n')
            in = false; /* the next top-level key */
        const char *p = line;
        while (*p == ' ')
            p++;
        if (in && p[0] == '-' && p[1] == ' ')
            n += (unsigned)(p - line) <= 2; /* a step, not a nested list item */
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "-v"))) {
        fprintf(stderr, "usage: test_inproc WORKDIR [-v]\n");
        return 2;
    }
    bool verbose = argc == 3;
    setvbuf(stdout, NULL, _IOLBF, 0);
    char repro[512], fixed_out[512];
    snprintf(repro, sizeof(repro), "%s/inproc-stepper-repro.yaml", argv[1]);
    snprintf(fixed_out, sizeof(fixed_out), "%s/inproc-stepper-fixed.yaml", argv[1]);
    unlink(repro);
    unlink(fixed_out);

    struct inproc_client buggy_state, fixed_state;
    struct sim_fuzz_client buggy = inproc_client(&buggy_state, INPROC_BUGS_ALL);
    struct sim_fuzz_client fixed = inproc_client(&fixed_state, 0);
    struct timespec t0;

    /* 1. The buggy client is caught within the default budget. */
    struct sim_fuzz_options o = {.reproducer = repro, .isolate = true, .verbose = verbose};
    struct sim_fuzz_result r;
    memset(&r, 0, sizeof(r));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = sim_fuzz_client(&buggy, &o, &r);
    show("stepper (buggy)", &r, seconds_since(&t0));
    CHECK(rc == 0, "sim_fuzz_client: %d", rc);
    CHECK(r.failure == EXPECTED, "failure %s, expected %s", sim_fuzz_failure_name(r.failure),
          sim_fuzz_failure_name(EXPECTED));
    CHECK(r.runs >= 1 && r.runs <= DEFAULT_BUDGET, "found after %u runs, the default budget is %u", r.runs,
          DEFAULT_BUDGET);
    CHECK(r.minimised_steps >= 1 && r.minimised_steps <= r.steps, "minimised to %u of %u steps", r.minimised_steps,
          r.steps);
    CHECK(r.minimised_steps <= MAX_MINIMISED_STEPS, "the reproducer keeps %u steps (a handful expected)",
          r.minimised_steps);
    CHECK(r.what[0] != '\0', "no sentence says what the client did wrong");
    struct stat st;
    CHECK(stat(repro, &st) == 0 && st.st_size > 0, "no reproducer at %s", repro);
    unsigned in_file = count_steps(repro);
    CHECK(in_file == r.minimised_steps, "the reproducer file holds %u hypervisor steps, the result says %u", in_file,
          r.minimised_steps);

    /* 2. The reproducer replays the failure, and only against the buggy client. */
    struct sim_fuzz_result rr;
    memset(&rr, 0, sizeof(rr));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = sim_fuzz_client_replay(&buggy, repro, true, &rr);
    show("replay, stepper (buggy)", &rr, seconds_since(&t0));
    CHECK(rc == 0, "sim_fuzz_client_replay: %d", rc);
    CHECK(rr.failure == r.failure, "the replay gave %s, the run %s", sim_fuzz_failure_name(rr.failure),
          sim_fuzz_failure_name(r.failure));
    memset(&rr, 0, sizeof(rr));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = sim_fuzz_client_replay(&fixed, repro, true, &rr);
    show("replay, stepper-fixed", &rr, seconds_since(&t0));
    CHECK(rc == 0 && rr.failure == SIM_FUZZ_NONE, "the reproducer fails the fixed client too: %d %s: %s", rc,
          sim_fuzz_failure_name(rr.failure), rr.what);

    /* 3. The fixed client: no finding over the default budget. */
    o.reproducer = fixed_out;
    memset(&r, 0, sizeof(r));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = sim_fuzz_client(&fixed, &o, &r);
    show("stepper-fixed", &r, seconds_since(&t0));
    CHECK(rc == 0, "sim_fuzz_client: %d", rc);
    CHECK(r.failure == SIM_FUZZ_NONE, "a false positive: %s in run seed %llu: %s (reproducer %s)",
          sim_fuzz_failure_name(r.failure), (unsigned long long)r.seed, r.what, fixed_out);
    CHECK(r.runs == DEFAULT_BUDGET, "%u runs, the default budget is %u", r.runs, DEFAULT_BUDGET);
    CHECK(r.failure != SIM_FUZZ_NONE || stat(fixed_out, &st) != 0, "a reproducer was written with no finding");

    printf("%s\n", failures ? "FAILED" : "all checks held");
    return failures ? 1 : 0;
}
