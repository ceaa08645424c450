/*
 * sim/runner.c — `vmisim run FILE...`: builds the scenario's domain, runs it
 * with the scripted client on the real ring, checks the final state, and
 * reports.  Exit status: 0 every expectation held, 1 one failed, 2 a file
 * could not be used (it says where and why).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "assemble_internal.h"
#include "guest_build_internal.h"
#include "record_internal.h"
#include "runner_internal.h"
#include "vmisim.h"

#define RUN_MAX_EVENTS 100000 /* a guard: a scenario's client expects at most 10,000 */

/* cpu_regs field of a scenario register name. */
static uint64_t *cpu_reg_field(struct cpu_regs *r, enum scenario_reg reg)
{
    switch (reg) {
    case SCENARIO_REG_RAX: return &r->rax;
    case SCENARIO_REG_RBX: return &r->rbx;
    case SCENARIO_REG_RCX: return &r->rcx;
    case SCENARIO_REG_RDX: return &r->rdx;
    case SCENARIO_REG_RSI: return &r->rsi;
    case SCENARIO_REG_RDI: return &r->rdi;
    case SCENARIO_REG_RBP: return &r->rbp;
    case SCENARIO_REG_RSP: return &r->rsp;
    case SCENARIO_REG_R8: return &r->r8;
    case SCENARIO_REG_R9: return &r->r9;
    case SCENARIO_REG_R10: return &r->r10;
    case SCENARIO_REG_R11: return &r->r11;
    case SCENARIO_REG_R12: return &r->r12;
    case SCENARIO_REG_R13: return &r->r13;
    case SCENARIO_REG_R14: return &r->r14;
    case SCENARIO_REG_R15: return &r->r15;
    case SCENARIO_REG_RIP: return &r->rip;
    case SCENARIO_REG_RFLAGS: return &r->rflags;
    case SCENARIO_REG_CR0: return &r->cr0;
    case SCENARIO_REG_CR2: return &r->cr2;
    case SCENARIO_REG_CR3: return &r->cr3;
    case SCENARIO_REG_CR4: return &r->cr4;
    case SCENARIO_REG_DR7: return &r->dr7;
    case SCENARIO_REG_EFER: return &r->efer;
    case SCENARIO_REG_STAR: return &r->star;
    case SCENARIO_REG_LSTAR: return &r->lstar;
    case SCENARIO_REG_CSTAR: return &r->cstar;
    case SCENARIO_REG_SFMASK: return &r->sfmask;
    case SCENARIO_REG_SYSENTER_CS: return &r->sysenter_cs;
    case SCENARIO_REG_SYSENTER_ESP: return &r->sysenter_esp;
    case SCENARIO_REG_SYSENTER_EIP: return &r->sysenter_eip;
    case SCENARIO_REG_FS_BASE: return &r->fs_base;
    case SCENARIO_REG_GS_BASE: return &r->gs_base;
    case SCENARIO_REG_SHADOW_GS: return &r->shadow_gs;
    case SCENARIO_REG_XCR0: return &r->xcr0;
    default: return NULL;
    }
}

static void on_note(void *opaque, const struct sim_note *note)
{
    struct run *r = opaque;
    /* Requests and responses are logged from the client's side, as it sees them. */
    if (note->kind == SIM_NOTE_REQUEST)
        return;
    if (note->kind == SIM_NOTE_RESPONSE) {
        run_log_add(r, RUN_LOG_XEN, 0, note->vcpu, NULL, "took the response for vCPU %u%s", note->vcpu,
                    note->msg && (note->msg->flags & VME_FLAG_VCPU_PAUSED) ? ": unpaused" : ": still paused (no VCPU_PAUSED)");
        return;
    }
    if (note->kind == SIM_NOTE_HYPERCALL || note->kind == SIM_NOTE_CONSOLE) {
        run_log_add(r, note->kind == SIM_NOTE_HYPERCALL ? RUN_LOG_HYPERCALL : RUN_LOG_CONSOLE, 0,
                    note->vcpu, NULL, "%s", note->text);
        return;
    }
    run_log_add(r, RUN_LOG_XEN, 0, note->vcpu, NULL, "%s", note->text);
}

/* The introspector's notes: hypercalls, console lines and actions, marked as its own. */
static void on_in_note(void *opaque, const struct sim_note *note)
{
    struct run *r = opaque;
    enum run_log_kind kind = note->kind == SIM_NOTE_HYPERCALL ? RUN_LOG_HYPERCALL
                             : note->kind == SIM_NOTE_CONSOLE ? RUN_LOG_CONSOLE : RUN_LOG_XEN;
    if (note->kind == SIM_NOTE_REQUEST || note->kind == SIM_NOTE_RESPONSE)
        return; /* it has no ring */
    run_log_add(r, kind, 0, note->vcpu, NULL, "introspector: %s", note->text);
}

/* A set-up failure: the file cannot be run as written (exit 2). */
static int setup_error(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int setup_error(struct run *r, const char *fmt, ...)
{
    char text[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    r->error = true;
    r->end = RUN_END_ERROR;
    run_log_add(r, RUN_LOG_FAIL, 0, 0, NULL, "%s", text);
    return -EINVAL;
}

/* Assembles (or takes) guest `g`'s code and writes it at its entry gpa in domain `d`. */
static int load_code(struct run *r, const struct scenario_guest *g, struct sim_domain *d,
                     size_t *code_size)
{
    uint8_t *code = NULL;
    size_t len = 0;
    struct run_code *cache = g == &r->s->guest ? r->code_cache : NULL;
    if (g->code && cache && cache->bytes) {
        /* --explore runs one scenario many times: nasm once, not once per seed. */
        if (!(code = malloc(cache->len)))
            return setup_error(r, "out of memory");
        memcpy(code, cache->bytes, cache->len);
        len = cache->len;
    } else if (g->code) {
        char err[600];
        struct asm_source src = {
            .text = g->code, .len = g->code_len, .bits = g->mode == SCENARIO_MODE_LONG ? 64 : 32,
            .org = g->entry, .file = r->s->file, .first_line = g->code_first_line,
        };
        if (asm_nasm(&src, &code, &len, err, sizeof(err)) < 0)
            return setup_error(r, "%s", err);
        if (cache && (cache->bytes = malloc(len ? len : 1)) != NULL) {
            memcpy(cache->bytes, code, len);
            cache->len = len;
        }
    }
    const uint8_t *bytes = code ? code : g->code_bytes.data;
    size_t n = code ? len : g->code_bytes.len;
    int rc = n ? sim_mem_write(d, g->entry_gpa, bytes, n) : 0;
    free(code);
    if (rc < 0)
        return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": the code (%zu bytes at gpa %#" PRIx64
                           ") does not fit in guest memory (%#" PRIx64 " bytes)", r->s->file,
                           g->code_line, g->code_column, n, g->entry_gpa, g->memory);
    *code_size = n;
    return 0;
}

/*
 * Guest `g`'s page tables, GDT (and IDT) in domain `d`, and its vCPUs' boot
 * registers; `extra` (length 0: none) is one more range the tables must not
 * use (the introspector's token).
 */
static int build_guest(struct run *r, const struct scenario_guest *g, struct sim_domain *d,
                       struct guest_build *b, size_t code_size, struct guest_build_range extra)
{
    const struct scenario *s = r->s;
    const char *what = g == &s->guest ? "the guest" : "the introspector";
    size_t nr_avoid = g->nr_mappings + g->nr_data + 2;
    struct guest_build_range *avoid = calloc(nr_avoid, sizeof(*avoid));
    if (!avoid)
        return setup_error(r, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < g->nr_mappings; i++)
        avoid[k++] = (struct guest_build_range){g->mappings[i].gpa, g->mappings[i].size};
    for (size_t i = 0; i < g->nr_data; i++)
        avoid[k++] = (struct guest_build_range){g->data[i].gpa, g->data[i].bytes.len};
    avoid[k++] = (struct guest_build_range){g->entry_gpa, code_size};
    if (extra.size)
        avoid[k++] = extra;
    uint8_t *ram = sim_gpa(d, 0, g->memory);
    int rc = guest_build_init(b, ram, g->memory, d->mode, 0, g->memory, avoid, k);
    if (rc < 0) {
        free(avoid);
        return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": cannot build %s: %s", s->file,
                           g->line, g->column, what, b->error);
    }
    /* The GDT: in a table frame, mapped at the last page of the address space unless taken. */
    uint64_t gdt_gla = d->mode == CPU_MODE_LONG ? 0xfffffffffffff000ull : 0xfffff000ull;
    bool gdt_taken = false;
    for (size_t i = 0; rc == 0 && i < g->nr_mappings; i++) {
        const struct scenario_mapping *m = &g->mappings[i];
        unsigned rights = (m->rights & SCENARIO_RIGHT_W ? GUEST_BUILD_W : 0)
                          | (m->rights & SCENARIO_RIGHT_X ? GUEST_BUILD_X : 0)
                          | (m->rights & SCENARIO_RIGHT_U ? GUEST_BUILD_U : 0);
        gdt_taken |= gdt_gla >= m->gla && gdt_gla - m->gla < m->size;
        rc = guest_build_map(b, m->gla, m->gpa, m->size, m->page, rights);
        if (rc < 0) {
            free(avoid);
            return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": cannot map it: %s", s->file, m->line,
                               m->column, b->error);
        }
    }
    uint64_t gdt_gpa = guest_build_alloc(b);
    if (!gdt_gpa || (!gdt_taken && guest_build_map(b, gdt_gla, gdt_gpa, CPU_PAGE_SIZE, CPU_PAGE_SIZE, 0) < 0)) {
        free(avoid);
        return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": no room for the GDT and its page tables of %s: "
                           "leave some of its RAM outside the mappings and data", s->file, g->line,
                           g->column, what);
    }
    uint16_t gdt_limit = guest_build_gdt_user(b, gdt_gpa);
    /*
     * guest.idt_handler: an IDT of 32 interrupt gates (selector 0x08), all at the handler,
     * in the GDT's frame at offset 0x800 (the GDT uses its first bytes).
     */
    uint64_t idt_gla = 0;
    uint16_t idt_limit = 0;
    if (g->idt_handler.set) {
        if (gdt_taken) {
            free(avoid);
            return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": %s.idt_handler needs the last page "
                               "of the address space for the GDT and IDT, but a mapping covers it",
                               s->file, g->idt_handler.line, g->idt_handler.column,
                               g == &s->guest ? "guest" : "introspector");
        }
        bool lm = d->mode == CPU_MODE_LONG;
        unsigned gsz = lm ? 16 : 8;
        uint64_t h = g->idt_handler.value;
        for (unsigned vec = 0; vec < 32; vec++) {
            uint8_t gate[16] = {0};
            gate[0] = (uint8_t)h; gate[1] = (uint8_t)(h >> 8);
            gate[2] = 0x08; gate[3] = 0;
            gate[5] = 0x8e; /* present, DPL 0, interrupt gate */
            gate[6] = (uint8_t)(h >> 16); gate[7] = (uint8_t)(h >> 24);
            if (lm)
                for (unsigned k = 0; k < 4; k++)
                    gate[8 + k] = (uint8_t)(h >> (32 + 8 * k));
            sim_mem_write(d, gdt_gpa + 0x800 + vec * gsz, gate, gsz);
        }
        idt_gla = gdt_gla + 0x800;
        idt_limit = (uint16_t)(32 * gsz - 1);
    }
    free(avoid);
    b->avoid = NULL;
    b->nr_avoid = 0;
    /* Boot registers, then guest.registers over them, for every vCPU. */
    for (unsigned v = 0; v < g->vcpus; v++) {
        struct cpu_regs regs;
        sim_vcpu_get_regs(d, v, &regs);
        guest_build_boot_regs(b, &regs, g->entry, gdt_gla, gdt_limit);
        if (g->idt_handler.set) {
            regs.idtr_base = idt_gla;
            regs.idtr_limit = idt_limit;
        }
        for (size_t i = 0; i < g->registers.n; i++) {
            uint64_t *field = cpu_reg_field(&regs, g->registers.v[i].reg);
            if (field)
                *field = g->registers.v[i].value;
        }
        if (sim_vcpu_set_regs(d, v, &regs) < 0)
            return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": cannot set the registers of %s: %s",
                               s->file, g->line, g->column, what, sim_error(d));
    }
    return 0;
}

/* The scripted client attaches to a ring as a real client does: maps it, binds the port. */
static int attach(struct run *r, unsigned idx, struct ring_fds *fds, unsigned version)
{
    struct run_ring *rr = &r->rings[idx];
    int rc;
    rr->version = version;
    if ((rc = ring_back_attach(&rr->back, fds, vme_slot_size(version), 0)) < 0
        || (rc = evtchn_open(&rr->evtchn, fds, RING_ABI_PORT_CLIENT)) < 0)
        return setup_error(r, "cannot attach the scripted client to the %s ring: %s",
                           idx == RUN_RING_PAGING ? "paging" : idx == RUN_RING_SHARING ? "sharing" : "monitor",
                           strerror(-rc));
    return 0;
}

/*
 * The paging section: xc_mem_paging_enable, then the pager nominates and
 * evicts (keeping a copy of each page it evicts, as xenpaging writes it to its
 * file), then, with ring: false, xc_mem_paging_disable (the pager has gone).
 */
static int setup_paging(struct run *r)
{
    const struct scenario *s = r->s;
    const struct scenario_paging *p = &s->paging;
    struct ring_fds fds;
    if (sim_paging_enable(r->d, p->version, &fds) < 0)
        return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": cannot enable the paging ring: %s", s->file,
                           p->line, p->column, sim_error(r->d));
    if (p->nr_evict && !(r->saved = calloc(p->nr_evict, sizeof(*r->saved))))
        return setup_error(r, "out of memory");
    for (size_t i = 0; i < p->nr_nominate; i++) {
        if (sim_paging_nominate(r->d, p->nominate[i].gfn) < 0)
            return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": xc_mem_paging_nominate failed: %s",
                               s->file, p->nominate[i].line, p->nominate[i].column, sim_error(r->d));
        run_log_add(r, RUN_LOG_CLIENT, 0, 0, NULL, "xc_mem_paging_nominate: gfn %#" PRIx64 " -> ram_paging_out",
                    p->nominate[i].gfn);
    }
    for (size_t i = 0; i < p->nr_evict; i++) {
        struct run_saved_page *sp = &r->saved[r->nr_saved];
        sp->gfn = p->evict[i].gfn;
        if (sim_mem_read(r->d, sp->gfn * CPU_PAGE_SIZE, sp->data, sizeof(sp->data)) < 0
            || sim_paging_evict(r->d, sp->gfn) < 0)
            return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": xc_mem_paging_evict failed: %s",
                               s->file, p->evict[i].line, p->evict[i].column, sim_error(r->d));
        r->nr_saved++;
        run_log_add(r, RUN_LOG_CLIENT, 0, 0, NULL, "xc_mem_paging_evict: gfn %#" PRIx64
                    " -> ram_paged (the pager keeps its 4096 bytes; the frame is gone)", sp->gfn);
    }
    if (!p->ring) {
        if (sim_paging_disable(r->d) < 0)
            return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": cannot disable the paging ring: %s",
                               s->file, p->line, p->column, sim_error(r->d));
        run_log_add(r, RUN_LOG_CLIENT, 0, 0, NULL,
                    "xc_mem_paging_disable: the pager has gone (paging.ring: false)");
        return 0;
    }
    return attach(r, RUN_RING_PAGING, &fds, p->version);
}

/*
 * The sharing section: xc_memshr_control(1), the sharing ring, then for each
 * share xc_memshr_nominate_gfn of source and client and xc_memshr_share_gfns,
 * then xc_domain_setmaxmem.
 */
static int setup_sharing(struct run *r)
{
    const struct scenario *s = r->s;
    const struct scenario_sharing *sh = &s->sharing;
    struct ring_fds fds;
    if (sim_sharing_control(r->d, true) < 0)
        return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": xc_memshr_control failed: %s", s->file,
                           sh->line, sh->column, sim_error(r->d));
    run_log_add(r, RUN_LOG_CLIENT, 0, 0, NULL, "xc_memshr_control: sharing on");
    if (sh->ring) {
        if (sim_sharing_ring_enable(r->d, sh->version, &fds) < 0)
            return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": cannot enable the sharing ring: %s",
                               s->file, sh->line, sh->column, sim_error(r->d));
        int rc = attach(r, RUN_RING_SHARING, &fds, sh->version);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < sh->nr_share; i++) {
        const struct scenario_share *p = &sh->share[i];
        uint64_t hs = 0, hc = 0;
        if (sim_sharing_nominate(r->d, p->source, &hs) < 0 || sim_sharing_nominate(r->d, p->client, &hc) < 0)
            return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": xc_memshr_nominate_gfn failed: %s",
                               s->file, p->line, p->column, sim_error(r->d));
        run_log_add(r, RUN_LOG_CLIENT, 0, 0, NULL, "xc_memshr_nominate_gfn: gfn %#" PRIx64
                    " -> ram_shared, handle %" PRIu64 "; gfn %#" PRIx64 " -> ram_shared, handle %" PRIu64,
                    p->source, hs, p->client, hc);
        int rc = sim_sharing_share(r->d, p->source, hs, p->client, hc);
        if (rc != 0)
            return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": xc_memshr_share_gfns returned %d: %s",
                               s->file, p->line, p->column, rc, sim_error(r->d));
        run_log_add(r, RUN_LOG_CLIENT, 0, 0, NULL, "xc_memshr_share_gfns: gfn %#" PRIx64
                    " now shares the page of gfn %#" PRIx64 " (its own page is freed)", p->client, p->source);
    }
    if (sh->max_pages.set) {
        uint64_t pages = sh->max_pages_tot ? sim_tot_pages(r->d) : sh->max_pages.value;
        sim_set_max_pages(r->d, pages);
        run_log_add(r, RUN_LOG_CLIENT, 0, 0, NULL, "xc_domain_setmaxmem: max_pages %" PRIu64
                    " (tot_pages %" PRIu64 ")%s", pages, sim_tot_pages(r->d),
                    pages <= sim_tot_pages(r->d) ? ": the next unshare needs a page the domain may not have" : "");
    }
    return 0;
}

/* "gfn 0x21" or "none (INVALID_GFN)" for a change_gfn target. */
static const char *gfn_or_none(char *buf, size_t len, uint64_t gfn)
{
    if (gfn == SCENARIO_INVALID_GFN)
        snprintf(buf, len, "none (INVALID_GFN: the view's entry is removed)");
    else
        snprintf(buf, len, "gfn %#" PRIx64, gfn);
    return buf;
}

/*
 * The altp2m section: HVM_PARAM_ALTP2M, xc_altp2m_set_domain_state(1), each
 * view (create, change_gfn, set_mem_access per gfn, set_visibility), then the
 * start views (switch_to_view for every vCPU, then set_vcpu_p2m_idx per vCPU).
 */
static int setup_altp2m(struct run *r)
{
    static const char *const modes[] = {"disabled", "mixed", "external", "limited"};
    const struct scenario *s = r->s;
    const struct scenario_altp2m *a = &s->altp2m;
#define FAIL_AT(line, column, what)                                                            \
    setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": %s failed: %s", s->file, (line), (column), (what), \
                sim_error(r->d))
    if (sim_altp2m_set_mode(r->d, (enum sim_altp2m_mode)a->mode) < 0)
        return FAIL_AT(a->line, a->column, "HVM_PARAM_ALTP2M");
    if (sim_altp2m_set_domain_state(r->d, true) < 0)
        return FAIL_AT(a->line, a->column, "xc_altp2m_set_domain_state");
    run_log_add(r, RUN_LOG_CLIENT, 0, 0, NULL, "HVM_PARAM_ALTP2M = %s; xc_altp2m_set_domain_state(1): "
                "view 0 is the host p2m, every vCPU on it", modes[a->mode]);
    for (size_t i = 0; i < a->nr_views; i++) {
        const struct scenario_altp2m_view *v = &a->views[i];
        uint16_t idx = 0;
        if ((v->copy ? sim_altp2m_create_view_copy(r->d, &idx)
                     : sim_altp2m_create_view(r->d, v->default_access, &idx)) < 0)
            return FAIL_AT(v->line, v->column, "xc_altp2m_create_view");
        if (idx != i + 1)
            return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": xc_altp2m_create_view gave view %u, "
                               "expected view %zu", s->file, v->line, v->column, idx, i + 1);
        run_log_add(r, RUN_LOG_CLIENT, 0, 0, NULL, "xc_altp2m_create_view: view %u, %s%s", idx,
                    v->copy ? "a copy of the host p2m" : "default access ",
                    v->copy ? "" : scenario_access_name(v->default_access));
        for (size_t k = 0; k < v->nr_change_gfn; k++) {
            const struct scenario_change_gfn *cg = &v->change_gfn[k];
            char to[80];
            if (sim_altp2m_change_gfn(r->d, idx, cg->gfn, cg->to) < 0)
                return FAIL_AT(cg->line, cg->column, "xc_altp2m_change_gfn");
            run_log_add(r, RUN_LOG_CLIENT, 0, 0, NULL, "xc_altp2m_change_gfn: view %u gfn %#" PRIx64 " -> %s",
                        idx, cg->gfn, gfn_or_none(to, sizeof(to), cg->to));
        }
        for (size_t k = 0; k < v->nr_access; k++) {
            const struct scenario_access_range *ar = &v->access[k];
            for (uint64_t g = ar->gfn; g < ar->gfn + ar->count; g++)
                if (sim_altp2m_set_mem_access(r->d, idx, g, ar->access) < 0)
                    return FAIL_AT(ar->line, ar->column, "xc_altp2m_set_mem_access");
            if (ar->count == 1)
                run_log_add(r, RUN_LOG_CLIENT, 0, 0, NULL, "xc_altp2m_set_mem_access: view %u gfn %#" PRIx64
                            " -> %s", idx, ar->gfn, scenario_access_name(ar->access));
            else
                run_log_add(r, RUN_LOG_CLIENT, 0, 0, NULL, "xc_altp2m_set_mem_access: view %u gfns %#" PRIx64
                            "-%#" PRIx64 " -> %s", idx, ar->gfn, ar->gfn + ar->count - 1,
                            scenario_access_name(ar->access));
        }
        if (!v->visible) {
            if (sim_altp2m_set_visibility(r->d, idx, false) < 0)
                return FAIL_AT(v->line, v->column, "xc_altp2m_set_visibility");
            run_log_add(r, RUN_LOG_CLIENT, 0, 0, NULL, "xc_altp2m_set_visibility: view %u invisible", idx);
        }
    }
    if (a->view.set) {
        if (sim_altp2m_switch_to_view(r->d, (uint16_t)a->view.value) < 0)
            return FAIL_AT(a->view.line, a->view.column, "xc_altp2m_switch_to_view");
        run_log_add(r, RUN_LOG_CLIENT, 0, 0, NULL, "xc_altp2m_switch_to_view: every vCPU on view %" PRIu64,
                    a->view.value);
    }
    for (size_t i = 0; i < a->nr_vcpus; i++) {
        const struct scenario_vcpu_view *vv = &a->vcpus[i];
        if (sim_altp2m_set_vcpu_view(r->d, vv->vcpu, (uint16_t)vv->view) < 0)
            return FAIL_AT(vv->line, vv->column, "xc_altp2m_set_vcpu_p2m_idx");
        run_log_add(r, RUN_LOG_CLIENT, 0, vv->vcpu, NULL, "xc_altp2m_set_vcpu_p2m_idx: vCPU %" PRIu32
                    " on view %" PRIu32, vv->vcpu, vv->view);
    }
#undef FAIL_AT
    return 0;
}

/* The introspector: its own domain (KVM hypercalls), guest, and the map token at token_gpa. */
static int setup_introspector(struct run *r)
{
    const struct scenario *s = r->s;
    const struct scenario_introspector *in = &s->introspector;
    const struct scenario_guest *g = &in->guest;
    struct sim_config cfg = {
        .mode = g->mode == SCENARIO_MODE_LONG ? CPU_MODE_LONG : CPU_MODE_PAE32,
        .ram_size = g->memory, .nr_vcpus = g->vcpus, .hypercalls = SIM_HYPERCALL_KVM,
    };
    int rc = sim_domain_create(&r->in, &cfg);
    if (rc < 0)
        return setup_error(r, "cannot create the introspector's domain: %s", strerror(-rc));
    sim_set_observer(r->in, on_in_note, r);
    /* Its own schedule, from the same seed but not the same numbers as the main domain's. */
    sim_set_seed(r->in, r->seed ? r->seed ^ 0x5bd1e9955bd1e995ull : 0);
    rec_attach_domain(r, r->in, 1);
    sim_set_hypercall_trace(r->in, r->trace_hypercalls);
    if ((rc = load_code(r, g, r->in, &r->in_code_size)) < 0)
        return rc;
    for (size_t i = 0; i < g->nr_data; i++)
        if (sim_mem_write(r->in, g->data[i].gpa, g->data[i].bytes.data, g->data[i].bytes.len) < 0)
            return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": %s", s->file, g->data[i].line,
                               g->data[i].column, sim_error(r->in));
    struct guest_build_range token = {in->token_gpa.value, in->token_gpa.set ? sizeof(struct sim_map_token) : 0};
    if ((rc = build_guest(r, g, r->in, &r->in_build, r->in_code_size, token)) < 0)
        return rc;
    struct sim_map_token tk;
    if (sim_kvmi_get_map_token(r->d, r->in, &tk) < 0)
        return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": KVMI_GET_MAP_TOKEN failed: %s", s->file,
                           in->line, in->column, sim_error(r->d));
    if (!in->token_gpa.set) {
        run_log_add(r, RUN_LOG_CLIENT, 0, 0, NULL,
                    "KVMI_GET_MAP_TOKEN: a token for the introspector (not written: no token_gpa)");
        return 0;
    }
    if (sim_mem_write(r->in, in->token_gpa.value, &tk, sizeof(tk)) < 0)
        return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": cannot write the map token: %s", s->file,
                           in->token_gpa.line, in->token_gpa.column, sim_error(r->in));
    run_log_add(r, RUN_LOG_CLIENT, 0, 0, NULL, "KVMI_GET_MAP_TOKEN: token %016" PRIx64 " %016" PRIx64
                " %016" PRIx64 " %016" PRIx64 " written at introspector gpa %#" PRIx64, tk.token[0],
                tk.token[1], tk.token[2], tk.token[3], in->token_gpa.value);
    return 0;
}

static int setup(struct run *r)
{
    const struct scenario *s = r->s;
    const struct scenario_guest *g = &s->guest;
    struct sim_config cfg = {
        .mode = g->mode == SCENARIO_MODE_LONG ? CPU_MODE_LONG : CPU_MODE_PAE32,
        .ram_size = g->memory, .nr_vcpus = g->vcpus, .nr_online = g->online,
        .hypercalls = g->hypercalls == SCENARIO_HYPERCALLS_KVM   ? SIM_HYPERCALL_KVM
                      : g->hypercalls == SCENARIO_HYPERCALLS_XEN ? SIM_HYPERCALL_XEN
                                                                 : SIM_HYPERCALL_NONE,
    };
    int rc = sim_domain_create(&r->d, &cfg);
    if (rc < 0)
        return setup_error(r, "cannot create the domain: %s", strerror(-rc));
    sim_set_observer(r->d, on_note, r);
    sim_set_seed(r->d, r->seed);
    rec_attach_domain(r, r->d, 0);
    sim_set_hypercall_trace(r->d, r->trace_hypercalls);
    if ((rc = load_code(r, g, r->d, &r->code_size)) < 0)
        return rc;
    for (size_t i = 0; i < g->nr_data; i++)
        if (sim_mem_write(r->d, g->data[i].gpa, g->data[i].bytes.data, g->data[i].bytes.len) < 0)
            return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": %s", s->file, g->data[i].line,
                               g->data[i].column, sim_error(r->d));
    if ((rc = build_guest(r, g, r->d, &r->build, r->code_size, (struct guest_build_range){0, 0})) < 0)
        return rc;
    /* p2m.default_access applies to every gfn, as xen-access sets it (default, then the range). */
    uint64_t nr_gfns = g->memory / CPU_PAGE_SIZE;
    if (s->p2m.default_access != SCENARIO_ACCESS_RWX
        && (sim_p2m_set_access(r->d, s->p2m.default_access, ~0ull, 0) < 0
            || sim_p2m_set_access(r->d, SCENARIO_ACCESS_DEFAULT, 0, nr_gfns) < 0))
        return setup_error(r, "%s: p2m.default_access: %s", s->file, sim_error(r->d));
    for (size_t i = 0; i < s->p2m.nr_access; i++) {
        const struct scenario_access_range *a = &s->p2m.access[i];
        if (sim_p2m_set_access(r->d, a->access, a->gfn, a->count) < 0)
            return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": %s", s->file, a->line, a->column, sim_error(r->d));
    }
    sim_set_access_required(r->d, s->monitor.access_required);
    if (s->monitor.ring) {
        struct ring_fds fds;
        if ((rc = sim_monitor_enable(r->d, s->monitor.version, &fds)) < 0)
            return setup_error(r, "%s: cannot enable the monitor ring: %s", s->file, sim_error(r->d));
        if ((rc = attach(r, RUN_RING_MONITOR, &fds, s->monitor.version)) < 0)
            return rc;
    }
    /* The monitor controls (they need no ring), then single-step. */
    const struct scenario_monitor *m = &s->monitor;
    for (size_t i = 0; i < m->nr_write_ctrlreg; i++) {
        const struct scenario_ctrlreg *cr = &m->write_ctrlreg[i];
        if (sim_monitor_write_ctrlreg(r->d, cr->index, true, cr->sync, cr->mask, cr->onchangeonly) < 0)
            return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": %s", s->file, cr->line, cr->column,
                               sim_error(r->d));
    }
    for (size_t i = 0; i < m->nr_mov_to_msr; i++) {
        const struct scenario_msr *ms = &m->mov_to_msr[i];
        if (sim_monitor_mov_to_msr(r->d, ms->msr, true, ms->onchangeonly) < 0)
            return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": %s", s->file, ms->line, ms->column,
                               sim_error(r->d));
    }
    if ((m->software_breakpoint && sim_monitor_software_breakpoint(r->d, true) < 0)
        || (m->singlestep && sim_monitor_singlestep(r->d, true) < 0)
        || (m->control_register_deferral && sim_monitor_control_registers(r->d) < 0))
        return setup_error(r, "%s: monitor: %s", s->file, sim_error(r->d));
    if (m->guest_request
        && sim_monitor_guest_request(r->d, true, m->guest_request_sync, m->guest_request_userspace) < 0)
        return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": %s", s->file, m->guest_request_line,
                           m->guest_request_column, sim_error(r->d));
    for (size_t i = 0; i < g->nr_singlestep; i++)
        if (sim_debug_control_singlestep(r->d, g->singlestep[i], true) < 0)
            return setup_error(r, "%s: guest.singlestep: %s", s->file, sim_error(r->d));
    /* The hypervisor's own script (sim/inject.c): its instructions count from the guest's start. */
    const struct scenario_hypervisor *h = &s->hypervisor;
    if (h->nr_steps && inject_set(r->d, h->steps, h->nr_steps) < 0)
        return setup_error(r, "%s:%" PRIu32 ":%" PRIu32 ": hypervisor: %s", s->file, h->line, h->column,
                           sim_error(r->d));
    /* The expectations, repeats expanded. */
    r->expect = calloc(s->client.nr_expected ? s->client.nr_expected : 1, sizeof(*r->expect));
    if (!r->expect)
        return setup_error(r, "out of memory");
    for (size_t i = 0; i < s->client.nr_events; i++)
        for (uint32_t rep = 0; rep < s->client.events[i].repeat; rep++)
            r->expect[r->nr_expect++] = (struct run_expect){.ev = &s->client.events[i], .rep = rep};
    return 0;
}

/* Which vCPUs wait for what, for a "blocked" ending. */
static void blocked_why(struct run *r)
{
    size_t off = 0;
    r->end_why[0] = 0;
    for (unsigned v = 0; v < r->d->nr_vcpus && off < sizeof(r->end_why); v++) {
        const struct sim_vcpu *vc = &r->d->vcpus[v];
        const char *what = vc->waiting_slot ? "a free ring slot"
                           : vc->pause_count ? "a response with VCPU_PAUSED"
                           : vc->ring_blocked ? "free ring slots"
                           : vc->paging_wait ? "a page on its way in" : NULL;
        if (what) {
            int n = snprintf(r->end_why + off, sizeof(r->end_why) - off, "%svCPU %u waits for %s",
                             off ? "; " : "", v, what);
            if (n > 0)
                off += (size_t)n;
        }
    }
}

/*
 * One sim_run of the main domain, of at most `budget` instructions (within
 * limits.instructions), and the client's turn after it.  True when the run
 * of the main domain is over (r->end says how).
 */
static bool main_step(struct run *r, uint64_t budget)
{
    uint64_t limit = r->s->instruction_limit;
    if (r->insns >= limit) {
        r->end = RUN_END_LIMIT;
        return true;
    }
    if (budget > limit - r->insns)
        budget = limit - r->insns;
    struct sim_stop stop;
    sim_run(r->d, budget, &stop);
    r->insns += stop.insns;
    bool blocked = stop.reason == SIM_STOP_BLOCKED;
    if (stop.reason == SIM_STOP_EVENT || blocked) {
        bool acted = run_client_step(r, blocked);
        if (r->events > RUN_MAX_EVENTS) {
            setup_error(r, "more than %d events: the scenario does not converge", RUN_MAX_EVENTS);
            return true;
        }
        if (!blocked || acted)
            return false;
        r->end = RUN_END_BLOCKED;
        blocked_why(r);
        return true;
    }
    if (stop.reason == SIM_STOP_LIMIT && r->insns < limit)
        return false; /* its slice is used: the introspector's turn */
    snprintf(r->end_why, sizeof(r->end_why), "%s", stop.why);
    switch (stop.reason) {
    case SIM_STOP_LIMIT: r->end = RUN_END_LIMIT; break;
    case SIM_STOP_HALTED: r->end = RUN_END_HALTED; break;
    case SIM_STOP_CRASHED: r->end = RUN_END_CRASHED; break;
    case SIM_STOP_FAULT: r->end = RUN_END_FAULT; break;
    case SIM_STOP_SHUTDOWN: r->end = RUN_END_SHUTDOWN; break;
    default:
        r->end = RUN_END_ERROR;
        r->error = true;
        break;
    }
    /* Requests posted just before the end still reach the client. */
    run_client_step(r, false);
    return true;
}

/* One sim_run of the introspector (it has no ring and no client); true when its run is over. */
static bool in_step(struct run *r, uint64_t budget)
{
    uint64_t limit = r->s->instruction_limit;
    if (r->in_insns >= limit) {
        r->in_end = RUN_END_LIMIT;
        return true;
    }
    if (budget > limit - r->in_insns)
        budget = limit - r->in_insns;
    struct sim_stop stop;
    sim_run(r->in, budget, &stop);
    r->in_insns += stop.insns;
    switch (stop.reason) {
    case SIM_STOP_LIMIT:
        if (r->in_insns < limit)
            return false;
        r->in_end = RUN_END_LIMIT;
        break;
    case SIM_STOP_EVENT: return false; /* cannot happen without a ring; run on */
    case SIM_STOP_BLOCKED: r->in_end = RUN_END_BLOCKED; break;
    case SIM_STOP_HALTED: r->in_end = RUN_END_HALTED; break;
    case SIM_STOP_CRASHED: r->in_end = RUN_END_CRASHED; break;
    case SIM_STOP_FAULT: r->in_end = RUN_END_FAULT; break;
    case SIM_STOP_SHUTDOWN: r->in_end = RUN_END_SHUTDOWN; break;
    default:
        r->in_end = RUN_END_ERROR;
        setup_error(r, "the introspector's domain stopped with an error: %s", stop.why);
        break;
    }
    snprintf(r->in_end_why, sizeof(r->in_end_why), "%s", stop.why);
    return true;
}

/*
 * Without an introspector the main domain runs on its whole budget; with one,
 * the two take turns of RUN_SLICE instructions each, main first, until both
 * are over (deterministic: the same turns in every run).
 */
#define RUN_SLICE 10000
static void run_loop(struct run *r)
{
    bool main_done = false, in_done = !r->in;
    while (!r->failed && !r->error && !(main_done && in_done)) {
        if (!main_done)
            main_done = main_step(r, r->in ? RUN_SLICE : UINT64_MAX);
        if (!in_done && !r->failed && !r->error)
            in_done = in_step(r, RUN_SLICE);
    }
}

static const enum run_end end_of[] = {
    [SCENARIO_END_HALTED] = RUN_END_HALTED, [SCENARIO_END_LIMIT] = RUN_END_LIMIT,
    [SCENARIO_END_CRASHED] = RUN_END_CRASHED, [SCENARIO_END_FAULT] = RUN_END_FAULT,
    [SCENARIO_END_BLOCKED] = RUN_END_BLOCKED, [SCENARIO_END_SHUTDOWN] = RUN_END_SHUTDOWN,
};

static void check(struct run *r, bool ok, uint32_t line, uint32_t column, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void check(struct run *r, bool ok, uint32_t line, uint32_t column, const char *fmt, ...)
{
    char text[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (ok) {
        r->checks++;
        run_log_add(r, RUN_LOG_CHECK, 0, 0, NULL, "%s: ok", text);
    } else if (!r->failed) {
        r->failed = true;
        run_log_add(r, RUN_LOG_FAIL, 0, 0, NULL, "%s:%" PRIu32 ":%" PRIu32 ": %s", r->s->file, line, column, text);
    }
}

/*
 * The assertions of `f` about one domain: the main one (`who` "") or the
 * introspector (`who` "introspector: ").
 */
static void check_domain(struct run *r, const struct scenario_final *f, struct sim_domain *d,
                         enum run_end end, const char *end_why, const char *who)
{
    if (f->guest != SCENARIO_END_ANY) {
        enum run_end want = end_of[f->guest];
        check(r, end == want, f->guest_line, f->guest_column, "%sthe guest ended %s%s%s (expected %s)",
              who, run_end_name(end), end_why[0] ? ": " : "", end_why, run_end_name(want));
    }
    if (f->shutdown_reason.set) {
        int got = sim_domain_shutdown_reason(d);
        if (got < 0)
            check(r, false, f->shutdown_reason.line, f->shutdown_reason.column,
                  "%sthe domain did not shut down (expected shutdown reason %" PRIu64 ")", who,
                  f->shutdown_reason.value);
        else
            check(r, (uint64_t)got == f->shutdown_reason.value, f->shutdown_reason.line,
                  f->shutdown_reason.column, "%sshutdown reason %d (expected %" PRIu64 ")", who, got,
                  f->shutdown_reason.value);
    }
    for (size_t i = 0; i < f->nr_vcpus; i++) {
        struct cpu_regs regs;
        sim_vcpu_get_regs(d, f->vcpus[i].vcpu, &regs);
        for (size_t k = 0; k < f->vcpus[i].registers.n; k++) {
            const struct scenario_reg_value *rv = &f->vcpus[i].registers.v[k];
            uint64_t *field = cpu_reg_field(&regs, rv->reg);
            uint64_t got = field ? *field : 0;
            check(r, got == rv->value, rv->line, rv->column, "%svCPU %" PRIu32 " %s is %#" PRIx64
                  " (expected %#" PRIx64 ")", who, f->vcpus[i].vcpu, scenario_reg_name(rv->reg), got,
                  rv->value);
        }
        const struct scenario_opt *vw = &f->vcpus[i].view;
        if (vw->set) {
            uint16_t view = 0;
            if (sim_altp2m_get_vcpu_view(d, f->vcpus[i].vcpu, &view) < 0)
                check(r, false, vw->line, vw->column, "%svCPU %" PRIu32 " has no altp2m view: %s (expected view %"
                      PRIu64 ")", who, f->vcpus[i].vcpu, sim_error(d), vw->value);
            else
                check(r, view == vw->value, vw->line, vw->column, "%svCPU %" PRIu32 " is on altp2m view %u"
                      " (expected view %" PRIu64 ")", who, f->vcpus[i].vcpu, view, vw->value);
        }
    }
    for (size_t i = 0; i < f->nr_memory; i++) {
        const struct scenario_data *m = &f->memory[i];
        uint8_t *buf = malloc(m->bytes.len ? m->bytes.len : 1);
        const uint8_t *p = buf && sim_mem_peek(d, m->gpa, buf, m->bytes.len) == 0 ? buf : NULL;
        size_t diff = 0;
        while (p && diff < m->bytes.len && p[diff] == m->bytes.data[diff])
            diff++;
        if (p && diff == m->bytes.len)
            check(r, true, m->line, m->column, "%smemory at gpa %#" PRIx64 " holds the %zu expected byte(s)",
                  who, m->gpa, m->bytes.len);
        else if (!p)
            check(r, false, m->line, m->column, "%smemory at gpa %#" PRIx64 "+%zu cannot be read: %s",
                  who, m->gpa, m->bytes.len, buf ? sim_error(d) : "out of memory");
        else
            check(r, false, m->line, m->column, "%smemory at gpa %#" PRIx64 ": byte %zu is 0x%02x, expected 0x%02x",
                  who, m->gpa, diff, p[diff], m->bytes.data[diff]);
        free(buf);
    }
    for (size_t i = 0; i < f->nr_paging; i++) {
        const struct scenario_final_paging *fp = &f->paging[i];
        unsigned t = 0;
        if (sim_p2m_type(d, fp->gfn, &t) < 0) {
            check(r, false, fp->line, fp->column, "%sgfn %#" PRIx64 ": %s", who, fp->gfn, sim_error(d));
            continue;
        }
        const char *got = scenario_p2mt_name(t), *want = scenario_p2mt_name(fp->p2mt);
        check(r, t == fp->p2mt, fp->line, fp->column, "%sgfn %#" PRIx64 " is %s (%u) (expected %s (%" PRIu32 "))",
              who, fp->gfn, got ? got : "?", t, want ? want : "?", fp->p2mt);
    }
    if (f->tot_pages.set)
        check(r, sim_tot_pages(d) == f->tot_pages.value, f->tot_pages.line, f->tot_pages.column,
              "%stot_pages is %" PRIu64 " (expected %" PRIu64 ")", who, sim_tot_pages(d), f->tot_pages.value);
    if (f->max_pages.set)
        check(r, sim_max_pages(d) == f->max_pages.value, f->max_pages.line, f->max_pages.column,
              "%smax_pages is %" PRIu64 " (expected %" PRIu64 ")", who, sim_max_pages(d), f->max_pages.value);
    if (f->mapped.set)
        check(r, sim_kvmi_nr_mapped(d) == f->mapped.value, f->mapped.line, f->mapped.column,
              "%s%" PRIu64 " gfn(s) map a page of the main domain (expected %" PRIu64 ")", who,
              sim_kvmi_nr_mapped(d), f->mapped.value);
}

static void final_checks(struct run *r)
{
    const struct scenario_final *f = &r->s->final;
    check_domain(r, f, r->d, r->end, r->end_why, "");
    if (f->events.set)
        check(r, r->events == f->events.value, f->events.line, f->events.column,
              "%" PRIu64 " event(s) in all (expected %" PRIu64 ")", r->events, f->events.value);
    for (size_t i = 0; i < f->nr_event_counts; i++) {
        const struct scenario_event_count *c = &f->event_counts[i];
        uint64_t got = (unsigned)c->reason < VME_REASON_COUNT ? r->counts[c->reason] : 0;
        check(r, got == c->count, c->line, c->column, "%" PRIu64 " %s event(s) (expected %" PRIu64 ")", got,
              scenario_reason_name(c->reason), c->count);
    }
    if (f->introspector && r->in)
        check_domain(r, f->introspector, r->in, r->in_end, r->in_end_why, "introspector: ");
}

/* The domains and rings go as soon as the run is checked: only the log is kept for the reports. */
static void run_release(struct run *r)
{
    for (unsigned i = 0; i < RUN_RINGS; i++) {
        ring_back_detach(r->rings[i].back);
        evtchn_close(r->rings[i].evtchn);
        r->rings[i].back = NULL;
        r->rings[i].evtchn = NULL;
    }
    sim_snapshot_free(r->snap);
    r->snap = NULL;
    free(r->saved);
    r->saved = NULL;
    r->nr_saved = 0;
    sim_domain_destroy(r->in);
    r->in = NULL;
    sim_domain_destroy(r->d);
    r->d = NULL;
}

static void run_free(struct run *r)
{
    if (!r)
        return;
    run_release(r);
    free(r->expect);
    free(r->held);
    run_log_free(r);
    if (!r->borrowed)
        scenario_free((struct scenario *)r->s);
    free(r);
}

/* Prints `text` in lines of at most `width` columns, each starting with `indent`. */
static void print_wrapped(FILE *out, const char *text, const char *indent, size_t width)
{
    size_t col = 0, room = width - strlen(indent);
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == '\n')
            p++;
        size_t w = strcspn(p, " \n");
        if (!w)
            break;
        if (col && col + 1 + w > room) {
            fputc('\n', out);
            col = 0;
        }
        fprintf(out, "%s%.*s", col ? " " : indent, (int)w, p);
        col += (col ? 1 : 0) + w;
        p += w;
    }
    if (col)
        fputc('\n', out);
}

/* How one scenario is run: where its log goes, its seed, a recording written or replayed. */
struct run_opts {
    FILE *out;             /* the readable log, NULL: quiet */
    bool trace_hypercalls;
    uint64_t seed;
    struct rec *rec;
    bool rec_client;       /* replay --as-client */
    bool borrowed;         /* the caller keeps the scenario (explore) */
    struct run_code *code_cache; /* the guest's assembled code, kept across runs (explore) */
};

/* Runs one loaded scenario; the run keeps the scenario unless it is borrowed. */
static struct run *run_one(struct scenario *s, const struct run_opts *o)
{
    FILE *out = o->out;
    struct run *r = calloc(1, sizeof(*r));
    if (!r) {
        if (!o->borrowed)
            scenario_free(s);
        return NULL;
    }
    r->s = s;
    r->out = out;
    r->trace_hypercalls = o->trace_hypercalls;
    r->seed = o->seed;
    r->rec = o->rec;
    r->rec_client = o->rec_client;
    r->borrowed = o->borrowed;
    r->code_cache = o->code_cache;
    if (out) {
        fprintf(out, "== %s (%s)\n", s->name, s->file);
        if (s->description)
            print_wrapped(out, s->description, "   ", 96);
        /* Only when asked for: the log of seed 0 stays what it always was. */
        if (r->seed)
            fprintf(out, "   schedule: seed %" PRIu64 " (any runnable vCPU next, quanta of 1 to 2 x 10,000 "
                    "instructions)\n", r->seed);
        if (r->rec_client)
            fprintf(out, "   replay --as-client: the recording plays the client; the scenario's client is not used\n");
    }
    bool ready = setup(r) == 0;
    if (ready) {
        char paging[80] = "", sharing[80] = "";
        if (s->paging.given && s->paging.ring)
            snprintf(paging, sizeof(paging), "; a paging ring, interface version %" PRIu32, s->paging.version);
        if (s->sharing.given && s->sharing.ring)
            snprintf(sharing, sizeof(sharing), "; a sharing ring, interface version %" PRIu32, s->sharing.version);
        char steps[80] = "";
        if (s->hypervisor.nr_steps)
            snprintf(steps, sizeof(steps), "; %zu hypervisor step(s)", s->hypervisor.nr_steps);
        if (out)
            fprintf(out, "   %s mode, %" PRIu32 " vCPU(s), %" PRIu64 " KiB of RAM; %s%s%s; %zu expected event(s)%s\n",
                    s->guest.mode == SCENARIO_MODE_LONG ? "64-bit long" : "32-bit PAE", s->guest.vcpus,
                    s->guest.memory >> 10,
                    s->monitor.ring ? (s->monitor.version == 1 ? "a vm_event ring, interface version 1"
                                                               : "a vm_event ring, interface version 7")
                                    : "no vm_event ring",
                    paging, sharing, r->nr_expect, steps);
        const struct scenario_guest *ig = &s->introspector.guest;
        if (out && s->introspector.given)
            fprintf(out, "   introspector: %s mode, %" PRIu32 " vCPU(s), %" PRIu64 " KiB of RAM, KVM hypercalls; "
                    "the two domains take turns of %d instructions\n",
                    ig->mode == SCENARIO_MODE_LONG ? "64-bit long" : "32-bit PAE", ig->vcpus, ig->memory >> 10,
                    RUN_SLICE);
        /* The pager's and the sharing tool's work come after the header, so their lines read in order. */
        ready = (!s->paging.given || setup_paging(r) == 0) && (!s->sharing.given || setup_sharing(r) == 0)
                && (!s->altp2m.given || setup_altp2m(r) == 0)
                && (!s->introspector.given || setup_introspector(r) == 0);
    }
    if (ready) {
        run_loop(r);
        static const char *const ended[] = {
            [RUN_END_HALTED] = "the guest halted", [RUN_END_LIMIT] = "the guest used its instruction budget",
            [RUN_END_CRASHED] = "the domain was crashed",
            [RUN_END_FAULT] = "the guest took an exception it cannot handle",
            [RUN_END_BLOCKED] = "the guest is blocked", [RUN_END_ERROR] = "vmisim stopped",
            [RUN_END_SHUTDOWN] = "the guest shut the domain down",
        };
        if (r->end == RUN_END_NONE)
            run_log_add(r, RUN_LOG_END, 0, 0, NULL, "the run stops at the first failed expectation, "
                        "after %" PRIu64 " instruction(s)", r->insns);
        else
            run_log_add(r, RUN_LOG_END, 0, 0, NULL, "%s after %" PRIu64 " instruction(s)%s%s",
                        ended[r->end], r->insns, r->end_why[0] ? ": " : "", r->end_why);
        if (r->in && r->in_end != RUN_END_NONE)
            run_log_add(r, RUN_LOG_END, 0, 0, NULL, "introspector: %s after %" PRIu64 " instruction(s)%s%s",
                        ended[r->in_end], r->in_insns, r->in_end_why[0] ? ": " : "", r->in_end_why);
        if (!r->failed && !r->error && r->rec_client) {
            /* Without the scripted client the scenario's own assertions judge the run first. */
            final_checks(r);
            rec_client_finish(r);
        } else if (!r->failed && !r->error) {
            rec_client_end(r);
            run_client_finish(r);
            final_checks(r);
        }
    }
    rec_verdict(r);
    run_release(r);
    if (out)
        fprintf(out, "%s %s: %" PRIu64 " event(s), %" PRIu64 " check(s)\n\n",
                r->error ? "ERROR" : r->failed ? "FAIL" : "PASS", s->name, r->events, r->checks);
    return r;
}

/*
 * `--ring-version V`: does the scenario hold on a ring of another interface
 * version?  Not when its expectations or answers encode one version's layout:
 * fields the other version does not carry (v1 has no insn_length/type for
 * breakpoints, no old_value for MSRs), reasons v1 does not have, an explicit
 * response version, EMUL_READ data beyond v1's 252 bytes.  NULL when it is
 * portable, else why not (for the SKIP line).
 */
static const char *version_bound(const struct scenario *s)
{
    for (size_t i = 0; i < s->hypervisor.nr_steps; i++) {
        const struct inject_step *st = &s->hypervisor.steps[i];
        if (st->kind == INJECT_EVENT && st->reason >= VME_REASON_DEBUG_EXCEPTION)
            return "its hypervisor section raises a reason only interface version 7 has";
    }
    for (size_t i = 0; i < s->client.nr_events; i++) {
        const struct scenario_event *ev = &s->client.events[i];
        uint64_t reason = ~0ull;
        for (size_t k = 0; k < ev->nr_match; k++)
            if (ev->match[k].field == SCENARIO_MATCH_REASON)
                reason = ev->match[k].value;
        if (reason != ~0ull && reason >= VME_REASON_DEBUG_EXCEPTION)
            return "it expects a reason only interface version 7 has";
        for (size_t k = 0; k < ev->nr_match; k++) {
            enum scenario_match_field f = ev->match[k].field;
            if (f == SCENARIO_MATCH_INSN_LENGTH || f == SCENARIO_MATCH_TYPE)
                return "it matches insn_length/type, which only interface version 7 carries";
            if (f == SCENARIO_MATCH_OLD_VALUE && reason == VME_REASON_MOV_TO_MSR)
                return "it matches an MSR's old_value, which only interface version 7 carries";
        }
        if (ev->response.version.set)
            return "its client writes the response's version field itself";
        if (ev->response.emul_read_data.len > 252)
            return "its EMUL_READ data is beyond interface version 1's 252 bytes";
    }
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vmisim run [--json FILE] [--junit FILE] [--quiet] [--trace-hypercalls]\n"
               "                  [--seed S] [--record FILE] SCENARIO.yaml...\n"
               "       vmisim run --explore N [--seed S] SCENARIO.yaml...\n"
               "  Runs each scenario and checks it: exit 0 when every expectation held,\n"
               "  1 when one failed, 2 when a file could not be used.\n"
               "  --trace-hypercalls: log every hypercall with its decoded arguments and result.\n"
               "  --seed S: schedule the vCPUs from seed S (0, the default: round robin in fixed quanta).\n"
               "  --record FILE: write the run (one scenario) for `vmisim replay FILE`.\n"
               "  --explore N: run each scenario with N seeds (1..N, or S..S+N-1 with --seed) and\n"
               "    report the distinct event sequences, their verdicts and the failing seeds.\n"
               "  --ring-version V: run every ring at vm_event interface version V (1 or 7) instead\n"
               "    of the scenario's; a scenario that encodes one version's layout is skipped.\n");
}

/* A seed or a count from the command line: a whole number, all of it. */
static bool arg_u64(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (*s == '-' || *s == 0 || *end || errno || v > max) {
        fprintf(stderr, "vmisim run: %s '%s' is not a number from 0 to %" PRIu64 "\n", opt, s, max);
        return false;
    }
    *out = v;
    return true;
}

/* ---- --explore: many seeds, the distinct event sequences ----------------------------- */

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
    /* Byte by byte, low byte first: the same fingerprint on every machine. */
    for (unsigned i = 0; i < 8; i++) {
        h ^= (v >> (8 * i)) & 0xff;
        h *= 0x100000001b3ull;
    }
    return h;
}

/*
 * The run's event sequence as one number: FNV-1a over each request the client
 * took, in order (vCPU, reason, flags, view, gfn, the reason's payload, rip).
 */
static uint64_t run_fingerprint(const struct run *r)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < r->nr_log; i++) {
        const struct run_log *e = &r->log[i];
        if (e->kind != RUN_LOG_REQUEST || !e->has_msg)
            continue;
        const struct vme_msg *m = &e->msg;
        uint64_t f[] = {m->vcpu_id, m->reason, m->flags, m->altp2m_idx, run_msg_gfn(m), 0, 0, 0, m->regs.rip};
        switch (m->reason) {
        case VME_REASON_MEM_ACCESS:
            f[5] = m->u.mem_access.offset, f[6] = m->u.mem_access.flags, f[7] = m->u.mem_access.gla;
            break;
        case VME_REASON_WRITE_CTRLREG:
            f[5] = m->u.write_ctrlreg.index, f[6] = m->u.write_ctrlreg.old_value, f[7] = m->u.write_ctrlreg.new_value;
            break;
        case VME_REASON_MOV_TO_MSR:
            f[5] = m->u.mov_to_msr.msr, f[6] = m->u.mov_to_msr.old_value, f[7] = m->u.mov_to_msr.new_value;
            break;
        case VME_REASON_MEM_PAGING:
            f[5] = m->u.paging.p2mt, f[6] = m->u.paging.flags;
            break;
        default:
            break;
        }
        for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++)
            h = fnv_u64(h, f[k]);
    }
    return h;
}

/* "MEM_ACCESS vCPU 0 gfn 0x20, SINGLESTEP vCPU 0, ..." (the first dozen). */
static void run_sequence(const struct run *r, char *buf, size_t len)
{
    size_t off = 0, n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < r->nr_log && off < len; i++) {
        const struct run_log *e = &r->log[i];
        if (e->kind != RUN_LOG_REQUEST || !e->has_msg)
            continue;
        int w;
        if (++n > 12) {
            w = snprintf(buf + off, len - off, ", ... (%" PRIu64 " in all)", r->events);
            break;
        }
        const char *reason = vme_reason_name(e->msg.reason);
        if (reason)
            w = snprintf(buf + off, len - off, "%s%s vCPU %" PRIu32, n > 1 ? ", " : "", reason, e->msg.vcpu_id);
        else
            w = snprintf(buf + off, len - off, "%sreason %" PRIu32 " vCPU %" PRIu32, n > 1 ? ", " : "",
                         e->msg.reason, e->msg.vcpu_id);
        off += w > 0 ? (size_t)w : 0;
        uint64_t gfn = run_msg_gfn(&e->msg);
        if (gfn && off < len) {
            w = snprintf(buf + off, len - off, " gfn %#" PRIx64, gfn);
            off += w > 0 ? (size_t)w : 0;
        }
    }
    if (n == 0)
        snprintf(buf, len, "no events");
}

#define EXPLORE_SHOWN 10
struct explore_group {
    uint64_t fp;
    unsigned verdict;          /* 0 pass, 1 fail, 2 error */
    uint64_t nseeds, events;
    uint64_t seeds[EXPLORE_SHOWN];
    char sequence[600];
    char failure[600];         /* the first seed's first failure */
};

static const char *const verdict_word[] = {"PASS", "FAIL", "ERROR"};

/*
 * Runs `file` with seeds first..first+n-1, quietly, and reports each distinct
 * (event sequence, verdict) with how many seeds gave it.  Exit status: 0 all
 * passed, 1 a seed failed, 2 the file cannot be used or a seed gave an error.
 */
static int explore(const char *file, uint64_t first, uint64_t n)
{
    struct scenario *s;
    char err[1024];
    if (scenario_load(file, &s, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        printf("ERROR %s: the file cannot be used (see above)\n\n", file);
        return 2;
    }
    struct explore_group *g = NULL;
    size_t ng = 0, cap = 0;
    uint64_t failing = 0, errors = 0, last = first + (n - 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    printf("== explore %s (%s): seeds %" PRIu64 " to %" PRIu64 "\n", s->name, s->file, first, last);
    int status = 0;
    struct run_code code = {0};
    for (uint64_t i = 0; i < n; i++) {
        uint64_t seed = first + i;
        struct run_opts o = {.seed = seed, .borrowed = true, .code_cache = &code};
        struct run *r = run_one(s, &o);
        if (!r) {
            fprintf(stderr, "vmisim run: out of memory\n");
            status = 2;
            break;
        }
        unsigned verdict = r->error ? 2 : r->failed ? 1 : 0;
        uint64_t fp = run_fingerprint(r);
        size_t k = 0;
        while (k < ng && !(g[k].fp == fp && g[k].verdict == verdict))
            k++;
        if (k == ng) {
            if (ng == cap) {
                size_t nc = cap ? 2 * cap : 8;
                struct explore_group *ngp = realloc(g, nc * sizeof(*g));
                if (!ngp) {
                    run_free(r);
                    fprintf(stderr, "vmisim run: out of memory\n");
                    status = 2;
                    break;
                }
                g = ngp;
                cap = nc;
            }
            memset(&g[ng], 0, sizeof(g[ng]));
            g[ng].fp = fp;
            g[ng].verdict = verdict;
            g[ng].events = r->events;
            run_sequence(r, g[ng].sequence, sizeof(g[ng].sequence));
            for (size_t l = 0; l < r->nr_log; l++)
                if (r->log[l].kind == RUN_LOG_FAIL) {
                    snprintf(g[ng].failure, sizeof(g[ng].failure), "%s", r->log[l].text);
                    break;
                }
            ng++;
        }
        if (g[k].nseeds < EXPLORE_SHOWN)
            g[k].seeds[g[k].nseeds] = seed;
        g[k].nseeds++;
        failing += verdict == 1;
        errors += verdict == 2;
        run_free(r);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    size_t distinct = 0;
    for (size_t k = 0; k < ng; k++) {
        bool seen = false;
        for (size_t l = 0; l < k; l++)
            seen |= g[l].fp == g[k].fp;
        distinct += !seen;
        printf("   sequence %016" PRIx64 ": %s, %" PRIu64 " seed(s), %" PRIu64 " event(s): seeds ", g[k].fp,
               verdict_word[g[k].verdict], g[k].nseeds, g[k].events);
        for (uint64_t l = 0; l < g[k].nseeds && l < EXPLORE_SHOWN; l++)
            printf("%s%" PRIu64, l ? ", " : "", g[k].seeds[l]);
        printf("%s\n", g[k].nseeds > EXPLORE_SHOWN ? ", ..." : "");
        printf("      events: %s\n", g[k].sequence);
        if (g[k].verdict)
            printf("      first failure (seed %" PRIu64 "): %s\n", g[k].seeds[0], g[k].failure);
    }
    /* The earliest failing seed, whatever its group. */
    uint64_t fail_seed = 0;
    bool have_fail = false;
    for (size_t k = 0; k < ng; k++)
        if (g[k].verdict == 1 && (!have_fail || g[k].seeds[0] < fail_seed)) {
            fail_seed = g[k].seeds[0];
            have_fail = true;
        }
    if (have_fail) {
        printf("   first failing seed: %" PRIu64 "\n", fail_seed);
        printf("   reproduce it:   vmisim run --seed %" PRIu64 " %s\n", fail_seed, file);
        printf("   record it:      vmisim run --seed %" PRIu64 " --record %s-seed-%" PRIu64 ".rec %s\n",
               fail_seed, s->name, fail_seed, file);
    }
    printf("EXPLORE %s: %" PRIu64 " seed(s), %zu distinct event sequence(s), %" PRIu64 " failing seed(s)%s\n\n",
           s->name, n, distinct, failing, errors ? ", and seeds with errors" : "");
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* Wall time goes to stderr: standard output stays the same from run to run. */
    fprintf(stderr, "explore %s: %" PRIu64 " seed(s) in %.2f s (%.0f seeds/s)\n", s->name, n, secs,
            secs > 0 ? (double)n / secs : 0.0);
    free(g);
    free(code.bytes);
    scenario_free(s);
    if (status)
        return status;
    return errors ? 2 : failing ? 1 : 0;
}

int vmisim_run(int argc, char **argv)
{
    const char *json = NULL, *junit = NULL, *record = NULL;
    bool quiet = false, trace = false, seeded = false;
    uint64_t seed = 0, nexplore = 0;
    unsigned ring_version = 0; /* --ring-version: 0 keeps each scenario's */
    int first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (!strcmp(argv[first], "--json") && first + 1 < argc)
            json = argv[++first];
        else if (!strcmp(argv[first], "--junit") && first + 1 < argc)
            junit = argv[++first];
        else if (!strcmp(argv[first], "--quiet") || !strcmp(argv[first], "-q"))
            quiet = true;
        else if (!strcmp(argv[first], "--trace-hypercalls"))
            trace = true;
        else if (!strcmp(argv[first], "--seed") && first + 1 < argc) {
            if (!arg_u64("--seed", argv[++first], UINT64_MAX, &seed))
                return 2;
            seeded = true;
        } else if (!strcmp(argv[first], "--explore") && first + 1 < argc) {
            if (!arg_u64("--explore", argv[++first], 10000000, &nexplore))
                return 2;
            if (nexplore == 0) {
                fprintf(stderr, "vmisim run: --explore 0 runs nothing; give the number of seeds to try (1 or more)\n");
                return 2;
            }
        } else if (!strcmp(argv[first], "--record") && first + 1 < argc)
            record = argv[++first];
        else if (!strcmp(argv[first], "--ring-version") && first + 1 < argc) {
            const char *v = argv[++first];
            if (strcmp(v, "1") && strcmp(v, "7")) {
                fprintf(stderr, "vmisim run: --ring-version %s: expected 1 or 7 (the interface versions "
                                "vmisim speaks)\n", v);
                return 2;
            }
            ring_version = (unsigned)atoi(v);
        }
        else {
            usage(stderr);
            return 2;
        }
    }
    if (first >= argc) {
        usage(stderr);
        return 2;
    }
    if (nexplore) {
        if (record || json || junit || trace) {
            fprintf(stderr, "vmisim run: --explore reports sequences only; record one of its seeds with a "
                            "separate `vmisim run --seed S --record FILE` (no --record, --json, --junit or "
                            "--trace-hypercalls with --explore)\n");
            return 2;
        }
        uint64_t from = seeded ? seed : 1;
        if (from > UINT64_MAX - (nexplore - 1)) {
            fprintf(stderr, "vmisim run: seeds %" PRIu64 " + %" PRIu64 " go beyond 2^64 - 1; start lower\n",
                    from, nexplore);
            return 2;
        }
        int status = 0;
        for (int i = first; i < argc; i++) {
            int rc = explore(argv[i], from, nexplore);
            status = rc > status ? rc : status;
        }
        return status;
    }
    struct rec *rec = NULL;
    if (record) {
        char err[1024];
        if (argc - first != 1) {
            fprintf(stderr, "vmisim run: --record writes one scenario's run; give exactly one scenario file\n");
            return 2;
        }
        if (rec_open_write(&rec, record, argv[first], seed, err, sizeof(err)) < 0) {
            fprintf(stderr, "vmisim run: %s\n", err);
            return 2;
        }
    }
    size_t nfiles = (size_t)(argc - first);
    struct run **runs = calloc(nfiles, sizeof(*runs));
    const char **bad = calloc(nfiles, sizeof(*bad));
    char **bad_msg = calloc(nfiles, sizeof(*bad_msg));
    if (!runs || !bad || !bad_msg) {
        fprintf(stderr, "vmisim run: out of memory\n");
        return 2;
    }
    size_t nruns = 0, nbad = 0, passed = 0, failed = 0, skipped = 0;
    int status = 0;
    if (!quiet)
        printf("(request: what the hypervisor put on the vm_event ring; expected: the scenario entry it "
               "matched;\n client, response: what the scripted client did and answered; xen: what the "
               "hypervisor did about it)\n\n");
    for (int i = first; i < argc; i++) {
        struct scenario *s;
        char err[1024];
        if (scenario_load(argv[i], &s, err, sizeof(err)) < 0) {
            fprintf(stderr, "%s\n", err);
            printf("ERROR %s: the file cannot be used (see above)\n\n", argv[i]);
            bad[nbad] = argv[i];
            bad_msg[nbad++] = strdup(err);
            status = 2;
            continue;
        }
        if (ring_version && s->monitor.version != ring_version) {
            const char *why = version_bound(s);
            if (why) {
                printf("SKIP %s: it applies to interface version %u only: %s\n", s->name, s->monitor.version, why);
                skipped++;
                scenario_free(s);
                continue;
            }
            s->monitor.version = ring_version;
        }
        if (ring_version) {
            s->paging.version = ring_version;
            s->sharing.version = ring_version;
        }
        struct run_opts o = {.out = quiet ? NULL : stdout, .trace_hypercalls = trace, .seed = seed, .rec = rec};
        struct run *r = run_one(s, &o);
        if (!r) {
            fprintf(stderr, "vmisim run: out of memory\n");
            return 2;
        }
        if (quiet)
            printf("%s %s\n", r->error ? "ERROR" : r->failed ? "FAIL" : "PASS", s->name);
        runs[nruns++] = r;
        if (r->error)
            status = 2;
        else if (r->failed) {
            failed++;
            if (status == 0)
                status = 1;
        } else
            passed++;
    }
    if (json && run_write_json(json, runs, nruns) < 0) {
        fprintf(stderr, "vmisim run: cannot write %s: %s\n", json, strerror(errno));
        status = 2;
    }
    if (junit && run_write_junit(junit, runs, nruns, (const char *const *)bad_msg, bad, nbad) < 0) {
        fprintf(stderr, "vmisim run: cannot write %s: %s\n", junit, strerror(errno));
        status = 2;
    }
    if (skipped)
        printf("%zu skipped: they hold on one interface version only\n", skipped);
    printf("%zu passed, %zu failed\n", passed, failed + (nruns - passed - failed) + nbad);
    if (rec) {
        char err[1024];
        size_t entries = rec_nr_entries(rec);
        if (rec_close(rec, err, sizeof(err)) < 0) {
            fprintf(stderr, "vmisim run: %s\n", err);
            status = 2;
        } else if (!nruns) {
            remove(record); /* nothing ran: a header alone would only be a truncated recording */
        } else {
            printf("recorded %zu entries to %s; replay with: vmisim replay %s\n", entries, record, record);
        }
    }
    for (size_t i = 0; i < nruns; i++)
        run_free(runs[i]);
    for (size_t i = 0; i < nbad; i++)
        free(bad_msg[i]);
    free(runs);
    free(bad);
    free(bad_msg);
    return status;
}

/* ---- vmisim replay ----------------------------------------------------------------- */

static void replay_usage(FILE *f)
{
    fprintf(f, "usage: vmisim replay [--as-client] [--scenario FILE] [--quiet] RECORDING\n"
               "  Runs the recorded scenario again with the recorded schedule and checks that every\n"
               "  request, response, client call and the verdict happen again, in order.\n"
               "  --as-client: the recording plays the client (its responses and calls, at the same\n"
               "    points); the scenario's scripted client is not used, its final assertions are.\n"
               "  --scenario FILE: the scenario is at FILE (it must still be the recorded one).\n"
               "  Exit status: 0 reproduced, 1 the run went another way (the first difference is\n"
               "  named), 2 the recording or its scenario cannot be used.\n");
}

int vmisim_replay(int argc, char **argv)
{
    bool as_client = false, quiet = false;
    const char *scenario = NULL;
    int first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (!strcmp(argv[first], "--as-client"))
            as_client = true;
        else if (!strcmp(argv[first], "--quiet") || !strcmp(argv[first], "-q"))
            quiet = true;
        else if (!strcmp(argv[first], "--scenario") && first + 1 < argc)
            scenario = argv[++first];
        else {
            replay_usage(stderr);
            return 2;
        }
    }
    if (argc - first != 1) {
        replay_usage(stderr);
        return 2;
    }
    const char *file = argv[first];
    char err[1024];
    struct rec *rec;
    if (rec_open_read(&rec, file, as_client ? REC_CLIENT : REC_CHECK, err, sizeof(err)) < 0) {
        fprintf(stderr, "vmisim replay: %s\n", err);
        return 2;
    }
    if (!scenario)
        scenario = rec_scenario(rec);
    uint64_t want_hash, want_size, hash, size;
    rec_scenario_hash(rec, &want_hash, &want_size);
    if (rec_hash_file(scenario, &hash, &size, err, sizeof(err)) < 0) {
        fprintf(stderr, "vmisim replay: %s (the scenario the recording %s was made from; give its place "
                        "with --scenario FILE)\n", err, file);
        rec_close(rec, err, sizeof(err));
        return 2;
    }
    if (hash != want_hash || size != want_size) {
        fprintf(stderr, "vmisim replay: %s is not the scenario %s was recorded from: it has fnv1a64 %016" PRIx64
                        " and %" PRIu64 " bytes, the recording's has %016" PRIx64 " and %" PRIu64 " bytes; a "
                        "replay needs that scenario exactly (restore it, or record again)\n",
                scenario, file, hash, size, want_hash, want_size);
        rec_close(rec, err, sizeof(err));
        return 2;
    }
    struct scenario *s;
    if (scenario_load(scenario, &s, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        rec_close(rec, err, sizeof(err));
        return 2;
    }
    if (!quiet)
        printf("replay of %s (%zu entries, seed %" PRIu64 "%s)\n\n", file, rec_nr_entries(rec), rec_seed(rec),
               as_client ? ", the recording plays the client" : "");
    struct run_opts o = {.out = quiet ? NULL : stdout, .seed = rec_seed(rec), .rec = rec, .rec_client = as_client};
    struct run *r = run_one(s, &o);
    if (!r) {
        fprintf(stderr, "vmisim replay: out of memory\n");
        rec_close(rec, err, sizeof(err));
        return 2;
    }
    int status;
    switch (rec_outcome(rec)) {
    case REC_SAME:
        printf("REPLAY %s: reproduced: %s\n", s->name, rec_message(rec));
        status = 0;
        break;
    case REC_DIVERGED:
        printf("REPLAY %s: DIVERGED at %s\n", s->name, rec_message(rec));
        status = 1;
        break;
    default:
        printf("REPLAY %s: cannot be used: %s\n", s->name, rec_message(rec));
        status = 2;
        break;
    }
    run_free(r);
    rec_close(rec, err, sizeof(err));
    return status;
}

/*
 * `vmisim serve` (sim/serve.c, sim/serve_internal.h): the scenario's domain,
 * built by setup() with a copy of the scenario whose monitor section keeps
 * only access_required (no ring, no monitor controls: the attaching client
 * makes those calls) and whose client section is empty.  The run that
 * builds it is thrown away; the domain is the caller's.
 */
int run_build_domain(const struct scenario *s, struct sim_domain **out, char *err, size_t errlen)
{
    struct scenario copy = *s;
    memset(&copy.monitor, 0, sizeof(copy.monitor));
    copy.monitor.access_required = s->monitor.access_required;
    memset(&copy.client, 0, sizeof(copy.client));
    struct run *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    r->s = &copy;
    r->borrowed = true;
    int rc = setup(r);
    if (rc < 0) {
        const char *why = "cannot build the domain";
        for (size_t i = r->nr_log; i > 0; i--)
            if (r->log[i - 1].kind == RUN_LOG_FAIL && r->log[i - 1].text) {
                why = r->log[i - 1].text;
                break;
            }
        snprintf(err, errlen, "%s", why);
    } else {
        sim_set_observer(r->d, NULL, NULL);
        *out = r->d;
        r->d = NULL;
    }
    run_free(r);
    return rc < 0 ? rc : 0;
}
