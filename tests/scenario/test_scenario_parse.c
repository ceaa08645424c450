/*
 * tests/scenario/test_scenario_parse.c — the scenario file parser.
 *
 * Each test opens with what it proves.  Valid files are checked field by
 * field in the model; invalid ones by the exact FILE:LINE:COLUMN of the one
 * message and its key phrase.  A failure of the test's own set-up (a data
 * file that cannot be read, a buffer that cannot be allocated) is reported
 * as "TEST ERROR (set-up ...)", never as a failure of the parser.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "scenario_internal.h"

#define FILE_NAME "t.yaml"

#define TEST_ERROR(...)                                                                       \
    cr_assert_fail("TEST ERROR (set-up, not the parser): " __VA_ARGS__)

/* Reads tests/scenario/data/NAME whole. */
static char *read_data(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", SCENARIO_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        TEST_ERROR("cannot open %s: %s", path, strerror(errno));
    char *buf = malloc(1 << 20);
    if (!buf)
        TEST_ERROR("out of memory");
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* A buffer of `len` bytes for a generated input. */
static char *test_alloc(size_t len)
{
    char *p = malloc(len + 1);
    if (!p)
        TEST_ERROR("cannot allocate %zu bytes for the input", len);
    return p;
}

/* Parses text that must be valid; a parser error is the failure under test. */
static struct scenario *parse_ok(const char *text)
{
    char err[1024];
    struct scenario *s = NULL;
    int rc = scenario_parse(text, strlen(text), FILE_NAME, &s, err, sizeof(err));
    cr_assert_eq(rc, 0, "a valid scenario was refused (rc %d): %s\n--- input ---\n%s", rc, err,
                 text);
    cr_assert_not_null(s);
    return s;
}

/*
 * The text must fail with -EINVAL and exactly one message starting
 * "t.yaml:LINE:COLUMN: " that holds every phrase given (NULL-terminated).
 */
static void expect_error_v(const char *text, size_t len, unsigned line, unsigned column, ...)
{
    char err[2048];
    struct scenario *s = (struct scenario *)1;
    int rc = scenario_parse(text, len, FILE_NAME, &s, err, sizeof(err));
    cr_assert_eq(rc, -EINVAL, "expected -EINVAL, got %d (message: %s)", rc,
                 rc ? err : "none, the input was accepted");
    cr_assert_null(s, "*out must be NULL after an error");
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "%s:%u:%u: ", FILE_NAME, line, column);
    cr_expect(strncmp(err, prefix, strlen(prefix)) == 0, "expected the position %s, got: %s",
              prefix, err);
    cr_expect(strchr(err, '\n') == NULL, "the message must be one line: %s", err);
    cr_expect(strstr(err, "; ") != NULL, "the message must say what was expected: %s", err);
    va_list ap;
    va_start(ap, column);
    for (const char *phrase; (phrase = va_arg(ap, const char *));)
        cr_expect(strstr(err, phrase) != NULL, "the message lacks \"%s\": %s", phrase, err);
    va_end(ap);
}

#define expect_error(text, line, column, ...)                                                  \
    expect_error_v((text), strlen(text), (line), (column), __VA_ARGS__, (const char *)NULL)

/* A minimal valid guest section, lines 1-5; tests append their own lines from line 6. */
#define BASE                                                                                  \
    "guest:\n"                                                                                \
    "  code_bytes: \"f4\"\n"                                                                  \
    "  entry: 0x1000\n"                                                                       \
    "  mappings:\n"                                                                           \
    "    - {gla: 0x1000, gpa: 0x1000, size: 4K}\n"

/* ---- Valid files ------------------------------------------------------------ */

/* The base used by the negative tests is itself valid (else they prove nothing). */
Test(valid, base_is_valid)
{
    scenario_free(parse_ok(BASE));
}

/* complete.yaml, which uses every key, arrives in the model field by field, with positions. */
Test(valid, complete_file_round_trips)
{
    size_t len;
    char *text = read_data("complete.yaml", &len);
    char err[1024];
    struct scenario *s;
    int rc = scenario_parse(text, len, "dir/complete.yaml", &s, err, sizeof(err));
    free(text);
    cr_assert_eq(rc, 0, "complete.yaml refused: %s", err);

    cr_expect_str_eq(s->file, "dir/complete.yaml");
    cr_expect_str_eq(s->name, "complete-example");
    cr_expect_str_eq(s->description, "every key once");

    const struct scenario_guest *g = &s->guest;
    cr_expect_eq(g->line, 6);
    cr_expect_eq(g->column, 3);
    cr_expect_eq(g->mode, SCENARIO_MODE_LONG);
    cr_expect_eq(g->memory, 32u << 20);
    cr_expect_eq(g->vcpus, 2);
    cr_expect_str_eq(g->code, "mov rax, 1\nhlt\n");
    cr_expect_eq(g->code_len, strlen("mov rax, 1\nhlt\n"));
    cr_expect_null(g->code_bytes.data);
    cr_expect_eq(g->code_line, 9);
    cr_expect_eq(g->code_column, 9);
    cr_expect_eq(g->code_first_line, 10, "the line after '|' holds the code's first line");
    cr_expect_eq(g->entry, 0x400000);
    cr_expect_eq(g->entry_gpa, 0x1000);
    cr_expect_eq(g->entry_line, 12);
    cr_expect_eq(g->entry_column, 10);

    cr_assert_eq(g->nr_mappings, 3);
    const struct scenario_mapping *m = g->mappings;
    cr_expect_eq(m[0].gla, 0x400000);
    cr_expect_eq(m[0].gpa, 0x1000);
    cr_expect_eq(m[0].size, 8192);
    cr_expect_eq(m[0].rights, SCENARIO_RIGHT_R | SCENARIO_RIGHT_X);
    cr_expect_eq(m[0].page, 4096);
    cr_expect_eq(m[0].line, 14);
    cr_expect_eq(m[0].column, 7);
    cr_expect_eq(m[1].gla, 0x600000);
    cr_expect_eq(m[1].gpa, 0x200000);
    cr_expect_eq(m[1].size, 2u << 20);
    cr_expect_eq(m[1].rights, SCENARIO_RIGHT_R | SCENARIO_RIGHT_W | SCENARIO_RIGHT_U);
    cr_expect_eq(m[1].page, 2u << 20);
    cr_expect_eq(m[2].gla, 0xffffffff80000000ull);
    cr_expect_eq(m[2].gpa, 0);
    cr_expect_eq(m[2].rights, SCENARIO_RIGHT_R | SCENARIO_RIGHT_W | SCENARIO_RIGHT_X);
    cr_expect_eq(m[2].line, 16);
    cr_expect_eq(m[2].column, 7);

    cr_assert_eq(g->nr_data, 1);
    cr_expect_eq(g->data[0].gpa, 0x3000);
    cr_assert_eq(g->data[0].bytes.len, 4);
    cr_expect_arr_eq(g->data[0].bytes.data, "\xde\xad\xbe\xef", 4);
    cr_expect_eq(g->data[0].line, 21);

    cr_assert_eq(g->registers.n, 3);
    cr_expect_eq(g->registers.v[0].reg, SCENARIO_REG_RSP);
    cr_expect_eq(g->registers.v[0].value, 0x7ff000);
    cr_expect_eq(g->registers.v[0].line, 23);
    cr_expect_eq(g->registers.v[0].column, 10);
    cr_expect_eq(g->registers.v[1].reg, SCENARIO_REG_CR3);
    cr_expect_eq(g->registers.v[2].reg, SCENARIO_REG_XCR0);
    cr_expect_eq(g->registers.v[2].value, 7);

    cr_expect_eq(s->p2m.default_access, SCENARIO_ACCESS_RX);
    cr_assert_eq(s->p2m.nr_access, 2);
    cr_expect_eq(s->p2m.access[0].gfn, 0x201);
    cr_expect_eq(s->p2m.access[0].count, 1);
    cr_expect_eq(s->p2m.access[0].access, SCENARIO_ACCESS_R);
    cr_expect_eq(s->p2m.access[0].line, 29);
    cr_expect_eq(s->p2m.access[0].column, 7);
    cr_expect_eq(s->p2m.access[1].gfn, 0x300);
    cr_expect_eq(s->p2m.access[1].count, 16);
    cr_expect_eq(s->p2m.access[1].access, SCENARIO_ACCESS_N2RWX);

    cr_expect(s->monitor.ring);
    cr_expect_eq(s->monitor.version, 1);
    cr_expect(s->monitor.access_required);

    cr_assert(s->has_client);
    const struct scenario_client *cl = &s->client;
    cr_expect_eq(cl->order, SCENARIO_ORDER_SET);
    cr_assert_eq(cl->nr_events, 3);
    cr_expect_eq(cl->nr_expected, 5);

    const struct scenario_event *e = &cl->events[0];
    cr_expect_str_eq(e->name, "first write");
    cr_expect_eq(e->repeat, 1);
    cr_expect_eq(e->line, 38);
    cr_expect_eq(e->column, 7);
    /* In file order; regs expand to one entry per register. */
    struct { enum scenario_match_field f; enum scenario_reg reg; uint64_t v; unsigned line, col; }
    want[] = {
        {SCENARIO_MATCH_REASON, 0, SCENARIO_REASON_MEM_ACCESS, 40, 17},
        {SCENARIO_MATCH_VCPU, 0, 1, 41, 15},
        {SCENARIO_MATCH_FLAGS, 0, 1u << 0 | 1u << 7, 42, 16},
        {SCENARIO_MATCH_ALTP2M_IDX, 0, 0, 43, 21},
        {SCENARIO_MATCH_GFN, 0, 0x201, 44, 14},
        {SCENARIO_MATCH_OFFSET, 0, 0x10, 45, 17},
        {SCENARIO_MATCH_GLA, 0, 0x601010, 46, 14},
        {SCENARIO_MATCH_ACCESS, 0, 2, 47, 17},
        {SCENARIO_MATCH_GLA_VALID, 0, 1, 48, 20},
        {SCENARIO_MATCH_FAULT, 0, 0x10, 49, 16},
        {SCENARIO_MATCH_REG, SCENARIO_REG_RIP, 0x400003, 50, 21},
        {SCENARIO_MATCH_REG, SCENARIO_REG_RAX, 1, 50, 36},
    };
    cr_assert_eq(e->nr_match, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < e->nr_match; i++) {
        const struct scenario_match *m2 = &e->match[i];
        cr_expect_eq(m2->field, want[i].f, "match %zu: field %s", i,
                     scenario_match_field_name(m2->field));
        if (want[i].f == SCENARIO_MATCH_REG)
            cr_expect_eq(m2->reg, want[i].reg, "match %zu: reg %s", i, scenario_reg_name(m2->reg));
        cr_expect_eq(m2->value, want[i].v, "match %zu: value 0x%llx", i,
                     (unsigned long long)m2->value);
        cr_expect_eq(m2->line, want[i].line, "match %zu: line %u", i, m2->line);
        cr_expect_eq(m2->column, want[i].col, "match %zu: column %u", i, m2->column);
    }

    const struct scenario_response *r = &e->response;
    cr_expect_not(r->no_response);
    cr_expect_eq(r->flags, 1u << 0 | 1u << 2 | 1u << 5 | 1u << 8);
    cr_expect(r->altp2m_idx.set);
    cr_expect_eq(r->altp2m_idx.value, 3);
    cr_expect_eq(r->altp2m_idx.line, 53);
    cr_assert_eq(r->emul_read_data.len, 3);
    cr_expect_arr_eq(r->emul_read_data.data, "\x01\x02\x03", 3);
    cr_expect(r->emul_read_size.set);
    cr_expect_eq(r->emul_read_size.value, 8);
    cr_assert_eq(r->nr_set_access, 1);
    cr_expect_eq(r->set_access[0].gfn, 0x201);
    cr_expect_eq(r->set_access[0].count, 2);
    cr_expect_eq(r->set_access[0].access, SCENARIO_ACCESS_RW);
    cr_expect_eq(r->set_access[0].line, 57);
    cr_assert_eq(r->registers.n, 1);
    cr_expect_eq(r->registers.v[0].reg, SCENARIO_REG_RIP);
    cr_expect_eq(r->registers.v[0].value, 0x400010);
    cr_expect_not(r->echo);
    cr_expect(r->version.set);
    cr_expect_eq(r->version.value, 6);
    cr_expect(r->vcpu_id.set);
    cr_expect_eq(r->vcpu_id.value, 9);
    cr_expect_eq(r->defer, 2);
    cr_expect_eq(r->line, 52);
    cr_expect_eq(r->column, 9);

    e = &cl->events[1];
    cr_expect_null(e->name);
    cr_expect_eq(e->repeat, 3);
    cr_assert_eq(e->nr_match, 1);
    cr_expect_eq(e->match[0].field, SCENARIO_MATCH_REASON);
    cr_expect_eq(e->match[0].value, SCENARIO_REASON_CPUID);
    cr_expect_eq(e->response.flags, 1u << SCENARIO_FLAG_VCPU_PAUSED, "default response flags");
    cr_expect(e->response.echo);

    e = &cl->events[2];
    cr_expect_eq(e->nr_match, 0, "{} matches any event");
    cr_expect(e->response.no_response);

    const struct scenario_final *f = &s->final;
    cr_expect_eq(f->guest, SCENARIO_END_HALTED);
    cr_expect_eq(f->guest_line, 68);
    cr_expect_eq(f->guest_column, 10);
    cr_assert_eq(f->nr_vcpus, 2);
    cr_expect_eq(f->vcpus[0].vcpu, 0, "final.registers is vcpu 0");
    cr_assert_eq(f->vcpus[0].registers.n, 1);
    cr_expect_eq(f->vcpus[0].registers.v[0].reg, SCENARIO_REG_RAX);
    cr_expect_eq(f->vcpus[0].registers.v[0].value, 1);
    cr_expect_eq(f->vcpus[0].registers.v[0].line, 69);
    cr_expect_eq(f->vcpus[0].registers.v[0].column, 20);
    cr_expect_eq(f->vcpus[1].vcpu, 1);
    cr_assert_eq(f->vcpus[1].registers.n, 2);
    cr_expect_eq(f->vcpus[1].registers.v[1].reg, SCENARIO_REG_RIP);
    cr_expect_eq(f->vcpus[1].registers.v[1].value, 0x400002);
    cr_assert_eq(f->nr_memory, 1);
    cr_expect_eq(f->memory[0].gpa, 0x201010);
    cr_expect_eq(f->memory[0].bytes.len, 2);
    cr_expect(f->events.set);
    cr_expect_eq(f->events.value, 5);
    cr_expect_eq(f->events.line, 74);
    cr_expect_eq(f->events.column, 11);
    cr_assert_eq(f->nr_event_counts, 3);
    cr_expect_eq(f->event_counts[0].reason, SCENARIO_REASON_MEM_ACCESS);
    cr_expect_eq(f->event_counts[0].count, 1);
    cr_expect_eq(f->event_counts[1].reason, SCENARIO_REASON_CPUID);
    cr_expect_eq(f->event_counts[1].count, 3);
    cr_expect_eq(f->event_counts[2].reason, SCENARIO_REASON_UNKNOWN, "a reason given as 0");
    cr_expect_eq(f->event_counts[1].line, 75);
    cr_expect_eq(f->event_counts[1].column, 40);

    cr_expect_eq(s->instruction_limit, 0x100000);

    const struct scenario_sharing *sh = &s->sharing;
    cr_expect(sh->given);
    cr_expect_not(sh->ring);
    cr_expect_eq(sh->version, 7);
    cr_assert_eq(sh->nr_share, 1);
    cr_expect_eq(sh->share[0].source, 0x20);
    cr_expect_eq(sh->share[0].client, 0x21);
    cr_expect_eq(sh->share[0].line, 84);
    cr_expect(sh->max_pages_tot);
    const struct scenario_introspector *in = &s->introspector;
    cr_expect(in->given);
    cr_expect_eq(in->line, 87);
    cr_expect_eq(in->guest.memory, 2u << 20);
    cr_expect_eq(in->guest.code_bytes.len, 1);
    cr_expect_eq(in->guest.entry_gpa, 0x1000);
    cr_expect_eq(in->token_gpa.value, 0x3000);
    cr_expect_eq(in->guest.nr_data, 1);
    cr_expect_eq(in->guest.registers.n, 1);
    cr_expect(in->guest.idt_handler.set);
    cr_expect_eq(in->guest.hypercalls, SCENARIO_HYPERCALLS_KVM);
    scenario_free(s);
}

/* Every default: a file with only the required keys gets the documented values. */
Test(valid, defaults)
{
    size_t len;
    char *text = read_data("minimal.yaml", &len);
    char err[1024];
    struct scenario *s;
    int rc = scenario_parse(text, len, "scenarios/minimal.yaml", &s, err, sizeof(err));
    free(text);
    cr_assert_eq(rc, 0, "minimal.yaml refused: %s", err);
    cr_expect_str_eq(s->name, "minimal", "name defaults to the file name without dir and .yaml");
    cr_expect_null(s->description);
    cr_expect_eq(s->guest.mode, SCENARIO_MODE_LONG);
    cr_expect_eq(s->guest.memory, 16u << 20);
    cr_expect_eq(s->guest.vcpus, 1);
    cr_expect_null(s->guest.code);
    cr_assert_eq(s->guest.code_bytes.len, 1);
    cr_expect_eq(s->guest.code_bytes.data[0], 0xf4);
    cr_expect_eq(s->guest.mappings[0].rights,
                 SCENARIO_RIGHT_R | SCENARIO_RIGHT_W | SCENARIO_RIGHT_X, "rights default rwx");
    cr_expect_eq(s->guest.mappings[0].page, 4096, "page defaults to 4K");
    cr_expect_eq(s->guest.nr_data, 0);
    cr_expect_eq(s->guest.registers.n, 0);
    cr_expect_eq(s->p2m.default_access, SCENARIO_ACCESS_RWX);
    cr_expect_eq(s->p2m.nr_access, 0);
    cr_expect(s->monitor.ring, "ring defaults to true");
    cr_expect_eq(s->monitor.version, 7);
    cr_expect_not(s->monitor.access_required);
    cr_expect_not(s->has_client);
    cr_expect_eq(s->client.nr_events, 0);
    cr_expect_eq(s->final.guest, SCENARIO_END_ANY);
    cr_expect_eq(s->final.nr_vcpus, 0);
    cr_expect_eq(s->final.nr_memory, 0);
    cr_expect_not(s->final.events.set);
    cr_expect_eq(s->final.nr_event_counts, 0);
    cr_expect_eq(s->instruction_limit, 1000000);
    scenario_free(s);
}

/* Defaults inside client items: order sequence, repeat 1, the default response. */
Test(valid, client_defaults)
{
    struct scenario *s = parse_ok(BASE "client:\n  events:\n    - expect: {reason: MEM_ACCESS}\n");
    cr_expect(s->has_client);
    cr_expect_eq(s->client.order, SCENARIO_ORDER_SEQUENCE);
    cr_assert_eq(s->client.nr_events, 1);
    const struct scenario_event *e = &s->client.events[0];
    cr_expect_eq(e->repeat, 1);
    cr_expect_null(e->name);
    const struct scenario_response *r = &e->response;
    cr_expect_eq(r->flags, 1u << SCENARIO_FLAG_VCPU_PAUSED);
    cr_expect(r->echo);
    cr_expect_not(r->no_response);
    cr_expect_not(r->altp2m_idx.set);
    cr_expect_not(r->emul_read_size.set);
    cr_expect_not(r->version.set);
    cr_expect_not(r->vcpu_id.set);
    cr_expect_eq(r->emul_read_data.len, 0);
    cr_expect_eq(r->nr_set_access, 0);
    cr_expect_eq(r->registers.n, 0);
    cr_expect_eq(r->defer, 0);
    cr_expect_eq(r->line, 8, "without respond, the position is the item's");
    cr_expect_eq(r->column, 7);
    scenario_free(s);

    /* An empty client: a scripted client that expects no event at all. */
    s = parse_ok(BASE "client: {}\n");
    cr_expect(s->has_client);
    cr_expect_eq(s->client.nr_events, 0);
    scenario_free(s);

    /* flags: [] is an answer with no flag (the vCPU stays paused). */
    s = parse_ok(BASE "client:\n  events:\n    - {expect: {}, respond: {flags: []}}\n");
    cr_expect_eq(s->client.events[0].response.flags, 0);
    scenario_free(s);
}

/* The name defaults from the file name: directory and .yaml/.yml go, "<input>" for NULL. */
Test(valid, default_name)
{
    char err[512];
    struct scenario *s;
    cr_assert_eq(scenario_parse(BASE, strlen(BASE), "a/b/c.yml", &s, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(s->name, "c");
    scenario_free(s);
    cr_assert_eq(scenario_parse(BASE, strlen(BASE), "plain", &s, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(s->name, "plain");
    scenario_free(s);
    cr_assert_eq(scenario_parse(BASE, strlen(BASE), NULL, &s, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(s->file, "<input>");
    scenario_free(s);
    cr_expect_eq(scenario_parse("x", 1, NULL, &s, err, sizeof(err)), -EINVAL);
    cr_expect(strncmp(err, "<input>:1:1: ", 13) == 0, "%s", err);
}

/* Numbers: decimal, 0x/0X hex, K/M/G sizes (binary), the full 64-bit range. */
Test(valid, numbers_and_sizes)
{
    struct scenario *s = parse_ok(
        "guest:\n"
        "  memory: 1G\n"
        "  vcpus: 64\n"
        "  code_bytes: \"F4\"\n"
        "  entry: 0XfFfFfFfF80000000\n"
        "  mappings:\n"
        "    - {gla: 0xffffffff80000000, gpa: 0, size: 2M, page: 2M}\n"
        "    - {gla: 0x40000000, gpa: 0x3ffff000, size: 0x1000, page: 4096}\n"
        "  registers: {rax: 18446744073709551615, rbx: 0xffffffffffffffff, rcx: 0}\n"
        "limits: {instructions: 10000000000}\n");
    cr_expect_eq(s->guest.memory, 1ull << 30);
    cr_expect_eq(s->guest.vcpus, 64);
    cr_expect_eq(s->guest.code_bytes.data[0], 0xf4);
    cr_expect_eq(s->guest.entry, 0xffffffff80000000ull);
    cr_expect_eq(s->guest.mappings[1].gpa, (1ull << 30) - 4096, "the last page of 1G");
    cr_expect_eq(s->guest.registers.v[0].value, UINT64_MAX);
    cr_expect_eq(s->guest.registers.v[1].value, UINT64_MAX);
    cr_expect_eq(s->instruction_limit, 10000000000ull);
    scenario_free(s);
    /* Only sizes (memory, size, page) take a suffix; addresses do not. */
    expect_error(BASE "  data: [{gpa: 1M, bytes: \"00\"}]\n", 6, 16,
                 "'1M' is not a number in guest.data[0].gpa; expected a decimal or 0x-hex number");
}

/* respond.snapshot: take or restore; restore stands alone (it replaces the answer). */
Test(valid, response_snapshot)
{
    struct scenario *s = parse_ok(BASE "client:\n  events:\n    - {expect: {}, respond: {snapshot: take}}\n"
                                       "    - {expect: {}, respond: {snapshot: restore}}\n");
    cr_expect_eq(s->client.events[0].response.snapshot, SCENARIO_SNAPSHOT_TAKE);
    cr_expect_eq(s->client.events[1].response.snapshot, SCENARIO_SNAPSHOT_RESTORE);
    scenario_free(s);
    expect_error(BASE "client:\n  events:\n    - {expect: {}, respond: {snapshot: restore, flags: [VCPU_PAUSED]}}\n", 8, 49,
                 "'flags' in client.events[0].respond has no effect with snapshot: restore");
    expect_error(BASE "client:\n  events:\n    - {expect: {}, respond: {snapshot: later}}\n", 8, 40,
                 "client.events[0].respond.snapshot");
}

/* guest.online: the vCPUs up at boot, 1 to vcpus, all of them by default. */
Test(valid, guest_online)
{
    struct scenario *s = parse_ok(BASE "  vcpus: 4\n");
    cr_expect_eq(s->guest.online, 4, "default: every vCPU is up");
    scenario_free(s);
    s = parse_ok(BASE "  vcpus: 4\n  online: 1\n");
    cr_expect_eq(s->guest.online, 1);
    scenario_free(s);
    expect_error(BASE "  vcpus: 2\n  online: 3\n", 7, 11, "guest.online is 3; expected 1 to 2");
    expect_error(BASE "  online: 0\n", 6, 11, "guest.online is 0; expected 1 to 1");
}

/* A mapping may end at the very top of the address space (gla + size == 2^64). */
Test(valid, mapping_at_top_of_address_space)
{
    struct scenario *s = parse_ok("guest:\n"
                                  "  code_bytes: f4\n"
                                  "  entry: 0xfffffffffffff000\n"
                                  "  mappings: [{gla: 0xfffffffffffff000, gpa: 0x2000, size: 4K}]\n");
    cr_expect_eq(s->guest.entry_gpa, 0x2000);
    scenario_free(s);
}

/* Hex byte strings: spaces optional, any case, across lines of a block scalar. */
Test(valid, hex_strings)
{
    struct scenario *s = parse_ok("guest:\n"
                                  "  code_bytes: |\n"
                                  "    48 89 03\n"
                                  "    F4 90\n"
                                  "  entry: 0x1000\n"
                                  "  mappings: [{gla: 0x1000, gpa: 0x1000, size: 4K}]\n"
                                  "  data:\n"
                                  "    - {gpa: 0x2000, bytes: \"0102aAbB\"}\n");
    cr_assert_eq(s->guest.code_bytes.len, 5);
    cr_expect_arr_eq(s->guest.code_bytes.data, "\x48\x89\x03\xf4\x90", 5);
    cr_assert_eq(s->guest.data[0].bytes.len, 4);
    cr_expect_arr_eq(s->guest.data[0].bytes.data, "\x01\x02\xaa\xbb", 4);
    scenario_free(s);
}

/* pae32: 32-bit addresses, 2M pages; entry maps through the mapping that holds it. */
Test(valid, pae32_mode)
{
    struct scenario *s = parse_ok("guest:\n"
                                  "  mode: pae32\n"
                                  "  code: hlt\n"
                                  "  entry: 0xc0001000\n"
                                  "  mappings:\n"
                                  "    - {gla: 0x0, gpa: 0x0, size: 2M, page: 2M}\n"
                                  "    - {gla: 0xc0000000, gpa: 0x200000, size: 0x3ff000}\n");
    cr_expect_eq(s->guest.mode, SCENARIO_MODE_PAE32);
    cr_expect_eq(s->guest.entry_gpa, 0x201000);
    cr_expect_str_eq(s->guest.code, "hlt");
    cr_expect_eq(s->guest.code_first_line, 3, "a plain scalar's code starts on its own line");
    scenario_free(s);
}

/* scenario_load reads a file as scenario_parse sees the same text. */
Test(valid, load_from_file)
{
    char err[512], path[512];
    struct scenario *s;
    snprintf(path, sizeof(path), "%s/complete.yaml", SCENARIO_TEST_DATA);
    cr_assert_eq(scenario_load(path, &s, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(s->file, path);
    cr_expect_str_eq(s->name, "complete-example");
    cr_expect_eq(s->client.nr_expected, 5);
    scenario_free(s);
    scenario_free(NULL);
}

/* The example in docs/scenario-format.md (its first yaml block) is valid and means what it says. */
Test(valid, documented_example)
{
    FILE *f = fopen(SCENARIO_FORMAT_DOC, "rb");
    if (!f)
        TEST_ERROR("cannot open %s: %s", SCENARIO_FORMAT_DOC, strerror(errno));
    static char doc[1 << 16];
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    fclose(f);
    doc[n] = '\0';
    char *start = strstr(doc, "```yaml\n");
    char *end = start ? strstr(start + 8, "\n```\n") : NULL;
    if (!start || !end)
        TEST_ERROR("no ```yaml block in %s", SCENARIO_FORMAT_DOC);
    start += 8;
    end[1] = '\0';
    struct scenario *s = parse_ok(start);
    cr_expect_str_eq(s->name, "write-to-readonly");
    cr_expect_eq(s->guest.memory, 4u << 20);
    cr_expect_eq(s->guest.entry_gpa, 0x100000);
    cr_assert_eq(s->p2m.nr_access, 1);
    cr_expect_eq(s->p2m.access[0].access, SCENARIO_ACCESS_R);
    cr_assert_eq(s->client.nr_events, 1);
    const struct scenario_response *r = &s->client.events[0].response;
    cr_assert_eq(r->nr_set_access, 1);
    cr_expect_eq(r->set_access[0].gfn, 0x80);
    cr_expect_eq(r->set_access[0].access, SCENARIO_ACCESS_RW);
    cr_expect_eq(r->flags, 1u << SCENARIO_FLAG_VCPU_PAUSED);
    cr_expect_eq(s->final.guest, SCENARIO_END_HALTED);
    cr_expect_eq(s->final.memory[0].bytes.data[0], 0x2a);
    scenario_free(s);
}

/* The name tables the runner prints with, and the register lookup, agree with Xen's values. */
Test(valid, name_tables)
{
    cr_expect_str_eq(scenario_reason_name(1), "MEM_ACCESS");
    cr_expect_str_eq(scenario_reason_name(16), "IO_INSTRUCTION");
    cr_expect_null(scenario_reason_name(17));
    cr_expect_str_eq(scenario_flag_name(0), "VCPU_PAUSED");
    cr_expect_str_eq(scenario_flag_name(15), "RESET_FORK_MEMORY");
    cr_expect_null(scenario_flag_name(16));
    cr_expect_str_eq(scenario_access_name(8), "rx2rw");
    cr_expect_str_eq(scenario_access_name(10), "default");
    cr_expect_null(scenario_access_name(11));
    cr_expect_str_eq(scenario_end_name(SCENARIO_END_CRASHED), "crashed");
    cr_expect_str_eq(scenario_end_name(SCENARIO_END_BLOCKED), "blocked");
    cr_expect_null(scenario_end_name(SCENARIO_END_ANY));
    cr_expect_str_eq(scenario_end_name(SCENARIO_END_SHUTDOWN), "shutdown");
    cr_expect_null(scenario_end_name(SCENARIO_END_SHUTDOWN + 1));
    cr_expect_str_eq(scenario_match_field_name(SCENARIO_MATCH_GLA_VALID), "gla_valid");
    for (unsigned r = 0; r < SCENARIO_REG_COUNT; r++)
        cr_expect_eq(scenario_reg_lookup(scenario_reg_name(r)), (int)r, "register %u", r);
    cr_expect_eq(scenario_reg_lookup("RAX"), -1);
    cr_expect_eq(scenario_reg_lookup(NULL), -1);
    cr_expect_null(scenario_reg_name(SCENARIO_REG_COUNT));
}

/* ---- I/O -------------------------------------------------------------------- */

/* A missing file is -ENOENT with "FILE: cannot read: ..."; a directory -EISDIR. */
Test(io, missing_file_and_directory)
{
    char err[512];
    struct scenario *s = (struct scenario *)1;
    cr_expect_eq(scenario_load("/nonexistent/x.yaml", &s, err, sizeof(err)), -ENOENT);
    cr_expect_null(s);
    cr_expect(strstr(err, "/nonexistent/x.yaml: cannot read: ") == err, "%s", err);
    cr_expect_eq(scenario_load(SCENARIO_TEST_DATA, &s, err, sizeof(err)), -EISDIR);
    cr_expect(strstr(err, "cannot read") != NULL, "%s", err);
    /* A zero-length error buffer is allowed. */
    cr_expect_eq(scenario_load("/nonexistent/x.yaml", &s, NULL, 0), -ENOENT);
}

/* ---- Keys ------------------------------------------------------------------- */

/* An unknown key names itself, where it is, and every valid key there. */
Test(keys, unknown_key)
{
    expect_error("guset:\n  entry: 1\n", 1, 1,
                 "unknown key 'guset' at the top level; expected one of: name, description, "
                 "guest, p2m, monitor, client, final, limits");
    expect_error(BASE "p2m:\n  access:\n    - {gfn: 1, acess: r}\n", 8, 16,
                 "unknown key 'acess' in p2m.access[0]; expected one of: gfn, count, access");
    expect_error(BASE "client:\n  events:\n    - expect: {reason: 1, gpa: 2}\n", 8, 27,
                 "unknown key 'gpa' in client.events[0].expect; expected one of: reason, vcpu, "
                 "flags, altp2m_idx, gfn, offset, gla, access, gla_valid, fault, regs");
    expect_error("guest:\n  code_bytes: f4\n  entry: 0x1000\n  mappings:\n"
                 "    - {gla: 0x1000, gpa: 0x1000, size: 4K, right: rw}\n", 5, 44,
                 "unknown key 'right' in guest.mappings[0]");
}

/* A key given twice is an error at the second, naming the first's line. */
Test(keys, duplicate_key)
{
    expect_error(BASE "guest:\n  entry: 0\n", 6, 1,
                 "duplicate key 'guest' at the top level", "first at line 1");
    expect_error(BASE "final:\n  registers: {rax: 1, rbx: 2, rax: 3}\n", 7, 31,
                 "duplicate key 'rax' in final.registers", "first at line 7");
    expect_error(BASE "final:\n  event_counts: {MEM_ACCESS: 1, 1: 2}\n", 7, 33,
                 "duplicate key 'MEM_ACCESS' in final.event_counts");
    expect_error("guest:\n  code_bytes: f4\n  entry: 0x1000\n  mappings:\n"
                 "    - {gla: 0x1000, gla: 0x1000, gpa: 0x1000, size: 4K}\n", 5, 21,
                 "duplicate key 'gla' in guest.mappings[0]");
}

/* A required key that is absent is reported at the mapping that lacks it. */
Test(keys, missing_required_key)
{
    expect_error("name: x\n", 1, 1, "missing key 'guest' at the top level");
    expect_error("guest:\n  code_bytes: f4\n  mappings: [{gla: 0, gpa: 0, size: 4K}]\n", 2, 3,
                 "missing key 'entry' in guest");
    expect_error("guest:\n  code_bytes: f4\n  entry: 0\n", 2, 3, "missing key 'mappings' in guest");
    expect_error("guest:\n  entry: 0\n  mappings: [{gla: 0, gpa: 0, size: 4K}]\n", 2, 3,
                 "missing key 'code' in guest", "exactly one of code");
    expect_error("guest:\n  code_bytes: f4\n  entry: 0\n  mappings:\n    - {gla: 0, size: 4K}\n",
                 5, 7, "missing key 'gpa' in guest.mappings[0]");
    expect_error(BASE "p2m:\n  access: [{gfn: 1}]\n", 7, 12, "missing key 'access' in p2m.access[0]");
    expect_error(BASE "client:\n  events:\n    - {respond: {}}\n", 8, 7,
                 "missing key 'expect' in client.events[0]");
    expect_error(BASE "final:\n  vcpus: [{vcpu: 0}]\n", 7, 11,
                 "missing key 'registers' in final.vcpus[0]");
}

/* Keys must be names: a list or mapping as a key is refused. */
Test(keys, non_scalar_key)
{
    expect_error("? [a, b]\n: 1\n", 1, 3, "a key at the top level is a list; expected a plain name");
}

/* ---- Types ------------------------------------------------------------------ */

/* A value of the wrong kind says what it is and what was expected. */
Test(types, wrong_node_type)
{
    expect_error("guest: [1, 2]\n", 1, 8, "guest is a list; expected a mapping");
    expect_error("guest:\n  vcpus: [1]\n", 2, 10, "guest.vcpus is a list; expected a decimal");
    expect_error("guest:\n  mappings: {gla: 0}\n", 2, 13, "guest.mappings is a mapping; expected a list");
    expect_error(BASE "p2m:\n", 6, 5, "p2m is empty; expected a mapping");
    expect_error(BASE "monitor: {ring: yes}\n", 6, 17, "'yes' is not a boolean in monitor.ring; "
                 "expected true or false");
    expect_error(BASE "name: {a: 1}\n", 6, 7, "name is a mapping; expected a string");
    expect_error("- guest\n", 1, 1, "the document is a list; expected a mapping of top-level keys");
    expect_error("hello\n", 1, 1, "the document is a single value; expected a mapping");
    expect_error(BASE "client:\n  events:\n    - expect: {regs: [1]}\n", 8, 22,
                 "client.events[0].expect.regs is a list; expected a mapping");
}

/* Bad numbers: junk, negative, leading zero, empty. */
Test(types, bad_number)
{
    expect_error("guest:\n  vcpus: 12x\n", 2, 10,
                 "'12x' is not a number in guest.vcpus; expected a decimal or 0x-hex number");
    expect_error("guest:\n  vcpus: -1\n", 2, 10, "'-1' is negative in guest.vcpus");
    expect_error("guest:\n  vcpus: 010\n", 2, 10, "'010' has a leading zero in guest.vcpus");
    expect_error("guest:\n  vcpus: 0x\n", 2, 10, "'0x' is not a number");
    expect_error("guest:\n  vcpus: 1_0\n", 2, 10, "'1_0' is not a number");
    expect_error("guest:\n  entry:\n", 2, 9, "guest.entry is empty; expected a decimal or 0x-hex");
    expect_error("guest:\n  memory: 16Q\n", 2, 11, "'16Q' is not a number in guest.memory; "
                 "expected a size such as 4096, 0x1000, 64K, 16M or 1G");
    expect_error("guest:\n  vcpus: 4K\n", 2, 10, "'4K' is not a number in guest.vcpus",
                 "decimal or 0x-hex");
}

/* A value beyond 64 bits, however written, is an overflow, never a wrap. */
Test(types, overflow)
{
    expect_error("guest:\n  entry: 0x10000000000000000\n", 2, 10,
                 "'0x10000000000000000' does not fit in 64 bits in guest.entry");
    expect_error("guest:\n  entry: 18446744073709551616\n", 2, 10, "does not fit in 64 bits");
    expect_error("guest:\n  memory: 17179869184G\n", 2, 11, "does not fit in 64 bits");
    expect_error("guest:\n  entry: 0x0000000000000000000001000\n  memory: 99999999999999999999\n",
                 3, 11, "does not fit in 64 bits in guest.memory");
}

/* Names that are not in their table list every valid name. */
Test(types, bad_names)
{
    expect_error(BASE "p2m:\n  access:\n    - {gfn: 1, access: rwz}\n", 8, 24,
                 "'rwz' is not an access type", "expected one of n, r, w, rw, x, rx, wx, rwx, "
                 "rx2rw, n2rwx, default");
    expect_error(BASE "p2m: {default_access: default}\n", 6, 23,
                 "p2m.default_access cannot be 'default'");
    expect_error(BASE "guest2: 1\n", 6, 1, "unknown key 'guest2'");
    expect_error("guest:\n  mode: real\n", 2, 9, "'real' is not a guest mode in guest.mode; "
                 "expected one of long, pae32");
    expect_error(BASE "client:\n  order: random\n", 7, 10, "'random' is not an event order");
    expect_error(BASE "client:\n  events:\n    - expect: {reason: MEM_ACCES}\n", 8, 24,
                 "'MEM_ACCES' is not an event reason in client.events[0].expect.reason",
                 "UNKNOWN, MEM_ACCESS", "IO_INSTRUCTION, or a number 0 to 16");
    expect_error(BASE "client:\n  events:\n    - expect: {reason: 17}\n", 8, 24,
                 "client.events[0].expect.reason is 17; expected 0 to 16");
    expect_error(BASE "client:\n  events:\n    - expect: {flags: [VCPU_PAUSED, PAUSED]}\n", 8,
                 37, "'PAUSED' is not a vm_event flag in client.events[0].expect.flags[1]",
                 "VCPU_PAUSED, FOREIGN");
    expect_error(BASE "client:\n  events:\n    - expect: {flags: [DENY, DENY]}\n", 8, 30,
                 "flag DENY is listed twice");
    expect_error(BASE "client:\n  events:\n    - expect: {fault: gla}\n", 8, 23,
                 "'gla' is not a fault kind", "expected one of none, with_gla, in_gpt");
    expect_error(BASE "final: {guest: stopped}\n", 6, 16,
                 "'stopped' is not a final guest state in final.guest; expected one of halted, "
                 "limit, crashed, fault, blocked");
    expect_error(BASE "final:\n  event_counts: {MEMACCESS: 1}\n", 7, 18,
                 "'MEMACCESS' is not an event reason in final.event_counts");
}

/* Register names: an unknown one lists the valid names; rip belongs to guest.entry. */
Test(types, bad_register_name)
{
    expect_error("guest:\n  registers:\n    rxx: 1\n", 3, 5,
                 "'rxx' is not a register name in guest.registers; expected one of: rax, rbx, "
                 "rcx, rdx, rsi, rdi, rbp, rsp, r8", "sysenter_cs", "shadow_gs, xcr0");
    expect_error(BASE "client:\n  events:\n    - expect: {regs: {eax: 1}}\n", 8, 23,
                 "'eax' is not a register name in client.events[0].expect.regs");
    expect_error(BASE "  registers: {rip: 0x1000}\n", 6, 15, "rip cannot be set in guest.registers",
                 "guest.entry");
}

/* Letters of rights and matcher access: only their letters, each once, not empty. */
Test(types, bad_letters)
{
    expect_error("guest:\n  code_bytes: f4\n  entry: 0x1000\n"
                 "  mappings: [{gla: 0x1000, gpa: 0x1000, size: 4K, rights: rwq}]\n", 4, 59,
                 "'rwq' in guest.mappings[0].rights has 'q', not one of the letters rwxu");
    expect_error("guest:\n  code_bytes: f4\n  entry: 0x1000\n"
                 "  mappings: [{gla: 0x1000, gpa: 0x1000, size: 4K, rights: rww}]\n", 4, 59,
                 "has 'w' twice");
    expect_error(BASE "client:\n  events:\n    - expect: {access: u}\n", 8, 24,
                 "'u' in client.events[0].expect.access has 'u', not one of the letters rwx");
    expect_error(BASE "client:\n  events:\n    - expect: {access: \"\"}\n", 8, 24,
                 "client.events[0].expect.access is empty");
}

/* Hex byte strings: a bad digit and a lone digit are named with their place. */
Test(types, bad_hex)
{
    expect_error("guest:\n  code_bytes: \"48 8z\"\n", 2, 15,
                 "bad hex byte string in guest.code_bytes: 'z' (character 5) is not a hex digit",
                 "expected pairs of hex digits");
    expect_error("guest:\n  code_bytes: \"48 8 9\"\n", 2, 15, "a lone hex digit '8' (character 4)");
    expect_error("guest:\n  code_bytes: \"  \"\n", 2, 15, "guest.code_bytes holds no bytes");
    expect_error("guest:\n  code_bytes: 0x48\n", 2, 15, "'x' (character 2) is not a hex digit");
}

/* Strings may not hide a NUL (the model keeps C strings). */
Test(types, nul_in_string)
{
    expect_error(BASE "name: \"a\\0b\"\n", 6, 7, "name contains a NUL character");
}

/* ---- Guest rules -------------------------------------------------------------- */

/* code and code_bytes together: the error is at whichever comes second. */
Test(guest, both_code_and_code_bytes)
{
    expect_error(BASE "  code: hlt\n", 6, 3,
                 "both code and code_bytes in guest; expected exactly one of them");
    expect_error("guest:\n  code: hlt\n  code_bytes: f4\n", 3, 3, "both code and code_bytes");
}

/* Overlapping gla ranges: reported at the later mapping, naming both. */
Test(guest, overlapping_mappings)
{
    expect_error("guest:\n  code_bytes: f4\n  entry: 0x1000\n  mappings:\n"
                 "    - {gla: 0x1000, gpa: 0x1000, size: 16K}\n"
                 "    - {gla: 0x8000, gpa: 0x8000, size: 4K}\n"
                 "    - {gla: 0x4000, gpa: 0x9000, size: 4K}\n", 7, 7,
                 "guest.mappings[2] (gla 0x4000 to 0x4fff) overlaps guest.mappings[0] "
                 "(gla 0x1000 to 0x4fff, line 5); expected disjoint gla ranges");
    /* The same start, and a range inside a large earlier one after a gap. */
    expect_error("guest:\n  code_bytes: f4\n  entry: 0x1000\n  mappings:\n"
                 "    - {gla: 0x1000, gpa: 0x1000, size: 4K}\n"
                 "    - {gla: 0x1000, gpa: 0x2000, size: 4K}\n", 6, 7,
                 "guest.mappings[1] (gla 0x1000 to 0x1fff) overlaps guest.mappings[0]");
    expect_error("guest:\n  code_bytes: f4\n  entry: 0x1000\n  mappings:\n"
                 "    - {gla: 0x200000, gpa: 0, size: 2M, page: 2M}\n"
                 "    - {gla: 0x1000, gpa: 0x1000, size: 4K}\n"
                 "    - {gla: 0x3ff000, gpa: 0x1000, size: 4K}\n", 7, 7,
                 "guest.mappings[2] (gla 0x3ff000 to 0x3fffff) overlaps guest.mappings[0]");
    /* Touching ranges do not overlap. */
    scenario_free(parse_ok("guest:\n  code_bytes: f4\n  entry: 0x1000\n  mappings:\n"
                           "    - {gla: 0x1000, gpa: 0x1000, size: 4K}\n"
                           "    - {gla: 0x2000, gpa: 0x1000, size: 4K}\n"));
}

/* Alignment: gla, gpa and size are multiples of the mapping's page size. */
Test(guest, misaligned_mapping)
{
    const char *head = "guest:\n  code_bytes: f4\n  entry: 0x1000\n  mappings:\n";
    char buf[512];
    snprintf(buf, sizeof(buf), "%s    - {gla: 0x1001, gpa: 0x1000, size: 4K}\n", head);
    expect_error(buf, 5, 13, "guest.mappings[0].gla is 0x1001, not a multiple of the page size 4K");
    snprintf(buf, sizeof(buf), "%s    - {gla: 0x1000, gpa: 0x1000, size: 100}\n", head);
    expect_error(buf, 5, 40, "guest.mappings[0].size is 100, not a multiple");
    snprintf(buf, sizeof(buf), "%s    - {gla: 0x1000, gpa: 0x1000, size: 0}\n", head);
    expect_error(buf, 5, 40, "guest.mappings[0].size is 0; expected a size > 0");
    snprintf(buf, sizeof(buf), "%s    - {gla: 0x200000, gpa: 0x1000, size: 2M, page: 2M}\n", head);
    expect_error(buf, 5, 28, "guest.mappings[0].gpa is 0x1000, not a multiple of the page size 2M");
    snprintf(buf, sizeof(buf), "%s    - {gla: 0x1000, gpa: 0x1000, size: 4K, page: 8K}\n", head);
    expect_error(buf, 5, 50, "guest.mappings[0].page is 8K; expected 4K, 2M or 1G");
}

/* Address-space rules: canonical in long mode, below 4G and no 1G pages in pae32, no wrap. */
Test(guest, address_space)
{
    expect_error("guest:\n  code_bytes: f4\n  entry: 0x1000\n  mappings:\n"
                 "    - {gla: 0x7ffffffff000, gpa: 0, size: 8K}\n", 5, 13, "is not canonical");
    expect_error("guest:\n  mode: pae32\n  code_bytes: f4\n  entry: 0x1000\n  mappings:\n"
                 "    - {gla: 0xfffff000, gpa: 0, size: 8K}\n", 6, 13, "beyond 4G");
    expect_error("guest:\n  mode: pae32\n  memory: 1G\n  code_bytes: f4\n  entry: 0\n  mappings:\n"
                 "    - {gla: 0, gpa: 0, size: 1G, page: 1G}\n", 7, 40,
                 "1G, which pae32 paging does not have");
    expect_error("guest:\n  code_bytes: f4\n  entry: 0x1000\n  mappings:\n"
                 "    - {gla: 0xfffffffffffff000, gpa: 0, size: 8K}\n", 5, 47,
                 "gla + size overflows 64 bits");
    expect_error("guest:\n  mode: pae32\n  entry: 0x100000000\n", 3, 10,
                 "guest.entry is 0x100000000; expected 0 to 4294967295");
}

/* Guest memory bounds: mappings, data and code_bytes must lie inside it. */
Test(guest, beyond_memory)
{
    expect_error("guest:\n  memory: 64K\n  code_bytes: f4\n  entry: 0x1000\n  mappings:\n"
                 "    - {gla: 0x1000, gpa: 0xf000, size: 8K}\n", 6, 26,
                 "guest.mappings[0] maps gpa 0xf000 to 0x10fff, beyond guest memory (64K = 0x10000)");
    expect_error(BASE "  data: [{gpa: 0xfffffe, bytes: \"01 02 03\"}]\n", 6, 16,
                 "guest.data[0] (3 bytes at gpa 0xfffffe) extends beyond guest memory");
    expect_error(BASE "  data: [{gpa: 0xffffffffffffffff, bytes: \"01\"}]\n", 6, 16,
                 "extends beyond guest memory");
    expect_error("guest:\n  memory: 64K\n  code_bytes: \"01 02 03\"\n  entry: 0xffff\n  mappings:\n"
                 "    - {gla: 0, gpa: 0, size: 64K}\n", 3, 15,
                 "guest.code_bytes (3 bytes at gpa 0xffff, where entry maps) extends beyond guest "
                 "memory");
}

/* The entry point must be inside some mapping (the code is loaded where it maps). */
Test(guest, entry_not_mapped)
{
    expect_error("guest:\n  code_bytes: f4\n  entry: 0x2000\n  mappings:\n"
                 "    - {gla: 0x1000, gpa: 0x1000, size: 4K}\n", 3, 10,
                 "guest.entry 0x2000 is not inside any mapping");
}

/* An empty mapping list is refused: the guest could not run. */
Test(guest, empty_mappings)
{
    expect_error("guest:\n  code_bytes: f4\n  entry: 0\n  mappings: []\n", 4, 13,
                 "guest.mappings is empty; expected at least one mapping");
}

/* ---- p2m / client / final rules ---------------------------------------------------- */

/* A gfn range must lie within guest memory (p2m and set_access alike). */
Test(rules, gfn_beyond_memory)
{
    expect_error("guest:\n  memory: 64K\n  code_bytes: f4\n  entry: 0x1000\n  mappings:\n"
                 "    - {gla: 0x1000, gpa: 0x1000, size: 4K}\n"
                 "p2m:\n  access:\n    - {gfn: 0x10, access: r}\n", 9, 13,
                 "p2m.access[0] (gfn 0x10, count 1) reaches beyond guest memory (64K: gfns 0x0 "
                 "to 0xf); expected gfn + count <= 0x10");
    expect_error("guest:\n  memory: 64K\n  code_bytes: f4\n  entry: 0x1000\n  mappings:\n"
                 "    - {gla: 0x1000, gpa: 0x1000, size: 4K}\n"
                 "client:\n  events:\n    - expect: {}\n      respond:\n        set_access:\n"
                 "          - {gfn: 0xf, count: 0xffffffffffffffff, access: rw}\n", 12, 19,
                 "client.events[0].respond.set_access[0] (gfn 0xf, count 18446744073709551615) "
                 "reaches beyond guest memory");
    expect_error(BASE "p2m:\n  access: [{gfn: 1, count: 0, access: r}]\n", 7, 28,
                 "p2m.access[0].count is 0; expected at least 1");
}

/* Matcher fields out of range: a vcpu the guest lacks, an offset beyond a page. */
Test(rules, matcher_ranges)
{
    expect_error(BASE "client:\n  events:\n    - expect: {vcpu: 1}\n", 8, 22,
                 "client.events[0].expect.vcpu is 1, but the guest has 1 vcpu; expected 0 to 0");
    expect_error(BASE "client:\n  events:\n    - expect: {offset: 0x1000}\n", 8, 24,
                 "client.events[0].expect.offset is 0x1000; expected 0 to 4095");
    expect_error(BASE "client:\n  events:\n    - expect: {altp2m_idx: 65536}\n", 8, 28,
                 "expected 0 to 65535");
}

/* Response rules: no_response stands alone, emul data fits the ring version's buffer. */
Test(rules, response_rules)
{
    expect_error(BASE "client:\n  events:\n    - expect: {}\n      respond: {no_response: true, "
                 "flags: [DENY]}\n", 9, 36,
                 "'flags' in client.events[0].respond has no effect with no_response: true");
    char buf[4096];
    int n = snprintf(buf, sizeof(buf), "%s", BASE "client:\n  events:\n    - expect: {}\n"
                                             "      respond: {emul_read_data: \"");
    for (int i = 0; i < 341; i++)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "00");
    snprintf(buf + n, sizeof(buf) - (size_t)n, "\"}\n");
    expect_error(buf, 9, 33, "client.events[0].respond.emul_read_data is 341 bytes; expected at "
                 "most 340 (the capacity of data.emul.read in interface version 7)");
    n = snprintf(buf, sizeof(buf), "%s", BASE "monitor: {version: 1}\n" "client:\n  events:\n"
                 "    - expect: {}\n      respond: {emul_read_data: \"");
    for (int i = 0; i < 253; i++)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%02x", i & 0xff);
    snprintf(buf + n, sizeof(buf) - (size_t)n, "\"}\n");
    expect_error(buf, 10, 33, "is 253 bytes; expected at most 252", "interface version 1");
    expect_error(BASE "client:\n  events:\n    - expect: {}\n      respond: {emul_read_size: "
                 "0x100000000}\n", 9, 33, "emul_read_size is 0x100000000; expected 0 to 4294967295");
}

/* A scripted client needs the ring; monitor.version is 1 or 7. */
Test(rules, monitor_rules)
{
    expect_error(BASE "monitor: {ring: false}\nclient: {}\n", 7, 9,
                 "a client is scripted but monitor.ring is false and no paging or sharing ring is "
                 "enabled; expected monitor.ring: true or a paging or sharing section");
    expect_error(BASE "monitor: {version: 3}\n", 6, 20, "monitor.version is 3; expected 1 or 7");
    /* Without a client, ring: false is a plain set-up (e.g. access_required crashes). */
    struct scenario *s = parse_ok(BASE "monitor: {ring: false, access_required: true}\n"
                                       "final: {guest: crashed}\n");
    cr_expect_not(s->monitor.ring);
    cr_expect_eq(s->final.guest, SCENARIO_END_CRASHED);
    scenario_free(s);
}

/* final: one entry per vcpu (final.registers is vcpu 0), vcpus that exist. */
Test(rules, final_rules)
{
    expect_error(BASE "final:\n  registers: {rax: 1}\n  vcpus:\n    - {vcpu: 0, registers: {}}\n",
                 9, 14, "vcpu 0 has registers twice in final (first at line 7)");
    expect_error(BASE "final:\n  vcpus:\n    - {vcpu: 1, registers: {}}\n", 8, 14,
                 "final.vcpus[0].vcpu is 1, but the guest has 1 vcpu; expected 0 to 0");
    expect_error(BASE "final:\n  memory: [{gpa: 0x1000000, bytes: \"00\"}]\n", 7, 18,
                 "final.memory[0] (1 bytes at gpa 0x1000000) extends beyond guest memory");
}

/* ---- Limits ------------------------------------------------------------------------ */

/* vcpus 1..64, memory 64K..1G in whole pages, instructions 1..10^10, repeat and defer. */
Test(limits, value_limits)
{
    expect_error("guest:\n  vcpus: 65\n", 2, 10, "guest.vcpus is 65; expected 1 to 64");
    expect_error("guest:\n  vcpus: 0\n", 2, 10, "guest.vcpus is 0; expected 1 to 64");
    expect_error("guest:\n  memory: 2G\n", 2, 11, "guest.memory is 2G; expected 64K to 1G");
    expect_error("guest:\n  memory: 32K\n", 2, 11, "guest.memory is 32K; expected 64K to 1G");
    expect_error("guest:\n  memory: 65537\n", 2, 11, "guest.memory is 65537, not a multiple of 4K");
    expect_error(BASE "limits: {instructions: 0}\n", 6, 24,
                 "limits.instructions is 0; expected 1 to 10000000000");
    expect_error(BASE "limits: {instructions: 10000000001}\n", 6, 24, "expected 1 to 10000000000");
    expect_error(BASE "client:\n  events:\n    - {expect: {}, repeat: 0}\n", 8, 28,
                 "client.events[0].repeat is 0; expected 1 to 10000");
    expect_error(BASE "client:\n  events:\n    - {expect: {}, respond: {defer: 10001}}\n", 8, 37,
                 "client.events[0].respond.defer is 10001; expected 0 to 10000");
}

/* At most 10,000 client events, repeats counted: the item that crosses the limit is named. */
Test(limits, too_many_events)
{
    expect_error(BASE "client:\n  events:\n    - {expect: {}, repeat: 10000}\n"
                 "    - {expect: {}}\n", 9, 7,
                 "client.events[1] brings client.events to 10001 events (repeats counted); "
                 "expected at most 10000");
    /* 10,001 items of one event each. */
    const char *item = "    - {expect: {}}\n";
    size_t head = strlen(BASE "client:\n  events:\n"), il = strlen(item);
    char *buf = test_alloc(head + 10001 * il);
    memcpy(buf, BASE "client:\n  events:\n", head);
    for (size_t i = 0; i < 10001; i++)
        memcpy(buf + head + i * il, item, il);
    expect_error_v(buf, head + 10001 * il, 10008, 7,
                   "client.events has 10001 items; expected at most 10000 events", NULL);
    free(buf);
}

/* guest.code and hex byte strings: at most 1 MiB each. */
Test(limits, code_and_hex_size)
{
    const char *head = "guest:\n  code: \"";
    size_t hl = strlen(head), n = (1u << 20) + 1;
    char *buf = test_alloc(hl + n + 2);
    memcpy(buf, head, hl);
    memset(buf + hl, 'n', n);
    memcpy(buf + hl + n, "\"\n", 2);
    expect_error_v(buf, hl + n + 2, 2, 9,
                   "guest.code is 1048577 bytes; expected at most 1M (1048576 bytes)", NULL);
    free(buf);

    head = "guest:\n  code_bytes: \"";
    hl = strlen(head);
    n = 2 * ((1u << 20) + 1);
    buf = test_alloc(hl + n + 2);
    memcpy(buf, head, hl);
    memset(buf + hl, 'a', n);
    memcpy(buf + hl + n, "\"\n", 2);
    expect_error_v(buf, hl + n + 2, 2, 15,
                   "guest.code_bytes is 1048577 bytes; expected at most 1M (1048576 bytes)", NULL);
    free(buf);
}

/* A file over 4 MiB is refused before parsing, at 1:1, by scenario_parse and scenario_load. */
Test(limits, file_size)
{
    size_t n = 10u << 20;
    char *buf = test_alloc(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)(i * 2654435761u >> 13);
    expect_error_v(buf, n, 1, 1, "the file is 10485760 bytes; expected at most 4M", NULL);
    expect_error_v(buf, (4u << 20) + 1, 1, 1, "the file is 4194305 bytes", NULL);

    char path[] = "/tmp/scenario-big-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        TEST_ERROR("mkstemp: %s", strerror(errno));
    if (write(fd, buf, n) != (ssize_t)n)
        TEST_ERROR("write %s: %s", path, strerror(errno));
    close(fd);
    free(buf);
    char err[512];
    struct scenario *s;
    int rc = scenario_load(path, &s, err, sizeof(err));
    unlink(path);
    cr_expect_eq(rc, -EINVAL);
    cr_expect(strstr(err, ":1:1: the file is larger than 4M") != NULL, "%s", err);
}

/* ---- YAML itself ---------------------------------------------------------------------- */

/* libyaml's syntax errors keep their position and libyaml's own words. */
Test(yaml, syntax_error)
{
    expect_error("guest:\n  entry: [1, 2\n", 3, 1, "YAML syntax error: did not find expected ',' or ']'",
                 "while parsing a flow sequence at line 2, column 10");
    expect_error("guest:\n  entry: 1\n   bad: 2\n", 3, 7, "YAML syntax error: mapping values are "
                 "not allowed in this context");
    expect_error("guest:\n\tentry: 1\n", 2, 1, "YAML syntax error: found character that cannot "
                 "start any token");
    expect_error("guest: \"abc\n", 2, 1, "YAML syntax error: found unexpected end of stream",
                 "while scanning a quoted scalar at line 1, column 8");
}

/* Aliases are refused at the alias; anchors alone are harmless. */
Test(yaml, alias)
{
    expect_error(BASE "p2m:\n  access:\n    - &a {gfn: 1, access: r}\n    - *a\n", 9, 7,
                 "YAML alias '*a' is not supported; expected the value written out in full");
    /* A billion laughs never gets to expand. */
    expect_error("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n", 2, 8,
                 "YAML alias '*a'");
    scenario_free(parse_ok("guest: &g\n  code_bytes: f4\n  entry: 0x1000\n"
                           "  mappings: [{gla: 0x1000, gpa: 0x1000, size: 4K}]\n"));
}

/* Empty input, comments only, and an empty document: "empty", at 1:1 or the document. */
Test(yaml, empty)
{
    expect_error_v("", 0, 1, 1, "the file is empty; expected a mapping with at least the key 'guest'",
                   NULL);
    expect_error("# just a comment\n\n", 1, 1, "the file is empty");
    expect_error("---\n", 2, 1, "the document is empty");
    expect_error("---\n...\n", 2, 1, "the document is empty");
    char err[256];
    struct scenario *s;
    cr_expect_eq(scenario_parse(NULL, 0, FILE_NAME, &s, err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "t.yaml:1:1: the file is empty") == err, "%s", err);
}

/* A second document is refused where it starts. */
Test(yaml, multiple_documents)
{
    expect_error(BASE "---\nguest: {}\n", 6, 1,
                 "a second YAML document starts here; expected exactly one document");
    expect_error("--- 1\n--- 2\n", 2, 1, "a second YAML document");
}

/* Invalid UTF-8 and control characters: libyaml's reader error, placed by byte offset. */
Test(yaml, not_utf8)
{
    expect_error(BASE "name: caf\xe9\n", 6, 10, "invalid text: incomplete UTF-8 octet sequence; "
                 "expected UTF-8 text");
    expect_error(BASE "name: \xc3\xa9t\xc3\xa9\xff\n", 6, 10, "invalid text: invalid leading "
                 "UTF-8 octet (0xff)");
    expect_error_v(BASE "name: a\0b\n", strlen(BASE) + 10, 6, 8,
                   "invalid text: control characters are not allowed (0x0)", NULL);
    /* A UTF-8 byte-order mark is fine; UTF-16 is not accepted. */
    scenario_free(parse_ok("\xef\xbb\xbf" BASE));
    expect_error_v("\xff\xfeg\0:\0", 6, 1, 1, "invalid text", NULL);
}

/* Nesting deeper than the limit is refused before anything is loaded. */
Test(yaml, deep_nesting)
{
    size_t n = 100000;
    char *buf = test_alloc(n);
    memset(buf, '[', n);
    expect_error_v(buf, n, 1, 17, "nesting deeper than 16 levels", NULL);
    for (size_t i = 0; i < n; i += 2) {
        buf[i] = '-';
        buf[i + 1] = ' ';
    }
    expect_error_v(buf, n, 1, 33, "nesting deeper than 16 levels", NULL);
    free(buf);
    /* Deep, but within the limit, under an unknown key: the key is the error. */
    expect_error(BASE "x: [[[[[[[[[[[[[[1]]]]]]]]]]]]]]\n", 6, 1, "unknown key 'x'");
}

/* More than 1,000,000 YAML nodes (4 MiB of "- 0" lines) is refused while scanning. */
Test(yaml, too_many_nodes)
{
    size_t items = 1u << 20, n = items * 4;
    char *buf = test_alloc(n);
    for (size_t i = 0; i < items; i++)
        memcpy(buf + 4 * i, "- 0\n", 4);
    expect_error_v(buf, n, 1000000, 3, "more than 1000000 YAML nodes", NULL);
    free(buf);
}

/* ---- Hostile input ------------------------------------------------------------------------ */

/* The one-message contract for an arbitrary input: 0, or -EINVAL with "t.yaml:L:C: ...; ...". */
static void parse_any(const char *text, size_t len, const char *what, size_t k)
{
    char err[1024];
    struct scenario *s = NULL;
    int rc = scenario_parse(text, len, FILE_NAME, &s, err, sizeof(err));
    if (rc == 0) {
        cr_assert_not_null(s, "%s %zu: success without a model", what, k);
        scenario_free(s);
        return;
    }
    cr_assert_eq(rc, -EINVAL, "%s %zu: rc %d (%s)", what, k, rc, err);
    cr_assert_null(s);
    unsigned line = 0, column = 0;
    int used = 0;
    cr_assert(sscanf(err, FILE_NAME ":%u:%u: %n", &line, &column, &used) == 2 && used > 0 &&
                  line >= 1 && column >= 1,
              "%s %zu: message without FILE:LINE:COLUMN: %s", what, k, err);
    cr_assert(strstr(err, "; ") && !strchr(err, '\n'), "%s %zu: malformed message: %s", what, k,
              err);
}

/* Every prefix of the complete file parses or fails with a well-formed message. */
Test(hostile, every_prefix)
{
    size_t len;
    char *text = read_data("complete.yaml", &len);
    for (size_t i = 0; i <= len; i++)
        parse_any(text, i, "prefix", i);
    free(text);
}

/* Thousands of seeded mutations of the complete file (bytes changed, cut, repeated). */
Test(hostile, mutations, .timeout = 120)
{
    size_t len;
    char *orig = read_data("complete.yaml", &len);
    char *buf = test_alloc(2 * len + 64);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    static const char pool[] = " \n\t:-[]{}&*!|>'\"#,?%@`0x1fFKMG\\\xc3\xa9\xff\0";
    for (size_t k = 0; k < 4000; k++) {
        memcpy(buf, orig, len);
        size_t n = len;
        for (int edits = 1 + (int)(k % 4); edits > 0; edits--) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t at = (size_t)(x >> 8) % n;
            switch (x % 4) {
            case 0: /* replace a byte */
                buf[at] = pool[(x >> 40) % (sizeof(pool) - 1)];
                break;
            case 1: /* delete a run */
                {
                    size_t d = 1 + (x >> 32) % 8;
                    if (d > n - at)
                        d = n - at;
                    memmove(buf + at, buf + at + d, n - at - d);
                    n -= d;
                }
                break;
            case 2: /* duplicate a run */
                {
                    size_t d = 1 + (x >> 32) % 16;
                    if (d > n - at)
                        d = n - at;
                    if (n + d <= 2 * len + 32) {
                        memmove(buf + at + d, buf + at, n - at);
                        n += d;
                    }
                }
                break;
            default: /* swap a digit for another */
                if (buf[at] >= '0' && buf[at] <= '9')
                    buf[at] = (char)('0' + (x >> 24) % 10);
                else
                    buf[at] = '9';
                break;
            }
            if (n == 0)
                break;
        }
        parse_any(buf, n, "mutation", k);
    }
    free(buf);
    free(orig);
}

/* Random bytes, and random bytes drawn from YAML's punctuation, never crash or leak. */
Test(hostile, garbage)
{
    size_t n = 1u << 20;
    char *buf = test_alloc(n);
    uint64_t x = 88172645463325252ull;
    static const char pool[] = "[]{}-:,&*!|>? \n\"'a1";
    for (int round = 0; round < 20; round++) {
        size_t len = round < 10 ? n : 64 + (size_t)round * 101;
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = round % 2 ? (char)x : pool[x % (sizeof(pool) - 1)];
        }
        parse_any(buf, len, "garbage round", (size_t)round);
    }
    free(buf);
}

/* ---- Monitor events (issue 6) ------------------------------------------------ */

/* The monitor controls, guest.singlestep/idt_handler, new matcher fields and inject, in the model. */
Test(monitor_events, keys_in_model)
{
    struct scenario *s = parse_ok(BASE
        "  vcpus: 2\n"
        "  singlestep: [1, 0]\n"
        "  idt_handler: 0x1800\n"
        "monitor:\n"
        "  write_ctrlreg:\n"
        "    - {register: cr4, sync: false, onchangeonly: true, mask: 0x80}\n"
        "    - {register: xcr0}\n"
        "    - {register: 1}\n"
        "  mov_to_msr:\n"
        "    - {msr: 0xc0000082, onchangeonly: true}\n"
        "    - {msr: 0x40001fff}\n"
        "  software_breakpoint: true\n"
        "  singlestep: true\n"
        "  control_register_deferral: true\n"
        "client:\n"
        "  events:\n"
        "    - expect: {index: cr4, new_value: 0x10, old_value: 0x20, msr: 0x174,\n"
        "               insn_length: 1, type: 6}\n"
        "      respond: {inject: {vector: 3, type: 6, error_code: 0, insn_length: 1, cr2: 0x5}}\n"
        "    - expect: {index: 3}\n");
    const struct scenario_monitor *m = &s->monitor;
    cr_assert_eq(m->nr_write_ctrlreg, 3);
    cr_expect_eq(m->write_ctrlreg[0].index, 2);
    cr_expect_not(m->write_ctrlreg[0].sync);
    cr_expect(m->write_ctrlreg[0].onchangeonly);
    cr_expect_eq(m->write_ctrlreg[0].mask, 0x80);
    cr_expect_eq(m->write_ctrlreg[0].line, 11);
    cr_expect_eq(m->write_ctrlreg[1].index, 3);
    cr_expect(m->write_ctrlreg[1].sync, "sync defaults to true");
    cr_expect_eq(m->write_ctrlreg[2].index, 1);
    cr_assert_eq(m->nr_mov_to_msr, 2);
    cr_expect_eq(m->mov_to_msr[0].msr, 0xc0000082);
    cr_expect(m->mov_to_msr[0].onchangeonly);
    cr_expect_not(m->mov_to_msr[1].onchangeonly);
    cr_expect(m->software_breakpoint);
    cr_expect(m->singlestep);
    cr_expect(m->control_register_deferral);
    cr_assert_eq(s->guest.nr_singlestep, 2);
    cr_expect_eq(s->guest.singlestep[0], 1);
    cr_expect(s->guest.idt_handler.set);
    cr_expect_eq(s->guest.idt_handler.value, 0x1800);
    const struct scenario_event *ev = &s->client.events[0];
    cr_assert_eq(ev->nr_match, 6);
    cr_expect_eq(ev->match[0].field, SCENARIO_MATCH_INDEX);
    cr_expect_eq(ev->match[0].value, 2);
    cr_expect_eq(ev->match[1].field, SCENARIO_MATCH_NEW_VALUE);
    cr_expect_eq(ev->match[2].field, SCENARIO_MATCH_OLD_VALUE);
    cr_expect_eq(ev->match[3].field, SCENARIO_MATCH_MSR);
    cr_expect_eq(ev->match[3].value, 0x174);
    cr_expect_eq(ev->match[4].field, SCENARIO_MATCH_INSN_LENGTH);
    cr_expect_eq(ev->match[5].field, SCENARIO_MATCH_TYPE);
    cr_expect_eq(ev->match[5].value, 6);
    cr_expect(ev->response.inject.set);
    cr_expect_eq(ev->response.inject.vector, 3);
    cr_expect_eq(ev->response.inject.type.value, 6);
    cr_expect(ev->response.inject.error_code.set);
    cr_expect_eq(ev->response.inject.cr2.value, 5);
    cr_expect_eq(s->client.events[1].match[0].value, 3);
    cr_expect_str_eq(scenario_match_field_name(SCENARIO_MATCH_INSN_LENGTH), "insn_length");
    scenario_free(s);
    /* Defaults: nothing enabled. */
    s = parse_ok(BASE);
    cr_expect_eq(s->monitor.nr_write_ctrlreg, 0);
    cr_expect_not(s->monitor.software_breakpoint);
    cr_expect_not(s->guest.idt_handler.set);
    scenario_free(s);
}

Test(monitor_events, errors)
{
    expect_error(BASE "monitor:\n  write_ctrlreg:\n    - {register: cr2}\n", 8, 18,
                 "'cr2' is not a control register in monitor.write_ctrlreg[0].register",
                 "cr0, cr3, cr4, xcr0");
    expect_error(BASE "monitor:\n  write_ctrlreg:\n    - {register: 4}\n", 8, 18,
                 "monitor.write_ctrlreg[0].register is 4; expected 0 to 3");
    expect_error(BASE "monitor:\n  write_ctrlreg:\n    - {sync: true}\n", 8, 7,
                 "missing key 'register' in monitor.write_ctrlreg[0]");
    expect_error(BASE "monitor:\n  write_ctrlreg:\n    - {register: cr0}\n    - {register: 0}\n", 9, 18,
                 "already enables; expected each register once");
    expect_error(BASE "monitor:\n  write_ctrlreg:\n    - {register: cr0, bitmask: 1}\n", 8, 23,
                 "unknown key 'bitmask' in monitor.write_ctrlreg[0]");
    expect_error(BASE "monitor:\n  mov_to_msr:\n    - {msr: 0x2000}\n", 8, 13,
                 "monitor.mov_to_msr[0].msr is 0x2000", "EINVAL");
    expect_error(BASE "monitor:\n  mov_to_msr:\n    - {msr: 0xc0002000}\n", 8, 13,
                 "0xc0000000-0xc0001fff");
    expect_error(BASE "monitor:\n  mov_to_msr:\n    - {msr: 0x10}\n    - {msr: 16}\n", 9, 13,
                 "expected each MSR once");
    expect_error(BASE "monitor:\n  software_breakpoint: yes\n", 7, 24,
                 "'yes' is not a boolean in monitor.software_breakpoint");
    expect_error(BASE "monitor:\n  control_register_deferral: 1\n", 7, 30,
                 "monitor.control_register_deferral");
    expect_error(BASE "  singlestep: [1]\n", 6, 16, "guest.singlestep[0] is 1; expected 0 to 0");
    expect_error(BASE "  vcpus: 2\n  singlestep: [1, 1]\n", 7, 19, "already listed");
    expect_error(BASE "  idt_handler: [1]\n", 6, 16, "guest.idt_handler");
    expect_error(BASE "client:\n  events:\n    - expect: {insn_length: 16}\n", 8, 29,
                 "client.events[0].expect.insn_length is 16; expected 0 to 15");
    expect_error(BASE "client:\n  events:\n    - expect: {index: rax}\n", 8, 23,
                 "'rax' is not a control register in client.events[0].expect.index");
    expect_error(BASE "client:\n  events:\n    - expect: {type: 8}\n", 8, 22,
                 "client.events[0].expect.type is 8; expected 0 to 7");
    expect_error(BASE "client:\n  events:\n    - expect: {}\n      respond: {inject: {type: 6}}\n", 9, 25, "missing key 'vector' in client.events[0].respond.inject");
    expect_error(BASE "client:\n  events:\n    - expect: {}\n      respond: {inject: {vector: 256}}\n", 9, 34, "client.events[0].respond.inject.vector is 256; expected 0 to 255");
    expect_error(BASE "client:\n  events:\n    - expect: {}\n"
                 "      respond: {no_response: true, inject: {vector: 3}}\n", 9, 36, "'inject' in client.events[0].respond has no effect with no_response: true");
}

/* ---- Hypercalls: guest.hypercalls, monitor.guest_request, final shutdown ------ */

/* guest.hypercalls defaults to xen; guest_request as a bool is sync, kernel only. */
Test(hypercalls, defaults_and_bool)
{
    struct scenario *s = parse_ok(BASE "monitor:\n  guest_request: true\n");
    cr_expect_eq(s->guest.hypercalls, SCENARIO_HYPERCALLS_XEN);
    cr_expect(s->monitor.guest_request);
    cr_expect(s->monitor.guest_request_sync);
    cr_expect_not(s->monitor.guest_request_userspace);
    cr_expect_eq(s->monitor.guest_request_line, 7);
    cr_expect_eq(s->monitor.guest_request_column, 18);
    scenario_free(s);
    s = parse_ok(BASE);
    cr_expect_not(s->monitor.guest_request);
    scenario_free(s);
}

/* The mapping form keeps both flags; kvm and none are accepted. */
Test(hypercalls, mapping_form_and_abi)
{
    struct scenario *s = parse_ok(BASE "  hypercalls: kvm\nmonitor:\n"
                                  "  guest_request: {sync: false, allow_userspace: true}\n");
    cr_expect_eq(s->guest.hypercalls, SCENARIO_HYPERCALLS_KVM);
    cr_expect(s->monitor.guest_request);
    cr_expect_not(s->monitor.guest_request_sync);
    cr_expect(s->monitor.guest_request_userspace);
    scenario_free(s);
    s = parse_ok(BASE "  hypercalls: none\n");
    cr_expect_eq(s->guest.hypercalls, SCENARIO_HYPERCALLS_NONE);
    scenario_free(s);
}

/* Errors point at the value or the key at fault. */
Test(hypercalls, errors_have_positions)
{
    expect_error(BASE "  hypercalls: hyperv\n", 6, 15, "'hyperv' is not a hypercall interface",
                 "none, xen, kvm");
    expect_error(BASE "monitor:\n  guest_request: {sync: maybe}\n", 7, 25,
                 "'maybe' is not a boolean in monitor.guest_request.sync");
    expect_error(BASE "monitor:\n  guest_request: {sync: true, userspace: true}\n", 7, 31,
                 "unknown key 'userspace' in monitor.guest_request", "allow_userspace");
    expect_error(BASE "monitor:\n  guest_request: 1\n", 7, 18,
                 "'1' is not a boolean in monitor.guest_request");
}

/* final.guest: shutdown with a reason by name or number; a reason with another end is refused. */
Test(hypercalls, final_shutdown)
{
    struct scenario *s = parse_ok(BASE "final:\n  guest: shutdown\n  shutdown_reason: crash\n");
    cr_expect_eq(s->final.guest, SCENARIO_END_SHUTDOWN);
    cr_expect(s->final.shutdown_reason.set);
    cr_expect_eq(s->final.shutdown_reason.value, 3);
    cr_expect_eq(s->final.shutdown_reason.line, 8);
    cr_expect_eq(s->final.shutdown_reason.column, 20);
    scenario_free(s);
    s = parse_ok(BASE "final:\n  shutdown_reason: 7\n");
    cr_expect_eq(s->final.shutdown_reason.value, 7);
    scenario_free(s);
    expect_error(BASE "final:\n  guest: halted\n  shutdown_reason: 0\n", 8, 20,
                 "final.guest is halted", "final.guest: shutdown");
    expect_error(BASE "final:\n  shutdown_reason: 256\n", 7, 20, "final.shutdown_reason");
}

/* ---- Paging: the paging section, MEM_PAGING matchers, the pager's answer, final.paging ---- */

/* Every paging key arrives in the model, with positions; version follows monitor.version. */
Test(paging, keys_in_model)
{
    struct scenario *s = parse_ok(BASE
        "paging:\n"
        "  version: 1\n"
        "  nominate: [0x20, 3]\n"
        "  evict: [3]\n"
        "client:\n"
        "  events:\n"
        "    - expect: {reason: MEM_PAGING, p2mt: ram_paged, paging_flags: [EVICT_FAIL, DROP_PAGE]}\n"
        "      respond: {load: true, load_bytes: \"01 02\", paging_flags: [DROP_PAGE]}\n"
        "    - expect: {reason: 3, p2mt: 9, paging_flags: []}\n"
        "final:\n"
        "  paging:\n"
        "    - {gfn: 3, p2mt: ram_paging_in}\n"
        "    - {gfn: 0x20, p2mt: 0}\n");
    const struct scenario_paging *p = &s->paging;
    cr_expect(p->given);
    cr_expect(p->ring, "ring defaults to true");
    cr_expect_eq(p->version, 1);
    cr_assert_eq(p->nr_nominate, 2);
    cr_expect_eq(p->nominate[0].gfn, 0x20);
    cr_expect_eq(p->nominate[1].gfn, 3);
    cr_expect_eq(p->nominate[1].line, 8);
    cr_expect_eq(p->nominate[1].column, 20);
    cr_assert_eq(p->nr_evict, 1);
    cr_expect_eq(p->evict[0].gfn, 3);
    const struct scenario_event *ev = &s->client.events[0];
    cr_assert_eq(ev->nr_match, 3);
    cr_expect_eq(ev->match[1].field, SCENARIO_MATCH_P2MT);
    cr_expect_eq(ev->match[1].value, 10);
    cr_expect_eq(ev->match[2].field, SCENARIO_MATCH_PAGING_FLAGS);
    cr_expect_eq(ev->match[2].value, 3);
    cr_expect(ev->response.load);
    cr_expect_eq(ev->response.load_line, 13);
    cr_expect_eq(ev->response.load_column, 17);
    cr_assert_eq(ev->response.load_bytes.len, 2);
    cr_expect_eq(ev->response.load_bytes.data[1], 2);
    cr_expect(ev->response.paging_flags.set);
    cr_expect_eq(ev->response.paging_flags.value, 1);
    cr_expect_eq(s->client.events[1].match[1].value, 9);
    cr_expect_eq(s->client.events[1].match[2].value, 0);
    cr_assert_eq(s->final.nr_paging, 2);
    cr_expect_eq(s->final.paging[0].gfn, 3);
    cr_expect_eq(s->final.paging[0].p2mt, 11);
    cr_expect_eq(s->final.paging[0].line, 17);
    cr_expect_eq(s->final.paging[1].p2mt, 0);
    cr_expect_str_eq(scenario_match_field_name(SCENARIO_MATCH_PAGING_FLAGS), "paging_flags");
    cr_expect_str_eq(scenario_p2mt_name(10), "ram_paged");
    cr_expect_null(scenario_p2mt_name(16));
    cr_expect_str_eq(scenario_paging_flag_name(1), "EVICT_FAIL");
    scenario_free(s);
    /* Defaults: no section, no paging; an empty section is a ring of monitor.version. */
    s = parse_ok(BASE);
    cr_expect_not(s->paging.given);
    cr_expect_eq(s->final.nr_paging, 0);
    scenario_free(s);
    s = parse_ok(BASE "monitor: {ring: false, version: 1}\npaging: {}\nclient: {}\n");
    cr_expect(s->paging.given);
    cr_expect(s->paging.ring);
    cr_expect_eq(s->paging.version, 1, "the paging ring's version follows monitor.version");
    cr_expect(s->has_client, "a paging ring alone is enough for a client");
    scenario_free(s);
    s = parse_ok(BASE "paging: {ring: false, nominate: [1], evict: [1]}\n");
    cr_expect_not(s->paging.ring);
    cr_expect_eq(s->paging.version, 7);
    scenario_free(s);
}

/* Bad paging keys: each error names the key, the value and what was expected. */
Test(paging, section_errors)
{
    expect_error(BASE "paging:\n  evict: [0x20]\n", 7, 11,
                 "paging.evict[0] is gfn 0x20, which paging.nominate does not list",
                 "expected only nominated gfns");
    expect_error(BASE "paging:\n  nominate: [0x1000]\n", 7, 14,
                 "paging.nominate[0] is gfn 0x1000, beyond guest memory (16M: gfns 0x0 to 0xfff)",
                 "expected a gfn below 0x1000");
    expect_error(BASE "paging:\n  nominate: [1, 0x1]\n", 7, 17,
                 "paging.nominate[1] is gfn 0x1, already listed as paging.nominate[0] (line 7)",
                 "expected each gfn once");
    expect_error(BASE "paging:\n  nominate: [1]\n  evict: [1, 1]\n", 8, 14,
                 "paging.evict[1] is gfn 0x1, already listed");
    expect_error(BASE "paging:\n  version: 2\n", 7, 12, "paging.version is 2; expected 1 or 7");
    expect_error(BASE "paging:\n  evicts: [1]\n", 7, 3, "unknown key 'evicts' in paging",
                 "ring, version, nominate, evict");
    expect_error(BASE "paging:\n  ring: maybe\n", 7, 9, "'maybe' is not a boolean in paging.ring");
    expect_error(BASE "paging:\n  nominate: 5\n", 7, 13, "paging.nominate is a single value; expected a list");
    expect_error(BASE "paging: [1]\n", 6, 9, "paging is a list; expected a mapping");
}

Test(paging, client_errors)
{
    /* A MEM_PAGING expectation needs the paging ring. */
    expect_error(BASE "client:\n  events:\n    - expect: {reason: MEM_PAGING}\n", 8, 24,
                 "client.events[0].expect.reason is MEM_PAGING but no paging ring is enabled",
                 "expected a paging section");
    expect_error(BASE "paging: {ring: false}\nclient:\n  events:\n    - expect: {reason: 3}\n", 9, 24,
                 "no paging ring is enabled");
    /* The pager's answer needs an expectation that names MEM_PAGING. */
    expect_error(BASE "paging: {}\nclient:\n  events:\n    - expect: {}\n      respond: {load: true}\n",
                 10, 17, "client.events[0].respond.load answers a MEM_PAGING event, but "
                 "client.events[0].expect does not name a reason", "expected reason: MEM_PAGING");
    expect_error(BASE "paging: {}\nclient:\n  events:\n    - expect: {reason: MEM_ACCESS}\n"
                 "      respond: {paging_flags: [DROP_PAGE]}\n", 10, 31,
                 "client.events[0].respond.paging_flags answers a MEM_PAGING event, but "
                 "client.events[0].expect.reason is MEM_ACCESS; expected reason: MEM_PAGING");
    expect_error(BASE "paging: {}\nclient:\n  events:\n    - expect: {reason: MEM_PAGING}\n"
                 "      respond: {load_bytes: \"00\"}\n", 10, 17,
                 "client.events[0].respond.load_bytes is given without load: true",
                 "expected load: true beside it");
    expect_error(BASE "paging: {}\nclient:\n  events:\n    - expect: {reason: MEM_PAGING}\n"
                 "      respond: {load: 1}\n", 10, 23, "'1' is not a boolean in client.events[0].respond.load");
    expect_error(BASE "paging: {}\nclient:\n  events:\n    - expect: {reason: MEM_PAGING}\n"
                 "      respond: {no_response: true, load: true}\n", 10, 36,
                 "'load' in client.events[0].respond has no effect with no_response: true");
    expect_error(BASE "paging: {}\nclient:\n  events:\n    - expect: {reason: MEM_PAGING}\n"
                 "      respond: {paging_flags: [DROP_PAGE, DROP_PAGE]}\n", 10, 43,
                 "flag DROP_PAGE is listed twice in client.events[0].respond.paging_flags");
    expect_error(BASE "paging: {}\nclient:\n  events:\n    - expect: {reason: MEM_PAGING, paging_flags: [EVICT]}\n",
                 9, 51, "'EVICT' is not a MEM_PAGING flag in client.events[0].expect.paging_flags[0]",
                 "expected one of DROP_PAGE, EVICT_FAIL");
    expect_error(BASE "paging: {}\nclient:\n  events:\n    - expect: {reason: MEM_PAGING, p2mt: paged}\n",
                 9, 42, "'paged' is not a p2m type in client.events[0].expect.p2mt", "ram_paged",
                 "or a number 0 to 15");
    expect_error(BASE "paging: {}\nclient:\n  events:\n    - expect: {reason: MEM_PAGING, p2mt: 16}\n",
                 9, 42, "client.events[0].expect.p2mt is 16; expected 0 to 15");
    /* load_bytes is one page at most. */
    size_t len = 4097;
    char *text = test_alloc(strlen(BASE) + 200 + 2 * len);
    int n = snprintf(text, 200 + strlen(BASE), "%s", BASE "paging: {}\nclient:\n  events:\n"
                     "    - expect: {reason: MEM_PAGING}\n      respond: {load: true, load_bytes: \"");
    for (size_t i = 0; i < len; i++)
        n += sprintf(text + n, "%02x", (unsigned)(i & 0xff));
    sprintf(text + n, "\"}\n");
    expect_error(text, 10, 41, "client.events[0].respond.load_bytes is 4097 bytes; expected at most 4096");
    free(text);
}

Test(paging, final_errors)
{
    expect_error(BASE "final:\n  paging:\n    - {gfn: 1}\n", 8, 7,
                 "missing key 'p2mt' in final.paging[0]; expected gfn and p2mt");
    expect_error(BASE "final:\n  paging:\n    - {gfn: 0x1000, p2mt: ram_rw}\n", 8, 13,
                 "final.paging[0].gfn is gfn 0x1000, beyond guest memory", "expected a gfn below 0x1000");
    expect_error(BASE "final:\n  paging:\n    - {gfn: 1, p2mt: swapped}\n", 8, 22,
                 "'swapped' is not a p2m type in final.paging[0].p2mt");
    expect_error(BASE "final:\n  paging:\n    - {gfn: 1, p2mt: ram_rw, type: 1}\n", 8, 30,
                 "unknown key 'type' in final.paging[0]; expected one of: gfn, p2mt");
}

/* ---- Sharing: the sharing section, MEM_SHARING events, the helper's answer, final ---------- */

/* Every sharing key arrives in the model, with positions; version follows monitor.version. */
Test(sharing, keys_in_model)
{
    struct scenario *s = parse_ok(BASE
        "sharing:\n"
        "  version: 1\n"
        "  share:\n"
        "    - {source: 0x20, client: 0x21}\n"
        "    - {source: 3, client: 0x20}\n"
        "  max_pages: tot_pages\n"
        "client:\n"
        "  events:\n"
        "    - expect: {reason: MEM_SHARING, gfn: 0x21, p2mt: ram_shared, flags: [VCPU_PAUSED]}\n"
        "      respond: {add_pages: 2}\n"
        "    - expect: {reason: 2}\n"
        "      respond: {max_pages: 0x200}\n"
        "final:\n"
        "  paging:\n"
        "    - {gfn: 3, p2mt: ram_rw}\n"
        "  p2mt:\n"
        "    - {gfn: 0x20, p2mt: ram_shared}\n"
        "  tot_pages: 4000\n"
        "  max_pages: 0x1000\n");
    const struct scenario_sharing *sh = &s->sharing;
    cr_expect(sh->given);
    cr_expect(sh->ring, "ring defaults to true");
    cr_expect_eq(sh->version, 1);
    cr_assert_eq(sh->nr_share, 2);
    cr_expect_eq(sh->share[0].source, 0x20);
    cr_expect_eq(sh->share[0].client, 0x21);
    cr_expect_eq(sh->share[1].source, 3);
    cr_expect_eq(sh->share[1].line, 10);
    cr_expect_eq(sh->share[1].column, 7);
    cr_expect(sh->max_pages.set);
    cr_expect(sh->max_pages_tot);
    cr_expect_eq(sh->max_pages.line, 11);
    cr_expect_eq(sh->max_pages.column, 14);
    const struct scenario_event *ev = &s->client.events[0];
    cr_assert_eq(ev->nr_match, 4);
    cr_expect_eq(ev->match[0].value, SCENARIO_REASON_MEM_SHARING);
    cr_expect_eq(ev->match[2].field, SCENARIO_MATCH_P2MT);
    cr_expect_eq(ev->match[2].value, 12);
    cr_expect(ev->response.add_pages.set);
    cr_expect_eq(ev->response.add_pages.value, 2);
    cr_expect_not(ev->response.max_pages.set);
    cr_expect(s->client.events[1].response.max_pages.set);
    cr_expect_eq(s->client.events[1].response.max_pages.value, 0x200);
    cr_assert_eq(s->final.nr_paging, 2, "final.paging and final.p2mt make one list");
    cr_expect_eq(s->final.paging[0].gfn, 3);
    cr_expect_eq(s->final.paging[1].gfn, 0x20);
    cr_expect_eq(s->final.paging[1].p2mt, 12);
    cr_expect_eq(s->final.paging[1].line, 22);
    cr_expect(s->final.tot_pages.set);
    cr_expect_eq(s->final.tot_pages.value, 4000);
    cr_expect_eq(s->final.max_pages.value, 0x1000);
    cr_expect_not(s->final.mapped.set);
    cr_expect_null(s->final.introspector);
    scenario_free(s);
    /* Defaults: no section, no sharing; an empty section is a ring of monitor.version. */
    s = parse_ok(BASE);
    cr_expect_not(s->sharing.given);
    cr_expect_not(s->final.tot_pages.set);
    scenario_free(s);
    s = parse_ok(BASE "monitor: {ring: false, version: 1}\nsharing: {}\nclient: {}\n");
    cr_expect(s->sharing.given);
    cr_expect(s->sharing.ring);
    cr_expect_eq(s->sharing.version, 1, "the sharing ring's version follows monitor.version");
    cr_expect_not(s->sharing.max_pages.set);
    cr_expect(s->has_client, "a sharing ring alone is enough for a client");
    scenario_free(s);
    s = parse_ok(BASE "sharing: {ring: false, max_pages: 0}\n");
    cr_expect_not(s->sharing.ring);
    cr_expect_eq(s->sharing.version, 7);
    cr_expect(s->sharing.max_pages.set);
    cr_expect_not(s->sharing.max_pages_tot);
    cr_expect_eq(s->sharing.max_pages.value, 0);
    scenario_free(s);
}

/* Bad sharing keys: each error names the key, the value and what was expected. */
Test(sharing, section_errors)
{
    expect_error(BASE "sharing:\n  version: 2\n", 7, 12, "sharing.version is 2; expected 1 or 7");
    expect_error(BASE "sharing:\n  ring: on\n", 7, 9, "'on' is not a boolean in sharing.ring");
    expect_error(BASE "sharing:\n  shares: []\n", 7, 3, "unknown key 'shares' in sharing",
                 "expected one of: ring, version, share, max_pages");
    expect_error(BASE "sharing:\n  share: {source: 1, client: 2}\n", 7, 10,
                 "sharing.share is a mapping; expected a list");
    expect_error(BASE "sharing:\n  share:\n    - {source: 1}\n", 8, 7,
                 "missing key 'client' in sharing.share[0]; expected source and client (two gfns)");
    expect_error(BASE "sharing:\n  share:\n    - {source: 1, client: 1}\n", 8, 27,
                 "sharing.share[0].client is gfn 0x1, the same as its source",
                 "expected two different gfns");
    expect_error(BASE "sharing:\n  share:\n    - {source: 0x1000, client: 1}\n", 8, 16,
                 "sharing.share[0].source is gfn 0x1000, beyond guest memory (16M: gfns 0x0 to 0xfff)",
                 "expected a gfn below 0x1000");
    expect_error(BASE "sharing:\n  share:\n    - {source: 1, client: 2, handle: 3}\n", 8, 30,
                 "unknown key 'handle' in sharing.share[0]; expected one of: source, client");
    expect_error(BASE "sharing:\n  max_pages: all\n", 7, 14,
                 "'all' is neither a number nor tot_pages in sharing.max_pages",
                 "expected a number of pages, or tot_pages");
    expect_error(BASE "sharing:\n  max_pages: -1\n", 7, 14, "'-1' is neither a number nor tot_pages");
    expect_error(BASE "sharing:\n  max_pages: [1]\n", 7, 14,
                 "sharing.max_pages is a list; expected a decimal or 0x-hex number");
    expect_error(BASE "sharing: [1]\n", 6, 10, "sharing is a list; expected a mapping");
}

/* MEM_SHARING needs the sharing ring; max_pages / add_pages answer MEM_SHARING only. */
Test(sharing, client_errors)
{
    expect_error(BASE "client:\n  events:\n    - expect: {reason: MEM_SHARING}\n", 8, 24,
                 "client.events[0].expect.reason is MEM_SHARING but no sharing ring is enabled",
                 "expected a sharing section");
    expect_error(BASE "sharing: {ring: false}\nclient:\n  events:\n    - expect: {reason: 2}\n", 9, 24,
                 "no sharing ring is enabled");
    expect_error(BASE "monitor: {ring: false}\nsharing: {ring: false}\nclient: {}\n", 8, 9,
                 "no paging or sharing ring is enabled");
    expect_error(BASE "sharing: {}\nclient:\n  events:\n    - expect: {}\n      respond: {add_pages: 1}\n",
                 10, 28, "client.events[0].respond.add_pages answers a MEM_SHARING event",
                 "does not name a reason; expected reason: MEM_SHARING");
    expect_error(BASE "sharing: {}\nclient:\n  events:\n    - expect: {reason: MEM_ACCESS}\n"
                 "      respond: {max_pages: 9}\n", 10, 28,
                 "client.events[0].respond.max_pages answers a MEM_SHARING event, but "
                 "client.events[0].expect.reason is MEM_ACCESS; expected reason: MEM_SHARING");
    expect_error(BASE "sharing: {}\nclient:\n  events:\n    - expect: {reason: MEM_SHARING}\n"
                 "      respond: {max_pages: 9, add_pages: 1}\n", 10, 31,
                 "both max_pages and add_pages in client.events[0].respond; expected at most one");
    expect_error(BASE "sharing: {}\nclient:\n  events:\n    - expect: {reason: MEM_SHARING}\n"
                 "      respond: {add_pages: 0}\n", 10, 28,
                 "client.events[0].respond.add_pages is 0; expected at least 1");
    expect_error(BASE "sharing: {}\nclient:\n  events:\n    - expect: {reason: MEM_SHARING}\n"
                 "      respond: {max_pages: lots}\n", 10, 28,
                 "'lots' is not a number in client.events[0].respond.max_pages");
}

Test(sharing, final_errors)
{
    expect_error(BASE "final:\n  p2mt:\n    - {gfn: 1}\n", 8, 7,
                 "missing key 'p2mt' in final.p2mt[0]; expected gfn and p2mt");
    expect_error(BASE "final:\n  p2mt:\n    - {gfn: 0x1000, p2mt: ram_shared}\n", 8, 13,
                 "final.p2mt[0].gfn is gfn 0x1000, beyond guest memory");
    expect_error(BASE "final:\n  p2mt:\n    - {gfn: 1, p2mt: shared}\n", 8, 22,
                 "'shared' is not a p2m type in final.p2mt[0].p2mt");
    expect_error(BASE "final:\n  p2mt: {gfn: 1}\n", 7, 9, "final.p2mt is a mapping; expected a list");
    expect_error(BASE "final:\n  tot_pages: many\n", 7, 14, "'many' is not a number in final.tot_pages");
    expect_error(BASE "final:\n  max_pages: -3\n", 7, 14, "'-3' is negative in final.max_pages");
    expect_error(BASE "final:\n  mapped: 1\n", 7, 3, "unknown key 'mapped' in final",
                 "tot_pages, max_pages, introspector");
}

/* ---- The introspector: a second domain with KVM hypercalls and a map token ------------------ */

/* A minimal introspector section, lines 6-10 after BASE. */
#define INTRO                                                                                 \
    "introspector:\n"                                                                         \
    "  code_bytes: \"f4\"\n"                                                                  \
    "  entry: 0x1000\n"                                                                       \
    "  mappings:\n"                                                                           \
    "    - {gla: 0x1000, gpa: 0x1000, size: 4K}\n"

/* Every introspector key arrives in its own guest model; final.introspector in its own final. */
Test(introspector, keys_in_model)
{
    struct scenario *s = parse_ok(BASE
        "introspector:\n"
        "  mode: pae32\n"
        "  memory: 1M\n"
        "  vcpus: 2\n"
        "  code: |\n"
        "    hlt\n"
        "  entry: 0x400000\n"
        "  token_gpa: 0x30000\n"
        "  mappings:\n"
        "    - {gla: 0x400000, gpa: 0x10000, size: 4K, rights: rx}\n"
        "    - {gla: 0x500000, gpa: 0x30000, size: 4K, rights: r}\n"
        "  data:\n"
        "    - {gpa: 0x40000, bytes: \"aa\"}\n"
        "  registers: {rsp: 0x8000}\n"
        "  idt_handler: 0x400000\n"
        "final:\n"
        "  guest: halted\n"
        "  introspector:\n"
        "    guest: limit\n"
        "    registers: {r8: 0}\n"
        "    vcpus:\n"
        "      - {vcpu: 1, registers: {rax: 2}}\n"
        "    memory:\n"
        "      - {gpa: 0xff000, bytes: \"00\"}\n"
        "    mapped: 1\n");
    const struct scenario_introspector *in = &s->introspector;
    cr_expect(in->given);
    cr_expect_eq(in->line, 7);
    cr_expect_eq(in->guest.mode, SCENARIO_MODE_PAE32);
    cr_expect_eq(in->guest.memory, 1u << 20);
    cr_expect_eq(in->guest.vcpus, 2);
    cr_expect_eq(in->guest.hypercalls, SCENARIO_HYPERCALLS_KVM, "always KVM");
    cr_expect_str_eq(in->guest.code, "hlt\n");
    cr_expect_eq(in->guest.code_first_line, 11);
    cr_expect_eq(in->guest.entry, 0x400000);
    cr_expect_eq(in->guest.entry_gpa, 0x10000);
    cr_assert_eq(in->guest.nr_mappings, 2);
    cr_expect_eq(in->guest.mappings[1].gpa, 0x30000);
    cr_assert_eq(in->guest.nr_data, 1);
    cr_expect_eq(in->guest.registers.n, 1);
    cr_expect(in->guest.idt_handler.set);
    cr_expect(in->token_gpa.set);
    cr_expect_eq(in->token_gpa.value, 0x30000);
    cr_expect_eq(in->token_gpa.line, 13);
    cr_expect_eq(s->guest.memory, 16u << 20, "the main guest is untouched");
    cr_expect_eq(s->guest.hypercalls, SCENARIO_HYPERCALLS_XEN);
    const struct scenario_final *fi = s->final.introspector;
    cr_assert_not_null(fi);
    cr_expect_eq(s->final.guest, SCENARIO_END_HALTED);
    cr_expect_eq(fi->guest, SCENARIO_END_LIMIT);
    cr_assert_eq(fi->nr_vcpus, 2);
    cr_expect_eq(fi->vcpus[1].vcpu, 1);
    cr_assert_eq(fi->nr_memory, 1);
    cr_expect_eq(fi->memory[0].gpa, 0xff000, "within the introspector's 1M");
    cr_expect(fi->mapped.set);
    cr_expect_eq(fi->mapped.value, 1);
    cr_expect_eq(fi->mapped.line, 30);
    scenario_free(s);
    /* token_gpa is optional; the defaults are the guest's. */
    s = parse_ok(BASE INTRO);
    cr_expect(s->introspector.given);
    cr_expect_not(s->introspector.token_gpa.set);
    cr_expect_eq(s->introspector.guest.memory, 16u << 20);
    cr_expect_eq(s->introspector.guest.vcpus, 1);
    cr_expect_eq(s->introspector.guest.mode, SCENARIO_MODE_LONG);
    cr_expect_null(s->final.introspector);
    scenario_free(s);
    s = parse_ok(BASE);
    cr_expect_not(s->introspector.given);
    scenario_free(s);
}

/* Bad introspector keys: the errors name "introspector", not "guest". */
Test(introspector, section_errors)
{
    expect_error(BASE INTRO "  hypercalls: kvm\n", 11, 3,
                 "'hypercalls' in introspector: the introspector always uses the KVM hypercall ABI",
                 "expected no hypercalls key");
    expect_error(BASE INTRO "  singlestep: [0]\n", 11, 3, "'singlestep' in introspector",
                 "expected no singlestep key");
    expect_error(BASE INTRO "  token: 0x1000\n", 11, 3, "unknown key 'token' in introspector",
                 "token_gpa");
    expect_error(BASE INTRO "  token_gpa: 0xfffff0\n", 11, 14,
                 "introspector.token_gpa is 0xfffff0, but the 32-byte token would not fit",
                 "expected token_gpa + 32 <= memory");
    expect_error(BASE INTRO "  token_gpa: 0x1000000\n", 11, 14, "the 32-byte token would not fit");
    expect_error(BASE INTRO "  memory: 32K\n", 11, 11, "introspector.memory is 32K; expected 64K to 1G");
    expect_error(BASE INTRO "  vcpus: 65\n", 11, 10, "introspector.vcpus is 65; expected 1 to 64");
    expect_error(BASE "introspector:\n  code_bytes: \"f4\"\n  entry: 0x1000\n", 7, 3,
                 "missing key 'mappings' in introspector");
    expect_error(BASE "introspector:\n  code_bytes: \"f4\"\n  entry: 0x3000\n  mappings:\n"
                 "    - {gla: 0x1000, gpa: 0x1000, size: 4K}\n", 8, 10,
                 "introspector.entry 0x3000 is not inside any mapping",
                 "expected a gla covered by introspector.mappings");
    expect_error(BASE "introspector:\n  code_bytes: \"f4\"\n  entry: 0x1000\n  mappings:\n"
                 "    - {gla: 0x1000, gpa: 0x1000, size: 8K}\n    - {gla: 0x2000, gpa: 0x1000, size: 4K}\n",
                 11, 7, "introspector.mappings[1] (gla 0x2000 to 0x2fff) overlaps introspector.mappings[0]");
    expect_error(BASE "introspector:\n  memory: 1M\n  code_bytes: \"f4\"\n  entry: 0x1000\n  mappings:\n"
                 "    - {gla: 0x1000, gpa: 0x100000, size: 4K}\n", 11, 26,
                 "introspector.mappings[0] maps gpa 0x100000 to 0x100fff, beyond guest memory (1M");
    expect_error(BASE INTRO "  data: [{gpa: 0x1000000, bytes: \"00\"}]\n", 11, 16,
                 "introspector.data[0] (1 bytes at gpa 0x1000000) extends beyond guest memory");
    expect_error(BASE "introspector: 1\n", 6, 15, "introspector is a single value; expected a mapping");
}

/* final.introspector: only with an introspector, only its keys, checked against its guest. */
Test(introspector, final_errors)
{
    expect_error(BASE "final:\n  introspector: {guest: halted}\n", 7, 3,
                 "final.introspector is given but the scenario has no introspector section",
                 "expected an introspector section");
    expect_error(BASE INTRO "final:\n  introspector: {events: 0}\n", 12, 18,
                 "unknown key 'events' in final.introspector",
                 "expected one of: guest, registers, vcpus, memory, shutdown_reason, mapped");
    expect_error(BASE INTRO "final:\n  introspector: {guest: stopped}\n", 12, 25,
                 "'stopped' is not a final guest state in final.introspector.guest");
    expect_error(BASE INTRO "final:\n  introspector:\n    vcpus: [{vcpu: 1, registers: {}}]\n", 13, 20,
                 "final.introspector.vcpus[0].vcpu is 1, but the introspector has 1 vcpu");
    expect_error(BASE INTRO "final:\n  introspector:\n    registers: {rax: 1}\n    vcpus: [{vcpu: 0, registers: {}}]\n",
                 14, 20, "vcpu 0 has registers twice in final.introspector");
    expect_error(BASE INTRO "final:\n  introspector:\n    memory: [{gpa: 0x1000000, bytes: \"00\"}]\n",
                 13, 20, "final.introspector.memory[0] (1 bytes at gpa 0x1000000) extends beyond");
    expect_error(BASE INTRO "final:\n  introspector: {mapped: x}\n", 12, 26,
                 "'x' is not a number in final.introspector.mapped");
    expect_error(BASE INTRO "final:\n  introspector: {guest: halted, shutdown_reason: 0}\n", 12, 50,
                 "final.introspector.shutdown_reason is given but final.introspector.guest is halted");
    expect_error(BASE INTRO "final:\n  introspector: {introspector: {}}\n", 12, 18,
                 "unknown key 'introspector' in final.introspector");
}

/* ---- altp2m: views, start views, the client's altp2m calls, final views ------------------- */

/* Every altp2m key arrives in the model, in order, with its position; defaults hold. */
Test(altp2m, keys_in_model)
{
    struct scenario *s = parse_ok(
        "guest:\n"
        "  vcpus: 2\n"
        "  code_bytes: \"f4\"\n"
        "  entry: 0x1000\n"
        "  mappings:\n"
        "    - {gla: 0x1000, gpa: 0x1000, size: 4K}\n"
        "altp2m:\n"
        "  mode: limited\n"
        "  views:\n"
        "    - default_access: rx\n"
        "      change_gfn: [{gfn: 0x30, to: 0x31}, {gfn: 0x32, to: none}]\n"
        "      access: [{gfn: 0x30, access: x}, {gfn: 0x40, count: 2, access: n}]\n"
        "    - {visible: false}\n"
        "  view: 1\n"
        "  vcpus: [{vcpu: 1, view: 2}]\n"
        "client:\n"
        "  events:\n"
        "    - expect: {flags: [ALTERNATE_P2M], altp2m_idx: 1}\n"
        "      respond:\n"
        "        flags: [VCPU_PAUSED, ALTERNATE_P2M]\n"
        "        altp2m_idx: 2\n"
        "        altp2m_access: [{view: 0, gfn: 5, access: rw}, {view: 2, gfn: 6, count: 3, access: r}]\n"
        "        change_gfn: [{view: 1, gfn: 0x30, to: none}]\n"
        "final:\n"
        "  view: 1\n"
        "  vcpus: [{vcpu: 1, view: 2}]\n");
    const struct scenario_altp2m *a = &s->altp2m;
    cr_expect(a->given);
    cr_expect_eq(a->mode, SCENARIO_ALTP2M_LIMITED);
    cr_assert_eq(a->nr_views, 2);
    cr_expect_eq(a->views[0].default_access, SCENARIO_ACCESS_RX);
    cr_expect(a->views[0].visible);
    cr_assert_eq(a->views[0].nr_change_gfn, 2);
    cr_expect_eq(a->views[0].change_gfn[0].view, 1);
    cr_expect_eq(a->views[0].change_gfn[0].gfn, 0x30);
    cr_expect_eq(a->views[0].change_gfn[0].to, 0x31);
    cr_expect_eq(a->views[0].change_gfn[1].to, SCENARIO_INVALID_GFN, "none is INVALID_GFN");
    cr_assert_eq(a->views[0].nr_access, 2);
    cr_expect_eq(a->views[0].access[0].access, SCENARIO_ACCESS_X);
    cr_expect_eq(a->views[0].access[1].count, 2);
    cr_expect_eq(a->views[0].access[1].view, 1);
    cr_expect_eq(a->views[1].default_access, SCENARIO_ACCESS_RWX, "the default access is rwx");
    cr_expect_not(a->views[1].visible);
    cr_expect(a->view.set);
    cr_expect_eq(a->view.value, 1);
    cr_expect_eq(a->view.line, 14);
    cr_assert_eq(a->nr_vcpus, 1);
    cr_expect_eq(a->vcpus[0].vcpu, 1);
    cr_expect_eq(a->vcpus[0].view, 2);
    const struct scenario_response *r = &s->client.events[0].response;
    cr_expect_eq(r->altp2m_idx.value, 2);
    cr_assert_eq(r->nr_altp2m_access, 2);
    cr_expect_eq(r->altp2m_access[0].view, 0);
    cr_expect_eq(r->altp2m_access[1].view, 2);
    cr_expect_eq(r->altp2m_access[1].count, 3);
    cr_assert_eq(r->nr_change_gfn, 1);
    cr_expect_eq(r->change_gfn[0].view, 1);
    cr_expect_eq(r->change_gfn[0].to, SCENARIO_INVALID_GFN);
    cr_assert_eq(s->final.nr_vcpus, 2);
    cr_expect_eq(s->final.vcpus[0].vcpu, 0);
    cr_expect(s->final.vcpus[0].view.set);
    cr_expect_eq(s->final.vcpus[0].view.value, 1);
    cr_expect_eq(s->final.vcpus[0].registers.n, 0);
    cr_expect_eq(s->final.vcpus[1].view.value, 2);
    scenario_free(s);
    /* Without the section: no altp2m, no views. */
    s = parse_ok(BASE "altp2m: {mode: mixed}\n");
    cr_expect(s->altp2m.given);
    cr_expect_eq(s->altp2m.nr_views, 0);
    cr_expect_not(s->altp2m.view.set);
    scenario_free(s);
    s = parse_ok(BASE);
    cr_expect_not(s->altp2m.given);
    scenario_free(s);
}

/* Bad altp2m section keys: each error names the key, the value and what was expected. */
Test(altp2m, section_errors)
{
    expect_error(BASE "altp2m: {}\n", 6, 9, "missing key 'mode' in altp2m",
                 "expected the altp2m mode: mixed, external or limited");
    expect_error(BASE "altp2m: {mode: disabled}\n", 6, 16,
                 "'disabled' is not an altp2m mode in altp2m.mode; expected one of mixed, external, limited");
    expect_error(BASE "altp2m: {mode: mixed, veiws: []}\n", 6, 23,
                 "unknown key 'veiws' in altp2m; expected one of: mode, views, view, vcpus");
    expect_error(BASE "altp2m:\n  mode: mixed\n  views: [{}, {}, {}, {}, {}, {}, {}, {}, {}, {}]\n",
                 8, 47, "altp2m.views has 10 views; expected at most 9");
    expect_error(BASE "altp2m:\n  mode: mixed\n  views:\n    - {default_access: default}\n", 9, 24,
                 "altp2m.views[0].default_access cannot be 'default'");
    expect_error(BASE "altp2m:\n  mode: mixed\n  views:\n    - {acces: []}\n", 9, 8,
                 "unknown key 'acces' in altp2m.views[0]; expected one of: default_access, access, "
                 "change_gfn, visible");
    expect_error(BASE "altp2m:\n  mode: mixed\n  views:\n    - change_gfn: [{gfn: 1}]\n", 9, 20,
                 "missing key 'to' in altp2m.views[0].change_gfn[0]; expected gfn and to (a gfn, or none)");
    expect_error(BASE "altp2m:\n  mode: mixed\n  views:\n    - change_gfn: [{gfn: 1, to: nil}]\n", 9, 33,
                 "'nil' is neither a gfn nor none in altp2m.views[0].change_gfn[0].to",
                 "expected a gfn whose frame the view shows");
    expect_error(BASE "altp2m:\n  mode: mixed\n  views:\n    - change_gfn: [{gfn: 1, to: 0x1000}]\n", 9, 33,
                 "altp2m.views[0].change_gfn[0].to is gfn 0x1000, beyond guest memory (16M: gfns 0x0 to 0xfff)",
                 "expected a gfn below 0x1000");
    expect_error(BASE "altp2m:\n  mode: mixed\n  views:\n    - change_gfn: [{gfn: 1, to: 2, view: 1}]\n",
                 9, 36, "unknown key 'view' in altp2m.views[0].change_gfn[0]; expected one of: gfn, to");
    expect_error(BASE "altp2m:\n  mode: mixed\n  views:\n    - access: [{gfn: 0x1000, access: r}]\n", 9, 22,
                 "reaches beyond guest memory");
    expect_error(BASE "altp2m:\n  mode: mixed\n  views:\n    - visible: no\n", 9, 16,
                 "'no' is not a boolean in altp2m.views[0].visible");
    expect_error(BASE "altp2m:\n  mode: mixed\n  views: [{}]\n  view: 2\n", 9, 9,
                 "altp2m.view is view 2, but altp2m.views creates 1 view (1 to 1); expected 0 or 1 to 1");
    expect_error(BASE "altp2m:\n  mode: mixed\n  view: 1\n", 8, 9,
                 "altp2m.view is view 1, but altp2m.views creates no view; expected 0 (the host p2m)");
    expect_error(BASE "altp2m:\n  mode: mixed\n  views: [{visible: false}]\n  view: 1\n", 9, 9,
                 "altp2m.view is view 1, which is not visible",
                 "expected a visible view, or altp2m.vcpus for a per-vCPU start");
    expect_error(BASE "altp2m:\n  mode: mixed\n  vcpus: [{vcpu: 1, view: 0}]\n", 8, 18,
                 "altp2m.vcpus[0].vcpu is 1, but the guest has 1 vcpu; expected 0 to 0");
    expect_error(BASE "altp2m:\n  mode: mixed\n  vcpus: [{vcpu: 0, view: 0}, {vcpu: 0, view: 0}]\n",
                 8, 38, "altp2m.vcpus[1].vcpu is vcpu 0, already given a view by altp2m.vcpus[0]",
                 "expected each vcpu once");
    expect_error(BASE "altp2m:\n  mode: mixed\n  vcpus: [{vcpu: 0}]\n", 8, 11,
                 "missing key 'view' in altp2m.vcpus[0]; expected vcpu and view");
    expect_error(BASE "altp2m: [1]\n", 6, 9, "altp2m is a list; expected a mapping");
}

/* The client's altp2m calls need the section and name existing views; the final views too. */
Test(altp2m, client_and_final_errors)
{
    expect_error(BASE "client:\n  events:\n    - expect: {}\n      respond: {change_gfn: []}\n", 9, 17,
                 "client.events[0].respond.change_gfn is an altp2m call but the scenario has no "
                 "altp2m section; expected an altp2m section");
    expect_error(BASE "client:\n  events:\n    - expect: {}\n      respond: {altp2m_access: []}\n", 9, 17,
                 "client.events[0].respond.altp2m_access is an altp2m call");
#define A2 "altp2m: {mode: external, views: [{}]}\n"
    expect_error(BASE A2 "client:\n  events:\n    - expect: {}\n"
                 "      respond: {altp2m_access: [{gfn: 1, access: r}]}\n", 10, 33,
                 "missing key 'view' in client.events[0].respond.altp2m_access[0]; expected view, gfn, "
                 "access and optionally count");
    expect_error(BASE A2 "client:\n  events:\n    - expect: {}\n"
                 "      respond: {altp2m_access: [{view: 2, gfn: 1, access: r}]}\n", 10, 40,
                 "client.events[0].respond.altp2m_access[0].view is view 2, but altp2m.views creates 1 view");
    expect_error(BASE A2 "client:\n  events:\n    - expect: {}\n"
                 "      respond: {change_gfn: [{view: 0, gfn: 1, to: 2}]}\n", 10, 37,
                 "client.events[0].respond.change_gfn[0].view is 0, the host p2m, which change_gfn "
                 "cannot change; expected a view of altp2m.views (1 to 1)");
    expect_error(BASE A2 "client:\n  events:\n    - expect: {}\n"
                 "      respond: {change_gfn: [{view: 1, gfn: 1}]}\n", 10, 30,
                 "missing key 'to' in client.events[0].respond.change_gfn[0]; expected view, gfn and to");
    expect_error(BASE "final:\n  view: 0\n", 7, 3,
                 "final.view is given but the scenario has no altp2m section; expected an altp2m section");
    expect_error(BASE A2 "final:\n  view: 3\n", 8, 9,
                 "final.view is view 3, but altp2m.views creates 1 view");
    expect_error(BASE A2 "final:\n  vcpus: [{vcpu: 0}]\n", 8, 11,
                 "missing key 'registers' in final.vcpus[0]; expected vcpu and registers, view or both");
    expect_error(BASE A2 "final:\n  view: 1\n  vcpus: [{vcpu: 0, view: 1}]\n", 9, 18,
                 "vcpu 0 has registers twice in final");
    expect_error(BASE INTRO A2 "final:\n  introspector:\n    vcpus: [{vcpu: 0, view: 0}]\n", 14, 23,
                 "unknown key 'view' in final.introspector.vcpus[0]; expected one of: vcpu, registers");
#undef A2
}

/* ---- hypervisor: the hypervisor's own steps (sim/inject.c) ------------------ */

/* Every kind of step arrives in the model: kind, after, reason, vcpu, sync, payload, write bytes/fill. */
Test(hypervisor, keys_in_model)
{
    struct scenario *s = parse_ok(BASE "  vcpus: 4\n"
                                  "hypervisor:\n"                                                     /* 7 */
                                  "  - after: 1000\n"                                                 /* 8 */
                                  "    event: {reason: MEM_ACCESS, vcpu: 2, gfn: 0x20, offset: 0xfff0,"
                                  " gla: 0xdead000000000000, access: rw, gla_valid: true, fault: in_gpt}\n"
                                  "  - event: {reason: 1, vcpu: 3, sync: false, access_flags: 0xffffffff}\n"
                                  "  - event: {reason: WRITE_CTRLREG, vcpu: 0, index: xcr0, new_value: 7}\n"
                                  "  - event: {reason: WRITE_CTRLREG, vcpu: 0, index: 0xffffffff}\n"
                                  "  - event: {reason: DEBUG_EXCEPTION, vcpu: 1, type: 255, insn_length: 0xffffffff,"
                                  " pending_dbg: 0x4000, gfn: 0x10}\n"
                                  "  - event: {reason: INTERRUPT, vcpu: 1, vector: 14, type: 0xffffffff,"
                                  " error_code: 2, cr2: 0x1234}\n"
                                  "  - event: {reason: GUEST_REQUEST, vcpu: 0}\n"
                                  "  - after: 0x10\n"
                                  "    write: {gpa: 0x20000, bytes: \"90 90 cc\"}\n"
                                  "  - write: {gpa: 0x21000, fill: 0xab, size: 4K}\n");
    const struct scenario_hypervisor *h = &s->hypervisor;
    cr_assert(h->given);
    cr_expect_eq(h->line, 8);
    cr_expect_eq(h->column, 3);
    cr_assert_eq(h->nr_steps, 9);
    const struct inject_step *st = h->steps;
    cr_expect_eq(st[0].kind, INJECT_EVENT);
    cr_expect_eq(st[0].after, 1000);
    cr_expect_eq(st[0].line, 8);
    cr_expect_eq(st[0].column, 5);
    cr_expect_eq(st[0].reason, SCENARIO_REASON_MEM_ACCESS);
    cr_expect_eq(st[0].vcpu, 2);
    cr_expect(st[0].sync, "sync defaults to true");
    cr_expect_eq(st[0].field[INJECT_F_GFN], 0x20);
    cr_expect_eq(st[0].field[INJECT_F_OFFSET], 0xfff0, "offset takes any u64 here, not only 0-0xfff");
    cr_expect_eq(st[0].field[INJECT_F_GLA], 0xdead000000000000ull);
    cr_expect_eq(st[0].field[INJECT_F_ACCESS], 3);
    cr_expect_eq(st[0].field[INJECT_F_GLA_VALID], 1);
    cr_expect_eq(st[0].field[INJECT_F_FAULT], 0x20);
    cr_expect_not(st[0].given & (1u << INJECT_F_ACCESS_FLAGS));
    cr_expect_eq(st[1].after, 0);
    cr_expect_eq(st[1].reason, 1);
    cr_expect_not(st[1].sync);
    cr_expect(st[1].given & (1u << INJECT_F_ACCESS_FLAGS));
    cr_expect_eq(st[1].field[INJECT_F_ACCESS_FLAGS], 0xffffffffu);
    cr_expect_eq(st[2].field[INJECT_F_INDEX], 3, "xcr0 is write_ctrlreg index 3");
    cr_expect_eq(st[2].field[INJECT_F_NEW_VALUE], 7);
    cr_expect_eq(st[3].field[INJECT_F_INDEX], 0xffffffffu);
    cr_expect_eq(st[4].field[INJECT_F_TYPE], 255);
    cr_expect_eq(st[4].field[INJECT_F_INSN_LENGTH], 0xffffffffu);
    cr_expect_eq(st[4].field[INJECT_F_PENDING_DBG], 0x4000);
    cr_expect_eq(st[5].field[INJECT_F_TYPE], 0xffffffffu, "an interrupt's type is a u32");
    cr_expect_eq(st[5].field[INJECT_F_CR2], 0x1234);
    cr_expect_eq(st[6].reason, SCENARIO_REASON_GUEST_REQUEST);
    cr_expect_eq(st[6].given, 0);
    cr_expect_eq(st[7].kind, INJECT_WRITE);
    cr_expect_eq(st[7].after, 0x10);
    cr_expect_eq(st[7].gpa, 0x20000);
    cr_assert_eq(st[7].size, 3);
    cr_assert_not_null(st[7].bytes);
    cr_expect_eq(st[7].bytes[2], 0xcc);
    cr_expect_eq(st[8].kind, INJECT_WRITE);
    cr_expect_null(st[8].bytes);
    cr_expect_eq(st[8].fill, 0xab);
    cr_expect_eq(st[8].size, 4096);
    scenario_free(s);

    /* No section: no steps; an empty list is a section with none. */
    s = parse_ok(BASE);
    cr_expect_not(s->hypervisor.given);
    cr_expect_eq(s->hypervisor.nr_steps, 0);
    scenario_free(s);
    s = parse_ok(BASE "hypervisor: []\n");
    cr_expect(s->hypervisor.given);
    cr_expect_eq(s->hypervisor.nr_steps, 0);
    scenario_free(s);
}

/* A request built from a step carries exactly the step's payload (inject_build_request). */
Test(hypervisor, request_from_step)
{
    struct scenario *s = parse_ok(BASE "hypervisor:\n"
                                  "  - event: {reason: MEM_ACCESS, vcpu: 0, access: x, gla_valid: true, fault: with_gla}\n"
                                  "  - event: {reason: MEM_ACCESS, vcpu: 0, access: x, access_flags: 0x80000040}\n");
    cr_assert_eq(s->hypervisor.nr_steps, 2);
    cr_expect_eq(inject_fields_allowed(SCENARIO_REASON_GUEST_REQUEST), 0);
    cr_expect_eq(inject_field_max(SCENARIO_REASON_INTERRUPT, INJECT_F_TYPE), 0xffffffffu);
    cr_expect_eq(inject_field_max(SCENARIO_REASON_SOFTWARE_BREAKPOINT, INJECT_F_TYPE), 0xff);
    cr_expect_str_eq(inject_field_name(INJECT_F_EXIT_QUALIFICATION), "exit_qualification");
    cr_expect_null(inject_field_name(INJECT_F_COUNT));
    scenario_free(s);
}

Test(hypervisor, errors)
{
    expect_error(BASE "hypervisor: {after: 1}\n", 6, 13, "hypervisor is a mapping; expected a list");
    expect_error(BASE "hypervisor:\n  - {aftr: 1, event: {reason: 1, vcpu: 0}}\n", 7, 6,
                 "unknown key 'aftr' in hypervisor[0]; expected one of: after, event, write");
    expect_error(BASE "hypervisor:\n  - {after: 1}\n", 7, 5,
                 "missing key 'event' in hypervisor[0]; expected exactly one of event", "or write");
    expect_error(BASE "hypervisor:\n  - {event: {reason: 1, vcpu: 0}, write: {gpa: 0, bytes: \"00\"}}\n", 7, 35,
                 "both event and write in hypervisor[0]; expected exactly one of them");
    expect_error(BASE "hypervisor:\n  - {after: -1, event: {reason: 1, vcpu: 0}}\n", 7, 13,
                 "'-1' is negative in hypervisor[0].after");
    /* event */
    expect_error(BASE "hypervisor:\n  - event: {vcpu: 0}\n", 7, 12,
                 "missing key 'reason' in hypervisor[0].event");
    expect_error(BASE "hypervisor:\n  - event: {reason: CPUID}\n", 7, 12,
                 "missing key 'vcpu' in hypervisor[0].event");
    expect_error(BASE "hypervisor:\n  - event: {reason: CPUID, vcpu: 1}\n", 7, 34,
                 "hypervisor[0].event.vcpu is 1, but the guest has 1 vcpu; expected 0 to 0");
    expect_error(BASE "hypervisor:\n  - event: {reason: MEM_PAGING, vcpu: 0}\n", 7, 21,
                 "hypervisor[0].event.reason is MEM_PAGING, which only the paging ring carries",
                 "expected a reason of the monitor ring");
    expect_error(BASE "hypervisor:\n  - event: {reason: 2, vcpu: 0}\n", 7, 21,
                 "hypervisor[0].event.reason is MEM_SHARING, which only the sharing ring carries");
    expect_error(BASE "hypervisor:\n  - event: {reason: 17, vcpu: 0}\n", 7, 21,
                 "hypervisor[0].event.reason is 17; expected 0 to 16");
    expect_error(BASE "hypervisor:\n  - event: {reason: MEM_ACCES, vcpu: 0}\n", 7, 21,
                 "'MEM_ACCES' is not an event reason in hypervisor[0].event.reason");
    expect_error(BASE "hypervisor:\n  - event: {reason: MEM_ACCESS, vcpu: 0, msr: 0x10}\n", 7, 42,
                 "'msr' is not carried by a MEM_ACCESS request in hypervisor[0].event; expected one of: "
                 "gfn, offset, gla, access, gla_valid, fault, access_flags");
    expect_error(BASE "hypervisor:\n  - event: {reason: GUEST_REQUEST, vcpu: 0, gfn: 1}\n", 7, 45,
                 "'gfn' is not carried by a GUEST_REQUEST request in hypervisor[0].event; expected no "
                 "payload key");
    expect_error(BASE "hypervisor:\n  - event: {reason: SOFTWARE_BREAKPOINT, vcpu: 0, pending_dbg: 1}\n", 7, 51,
                 "'pending_dbg' is not carried by a SOFTWARE_BREAKPOINT request");
    expect_error(BASE "hypervisor:\n  - event: {reason: CPUID, vcpu: 0, lef: 1}\n", 7, 37,
                 "unknown key 'lef' in hypervisor[0].event; expected one of: reason, vcpu, sync, gfn");
    expect_error(BASE "hypervisor:\n  - event: {reason: SOFTWARE_BREAKPOINT, vcpu: 0, type: 256}\n", 7, 57,
                 "hypervisor[0].event.type is 256; expected 0 to 255");
    expect_error(BASE "hypervisor:\n  - event: {reason: CPUID, vcpu: 0, leaf: 0x100000000}\n", 7, 43,
                 "hypervisor[0].event.leaf is 0x100000000; expected 0 to 4294967295");
    expect_error(BASE "hypervisor:\n  - event: {reason: MEM_ACCESS, vcpu: 0, access: rwz}\n", 7, 50,
                 "'rwz' in hypervisor[0].event.access has 'z'");
    expect_error(BASE "hypervisor:\n  - event: {reason: MEM_ACCESS, vcpu: 0, fault: maybe}\n", 7, 49,
                 "'maybe' is not a fault kind in hypervisor[0].event.fault");
    expect_error(BASE "hypervisor:\n  - event: {reason: WRITE_CTRLREG, vcpu: 0, index: cr2}\n", 7, 52,
                 "'cr2' is not a control register in hypervisor[0].event.index");
    expect_error(BASE "hypervisor:\n  - event: {reason: DESCRIPTOR_ACCESS, vcpu: 0, is_write: 1}\n", 7, 59,
                 "'1' is not a boolean in hypervisor[0].event.is_write");
    expect_error(BASE "hypervisor:\n  - event: {reason: CPUID, vcpu: 0, sync: maybe}\n", 7, 43,
                 "'maybe' is not a boolean in hypervisor[0].event.sync");
    /* write */
    expect_error(BASE "hypervisor:\n  - write: {bytes: \"00\"}\n", 7, 12,
                 "missing key 'gpa' in hypervisor[0].write");
    expect_error(BASE "hypervisor:\n  - write: {gpa: 0}\n", 7, 12,
                 "missing key 'bytes' in hypervisor[0].write; expected bytes (a hex byte string), or fill");
    expect_error(BASE "hypervisor:\n  - write: {gpa: 0, bytes: \"00\", fill: 1, size: 1}\n", 7, 34,
                 "both bytes and fill in hypervisor[0].write");
    expect_error(BASE "hypervisor:\n  - write: {gpa: 0, bytes: \"00\", size: 1}\n", 7, 34,
                 "'size' in hypervisor[0].write goes with fill");
    expect_error(BASE "hypervisor:\n  - write: {gpa: 0, fill: 1}\n", 7, 12,
                 "missing key 'size' in hypervisor[0].write");
    expect_error(BASE "hypervisor:\n  - write: {gpa: 0, fill: 256, size: 1}\n", 7, 27,
                 "hypervisor[0].write.fill is 256; expected 0 to 255");
    expect_error(BASE "hypervisor:\n  - write: {gpa: 0, fill: 1, size: 0}\n", 7, 36,
                 "hypervisor[0].write.size is 0; expected at least 1");
    expect_error(BASE "hypervisor:\n  - write: {gpa: 0xfffffe, bytes: \"00 01 02\"}\n", 7, 18,
                 "hypervisor[0].write (3 bytes at gpa 0xfffffe) extends beyond guest memory (16M = 0x1000000); "
                 "expected gpa + length <= memory");
    expect_error(BASE "hypervisor:\n  - write: {gpa: 0xfff000, fill: 0, size: 8K}\n", 7, 18,
                 "(8192 bytes at gpa 0xfff000) extends beyond guest memory");
    expect_error(BASE "hypervisor:\n  - write: {gpa: 0xffffffffffffffff, fill: 0, size: 2}\n", 7, 18,
                 "extends beyond guest memory");
}

/* At most 10,000 steps: the 10,001st is named. */
Test(hypervisor, step_limit)
{
    const char *step = "  - event: {reason: 8, vcpu: 0}\n";
    size_t n = SCENARIO_MAX_HYPERVISOR_STEPS + 1, len = strlen(BASE) + strlen("hypervisor:\n") + n * strlen(step);
    char *text = test_alloc(len);
    char *p = text + sprintf(text, "%s", BASE "hypervisor:\n");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s", step);
    expect_error_v(text, len, 7 + SCENARIO_MAX_HYPERVISOR_STEPS, 5, "hypervisor has 10001 steps; expected at most 10000",
                   (const char *)NULL);
    /* Exactly the limit is fine. */
    size_t ok_len = len - strlen(step);
    struct scenario *s = NULL;
    char err[512];
    cr_expect_eq(scenario_parse(text, ok_len, FILE_NAME, &s, err, sizeof(err)), 0, "%s", err);
    if (s)
        cr_expect_eq(s->hypervisor.nr_steps, SCENARIO_MAX_HYPERVISOR_STEPS);
    scenario_free(s);
    free(text);
}
