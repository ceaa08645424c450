/*
 * sim/record.c — record and replay of a scenario run (record_internal.h,
 * docs/record-format.md).  One text file, one entry per line, written as
 * things happen and read back whole before a replay starts, so that a
 * corrupt or truncated file is refused before anything runs.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record_internal.h"
#include "runner_internal.h"

#define REC_MAGIC "vmisim-record"
#define REC_MAX_LINE (64 * 1024)  /* the longest entry is a paging_load page: 8 KiB of hex */
#define REC_MAX_SLOT 1024         /* larger than any vm_event slot (v7: 400 bytes) */

enum rec_kind { REC_SCHED, REC_TURN, REC_REQUEST, REC_RESPONSE, REC_ACTION, REC_FAIL, REC_CLIENT_END, REC_VERDICT };

struct rec_entry {
    enum rec_kind kind;
    unsigned line;           /* in the file, 1-based */
    unsigned dom, vcpu;      /* SCHED */
    uint64_t quantum;        /* SCHED */
    unsigned ring;           /* REQUEST, RESPONSE: RUN_RING_* */
    uint8_t *bytes;          /* REQUEST, RESPONSE: the slot; ACTION paging_load: the page or NULL */
    size_t len;
    enum rec_action act;     /* ACTION */
    uint64_t args[6];
    int rc;
    char *text;              /* FAIL */
    unsigned verdict;        /* VERDICT: 0 PASS, 1 FAIL, 2 ERROR */
    uint64_t events;         /* VERDICT */
};

/* One domain's schedule hook: which run, which domain. */
struct rec_dom {
    struct rec *c;
    struct run *r;
    unsigned dom;
};

struct rec {
    enum rec_mode mode;
    char *path;
    FILE *f;                 /* REC_WRITE */
    bool write_failed;
    int write_errno;
    char *scenario;
    uint64_t hash, size, seed;
    struct rec_entry *e;     /* replay: every entry, in order */
    size_t n, cap;
    size_t next;             /* replay: the next entry expected; write: entries written */
    struct rec_dom doms[2];
    enum rec_outcome outcome;
    bool decided;            /* outcome is final */
    char msg[1400];
};

static const char *const ring_names[RUN_RINGS] = {
    [RUN_RING_MONITOR] = "monitor", [RUN_RING_PAGING] = "paging", [RUN_RING_SHARING] = "sharing",
};
static const char *const action_names[REC_ACT_COUNT] = {
    [REC_ACT_SET_ACCESS] = "set_access", [REC_ACT_ALTP2M_ACCESS] = "altp2m_access",
    [REC_ACT_CHANGE_GFN] = "change_gfn", [REC_ACT_INJECT] = "inject",
    [REC_ACT_PAGING_LOAD] = "paging_load", [REC_ACT_MAX_PAGES] = "max_pages",
};
/* Arguments of each action before its result (paging_load: the gfn, then the page). */
static const unsigned action_nargs[REC_ACT_COUNT] = {
    [REC_ACT_SET_ACCESS] = 3, [REC_ACT_ALTP2M_ACCESS] = 3, [REC_ACT_CHANGE_GFN] = 3,
    [REC_ACT_INJECT] = 6, [REC_ACT_PAGING_LOAD] = 1, [REC_ACT_MAX_PAGES] = 1,
};
/* How each argument is written: d decimal, x hex (gfns, addresses), s signed (-1: none). */
static const char *const action_format[REC_ACT_COUNT] = {
    [REC_ACT_SET_ACCESS] = "dxd", [REC_ACT_ALTP2M_ACCESS] = "dxd", [REC_ACT_CHANGE_GFN] = "dxx",
    [REC_ACT_INJECT] = "dddsdx", [REC_ACT_PAGING_LOAD] = "x", [REC_ACT_MAX_PAGES] = "d",
};
static const char *const verdict_names[] = {"PASS", "FAIL", "ERROR"};

/* ---- The scenario's identity ------------------------------------------------------ */

int rec_hash_file(const char *path, uint64_t *hash, uint64_t *size, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
        return -e;
    }
    /* FNV-1a: a change of any byte changes the hash; it guards against edits, not against forgery. */
    uint64_t h = 0xcbf29ce484222325ull, n = 0;
    unsigned char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof(buf), f)) > 0) {
        for (size_t i = 0; i < got; i++) {
            h ^= buf[i];
            h *= 0x100000001b3ull;
        }
        n += got;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(EIO));
        return -EIO;
    }
    *hash = h;
    *size = n;
    return 0;
}

/* ---- Writing --------------------------------------------------------------------- */

static void put(struct rec *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct rec *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vfprintf(c->f, fmt, ap) < 0 && !c->write_failed) {
        c->write_failed = true;
        c->write_errno = errno ? errno : EIO;
    }
    va_end(ap);
}

static void put_hex(struct rec *c, const uint8_t *p, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        if (putc(digits[p[i] >> 4], c->f) == EOF || putc(digits[p[i] & 15], c->f) == EOF) {
            if (!c->write_failed) {
                c->write_failed = true;
                c->write_errno = errno ? errno : EIO;
            }
            return;
        }
    }
}

int rec_open_write(struct rec **out, const char *path, const char *scenario, uint64_t seed,
                   char *err, size_t errlen)
{
    uint64_t hash, size;
    int rc = rec_hash_file(scenario, &hash, &size, err, errlen);
    if (rc < 0)
        return rc;
    if (strchr(scenario, '\n')) {
        snprintf(err, errlen, "%s: a scenario path with a line break cannot be recorded", scenario);
        return -EINVAL;
    }
    struct rec *c = calloc(1, sizeof(*c));
    if (!c || !(c->path = strdup(path)) || !(c->scenario = strdup(scenario))) {
        if (c)
            free(c->path);
        free(c);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->mode = REC_WRITE;
    c->hash = hash;
    c->size = size;
    c->seed = seed;
    if (!(c->f = fopen(path, "w"))) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot write the recording: %s", path, strerror(e));
        free(c->path);
        free(c->scenario);
        free(c);
        return -e;
    }
    put(c, "%s %d\n", REC_MAGIC, REC_VERSION);
    put(c, "# docs/record-format.md; replay with: vmisim replay %s\n", path);
    put(c, "scenario %s\n", scenario);
    put(c, "scenario-hash fnv1a64 %016" PRIx64 " %" PRIu64 "\n", hash, size);
    put(c, "seed %" PRIu64 "\n", seed);
    put(c, "begin\n");
    *out = c;
    return 0;
}

static void free_entries(struct rec *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].bytes);
        free(c->e[i].text);
    }
    free(c->e);
}

int rec_close(struct rec *c, char *err, size_t errlen)
{
    if (!c)
        return 0;
    int rc = 0;
    if (c->f) {
        if (fclose(c->f) != 0 && !c->write_failed) {
            c->write_failed = true;
            c->write_errno = errno ? errno : EIO;
        }
        if (c->write_failed) {
            snprintf(err, errlen, "%s: cannot write the recording: %s; it is incomplete",
                     c->path, strerror(c->write_errno));
            rc = -c->write_errno;
        }
    }
    free_entries(c);
    free(c->path);
    free(c->scenario);
    free(c);
    return rc;
}

/* ---- Reading ------------------------------------------------------------------------ */

/* A corrupt file: one message with the line, "what is wrong; what was expected". */
static int corrupt(char *err, size_t errlen, const char *path, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int corrupt(char *err, size_t errlen, const char *path, unsigned line, const char *fmt, ...)
{
    int n = snprintf(err, errlen, "%s:%u: ", path, line);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < errlen)
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Splits `s` at spaces into at most `max` words; the last takes the rest of the line. */
static unsigned split(char *s, char **w, unsigned max)
{
    unsigned n = 0;
    while (*s && n < max) {
        while (*s == ' ')
            s++;
        if (!*s)
            break;
        w[n++] = s;
        if (n == max)
            break;
        while (*s && *s != ' ')
            s++;
        if (*s)
            *s++ = 0;
    }
    return n;
}

/* A number: decimal, or hex after 0x; all 64 bits, nothing after it. */
static bool num(const char *s, uint64_t *out)
{
    if (!*s || *s == '-' || *s == '+' || *s == ' ')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? 16 : 10);
    if (errno || *end || end == s)
        return false;
    *out = v;
    return true;
}

/* A result code: 0 or a negative errno (or any int the call returned). */
static bool num_int(const char *s, int *out)
{
    bool neg = *s == '-';
    uint64_t v;
    if (!num(s + neg, &v) || v > (neg ? 2147483648ull : 2147483647ull))
        return false;
    *out = neg ? (int)(-(int64_t)v) : (int)v;
    return true;
}

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* Hex pairs, no spaces; 0 or -EINVAL (with `why` naming the fault) or -ENOMEM. */
static int unhex(const char *s, uint8_t **out, size_t *len, size_t max, char *why, size_t whylen)
{
    size_t n = strlen(s);
    if (n == 0 || n % 2) {
        snprintf(why, whylen, "%zu hex digits; expected an even, nonzero number", n);
        return -EINVAL;
    }
    if (n / 2 > max) {
        snprintf(why, whylen, "%zu bytes; expected at most %zu", n / 2, max);
        return -EINVAL;
    }
    uint8_t *p = malloc(n / 2);
    if (!p)
        return -ENOMEM;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            snprintf(why, whylen, "'%c' at column %zu is not a hex digit", hi < 0 ? s[2 * i] : s[2 * i + 1],
                     hi < 0 ? 2 * i + 1 : 2 * i + 2);
            free(p);
            return -EINVAL;
        }
        p[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = p;
    *len = n / 2;
    return 0;
}

static int ring_of(const char *s)
{
    for (unsigned i = 0; i < RUN_RINGS; i++)
        if (!strcmp(s, ring_names[i]))
            return (int)i;
    return -1;
}

/* Bounds of each action's arguments, so a replay never passes a wrapped value to the simulator. */
static const char *action_arg_bad(enum rec_action a, const uint64_t *v)
{
    switch (a) {
    case REC_ACT_SET_ACCESS:
        return v[0] > 10 ? "the access type is above 10" : NULL;
    case REC_ACT_ALTP2M_ACCESS:
        return v[0] > 0xffff ? "the view is above 65535" : v[2] > 10 ? "the access type is above 10" : NULL;
    case REC_ACT_CHANGE_GFN:
        return v[0] > 0xffff ? "the view is above 65535" : NULL;
    case REC_ACT_INJECT:
        return v[0] >= SIM_MAX_VCPUS ? "the vCPU is beyond 63" : v[1] > 255 ? "the vector is above 255"
               : v[2] > 7 ? "the event type is above 7" : v[4] > 15 ? "the instruction length is above 15"
               : (int64_t)v[3] < -1 || (int64_t)v[3] > 0xffffffffll ? "the error code is out of range" : NULL;
    default:
        return NULL;
    }
}

static int parse_entry(struct rec *c, char *line, unsigned lineno, struct rec_entry *e, char *err,
                       size_t errlen)
{
    char *w[10] = {0};
    char why[120];
    memset(e, 0, sizeof(*e));
    e->line = lineno;
    if (!strncmp(line, "fail ", 5) && line[5]) {
        /* The rest of the line, spaces and all, is the failure's text. */
        e->kind = REC_FAIL;
        return (e->text = strdup(line + 5)) ? 0 : -ENOMEM;
    }
    unsigned n = split(line, w, 10);
    const char *p = c->path;
    if (n == 0)
        return corrupt(err, errlen, p, lineno, "a line of spaces; expected an entry");
    if (!strcmp(w[0], "sched")) {
        uint64_t dom, vcpu, q;
        if (n != 4 || !num(w[1], &dom) || !num(w[2], &vcpu) || !num(w[3], &q))
            return corrupt(err, errlen, p, lineno, "a malformed 'sched' entry; expected 'sched DOMAIN VCPU QUANTUM'");
        if (dom > 1 || vcpu >= SIM_MAX_VCPUS || q == 0)
            return corrupt(err, errlen, p, lineno, "'sched %s %s %s' is out of range; expected domain 0 or 1, "
                           "vCPU 0 to %d, quantum >= 1", w[1], w[2], w[3], SIM_MAX_VCPUS - 1);
        e->kind = REC_SCHED;
        e->dom = (unsigned)dom;
        e->vcpu = (unsigned)vcpu;
        e->quantum = q;
        return 0;
    }
    if (!strcmp(w[0], "client-end")) {
        if (n != 1)
            return corrupt(err, errlen, p, lineno, "'client-end' takes nothing after it");
        e->kind = REC_CLIENT_END;
        return 0;
    }
    if (!strcmp(w[0], "turn")) {
        if (n != 1)
            return corrupt(err, errlen, p, lineno, "'turn' takes nothing after it");
        e->kind = REC_TURN;
        return 0;
    }
    if (!strcmp(w[0], "request") || !strcmp(w[0], "response")) {
        int ring = n == 3 ? ring_of(w[1]) : -1;
        if (n != 3 || ring < 0)
            return corrupt(err, errlen, p, lineno, "a malformed '%s' entry; expected '%s RING HEX' with RING "
                           "monitor, paging or sharing", w[0], w[0]);
        int rc = unhex(w[2], &e->bytes, &e->len, REC_MAX_SLOT, why, sizeof(why));
        if (rc == -ENOMEM)
            return rc;
        if (rc < 0)
            return corrupt(err, errlen, p, lineno, "the slot bytes of this %s: %s", w[0], why);
        e->kind = w[0][2] == 'q' ? REC_REQUEST : REC_RESPONSE;
        e->ring = (unsigned)ring;
        return 0;
    }
    if (!strcmp(w[0], "action")) {
        int a = -1;
        for (int i = 0; n >= 2 && i < REC_ACT_COUNT; i++)
            if (!strcmp(w[1], action_names[i]))
                a = i;
        if (a < 0)
            return corrupt(err, errlen, p, lineno, "unknown action '%s'; expected one of set_access, "
                           "altp2m_access, change_gfn, inject, paging_load, max_pages", n >= 2 ? w[1] : "");
        unsigned want = action_nargs[a] + (a == REC_ACT_PAGING_LOAD) + 3;
        if (n != want)
            return corrupt(err, errlen, p, lineno, "action %s has %u field(s); expected %u (see docs/record-format.md)",
                           w[1], n - 2, want - 2);
        e->kind = REC_ACTION;
        e->act = (enum rec_action)a;
        for (unsigned i = 0; i < action_nargs[a]; i++) {
            const char *s = w[2 + i];
            bool ok = a == REC_ACT_INJECT && i == 3 && !strcmp(s, "-1") ? (e->args[i] = (uint64_t)-1, true)
                                                                         : num(s, &e->args[i]);
            if (!ok)
                return corrupt(err, errlen, p, lineno, "'%s' (argument %u of action %s) is not a number", s, i + 1, w[1]);
        }
        const char *bad = action_arg_bad(e->act, e->args);
        if (bad)
            return corrupt(err, errlen, p, lineno, "action %s: %s", w[1], bad);
        if (a == REC_ACT_PAGING_LOAD && strcmp(w[3], "-")) {
            int rc = unhex(w[3], &e->bytes, &e->len, 4096, why, sizeof(why));
            if (rc == -ENOMEM)
                return rc;
            if (rc < 0 || e->len != 4096)
                return corrupt(err, errlen, p, lineno, "the page of paging_load: %s", rc < 0 ? why
                               : "not 4096 bytes; expected '-' (no page) or 8192 hex digits");
        }
        if (!num_int(w[n - 1], &e->rc))
            return corrupt(err, errlen, p, lineno, "the result '%s' of action %s is not an integer", w[n - 1], w[1]);
        return 0;
    }
    if (!strcmp(w[0], "fail"))
        return corrupt(err, errlen, p, lineno, "'fail' needs the failure's text");
    if (!strcmp(w[0], "verdict")) {
        unsigned v = 3;
        for (unsigned i = 0; n == 3 && i < 3; i++)
            if (!strcmp(w[1], verdict_names[i]))
                v = i;
        if (v == 3 || !num(w[2], &e->events))
            return corrupt(err, errlen, p, lineno, "a malformed 'verdict' entry; expected 'verdict PASS|FAIL|ERROR EVENTS'");
        e->kind = REC_VERDICT;
        e->verdict = v;
        return 0;
    }
    return corrupt(err, errlen, p, lineno, "unknown entry '%s'; expected sched, turn, request, response, "
                   "action, fail, client-end, verdict or end", w[0]);
}

int rec_open_read(struct rec **out, const char *path, enum rec_mode mode, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
        return -e;
    }
    struct rec *c = calloc(1, sizeof(*c));
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    if (!c || !(c->path = strdup(path))) {
        rc = -ENOMEM;
        goto fail;
    }
    c->mode = mode;
    /* The header, in this order: magic and version, scenario, scenario-hash, seed, begin. */
    enum { H_MAGIC, H_SCENARIO, H_HASH, H_SEED, H_BEGIN, BODY, DONE } state = H_MAGIC;
    static const char *const expected[] = {
        "the first line 'vmisim-record 1'", "'scenario PATH'", "'scenario-hash fnv1a64 HEX SIZE'",
        "'seed NUMBER'", "'begin'",
    };
    unsigned lineno = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (got > REC_MAX_LINE) {
            rc = corrupt(err, errlen, path, lineno, "a line of %zd bytes; expected at most %d", got, REC_MAX_LINE);
            goto fail;
        }
        if ((size_t)got != strlen(line)) {
            rc = corrupt(err, errlen, path, lineno, "a NUL byte; expected a text file");
            goto fail;
        }
        if (got == 0 || line[got - 1] != '\n') {
            rc = corrupt(err, errlen, path, lineno, "the last line has no line break: the file is truncated");
            goto fail;
        }
        line[--got] = 0;
        if (got && line[got - 1] == '\r')
            line[--got] = 0;
        if (line[0] == '#' || (state != H_MAGIC && line[0] == 0))
            continue;
        if (state == DONE) {
            rc = corrupt(err, errlen, path, lineno, "an entry after 'end'; expected nothing more");
            goto fail;
        }
        char *w[4];
        if (state == H_MAGIC) {
            unsigned n = split(line, w, 3);
            uint64_t v;
            if (n < 1 || strcmp(w[0], REC_MAGIC)) {
                rc = corrupt(err, errlen, path, lineno, "not a vmisim recording; expected %s", expected[0]);
                goto fail;
            }
            if (n != 2 || !num(w[1], &v) || v != REC_VERSION) {
                rc = corrupt(err, errlen, path, lineno, "recording format version '%s' is not supported; this "
                             "vmisim reads version %d only", n >= 2 ? w[1] : "", REC_VERSION);
                goto fail;
            }
            state = H_SCENARIO;
            continue;
        }
        if (state == H_SCENARIO) {
            if (strncmp(line, "scenario ", 9) || !line[9]) {
                rc = corrupt(err, errlen, path, lineno, "expected %s", expected[state]);
                goto fail;
            }
            if (!(c->scenario = strdup(line + 9))) {
                rc = -ENOMEM;
                goto fail;
            }
            state = H_HASH;
            continue;
        }
        /* Header lines are split in place; body lines go whole to parse_entry. */
        unsigned n = state < BODY ? split(line, w, 4) : 0;
        if (state == H_HASH) {
            if (n != 4 || strcmp(w[0], "scenario-hash") || strcmp(w[1], "fnv1a64") || strlen(w[2]) != 16
                || !num(w[3], &c->size)) {
                rc = corrupt(err, errlen, path, lineno, "expected %s", expected[state]);
                goto fail;
            }
            char hex[19] = "0x";
            memcpy(hex + 2, w[2], 17);
            if (!num(hex, &c->hash)) {
                rc = corrupt(err, errlen, path, lineno, "the scenario hash '%s' is not 16 hex digits", w[2]);
                goto fail;
            }
            state = H_SEED;
            continue;
        }
        if (state == H_SEED) {
            if (n != 2 || strcmp(w[0], "seed") || !num(w[1], &c->seed)) {
                rc = corrupt(err, errlen, path, lineno, "expected %s", expected[state]);
                goto fail;
            }
            state = H_BEGIN;
            continue;
        }
        if (state == H_BEGIN) {
            if (n != 1 || strcmp(w[0], "begin")) {
                rc = corrupt(err, errlen, path, lineno, "expected %s", expected[state]);
                goto fail;
            }
            state = BODY;
            continue;
        }
        if (!strcmp(line, "end")) {
            if (!c->n || c->e[c->n - 1].kind != REC_VERDICT) {
                rc = corrupt(err, errlen, path, lineno, "'end' before the verdict; expected 'verdict ...' first");
                goto fail;
            }
            state = DONE;
            continue;
        }
        if (c->n && c->e[c->n - 1].kind == REC_VERDICT) {
            rc = corrupt(err, errlen, path, lineno, "an entry after the verdict; expected 'end'");
            goto fail;
        }
        if (c->n == c->cap) {
            size_t ncap = c->cap ? 2 * c->cap : 256;
            struct rec_entry *ne = realloc(c->e, ncap * sizeof(*ne));
            if (!ne) {
                rc = -ENOMEM;
                goto fail;
            }
            c->e = ne;
            c->cap = ncap;
        }
        if ((rc = parse_entry(c, line, lineno, &c->e[c->n], err, errlen)) < 0) {
            /* parse_entry may have allocated before failing. */
            free(c->e[c->n].bytes);
            free(c->e[c->n].text);
            goto fail;
        }
        c->n++;
    }
    if (ferror(f)) {
        rc = -EIO;
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(EIO));
        goto fail;
    }
    if (state != DONE) {
        rc = state < BODY ? corrupt(err, errlen, path, lineno + 1, "the file ends in its header; expected %s",
                                    expected[state])
                          : corrupt(err, errlen, path, lineno + 1, "the file ends without 'verdict' and 'end': "
                                    "it is truncated (the recording was cut short)");
        goto fail;
    }
    free(line);
    fclose(f);
    *out = c;
    return 0;
fail:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "%s: out of memory", path);
    free(line);
    fclose(f);
    if (c) {
        free_entries(c);
        free(c->path);
        free(c->scenario);
        free(c);
    }
    return rc;
}

const char *rec_scenario(const struct rec *c)
{
    return c->scenario;
}

void rec_scenario_hash(const struct rec *c, uint64_t *hash, uint64_t *size)
{
    *hash = c->hash;
    *size = c->size;
}

uint64_t rec_seed(const struct rec *c)
{
    return c->seed;
}

size_t rec_nr_entries(const struct rec *c)
{
    return c->mode == REC_WRITE ? c->next : c->n;
}

enum rec_outcome rec_outcome(const struct rec *c)
{
    return c->outcome;
}

const char *rec_message(const struct rec *c)
{
    return c->msg;
}

/* ---- What an entry says, for messages ------------------------------------------ */

static void describe_slot(char *buf, size_t len, struct run *r, unsigned ring, const uint8_t *slot,
                          size_t slen, bool response)
{
    struct vme_msg m;
    unsigned version = r->rings[ring].version;
    if (!r->rings[ring].back || slen != vme_slot_size(version) || vme_decode(version, slot, &m) < 0) {
        snprintf(buf, len, "%zu bytes", slen);
        return;
    }
    run_describe(buf, len, &m, response);
}

static void describe_action(char *buf, size_t len, enum rec_action a, const uint64_t *v, const uint8_t *page)
{
    switch (a) {
    case REC_ACT_SET_ACCESS:
        snprintf(buf, len, "xc_set_mem_access(%s, gfn %#" PRIx64 ", count %" PRIu64 ")",
                 scenario_access_name((unsigned)v[0]) ? scenario_access_name((unsigned)v[0]) : "?", v[1], v[2]);
        return;
    case REC_ACT_ALTP2M_ACCESS:
        snprintf(buf, len, "xc_altp2m_set_mem_access(view %" PRIu64 ", gfn %#" PRIx64 ", %s)", v[0], v[1],
                 scenario_access_name((unsigned)v[2]) ? scenario_access_name((unsigned)v[2]) : "?");
        return;
    case REC_ACT_CHANGE_GFN:
        snprintf(buf, len, "xc_altp2m_change_gfn(view %" PRIu64 ", gfn %#" PRIx64 ", to %#" PRIx64 ")", v[0], v[1], v[2]);
        return;
    case REC_ACT_INJECT:
        snprintf(buf, len, "xc_hvm_inject_trap(vCPU %" PRIu64 ", vector %" PRIu64 ", type %" PRIu64
                 ", error code %" PRId64 ", insn_len %" PRIu64 ", cr2 %#" PRIx64 ")", v[0], v[1], v[2],
                 (int64_t)v[3], v[4], v[5]);
        return;
    case REC_ACT_PAGING_LOAD:
        snprintf(buf, len, "xc_mem_paging_load(gfn %#" PRIx64 ", %s)", v[0], page ? "a page" : "no buffer");
        return;
    case REC_ACT_MAX_PAGES:
        snprintf(buf, len, "xc_domain_setmaxmem(%" PRIu64 " pages)", v[0]);
        return;
    default:
        snprintf(buf, len, "action %u", (unsigned)a);
    }
}

static void describe(char *buf, size_t len, struct run *r, const struct rec_entry *e)
{
    char what[600];
    switch (e->kind) {
    case REC_SCHED:
        snprintf(buf, len, "a scheduling decision: %s runs vCPU %u for %" PRIu64 " instruction(s)",
                 e->dom ? "the introspector" : "the domain", e->vcpu, e->quantum);
        return;
    case REC_TURN:
        snprintf(buf, len, "the client's turn");
        return;
    case REC_REQUEST:
    case REC_RESPONSE:
        describe_slot(what, sizeof(what), r, e->ring, e->bytes, e->len, e->kind == REC_RESPONSE);
        snprintf(buf, len, "a %s on the %s ring: %s", e->kind == REC_REQUEST ? "request" : "response",
                 ring_names[e->ring], what);
        return;
    case REC_ACTION:
        describe_action(what, sizeof(what), e->act, e->args, e->bytes);
        snprintf(buf, len, "the client's call %s -> %d", what, e->rc);
        return;
    case REC_FAIL:
        snprintf(buf, len, "the client's failure \"%s\"", e->text);
        return;
    case REC_CLIENT_END:
        snprintf(buf, len, "the end of the guest's run (the client's last checks)");
        return;
    case REC_VERDICT:
        snprintf(buf, len, "the end of the run: %s after %" PRIu64 " event(s)", verdict_names[e->verdict], e->events);
        return;
    }
    snprintf(buf, len, "?");
}

/* ---- Replay: entries in order, the first difference stops the run -------------------- */

/* The replay went another way: the first difference is the one reported, and the run stops. */
static void diverge(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void diverge(struct run *r, const char *fmt, ...)
{
    struct rec *c = r->rec;
    if (!c->decided) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
        va_end(ap);
        c->outcome = REC_DIVERGED;
        c->decided = true;
        run_log_add(r, RUN_LOG_FAIL, 0, 0, NULL, "replay: %s", c->msg);
    }
    r->error = true;
}

/* The next recorded entry, or NULL after the last. */
static const struct rec_entry *peek(const struct run *r)
{
    const struct rec *c = r->rec;
    return c->next < c->n ? &c->e[c->next] : NULL;
}

/* The entry does not match what happened (`got`): the divergence message. */
static void mismatch(struct run *r, const struct rec_entry *want, const char *got)
{
    char w[800];
    if (!want) {
        diverge(r, "after the last recorded entry (%zu), %s", r->rec->n, got);
        return;
    }
    describe(w, sizeof(w), r, want);
    diverge(r, "entry %zu (line %u): expected %s; got %s", (size_t)(want - r->rec->e) + 1, want->line, w, got);
}

/* Takes the next entry when it is of `kind`; otherwise reports the divergence with `got`. */
static const struct rec_entry *expect_kind(struct run *r, enum rec_kind kind, const char *got)
{
    const struct rec_entry *e = peek(r);
    if (r->rec->decided)
        return NULL;
    if (!e || e->kind != kind) {
        mismatch(r, e, got);
        return NULL;
    }
    r->rec->next++;
    return e;
}

/* Two slots: the first byte that differs, for the message. */
static void slot_diff(char *buf, size_t len, const uint8_t *want, size_t wlen, const uint8_t *got, size_t glen)
{
    size_t i = 0;
    while (i < wlen && i < glen && want[i] == got[i])
        i++;
    if (i < wlen && i < glen)
        snprintf(buf, len, " (they first differ at byte %#zx: recorded 0x%02x, now 0x%02x)", i, want[i], got[i]);
    else
        snprintf(buf, len, " (%zu bytes recorded, %zu now)", wlen, glen);
}

/* A slot that happened, against the next entry (request or response). */
static void check_slot(struct run *r, enum rec_kind kind, unsigned ring, const void *slot, size_t len)
{
    char got[800], now[600];
    describe_slot(now, sizeof(now), r, ring, slot, len, kind == REC_RESPONSE);
    snprintf(got, sizeof(got), "a %s on the %s ring: %s", kind == REC_REQUEST ? "request" : "response",
             ring_names[ring], now);
    const struct rec_entry *e = peek(r);
    if (r->rec->decided)
        return;
    if (e && e->kind == kind && e->ring == ring && (e->len != len || memcmp(e->bytes, slot, len))) {
        char diff[120];
        slot_diff(diff, sizeof(diff), e->bytes, e->len, slot, len);
        mismatch(r, e, got);
        size_t n = strlen(r->rec->msg);
        snprintf(r->rec->msg + n, sizeof(r->rec->msg) - n, "%s", diff);
        return;
    }
    if (!e || e->kind != kind || e->ring != ring) {
        mismatch(r, e, got);
        return;
    }
    r->rec->next++;
}

/* ---- The hooks ----------------------------------------------------------------------- */

static void sched_observe(void *opaque, const struct sim_schedule *s)
{
    struct rec_dom *rd = opaque;
    put(rd->c, "sched %u %u %" PRIu64 "\n", rd->dom, s->vcpu, s->quantum);
    rd->c->next++;
}

static int sched_source(void *opaque, struct sim_schedule *s)
{
    struct rec_dom *rd = opaque;
    struct run *r = rd->r;
    char got[200];
    snprintf(got, sizeof(got), "a scheduling decision of %s", rd->dom ? "the introspector" : "the domain");
    const struct rec_entry *e = peek(r);
    if (!r->rec->decided && e && e->kind == REC_SCHED && e->dom == rd->dom) {
        if (e->vcpu >= SIM_MAX_VCPUS || !((s->runnable[e->vcpu / 64] >> (e->vcpu % 64)) & 1)) {
            char list[200] = "none";
            size_t off = 0;
            for (unsigned i = 0; i < SIM_MAX_VCPUS && off < sizeof(list); i++)
                if ((s->runnable[i / 64] >> (i % 64)) & 1) {
                    int w = snprintf(list + off, sizeof(list) - off, "%s%u", off ? ", " : "", i);
                    off += w > 0 ? (size_t)w : 0;
                }
            diverge(r, "entry %zu (line %u): the recording runs vCPU %u here, but vCPU %u is not runnable "
                    "now (runnable: %s)", r->rec->next + 1, e->line, e->vcpu, e->vcpu, list);
        } else {
            s->vcpu = e->vcpu;
            s->quantum = e->quantum;
            r->rec->next++;
            return 0;
        }
    } else {
        mismatch(r, e, got);
    }
    snprintf(s->why, sizeof(s->why), "the replay diverged (see the replay line)");
    return -EPROTO;
}

void rec_attach_domain(struct run *r, struct sim_domain *d, unsigned dom)
{
    struct rec *c = r->rec;
    if (!c || dom > 1)
        return;
    c->doms[dom] = (struct rec_dom){.c = c, .r = r, .dom = dom};
    if (c->mode == REC_WRITE)
        sim_set_schedule_observer(d, sched_observe, &c->doms[dom]);
    else
        sim_set_schedule_source(d, sched_source, &c->doms[dom]);
}

void rec_turn(struct run *r)
{
    if (!r->rec)
        return;
    if (r->rec->mode == REC_WRITE) {
        put(r->rec, "turn\n");
        r->rec->next++;
        return;
    }
    expect_kind(r, REC_TURN, "the client's turn");
}

/* A request or response written: its description as a comment (for people), then the entry. */
static void write_slot(struct run *r, const char *kind, unsigned ring, const void *slot, size_t len)
{
    char what[600];
    describe_slot(what, sizeof(what), r, ring, slot, len, kind[2] == 's');
    put(r->rec, "# %s\n%s %s ", what, kind, ring_names[ring]);
    put_hex(r->rec, slot, len);
    put(r->rec, "\n");
    r->rec->next++;
}

void rec_request(struct run *r, unsigned ring, const void *slot, size_t len)
{
    if (!r->rec || ring >= RUN_RINGS)
        return;
    if (r->rec->mode == REC_WRITE)
        write_slot(r, "request", ring, slot, len);
    else
        check_slot(r, REC_REQUEST, ring, slot, len);
}

void rec_response(struct run *r, unsigned ring, const void *slot, size_t len)
{
    if (!r->rec || ring >= RUN_RINGS)
        return;
    if (r->rec->mode == REC_WRITE)
        write_slot(r, "response", ring, slot, len);
    else
        check_slot(r, REC_RESPONSE, ring, slot, len);
}

void rec_action(struct run *r, enum rec_action a, const uint64_t *args, const uint8_t *page, int rc)
{
    if (!r->rec || (unsigned)a >= REC_ACT_COUNT)
        return;
    struct rec *c = r->rec;
    if (c->mode == REC_WRITE) {
        put(c, "action %s", action_names[a]);
        for (unsigned i = 0; i < action_nargs[a]; i++) {
            char how = action_format[a][i];
            if (how == 's')
                put(c, " %" PRId64, (int64_t)args[i]);
            else if (how == 'x')
                put(c, " %#" PRIx64, args[i]);
            else
                put(c, " %" PRIu64, args[i]);
        }
        if (a == REC_ACT_PAGING_LOAD) {
            put(c, " ");
            if (page)
                put_hex(c, page, 4096);
            else
                put(c, "-");
        }
        put(c, " %d\n", rc);
        c->next++;
        return;
    }
    char what[300], got[400];
    describe_action(what, sizeof(what), a, args, page);
    snprintf(got, sizeof(got), "the client's call %s -> %d", what, rc);
    const struct rec_entry *e = peek(r);
    if (c->decided)
        return;
    bool same = e && e->kind == REC_ACTION && e->act == a && e->rc == rc
                && !memcmp(e->args, args, action_nargs[a] * sizeof(*args))
                && (a != REC_ACT_PAGING_LOAD || (!page == !e->bytes && (!page || !memcmp(page, e->bytes, 4096))));
    if (!same) {
        mismatch(r, e, got);
        return;
    }
    c->next++;
}

/*
 * A failure's text on one line (the file is line-based), with the scenario's
 * path as "<scenario>": the same failure then reads the same when the
 * scenario is replayed from another place (--scenario).
 */
static void one_line(char *dst, size_t len, const char *text, const char *file)
{
    size_t i = 0, flen = strlen(file);
    while (*text && i + 1 < len) {
        if (flen && !strncmp(text, file, flen)) {
            int w = snprintf(dst + i, len - i, "<scenario>");
            i += w > 0 && (size_t)w < len - i ? (size_t)w : len - i - 1;
            text += flen;
            continue;
        }
        dst[i++] = *text == '\n' || *text == '\r' ? ' ' : *text;
        text++;
    }
    dst[i] = 0;
}

void rec_client_fail(struct run *r, const char *text)
{
    if (!r->rec)
        return;
    char t[700];
    one_line(t, sizeof(t), text, r->s->file);
    if (r->rec->mode == REC_WRITE) {
        put(r->rec, "fail %s\n", t);
        r->rec->next++;
        return;
    }
    char got[800];
    snprintf(got, sizeof(got), "the client's failure \"%s\"", t);
    const struct rec_entry *e = peek(r);
    if (r->rec->decided)
        return;
    if (!e || e->kind != REC_FAIL || strcmp(e->text, t)) {
        mismatch(r, e, got);
        return;
    }
    r->rec->next++;
}

static unsigned verdict_of(const struct run *r)
{
    return r->error ? 2 : r->failed ? 1 : 0;
}

void rec_verdict(struct run *r)
{
    struct rec *c = r->rec;
    if (!c)
        return;
    unsigned v = verdict_of(r);
    if (c->mode == REC_WRITE) {
        put(c, "verdict %s %" PRIu64 "\nend\n", verdict_names[v], r->events);
        c->next++;
        return;
    }
    if (c->decided)
        return;
    char got[200];
    snprintf(got, sizeof(got), "the end of the run: %s after %" PRIu64 " event(s)", verdict_names[v], r->events);
    const struct rec_entry *e = peek(r);
    if (!e || e->kind != REC_VERDICT || e->verdict != v || e->events != r->events) {
        mismatch(r, e, got);
        /* The replay's own verdict stands in the log; the divergence is what it is judged by. */
        return;
    }
    c->next++;
    c->outcome = REC_SAME;
    c->decided = true;
    snprintf(c->msg, sizeof(c->msg), "all %zu recorded entries happened again, in order; verdict %s after "
             "%" PRIu64 " event(s), as recorded", c->n, verdict_names[v], r->events);
}

/* ---- replay --as-client: the recording plays the client -------------------------------- */

static int do_action(struct run *r, const struct rec_entry *e)
{
    const uint64_t *v = e->args;
    switch (e->act) {
    case REC_ACT_SET_ACCESS:
        return sim_set_mem_access(r->d, (unsigned)v[0], v[1], v[2]);
    case REC_ACT_ALTP2M_ACCESS:
        return sim_altp2m_set_mem_access(r->d, (uint16_t)v[0], v[1], (unsigned)v[2]);
    case REC_ACT_CHANGE_GFN:
        return sim_altp2m_change_gfn(r->d, (uint16_t)v[0], v[1], v[2]);
    case REC_ACT_INJECT:
        return sim_inject_trap(r->d, (unsigned)v[0], (unsigned)v[1], (unsigned)v[2], (int64_t)v[3],
                               (unsigned)v[4], v[5]);
    case REC_ACT_PAGING_LOAD:
        return sim_paging_load(r->d, v[0], e->bytes);
    case REC_ACT_MAX_PAGES:
        sim_set_max_pages(r->d, v[0]);
        return 0;
    default:
        return -EINVAL;
    }
}

/* One recorded request: taken from its ring, compared, counted and logged as the client would. */
static bool replay_request(struct run *r, const struct rec_entry *e)
{
    struct run_ring *rr = &r->rings[e->ring];
    unsigned char slot[REC_MAX_SLOT];
    char want[800];
    describe(want, sizeof(want), r, e);
    size_t idx = (size_t)(e - r->rec->e) + 1;
    if (!rr->back) {
        diverge(r, "entry %zu (line %u): expected %s, but the scenario has no %s ring", idx, e->line, want,
                ring_names[e->ring]);
        return false;
    }
    size_t len = vme_slot_size(rr->version);
    if (ring_back_take_request(rr->back, slot) != 0) {
        diverge(r, "entry %zu (line %u): expected %s; got no request on that ring", idx, e->line, want);
        return false;
    }
    if (e->len != len || memcmp(e->bytes, slot, len)) {
        char now[600], diff[120];
        describe_slot(now, sizeof(now), r, e->ring, slot, len, false);
        slot_diff(diff, sizeof(diff), e->bytes, e->len, slot, len);
        diverge(r, "entry %zu (line %u): expected %s; got a request on the %s ring: %s%s", idx, e->line, want,
                ring_names[e->ring], now, diff);
        return false;
    }
    struct vme_msg req;
    vme_decode(rr->version, slot, &req);
    uint64_t seq = ++r->events;
    if (req.reason < VME_REASON_COUNT)
        r->counts[req.reason]++;
    run_log_add(r, RUN_LOG_REQUEST, seq, req.vcpu_id, &req, "request");
    return true;
}

static bool replay_response(struct run *r, const struct rec_entry *e)
{
    struct run_ring *rr = &r->rings[e->ring];
    size_t idx = (size_t)(e - r->rec->e) + 1;
    if (!rr->back || e->len != vme_slot_size(rr->version)) {
        diverge(r, "entry %zu (line %u): a response of %zu bytes for the %s ring, which %s", idx, e->line,
                e->len, ring_names[e->ring], rr->back ? "has slots of another size" : "the scenario does not have");
        return false;
    }
    if (ring_back_put_response(rr->back, e->bytes) < 0) {
        diverge(r, "entry %zu (line %u): the %s ring has no room for the recorded response", idx, e->line,
                ring_names[e->ring]);
        return false;
    }
    struct vme_msg m;
    vme_decode(rr->version, e->bytes, &m);
    run_log_add(r, RUN_LOG_RESPONSE, r->events, m.vcpu_id, &m, "response");
    return true;
}

bool rec_client_step(struct run *r, bool domain_blocked)
{
    (void)domain_blocked; /* the recording already holds what the client did about it */
    if (!expect_kind(r, REC_TURN, "the client's turn"))
        return false;
    for (unsigned i = 0; i < RUN_RINGS; i++) {
        struct run_ring *rr = &r->rings[run_ring_order[i]];
        if (rr->back && evtchn_pending(rr->evtchn) > 0)
            evtchn_unmask(rr->evtchn);
    }
    bool acted = false;
    const struct rec_entry *e;
    while (!r->error && (e = peek(r)) && e->kind != REC_SCHED && e->kind != REC_TURN && e->kind != REC_CLIENT_END
           && e->kind != REC_VERDICT) {
        r->rec->next++;
        switch (e->kind) {
        case REC_REQUEST:
            acted |= replay_request(r, e);
            break;
        case REC_RESPONSE:
            acted |= replay_response(r, e);
            break;
        case REC_ACTION: {
            char what[300];
            int rc = do_action(r, e);
            describe_action(what, sizeof(what), e->act, e->args, e->bytes);
            run_log_add(r, RUN_LOG_CLIENT, r->events, 0, NULL, "(recorded) %s -> %d", what, rc);
            if (rc != e->rc)
                diverge(r, "entry %zu (line %u): %s returned %d now, %d in the recording",
                        (size_t)(e - r->rec->e) + 1, e->line, what, rc, e->rc);
            break;
        }
        case REC_FAIL:
            r->failed = true;
            run_log_add(r, RUN_LOG_FAIL, r->events, 0, NULL, "the recorded client failed here: %s", e->text);
            break;
        default:
            break;
        }
    }
    /* The real client takes every request there is unless it failed: one left means another path. */
    for (unsigned i = 0; i < RUN_RINGS && !r->error && !r->failed; i++) {
        struct run_ring *rr = &r->rings[run_ring_order[i]];
        uint32_t left = rr->back ? ring_back_unconsumed_requests(rr->back) : 0;
        if (left) {
            const struct rec_entry *nx = peek(r);
            char what[800] = "the end of the recording";
            if (nx)
                describe(what, sizeof(what), r, nx);
            diverge(r, "after entry %zu: %" PRIu32 " request(s) on the %s ring that the recorded client never "
                    "took; the recording goes on with %s", r->rec->next, left, ring_names[run_ring_order[i]], what);
        }
    }
    run_client_push(r);
    return acted;
}

void rec_client_end(struct run *r)
{
    if (!r->rec)
        return;
    if (r->rec->mode == REC_WRITE) {
        put(r->rec, "client-end\n");
        r->rec->next++;
        return;
    }
    expect_kind(r, REC_CLIENT_END, "the end of the guest's run (the client's last checks)");
}

void rec_client_finish(struct run *r)
{
    rec_client_end(r);
    const struct rec_entry *e;
    while (!r->error && (e = peek(r)) && e->kind == REC_FAIL) {
        r->rec->next++;
        r->failed = true;
        run_log_add(r, RUN_LOG_FAIL, 0, 0, NULL, "the recorded client failed at its end: %s", e->text);
    }
}
