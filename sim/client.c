/*
 * sim/client.c — the scripted client of a scenario: an in-process
 * introspection client that works through the real ring, as xen-access does
 * (take each request, answer it with a zeroed response carrying version,
 * vcpu_id, reason and the flags asked for, echoing the payload), with its
 * expectations checked against every request it takes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record_internal.h"
#include "runner_internal.h"

uint64_t run_msg_reg(const struct vme_msg *m, enum scenario_reg reg, bool *known)
{
    const struct vme_regs *g = &m->regs;
    *known = true;
    switch (reg) {
    case SCENARIO_REG_RAX: return g->rax;
    case SCENARIO_REG_RBX: return g->rbx;
    case SCENARIO_REG_RCX: return g->rcx;
    case SCENARIO_REG_RDX: return g->rdx;
    case SCENARIO_REG_RSI: return g->rsi;
    case SCENARIO_REG_RDI: return g->rdi;
    case SCENARIO_REG_RBP: return g->rbp;
    case SCENARIO_REG_RSP: return g->rsp;
    case SCENARIO_REG_R8: return g->r8;
    case SCENARIO_REG_R9: return g->r9;
    case SCENARIO_REG_R10: return g->r10;
    case SCENARIO_REG_R11: return g->r11;
    case SCENARIO_REG_R12: return g->r12;
    case SCENARIO_REG_R13: return g->r13;
    case SCENARIO_REG_R14: return g->r14;
    case SCENARIO_REG_R15: return g->r15;
    case SCENARIO_REG_RIP: return g->rip;
    case SCENARIO_REG_RFLAGS: return g->rflags;
    case SCENARIO_REG_CR0: return g->cr0;
    case SCENARIO_REG_CR2: return g->cr2;
    case SCENARIO_REG_CR3: return g->cr3;
    case SCENARIO_REG_CR4: return g->cr4;
    case SCENARIO_REG_DR7: return g->dr7;
    case SCENARIO_REG_EFER: return g->msr_efer;
    case SCENARIO_REG_STAR: return g->msr_star;
    case SCENARIO_REG_LSTAR: return g->msr_lstar;
    case SCENARIO_REG_SYSENTER_CS: return g->sysenter_cs;
    case SCENARIO_REG_SYSENTER_ESP: return g->sysenter_esp;
    case SCENARIO_REG_SYSENTER_EIP: return g->sysenter_eip;
    case SCENARIO_REG_FS_BASE: return g->fs_base;
    case SCENARIO_REG_GS_BASE: return g->gs_base;
    case SCENARIO_REG_SHADOW_GS: return g->shadow_gs;
    default:
        /* cstar, sfmask and xcr0 are not in the vm_event register block. */
        *known = false;
        return 0;
    }
}

/* Sets a GPR of a response's register block (SET_REGISTERS applies GPRs, rflags, rip). */
static bool set_msg_reg(struct vme_msg *m, enum scenario_reg reg, uint64_t v)
{
    struct vme_regs *g = &m->regs;
    switch (reg) {
    case SCENARIO_REG_RAX: g->rax = v; return true;
    case SCENARIO_REG_RBX: g->rbx = v; return true;
    case SCENARIO_REG_RCX: g->rcx = v; return true;
    case SCENARIO_REG_RDX: g->rdx = v; return true;
    case SCENARIO_REG_RSI: g->rsi = v; return true;
    case SCENARIO_REG_RDI: g->rdi = v; return true;
    case SCENARIO_REG_RBP: g->rbp = v; return true;
    case SCENARIO_REG_RSP: g->rsp = v; return true;
    case SCENARIO_REG_R8: g->r8 = v; return true;
    case SCENARIO_REG_R9: g->r9 = v; return true;
    case SCENARIO_REG_R10: g->r10 = v; return true;
    case SCENARIO_REG_R11: g->r11 = v; return true;
    case SCENARIO_REG_R12: g->r12 = v; return true;
    case SCENARIO_REG_R13: g->r13 = v; return true;
    case SCENARIO_REG_R14: g->r14 = v; return true;
    case SCENARIO_REG_R15: g->r15 = v; return true;
    case SCENARIO_REG_RIP: g->rip = v; return true;
    case SCENARIO_REG_RFLAGS: g->rflags = v; return true;
    default: return false;
    }
}

uint64_t run_msg_gfn(const struct vme_msg *m)
{
    switch (m->reason) {
    case VME_REASON_MEM_ACCESS: return m->u.mem_access.gfn;
    case VME_REASON_MEM_PAGING: return m->u.paging.gfn;
    case VME_REASON_MEM_SHARING: return m->u.sharing.gfn;
    case VME_REASON_SOFTWARE_BREAKPOINT:
    case VME_REASON_SINGLESTEP:
    case VME_REASON_DEBUG_EXCEPTION: return m->u.debug.gfn;
    default: return 0;
    }
}

uint64_t run_field_value(const struct scenario_match *f, const struct vme_msg *m)
{
    bool known;
    switch (f->field) {
    case SCENARIO_MATCH_REASON: return m->reason;
    case SCENARIO_MATCH_VCPU: return m->vcpu_id;
    case SCENARIO_MATCH_FLAGS: return m->flags & f->value; /* equal to value iff all set */
    case SCENARIO_MATCH_ALTP2M_IDX: return m->altp2m_idx;
    case SCENARIO_MATCH_GFN: return run_msg_gfn(m);
    case SCENARIO_MATCH_OFFSET: return m->u.mem_access.offset;
    case SCENARIO_MATCH_GLA: return m->u.mem_access.gla;
    case SCENARIO_MATCH_ACCESS: return m->u.mem_access.flags & 7;
    case SCENARIO_MATCH_GLA_VALID: return (m->u.mem_access.flags & VME_MEM_ACCESS_GLA_VALID) != 0;
    case SCENARIO_MATCH_FAULT:
        return m->u.mem_access.flags & (VME_MEM_ACCESS_FAULT_WITH_GLA | VME_MEM_ACCESS_FAULT_IN_GPT);
    case SCENARIO_MATCH_REG: return run_msg_reg(m, f->reg, &known);
    case SCENARIO_MATCH_INDEX: return m->u.write_ctrlreg.index;
    case SCENARIO_MATCH_NEW_VALUE:
        return m->reason == VME_REASON_MOV_TO_MSR ? m->u.mov_to_msr.new_value
                                                   : m->u.write_ctrlreg.new_value;
    case SCENARIO_MATCH_OLD_VALUE:
        return m->reason == VME_REASON_MOV_TO_MSR ? m->u.mov_to_msr.old_value
                                                   : m->u.write_ctrlreg.old_value;
    case SCENARIO_MATCH_MSR: return m->u.mov_to_msr.msr;
    case SCENARIO_MATCH_INSN_LENGTH: return m->u.debug.insn_length;
    case SCENARIO_MATCH_TYPE: return m->u.debug.type;
    case SCENARIO_MATCH_P2MT:
        return m->reason == VME_REASON_MEM_SHARING ? m->u.sharing.p2mt : m->u.paging.p2mt;
    case SCENARIO_MATCH_PAGING_FLAGS: return m->u.paging.flags;
    default: return ~f->value;
    }
}

/* The first field of `ev` the request does not satisfy, or NULL when it matches. */
static const struct scenario_match *first_mismatch(const struct scenario_event *ev,
                                                   const struct vme_msg *m)
{
    for (size_t i = 0; i < ev->nr_match; i++)
        if (run_field_value(&ev->match[i], m) != ev->match[i].value)
            return &ev->match[i];
    return NULL;
}

/*
 * An expectation failed: the run stops here.  The message also goes into a
 * recording, so that replay --as-client fails at the same point without the
 * expectations.
 */
static void client_failed(struct run *r, uint64_t seq, unsigned vcpu, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void client_failed(struct run *r, uint64_t seq, unsigned vcpu, const char *fmt, ...)
{
    char text[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    r->failed = true;
    run_log_add(r, RUN_LOG_FAIL, seq, vcpu, NULL, "%s", text);
    rec_client_fail(r, text);
}

static void describe_expect(char *buf, size_t len, const struct run *r, const struct run_expect *e)
{
    const struct scenario_event *ev = e->ev;
    int n = snprintf(buf, len, "%s:%" PRIu32 ":%" PRIu32, r->s->file, ev->line, ev->column);
    if (ev->name && n > 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, " \"%s\"", ev->name);
    if (ev->repeat > 1 && n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, " (repeat %" PRIu32 " of %" PRIu32 ")", e->rep + 1, ev->repeat);
}

static void fail_mismatch(struct run *r, uint64_t seq, const struct vme_msg *m,
                          const struct run_expect *e, const struct scenario_match *f)
{
    char want[64], got[64], where[200];
    run_format_field(want, sizeof(want), f, f->value);
    run_format_field(got, sizeof(got), f, run_field_value(f, m));
    describe_expect(where, sizeof(where), r, e);
    client_failed(r, seq, m->vcpu_id,
                "%s:%" PRIu32 ":%" PRIu32 ": event #%" PRIu64 " does not match the expected event %s: "
                "expected %s %s, got %s", r->s->file, f->line, f->column, seq, where,
                scenario_match_field_name(f->field), want, got);
}

/*
 * respond.load: the pager's xc_mem_paging_load for the request's gfn, just
 * before its answer goes out: with load_bytes (zeros after them), else with
 * the page it saved when it evicted the gfn (none for a page it never
 * evicted: Xen then keeps the frame the gfn still has).
 */
static void pager_load(struct run *r, const struct run_answer *a)
{
    const struct scenario_response *sr = a->sr;
    uint8_t page[4096];
    const uint8_t *buf = NULL;
    const char *from = "no buffer: the gfn kept its frame";
    if (sr->load_bytes.len) {
        memset(page, 0, sizeof(page));
        memcpy(page, sr->load_bytes.data, sr->load_bytes.len);
        buf = page;
        from = "the bytes of respond.load_bytes";
    } else {
        for (size_t i = 0; i < r->nr_saved && !buf; i++)
            if (r->saved[i].gfn == a->gfn) {
                buf = r->saved[i].data;
                from = "the contents saved at eviction";
            }
    }
    run_log_add(r, RUN_LOG_CLIENT, a->seq, a->rsp.vcpu_id, NULL,
                "xc_mem_paging_load: gfn %#" PRIx64 " with %s", a->gfn, from);
    int rc = sim_paging_load(r->d, a->gfn, buf);
    rec_action(r, REC_ACT_PAGING_LOAD, (uint64_t[]){a->gfn}, buf, rc);
    if (rc < 0)
        run_log_add(r, RUN_LOG_CLIENT, a->seq, a->rsp.vcpu_id, NULL, "%s:%" PRIu32 ":%" PRIu32
                    ": xc_mem_paging_load failed: %s", r->s->file, sr->load_line, sr->load_column,
                    sim_error(r->d));
}

/*
 * respond.max_pages / add_pages: the sharing helper's xc_domain_setmaxmem,
 * just before its answer goes out, so the retried unshare finds a page.
 */
static void raise_max_pages(struct run *r, const struct run_answer *a)
{
    const struct scenario_response *sr = a->sr;
    uint64_t before = sim_max_pages(r->d);
    uint64_t pages = sr->max_pages.set ? sr->max_pages.value
                     : before > UINT64_MAX - sr->add_pages.value ? UINT64_MAX
                                                                  : before + sr->add_pages.value;
    sim_set_max_pages(r->d, pages);
    rec_action(r, REC_ACT_MAX_PAGES, (uint64_t[]){pages}, NULL, 0);
    run_log_add(r, RUN_LOG_CLIENT, a->seq, a->rsp.vcpu_id, NULL,
                "xc_domain_setmaxmem: max_pages %" PRIu64 " -> %" PRIu64 " (tot_pages %" PRIu64 ")",
                before, pages, sim_tot_pages(r->d));
}

/* Sends one answer (put, not yet pushed), after the pager's load or the max_pages it asks for. */
static void send_answer(struct run *r, const struct run_answer *a)
{
    unsigned char slot[400];
    struct run_ring *rr = &r->rings[a->ring];
    if (a->sr && a->sr->load)
        pager_load(r, a);
    if (a->sr && (a->sr->max_pages.set || a->sr->add_pages.set))
        raise_max_pages(r, a);
    if (vme_encode(rr->version, &a->rsp, slot) < 0 || ring_back_put_response(rr->back, slot) < 0) {
        r->error = true;
        run_log_add(r, RUN_LOG_FAIL, a->seq, a->rsp.vcpu_id, NULL,
                    "vmisim's client could not put a response on the ring (a bug in the scenario runner)");
        return;
    }
    rec_response(r, a->ring, slot, vme_slot_size(rr->version));
    run_log_add(r, RUN_LOG_RESPONSE, a->seq, a->rsp.vcpu_id, &a->rsp, "response");
}

/* The response the file asks for, to request `req` taken from a ring of `version`. */
static void build_response(struct run *r, unsigned version, const struct scenario_response *sr,
                           const struct vme_msg *req, struct vme_msg *rsp)
{
    memset(rsp, 0, sizeof(*rsp));
    rsp->version = sr->version.set ? (uint32_t)sr->version.value : version;
    rsp->vcpu_id = sr->vcpu_id.set ? (uint32_t)sr->vcpu_id.value : req->vcpu_id;
    rsp->reason = req->reason;
    rsp->flags = sr->flags;
    rsp->altp2m_idx = sr->altp2m_idx.set ? (uint16_t)sr->altp2m_idx.value : 0;
    if (sr->echo)
        rsp->u = req->u;
    if (sr->paging_flags.set)
        rsp->u.paging.flags = (uint32_t)sr->paging_flags.value;
    if (sr->emul_read_data.len || sr->emul_read_size.set) {
        size_t n = sr->emul_read_data.len;
        if (n > sizeof(rsp->emul_read.data))
            n = sizeof(rsp->emul_read.data);
        memcpy(rsp->emul_read.data, sr->emul_read_data.data, n);
        rsp->emul_read.size = sr->emul_read_size.set ? (uint32_t)sr->emul_read_size.value
                                                     : (uint32_t)sr->emul_read_data.len;
    }
    if (sr->registers.n) {
        /* As a client doing SET_REGISTERS does: start from the request's registers. */
        rsp->regs = req->regs;
        for (size_t i = 0; i < sr->registers.n; i++)
            if (set_msg_reg(rsp, sr->registers.v[i].reg, sr->registers.v[i].value))
                run_log_add(r, RUN_LOG_CLIENT, 0, req->vcpu_id, NULL, "register block: %s = %#" PRIx64,
                            scenario_reg_name(sr->registers.v[i].reg), sr->registers.v[i].value);
            else
                run_log_add(r, RUN_LOG_CLIENT, 0, req->vcpu_id, NULL,
                            "%s:%" PRIu32 ":%" PRIu32 ": register %s is not applied by SET_REGISTERS "
                            "(Xen applies GPRs, rflags and rip only): sent anyway",
                            r->s->file, sr->registers.v[i].line, sr->registers.v[i].column,
                            scenario_reg_name(sr->registers.v[i].reg));
    }
}

/* respond.inject: xc_hvm_inject_trap, as xen-access re-injects a breakpoint. */
static void apply_inject(struct run *r, uint64_t seq, const struct scenario_response *sr,
                         const struct vme_msg *req)
{
    if (!sr->inject.set)
        return;
    unsigned vector = sr->inject.vector;
    unsigned type = sr->inject.type.set ? (unsigned)sr->inject.type.value
                    : (vector == 3 || vector == 4) ? SIM_ET_SW_EXC : SIM_ET_HW_EXC;
    unsigned len = sr->inject.insn_length.set ? (unsigned)sr->inject.insn_length.value
                   : (req->reason == VME_REASON_SOFTWARE_BREAKPOINT
                      || req->reason == VME_REASON_DEBUG_EXCEPTION) ? req->u.debug.insn_length : 0;
    int64_t ec = sr->inject.error_code.set ? (int64_t)sr->inject.error_code.value : -1;
    uint64_t cr2 = sr->inject.cr2.set ? sr->inject.cr2.value : 0;
    int rc = sim_inject_trap(r->d, req->vcpu_id, vector, type, ec, len, cr2);
    rec_action(r, REC_ACT_INJECT, (uint64_t[]){req->vcpu_id, vector, type, (uint64_t)ec, len, cr2}, NULL, rc);
    if (rc < 0)
        run_log_add(r, RUN_LOG_CLIENT, seq, req->vcpu_id, NULL, "%s:%" PRIu32 ":%" PRIu32
                    ": xc_hvm_inject_trap failed: %s", r->s->file, sr->inject.line,
                    sr->inject.column, sim_error(r->d));
    else
        run_log_add(r, RUN_LOG_CLIENT, seq, req->vcpu_id, NULL,
                    "xc_hvm_inject_trap: vCPU %" PRIu32 " vector %u type %u insn_len %u", req->vcpu_id,
                    vector, type, len);
}

static void apply_set_access(struct run *r, uint64_t seq, const struct scenario_response *sr)
{
    for (size_t i = 0; i < sr->nr_set_access; i++) {
        const struct scenario_access_range *a = &sr->set_access[i];
        int rc = sim_set_mem_access(r->d, a->access, a->gfn, a->count);
        rec_action(r, REC_ACT_SET_ACCESS, (uint64_t[]){a->access, a->gfn, a->count}, NULL, rc);
        if (rc < 0)
            run_log_add(r, RUN_LOG_CLIENT, seq, 0, NULL, "%s:%" PRIu32 ":%" PRIu32 ": xc_set_mem_access failed: %s",
                        r->s->file, a->line, a->column, sim_error(r->d));
        else if (a->count == 1)
            run_log_add(r, RUN_LOG_CLIENT, seq, 0, NULL, "xc_set_mem_access: gfn %#" PRIx64 " -> %s",
                        a->gfn, scenario_access_name(a->access));
        else
            run_log_add(r, RUN_LOG_CLIENT, seq, 0, NULL,
                        "xc_set_mem_access: gfns %#" PRIx64 "-%#" PRIx64 " -> %s", a->gfn,
                        a->gfn + a->count - 1, scenario_access_name(a->access));
    }
}

/* respond.altp2m_access and respond.change_gfn: the client's altp2m calls before it answers. */
static void apply_altp2m(struct run *r, uint64_t seq, const struct scenario_response *sr)
{
    for (size_t i = 0; i < sr->nr_altp2m_access; i++) {
        const struct scenario_access_range *a = &sr->altp2m_access[i];
        int rc = 0;
        for (uint64_t g = a->gfn; rc == 0 && g < a->gfn + a->count; g++) {
            rc = sim_altp2m_set_mem_access(r->d, (uint16_t)a->view, g, a->access);
            rec_action(r, REC_ACT_ALTP2M_ACCESS, (uint64_t[]){a->view, g, a->access}, NULL, rc);
        }
        if (rc < 0)
            run_log_add(r, RUN_LOG_CLIENT, seq, 0, NULL, "%s:%" PRIu32 ":%" PRIu32
                        ": xc_altp2m_set_mem_access failed: %s", r->s->file, a->line, a->column,
                        sim_error(r->d));
        else if (a->count == 1)
            run_log_add(r, RUN_LOG_CLIENT, seq, 0, NULL, "xc_altp2m_set_mem_access: view %" PRIu32
                        " gfn %#" PRIx64 " -> %s", a->view, a->gfn, scenario_access_name(a->access));
        else
            run_log_add(r, RUN_LOG_CLIENT, seq, 0, NULL, "xc_altp2m_set_mem_access: view %" PRIu32
                        " gfns %#" PRIx64 "-%#" PRIx64 " -> %s", a->view, a->gfn,
                        a->gfn + a->count - 1, scenario_access_name(a->access));
    }
    for (size_t i = 0; i < sr->nr_change_gfn; i++) {
        const struct scenario_change_gfn *cg = &sr->change_gfn[i];
        int rc = sim_altp2m_change_gfn(r->d, (uint16_t)cg->view, cg->gfn, cg->to);
        rec_action(r, REC_ACT_CHANGE_GFN, (uint64_t[]){cg->view, cg->gfn, cg->to}, NULL, rc);
        if (rc < 0)
            run_log_add(r, RUN_LOG_CLIENT, seq, 0, NULL, "%s:%" PRIu32 ":%" PRIu32
                        ": xc_altp2m_change_gfn failed: %s", r->s->file, cg->line, cg->column,
                        sim_error(r->d));
        else if (cg->to == SCENARIO_INVALID_GFN)
            run_log_add(r, RUN_LOG_CLIENT, seq, 0, NULL, "xc_altp2m_change_gfn: view %" PRIu32
                        " gfn %#" PRIx64 " -> none (the view's entry is removed)", cg->view, cg->gfn);
        else
            run_log_add(r, RUN_LOG_CLIENT, seq, 0, NULL, "xc_altp2m_change_gfn: view %" PRIu32
                        " gfn %#" PRIx64 " -> gfn %#" PRIx64, cg->view, cg->gfn, cg->to);
    }
}

/* Finds the expectation for request `m`, or fails the run. */
static struct run_expect *find_expect(struct run *r, uint64_t seq, const struct vme_msg *m)
{
    if (r->s->client.order == SCENARIO_ORDER_SEQUENCE) {
        if (r->next_expect >= r->nr_expect) {
            client_failed(r, seq, m->vcpu_id,
                        "%s:%" PRIu32 ":%" PRIu32 ": event #%" PRIu64 " arrived, but the client expects "
                        "only %zu event(s)", r->s->file, r->s->client.line, r->s->client.column, seq,
                        r->nr_expect);
            return NULL;
        }
        struct run_expect *e = &r->expect[r->next_expect];
        const struct scenario_match *f = first_mismatch(e->ev, m);
        if (f) {
            fail_mismatch(r, seq, m, e, f);
            return NULL;
        }
        r->next_expect++;
        e->used = true;
        return e;
    }
    for (size_t i = 0; i < r->nr_expect; i++)
        if (!r->expect[i].used && !first_mismatch(r->expect[i].ev, m)) {
            r->expect[i].used = true;
            return &r->expect[i];
        }
    client_failed(r, seq, m->vcpu_id,
                "%s:%" PRIu32 ":%" PRIu32 ": event #%" PRIu64 " matches none of the expected events "
                "still unmet (order: set)", r->s->file, r->s->client.line, r->s->client.column, seq);
    return NULL;
}

static void hold(struct run *r, const struct run_answer *a, uint32_t defer)
{
    if (r->nr_held == r->cap_held) {
        size_t cap = r->cap_held ? 2 * r->cap_held : 8;
        struct run_held *h = realloc(r->held, cap * sizeof(*h));
        if (!h) {
            r->error = true;
            return;
        }
        r->held = h;
        r->cap_held = cap;
    }
    r->held[r->nr_held++] = (struct run_held){.a = *a, .remaining = defer};
    run_log_add(r, RUN_LOG_CLIENT, a->seq, a->rsp.vcpu_id, NULL,
                "holds the response to event #%" PRIu64 " until %" PRIu32 " more event(s) arrive",
                a->seq, defer);
}

/* Sends held responses that are due (all of them when `all`), in the order they were held. */
static bool release_held(struct run *r, bool all)
{
    bool sent = false;
    size_t keep = 0;
    for (size_t i = 0; i < r->nr_held; i++) {
        if (all || r->held[i].remaining == 0) {
            if (all && r->held[i].remaining)
                run_log_add(r, RUN_LOG_CLIENT, r->held[i].a.seq, r->held[i].a.rsp.vcpu_id, NULL,
                            "the guest can go no further without it: sends the held response to event #%" PRIu64,
                            r->held[i].a.seq);
            send_answer(r, &r->held[i].a);
            sent = true;
        } else {
            r->held[keep++] = r->held[i];
        }
    }
    r->nr_held = keep;
    return sent;
}

/* Takes and answers every request on one ring; true if there was one. */
/*
 * `snapshot: take`: the whole machine (sim_snapshot_take) and the client's side of every
 * ring, with the request just taken put back as not yet taken, so that a restore makes it
 * arrive again.  `snapshot: restore`: both put back.  False when the run cannot go on.
 */
static bool client_snapshot(struct run *r, unsigned idx, uint64_t seq, enum scenario_snapshot what,
                            const unsigned char *slot)
{
    if (r->rec) {
        r->error = true;
        run_log_add(r, RUN_LOG_FAIL, seq, 0, NULL, "snapshot actions are not recorded (vmisim run --record, "
                    "replay): run this scenario without --record");
        return false;
    }
    if (r->nr_held) {
        r->error = true;
        run_log_add(r, RUN_LOG_FAIL, seq, 0, NULL, "a snapshot action while the client holds responses "
                    "(defer) is not supported: answer them first");
        return false;
    }
    if (what == SCENARIO_SNAPSHOT_TAKE) {
        sim_snapshot_free(r->snap);
        r->snap = NULL;
        int rc = sim_snapshot_take(r->d, &r->snap);
        if (rc < 0) {
            r->error = true;
            run_log_add(r, RUN_LOG_FAIL, seq, 0, NULL, "sim_snapshot_take: %s", sim_error(r->d));
            return false;
        }
        for (unsigned i = 0; i < RUN_RINGS; i++)
            if (r->rings[i].back)
                ring_back_save(r->rings[i].back, &r->snap_back[i]);
        r->snap_back[idx] = r->pre_take[idx];
        memcpy(r->snap_req, slot, sizeof(r->snap_req));
        r->snap_ring = idx;
        r->snap_seq = seq;
        run_log_add(r, RUN_LOG_CLIENT, seq, 0, NULL, "takes a snapshot of the whole machine, with this "
                    "request outstanding (sim_snapshot_take)");
        return true;
    }
    if (!r->snap) {
        r->error = true;
        run_log_add(r, RUN_LOG_FAIL, seq, 0, NULL, "snapshot: restore before any snapshot: take");
        return false;
    }
    int rc = sim_snapshot_restore(r->d, r->snap);
    for (unsigned i = 0; rc == 0 && i < RUN_RINGS; i++)
        if (r->rings[i].back)
            rc = ring_back_restore(r->rings[i].back, &r->snap_back[i]);
    if (rc < 0) {
        r->error = true;
        run_log_add(r, RUN_LOG_FAIL, seq, 0, NULL, "sim_snapshot_restore: %s", sim_error(r->d));
        return false;
    }
    r->snap_redeliver = true;
    run_log_add(r, RUN_LOG_CLIENT, seq, 0, NULL, "restores the snapshot of event #%" PRIu64 " instead of "
                "answering: the machine is back mid-event (%" PRIu64 " page(s) copied back)", r->snap_seq,
                sim_snapshot_restored_pages(r->d));
    return true;
}

static bool ring_step(struct run *r, unsigned idx)
{
    struct run_ring *rr = &r->rings[idx];
    bool acted = false;
    if (evtchn_pending(rr->evtchn) > 0)
        evtchn_unmask(rr->evtchn);
    unsigned char slot[400];
    for (;;) {
        /* Kept for `snapshot: take`: the client's side as it was before taking this request. */
        ring_back_save(rr->back, &r->pre_take[idx]);
        if (r->failed || r->error || ring_back_take_request(rr->back, slot) != 0)
            break;
        rec_request(r, idx, slot, vme_slot_size(rr->version));
        if (r->error)
            break; /* a replay that went another way stops here */
        struct vme_msg req;
        vme_decode(rr->version, slot, &req);
        uint64_t seq = ++r->events;
        if (req.reason < VME_REASON_COUNT)
            r->counts[req.reason]++;
        run_log_add(r, RUN_LOG_REQUEST, seq, req.vcpu_id, &req, "request");
        if (r->snap_redeliver && idx == r->snap_ring) {
            r->snap_redeliver = false;
            if (memcmp(slot, r->snap_req, vme_slot_size(rr->version)) != 0) {
                client_failed(r, seq, req.vcpu_id, "the restored machine delivers a request that differs from "
                                     "event #%" PRIu64 "'s, outstanding when the snapshot was taken", r->snap_seq);
                break;
            }
            run_log_add(r, RUN_LOG_CLIENT, seq, req.vcpu_id, NULL, "the restored ring delivers event #%" PRIu64
                        "'s request again, byte for byte", r->snap_seq);
        }
        acted = true;
        /* Held responses count this event; those now due go out after its own answer. */
        for (size_t i = 0; i < r->nr_held; i++)
            if (r->held[i].remaining)
                r->held[i].remaining--;
        if (!r->s->has_client)
            continue; /* a client that attached and never answers */
        struct run_expect *e = find_expect(r, seq, &req);
        if (!e)
            break;
        char where[200];
        describe_expect(where, sizeof(where), r, e);
        run_log_add(r, RUN_LOG_MATCH, seq, req.vcpu_id, NULL, "matches the expected event %s", where);
        const struct scenario_response *sr = &e->ev->response;
        if (sr->snapshot != SCENARIO_SNAPSHOT_NONE && !client_snapshot(r, idx, seq, sr->snapshot, slot))
            break;
        if (sr->snapshot == SCENARIO_SNAPSHOT_RESTORE)
            continue; /* the machine went back: this request never happened; the old one comes again */
        if (sr->no_response) {
            run_log_add(r, RUN_LOG_CLIENT, seq, req.vcpu_id, NULL, "does not answer, as scripted");
        } else {
            apply_set_access(r, seq, sr);
            apply_altp2m(r, seq, sr);
            apply_inject(r, seq, sr, &req);
            struct run_answer a = {.ring = idx, .sr = sr, .seq = seq,
                                   .gfn = req.reason == VME_REASON_MEM_PAGING ? req.u.paging.gfn : 0};
            build_response(r, rr->version, sr, &req, &a.rsp);
            if (sr->defer)
                hold(r, &a, sr->defer);
            else
                send_answer(r, &a);
        }
        release_held(r, false);
    }
    if (!r->failed && ring_back_error(rr->back)[0]) {
        r->error = true;
        run_log_add(r, RUN_LOG_FAIL, 0, 0, NULL, "%s", ring_back_error(rr->back));
    }
    return acted;
}

bool run_client_step(struct run *r, bool domain_blocked)
{
    if (r->rec_client)
        return rec_client_step(r, domain_blocked);
    rec_turn(r);
    if (r->error)
        return false;
    bool acted = false;
    for (unsigned i = 0; i < RUN_RINGS; i++)
        if (r->rings[run_ring_order[i]].back)
            acted |= ring_step(r, run_ring_order[i]);
    if (domain_blocked && !acted && r->nr_held)
        acted = release_held(r, true);
    run_client_push(r);
    return acted;
}

/* The paging ring first, then the sharing ring, as the hypervisor polls them. */
const unsigned run_ring_order[RUN_RINGS] = {RUN_RING_PAGING, RUN_RING_SHARING, RUN_RING_MONITOR};

void run_client_push(struct run *r)
{
    for (unsigned i = 0; i < RUN_RINGS; i++) {
        struct run_ring *rr = &r->rings[run_ring_order[i]];
        if (rr->back && ring_back_push_responses(rr->back))
            evtchn_notify(rr->evtchn);
    }
}

void run_client_finish(struct run *r)
{
    if (r->failed || !r->s->has_client)
        return;
    for (size_t i = 0; i < r->nr_expect; i++) {
        if (r->expect[i].used)
            continue;
        char where[200];
        describe_expect(where, sizeof(where), r, &r->expect[i]);
        client_failed(r, 0, 0,
                    "%s:%" PRIu32 ":%" PRIu32 ": the expected event %s never arrived (%" PRIu64
                    " event(s) arrived in all)", r->s->file, r->expect[i].ev->line,
                    r->expect[i].ev->column, where, r->events);
        return;
    }
}
