/*
 * tests/fuzz/driver.c — runs a fuzz target without libFuzzer: every file of a corpus, as
 * it is, then N mutations of each, derived from a fixed seed, so the same command
 * executes the same inputs on every machine and with any compiler.  It is how `meson
 * test` (and so .ci/run, in its ASan build) runs every target for a fixed number of
 * executions as a regression test, and how a finding is replayed without clang.
 *
 *   fuzz_TARGET_driver [-n MUTATIONS] [-s SEED] [-m MAXLEN] [-t SECONDS] [-o FILE] PATH...
 *
 * PATH is a file or a directory (its regular files, in name order).  Defaults: 200
 * mutations per file, seed 1, inputs of at most 65536 bytes, a hang after 10 s without
 * one execution finishing.  When the target aborts (a broken invariant), a sanitizer
 * reports, a signal kills it or an input hangs, the input is written to FILE
 * (./fuzz-failing-input by default) and the driver names the corpus file and mutation;
 * `driver FILE` then runs exactly that input.  The last line gives executions per
 * second (the benchmark of docs/performance.md).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"

/* A sanitizer calls this before it ends the process (weak: absent without sanitizers). */
extern void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

struct seedfile {
    char *path;
    uint8_t *data;
    size_t len;
};

static struct seedfile *files;
static size_t nfiles, capfiles;

/* What runs now, for the failure report (read from signal handlers). */
static const uint8_t *volatile cur_data;
static volatile size_t cur_len;
static const char *volatile cur_file;
static volatile long cur_mutation; /* -1: the file as it is */
static volatile unsigned long executions;
static unsigned long last_seen;
static const char *out_path = "fuzz-failing-input";
static volatile int reported;

static void say(const char *s)
{
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

static void say_num(unsigned long v)
{
    char buf[24];
    int i = (int)sizeof(buf);
    buf[--i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i > 0);
    say(buf + i);
}

/* Async-signal-safe: writes the current input and says where it came from. */
static void report_failure(const char *what)
{
    if (reported)
        return;
    reported = 1;
    if (!cur_data && !cur_len)
        return;
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        size_t off = 0;
        while (off < cur_len) {
            ssize_t n = write(fd, cur_data + off, cur_len - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        close(fd);
    }
    say("fuzz driver: ");
    say(what);
    say(" on ");
    say(cur_file ? cur_file : "?");
    if (cur_mutation >= 0) {
        say(", mutation ");
        say_num((unsigned long)cur_mutation);
    } else {
        say(" as it is");
    }
    say("; the input (");
    say_num(cur_len);
    say(" bytes) is in ");
    say(out_path);
    say("\n");
}

static void on_death(void)
{
    report_failure("a sanitizer report or a broken invariant");
}

static void on_signal(int sig)
{
    report_failure(sig == SIGABRT ? "abort (a broken invariant, see above)" : "a fatal signal");
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_alarm(int sig)
{
    (void)sig;
    if (executions == last_seen) {
        report_failure("a hang (no execution finished in the time allowed)");
        _exit(3);
    }
    last_seen = executions;
}

/* ---- Corpus ---------------------------------------------------------------------- */

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "fuzz driver: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(2);
}

static void add_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot read %s", path);
    if (nfiles == capfiles) {
        capfiles = capfiles ? 2 * capfiles : 16;
        files = realloc(files, capfiles * sizeof(*files));
        if (!files)
            die("%s", "out of memory");
    }
    struct seedfile *s = &files[nfiles++];
    s->path = strdup(path);
    s->data = NULL;
    s->len = 0;
    size_t cap = 0;
    uint8_t buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        if (s->len + n > cap) {
            cap = (s->len + n) * 2;
            s->data = realloc(s->data, cap);
            if (!s->data)
                die("%s", "out of memory");
        }
        memcpy(s->data + s->len, buf, n);
        s->len += n;
    }
    if (ferror(f))
        die("cannot read %s", path);
    fclose(f);
    if (!s->path)
        die("%s", "out of memory");
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        die("cannot find %s", path);
    if (!S_ISDIR(st.st_mode)) {
        add_file(path);
        return;
    }
    DIR *dir = opendir(path);
    if (!dir)
        die("cannot open the directory %s", path);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        char full[4096];
        snprintf(full, sizeof(full), "%s/%s", path, e->d_name);
        if (stat(full, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            names = realloc(names, cap * sizeof(*names));
            if (!names)
                die("%s", "out of memory");
        }
        if (!(names[n++] = strdup(full)))
            die("%s", "out of memory");
    }
    closedir(dir);
    qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n; i++) {
        add_file(names[i]);
        free(names[i]);
    }
    free(names);
}

/* ---- Mutations: splitmix64, the same numbers everywhere ------------------------------- */

static uint64_t rng;

static uint64_t next(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t below(size_t n)
{
    return n ? (size_t)(next() % n) : 0;
}

/* One to four stacked edits of `buf` (len bytes, at most max). */
static size_t mutate(uint8_t *buf, size_t len, size_t max)
{
    static const uint8_t bytes[] = {0, 1, 2, 7, 8, 0x10, 0x20, 0x3f, 0x40, 0x7f, 0x80, 0xfe, 0xff, '\n', ':', ' ', '-'};
    static const uint32_t words[] = {0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 8, 400, 0x1000, 0xffff};
    unsigned edits = 1 + (unsigned)below(4);
    for (unsigned e = 0; e < edits; e++) {
        switch (below(9)) {
        case 0: /* flip a bit */
            if (len)
                buf[below(len)] ^= (uint8_t)(1u << below(8));
            break;
        case 1: /* a random byte */
            if (len)
                buf[below(len)] = (uint8_t)next();
            break;
        case 2: /* an interesting byte */
            if (len)
                buf[below(len)] = bytes[below(sizeof(bytes))];
            break;
        case 3: { /* insert 1-8 random bytes */
            size_t n = 1 + below(8);
            if (len + n > max)
                break;
            size_t at = below(len + 1);
            memmove(buf + at + n, buf + at, len - at);
            for (size_t i = 0; i < n; i++)
                buf[at + i] = (uint8_t)next();
            len += n;
            break;
        }
        case 4: { /* delete a range */
            if (!len)
                break;
            size_t at = below(len), n = 1 + below(len - at < 32 ? len - at : 32);
            memmove(buf + at, buf + at + n, len - at - n);
            len -= n;
            break;
        }
        case 5: { /* copy a chunk over another place */
            if (len < 2)
                break;
            size_t from = below(len), to = below(len), n = 1 + below(16);
            if (from + n > len)
                n = len - from;
            if (to + n > len)
                n = len - to;
            memmove(buf + to, buf + from, n);
            break;
        }
        case 6: { /* insert a chunk of another corpus file */
            const struct seedfile *o = &files[below(nfiles)];
            if (!o->len)
                break;
            size_t from = below(o->len), n = 1 + below(64);
            if (from + n > o->len)
                n = o->len - from;
            if (len + n > max)
                break;
            size_t at = below(len + 1);
            memmove(buf + at + n, buf + at, len - at);
            memcpy(buf + at, o->data + from, n);
            len += n;
            break;
        }
        case 7: { /* an interesting 32-bit word */
            if (len < 4)
                break;
            uint32_t w = words[below(sizeof(words) / sizeof(words[0]))];
            memcpy(buf + below(len - 3), &w, 4);
            break;
        }
        default: /* truncate */
            if (len)
                len = below(len + 1);
            break;
        }
    }
    return len;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void run_one(const uint8_t *data, size_t len, const char *file, long mutation)
{
    cur_data = data;
    cur_len = len;
    cur_file = file;
    cur_mutation = mutation;
    LLVMFuzzerTestOneInput(data, len);
    executions++;
}

int main(int argc, char **argv)
{
    long mutations = 200;
    uint64_t seed = 1;
    size_t maxlen = 65536;
    int timeout = 10;
    int opt;
    while ((opt = getopt(argc, argv, "n:s:m:t:o:")) != -1) {
        switch (opt) {
        case 'n': mutations = strtol(optarg, NULL, 0); break;
        case 's': seed = strtoull(optarg, NULL, 0); break;
        case 'm': maxlen = strtoull(optarg, NULL, 0); break;
        case 't': timeout = atoi(optarg); break;
        case 'o': out_path = optarg; break;
        default:
            fprintf(stderr, "usage: %s [-n MUTATIONS] [-s SEED] [-m MAXLEN] [-t SECONDS] [-o FILE] PATH...\n",
                    argv[0]);
            return 2;
        }
    }
    if (optind >= argc || mutations < 0 || maxlen == 0 || timeout <= 0) {
        fprintf(stderr, "usage: %s [-n MUTATIONS] [-s SEED] [-m MAXLEN] [-t SECONDS] [-o FILE] PATH...\n", argv[0]);
        return 2;
    }
    for (int i = optind; i < argc; i++)
        add_path(argv[i]);
    if (!nfiles)
        die("no input files in %s", argv[optind]);

    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(on_death);
    signal(SIGABRT, on_signal);
    signal(SIGSEGV, on_signal);
    signal(SIGBUS, on_signal);
    signal(SIGFPE, on_signal);
    signal(SIGILL, on_signal);
    signal(SIGALRM, on_alarm);
    struct itimerval it = {{timeout, 0}, {timeout, 0}};
    setitimer(ITIMER_REAL, &it, NULL);

    size_t maxfile = 0;
    for (size_t i = 0; i < nfiles; i++)
        maxfile = files[i].len > maxfile ? files[i].len : maxfile;
    size_t cap = maxlen > maxfile ? maxlen : maxfile;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf)
        die("%s", "out of memory");

    double t0 = now();
    for (size_t i = 0; i < nfiles; i++) {
        /* The file as it is, through a copy of exactly its size (ASan sees overreads). */
        uint8_t *exact = malloc(files[i].len ? files[i].len : 1);
        if (!exact)
            die("%s", "out of memory");
        if (files[i].len) /* an empty file has no data to copy (memcpy from NULL is undefined) */
            memcpy(exact, files[i].data, files[i].len);
        run_one(exact, files[i].len, files[i].path, -1);
        free(exact);
        for (long m = 0; m < mutations; m++) {
            /* Each mutation depends only on (seed, file, m): reproducible one by one. */
            rng = seed * 0x9e3779b97f4a7c15ull ^ (uint64_t)i << 40 ^ (uint64_t)m;
            next();
            size_t len = files[i].len < cap ? files[i].len : cap;
            if (len)
                memcpy(buf, files[i].data, len);
            len = mutate(buf, len, cap);
            uint8_t *in = malloc(len ? len : 1);
            if (!in)
                die("%s", "out of memory");
            memcpy(in, buf, len);
            run_one(in, len, files[i].path, m);
            free(in);
        }
    }
    double dt = now() - t0;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("fuzz driver: %zu corpus file(s), %lu executions in %.2f s (%.0f exec/s), no invariant broken\n", nfiles,
           (unsigned long)executions, dt, dt > 0 ? (double)executions / dt : 0.0);
    cur_data = NULL;
    cur_len = 0;
    free(buf);
    for (size_t i = 0; i < nfiles; i++) {
        free(files[i].path);
        free(files[i].data);
    }
    free(files);
    return 0;
}
