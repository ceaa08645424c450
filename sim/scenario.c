/*
 * sim/scenario.c — loads a scenario file (docs/scenario-format.md) into the
 * model of scenario_internal.h, checking everything.
 *
 * Two passes over the text with libyaml.  The first streams parser events
 * only, to refuse what must never reach the document loader: syntax errors,
 * aliases, more than one document, nesting deeper than SCENARIO_MAX_DEPTH and
 * more than SCENARIO_MAX_NODES nodes (so the loaded tree is small and
 * shallow, and an alias can never make a walk revisit a node).  The second
 * loads the document (yaml_parser_load) and walks it by the format's schema:
 * the walk's depth is the format's depth, whatever the file holds.
 *
 * Every allocation of the model comes from one arena that scenario_free
 * releases whole, so no error path can leak.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "scenario_internal.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PAGE_4K 4096ull
#define PAGE_2M (2ull << 20)
#define PAGE_1G (1ull << 30)

/* ---- Name tables ---------------------------------------------------------- */

static const char *const reason_names[SCENARIO_REASON_COUNT] = {
    "UNKNOWN", "MEM_ACCESS", "MEM_SHARING", "MEM_PAGING", "WRITE_CTRLREG", "MOV_TO_MSR",
    "SOFTWARE_BREAKPOINT", "SINGLESTEP", "GUEST_REQUEST", "DEBUG_EXCEPTION", "CPUID",
    "PRIVILEGED_CALL", "INTERRUPT", "DESCRIPTOR_ACCESS", "EMUL_UNIMPLEMENTED", "VMEXIT",
    "IO_INSTRUCTION",
};

static const char *const flag_names[SCENARIO_FLAG_COUNT] = {
    "VCPU_PAUSED", "FOREIGN", "EMULATE", "EMULATE_NOWRITE", "TOGGLE_SINGLESTEP",
    "SET_EMUL_READ_DATA", "DENY", "ALTERNATE_P2M", "SET_REGISTERS", "SET_EMUL_INSN_DATA",
    "GET_NEXT_INTERRUPT", "FAST_SINGLESTEP", "NESTED_P2M", "RESET_VMTRACE",
    "RESET_FORK_STATE", "RESET_FORK_MEMORY",
};

static const char *const access_names[SCENARIO_ACCESS_COUNT] = {
    "n", "r", "w", "rw", "x", "rx", "wx", "rwx", "rx2rw", "n2rwx", "default",
};

static const char *const reg_names[SCENARIO_REG_COUNT] = {
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
    "rip", "rflags", "cr0", "cr2", "cr3", "cr4", "dr7", "efer", "star", "lstar", "cstar",
    "sfmask", "sysenter_cs", "sysenter_esp", "sysenter_eip", "fs_base", "gs_base",
    "shadow_gs", "xcr0",
};

static const char *const match_field_names[SCENARIO_MATCH_FIELD_COUNT] = {
    "reason", "vcpu", "flags", "altp2m_idx", "gfn", "offset", "gla", "access", "gla_valid",
    "fault", "regs", "index", "new_value", "old_value", "msr", "insn_length", "type", "p2mt",
    "paging_flags",
};

static const char *const p2mt_names[SCENARIO_P2MT_COUNT] = {
    "ram_rw", "invalid", "ram_logdirty", "ram_ro", "mmio_dm", "mmio_direct",
    "populate_on_demand", "grant_map_rw", "grant_map_ro", "ram_paging_out", "ram_paged",
    "ram_paging_in", "ram_shared", "ram_broken", "map_foreign", "ioreq_server",
};

static const char *const paging_flag_names[SCENARIO_PAGING_FLAG_COUNT] = {"DROP_PAGE",
                                                                          "EVICT_FAIL"};

static const char *const ctrlreg_names[] = {"cr0", "cr3", "cr4", "xcr0"};

static const char *const end_names[] = {NULL, "halted", "limit", "crashed", "fault", "blocked",
                                        "shutdown"};
static const char *const hypercall_names[] = {"none", "xen", "kvm"};
static const char *const shutdown_names[] = {"poweroff", "reboot", "suspend", "crash", "watchdog",
                                             "soft_reset"};
static const char *const mode_names[] = {"long", "pae32"};
static const char *const order_names[] = {"sequence", "set"};
static const char *const fault_names[] = {"none", "with_gla", "in_gpt"};
static const uint64_t fault_values[] = {0, 0x10, 0x20};

const char *scenario_reason_name(unsigned reason)
{
    return reason < SCENARIO_REASON_COUNT ? reason_names[reason] : NULL;
}

const char *scenario_flag_name(unsigned bit)
{
    return bit < SCENARIO_FLAG_COUNT ? flag_names[bit] : NULL;
}

const char *scenario_p2mt_name(unsigned p2mt)
{
    return p2mt < SCENARIO_P2MT_COUNT ? p2mt_names[p2mt] : NULL;
}

const char *scenario_paging_flag_name(unsigned bit)
{
    return bit < SCENARIO_PAGING_FLAG_COUNT ? paging_flag_names[bit] : NULL;
}

const char *scenario_access_name(unsigned access)
{
    return access < SCENARIO_ACCESS_COUNT ? access_names[access] : NULL;
}

const char *scenario_reg_name(unsigned reg)
{
    return reg < SCENARIO_REG_COUNT ? reg_names[reg] : NULL;
}

int scenario_reg_lookup(const char *name)
{
    for (unsigned i = 0; name && i < SCENARIO_REG_COUNT; i++)
        if (strcmp(name, reg_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *scenario_match_field_name(unsigned field)
{
    return field < SCENARIO_MATCH_FIELD_COUNT ? match_field_names[field] : NULL;
}

const char *scenario_end_name(unsigned end)
{
    return end < ARRAY_SIZE(end_names) ? end_names[end] : NULL;
}

/* ---- Arena ---------------------------------------------------------------- */

struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    max_align_t data[];
};

struct scenario_arena {
    struct arena_block *head;
};

#define ARENA_BLOCK 65536u
#define ARENA_ALIGN _Alignof(max_align_t)

/* Zeroed memory for `size` bytes, or NULL. */
static void *arena_alloc(struct scenario_arena *a, size_t size)
{
    if (size > SIZE_MAX / 2)
        return NULL;
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (size == 0)
        size = ARENA_ALIGN;
    struct arena_block *b = a->head;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > ARENA_BLOCK / 4 ? size : ARENA_BLOCK;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        if (size > ARENA_BLOCK / 4 && a->head) {
            /* A big block of its own: keep the current small block in front. */
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

static void *arena_array(struct scenario_arena *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / 2 / size)
        return NULL;
    return arena_alloc(a, n * size);
}

static char *arena_strndup(struct scenario_arena *a, const char *s, size_t len)
{
    char *d = arena_alloc(a, len + 1);
    if (d)
        memcpy(d, s, len);
    return d;
}

static void arena_destroy(struct scenario_arena *a)
{
    if (!a)
        return;
    for (struct arena_block *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(a);
}

/* ---- Errors --------------------------------------------------------------- */

struct ctx {
    const char *file;
    const char *text;
    size_t len;
    yaml_document_t *doc;
    struct scenario *s;
    struct scenario_guest *g; /* the guest being read: s->guest, or the introspector's */
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 4, 5)))
static int fail_at(struct ctx *c, size_t line, size_t column, const char *fmt, ...)
{
    if (c->err && c->errlen) {
        int n = snprintf(c->err, c->errlen, "%s:%zu:%zu: ", c->file, line, column);
        if (n >= 0 && (size_t)n < c->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -EINVAL;
}

#define fail(c, node, ...)                                                                    \
    fail_at((c), (node)->start_mark.line + 1, (node)->start_mark.column + 1, __VA_ARGS__)

static int fail_nomem(struct ctx *c)
{
    if (c->err && c->errlen)
        snprintf(c->err, c->errlen, "%s: out of memory", c->file);
    return -ENOMEM;
}

static uint32_t line_of(const yaml_node_t *n)
{
    return (uint32_t)n->start_mark.line + 1;
}

static uint32_t column_of(const yaml_node_t *n)
{
    return (uint32_t)n->start_mark.column + 1;
}

/* A value as it may appear in a message: at most ~40 characters, controls escaped. */
struct shown {
    char s[96];
};

static struct shown show_text(const char *t, size_t len)
{
    struct shown out;
    size_t o = 0, i = 0;
    for (; i < len && o < 40; i++) {
        unsigned char ch = (unsigned char)t[i];
        if (ch < 0x20 || ch == 0x7f || ch == '\'')
            o += (size_t)snprintf(out.s + o, sizeof(out.s) - o, "\\x%02x", ch);
        else
            out.s[o++] = (char)ch;
    }
    /* Never cut a UTF-8 sequence in two. */
    while (i < len && ((unsigned char)t[i] & 0xc0) == 0x80 && o < 60)
        out.s[o++] = t[i++];
    if (i < len)
        o += (size_t)snprintf(out.s + o, sizeof(out.s) - o, "...");
    out.s[o] = '\0';
    return out;
}

static struct shown show(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE)
        return show_text("", 0);
    return show_text((const char *)n->data.scalar.value, n->data.scalar.length);
}

/* "a mapping", "a list", "empty", "a value": what a node is, for "X is ...". */
static const char *kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_SCALAR_NODE:
        return n->data.scalar.length == 0 ? "empty" : "a single value";
    default:
        return "nothing";
    }
}

/* "a, b, c" of `names` into buf. */
static const char *join(char *buf, size_t size, const char *const *names, size_t n)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!names[i])
            continue;
        int w = snprintf(buf + o, size - o, "%s%s", o ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= size - o)
            break;
        o += (size_t)w;
    }
    return buf;
}

/* "PATH.key" (or "key" at the top level). */
static void subpath(char *buf, size_t size, const char *path, const char *key)
{
    int n = snprintf(buf, size, "%s%s%s", path, path[0] ? "." : "", key);
    if (n < 0 || (size_t)n >= size) /* cannot happen: the format is at most 6 levels deep */
        buf[0] = '\0';
}

static void itempath(char *buf, size_t size, const char *path, size_t i)
{
    int n = snprintf(buf, size, "%s[%zu]", path, i);
    if (n < 0 || (size_t)n >= size)
        buf[0] = '\0';
}

/* "16M (0x1000000)" */
static void fmt_size(char *buf, size_t size, uint64_t v)
{
    if (v && v % PAGE_1G == 0)
        snprintf(buf, size, "%lluG", (unsigned long long)(v / PAGE_1G));
    else if (v && v % (1u << 20) == 0)
        snprintf(buf, size, "%lluM", (unsigned long long)(v >> 20));
    else if (v && v % 1024 == 0)
        snprintf(buf, size, "%lluK", (unsigned long long)(v >> 10));
    else
        snprintf(buf, size, "%llu", (unsigned long long)v);
}

/* ---- Nodes ---------------------------------------------------------------- */

#define PATH_MAX_LEN 192

static yaml_node_t *node(struct ctx *c, int index)
{
    return yaml_document_get_node(c->doc, index);
}

static bool scalar_is(const yaml_node_t *n, const char *s)
{
    size_t l = strlen(s);
    return n->type == YAML_SCALAR_NODE && n->data.scalar.length == l &&
           memcmp(n->data.scalar.value, s, l) == 0;
}

/* Index of the name `n` is in `names`, or -1. */
static int lookup(const yaml_node_t *n, const char *const *names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (names[i] && scalar_is(n, names[i]))
            return (int)i;
    return -1;
}

static int want_map(struct ctx *c, const yaml_node_t *n, const char *path)
{
    if (n->type == YAML_MAPPING_NODE)
        return 0;
    return fail(c, n, "%s is %s; expected a mapping (key: value lines)", path, kind(n));
}

static int want_list(struct ctx *c, const yaml_node_t *n, const char *path)
{
    if (n->type == YAML_SEQUENCE_NODE)
        return 0;
    return fail(c, n, "%s is %s; expected a list (lines starting with '- ')", path, kind(n));
}

static size_t list_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static size_t map_len(const yaml_node_t *n)
{
    return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

#define MAX_KEYS 32 /* the most keys a mapping may have: a hypervisor event step's 28 */

/* For "%s%s": "in guest.mappings[0]", or "at the top level". */
#define WHERE(path) ((path)[0] ? "in " : "at "), ((path)[0] ? (path) : "the top level")

/* The keys of one mapping, by index into the section's key table. */
struct fields {
    yaml_node_t *key[MAX_KEYS];
    yaml_node_t *val[MAX_KEYS];
};

/* A key must be a plain name: not a list or mapping. */
static int check_key(struct ctx *c, const yaml_node_t *k, const char *path)
{
    if (k->type == YAML_SCALAR_NODE)
        return 0;
    return fail(c, k, "a key %s%s is %s; expected a plain name", WHERE(path), kind(k));
}

/*
 * Reads mapping `map` (checked to be one) whose keys must be among `names`:
 * an unknown or repeated key is an error.
 */
static int read_keys(struct ctx *c, yaml_node_t *map, const char *path,
                     const char *const *names, size_t count, struct fields *f)
{
    memset(f, 0, sizeof(*f));
    int rc = want_map(c, map, path[0] ? path : "the document");
    if (rc)
        return rc;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
        if ((rc = check_key(c, k, path)))
            return rc;
        int i = lookup(k, names, count);
        if (i < 0) {
            char list[512];
            return fail(c, k, "unknown key '%s' %s%s; expected one of: %s", show(k).s,
                        WHERE(path), join(list, sizeof(list), names, count));
        }
        if (f->key[i])
            return fail(c, k, "duplicate key '%s' %s%s; expected each key once (first at line %u)",
                        names[i], WHERE(path), line_of(f->key[i]));
        f->key[i] = k;
        f->val[i] = v;
    }
    return 0;
}

static int missing(struct ctx *c, const yaml_node_t *map, const char *path, const char *key,
                   const char *expected)
{
    return fail(c, map, "missing key '%s' %s%s; expected %s", key, WHERE(path), expected);
}

/* ---- Scalars -------------------------------------------------------------- */

enum num_problem { NUM_OK, NUM_SYNTAX, NUM_OVERFLOW, NUM_NEGATIVE, NUM_LEADING_ZERO };

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decimal or 0x-hex; with `suffix`, an optional K, M or G (binary). */
static enum num_problem parse_u64(const char *s, size_t len, bool suffix, uint64_t *out)
{
    uint64_t v = 0, mult = 1;
    if (len && s[0] == '-')
        return NUM_NEGATIVE;
    if (suffix && len > 1) {
        switch (s[len - 1]) {
        case 'K': mult = 1ull << 10; len--; break;
        case 'M': mult = 1ull << 20; len--; break;
        case 'G': mult = 1ull << 30; len--; break;
        default: break;
        }
    }
    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        for (size_t i = 2; i < len; i++) {
            int d = hexval((unsigned char)s[i]);
            if (d < 0)
                return NUM_SYNTAX;
            if (v > (UINT64_MAX >> 4))
                return NUM_OVERFLOW;
            v = v << 4 | (unsigned)d;
        }
    } else {
        if (len == 0)
            return NUM_SYNTAX;
        for (size_t i = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9')
                return NUM_SYNTAX;
            unsigned d = (unsigned)(s[i] - '0');
            if (v > (UINT64_MAX - d) / 10)
                return NUM_OVERFLOW;
            v = v * 10 + d;
        }
        if (len > 1 && s[0] == '0')
            return NUM_LEADING_ZERO;
    }
    if (v > UINT64_MAX / mult)
        return NUM_OVERFLOW;
    *out = v * mult;
    return NUM_OK;
}

#define NUMBER_FORM "a decimal or 0x-hex number"
#define SIZE_FORM "a size such as 4096, 0x1000, 64K, 16M or 1G"

/* A number in [min, max]; `suffix` allows K/M/G. */
static int get_num(struct ctx *c, const yaml_node_t *n, const char *path, bool suffix,
                   uint64_t min, uint64_t max, uint64_t *out)
{
    const char *form = suffix ? SIZE_FORM : NUMBER_FORM;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.length == 0)
        return fail(c, n, "%s is %s; expected %s", path, kind(n), form);
    uint64_t v = 0;
    switch (parse_u64((const char *)n->data.scalar.value, n->data.scalar.length, suffix, &v)) {
    case NUM_OK:
        break;
    case NUM_SYNTAX:
        return fail(c, n, "'%s' is not a number in %s; expected %s", show(n).s, path, form);
    case NUM_OVERFLOW:
        return fail(c, n, "'%s' does not fit in 64 bits in %s; expected at most 0xffffffffffffffff",
                    show(n).s, path);
    case NUM_NEGATIVE:
        return fail(c, n, "'%s' is negative in %s; expected %s >= 0", show(n).s, path, form);
    case NUM_LEADING_ZERO:
        return fail(c, n, "'%s' has a leading zero in %s; expected a decimal number without "
                    "leading zeros, or 0x-hex", show(n).s, path);
    }
    if (v < min || v > max) {
        if (max == UINT64_MAX)
            return fail(c, n, "%s is %s; expected at least %llu", path, show(n).s,
                        (unsigned long long)min);
        return fail(c, n, "%s is %s; expected %llu to %llu", path, show(n).s,
                    (unsigned long long)min, (unsigned long long)max);
    }
    *out = v;
    return 0;
}

static int get_u32(struct ctx *c, const yaml_node_t *n, const char *path, uint64_t min,
                   uint64_t max, uint32_t *out)
{
    uint64_t v;
    int rc = get_num(c, n, path, false, min, max, &v);
    if (!rc)
        *out = (uint32_t)v;
    return rc;
}

static int get_opt(struct ctx *c, const yaml_node_t *n, const char *path, uint64_t max,
                   struct scenario_opt *out)
{
    int rc = get_num(c, n, path, false, 0, max, &out->value);
    if (rc)
        return rc;
    out->set = true;
    out->line = line_of(n);
    out->column = column_of(n);
    return 0;
}

static int get_bool(struct ctx *c, const yaml_node_t *n, const char *path, bool *out)
{
    if (scalar_is(n, "true"))
        *out = true;
    else if (scalar_is(n, "false"))
        *out = false;
    else if (n->type != YAML_SCALAR_NODE || n->data.scalar.length == 0)
        return fail(c, n, "%s is %s; expected true or false", path, kind(n));
    else
        return fail(c, n, "'%s' is not a boolean in %s; expected true or false", show(n).s, path);
    return 0;
}

/* One of `names` (NULL entries skipped); `what` is "an access type" etc. */
static int get_name(struct ctx *c, const yaml_node_t *n, const char *path, const char *what,
                    const char *const *names, size_t count, unsigned *out)
{
    char list[512];
    join(list, sizeof(list), names, count);
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.length == 0)
        return fail(c, n, "%s is %s; expected one of %s", path, kind(n), list);
    int i = lookup(n, names, count);
    if (i < 0)
        return fail(c, n, "'%s' is not %s in %s; expected one of %s", show(n).s, what, path, list);
    *out = (unsigned)i;
    return 0;
}

/* A string without NUL characters, copied; `allow_empty` or not. */
static int get_str(struct ctx *c, const yaml_node_t *n, const char *path, bool allow_empty,
                   char **out, size_t *len_out)
{
    if (n->type != YAML_SCALAR_NODE)
        return fail(c, n, "%s is %s; expected a string", path, kind(n));
    size_t len = n->data.scalar.length;
    if (!len && !allow_empty)
        return fail(c, n, "%s is empty; expected a non-empty string", path);
    if (memchr(n->data.scalar.value, '\0', len))
        return fail(c, n, "%s contains a NUL character; expected text", path);
    if (!(*out = arena_strndup(c->s->arena, (const char *)n->data.scalar.value, len)))
        return fail_nomem(c);
    if (len_out)
        *len_out = len;
    return 0;
}

#define HEX_FORM "pairs of hex digits such as \"48 89 03 f4\""

/* A hex byte string: pairs of hex digits, white space between pairs. */
static int get_hex(struct ctx *c, const yaml_node_t *n, const char *path,
                   struct scenario_bytes *out)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.length == 0)
        return fail(c, n, "%s is %s; expected %s", path, kind(n), HEX_FORM);
    const unsigned char *t = n->data.scalar.value;
    size_t len = n->data.scalar.length, count = 0;
    for (size_t i = 0; i < len;) {
        if (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r') {
            i++;
            continue;
        }
        if (hexval(t[i]) < 0)
            return fail(c, n, "bad hex byte string in %s: '%s' (character %zu) is not a hex "
                        "digit; expected %s", path, show_text((const char *)t + i, 1).s, i + 1,
                        HEX_FORM);
        if (i + 1 < len && hexval(t[i + 1]) < 0 && t[i + 1] != ' ' && t[i + 1] != '\t' &&
            t[i + 1] != '\n' && t[i + 1] != '\r')
            return fail(c, n, "bad hex byte string in %s: '%s' (character %zu) is not a hex "
                        "digit; expected %s", path, show_text((const char *)t + i + 1, 1).s,
                        i + 2, HEX_FORM);
        if (i + 1 >= len || hexval(t[i + 1]) < 0)
            return fail(c, n, "bad hex byte string in %s: a lone hex digit '%c' (character %zu); "
                        "expected %s", path, t[i], i + 1, HEX_FORM);
        i += 2;
        count++;
    }
    if (count == 0)
        return fail(c, n, "%s holds no bytes; expected %s", path, HEX_FORM);
    if (count > SCENARIO_MAX_HEX_BYTES)
        return fail(c, n, "%s is %zu bytes; expected at most 1M (%u bytes)", path, count,
                    SCENARIO_MAX_HEX_BYTES);
    if (!(out->data = arena_alloc(c->s->arena, count)))
        return fail_nomem(c);
    out->len = 0;
    for (size_t i = 0; i < len;) {
        if (hexval(t[i]) < 0) {
            i++;
            continue;
        }
        out->data[out->len++] = (uint8_t)(hexval(t[i]) << 4 | hexval(t[i + 1]));
        i += 2;
    }
    return 0;
}

/* Letters from `letters` ("rwxu"), each at most once, as bits 1 << index. */
static int get_letters(struct ctx *c, const yaml_node_t *n, const char *path, const char *letters,
                       const char *expected, unsigned *out)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.length == 0)
        return fail(c, n, "%s is %s; expected %s", path, kind(n), expected);
    unsigned bits = 0;
    for (size_t i = 0; i < n->data.scalar.length; i++) {
        unsigned char ch = n->data.scalar.value[i];
        const char *at = ch ? strchr(letters, ch) : NULL;
        if (!at)
            return fail(c, n, "'%s' in %s has '%s', not one of the letters %s; expected %s",
                        show(n).s, path, show_text((const char *)&n->data.scalar.value[i], 1).s,
                        letters, expected);
        unsigned bit = 1u << (at - letters);
        if (bits & bit)
            return fail(c, n, "'%s' in %s has '%c' twice; expected %s", show(n).s, path, ch,
                        expected);
        bits |= bit;
    }
    *out = bits;
    return 0;
}

/* A list of flag names, each at most once, as a mask. */
static int get_flags(struct ctx *c, const yaml_node_t *n, const char *path, uint32_t *out)
{
    int rc = want_list(c, n, path);
    if (rc)
        return rc;
    uint32_t mask = 0;
    size_t i = 0;
    char ipath[PATH_MAX_LEN];
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++, i++) {
        yaml_node_t *f = node(c, *it);
        unsigned bit;
        itempath(ipath, sizeof(ipath), path, i);
        if ((rc = get_name(c, f, ipath, "a vm_event flag", flag_names, SCENARIO_FLAG_COUNT, &bit)))
            return rc;
        if (mask & (1u << bit))
            return fail(c, f, "flag %s is listed twice in %s; expected each flag once",
                        flag_names[bit], path);
        mask |= 1u << bit;
    }
    *out = mask;
    return 0;
}

/* A list of MEM_PAGING_* flag names (DROP_PAGE, EVICT_FAIL), each at most once, as a mask. */
static int get_paging_flags(struct ctx *c, const yaml_node_t *n, const char *path, uint64_t *out)
{
    int rc = want_list(c, n, path);
    if (rc)
        return rc;
    uint64_t mask = 0;
    size_t i = 0;
    char ipath[PATH_MAX_LEN];
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++, i++) {
        yaml_node_t *f = node(c, *it);
        unsigned bit;
        itempath(ipath, sizeof(ipath), path, i);
        if ((rc = get_name(c, f, ipath, "a MEM_PAGING flag", paging_flag_names,
                           SCENARIO_PAGING_FLAG_COUNT, &bit)))
            return rc;
        if (mask & (1u << bit))
            return fail(c, f, "flag %s is listed twice in %s; expected each flag once",
                        paging_flag_names[bit], path);
        mask |= 1u << bit;
    }
    *out = mask;
    return 0;
}

/* A p2m type: its Xen name (ram_paged) or its number 0..15. */
static int get_p2mt(struct ctx *c, const yaml_node_t *n, const char *path, uint32_t *out)
{
    if (n->type == YAML_SCALAR_NODE && n->data.scalar.length &&
        n->data.scalar.value[0] >= '0' && n->data.scalar.value[0] <= '9')
        return get_u32(c, n, path, 0, SCENARIO_P2MT_COUNT - 1, out);
    char list[512];
    join(list, sizeof(list), p2mt_names, SCENARIO_P2MT_COUNT);
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.length == 0)
        return fail(c, n, "%s is %s; expected one of %s, or a number 0 to %u", path, kind(n), list,
                    SCENARIO_P2MT_COUNT - 1);
    int i = lookup(n, p2mt_names, SCENARIO_P2MT_COUNT);
    if (i < 0)
        return fail(c, n, "'%s' is not a p2m type in %s; expected one of %s, or a number 0 to %u",
                    show(n).s, path, list, SCENARIO_P2MT_COUNT - 1);
    *out = (uint32_t)i;
    return 0;
}

/* A reason name, or a number 0..16. */
static int get_reason(struct ctx *c, const yaml_node_t *n, const char *path, unsigned *out)
{
    if (n->type == YAML_SCALAR_NODE && n->data.scalar.length &&
        n->data.scalar.value[0] >= '0' && n->data.scalar.value[0] <= '9') {
        uint64_t v;
        int rc = get_num(c, n, path, false, 0, SCENARIO_REASON_COUNT - 1, &v);
        if (!rc)
            *out = (unsigned)v;
        return rc;
    }
    char list[512];
    join(list, sizeof(list), reason_names, SCENARIO_REASON_COUNT);
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.length == 0)
        return fail(c, n, "%s is %s; expected one of %s, or a number 0 to %d", path, kind(n), list,
                    SCENARIO_REASON_COUNT - 1);
    int i = lookup(n, reason_names, SCENARIO_REASON_COUNT);
    if (i < 0)
        return fail(c, n, "'%s' is not an event reason in %s; expected one of %s, or a number 0 "
                    "to %d", show(n).s, path, list, SCENARIO_REASON_COUNT - 1);
    *out = (unsigned)i;
    return 0;
}

/* A register map: name -> value.  `no_rip`: rip is refused (guest.registers). */
static int get_regs(struct ctx *c, const yaml_node_t *n, const char *path, bool no_rip,
                    struct scenario_regs *out)
{
    int rc = want_map(c, n, path);
    if (rc)
        return rc;
    size_t count = map_len(n);
    if (!(out->v = arena_array(c->s->arena, count, sizeof(*out->v))))
        return fail_nomem(c);
    uint64_t seen = 0;
    const yaml_node_t *first[SCENARIO_REG_COUNT] = {0};
    char rpath[PATH_MAX_LEN];
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
        if ((rc = check_key(c, k, path)))
            return rc;
        int r = lookup(k, reg_names, SCENARIO_REG_COUNT);
        if (r < 0) {
            char list[512];
            return fail(c, k, "'%s' is not a register name in %s; expected one of: %s", show(k).s,
                        path, join(list, sizeof(list), reg_names, SCENARIO_REG_COUNT));
        }
        if (seen & (1ull << r))
            return fail(c, k, "duplicate key '%s' in %s; expected each register once (first at "
                        "line %u)", reg_names[r], path, line_of(first[r]));
        if (no_rip && r == SCENARIO_REG_RIP)
            return fail(c, k, "rip cannot be set in %s; expected the first instruction's address "
                        "in guest.entry", path);
        seen |= 1ull << r;
        first[r] = k;
        subpath(rpath, sizeof(rpath), path, reg_names[r]);
        struct scenario_reg_value *rv = &out->v[out->n];
        if ((rc = get_num(c, v, rpath, false, 0, UINT64_MAX, &rv->value)))
            return rc;
        rv->reg = (enum scenario_reg)r;
        rv->line = line_of(v);
        rv->column = column_of(v);
        out->n++;
    }
    return 0;
}

/* ---- Ranges ---------------------------------------------------------------- */

/* The view of an altp2m item: 0 (the host p2m; `host_ok`) or 1 to the number of views. */
static int get_view(struct ctx *c, const yaml_node_t *v, const char *path, bool host_ok,
                    uint32_t *out)
{
    uint32_t nr = (uint32_t)c->s->altp2m.nr_views;
    int rc = get_u32(c, v, path, 0, UINT32_MAX, out);
    if (rc)
        return rc;
    if (*out == 0 && !host_ok)
        return fail(c, v, "%s is 0, the host p2m, which change_gfn cannot change; expected a "
                    "view of altp2m.views (1 to %u)", path, nr);
    if (*out > nr) {
        if (!nr)
            return fail(c, v, "%s is view %s, but altp2m.views creates no view; expected 0 (the "
                        "host p2m)", path, show(v).s);
        return fail(c, v, "%s is view %s, but altp2m.views creates %u view%s (1 to %u); expected "
                    "%s1 to %u", path, show(v).s, nr, nr == 1 ? "" : "s", nr, host_ok ? "0 or " : "",
                    nr);
    }
    return 0;
}

/* get_view (0 allowed) into an optional number with its position. */
static int get_view_opt(struct ctx *c, const yaml_node_t *v, const char *path,
                        struct scenario_opt *out)
{
    uint32_t view;
    int rc = get_view(c, v, path, true, &view);
    if (rc)
        return rc;
    *out = (struct scenario_opt){.set = true, .value = view, .line = line_of(v),
                                 .column = column_of(v)};
    return 0;
}

/*
 * p2m.access / respond.set_access / altp2m.views[i].access: a list of {gfn,
 * count, access}; respond.altp2m_access (`with_view`): {view, gfn, count, access}.
 */
static int get_access_ranges(struct ctx *c, const yaml_node_t *n, const char *path, bool with_view,
                             struct scenario_access_range **out, size_t *nr)
{
    static const char *const keys[] = {"gfn", "count", "access", "view"};
    enum { K_GFN, K_COUNT, K_ACCESS, K_VIEW };
    size_t nr_keys = with_view ? ARRAY_SIZE(keys) : ARRAY_SIZE(keys) - 1;
    const char *needed = with_view ? "view, gfn, access and optionally count"
                                   : "gfn, access and optionally count";
    int rc = want_list(c, n, path);
    if (rc)
        return rc;
    size_t count = list_len(n);
    if (!(*out = arena_array(c->s->arena, count, sizeof(**out))))
        return fail_nomem(c);
    uint64_t nr_gfns = c->s->guest.memory / PAGE_4K;
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = node(c, n->data.sequence.items.start[i]);
        struct scenario_access_range *r = &(*out)[i];
        char ipath[PATH_MAX_LEN], vpath[PATH_MAX_LEN];
        struct fields f;
        itempath(ipath, sizeof(ipath), path, i);
        if ((rc = read_keys(c, item, ipath, keys, nr_keys, &f)))
            return rc;
        if (with_view && !f.val[K_VIEW])
            return missing(c, item, ipath, "view", needed);
        if (!f.val[K_GFN])
            return missing(c, item, ipath, "gfn", needed);
        if (!f.val[K_ACCESS])
            return missing(c, item, ipath, "access", needed);
        if (with_view) {
            subpath(vpath, sizeof(vpath), ipath, "view");
            if ((rc = get_view(c, f.val[K_VIEW], vpath, true, &r->view)))
                return rc;
        }
        subpath(vpath, sizeof(vpath), ipath, "gfn");
        if ((rc = get_num(c, f.val[K_GFN], vpath, false, 0, UINT64_MAX, &r->gfn)))
            return rc;
        r->count = 1;
        subpath(vpath, sizeof(vpath), ipath, "count");
        if (f.val[K_COUNT] &&
            (rc = get_num(c, f.val[K_COUNT], vpath, false, 1, UINT64_MAX, &r->count)))
            return rc;
        unsigned a;
        subpath(vpath, sizeof(vpath), ipath, "access");
        if ((rc = get_name(c, f.val[K_ACCESS], vpath, "an access type", access_names,
                           SCENARIO_ACCESS_COUNT, &a)))
            return rc;
        r->access = (enum scenario_access)a;
        if (r->count > nr_gfns || r->gfn > nr_gfns - r->count) {
            char mem[32];
            fmt_size(mem, sizeof(mem), c->s->guest.memory);
            return fail(c, f.val[K_GFN], "%s (gfn 0x%llx, count %llu) reaches beyond guest "
                        "memory (%s: gfns 0x0 to 0x%llx); expected gfn + count <= 0x%llx", ipath,
                        (unsigned long long)r->gfn, (unsigned long long)r->count, mem,
                        (unsigned long long)(nr_gfns - 1), (unsigned long long)nr_gfns);
        }
        r->line = line_of(item);
        r->column = column_of(item);
    }
    *nr = count;
    return 0;
}

/* guest.data / final.memory: a list of {gpa, bytes} within guest memory. */
static int get_data(struct ctx *c, const yaml_node_t *n, const char *path,
                    struct scenario_data **out, size_t *nr)
{
    static const char *const keys[] = {"gpa", "bytes"};
    enum { K_GPA, K_BYTES };
    int rc = want_list(c, n, path);
    if (rc)
        return rc;
    size_t count = list_len(n);
    if (!(*out = arena_array(c->s->arena, count, sizeof(**out))))
        return fail_nomem(c);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = node(c, n->data.sequence.items.start[i]);
        struct scenario_data *d = &(*out)[i];
        char ipath[PATH_MAX_LEN], vpath[PATH_MAX_LEN];
        struct fields f;
        itempath(ipath, sizeof(ipath), path, i);
        if ((rc = read_keys(c, item, ipath, keys, ARRAY_SIZE(keys), &f)))
            return rc;
        for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
            if (!f.val[k])
                return missing(c, item, ipath, keys[k], "gpa and bytes");
        subpath(vpath, sizeof(vpath), ipath, "gpa");
        if ((rc = get_num(c, f.val[K_GPA], vpath, false, 0, UINT64_MAX, &d->gpa)))
            return rc;
        subpath(vpath, sizeof(vpath), ipath, "bytes");
        if ((rc = get_hex(c, f.val[K_BYTES], vpath, &d->bytes)))
            return rc;
        uint64_t mem = c->g->memory;
        if (d->gpa >= mem || d->bytes.len > mem - d->gpa) {
            char ms[32];
            fmt_size(ms, sizeof(ms), mem);
            return fail(c, f.val[K_GPA], "%s (%zu bytes at gpa 0x%llx) extends beyond guest "
                        "memory (%s = 0x%llx); expected gpa + length <= memory", ipath,
                        d->bytes.len, (unsigned long long)d->gpa, ms, (unsigned long long)mem);
        }
        d->line = line_of(item);
        d->column = column_of(item);
    }
    *nr = count;
    return 0;
}

/* ---- guest ---------------------------------------------------------------- */

static int get_mapping(struct ctx *c, yaml_node_t *item, const char *ipath,
                       struct scenario_mapping *m)
{
    static const char *const keys[] = {"gla", "gpa", "size", "rights", "page"};
    enum { K_GLA, K_GPA, K_SIZE, K_RIGHTS, K_PAGE };
    struct fields f;
    char vpath[PATH_MAX_LEN];
    int rc = read_keys(c, item, ipath, keys, ARRAY_SIZE(keys), &f);
    if (rc)
        return rc;
    for (size_t k = 0; k < 3; k++)
        if (!f.val[k])
            return missing(c, item, ipath, keys[k], "gla, gpa and size (rights and page optional)");
    bool pae = c->g->mode == SCENARIO_MODE_PAE32;
    m->page = PAGE_4K;
    if (f.val[K_PAGE]) {
        subpath(vpath, sizeof(vpath), ipath, "page");
        if ((rc = get_num(c, f.val[K_PAGE], vpath, true, 0, UINT64_MAX, &m->page)))
            return rc;
        if (m->page != PAGE_4K && m->page != PAGE_2M && m->page != PAGE_1G)
            return fail(c, f.val[K_PAGE], "%s is %s; expected 4K, 2M or 1G", vpath,
                        show(f.val[K_PAGE]).s);
        if (pae && m->page == PAGE_1G)
            return fail(c, f.val[K_PAGE], "%s is 1G, which pae32 paging does not have; expected "
                        "4K or 2M", vpath);
    }
    char page[16];
    fmt_size(page, sizeof(page), m->page);
    static const int addr_keys[] = {K_GLA, K_GPA, K_SIZE};
    uint64_t *addr[] = {&m->gla, &m->gpa, &m->size};
    for (size_t k = 0; k < 3; k++) {
        const yaml_node_t *v = f.val[addr_keys[k]];
        subpath(vpath, sizeof(vpath), ipath, keys[addr_keys[k]]);
        if ((rc = get_num(c, v, vpath, addr_keys[k] == K_SIZE, 0, UINT64_MAX, addr[k])))
            return rc;
        if (addr_keys[k] == K_SIZE && *addr[k] == 0)
            return fail(c, v, "%s is 0; expected a size > 0, a multiple of %s", vpath, page);
        if (*addr[k] % m->page)
            return fail(c, v, "%s is %s, not a multiple of the page size %s; expected a "
                        "multiple of %s", vpath, show(v).s, page, page);
    }
    /* The range may end at the very top (a kernel at 0xffffffff80000000): last <= 2^64 - 1. */
    if (m->size - 1 > UINT64_MAX - m->gla)
        return fail(c, f.val[K_SIZE], "%s: gla + size overflows 64 bits; expected a range "
                    "that ends by 0xffffffffffffffff", ipath);
    uint64_t last = m->gla + (m->size - 1);
    if (pae && last > 0xffffffffull)
        return fail(c, f.val[K_GLA], "%s covers gla 0x%llx to 0x%llx, beyond 4G; expected "
                    "addresses below 4G in pae32 mode", ipath, (unsigned long long)m->gla,
                    (unsigned long long)last);
    if (!pae) {
        bool low = last < 0x0000800000000000ull;
        bool high = m->gla >= 0xffff800000000000ull;
        if (!low && !high)
            return fail(c, f.val[K_GLA], "%s covers gla 0x%llx to 0x%llx, which is not "
                        "canonical; expected addresses below 0x800000000000 or from "
                        "0xffff800000000000", ipath, (unsigned long long)m->gla,
                        (unsigned long long)last);
    }
    uint64_t mem = c->g->memory;
    if (m->gpa >= mem || m->size > mem - m->gpa) {
        char ms[32];
        fmt_size(ms, sizeof(ms), mem);
        return fail(c, f.val[K_GPA], "%s maps gpa 0x%llx to 0x%llx, beyond guest memory "
                    "(%s = 0x%llx); expected gpa + size <= memory", ipath,
                    (unsigned long long)m->gpa, (unsigned long long)(m->gpa + (m->size - 1)), ms,
                    (unsigned long long)mem);
    }
    m->rights = SCENARIO_RIGHT_R | SCENARIO_RIGHT_W | SCENARIO_RIGHT_X;
    if (f.val[K_RIGHTS]) {
        subpath(vpath, sizeof(vpath), ipath, "rights");
        unsigned bits;
        if ((rc = get_letters(c, f.val[K_RIGHTS], vpath, "rwxu",
                              "letters from r, w, x, u such as \"rw\", \"rx\" or \"rwxu\"", &bits)))
            return rc;
        m->rights = bits | SCENARIO_RIGHT_R; /* rwxu -> bits 1, 2, 4, 8 */
    }
    m->line = line_of(item);
    m->column = column_of(item);
    return 0;
}

struct sorted_mapping {
    uint64_t gla, last;
    size_t index;
};

static int cmp_mapping(const void *a, const void *b)
{
    const struct sorted_mapping *x = a, *y = b;
    if (x->gla != y->gla)
        return x->gla < y->gla ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* gla ranges must be disjoint: sort by gla, compare with the furthest end so far. */
static int check_overlaps(struct ctx *c, const yaml_node_t *list, const char *path)
{
    const struct scenario_guest *g = c->g;
    size_t n = g->nr_mappings;
    struct sorted_mapping *s = calloc(n ? n : 1, sizeof(*s));
    if (!s)
        return fail_nomem(c);
    for (size_t i = 0; i < n; i++)
        s[i] = (struct sorted_mapping){g->mappings[i].gla,
                                       g->mappings[i].gla + (g->mappings[i].size - 1), i};
    qsort(s, n, sizeof(*s), cmp_mapping);
    int rc = 0;
    size_t far = 0; /* the range reaching furthest among s[0..i-1] */
    for (size_t i = 1; i < n && !rc; i++) {
        if (s[i].gla <= s[far].last) {
            size_t a = s[far].index, b = s[i].index;
            size_t later = a > b ? a : b, earlier = a > b ? b : a;
            const struct scenario_mapping *m = &g->mappings[later], *o = &g->mappings[earlier];
            rc = fail(c, node(c, list->data.sequence.items.start[later]),
                      "%s[%zu] (gla 0x%llx to 0x%llx) overlaps %s[%zu] "
                      "(gla 0x%llx to 0x%llx, line %u); expected disjoint gla ranges", path, later,
                      (unsigned long long)m->gla, (unsigned long long)(m->gla + (m->size - 1)),
                      path, earlier, (unsigned long long)o->gla,
                      (unsigned long long)(o->gla + (o->size - 1)), o->line);
        }
        if (s[i].last > s[far].last)
            far = i;
    }
    free(s);
    return rc;
}

/*
 * The guest section, or the introspector's (`intro`: path "introspector", no
 * hypercalls or singlestep key, and token_gpa).  Reads into c->g.
 */
static int parse_guest(struct ctx *c, yaml_node_t *n, const char *path, bool intro)
{
    static const char *const guest_keys[] = {"mode", "memory", "vcpus", "code", "code_bytes",
                                             "entry", "mappings", "data", "registers",
                                             "singlestep", "idt_handler", "hypercalls", NULL,
                                             "online"};
    static const char *const intro_keys[] = {"mode", "memory", "vcpus", "code", "code_bytes",
                                             "entry", "mappings", "data", "registers", NULL,
                                             "idt_handler", NULL, "token_gpa", NULL};
    enum { K_MODE, K_MEMORY, K_VCPUS, K_CODE, K_CODE_BYTES, K_ENTRY, K_MAPPINGS, K_DATA,
           K_REGISTERS, K_SINGLESTEP, K_IDT_HANDLER, K_HYPERCALLS, K_TOKEN_GPA, K_ONLINE };
    const char *const *keys = intro ? intro_keys : guest_keys;
    struct scenario_guest *g = c->g;
    struct fields f;
    char vp[PATH_MAX_LEN];
#define VP(key) (subpath(vp, sizeof(vp), path, key), vp)
    if (intro && n->type == YAML_MAPPING_NODE) {
        /* Keys of guest the introspector cannot have: say why, not just "unknown". */
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            const yaml_node_t *k = node(c, p->key);
            if (scalar_is(k, "hypercalls"))
                return fail(c, k, "'hypercalls' in %s: the introspector always uses the KVM "
                            "hypercall ABI (KVM_HC_MEM_MAP needs it); expected no hypercalls key",
                            path);
            if (scalar_is(k, "singlestep"))
                return fail(c, k, "'singlestep' in %s: the introspector has no monitor, so "
                            "single-step would send no event; expected no singlestep key", path);
        }
    }
    int rc = read_keys(c, n, path, keys, ARRAY_SIZE(guest_keys), &f);
    if (rc)
        return rc;
    g->line = line_of(n);
    g->column = column_of(n);

    unsigned mode = SCENARIO_MODE_LONG;
    if (f.val[K_MODE] && (rc = get_name(c, f.val[K_MODE], VP("mode"), "a guest mode",
                                        mode_names, ARRAY_SIZE(mode_names), &mode)))
        return rc;
    g->mode = (enum scenario_mode)mode;

    g->memory = 16u << 20;
    if (f.val[K_MEMORY]) {
        const yaml_node_t *v = f.val[K_MEMORY];
        if ((rc = get_num(c, v, VP("memory"), true, 0, UINT64_MAX, &g->memory)))
            return rc;
        if (g->memory < SCENARIO_MIN_MEMORY || g->memory > SCENARIO_MAX_MEMORY)
            return fail(c, v, "%s is %s; expected 64K to 1G", vp, show(v).s);
        if (g->memory % PAGE_4K)
            return fail(c, v, "%s is %s, not a multiple of 4K; expected whole 4K pages", vp,
                        show(v).s);
    }

    g->vcpus = 1;
    if (f.val[K_VCPUS] &&
        (rc = get_u32(c, f.val[K_VCPUS], VP("vcpus"), 1, SCENARIO_MAX_VCPUS, &g->vcpus)))
        return rc;
    /* online: vCPUs up at boot; the others wait for the guest's VCPUOP_initialise + VCPUOP_up. */
    g->online = g->vcpus;
    if (f.val[K_ONLINE] &&
        (rc = get_u32(c, f.val[K_ONLINE], VP("online"), 1, g->vcpus, &g->online)))
        return rc;

    /* Each value given, in the order of the format; then what is missing; then cross-checks. */
    if (f.val[K_CODE] && f.val[K_CODE_BYTES]) {
        const yaml_node_t *second =
            f.key[K_CODE]->start_mark.index > f.key[K_CODE_BYTES]->start_mark.index
                ? f.key[K_CODE] : f.key[K_CODE_BYTES];
        return fail(c, second, "both code and code_bytes in %s; expected exactly one of them", path);
    }
    const yaml_node_t *code = f.val[K_CODE] ? f.val[K_CODE] : f.val[K_CODE_BYTES];
    if (f.val[K_CODE]) {
        if ((rc = get_str(c, code, VP("code"), false, &g->code, &g->code_len)))
            return rc;
        if (g->code_len > SCENARIO_MAX_CODE)
            return fail(c, code, "%s is %zu bytes; expected at most 1M (%u bytes)", vp,
                        g->code_len, SCENARIO_MAX_CODE);
    } else if (code && (rc = get_hex(c, code, VP("code_bytes"), &g->code_bytes))) {
        return rc;
    }

    const yaml_node_t *entry = f.val[K_ENTRY];
    uint64_t entry_max = g->mode == SCENARIO_MODE_PAE32 ? 0xffffffffull : UINT64_MAX;
    if (entry && (rc = get_num(c, entry, VP("entry"), false, 0, entry_max, &g->entry)))
        return rc;

    const yaml_node_t *ml = f.val[K_MAPPINGS];
    char mpath[PATH_MAX_LEN];
    subpath(mpath, sizeof(mpath), path, "mappings");
    if (ml) {
        if ((rc = want_list(c, ml, mpath)))
            return rc;
        g->nr_mappings = list_len(ml);
        if (g->nr_mappings == 0)
            return fail(c, ml, "%s is empty; expected at least one mapping", mpath);
        if (!(g->mappings = arena_array(c->s->arena, g->nr_mappings, sizeof(*g->mappings))))
            return fail_nomem(c);
        for (size_t i = 0; i < g->nr_mappings; i++) {
            char ipath[PATH_MAX_LEN];
            itempath(ipath, sizeof(ipath), mpath, i);
            if ((rc = get_mapping(c, node(c, ml->data.sequence.items.start[i]), ipath,
                                  &g->mappings[i])))
                return rc;
        }
        if ((rc = check_overlaps(c, ml, mpath)))
            return rc;
    }
    if (f.val[K_DATA] && (rc = get_data(c, f.val[K_DATA], VP("data"), &g->data, &g->nr_data)))
        return rc;
    if (f.val[K_REGISTERS] &&
        (rc = get_regs(c, f.val[K_REGISTERS], VP("registers"), true, &g->registers)))
        return rc;
    if (f.val[K_SINGLESTEP]) {
        const yaml_node_t *l = f.val[K_SINGLESTEP];
        if ((rc = want_list(c, l, "guest.singlestep")))
            return rc;
        size_t cnt = list_len(l);
        if (cnt && !(g->singlestep = arena_array(c->s->arena, cnt, sizeof(*g->singlestep))))
            return fail_nomem(c);
        for (size_t i = 0; i < cnt; i++) {
            const yaml_node_t *v = node(c, l->data.sequence.items.start[i]);
            char ipath[PATH_MAX_LEN];
            itempath(ipath, sizeof(ipath), "guest.singlestep", i);
            uint32_t vc;
            if ((rc = get_u32(c, v, ipath, 0, g->vcpus - 1, &vc)))
                return rc;
            for (size_t k = 0; k < i; k++)
                if (g->singlestep[k] == vc)
                    return fail(c, v, "%s is %s, already listed; expected each vCPU once", ipath,
                                show(v).s);
            g->singlestep[g->nr_singlestep++] = vc;
        }
    }
    if (f.val[K_IDT_HANDLER] && (rc = get_opt(c, f.val[K_IDT_HANDLER], VP("idt_handler"),
                                              g->mode == SCENARIO_MODE_PAE32 ? 0xffffffffull : UINT64_MAX,
                                              &g->idt_handler)))
        return rc;
    unsigned hc = intro ? SCENARIO_HYPERCALLS_KVM : SCENARIO_HYPERCALLS_XEN;
    if (f.val[K_HYPERCALLS] && (rc = get_name(c, f.val[K_HYPERCALLS], "guest.hypercalls",
                                              "a hypercall interface", hypercall_names,
                                              ARRAY_SIZE(hypercall_names), &hc)))
        return rc;
    g->hypercalls = (enum scenario_hypercalls)hc;
    if (f.val[K_TOKEN_GPA]) {
        const yaml_node_t *v = f.val[K_TOKEN_GPA];
        struct scenario_opt *t = &c->s->introspector.token_gpa;
        if ((rc = get_opt(c, v, VP("token_gpa"), UINT64_MAX, t)))
            return rc;
        if (t->value >= g->memory || g->memory - t->value < 32) {
            char ms[32];
            fmt_size(ms, sizeof(ms), g->memory);
            return fail(c, v, "%s is %s, but the 32-byte token would not fit in the introspector's "
                        "memory (%s = 0x%llx); expected token_gpa + 32 <= memory", vp, show(v).s,
                        ms, (unsigned long long)g->memory);
        }
    }

    if (!code)
        return missing(c, n, path, "code",
                       "exactly one of code (nasm source) or code_bytes (a hex byte string)");
    if (!entry)
        return missing(c, n, path, "entry", "the guest-linear address of the first instruction");
    if (!ml)
        return missing(c, n, path, "mappings", "a list of {gla, gpa, size, rights, page}");

    g->code_line = line_of(code);
    g->code_column = column_of(code);
    bool block = code->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
                 code->data.scalar.style == YAML_FOLDED_SCALAR_STYLE;
    g->code_first_line = g->code_line + (block ? 1 : 0);
    g->entry_line = line_of(entry);
    g->entry_column = column_of(entry);
    const struct scenario_mapping *em = NULL;
    for (size_t i = 0; i < g->nr_mappings && !em; i++)
        if (g->entry >= g->mappings[i].gla && g->entry - g->mappings[i].gla < g->mappings[i].size)
            em = &g->mappings[i];
    if (!em)
        return fail(c, entry, "%s.entry %s is not inside any mapping; expected a gla covered "
                    "by %s", path, show(entry).s, mpath);
    g->entry_gpa = em->gpa + (g->entry - em->gla);
    if (g->code_bytes.len > g->memory - g->entry_gpa)
        return fail(c, code, "%s.code_bytes (%zu bytes at gpa 0x%llx, where entry maps) "
                    "extends beyond %s memory (0x%llx); expected the code to fit", path,
                    g->code_bytes.len, (unsigned long long)g->entry_gpa,
                    intro ? "the introspector's" : "guest", (unsigned long long)g->memory);
    return 0;
#undef VP
}

/* ---- p2m, monitor, limits ------------------------------------------------- */

static int parse_p2m(struct ctx *c, yaml_node_t *n)
{
    static const char *const keys[] = {"default_access", "access"};
    struct scenario_p2m *p = &c->s->p2m;
    struct fields f;
    int rc = read_keys(c, n, "p2m", keys, ARRAY_SIZE(keys), &f);
    if (rc)
        return rc;
    if (f.val[0]) {
        unsigned a;
        if ((rc = get_name(c, f.val[0], "p2m.default_access", "an access type", access_names,
                           SCENARIO_ACCESS_COUNT, &a)))
            return rc;
        if (a == SCENARIO_ACCESS_DEFAULT)
            return fail(c, f.val[0], "p2m.default_access cannot be 'default'; expected one of "
                        "n, r, w, rw, x, rx, wx, rwx, rx2rw, n2rwx");
        p->default_access = (enum scenario_access)a;
    }
    if (f.val[1] && (rc = get_access_ranges(c, f.val[1], "p2m.access", false, &p->access, &p->nr_access)))
        return rc;
    return 0;
}

/* A control register: its name (cr0, cr3, cr4, xcr0) or its write_ctrlreg index 0-3. */
static int get_ctrlreg(struct ctx *c, const yaml_node_t *n, const char *path, uint32_t *out)
{
    int i = n->type == YAML_SCALAR_NODE ? lookup(n, ctrlreg_names, ARRAY_SIZE(ctrlreg_names)) : -1;
    if (i >= 0) {
        *out = (uint32_t)i;
        return 0;
    }
    if (n->type == YAML_SCALAR_NODE && n->data.scalar.length
        && (n->data.scalar.value[0] < '0' || n->data.scalar.value[0] > '9'))
        return fail(c, n, "'%s' is not a control register in %s; expected cr0, cr3, cr4, xcr0 "
                    "or an index 0 to 3", show(n).s, path);
    return get_u32(c, n, path, 0, 3, out);
}

static int parse_ctrlregs(struct ctx *c, const yaml_node_t *list, struct scenario_monitor *m)
{
    static const char *const keys[] = {"register", "sync", "onchangeonly", "mask"};
    int rc = want_list(c, list, "monitor.write_ctrlreg");
    if (rc)
        return rc;
    size_t n = list_len(list);
    if (n && !(m->write_ctrlreg = arena_array(c->s->arena, n, sizeof(*m->write_ctrlreg))))
        return fail_nomem(c);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = node(c, list->data.sequence.items.start[i]);
        char ipath[PATH_MAX_LEN], vpath[PATH_MAX_LEN];
        itempath(ipath, sizeof(ipath), "monitor.write_ctrlreg", i);
        struct fields f;
        if ((rc = read_keys(c, item, ipath, keys, ARRAY_SIZE(keys), &f)))
            return rc;
        struct scenario_ctrlreg *cr = &m->write_ctrlreg[i];
        *cr = (struct scenario_ctrlreg){.sync = true, .line = line_of(item), .column = column_of(item)};
        if (!f.val[0])
            return missing(c, item, ipath, "register", "cr0, cr3, cr4 or xcr0");
        subpath(vpath, sizeof(vpath), ipath, "register");
        if ((rc = get_ctrlreg(c, f.val[0], vpath, &cr->index)))
            return rc;
        for (size_t k = 0; k < i; k++)
            if (m->write_ctrlreg[k].index == cr->index)
                return fail(c, f.val[0], "%s is %s, which monitor.write_ctrlreg[%zu] (line %u) "
                            "already enables; expected each register once", vpath,
                            ctrlreg_names[cr->index], k, m->write_ctrlreg[k].line);
        if (f.val[1] && (subpath(vpath, sizeof(vpath), ipath, "sync"),
                         rc = get_bool(c, f.val[1], vpath, &cr->sync)))
            return rc;
        if (f.val[2] && (subpath(vpath, sizeof(vpath), ipath, "onchangeonly"),
                         rc = get_bool(c, f.val[2], vpath, &cr->onchangeonly)))
            return rc;
        if (f.val[3] && (subpath(vpath, sizeof(vpath), ipath, "mask"),
                         rc = get_num(c, f.val[3], vpath, false, 0, UINT64_MAX, &cr->mask)))
            return rc;
        m->nr_write_ctrlreg++;
    }
    return 0;
}

static bool msr_in_range(uint64_t msr)
{
    return msr <= 0x1fff || (msr >= 0x40000000 && msr <= 0x40001fff)
           || (msr >= 0xc0000000 && msr <= 0xc0001fff);
}

static int parse_msrs(struct ctx *c, const yaml_node_t *list, struct scenario_monitor *m)
{
    static const char *const keys[] = {"msr", "onchangeonly"};
    int rc = want_list(c, list, "monitor.mov_to_msr");
    if (rc)
        return rc;
    size_t n = list_len(list);
    if (n && !(m->mov_to_msr = arena_array(c->s->arena, n, sizeof(*m->mov_to_msr))))
        return fail_nomem(c);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = node(c, list->data.sequence.items.start[i]);
        char ipath[PATH_MAX_LEN], vpath[PATH_MAX_LEN];
        itempath(ipath, sizeof(ipath), "monitor.mov_to_msr", i);
        struct fields f;
        if ((rc = read_keys(c, item, ipath, keys, ARRAY_SIZE(keys), &f)))
            return rc;
        struct scenario_msr *ms = &m->mov_to_msr[i];
        *ms = (struct scenario_msr){.line = line_of(item), .column = column_of(item)};
        if (!f.val[0])
            return missing(c, item, ipath, "msr", "an MSR index");
        subpath(vpath, sizeof(vpath), ipath, "msr");
        uint64_t v;
        if ((rc = get_num(c, f.val[0], vpath, false, 0, UINT64_MAX, &v)))
            return rc;
        if (!msr_in_range(v))
            return fail(c, f.val[0], "%s is %s; expected an MSR in 0-0x1fff, 0x40000000-0x40001fff "
                        "or 0xc0000000-0xc0001fff (Xen refuses others with EINVAL)", vpath, show(f.val[0]).s);
        ms->msr = (uint32_t)v;
        for (size_t k = 0; k < i; k++)
            if (m->mov_to_msr[k].msr == ms->msr)
                return fail(c, f.val[0], "%s is %s, which monitor.mov_to_msr[%zu] (line %u) already "
                            "enables; expected each MSR once", vpath, show(f.val[0]).s, k,
                            m->mov_to_msr[k].line);
        if (f.val[1] && (subpath(vpath, sizeof(vpath), ipath, "onchangeonly"),
                         rc = get_bool(c, f.val[1], vpath, &ms->onchangeonly)))
            return rc;
        m->nr_mov_to_msr++;
    }
    return 0;
}

/* monitor.guest_request: a boolean (sync, kernel only) or {sync, allow_userspace}. */
static int parse_guest_request(struct ctx *c, yaml_node_t *n, struct scenario_monitor *m)
{
    static const char *const keys[] = {"sync", "allow_userspace"};
    m->guest_request_sync = true;
    m->guest_request_line = line_of(n);
    m->guest_request_column = column_of(n);
    if (n->type != YAML_MAPPING_NODE)
        return get_bool(c, n, "monitor.guest_request", &m->guest_request);
    struct fields f;
    int rc = read_keys(c, n, "monitor.guest_request", keys, ARRAY_SIZE(keys), &f);
    if (rc)
        return rc;
    m->guest_request = true;
    if (f.val[0] && (rc = get_bool(c, f.val[0], "monitor.guest_request.sync", &m->guest_request_sync)))
        return rc;
    if (f.val[1] && (rc = get_bool(c, f.val[1], "monitor.guest_request.allow_userspace",
                                   &m->guest_request_userspace)))
        return rc;
    return 0;
}

static int parse_monitor(struct ctx *c, yaml_node_t *n)
{
    static const char *const keys[] = {"ring", "version", "access_required", "write_ctrlreg",
                                       "mov_to_msr", "software_breakpoint", "singlestep",
                                       "control_register_deferral", "guest_request"};
    enum { K_RING, K_VERSION, K_ACCESS_REQUIRED, K_WRITE_CTRLREG, K_MOV_TO_MSR, K_SWBP,
           K_SINGLESTEP, K_DEFERRAL, K_GUEST_REQUEST };
    struct scenario_monitor *m = &c->s->monitor;
    struct fields f;
    int rc = read_keys(c, n, "monitor", keys, ARRAY_SIZE(keys), &f);
    if (rc)
        return rc;
    if (f.val[K_RING] && (rc = get_bool(c, f.val[K_RING], "monitor.ring", &m->ring)))
        return rc;
    if (f.val[K_VERSION]) {
        const yaml_node_t *v = f.val[K_VERSION];
        if ((rc = get_u32(c, v, "monitor.version", 0, UINT32_MAX, &m->version)))
            return rc;
        if (m->version != 1 && m->version != 7)
            return fail(c, v, "monitor.version is %s; expected 1 or 7", show(v).s);
    }
    if (f.val[K_ACCESS_REQUIRED] &&
        (rc = get_bool(c, f.val[K_ACCESS_REQUIRED], "monitor.access_required", &m->access_required)))
        return rc;
    if (f.val[K_WRITE_CTRLREG] && (rc = parse_ctrlregs(c, f.val[K_WRITE_CTRLREG], m)))
        return rc;
    if (f.val[K_MOV_TO_MSR] && (rc = parse_msrs(c, f.val[K_MOV_TO_MSR], m)))
        return rc;
    if (f.val[K_SWBP] && (rc = get_bool(c, f.val[K_SWBP], "monitor.software_breakpoint",
                                        &m->software_breakpoint)))
        return rc;
    if (f.val[K_SINGLESTEP] &&
        (rc = get_bool(c, f.val[K_SINGLESTEP], "monitor.singlestep", &m->singlestep)))
        return rc;
    if (f.val[K_DEFERRAL] && (rc = get_bool(c, f.val[K_DEFERRAL], "monitor.control_register_deferral",
                                            &m->control_register_deferral)))
        return rc;
    if (f.val[K_GUEST_REQUEST] && (rc = parse_guest_request(c, f.val[K_GUEST_REQUEST], m)))
        return rc;
    return 0;
}

/* paging.nominate / paging.evict: a list of gfns within memory, each once. */
static int get_gfns(struct ctx *c, const yaml_node_t *n, const char *path,
                    struct scenario_gfn **out, size_t *nr)
{
    int rc = want_list(c, n, path);
    if (rc)
        return rc;
    size_t cnt = list_len(n);
    if (cnt && !(*out = arena_array(c->s->arena, cnt, sizeof(**out))))
        return fail_nomem(c);
    uint64_t nr_gfns = c->s->guest.memory / PAGE_4K;
    for (size_t i = 0; i < cnt; i++) {
        const yaml_node_t *v = node(c, n->data.sequence.items.start[i]);
        char ipath[PATH_MAX_LEN];
        itempath(ipath, sizeof(ipath), path, i);
        struct scenario_gfn *g = &(*out)[i];
        if ((rc = get_num(c, v, ipath, false, 0, UINT64_MAX, &g->gfn)))
            return rc;
        if (g->gfn >= nr_gfns) {
            char mem[32];
            fmt_size(mem, sizeof(mem), c->s->guest.memory);
            return fail(c, v, "%s is gfn %s, beyond guest memory (%s: gfns 0x0 to 0x%llx); "
                        "expected a gfn below 0x%llx", ipath, show(v).s, mem,
                        (unsigned long long)(nr_gfns - 1), (unsigned long long)nr_gfns);
        }
        for (size_t k = 0; k < i; k++)
            if ((*out)[k].gfn == g->gfn)
                return fail(c, v, "%s is gfn 0x%llx, already listed as %s[%zu] (line %u); "
                            "expected each gfn once", ipath, (unsigned long long)g->gfn, path, k,
                            (*out)[k].line);
        g->line = line_of(v);
        g->column = column_of(v);
    }
    *nr = cnt;
    return 0;
}

/* A ring section's `ring` (default true) and `version` (1 or 7, default monitor.version). */
static int get_ring_opts(struct ctx *c, const char *section, yaml_node_t *ring_node,
                         const yaml_node_t *version_node, bool *ring, uint32_t *version)
{
    char path[PATH_MAX_LEN];
    int rc;
    *ring = true;
    *version = c->s->monitor.version;
    snprintf(path, sizeof(path), "%s.ring", section);
    if (ring_node && (rc = get_bool(c, ring_node, path, ring)))
        return rc;
    if (version_node) {
        snprintf(path, sizeof(path), "%s.version", section);
        if ((rc = get_u32(c, version_node, path, 0, UINT32_MAX, version)))
            return rc;
        if (*version != 1 && *version != 7)
            return fail(c, version_node, "%s is %s; expected 1 or 7", path, show(version_node).s);
    }
    return 0;
}

static int parse_paging(struct ctx *c, yaml_node_t *n)
{
    static const char *const keys[] = {"ring", "version", "nominate", "evict"};
    enum { K_RING, K_VERSION, K_NOMINATE, K_EVICT };
    struct scenario_paging *p = &c->s->paging;
    struct fields f;
    int rc = read_keys(c, n, "paging", keys, ARRAY_SIZE(keys), &f);
    if (rc)
        return rc;
    p->given = true;
    p->line = line_of(n);
    p->column = column_of(n);
    if ((rc = get_ring_opts(c, "paging", f.val[K_RING], f.val[K_VERSION], &p->ring, &p->version)))
        return rc;
    if (f.val[K_NOMINATE] &&
        (rc = get_gfns(c, f.val[K_NOMINATE], "paging.nominate", &p->nominate, &p->nr_nominate)))
        return rc;
    if (f.val[K_EVICT] &&
        (rc = get_gfns(c, f.val[K_EVICT], "paging.evict", &p->evict, &p->nr_evict)))
        return rc;
    for (size_t i = 0; i < p->nr_evict; i++) {
        bool nominated = false;
        for (size_t k = 0; k < p->nr_nominate && !nominated; k++)
            nominated = p->nominate[k].gfn == p->evict[i].gfn;
        if (!nominated)
            return fail_at(c, p->evict[i].line, p->evict[i].column, "paging.evict[%zu] is gfn "
                           "0x%llx, which paging.nominate does not list; expected only nominated "
                           "gfns (Xen's evict needs a paging_out page: EBUSY)", i,
                           (unsigned long long)p->evict[i].gfn);
    }
    return 0;
}

/* sharing.share: a list of {source, client}, two different gfns within memory. */
static int get_shares(struct ctx *c, const yaml_node_t *n, struct scenario_sharing *sh)
{
    static const char *const keys[] = {"source", "client"};
    int rc = want_list(c, n, "sharing.share");
    if (rc)
        return rc;
    size_t cnt = list_len(n);
    if (cnt && !(sh->share = arena_array(c->s->arena, cnt, sizeof(*sh->share))))
        return fail_nomem(c);
    uint64_t nr_gfns = c->s->guest.memory / PAGE_4K;
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *item = node(c, n->data.sequence.items.start[i]);
        struct scenario_share *p = &sh->share[i];
        char ipath[PATH_MAX_LEN], vpath[PATH_MAX_LEN];
        struct fields f;
        itempath(ipath, sizeof(ipath), "sharing.share", i);
        if ((rc = read_keys(c, item, ipath, keys, ARRAY_SIZE(keys), &f)))
            return rc;
        for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
            if (!f.val[k])
                return missing(c, item, ipath, keys[k], "source and client (two gfns)");
        uint64_t *gfn[] = {&p->source, &p->client};
        for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
            subpath(vpath, sizeof(vpath), ipath, keys[k]);
            if ((rc = get_num(c, f.val[k], vpath, false, 0, UINT64_MAX, gfn[k])))
                return rc;
            if (*gfn[k] >= nr_gfns) {
                char mem[32];
                fmt_size(mem, sizeof(mem), c->s->guest.memory);
                return fail(c, f.val[k], "%s is gfn %s, beyond guest memory (%s: gfns 0x0 to "
                            "0x%llx); expected a gfn below 0x%llx", vpath, show(f.val[k]).s, mem,
                            (unsigned long long)(nr_gfns - 1), (unsigned long long)nr_gfns);
            }
        }
        if (p->source == p->client)
            return fail(c, f.val[1], "%s.client is gfn 0x%llx, the same as its source; expected "
                        "two different gfns (a gfn always shares its own page)", ipath,
                        (unsigned long long)p->client);
        p->line = line_of(item);
        p->column = column_of(item);
        sh->nr_share++;
    }
    return 0;
}

static int parse_sharing(struct ctx *c, yaml_node_t *n)
{
    static const char *const keys[] = {"ring", "version", "share", "max_pages"};
    enum { K_RING, K_VERSION, K_SHARE, K_MAX_PAGES };
    struct scenario_sharing *sh = &c->s->sharing;
    struct fields f;
    int rc = read_keys(c, n, "sharing", keys, ARRAY_SIZE(keys), &f);
    if (rc)
        return rc;
    sh->given = true;
    sh->line = line_of(n);
    sh->column = column_of(n);
    if ((rc = get_ring_opts(c, "sharing", f.val[K_RING], f.val[K_VERSION], &sh->ring, &sh->version)))
        return rc;
    if (f.val[K_SHARE] && (rc = get_shares(c, f.val[K_SHARE], sh)))
        return rc;
    const yaml_node_t *mp = f.val[K_MAX_PAGES];
    if (mp) {
        if (scalar_is(mp, "tot_pages")) {
            sh->max_pages_tot = true;
            sh->max_pages = (struct scenario_opt){.set = true, .line = line_of(mp),
                                                  .column = column_of(mp)};
        } else if (mp->type == YAML_SCALAR_NODE && mp->data.scalar.length &&
                   (mp->data.scalar.value[0] < '0' || mp->data.scalar.value[0] > '9')) {
            return fail(c, mp, "'%s' is neither a number nor tot_pages in sharing.max_pages; "
                        "expected a number of pages, or tot_pages (the domain's tot_pages after "
                        "the shares)", show(mp).s);
        } else if ((rc = get_opt(c, mp, "sharing.max_pages", UINT64_MAX, &sh->max_pages))) {
            return rc;
        }
    }
    return 0;
}

/* ---- altp2m ---------------------------------------------------------------- */

/* A gfn within guest memory (`what` names it in the message). */
static int get_gfn(struct ctx *c, const yaml_node_t *v, const char *path, uint64_t *out)
{
    uint64_t nr_gfns = c->s->guest.memory / PAGE_4K;
    int rc = get_num(c, v, path, false, 0, UINT64_MAX, out);
    if (rc)
        return rc;
    if (*out >= nr_gfns) {
        char mem[32];
        fmt_size(mem, sizeof(mem), c->s->guest.memory);
        return fail(c, v, "%s is gfn %s, beyond guest memory (%s: gfns 0x0 to 0x%llx); expected "
                    "a gfn below 0x%llx", path, show(v).s, mem, (unsigned long long)(nr_gfns - 1),
                    (unsigned long long)nr_gfns);
    }
    return 0;
}

/*
 * altp2m.views[i].change_gfn (`view` = i + 1: items {gfn, to}) or
 * respond.change_gfn (`view` = 0: items {view, gfn, to}).  `to` is a gfn or
 * `none` (INVALID_GFN: the entry is removed).
 */
static int get_change_gfns(struct ctx *c, const yaml_node_t *n, const char *path, uint32_t view,
                           struct scenario_change_gfn **out, size_t *nr)
{
    static const char *const keys[] = {"gfn", "to", "view"};
    enum { K_GFN, K_TO, K_VIEW };
    size_t nr_keys = view ? 2 : 3;
    const char *needed = view ? "gfn and to (a gfn, or none)" : "view, gfn and to (a gfn, or none)";
    int rc = want_list(c, n, path);
    if (rc)
        return rc;
    size_t count = list_len(n);
    if (count && !(*out = arena_array(c->s->arena, count, sizeof(**out))))
        return fail_nomem(c);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = node(c, n->data.sequence.items.start[i]);
        struct scenario_change_gfn *g = &(*out)[i];
        char ipath[PATH_MAX_LEN], vpath[PATH_MAX_LEN];
        struct fields f;
        itempath(ipath, sizeof(ipath), path, i);
        if ((rc = read_keys(c, item, ipath, keys, nr_keys, &f)))
            return rc;
        if (!view && !f.val[K_VIEW])
            return missing(c, item, ipath, "view", needed);
        for (size_t k = 0; k < 2; k++)
            if (!f.val[k])
                return missing(c, item, ipath, keys[k], needed);
        g->view = view;
        if (!view) {
            subpath(vpath, sizeof(vpath), ipath, "view");
            if ((rc = get_view(c, f.val[K_VIEW], vpath, false, &g->view)))
                return rc;
        }
        subpath(vpath, sizeof(vpath), ipath, "gfn");
        if ((rc = get_gfn(c, f.val[K_GFN], vpath, &g->gfn)))
            return rc;
        subpath(vpath, sizeof(vpath), ipath, "to");
        const yaml_node_t *to = f.val[K_TO];
        if (scalar_is(to, "none")) {
            g->to = SCENARIO_INVALID_GFN;
        } else if (to->type == YAML_SCALAR_NODE && to->data.scalar.length &&
                   (to->data.scalar.value[0] < '0' || to->data.scalar.value[0] > '9')) {
            return fail(c, to, "'%s' is neither a gfn nor none in %s; expected a gfn whose frame "
                        "the view shows at %s.gfn, or none (remove the view's entry)", show(to).s,
                        vpath, ipath);
        } else if ((rc = get_gfn(c, to, vpath, &g->to))) {
            return rc;
        }
        g->line = line_of(item);
        g->column = column_of(item);
    }
    *nr = count;
    return 0;
}

static int parse_altp2m_view(struct ctx *c, yaml_node_t *item, const char *ipath, uint32_t view,
                             struct scenario_altp2m_view *v)
{
    static const char *const keys[] = {"default_access", "access", "change_gfn", "visible"};
    enum { K_DEFAULT_ACCESS, K_ACCESS, K_CHANGE_GFN, K_VISIBLE };
    struct fields f;
    char vpath[PATH_MAX_LEN];
    int rc = read_keys(c, item, ipath, keys, ARRAY_SIZE(keys), &f);
    if (rc)
        return rc;
    v->line = line_of(item);
    v->column = column_of(item);
    v->default_access = SCENARIO_ACCESS_RWX;
    v->visible = true;
    if (f.val[K_DEFAULT_ACCESS] && scalar_is(f.val[K_DEFAULT_ACCESS], "copy")) {
        v->copy = true; /* a copy of the host p2m: its access per gfn and its default */
    } else if (f.val[K_DEFAULT_ACCESS]) {
        unsigned a;
        subpath(vpath, sizeof(vpath), ipath, "default_access");
        if ((rc = get_name(c, f.val[K_DEFAULT_ACCESS], vpath, "an access type", access_names,
                           SCENARIO_ACCESS_COUNT, &a)))
            return rc;
        if (a == SCENARIO_ACCESS_DEFAULT)
            return fail(c, f.val[K_DEFAULT_ACCESS], "%s cannot be 'default'; expected copy or one of n, "
                        "r, w, rw, x, rx, wx, rwx, rx2rw, n2rwx", vpath);
        v->default_access = (enum scenario_access)a;
    }
    subpath(vpath, sizeof(vpath), ipath, "access");
    if (f.val[K_ACCESS] &&
        (rc = get_access_ranges(c, f.val[K_ACCESS], vpath, false, &v->access, &v->nr_access)))
        return rc;
    for (size_t i = 0; i < v->nr_access; i++)
        v->access[i].view = view;
    subpath(vpath, sizeof(vpath), ipath, "change_gfn");
    if (f.val[K_CHANGE_GFN] && (rc = get_change_gfns(c, f.val[K_CHANGE_GFN], vpath, view,
                                                     &v->change_gfn, &v->nr_change_gfn)))
        return rc;
    subpath(vpath, sizeof(vpath), ipath, "visible");
    if (f.val[K_VISIBLE] && (rc = get_bool(c, f.val[K_VISIBLE], vpath, &v->visible)))
        return rc;
    return 0;
}

/* altp2m.vcpus: a list of {vcpu, view}, each vCPU once. */
static int get_vcpu_views(struct ctx *c, const yaml_node_t *n, struct scenario_altp2m *a)
{
    static const char *const keys[] = {"vcpu", "view"};
    int rc = want_list(c, n, "altp2m.vcpus");
    if (rc)
        return rc;
    size_t count = list_len(n);
    if (count && !(a->vcpus = arena_array(c->s->arena, count, sizeof(*a->vcpus))))
        return fail_nomem(c);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = node(c, n->data.sequence.items.start[i]);
        struct scenario_vcpu_view *vv = &a->vcpus[i];
        char ipath[PATH_MAX_LEN], vpath[PATH_MAX_LEN];
        struct fields f;
        itempath(ipath, sizeof(ipath), "altp2m.vcpus", i);
        if ((rc = read_keys(c, item, ipath, keys, ARRAY_SIZE(keys), &f)))
            return rc;
        for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
            if (!f.val[k])
                return missing(c, item, ipath, keys[k], "vcpu and view");
        subpath(vpath, sizeof(vpath), ipath, "vcpu");
        if ((rc = get_u32(c, f.val[0], vpath, 0, UINT32_MAX, &vv->vcpu)))
            return rc;
        if (vv->vcpu >= c->s->guest.vcpus)
            return fail(c, f.val[0], "%s is %s, but the guest has %u vcpu%s; expected 0 to %u",
                        vpath, show(f.val[0]).s, c->s->guest.vcpus,
                        c->s->guest.vcpus == 1 ? "" : "s", c->s->guest.vcpus - 1);
        for (size_t k = 0; k < i; k++)
            if (a->vcpus[k].vcpu == vv->vcpu)
                return fail(c, f.val[0], "%s is vcpu %u, already given a view by "
                            "altp2m.vcpus[%zu] (line %u); expected each vcpu once", vpath,
                            vv->vcpu, k, a->vcpus[k].line);
        subpath(vpath, sizeof(vpath), ipath, "view");
        if ((rc = get_view(c, f.val[1], vpath, true, &vv->view)))
            return rc;
        vv->line = line_of(item);
        vv->column = column_of(item);
        a->nr_vcpus++;
    }
    return 0;
}

static int parse_altp2m(struct ctx *c, yaml_node_t *n)
{
    static const char *const keys[] = {"mode", "views", "view", "vcpus"};
    enum { K_MODE, K_VIEWS, K_VIEW, K_VCPUS };
    static const char *const altp2m_mode_names[] = {NULL, "mixed", "external", "limited"};
    struct scenario_altp2m *a = &c->s->altp2m;
    struct fields f;
    int rc = read_keys(c, n, "altp2m", keys, ARRAY_SIZE(keys), &f);
    if (rc)
        return rc;
    a->given = true;
    a->line = line_of(n);
    a->column = column_of(n);
    if (!f.val[K_MODE])
        return missing(c, n, "altp2m", "mode", "the altp2m mode: mixed, external or limited");
    unsigned mode;
    if ((rc = get_name(c, f.val[K_MODE], "altp2m.mode", "an altp2m mode", altp2m_mode_names,
                       ARRAY_SIZE(altp2m_mode_names), &mode)))
        return rc;
    a->mode = (enum scenario_altp2m_mode)mode;
    const yaml_node_t *vl = f.val[K_VIEWS];
    if (vl) {
        if ((rc = want_list(c, vl, "altp2m.views")))
            return rc;
        size_t count = list_len(vl);
        if (count > SCENARIO_MAX_ALTP2M_VIEWS)
            return fail(c, node(c, vl->data.sequence.items.start[SCENARIO_MAX_ALTP2M_VIEWS]),
                        "altp2m.views has %zu views; expected at most %u (views 1 to %u: Xen has "
                        "10 with view 0)", count, SCENARIO_MAX_ALTP2M_VIEWS,
                        SCENARIO_MAX_ALTP2M_VIEWS);
        if (count && !(a->views = arena_array(c->s->arena, count, sizeof(*a->views))))
            return fail_nomem(c);
        /* Every view exists before any item names one (change_gfn may name a later view's gfn). */
        a->nr_views = count;
        for (size_t i = 0; i < count; i++) {
            char ipath[PATH_MAX_LEN];
            itempath(ipath, sizeof(ipath), "altp2m.views", i);
            if ((rc = parse_altp2m_view(c, node(c, vl->data.sequence.items.start[i]), ipath,
                                        (uint32_t)i + 1, &a->views[i])))
                return rc;
        }
    }
    if (f.val[K_VIEW]) {
        const yaml_node_t *v = f.val[K_VIEW];
        uint32_t view;
        if ((rc = get_view(c, v, "altp2m.view", true, &view)))
            return rc;
        if (view && !a->views[view - 1].visible)
            return fail(c, v, "altp2m.view is view %u, which is not visible (altp2m.views[%u]."
                        "visible: false), and xc_altp2m_switch_to_view refuses an invisible view; "
                        "expected a visible view, or altp2m.vcpus for a per-vCPU start", view,
                        view - 1);
        a->view = (struct scenario_opt){.set = true, .value = view, .line = line_of(v),
                                        .column = column_of(v)};
    }
    if (f.val[K_VCPUS] && (rc = get_vcpu_views(c, f.val[K_VCPUS], a)))
        return rc;
    return 0;
}

/* The introspector section: a second domain's guest, and where its map token goes. */
static int parse_introspector(struct ctx *c, yaml_node_t *n)
{
    struct scenario_introspector *in = &c->s->introspector;
    in->given = true;
    in->line = line_of(n);
    in->column = column_of(n);
    c->g = &in->guest;
    int rc = parse_guest(c, n, "introspector", true);
    c->g = &c->s->guest;
    return rc;
}

static int parse_limits(struct ctx *c, yaml_node_t *n)
{
    static const char *const keys[] = {"instructions"};
    struct fields f;
    int rc = read_keys(c, n, "limits", keys, ARRAY_SIZE(keys), &f);
    if (rc)
        return rc;
    if (f.val[0] && (rc = get_num(c, f.val[0], "limits.instructions", false, 1,
                                  SCENARIO_MAX_INSTRUCTIONS, &c->s->instruction_limit)))
        return rc;
    return 0;
}

/* ---- client ---------------------------------------------------------------- */

static int parse_match(struct ctx *c, yaml_node_t *n, const char *path, struct scenario_event *ev)
{
    struct fields f;
    int rc = read_keys(c, n, path, match_field_names, SCENARIO_MATCH_FIELD_COUNT, &f);
    if (rc)
        return rc;
    size_t count = map_len(n);
    if (f.val[SCENARIO_MATCH_REG]) {
        char rpath[PATH_MAX_LEN];
        subpath(rpath, sizeof(rpath), path, "regs");
        if ((rc = want_map(c, f.val[SCENARIO_MATCH_REG], rpath)))
            return rc;
        count += map_len(f.val[SCENARIO_MATCH_REG]);
    }
    if (!(ev->match = arena_array(c->s->arena, count, sizeof(*ev->match))))
        return fail_nomem(c);
    /* In file order, so the runner reports mismatches in the order they were written. */
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
        int field = lookup(k, match_field_names, SCENARIO_MATCH_FIELD_COUNT);
        char vpath[PATH_MAX_LEN];
        subpath(vpath, sizeof(vpath), path, match_field_names[field]);
        if (field == SCENARIO_MATCH_REG) {
            struct scenario_regs regs = {0};
            if ((rc = get_regs(c, v, vpath, false, &regs)))
                return rc;
            for (size_t i = 0; i < regs.n; i++)
                ev->match[ev->nr_match++] = (struct scenario_match){
                    .field = SCENARIO_MATCH_REG, .reg = regs.v[i].reg, .value = regs.v[i].value,
                    .line = regs.v[i].line, .column = regs.v[i].column};
            continue;
        }
        struct scenario_match *m = &ev->match[ev->nr_match];
        unsigned u = 0;
        uint32_t u32 = 0;
        bool b = false;
        switch ((enum scenario_match_field)field) {
        case SCENARIO_MATCH_REASON:
            rc = get_reason(c, v, vpath, &u);
            m->value = u;
            break;
        case SCENARIO_MATCH_VCPU:
            if (!(rc = get_u32(c, v, vpath, 0, UINT32_MAX, &u32)) && u32 >= c->s->guest.vcpus)
                rc = fail(c, v, "%s is %s, but the guest has %u vcpu%s; expected 0 to %u", vpath,
                          show(v).s, c->s->guest.vcpus, c->s->guest.vcpus == 1 ? "" : "s",
                          c->s->guest.vcpus - 1);
            m->value = u32;
            break;
        case SCENARIO_MATCH_FLAGS:
            rc = get_flags(c, v, vpath, &u32);
            m->value = u32;
            break;
        case SCENARIO_MATCH_ALTP2M_IDX:
            rc = get_num(c, v, vpath, false, 0, 0xffff, &m->value);
            break;
        case SCENARIO_MATCH_GFN:
        case SCENARIO_MATCH_GLA:
            rc = get_num(c, v, vpath, false, 0, UINT64_MAX, &m->value);
            break;
        case SCENARIO_MATCH_OFFSET:
            rc = get_num(c, v, vpath, false, 0, 0xfff, &m->value);
            break;
        case SCENARIO_MATCH_ACCESS:
            rc = get_letters(c, v, vpath, "rwx", "letters from r, w, x such as \"w\" or \"rw\"", &u);
            m->value = u;
            break;
        case SCENARIO_MATCH_GLA_VALID:
            rc = get_bool(c, v, vpath, &b);
            m->value = b;
            break;
        case SCENARIO_MATCH_FAULT:
            rc = get_name(c, v, vpath, "a fault kind", fault_names, ARRAY_SIZE(fault_names), &u);
            if (!rc)
                m->value = fault_values[u];
            break;
        case SCENARIO_MATCH_INDEX:
            rc = get_ctrlreg(c, v, vpath, &u32);
            m->value = u32;
            break;
        case SCENARIO_MATCH_NEW_VALUE:
        case SCENARIO_MATCH_OLD_VALUE:
            rc = get_num(c, v, vpath, false, 0, UINT64_MAX, &m->value);
            break;
        case SCENARIO_MATCH_MSR:
            rc = get_num(c, v, vpath, false, 0, UINT32_MAX, &m->value);
            break;
        case SCENARIO_MATCH_INSN_LENGTH:
            rc = get_num(c, v, vpath, false, 0, 15, &m->value);
            break;
        case SCENARIO_MATCH_TYPE:
            rc = get_num(c, v, vpath, false, 0, 7, &m->value);
            break;
        case SCENARIO_MATCH_P2MT:
            rc = get_p2mt(c, v, vpath, &u32);
            m->value = u32;
            break;
        case SCENARIO_MATCH_PAGING_FLAGS:
            rc = get_paging_flags(c, v, vpath, &m->value);
            break;
        case SCENARIO_MATCH_REG:
        case SCENARIO_MATCH_FIELD_COUNT:
            break;
        }
        if (rc)
            return rc;
        m->field = (enum scenario_match_field)field;
        m->line = line_of(v);
        m->column = column_of(v);
        ev->nr_match++;
    }
    return 0;
}

static int parse_inject(struct ctx *c, yaml_node_t *n, const char *path, struct scenario_response *r)
{
    static const char *const keys[] = {"vector", "type", "error_code", "insn_length", "cr2"};
    struct fields f;
    char vpath[PATH_MAX_LEN];
    int rc = read_keys(c, n, path, keys, ARRAY_SIZE(keys), &f);
    if (rc)
        return rc;
    if (!f.val[0])
        return missing(c, n, path, "vector", "the vector to inject, 0 to 255");
    r->inject.set = true;
    r->inject.line = line_of(n);
    r->inject.column = column_of(n);
#define VPATH(key) (subpath(vpath, sizeof(vpath), path, key), vpath)
    if ((rc = get_u32(c, f.val[0], VPATH("vector"), 0, 255, &r->inject.vector)))
        return rc;
    if (f.val[1] && (rc = get_opt(c, f.val[1], VPATH("type"), 7, &r->inject.type)))
        return rc;
    if (f.val[2] && (rc = get_opt(c, f.val[2], VPATH("error_code"), UINT32_MAX, &r->inject.error_code)))
        return rc;
    if (f.val[3] && (rc = get_opt(c, f.val[3], VPATH("insn_length"), 15, &r->inject.insn_length)))
        return rc;
    if (f.val[4] && (rc = get_opt(c, f.val[4], VPATH("cr2"), UINT64_MAX, &r->inject.cr2)))
        return rc;
#undef VPATH
    return 0;
}

static int parse_response(struct ctx *c, yaml_node_t *n, const char *path,
                          struct scenario_response *r)
{
    static const char *const keys[] = {"flags", "altp2m_idx", "emul_read_data", "emul_read_size",
                                       "set_access", "registers", "echo", "version", "vcpu_id",
                                       "defer", "no_response", "inject", "load", "load_bytes",
                                       "paging_flags", "max_pages", "add_pages",
                                       "altp2m_access", "change_gfn", "snapshot"};
    enum { K_FLAGS, K_ALTP2M_IDX, K_EMUL_READ_DATA, K_EMUL_READ_SIZE, K_SET_ACCESS,
           K_REGISTERS, K_ECHO, K_VERSION, K_VCPU_ID, K_DEFER, K_NO_RESPONSE, K_INJECT, K_LOAD,
           K_LOAD_BYTES, K_PAGING_FLAGS, K_MAX_PAGES, K_ADD_PAGES, K_ALTP2M_ACCESS, K_CHANGE_GFN,
           K_SNAPSHOT };
    struct fields f;
    char vpath[PATH_MAX_LEN];
    int rc = read_keys(c, n, path, keys, ARRAY_SIZE(keys), &f);
    if (rc)
        return rc;
    r->line = line_of(n);
    r->column = column_of(n);
#define VPATH(key) (subpath(vpath, sizeof(vpath), path, key), vpath)
    if (f.val[K_NO_RESPONSE] &&
        (rc = get_bool(c, f.val[K_NO_RESPONSE], VPATH("no_response"), &r->no_response)))
        return rc;
    if (r->no_response)
        for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
            if (k != K_NO_RESPONSE && f.key[k])
                return fail(c, f.key[k], "'%s' in %s has no effect with no_response: true; "
                            "expected no other key", keys[k], path);
    if (f.val[K_SNAPSHOT]) {
        static const char *const snapshot_names[] = {"take", "restore"};
        unsigned what = 0;
        if ((rc = get_name(c, f.val[K_SNAPSHOT], VPATH("snapshot"), "a snapshot action",
                           snapshot_names, ARRAY_SIZE(snapshot_names), &what)))
            return rc;
        r->snapshot = what == 0 ? SCENARIO_SNAPSHOT_TAKE : SCENARIO_SNAPSHOT_RESTORE;
        if (r->snapshot == SCENARIO_SNAPSHOT_RESTORE)
            for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
                if (k != K_SNAPSHOT && f.key[k])
                    return fail(c, f.key[k], "'%s' in %s has no effect with snapshot: restore (the "
                                "machine goes back instead of being answered); expected no other key",
                                keys[k], path);
    }
    if (f.val[K_FLAGS] && (rc = get_flags(c, f.val[K_FLAGS], VPATH("flags"), &r->flags)))
        return rc;
    if (f.val[K_ALTP2M_IDX] &&
        (rc = get_opt(c, f.val[K_ALTP2M_IDX], VPATH("altp2m_idx"), 0xffff, &r->altp2m_idx)))
        return rc;
    if (f.val[K_EMUL_READ_DATA]) {
        const yaml_node_t *v = f.val[K_EMUL_READ_DATA];
        if ((rc = get_hex(c, v, VPATH("emul_read_data"), &r->emul_read_data)))
            return rc;
        size_t cap = c->s->monitor.version == 1 ? 252 : 340;
        if (r->emul_read_data.len > cap)
            return fail(c, v, "%s is %zu bytes; expected at most %zu (the capacity of "
                        "data.emul.read in interface version %u)", vpath, r->emul_read_data.len,
                        cap, c->s->monitor.version);
    }
    if (f.val[K_EMUL_READ_SIZE] && (rc = get_opt(c, f.val[K_EMUL_READ_SIZE],
                                                 VPATH("emul_read_size"), UINT32_MAX,
                                                 &r->emul_read_size)))
        return rc;
    if (f.val[K_SET_ACCESS] && (rc = get_access_ranges(c, f.val[K_SET_ACCESS],
                                                       VPATH("set_access"), false, &r->set_access,
                                                       &r->nr_set_access)))
        return rc;
    if (f.val[K_REGISTERS] &&
        (rc = get_regs(c, f.val[K_REGISTERS], VPATH("registers"), false, &r->registers)))
        return rc;
    if (f.val[K_ECHO] && (rc = get_bool(c, f.val[K_ECHO], VPATH("echo"), &r->echo)))
        return rc;
    if (f.val[K_VERSION] &&
        (rc = get_opt(c, f.val[K_VERSION], VPATH("version"), UINT32_MAX, &r->version)))
        return rc;
    if (f.val[K_VCPU_ID] &&
        (rc = get_opt(c, f.val[K_VCPU_ID], VPATH("vcpu_id"), UINT32_MAX, &r->vcpu_id)))
        return rc;
    if (f.val[K_DEFER] &&
        (rc = get_u32(c, f.val[K_DEFER], VPATH("defer"), 0, SCENARIO_MAX_EVENTS, &r->defer)))
        return rc;
    if (f.val[K_INJECT] && (rc = parse_inject(c, f.val[K_INJECT], VPATH("inject"), r)))
        return rc;
    if (f.val[K_LOAD]) {
        if ((rc = get_bool(c, f.val[K_LOAD], VPATH("load"), &r->load)))
            return rc;
        r->load_line = line_of(f.key[K_LOAD]);
        r->load_column = column_of(f.key[K_LOAD]);
    }
    if (f.val[K_LOAD_BYTES]) {
        const yaml_node_t *v = f.val[K_LOAD_BYTES];
        if ((rc = get_hex(c, v, VPATH("load_bytes"), &r->load_bytes)))
            return rc;
        if (r->load_bytes.len > PAGE_4K)
            return fail(c, v, "%s is %zu bytes; expected at most 4096 (one page)", vpath,
                        r->load_bytes.len);
        if (!r->load)
            return fail(c, f.key[K_LOAD_BYTES], "%s is given without load: true; expected "
                        "load: true beside it (load_bytes is what the pager loads)", vpath);
    }
    if (f.val[K_PAGING_FLAGS]) {
        const yaml_node_t *v = f.val[K_PAGING_FLAGS];
        if ((rc = get_paging_flags(c, v, VPATH("paging_flags"), &r->paging_flags.value)))
            return rc;
        r->paging_flags.set = true;
        r->paging_flags.line = line_of(v);
        r->paging_flags.column = column_of(v);
    }
    if (f.val[K_MAX_PAGES] && f.val[K_ADD_PAGES]) {
        const yaml_node_t *second =
            f.key[K_MAX_PAGES]->start_mark.index > f.key[K_ADD_PAGES]->start_mark.index
                ? f.key[K_MAX_PAGES] : f.key[K_ADD_PAGES];
        return fail(c, second, "both max_pages and add_pages in %s; expected at most one of them "
                    "(max_pages sets the limit, add_pages raises it)", path);
    }
    if (f.val[K_MAX_PAGES] &&
        (rc = get_opt(c, f.val[K_MAX_PAGES], VPATH("max_pages"), UINT64_MAX, &r->max_pages)))
        return rc;
    if (f.val[K_ADD_PAGES]) {
        if ((rc = get_num(c, f.val[K_ADD_PAGES], VPATH("add_pages"), false, 1, UINT64_MAX,
                          &r->add_pages.value)))
            return rc;
        r->add_pages.set = true;
        r->add_pages.line = line_of(f.val[K_ADD_PAGES]);
        r->add_pages.column = column_of(f.val[K_ADD_PAGES]);
    }
    for (size_t k = K_ALTP2M_ACCESS; k <= K_CHANGE_GFN; k++)
        if (f.key[k] && !c->s->altp2m.given)
            return fail(c, f.key[k], "%s.%s is an altp2m call but the scenario has no altp2m "
                        "section; expected an altp2m section (mode and views) beside the client",
                        path, keys[k]);
    if (f.val[K_ALTP2M_ACCESS] &&
        (rc = get_access_ranges(c, f.val[K_ALTP2M_ACCESS], VPATH("altp2m_access"), true,
                                &r->altp2m_access, &r->nr_altp2m_access)))
        return rc;
    if (f.val[K_CHANGE_GFN] && (rc = get_change_gfns(c, f.val[K_CHANGE_GFN], VPATH("change_gfn"),
                                                     0, &r->change_gfn, &r->nr_change_gfn)))
        return rc;
#undef VPATH
    return 0;
}

static void default_response(struct scenario_response *r, const yaml_node_t *at)
{
    *r = (struct scenario_response){.flags = 1u << SCENARIO_FLAG_VCPU_PAUSED, .echo = true,
                                    .line = line_of(at), .column = column_of(at)};
}

/*
 * A MEM_PAGING expectation needs the paging ring; the pager's answer (load,
 * paging_flags) needs an expectation that names reason MEM_PAGING.
 */
static int check_paging_event(struct ctx *c, const struct scenario_event *ev, const char *ipath)
{
    const struct scenario_match *reason = NULL;
    for (size_t i = 0; i < ev->nr_match; i++)
        if (ev->match[i].field == SCENARIO_MATCH_REASON)
            reason = &ev->match[i];
    bool paging = reason && reason->value == SCENARIO_REASON_MEM_PAGING;
    if (paging && !(c->s->paging.given && c->s->paging.ring))
        return fail_at(c, reason->line, reason->column, "%s.expect.reason is MEM_PAGING but no "
                       "paging ring is enabled, so no such event can come; expected a paging "
                       "section (with ring: true) beside the client", ipath);
    const struct scenario_response *r = &ev->response;
    if (paging || (!r->load && !r->paging_flags.set))
        return 0;
    const char *key = r->load ? "load" : "paging_flags";
    uint32_t line = r->load ? r->load_line : r->paging_flags.line;
    uint32_t column = r->load ? r->load_column : r->paging_flags.column;
    if (reason)
        return fail_at(c, line, column, "%s.respond.%s answers a MEM_PAGING event, but "
                       "%s.expect.reason is %s; expected reason: MEM_PAGING", ipath, key, ipath,
                       reason_names[reason->value]);
    return fail_at(c, line, column, "%s.respond.%s answers a MEM_PAGING event, but %s.expect "
                   "does not name a reason; expected reason: MEM_PAGING in %s.expect", ipath, key,
                   ipath, ipath);
}

/*
 * A MEM_SHARING expectation needs the sharing ring; the helper's answer
 * (max_pages, add_pages) needs an expectation that names reason MEM_SHARING.
 */
static int check_sharing_event(struct ctx *c, const struct scenario_event *ev, const char *ipath)
{
    const struct scenario_match *reason = NULL;
    for (size_t i = 0; i < ev->nr_match; i++)
        if (ev->match[i].field == SCENARIO_MATCH_REASON)
            reason = &ev->match[i];
    bool sharing = reason && reason->value == SCENARIO_REASON_MEM_SHARING;
    if (sharing && !(c->s->sharing.given && c->s->sharing.ring))
        return fail_at(c, reason->line, reason->column, "%s.expect.reason is MEM_SHARING but no "
                       "sharing ring is enabled, so no such event can come; expected a sharing "
                       "section (with ring: true) beside the client", ipath);
    const struct scenario_response *r = &ev->response;
    const struct scenario_opt *o = r->max_pages.set ? &r->max_pages : &r->add_pages;
    if (sharing || !o->set)
        return 0;
    const char *key = r->max_pages.set ? "max_pages" : "add_pages";
    if (reason)
        return fail_at(c, o->line, o->column, "%s.respond.%s answers a MEM_SHARING event, but "
                       "%s.expect.reason is %s; expected reason: MEM_SHARING", ipath, key, ipath,
                       reason_names[reason->value]);
    return fail_at(c, o->line, o->column, "%s.respond.%s answers a MEM_SHARING event, but "
                   "%s.expect does not name a reason; expected reason: MEM_SHARING in %s.expect",
                   ipath, key, ipath, ipath);
}

static int parse_client(struct ctx *c, yaml_node_t *n)
{
    static const char *const keys[] = {"order", "events"};
    static const char *const item_keys[] = {"expect", "respond", "name", "repeat"};
    enum { K_EXPECT, K_RESPOND, K_NAME, K_REPEAT };
    struct scenario_client *cl = &c->s->client;
    struct fields f;
    int rc = read_keys(c, n, "client", keys, ARRAY_SIZE(keys), &f);
    if (rc)
        return rc;
    cl->line = line_of(n);
    cl->column = column_of(n);
    if (!c->s->monitor.ring && !(c->s->paging.given && c->s->paging.ring)
        && !(c->s->sharing.given && c->s->sharing.ring))
        return fail(c, n, "a client is scripted but monitor.ring is false and no paging or sharing "
                    "ring is enabled; expected monitor.ring: true or a paging or sharing section "
                    "with its ring (the client needs a vm_event ring)");
    unsigned order = SCENARIO_ORDER_SEQUENCE;
    if (f.val[0] && (rc = get_name(c, f.val[0], "client.order", "an event order", order_names,
                                   ARRAY_SIZE(order_names), &order)))
        return rc;
    cl->order = (enum scenario_order)order;
    if (!f.val[1])
        return 0;
    const yaml_node_t *list = f.val[1];
    if ((rc = want_list(c, list, "client.events")))
        return rc;
    size_t count = list_len(list);
    if (count > SCENARIO_MAX_EVENTS)
        return fail(c, node(c, list->data.sequence.items.start[SCENARIO_MAX_EVENTS]),
                    "client.events has %zu items; expected at most %u events", count,
                    SCENARIO_MAX_EVENTS);
    if (!(cl->events = arena_array(c->s->arena, count, sizeof(*cl->events))))
        return fail_nomem(c);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = node(c, list->data.sequence.items.start[i]);
        struct scenario_event *ev = &cl->events[i];
        char ipath[PATH_MAX_LEN], vpath[PATH_MAX_LEN];
        struct fields fi;
        itempath(ipath, sizeof(ipath), "client.events", i);
        if ((rc = read_keys(c, item, ipath, item_keys, ARRAY_SIZE(item_keys), &fi)))
            return rc;
        ev->line = line_of(item);
        ev->column = column_of(item);
        if (!fi.val[K_EXPECT])
            return missing(c, item, ipath, "expect",
                           "expect (a matcher; {} matches any event) and optionally respond, "
                           "name, repeat");
        ev->repeat = 1;
        if (fi.val[K_REPEAT]) {
            subpath(vpath, sizeof(vpath), ipath, "repeat");
            if ((rc = get_u32(c, fi.val[K_REPEAT], vpath, 1, SCENARIO_MAX_EVENTS, &ev->repeat)))
                return rc;
        }
        cl->nr_expected += ev->repeat;
        if (cl->nr_expected > SCENARIO_MAX_EVENTS)
            return fail(c, item, "%s brings client.events to %llu events (repeats counted); "
                        "expected at most %u", ipath, (unsigned long long)cl->nr_expected,
                        SCENARIO_MAX_EVENTS);
        if (fi.val[K_NAME]) {
            subpath(vpath, sizeof(vpath), ipath, "name");
            if ((rc = get_str(c, fi.val[K_NAME], vpath, false, &ev->name, NULL)))
                return rc;
        }
        subpath(vpath, sizeof(vpath), ipath, "expect");
        if ((rc = parse_match(c, fi.val[K_EXPECT], vpath, ev)))
            return rc;
        default_response(&ev->response, item);
        if (fi.val[K_RESPOND]) {
            subpath(vpath, sizeof(vpath), ipath, "respond");
            if ((rc = parse_response(c, fi.val[K_RESPOND], vpath, &ev->response)))
                return rc;
        }
        if ((rc = check_paging_event(c, ev, ipath)) || (rc = check_sharing_event(c, ev, ipath)))
            return rc;
        cl->nr_events++;
    }
    return 0;
}

/* ---- hypervisor ------------------------------------------------------------ */

/* An event step's keys: reason, vcpu, sync, then the payload keys (enum inject_field). */
#define HV_EVENT_KEYS (3 + INJECT_F_COUNT)

/* hypervisor[i].event: a request the hypervisor raises (reason, vcpu, sync, its payload). */
static int parse_hv_event(struct ctx *c, yaml_node_t *n, const char *path, struct inject_step *st)
{
    const char *keys[HV_EVENT_KEYS] = {"reason", "vcpu", "sync"};
    for (unsigned k = 0; k < INJECT_F_COUNT; k++)
        keys[3 + k] = inject_field_name(k);
    struct fields f;
    char vp[PATH_MAX_LEN];
#define VP(key) (subpath(vp, sizeof(vp), path, key), vp)
    int rc = read_keys(c, n, path, keys, HV_EVENT_KEYS, &f);
    if (rc)
        return rc;
    if (!f.val[0])
        return missing(c, n, path, "reason", "the request's reason (a name or number) and its vcpu");
    if (!f.val[1])
        return missing(c, n, path, "vcpu", "the vCPU the request is for (below guest.vcpus)");
    unsigned reason;
    if ((rc = get_reason(c, f.val[0], VP("reason"), &reason)))
        return rc;
    if (reason == SCENARIO_REASON_MEM_PAGING || reason == SCENARIO_REASON_MEM_SHARING)
        return fail(c, f.val[0], "%s is %s, which only the %s ring carries (the hypervisor sends it when "
                    "the guest touches a %s gfn); expected a reason of the monitor ring", vp,
                    reason_names[reason], reason == SCENARIO_REASON_MEM_PAGING ? "paging" : "sharing",
                    reason == SCENARIO_REASON_MEM_PAGING ? "paged-out" : "shared");
    st->reason = reason;
    if ((rc = get_u32(c, f.val[1], VP("vcpu"), 0, UINT32_MAX, &st->vcpu)))
        return rc;
    if (st->vcpu >= c->s->guest.vcpus)
        return fail(c, f.val[1], "%s is %s, but the guest has %u vcpu%s; expected 0 to %u", vp,
                    show(f.val[1]).s, c->s->guest.vcpus, c->s->guest.vcpus == 1 ? "" : "s",
                    c->s->guest.vcpus - 1);
    st->sync = true;
    if (f.val[2] && (rc = get_bool(c, f.val[2], VP("sync"), &st->sync)))
        return rc;
    uint32_t allowed = inject_fields_allowed(reason);
    for (unsigned k = 0; k < INJECT_F_COUNT; k++) {
        if (!f.key[3 + k] || (allowed & (1u << k)))
            continue;
        if (!allowed)
            return fail(c, f.key[3 + k], "'%s' is not carried by a %s request in %s; expected no payload "
                        "key (%s has no payload)", keys[3 + k], reason_names[reason], path,
                        reason_names[reason]);
        const char *names[INJECT_F_COUNT] = {0};
        for (unsigned a = 0; a < INJECT_F_COUNT; a++)
            if (allowed & (1u << a))
                names[a] = keys[3 + a];
        char list[512];
        return fail(c, f.key[3 + k], "'%s' is not carried by a %s request in %s; expected one of: %s",
                    keys[3 + k], reason_names[reason], path, join(list, sizeof(list), names, INJECT_F_COUNT));
    }
    for (unsigned k = 0; k < INJECT_F_COUNT; k++) {
        const yaml_node_t *v = f.val[3 + k];
        if (!v)
            continue;
        VP(keys[3 + k]);
        uint64_t value = 0;
        unsigned u = 0;
        bool b = false;
        int ci;
        switch ((enum inject_field)k) {
        case INJECT_F_ACCESS:
            rc = get_letters(c, v, vp, "rwx", "letters from r, w, x such as \"w\" or \"rw\"", &u);
            value = u;
            break;
        case INJECT_F_GLA_VALID:
        case INJECT_F_IS_WRITE:
            rc = get_bool(c, v, vp, &b);
            value = b;
            break;
        case INJECT_F_FAULT:
            rc = get_name(c, v, vp, "a fault kind", fault_names, ARRAY_SIZE(fault_names), &u);
            if (!rc)
                value = fault_values[u];
            break;
        case INJECT_F_INDEX:
            /* A name, or any u32: an index Xen never sends is a fair test of a client. */
            ci = v->type == YAML_SCALAR_NODE ? lookup(v, ctrlreg_names, ARRAY_SIZE(ctrlreg_names)) : -1;
            if (ci >= 0) {
                value = (uint64_t)ci;
            } else if (v->type == YAML_SCALAR_NODE && v->data.scalar.length
                       && (v->data.scalar.value[0] < '0' || v->data.scalar.value[0] > '9')) {
                rc = fail(c, v, "'%s' is not a control register in %s; expected cr0, cr3, cr4, xcr0 or a "
                          "number (0 to 0xffffffff)", show(v).s, vp);
            } else {
                rc = get_num(c, v, vp, false, 0, UINT32_MAX, &value);
            }
            break;
        default:
            rc = get_num(c, v, vp, false, 0, inject_field_max(reason, k), &value);
            break;
        }
        if (rc)
            return rc;
        st->field[k] = value;
        st->given |= 1u << k;
    }
    return 0;
#undef VP
}

/* hypervisor[i].write: {gpa, bytes} or {gpa, fill, size}, within guest memory. */
static int parse_hv_write(struct ctx *c, yaml_node_t *n, const char *path, struct inject_step *st)
{
    static const char *const keys[] = {"gpa", "bytes", "fill", "size"};
    enum { K_GPA, K_BYTES, K_FILL, K_SIZE };
    struct fields f;
    char vp[PATH_MAX_LEN];
#define VP(key) (subpath(vp, sizeof(vp), path, key), vp)
    int rc = read_keys(c, n, path, keys, ARRAY_SIZE(keys), &f);
    if (rc)
        return rc;
    if (f.key[K_BYTES] && f.key[K_FILL]) {
        const yaml_node_t *second = f.key[K_BYTES]->start_mark.index > f.key[K_FILL]->start_mark.index
                                        ? f.key[K_BYTES] : f.key[K_FILL];
        return fail(c, second, "both bytes and fill in %s; expected one of them (bytes: what to write; fill "
                    "and size: one byte, repeated)", path);
    }
    if (f.key[K_SIZE] && !f.key[K_FILL])
        return fail(c, f.key[K_SIZE], "'size' in %s goes with fill; expected no size beside bytes (their "
                    "length is the size)", path);
    if (!f.val[K_GPA])
        return missing(c, n, path, "gpa", "the guest-physical address to write at, and bytes (or fill and "
                       "size)");
    if (!f.val[K_BYTES] && !f.val[K_FILL])
        return missing(c, n, path, "bytes", "bytes (a hex byte string), or fill (a byte) and size");
    if (f.val[K_FILL] && !f.val[K_SIZE])
        return missing(c, n, path, "size", "the number of bytes to fill, such as 4K");
    if ((rc = get_num(c, f.val[K_GPA], VP("gpa"), false, 0, UINT64_MAX, &st->gpa)))
        return rc;
    if (f.val[K_BYTES]) {
        struct scenario_bytes b;
        if ((rc = get_hex(c, f.val[K_BYTES], VP("bytes"), &b)))
            return rc;
        st->bytes = b.data;
        st->size = b.len;
    } else {
        uint64_t fill;
        if ((rc = get_num(c, f.val[K_FILL], VP("fill"), false, 0, 0xff, &fill)))
            return rc;
        st->fill = (uint8_t)fill;
        if ((rc = get_num(c, f.val[K_SIZE], VP("size"), true, 1, UINT64_MAX, &st->size)))
            return rc;
    }
    uint64_t mem = c->s->guest.memory;
    if (st->gpa >= mem || st->size > mem - st->gpa) {
        char ms[32];
        fmt_size(ms, sizeof(ms), mem);
        return fail(c, f.val[K_GPA], "%s (%llu bytes at gpa 0x%llx) extends beyond guest memory (%s = "
                    "0x%llx); expected gpa + length <= memory", path, (unsigned long long)st->size,
                    (unsigned long long)st->gpa, ms, (unsigned long long)mem);
    }
    return 0;
#undef VP
}

/* hypervisor: a list of steps, each {after, event} or {after, write}. */
static int parse_hypervisor(struct ctx *c, yaml_node_t *n)
{
    static const char *const keys[] = {"after", "event", "write"};
    enum { K_AFTER, K_EVENT, K_WRITE };
    struct scenario_hypervisor *h = &c->s->hypervisor;
    int rc = want_list(c, n, "hypervisor");
    if (rc)
        return rc;
    size_t count = list_len(n);
    if (count > SCENARIO_MAX_HYPERVISOR_STEPS)
        return fail(c, node(c, n->data.sequence.items.start[SCENARIO_MAX_HYPERVISOR_STEPS]),
                    "hypervisor has %zu steps; expected at most %u", count, SCENARIO_MAX_HYPERVISOR_STEPS);
    if (!(h->steps = arena_array(c->s->arena, count, sizeof(*h->steps))))
        return fail_nomem(c);
    h->given = true;
    h->line = line_of(n);
    h->column = column_of(n);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = node(c, n->data.sequence.items.start[i]);
        struct inject_step *st = &h->steps[i];
        char ipath[PATH_MAX_LEN], vpath[PATH_MAX_LEN];
        struct fields f;
        itempath(ipath, sizeof(ipath), "hypervisor", i);
        if ((rc = read_keys(c, item, ipath, keys, ARRAY_SIZE(keys), &f)))
            return rc;
        if (f.key[K_EVENT] && f.key[K_WRITE]) {
            const yaml_node_t *second =
                f.key[K_EVENT]->start_mark.index > f.key[K_WRITE]->start_mark.index ? f.key[K_EVENT]
                                                                                    : f.key[K_WRITE];
            return fail(c, second, "both event and write in %s; expected exactly one of them per step", ipath);
        }
        if (!f.val[K_EVENT] && !f.val[K_WRITE])
            return missing(c, item, ipath, "event", "exactly one of event (a request the hypervisor raises) "
                           "or write (guest memory it changes), and optionally after");
        st->line = line_of(item);
        st->column = column_of(item);
        subpath(vpath, sizeof(vpath), ipath, "after");
        if (f.val[K_AFTER] && (rc = get_num(c, f.val[K_AFTER], vpath, false, 0, UINT64_MAX, &st->after)))
            return rc;
        if (f.val[K_EVENT]) {
            st->kind = INJECT_EVENT;
            subpath(vpath, sizeof(vpath), ipath, "event");
            rc = parse_hv_event(c, f.val[K_EVENT], vpath, st);
        } else {
            st->kind = INJECT_WRITE;
            subpath(vpath, sizeof(vpath), ipath, "write");
            rc = parse_hv_write(c, f.val[K_WRITE], vpath, st);
        }
        if (rc)
            return rc;
        h->nr_steps++;
    }
    return 0;
}

/* ---- final ------------------------------------------------------------------ */

/*
 * final.paging / final.p2mt (`path`): a list of {gfn, p2mt}: the gfn's p2m
 * type at the end.  Appended to fin->paging, which has room for both lists.
 */
static int parse_final_paging(struct ctx *c, const yaml_node_t *list, const char *path,
                              struct scenario_final *fin)
{
    static const char *const keys[] = {"gfn", "p2mt"};
    size_t n = list_len(list);
    uint64_t nr_gfns = c->s->guest.memory / PAGE_4K;
    int rc;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = node(c, list->data.sequence.items.start[i]);
        struct scenario_final_paging *fp = &fin->paging[fin->nr_paging];
        char ipath[PATH_MAX_LEN], vpath[PATH_MAX_LEN];
        struct fields f;
        itempath(ipath, sizeof(ipath), path, i);
        if ((rc = read_keys(c, item, ipath, keys, ARRAY_SIZE(keys), &f)))
            return rc;
        for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
            if (!f.val[k])
                return missing(c, item, ipath, keys[k], "gfn and p2mt");
        subpath(vpath, sizeof(vpath), ipath, "gfn");
        if ((rc = get_num(c, f.val[0], vpath, false, 0, UINT64_MAX, &fp->gfn)))
            return rc;
        if (fp->gfn >= nr_gfns)
            return fail(c, f.val[0], "%s is gfn %s, beyond guest memory (gfns 0x0 to 0x%llx); "
                        "expected a gfn below 0x%llx", vpath, show(f.val[0]).s,
                        (unsigned long long)(nr_gfns - 1), (unsigned long long)nr_gfns);
        subpath(vpath, sizeof(vpath), ipath, "p2mt");
        if ((rc = get_p2mt(c, f.val[1], vpath, &fp->p2mt)))
            return rc;
        fp->line = line_of(item);
        fp->column = column_of(item);
        fin->nr_paging++;
    }
    return 0;
}

/*
 * final (`intro` false) or final.introspector (`intro`: the introspector's
 * domain, read against c->g = its guest; fewer keys, and `mapped`).
 */
static int parse_final(struct ctx *c, yaml_node_t *n, const char *path, bool intro,
                       struct scenario_final *fin)
{
    static const char *const main_keys[] = {"guest", "registers", "vcpus", "memory", "events",
                                            "event_counts", "shutdown_reason", "paging", "p2mt",
                                            "tot_pages", "max_pages", NULL, "introspector", "view"};
    static const char *const intro_keys[] = {"guest", "registers", "vcpus", "memory", NULL, NULL,
                                             "shutdown_reason", NULL, NULL, NULL, NULL, "mapped",
                                             NULL, NULL};
    enum { K_GUEST, K_REGISTERS, K_VCPUS, K_MEMORY, K_EVENTS, K_EVENT_COUNTS, K_SHUTDOWN_REASON,
           K_PAGING, K_P2MT, K_TOT_PAGES, K_MAX_PAGES, K_MAPPED, K_INTROSPECTOR, K_VIEW };
    struct fields f;
    char vp[PATH_MAX_LEN];
#define VP(key) (subpath(vp, sizeof(vp), path, key), vp)
    int rc = read_keys(c, n, path, intro ? intro_keys : main_keys, ARRAY_SIZE(main_keys), &f);
    if (rc)
        return rc;
    if (f.val[K_GUEST]) {
        unsigned end;
        if ((rc = get_name(c, f.val[K_GUEST], VP("guest"), "a final guest state", end_names,
                           ARRAY_SIZE(end_names), &end)))
            return rc;
        fin->guest = (enum scenario_end)end;
        fin->guest_line = line_of(f.val[K_GUEST]);
        fin->guest_column = column_of(f.val[K_GUEST]);
    }
    const yaml_node_t *sr = f.val[K_SHUTDOWN_REASON];
    if (sr) {
        /* A SHUTDOWN_* name or its number (Xen keeps the low byte). */
        int i = sr->type == YAML_SCALAR_NODE ? lookup(sr, shutdown_names, ARRAY_SIZE(shutdown_names)) : -1;
        uint64_t v = (uint64_t)i;
        if (i < 0 && (rc = get_num(c, sr, VP("shutdown_reason"), false, 0, 255, &v)))
            return rc;
        if (fin->guest != SCENARIO_END_ANY && fin->guest != SCENARIO_END_SHUTDOWN)
            return fail(c, sr, "%s.shutdown_reason is given but %s.guest is %s; expected "
                        "%s.guest: shutdown", path, path, end_names[fin->guest], path);
        fin->shutdown_reason = (struct scenario_opt){.set = true, .value = v, .line = line_of(sr),
                                                     .column = column_of(sr)};
    }

    /* A vCPU's view needs altp2m (final.view, final.vcpus[i].view). */
#define CHECK_VIEW(keynode, vpath)                                                            \
    do {                                                                                      \
        if (!c->s->altp2m.given)                                                              \
            return fail(c, (keynode), "%s is given but the scenario has no altp2m section; "  \
                        "expected an altp2m section (without it no vCPU has a view)", (vpath)); \
    } while (0)
    size_t nr = f.val[K_REGISTERS] || f.val[K_VIEW] ? 1 : 0;
    const yaml_node_t *vl = f.val[K_VCPUS];
    if (vl) {
        if ((rc = want_list(c, vl, VP("vcpus"))))
            return rc;
        nr += list_len(vl);
    }
    if (!(fin->vcpus = arena_array(c->s->arena, nr, sizeof(*fin->vcpus))))
        return fail_nomem(c);
    const yaml_node_t *first[SCENARIO_MAX_VCPUS] = {0};
    if (f.val[K_REGISTERS] || f.val[K_VIEW]) {
        struct scenario_final_vcpu *v = &fin->vcpus[fin->nr_vcpus++];
        const yaml_node_t *at = f.val[K_REGISTERS] ? f.val[K_REGISTERS] : f.val[K_VIEW];
        if (f.val[K_REGISTERS] &&
            (rc = get_regs(c, f.val[K_REGISTERS], VP("registers"), false, &v->registers)))
            return rc;
        if (f.val[K_VIEW]) {
            CHECK_VIEW(f.key[K_VIEW], VP("view"));
            if ((rc = get_view_opt(c, f.val[K_VIEW], VP("view"), &v->view)))
                return rc;
        }
        v->vcpu = 0;
        v->line = line_of(at);
        v->column = column_of(at);
        first[0] = at;
    }
    for (size_t i = 0; vl && i < list_len(vl); i++) {
        static const char *const vkeys[] = {"vcpu", "registers", "view"};
        yaml_node_t *item = node(c, vl->data.sequence.items.start[i]);
        struct scenario_final_vcpu *v = &fin->vcpus[fin->nr_vcpus];
        char ipath[PATH_MAX_LEN], vpath[PATH_MAX_LEN];
        struct fields fv;
        itempath(ipath, sizeof(ipath), VP("vcpus"), i);
        if ((rc = read_keys(c, item, ipath, vkeys, intro ? 2 : ARRAY_SIZE(vkeys), &fv)))
            return rc;
        if (!fv.val[0])
            return missing(c, item, ipath, "vcpu", intro ? "vcpu and registers"
                                                         : "vcpu and registers, view or both");
        if (!fv.val[1] && !fv.val[2])
            return missing(c, item, ipath, "registers", intro ? "vcpu and registers"
                                                              : "vcpu and registers, view or both");
        subpath(vpath, sizeof(vpath), ipath, "vcpu");
        if ((rc = get_u32(c, fv.val[0], vpath, 0, UINT32_MAX, &v->vcpu)))
            return rc;
        if (v->vcpu >= c->g->vcpus)
            return fail(c, fv.val[0], "%s is %s, but the %s has %u vcpu%s; expected 0 to %u",
                        vpath, show(fv.val[0]).s, intro ? "introspector" : "guest", c->g->vcpus,
                        c->g->vcpus == 1 ? "" : "s", c->g->vcpus - 1);
        if (first[v->vcpu])
            return fail(c, fv.val[0], "vcpu %u has registers twice in %s (first at line %u); "
                        "expected one entry per vcpu (%s.registers is vcpu 0)", v->vcpu, path,
                        line_of(first[v->vcpu]), path);
        first[v->vcpu] = fv.val[0];
        subpath(vpath, sizeof(vpath), ipath, "registers");
        if (fv.val[1] && (rc = get_regs(c, fv.val[1], vpath, false, &v->registers)))
            return rc;
        subpath(vpath, sizeof(vpath), ipath, "view");
        if (fv.val[2]) {
            CHECK_VIEW(fv.key[2], vpath);
            if ((rc = get_view_opt(c, fv.val[2], vpath, &v->view)))
                return rc;
        }
        v->line = line_of(item);
        v->column = column_of(item);
        fin->nr_vcpus++;
    }

    if (f.val[K_MEMORY] &&
        (rc = get_data(c, f.val[K_MEMORY], VP("memory"), &fin->memory, &fin->nr_memory)))
        return rc;
    if (f.val[K_EVENTS] && (rc = get_opt(c, f.val[K_EVENTS], "final.events", UINT64_MAX,
                                         &fin->events)))
        return rc;
    const yaml_node_t *ec = f.val[K_EVENT_COUNTS];
    if (ec) {
        if ((rc = want_map(c, ec, "final.event_counts")))
            return rc;
        if (!(fin->event_counts = arena_array(c->s->arena, map_len(ec),
                                              sizeof(*fin->event_counts))))
            return fail_nomem(c);
        const yaml_node_t *seen[SCENARIO_REASON_COUNT] = {0};
        for (yaml_node_pair_t *p = ec->data.mapping.pairs.start; p < ec->data.mapping.pairs.top;
             p++) {
            const yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
            struct scenario_event_count *e = &fin->event_counts[fin->nr_event_counts];
            unsigned reason;
            char vpath[PATH_MAX_LEN];
            if ((rc = check_key(c, k, "final.event_counts")) ||
                (rc = get_reason(c, k, "final.event_counts", &reason)))
                return rc;
            if (seen[reason])
                return fail(c, k, "duplicate key '%s' in final.event_counts; expected each "
                            "reason once (first at line %u)", reason_names[reason],
                            line_of(seen[reason]));
            seen[reason] = k;
            subpath(vpath, sizeof(vpath), "final.event_counts", reason_names[reason]);
            if ((rc = get_num(c, v, vpath, false, 0, UINT64_MAX, &e->count)))
                return rc;
            e->reason = (enum scenario_reason)reason;
            e->line = line_of(v);
            e->column = column_of(v);
            fin->nr_event_counts++;
        }
    }
    /* final.paging and final.p2mt: one list of p2m types, paging's first. */
    size_t nr_types = 0;
    if (f.val[K_PAGING] && (rc = want_list(c, f.val[K_PAGING], VP("paging"))))
        return rc;
    if (f.val[K_P2MT] && (rc = want_list(c, f.val[K_P2MT], VP("p2mt"))))
        return rc;
    nr_types = (f.val[K_PAGING] ? list_len(f.val[K_PAGING]) : 0)
               + (f.val[K_P2MT] ? list_len(f.val[K_P2MT]) : 0);
    if (nr_types && !(fin->paging = arena_array(c->s->arena, nr_types, sizeof(*fin->paging))))
        return fail_nomem(c);
    if (f.val[K_PAGING] && (rc = parse_final_paging(c, f.val[K_PAGING], VP("paging"), fin)))
        return rc;
    if (f.val[K_P2MT] && (rc = parse_final_paging(c, f.val[K_P2MT], VP("p2mt"), fin)))
        return rc;
    if (f.val[K_TOT_PAGES] &&
        (rc = get_opt(c, f.val[K_TOT_PAGES], VP("tot_pages"), UINT64_MAX, &fin->tot_pages)))
        return rc;
    if (f.val[K_MAX_PAGES] &&
        (rc = get_opt(c, f.val[K_MAX_PAGES], VP("max_pages"), UINT64_MAX, &fin->max_pages)))
        return rc;
    if (f.val[K_MAPPED] && (rc = get_opt(c, f.val[K_MAPPED], VP("mapped"), UINT64_MAX, &fin->mapped)))
        return rc;
    yaml_node_t *in = f.val[K_INTROSPECTOR];
    if (in) {
        if (!c->s->introspector.given)
            return fail(c, f.key[K_INTROSPECTOR], "final.introspector is given but the scenario has "
                        "no introspector section; expected an introspector section (the second "
                        "domain) beside it");
        if (!(fin->introspector = arena_alloc(c->s->arena, sizeof(*fin->introspector))))
            return fail_nomem(c);
        c->g = &c->s->introspector.guest;
        rc = parse_final(c, in, "final.introspector", true, fin->introspector);
        c->g = &c->s->guest;
        if (rc)
            return rc;
    }
    return 0;
#undef CHECK_VIEW
#undef VP
}

/* ---- Top level -------------------------------------------------------------- */

static int parse_top(struct ctx *c, yaml_node_t *root)
{
    static const char *const keys[] = {"name", "description", "guest", "p2m", "monitor",
                                       "client", "final", "limits", "paging", "sharing",
                                       "introspector", "altp2m", "hypervisor"};
    enum { K_NAME, K_DESCRIPTION, K_GUEST, K_P2M, K_MONITOR, K_CLIENT, K_FINAL, K_LIMITS,
           K_PAGING, K_SHARING, K_INTROSPECTOR, K_ALTP2M, K_HYPERVISOR };
    struct scenario *s = c->s;
    struct fields f;
    if (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0)
        return fail(c, root, "the document is empty; expected a mapping with at least the key "
                    "'guest'");
    if (root->type != YAML_MAPPING_NODE)
        return fail(c, root, "the document is %s; expected a mapping of top-level keys (name, "
                    "guest, p2m, monitor, paging, sharing, introspector, altp2m, hypervisor, client, final, limits)", kind(root));
    int rc = read_keys(c, root, "", keys, ARRAY_SIZE(keys), &f);
    if (rc)
        return rc;
    if (f.val[K_NAME] && (rc = get_str(c, f.val[K_NAME], "name", false, &s->name, NULL)))
        return rc;
    if (f.val[K_DESCRIPTION] &&
        (rc = get_str(c, f.val[K_DESCRIPTION], "description", true, &s->description, NULL)))
        return rc;
    /* Sections that others depend on come first: memory bounds, vcpus, ring version. */
    if (!f.val[K_GUEST])
        return missing(c, root, "", "guest", "a guest section (mode, memory, code, entry, "
                       "mappings, ...)");
    if ((rc = parse_guest(c, f.val[K_GUEST], "guest", false)))
        return rc;
    s->p2m.default_access = SCENARIO_ACCESS_RWX;
    if (f.val[K_P2M] && (rc = parse_p2m(c, f.val[K_P2M])))
        return rc;
    s->monitor = (struct scenario_monitor){.ring = true, .version = 7};
    if (f.val[K_MONITOR] && (rc = parse_monitor(c, f.val[K_MONITOR])))
        return rc;
    if (f.val[K_PAGING] && (rc = parse_paging(c, f.val[K_PAGING])))
        return rc;
    if (f.val[K_SHARING] && (rc = parse_sharing(c, f.val[K_SHARING])))
        return rc;
    if (f.val[K_INTROSPECTOR] && (rc = parse_introspector(c, f.val[K_INTROSPECTOR])))
        return rc;
    if (f.val[K_ALTP2M] && (rc = parse_altp2m(c, f.val[K_ALTP2M])))
        return rc;
    s->instruction_limit = SCENARIO_DEFAULT_INSTRUCTIONS;
    if (f.val[K_LIMITS] && (rc = parse_limits(c, f.val[K_LIMITS])))
        return rc;
    if (f.val[K_HYPERVISOR] && (rc = parse_hypervisor(c, f.val[K_HYPERVISOR])))
        return rc;
    if (f.val[K_CLIENT]) {
        s->has_client = true;
        if ((rc = parse_client(c, f.val[K_CLIENT])))
            return rc;
    }
    if (f.val[K_FINAL] && (rc = parse_final(c, f.val[K_FINAL], "final", false, &s->final)))
        return rc;
    return 0;
}

/* ---- libyaml ----------------------------------------------------------------- */

/* Line and column (1-based, in characters) of byte `offset` of the text. */
static void offset_position(const char *text, size_t len, size_t offset, size_t *line,
                            size_t *column)
{
    *line = 1;
    *column = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n' || (ch == '\r' && (i + 1 >= len || text[i + 1] != '\n'))) {
            ++*line;
            *column = 1;
        } else if ((ch & 0xc0) != 0x80 && ch != '\r') {
            ++*column;
        }
    }
}

static int yaml_fail(struct ctx *c, const yaml_parser_t *p)
{
    size_t line, column;
    const char *problem = p->problem ? p->problem : "unknown problem";
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return fail_nomem(c);
    case YAML_READER_ERROR:
        offset_position(c->text, c->len, p->problem_offset, &line, &column);
        if (p->problem_value != -1)
            return fail_at(c, line, column, "invalid text: %s (0x%x); expected UTF-8 text",
                           problem, (unsigned)p->problem_value);
        return fail_at(c, line, column, "invalid text: %s; expected UTF-8 text", problem);
    case YAML_SCANNER_ERROR:
    case YAML_PARSER_ERROR:
    case YAML_COMPOSER_ERROR:
    default:
        line = p->problem_mark.line + 1;
        column = p->problem_mark.column + 1;
        if (p->context)
            return fail_at(c, line, column, "YAML syntax error: %s; %s at line %zu, column %zu",
                           problem, p->context, p->context_mark.line + 1,
                           p->context_mark.column + 1);
        return fail_at(c, line, column, "YAML syntax error: %s; expected valid YAML", problem);
    }
}

static void parser_init(yaml_parser_t *p, const char *text, size_t len)
{
    yaml_parser_set_input_string(p, (const unsigned char *)text, len);
    yaml_parser_set_encoding(p, YAML_UTF8_ENCODING);
}

/*
 * First pass, events only: refuses syntax errors, aliases, several
 * documents, deep nesting and too many nodes before anything is loaded.
 */
static int prescan(struct ctx *c)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return fail_nomem(c);
    parser_init(&p, c->text, c->len);
    int rc = 0;
    size_t depth = 0, nodes = 0, docs = 0;
    for (bool done = false; !done && !rc;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = yaml_fail(c, &p);
            break;
        }
        size_t line = ev.start_mark.line + 1, column = ev.start_mark.column + 1;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                rc = fail_at(c, line, column, "a second YAML document starts here; expected "
                             "exactly one document per scenario file");
            break;
        case YAML_ALIAS_EVENT:
            rc = fail_at(c, line, column, "YAML alias '*%s' is not supported; expected the value "
                         "written out in full", show_text((const char *)ev.data.alias.anchor,
                                                          strlen((const char *)ev.data.alias.anchor)).s);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++depth > SCENARIO_MAX_DEPTH)
                rc = fail_at(c, line, column, "nesting deeper than %u levels; expected a "
                             "scenario (it needs at most 6)", SCENARIO_MAX_DEPTH);
            /* fall through */
        case YAML_SCALAR_EVENT:
            if (!rc && ++nodes > SCENARIO_MAX_NODES)
                rc = fail_at(c, line, column, "more than %u YAML nodes; expected a smaller "
                             "scenario", SCENARIO_MAX_NODES);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    if (!rc && docs == 0)
        rc = fail_at(c, 1, 1, "the file is empty; expected a mapping with at least the key "
                     "'guest'");
    yaml_parser_delete(&p);
    return rc;
}

/* The file name without directory and .yaml (or .yml). */
static int default_name(struct ctx *c)
{
    const char *base = strrchr(c->file, '/');
    base = base ? base + 1 : c->file;
    size_t len = strlen(base);
    if (len > 5 && strcmp(base + len - 5, ".yaml") == 0)
        len -= 5;
    else if (len > 4 && strcmp(base + len - 4, ".yml") == 0)
        len -= 4;
    if (!(c->s->name = arena_strndup(c->s->arena, base, len)))
        return fail_nomem(c);
    return 0;
}

int scenario_parse(const char *text, size_t len, const char *filename, struct scenario **out,
                   char *err, size_t errlen)
{
    struct ctx c = {.file = filename ? filename : "<input>", .text = text, .len = len,
                    .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!text && len)
        return -EINVAL;
    if (len > SCENARIO_MAX_FILE_SIZE)
        return fail_at(&c, 1, 1, "the file is %zu bytes; expected at most 4M (%u bytes)", len,
                       SCENARIO_MAX_FILE_SIZE);
    if (!text)
        text = c.text = "";

    struct scenario_arena *arena = calloc(1, sizeof(*arena));
    if (!arena)
        return fail_nomem(&c);
    struct scenario *s = arena_alloc(arena, sizeof(*s));
    if (!s) {
        arena_destroy(arena);
        return fail_nomem(&c);
    }
    s->arena = arena;
    c.s = s;
    c.g = &s->guest;

    int rc = prescan(&c);
    if (rc)
        goto out;
    if (!(s->file = arena_strndup(arena, c.file, strlen(c.file)))) {
        rc = fail_nomem(&c);
        goto out;
    }

    yaml_parser_t p;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&p)) {
        rc = fail_nomem(&c);
        goto out;
    }
    parser_init(&p, text, len);
    if (!yaml_parser_load(&p, &doc)) {
        rc = yaml_fail(&c, &p);
        yaml_parser_delete(&p);
        goto out;
    }
    c.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
        rc = fail_at(&c, 1, 1, "the file is empty; expected a mapping with at least the key "
                     "'guest'");
    else
        rc = parse_top(&c, root);
    if (!rc && !s->name)
        rc = default_name(&c);
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);

out:
    if (rc) {
        arena_destroy(arena);
        return rc;
    }
    *out = s;
    return 0;
}

int scenario_load(const char *path, struct scenario **out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out || !path)
        return -EINVAL;
    *out = NULL;
    int rc = 0;
    char *buf = NULL;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto io_error;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto io_error;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
        goto io_error;
    }
    /* Read at most one byte past the limit: never more, whatever the file is. */
    size_t cap = SCENARIO_MAX_FILE_SIZE + 1;
    if (!(buf = malloc(cap))) {
        rc = -ENOMEM;
        goto io_error;
    }
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            goto io_error;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    fd = -1;
    if (len > SCENARIO_MAX_FILE_SIZE) {
        if (err && errlen)
            snprintf(err, errlen, "%s:1:1: the file is larger than 4M (%u bytes); expected at "
                     "most 4M", path, SCENARIO_MAX_FILE_SIZE);
        free(buf);
        return -EINVAL;
    }
    rc = scenario_parse(buf, len, path, out, err, errlen);
    free(buf);
    return rc;

io_error:
    if (err && errlen)
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

void scenario_free(struct scenario *s)
{
    if (s)
        arena_destroy(s->arena);
}
