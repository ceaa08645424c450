/*
 * tests/sim/bench_snapshot.c — snapshot restore time versus dirty pages for a 64 MiB guest
 * (goal: <= 100 us with <= 64 pages changed), the time of a take, and the vCPU state alone:
 * cpu_restore (Unicorn's context) against cpu_set_regs (register by register).
 * Pages are dirtied with sim_mem_write before each restore (outside the timed part); the
 * median of many restores is printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim_internal.h"

#define RAM (64ull << 20)
#define ROUNDS 201

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp);
    return v[n / 2];
}

int main(void)
{
    struct sim_config cfg = {.mode = CPU_MODE_LONG, .ram_size = RAM, .nr_vcpus = 1};
    struct sim_domain *d;
    if (sim_domain_create(&d, &cfg) < 0) {
        fprintf(stderr, "bench_snapshot: cannot create a 64 MiB domain\n");
        return 1;
    }
    /* A guest whose RAM is all in use: every page has contents. */
    uint8_t page[4096];
    for (uint64_t g = 0; g < RAM / 4096; g++) {
        memset(page, (int)(g & 0xff) | 1, sizeof(page));
        sim_mem_write(d, g * 4096, page, sizeof(page));
    }
    struct sim_snapshot *s = NULL;
    double takes[5];
    for (int i = 0; i < 5; i++) {
        sim_snapshot_free(s);
        double t0 = now_us();
        if (sim_snapshot_take(d, &s) < 0) {
            fprintf(stderr, "bench_snapshot: %s\n", sim_error(d));
            return 1;
        }
        takes[i] = now_us() - t0;
    }
    static const unsigned dirty[] = {0, 1, 16, 64, 256, 1024};
    static double t[ROUNDS];
    printf("snapshot restore, 64 MiB guest, 1 vCPU (median of %d restores)\n", ROUNDS);
    printf("%12s %12s %14s\n", "dirty pages", "restore us", "copied pages");
    for (size_t k = 0; k < sizeof(dirty) / sizeof(dirty[0]); k++) {
        uint64_t copied = 0;
        for (int r = 0; r < ROUNDS; r++) {
            for (unsigned p = 0; p < dirty[k]; p++) {
                uint8_t b = (uint8_t)(r + 2);
                /* Spread over RAM, as a guest's stack, data and tables would be. */
                sim_mem_write(d, ((uint64_t)p * 61 % (RAM / 4096)) * 4096 + 8, &b, 1);
            }
            double t0 = now_us();
            if (sim_snapshot_restore(d, s) < 0) {
                fprintf(stderr, "bench_snapshot: %s\n", sim_error(d));
                return 1;
            }
            t[r] = now_us() - t0;
            copied = sim_snapshot_restored_pages(d);
        }
        printf("%12u %12.1f %14llu\n", dirty[k], median(t, ROUNDS), (unsigned long long)copied);
    }
    printf("take (full copy of 64 MiB): %.0f us (median of 5)\n", median(takes, 5));

    /* The vCPU state alone: one Unicorn context versus the register API. */
    struct cpu *c = d->vcpus[0].cpu;
    size_t n = cpu_state_size(c);
    uint8_t *blob = malloc(n);
    struct cpu_regs regs;
    cpu_get_regs(c, &regs);
    cpu_save(c, blob, n);
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_us();
        for (int i = 0; i < 100; i++)
            cpu_restore(c, blob, n);
        t[r] = (now_us() - t0) / 100;
    }
    double ctx = median(t, ROUNDS);
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_us();
        for (int i = 0; i < 100; i++)
            cpu_set_regs(c, &regs);
        t[r] = (now_us() - t0) / 100;
    }
    printf("vCPU state: cpu_restore (uc_context, %zu bytes, incl. TLB flush) %.2f us, "
           "cpu_set_regs %.2f us\n", n, ctx, median(t, ROUNDS));
    free(blob);
    sim_snapshot_free(s);
    sim_domain_destroy(d);
    return 0;
}
