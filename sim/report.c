/* sim/report.c — the run's log: readable lines as they happen, JSON and JUnit XML after. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "runner_internal.h"

static const char *const run_end_names[] = {
    [RUN_END_NONE] = "running", [RUN_END_HALTED] = "halted", [RUN_END_LIMIT] = "limit",
    [RUN_END_CRASHED] = "crashed", [RUN_END_FAULT] = "fault", [RUN_END_BLOCKED] = "blocked",
    [RUN_END_ERROR] = "error", [RUN_END_SHUTDOWN] = "shutdown",
};

const char *run_end_name(enum run_end end)
{
    return (unsigned)end < sizeof(run_end_names) / sizeof(run_end_names[0]) ? run_end_names[end] : "?";
}

static void access_letters(char *buf, uint32_t flags)
{
    size_t n = 0;
    if (flags & VME_MEM_ACCESS_R)
        buf[n++] = 'r';
    if (flags & VME_MEM_ACCESS_W)
        buf[n++] = 'w';
    if (flags & VME_MEM_ACCESS_X)
        buf[n++] = 'x';
    if (!n)
        buf[n++] = '-';
    buf[n] = 0;
}

/* "A|B", "bitN" for a bit with no name, or "none": flags named by `name_of`. */
static size_t bit_names(char *buf, size_t len, uint32_t flags, const char *(*name_of)(unsigned))
{
    size_t n = 0;
    buf[0] = 0;
    for (unsigned bit = 0; bit < 32 && n < len; bit++) {
        if (!(flags & (1u << bit)))
            continue;
        const char *name = name_of(bit);
        int w = name ? snprintf(buf + n, len - n, "%s%s", n ? "|" : "", name)
                     : snprintf(buf + n, len - n, "%sbit%u", n ? "|" : "", bit);
        if (w > 0)
            n += (size_t)w;
    }
    if (!flags)
        snprintf(buf, len, "none");
    return n;
}

static size_t flag_names(char *buf, size_t len, uint32_t flags)
{
    return bit_names(buf, len, flags, vme_flag_name);
}

/* "DROP_PAGE|EVICT_FAIL", or "none": u.mem_paging.flags. */
static void paging_flag_names(char *buf, size_t len, uint32_t flags)
{
    bit_names(buf, len, flags, scenario_paging_flag_name);
}

/* snprintf that appends and never runs past the buffer. */
static void append(char *buf, size_t len, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
    if (*off >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *off, len - *off, fmt, ap);
    va_end(ap);
    if (n > 0)
        *off += (size_t)n;
}

/* " gfn 0x.. p2mt name" (the number when the type has no name): paging and sharing requests. */
static void append_gfn_p2mt(char *buf, size_t len, size_t *off, uint64_t gfn, uint32_t p2mt)
{
    const char *t = scenario_p2mt_name(p2mt);
    append(buf, len, off, " gfn %#" PRIx64, gfn);
    if (t)
        append(buf, len, off, " p2mt %s", t);
    else
        append(buf, len, off, " p2mt %" PRIu32, p2mt);
}

void run_describe(char *buf, size_t len, const struct vme_msg *m, bool response)
{
    size_t off = 0;
    char flags[200], acc[4];
    const char *reason = vme_reason_name(m->reason);
    buf[0] = 0;
    if (reason)
        append(buf, len, &off, "%s vCPU %" PRIu32, reason, m->vcpu_id);
    else
        append(buf, len, &off, "reason %" PRIu32 " vCPU %" PRIu32, m->reason, m->vcpu_id);
    if (m->reason == VME_REASON_MEM_ACCESS) {
        uint32_t f = m->u.mem_access.flags;
        access_letters(acc, f);
        append(buf, len, &off, " gfn %#" PRIx64 " offset %#" PRIx64 " access %s", m->u.mem_access.gfn,
               m->u.mem_access.offset, acc);
        if (f & VME_MEM_ACCESS_GLA_VALID)
            append(buf, len, &off, " gla %#" PRIx64, m->u.mem_access.gla);
        if (f & VME_MEM_ACCESS_FAULT_IN_GPT)
            append(buf, len, &off, " (in the page walk)");
    }
    static const char *const crs[] = {"cr0", "cr3", "cr4", "xcr0"};
    switch (m->reason) {
    case VME_REASON_WRITE_CTRLREG:
        if (m->u.write_ctrlreg.index < 4)
            append(buf, len, &off, " %s", crs[m->u.write_ctrlreg.index]);
        else
            append(buf, len, &off, " index %" PRIu32, m->u.write_ctrlreg.index);
        append(buf, len, &off, " %#" PRIx64 " -> %#" PRIx64, m->u.write_ctrlreg.old_value,
               m->u.write_ctrlreg.new_value);
        break;
    case VME_REASON_MOV_TO_MSR:
        append(buf, len, &off, " msr %#" PRIx64 " %#" PRIx64 " -> %#" PRIx64, m->u.mov_to_msr.msr,
               m->u.mov_to_msr.old_value, m->u.mov_to_msr.new_value);
        break;
    case VME_REASON_SOFTWARE_BREAKPOINT:
        append(buf, len, &off, " gfn %#" PRIx64 " type %u insn_length %" PRIu32, m->u.debug.gfn,
               m->u.debug.type, m->u.debug.insn_length);
        break;
    case VME_REASON_SINGLESTEP:
        append(buf, len, &off, " gfn %#" PRIx64, m->u.debug.gfn);
        break;
    case VME_REASON_MEM_PAGING:
        append_gfn_p2mt(buf, len, &off, m->u.paging.gfn, m->u.paging.p2mt);
        paging_flag_names(flags, sizeof(flags), m->u.paging.flags);
        append(buf, len, &off, " paging flags %s", flags);
        break;
    case VME_REASON_MEM_SHARING:
        append_gfn_p2mt(buf, len, &off, m->u.sharing.gfn, m->u.sharing.p2mt);
        break;
    default:
        break;
    }
    flag_names(flags, sizeof(flags), m->flags);
    append(buf, len, &off, " flags %s", flags);
    if (m->flags & VME_FLAG_ALTERNATE_P2M)
        append(buf, len, &off, " view %u", m->altp2m_idx);
    if (!response)
        append(buf, len, &off, " rip %#" PRIx64, m->regs.rip);
    else if (m->flags & VME_FLAG_SET_EMUL_READ_DATA)
        append(buf, len, &off, " read data of %" PRIu32 " byte(s)", m->emul_read.size);
}

void run_format_field(char *buf, size_t len, const struct scenario_match *f, uint64_t value)
{
    switch (f->field) {
    case SCENARIO_MATCH_REASON: {
        const char *n = vme_reason_name((unsigned)value);
        if (n)
            snprintf(buf, len, "%s", n);
        else
            snprintf(buf, len, "%" PRIu64, value);
        return;
    }
    case SCENARIO_MATCH_FLAGS:
        flag_names(buf, len, (uint32_t)value);
        return;
    case SCENARIO_MATCH_PAGING_FLAGS:
        paging_flag_names(buf, len, (uint32_t)value);
        return;
    case SCENARIO_MATCH_P2MT: {
        const char *t = scenario_p2mt_name((unsigned)value);
        if (t)
            snprintf(buf, len, "%s", t);
        else
            snprintf(buf, len, "%" PRIu64, value);
        return;
    }
    case SCENARIO_MATCH_ACCESS: {
        char acc[4];
        access_letters(acc, (uint32_t)value);
        snprintf(buf, len, "%s", acc);
        return;
    }
    case SCENARIO_MATCH_GLA_VALID:
        snprintf(buf, len, "%s", value ? "true" : "false");
        return;
    case SCENARIO_MATCH_FAULT:
        snprintf(buf, len, "%s", value == VME_MEM_ACCESS_FAULT_WITH_GLA ? "with_gla"
                                 : value == VME_MEM_ACCESS_FAULT_IN_GPT ? "in_gpt"
                                 : value == 0 ? "none" : "with_gla+in_gpt");
        return;
    case SCENARIO_MATCH_INDEX: {
        static const char *const crs[] = {"cr0", "cr3", "cr4", "xcr0"};
        if (value < 4)
            snprintf(buf, len, "%s", crs[value]);
        else
            snprintf(buf, len, "%" PRIu64, value);
        return;
    }
    case SCENARIO_MATCH_VCPU:
    case SCENARIO_MATCH_INSN_LENGTH:
    case SCENARIO_MATCH_TYPE:
    case SCENARIO_MATCH_ALTP2M_IDX:
        snprintf(buf, len, "%" PRIu64, value);
        return;
    case SCENARIO_MATCH_REG:
        snprintf(buf, len, "%s=%#" PRIx64, scenario_reg_name(f->reg), value);
        return;
    default:
        snprintf(buf, len, "%#" PRIx64, value);
        return;
    }
}

static const char *kind_label(enum run_log_kind k)
{
    switch (k) {
    case RUN_LOG_REQUEST: return "request";
    case RUN_LOG_MATCH: return "expected";
    case RUN_LOG_CLIENT: return "client";
    case RUN_LOG_RESPONSE: return "response";
    case RUN_LOG_XEN: return "xen";
    case RUN_LOG_END: return "end";
    case RUN_LOG_CHECK: return "check";
    case RUN_LOG_FAIL: return "FAILED";
    case RUN_LOG_HYPERCALL: return "hypercall";
    case RUN_LOG_CONSOLE: return "console";
    }
    return "?";
}

void run_log_add(struct run *r, enum run_log_kind kind, uint64_t seq, unsigned vcpu,
                 const struct vme_msg *msg, const char *fmt, ...)
{
    char text[600];
    if (msg && (kind == RUN_LOG_REQUEST || kind == RUN_LOG_RESPONSE)) {
        run_describe(text, sizeof(text), msg, kind == RUN_LOG_RESPONSE);
    } else {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
    }
    if (r->out) {
        if (kind == RUN_LOG_REQUEST)
            fprintf(r->out, "  #%-3" PRIu64 " %-9s %s\n", seq, kind_label(kind), text);
        else
            fprintf(r->out, "       %-9s %s\n", kind_label(kind), text);
    }
    if (r->nr_log == r->cap_log) {
        size_t cap = r->cap_log ? 2 * r->cap_log : 64;
        struct run_log *l = realloc(r->log, cap * sizeof(*l));
        if (!l)
            return; /* the printed line stands; the JSON log loses it */
        r->log = l;
        r->cap_log = cap;
    }
    struct run_log *e = &r->log[r->nr_log];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->seq = seq;
    e->vcpu = vcpu;
    if (msg) {
        e->has_msg = true;
        e->msg = *msg;
    }
    e->text = strdup(text);
    if (e->text)
        r->nr_log++;
}

void run_log_free(struct run *r)
{
    for (size_t i = 0; i < r->nr_log; i++)
        free(r->log[i].text);
    free(r->log);
    r->log = NULL;
    r->nr_log = r->cap_log = 0;
}

/* ---- JSON ------------------------------------------------------------------ */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void json_msg(FILE *f, const struct vme_msg *m)
{
    const char *reason = vme_reason_name(m->reason);
    fprintf(f, "{\"version\":%" PRIu32 ",\"reason\":", m->version);
    json_str(f, reason ? reason : "UNKNOWN_REASON");
    fprintf(f, ",\"reason_code\":%" PRIu32 ",\"vcpu_id\":%" PRIu32 ",\"flags\":[", m->reason, m->vcpu_id);
    bool first = true;
    for (unsigned bit = 0; bit < 32; bit++)
        if (m->flags & (1u << bit)) {
            fprintf(f, "%s", first ? "" : ",");
            first = false;
            const char *n = vme_flag_name(bit);
            if (n)
                json_str(f, n);
            else
                fprintf(f, "\"bit%u\"", bit);
        }
    fprintf(f, "],\"altp2m_idx\":%u", m->altp2m_idx);
    if (m->reason == VME_REASON_MEM_ACCESS)
        fprintf(f, ",\"mem_access\":{\"gfn\":%" PRIu64 ",\"offset\":%" PRIu64 ",\"gla\":%" PRIu64
                   ",\"flags\":%" PRIu32 "}",
                m->u.mem_access.gfn, m->u.mem_access.offset, m->u.mem_access.gla, m->u.mem_access.flags);
    if (m->reason == VME_REASON_WRITE_CTRLREG)
        fprintf(f, ",\"write_ctrlreg\":{\"index\":%" PRIu32 ",\"new_value\":%" PRIu64
                   ",\"old_value\":%" PRIu64 "}",
                m->u.write_ctrlreg.index, m->u.write_ctrlreg.new_value, m->u.write_ctrlreg.old_value);
    if (m->reason == VME_REASON_MOV_TO_MSR)
        fprintf(f, ",\"mov_to_msr\":{\"msr\":%" PRIu64 ",\"new_value\":%" PRIu64
                   ",\"old_value\":%" PRIu64 "}",
                m->u.mov_to_msr.msr, m->u.mov_to_msr.new_value, m->u.mov_to_msr.old_value);
    if (m->reason == VME_REASON_SOFTWARE_BREAKPOINT)
        fprintf(f, ",\"software_breakpoint\":{\"gfn\":%" PRIu64 ",\"type\":%u,\"insn_length\":%" PRIu32 "}",
                m->u.debug.gfn, m->u.debug.type, m->u.debug.insn_length);
    if (m->reason == VME_REASON_SINGLESTEP)
        fprintf(f, ",\"singlestep\":{\"gfn\":%" PRIu64 "}", m->u.debug.gfn);
    if (m->reason == VME_REASON_MEM_PAGING)
        fprintf(f, ",\"mem_paging\":{\"gfn\":%" PRIu64 ",\"p2mt\":%" PRIu32 ",\"flags\":%" PRIu32 "}",
                m->u.paging.gfn, m->u.paging.p2mt, m->u.paging.flags);
    if (m->reason == VME_REASON_MEM_SHARING)
        fprintf(f, ",\"mem_sharing\":{\"gfn\":%" PRIu64 ",\"p2mt\":%" PRIu32 "}",
                m->u.sharing.gfn, m->u.sharing.p2mt);
    fprintf(f, ",\"regs\":{\"rip\":%" PRIu64 ",\"rsp\":%" PRIu64 ",\"rax\":%" PRIu64 ",\"rbx\":%" PRIu64
               ",\"rcx\":%" PRIu64 ",\"rdx\":%" PRIu64 ",\"rflags\":%" PRIu64 ",\"cr0\":%" PRIu64
               ",\"cr3\":%" PRIu64 ",\"cr4\":%" PRIu64 "}}",
            m->regs.rip, m->regs.rsp, m->regs.rax, m->regs.rbx, m->regs.rcx, m->regs.rdx,
            m->regs.rflags, m->regs.cr0, m->regs.cr3, m->regs.cr4);
}

int run_write_json(const char *path, struct run *const *runs, size_t n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    fprintf(f, "{\"vmisim\":\"run\",\"scenarios\":[");
    for (size_t i = 0; i < n; i++) {
        const struct run *r = runs[i];
        fprintf(f, "%s{\"name\":", i ? "," : "");
        json_str(f, r->s->name);
        fprintf(f, ",\"file\":");
        json_str(f, r->s->file);
        fprintf(f, ",\"verdict\":\"%s\",\"end\":\"%s\",\"end_detail\":",
                r->error ? "error" : r->failed ? "fail" : "pass", run_end_name(r->end));
        json_str(f, r->end_why);
        fprintf(f, ",\"events\":%" PRIu64 ",\"instructions\":%" PRIu64 ",\"checks\":%" PRIu64,
                r->events, r->insns, r->checks);
        if (r->seed) /* only when asked for: the log of seed 0 stays what it always was */
            fprintf(f, ",\"seed\":%" PRIu64, r->seed);
        if (r->s->introspector.given) {
            fprintf(f, ",\"introspector\":{\"end\":\"%s\",\"end_detail\":", run_end_name(r->in_end));
            json_str(f, r->in_end_why);
            fprintf(f, ",\"instructions\":%" PRIu64 "}", r->in_insns);
        }
        fprintf(f, ",\"log\":[");
        for (size_t k = 0; k < r->nr_log; k++) {
            const struct run_log *e = &r->log[k];
            fprintf(f, "%s{\"kind\":\"%s\",\"event\":%" PRIu64 ",\"vcpu\":%u,\"text\":", k ? "," : "",
                    kind_label(e->kind), e->seq, e->vcpu);
            json_str(f, e->text);
            if (e->has_msg) {
                fprintf(f, ",\"message\":");
                json_msg(f, &e->msg);
            }
            fputc('}', f);
        }
        fprintf(f, "]}");
    }
    fprintf(f, "]}\n");
    return fclose(f) == 0 ? 0 : -errno;
}

/* ---- JUnit XML ------------------------------------------------------------- */

static void xml_str(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if (*p < 0x20 && *p != '\n' && *p != '\t')
                fputc('?', f);
            else
                fputc(*p, f);
        }
    }
}

int run_write_junit(const char *path, struct run *const *runs, size_t n, const char *const *errors,
                    const char *const *files, size_t nfiles)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    size_t failures = 0, errs = nfiles;
    for (size_t i = 0; i < n; i++) {
        failures += runs[i]->failed && !runs[i]->error;
        errs += runs[i]->error;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<testsuite name=\"vmisim scenarios\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\">\n",
            n + nfiles, failures, errs);
    for (size_t i = 0; i < n; i++) {
        const struct run *r = runs[i];
        fprintf(f, "  <testcase classname=\"vmisim.scenario\" name=\"");
        xml_str(f, r->s->name);
        fprintf(f, "\" file=\"");
        xml_str(f, r->s->file);
        fprintf(f, "\">\n");
        const char *first = NULL;
        for (size_t k = 0; k < r->nr_log && !first; k++)
            if (r->log[k].kind == RUN_LOG_FAIL)
                first = r->log[k].text;
        if (r->failed || r->error) {
            fprintf(f, "    <%s message=\"", r->error ? "error" : "failure");
            xml_str(f, first ? first : "failed");
            fprintf(f, "\">");
            for (size_t k = 0; k < r->nr_log; k++) {
                xml_str(f, r->log[k].text);
                fputc('\n', f);
            }
            fprintf(f, "</%s>\n", r->error ? "error" : "failure");
        }
        fprintf(f, "  </testcase>\n");
    }
    for (size_t i = 0; i < nfiles; i++) {
        fprintf(f, "  <testcase classname=\"vmisim.scenario\" name=\"");
        xml_str(f, files[i]);
        fprintf(f, "\">\n    <error message=\"");
        xml_str(f, errors[i]);
        fprintf(f, "\"/>\n  </testcase>\n");
    }
    fprintf(f, "</testsuite>\n");
    return fclose(f) == 0 ? 0 : -errno;
}
