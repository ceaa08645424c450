/*
 * sim/fuzz_client.c — `vmisim fuzz-client`: fuzz an introspection client with
 * vmisim (issue 10, section 2; docs/fuzzing.md, "Fuzzing a client").
 *
 * One *run* is a guest that loops over its data pages on every vCPU, plus a
 * script of hypervisor steps (sim/inject.c, the scenario's `hypervisor:`
 * section) generated from a seed: requests that are valid per the vm_event
 * ABI but hostile — any reason, also ones the client never enabled; gfns
 * beyond the domain's last; non-canonical glas; every mem_access flag
 * combination a host produces; registers of a live vCPU; bursts on every vCPU
 * at once; floods of async requests that fill the ring; guest memory
 * rewritten while the client reads it.  The run is written as scenario text
 * and parsed back, so what ran and what a reproducer replays are one thing.
 *
 * The client is driven in-process (struct sim_fuzz_client: its turns inside
 * sim_run, time is simulated) or in another process (a Xen client through
 * `vmisim serve` and the drop-in libraries; time is the wall clock).  The
 * simulator's notes say what the client did; a run fails when the client
 *   - dies (a signal, a sanitizer report, an exit while vCPUs wait for it),
 *   - breaks the protocol (the ring's indices; a response of another version
 *     or for a vCPU the domain does not have; VCPU_PAUSED for a vCPU that waits
 *     for nothing — a duplicate or invented answer, which on Xen would release
 *     a vCPU paused for another reason),
 *   - leaves a vCPU paused (a request answered without VCPU_PAUSED, or never
 *     answered while later ones were), or
 *   - hangs (answers nothing while requests wait).
 * A failing run is minimised (steps removed while the same kind of failure
 * stays) and written as a scenario file; it is replayed once more to check.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "assemble_internal.h"
#include "fuzz_client_internal.h"
#include "inject_internal.h"
#include "scenario_internal.h"
#include "serve_internal.h"
#include "sim_internal.h"
#include "vm_event_internal.h"

#define FZ_DEFAULT_RUNS 200u
#define FZ_DEFAULT_VCPUS 4u
#define FZ_DEFAULT_STEPS 48u
#define FZ_DATA_GPA 0x20000u        /* the guest's 16 data pages (gfn 0x20-0x2f) */
#define FZ_DATA_PAGES 16u
#define FZ_RAM_PAGES 256u           /* 1 MiB: gfn 0xff is the last */
#define FZ_SLICE 20000u             /* instructions per sim_run (in-process) */
#define FZ_HANG_INSNS 2000000u      /* in-process: simulated instructions without progress = a hang */
#define FZ_GRACE_INSNS 20000u       /* in-process: run on after the script, to see late failures */
#define FZ_MAX_INSNS 20000000u      /* in-process: a run drains after this at most */
#define FZ_DRAIN_TURNS 10000u       /* in-process: client turns without an answer while draining = a hang */
#define FZ_LIVELOCK_REQUESTS 100000u /* requests in a row with no instruction retired = a livelock */
#define FZ_MAX_TRIALS 300u          /* runs spent minimising */

const char *sim_fuzz_failure_name(enum sim_fuzz_failure f)
{
    switch (f) {
    case SIM_FUZZ_NONE: return "none";
    case SIM_FUZZ_CRASH: return "crash";
    case SIM_FUZZ_HANG: return "hang";
    case SIM_FUZZ_PROTOCOL: return "protocol";
    case SIM_FUZZ_UNRELEASED: return "unreleased";
    }
    return "unknown";
}

/*
 * Failures that are the same bug seen at different moments: a request never
 * answered is `unreleased` when the client answered later ones and `hang` when
 * it answered nothing more, and out of process which one a run sees depends on
 * timing.  Minimising and replaying compare families, not classes.
 */
static int failure_family(enum sim_fuzz_failure f)
{
    return f == SIM_FUZZ_HANG ? SIM_FUZZ_UNRELEASED : (int)f;
}

/* ---- Randomness: a seed (splitmix64) or the bytes of a fuzzer's input ------------- */

struct fz_rng {
    uint64_t state;
    const uint8_t *data; /* libFuzzer's input when not NULL: its bytes are the choices */
    size_t len, pos;
};

static uint64_t fz_next(struct fz_rng *r)
{
    if (r->data) {
        uint64_t v = 0;
        for (unsigned i = 0; i < 8; i++)
            v |= (uint64_t)(r->pos < r->len ? r->data[r->pos++] : 0) << (8 * i);
        return v;
    }
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t fz_below(struct fz_rng *r, uint64_t n)
{
    return n ? fz_next(r) % n : 0;
}

static bool fz_chance(struct fz_rng *r, unsigned percent)
{
    return fz_below(r, 100) < percent;
}

/* ---- Hostile values ------------------------------------------------------------------ */

static uint64_t pick(struct fz_rng *r, const uint64_t *v, size_t n)
{
    return v[fz_below(r, n)];
}
#define PICK(r, ...) pick((r), (const uint64_t[]){__VA_ARGS__}, sizeof((const uint64_t[]){__VA_ARGS__}) / sizeof(uint64_t))

static uint64_t any_u64(struct fz_rng *r)
{
    switch (fz_below(r, 4)) {
    case 0: return PICK(r, 0, 1, ~0ull, 1ull << 63, 0x7fffffffffffffffull, 0xffffffffull, 0x100000000ull);
    case 1: return fz_next(r);
    default: return fz_below(r, 0x10000);
    }
}

/* A gfn: mostly RAM the domain has, else the last gfn, one past it, and what 36-52 bit frames allow. */
static uint64_t any_gfn(struct fz_rng *r)
{
    if (fz_chance(r, 60))
        return fz_chance(r, 50) ? (FZ_DATA_GPA >> 12) + fz_below(r, FZ_DATA_PAGES) : fz_below(r, FZ_RAM_PAGES);
    return PICK(r, FZ_RAM_PAGES - 1, FZ_RAM_PAGES, FZ_RAM_PAGES + 1, 0xfffffffull, (1ull << 40) - 1,
                (1ull << 52) - 1, ~0ull >> 12, ~0ull);
}

/* A guest-linear address: canonical low and high halves, and non-canonical ones (no real host gives those). */
static uint64_t any_gla(struct fz_rng *r)
{
    if (fz_chance(r, 50))
        return 0x600000 + fz_below(r, FZ_DATA_PAGES * 4096);
    return PICK(r, 0, 0x00007fffffffffffull, 0x0000800000000000ull, 0xffff800000000000ull,
                0xffff7fffffffffffull, 0x8000000000000000ull, 0xdeadbeefdeadbeefull, ~0ull,
                0xfffff80000000000ull + fz_below(r, 1u << 30));
}

/*
 * u.mem_access.flags as a host produces them: R, W, X in any non-empty
 * combination, GLA_VALID, and with it FAULT_WITH_GLA or FAULT_IN_GPT — or
 * (one time in five) any bits at all.
 */
static uint64_t any_access_flags(struct fz_rng *r)
{
    if (fz_chance(r, 20))
        return fz_next(r) & 0xffffffffu;
    uint64_t f = 1 + fz_below(r, 7);
    if (fz_chance(r, 75)) {
        f |= VME_MEM_ACCESS_GLA_VALID;
        f |= fz_chance(r, 80) ? VME_MEM_ACCESS_FAULT_WITH_GLA : VME_MEM_ACCESS_FAULT_IN_GPT;
    }
    return f;
}

/* Reasons a monitor ring carries (not MEM_PAGING, MEM_SHARING: their own rings) up to the version's highest. */
static uint32_t any_reason(struct fz_rng *r, unsigned version)
{
    static const uint32_t common[] = {VME_REASON_MEM_ACCESS, VME_REASON_MEM_ACCESS, VME_REASON_MEM_ACCESS,
                                      VME_REASON_WRITE_CTRLREG, VME_REASON_MOV_TO_MSR,
                                      VME_REASON_SOFTWARE_BREAKPOINT, VME_REASON_SINGLESTEP,
                                      VME_REASON_GUEST_REQUEST, VME_REASON_DEBUG_EXCEPTION, VME_REASON_CPUID,
                                      VME_REASON_PRIVILEGED_CALL, VME_REASON_INTERRUPT,
                                      VME_REASON_DESCRIPTOR_ACCESS, VME_REASON_EMUL_UNIMPLEMENTED,
                                      VME_REASON_VMEXIT, VME_REASON_UNKNOWN};
    for (;;) {
        uint32_t reason = common[fz_below(r, sizeof(common) / sizeof(common[0]))];
        if (reason <= vme_max_reason(version))
            return reason;
    }
}

static uint64_t field_value(struct fz_rng *r, uint32_t reason, unsigned f)
{
    uint64_t v;
    switch (f) {
    case INJECT_F_GFN: v = any_gfn(r); break;
    case INJECT_F_OFFSET: v = fz_chance(r, 90) ? fz_below(r, 0x1000) : any_u64(r); break;
    case INJECT_F_GLA: v = any_gla(r); break;
    case INJECT_F_ACCESS_FLAGS: v = any_access_flags(r); break;
    case INJECT_F_INDEX: v = fz_chance(r, 90) ? fz_below(r, 4) : any_u64(r); break;
    case INJECT_F_MSR: v = PICK(r, 0x174, 0x175, 0x176, 0x1d9, 0xc0000080, 0xc0000081, 0xc0000082,
                               0xc0000100, 0xffffffff, fz_below(r, 0x2000)); break;
    case INJECT_F_INSN_LENGTH: v = fz_below(r, 16); break; /* 0 (none) to 15: what a host reports */
    case INJECT_F_TYPE: v = fz_below(r, 8); break;
    case INJECT_F_LEAF: v = PICK(r, 0, 1, 7, 0xd, 0x40000000, 0x40000100, 0x80000000, 0x80000008,
                                0xffffffff, fz_next(r)); break;
    case INJECT_F_DESCRIPTOR: v = fz_chance(r, 80) ? 1 + fz_below(r, 4) : any_u64(r); break;
    case INJECT_F_IS_WRITE: v = fz_below(r, 2); break;
    case INJECT_F_VECTOR: v = fz_below(r, 256); break;
    default: v = any_u64(r); break;
    }
    uint64_t max = inject_field_max(reason, f);
    return max == ~0ull ? v : v % (max + 1);
}

/* ---- Generating a run -------------------------------------------------------------- */

struct fz_plan {
    struct inject_step *steps;
    size_t n, cap;
};

static int plan_push(struct fz_plan *p, const struct inject_step *st)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct inject_step *s = realloc(p->steps, cap * sizeof(*s));
        if (!s)
            return -ENOMEM;
        p->steps = s;
        p->cap = cap;
    }
    p->steps[p->n++] = *st;
    return 0;
}

static void event_step(struct fz_rng *r, unsigned vcpus, unsigned version, uint64_t after, struct inject_step *st)
{
    memset(st, 0, sizeof(*st));
    st->kind = INJECT_EVENT;
    st->after = after;
    st->reason = any_reason(r, version);
    st->vcpu = (uint32_t)fz_below(r, vcpus);
    st->sync = fz_chance(r, 85);
    uint32_t allowed = inject_fields_allowed(st->reason);
    for (unsigned f = 0; f < INJECT_F_COUNT; f++) {
        /* MEM_ACCESS: the whole flags word stands for R/W/X, GLA_VALID and FAULT_*. */
        if (!(allowed & (1u << f)) || f == INJECT_F_ACCESS || f == INJECT_F_GLA_VALID || f == INJECT_F_FAULT)
            continue;
        st->field[f] = field_value(r, st->reason, f);
        st->given |= 1u << f;
    }
}

static uint64_t any_after(struct fz_rng *r)
{
    return fz_chance(r, 50) ? 0 : 1 + fz_below(r, fz_chance(r, 80) ? 500 : 20000);
}

/* The steps of one run: about max_steps at most, several kinds. */
static int plan_generate(struct fz_rng *r, const struct fz_config *cfg, struct fz_plan *p)
{
    size_t want = 1 + fz_below(r, cfg->max_steps);
    struct inject_step st;
    while (p->n < want) {
        unsigned kind = (unsigned)fz_below(r, 100);
        int rc = 0;
        if (kind < 70) {
            event_step(r, cfg->vcpus, cfg->version, any_after(r), &st);
            rc = plan_push(p, &st);
        } else if (kind < 80) {
            /* Every vCPU at once: a burst the ring may not hold. */
            uint64_t after = any_after(r);
            for (unsigned v = 0; v < cfg->vcpus && rc == 0; v++) {
                event_step(r, cfg->vcpus, cfg->version, v ? 0 : after, &st);
                st.vcpu = v;
                rc = plan_push(p, &st);
            }
        } else if (kind < 88) {
            /* A flood of async requests (no vCPU waits): more than a one-page ring holds. */
            unsigned n = 8 + (unsigned)fz_below(r, 24);
            for (unsigned i = 0; i < n && rc == 0; i++) {
                event_step(r, cfg->vcpus, cfg->version, i ? 0 : any_after(r), &st);
                st.sync = false;
                rc = plan_push(p, &st);
            }
        } else {
            /* The guest's data rewritten under the client (DMA, another domain). */
            memset(&st, 0, sizeof(st));
            st.kind = INJECT_WRITE;
            st.after = any_after(r);
            uint64_t page = fz_below(r, FZ_DATA_PAGES);
            st.size = 1 + fz_below(r, fz_chance(r, 50) ? 4096 : 16);
            st.gpa = FZ_DATA_GPA + page * 4096 + fz_below(r, 4096 - st.size + 1);
            st.fill = (uint8_t)fz_next(r);
            rc = plan_push(p, &st);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- The run as scenario text ----------------------------------------------------------- */

static void yaml_step(FILE *f, const struct inject_step *st, uint64_t after)
{
    fprintf(f, "  - after: %" PRIu64 "\n", after);
    if (st->kind == INJECT_WRITE) {
        fprintf(f, "    write: {gpa: %#" PRIx64 ", fill: %#x, size: %" PRIu64 "}\n", st->gpa, st->fill, st->size);
        return;
    }
    const char *name = vme_reason_name(st->reason);
    fprintf(f, "    event: {reason: ");
    if (name)
        fprintf(f, "%s", name);
    else
        fprintf(f, "%" PRIu32, st->reason);
    fprintf(f, ", vcpu: %" PRIu32 ", sync: %s", st->vcpu, st->sync ? "true" : "false");
    for (unsigned fi = 0; fi < INJECT_F_COUNT; fi++) {
        if (!(st->given & (1u << fi)))
            continue;
        if (fi == INJECT_F_IS_WRITE || fi == INJECT_F_GLA_VALID)
            fprintf(f, ", %s: %s", inject_field_name(fi), st->field[fi] ? "true" : "false");
        else
            fprintf(f, ", %s: %#" PRIx64, inject_field_name(fi), st->field[fi]);
    }
    fprintf(f, "}\n");
}

/*
 * The guest: every vCPU walks the 16 data pages (a write to each, one per
 * ~200 instructions, so a client that restricts them gets real MEM_ACCESS
 * events between the hypervisor's own, without drowning them), and an IDT handler at +0x40 that returns, so a breakpoint or debug
 * trap a client re-injects (xc_hvm_inject_trap) is taken and survived.
 * Assembled once per session (nasm is a process: ~0.1 s per run otherwise)
 * and written into the scenario as code_bytes, with the source as a comment.
 */
#define FZ_GUEST_LINES(X)                                                                          \
    X("    xor ecx, ecx")                                                                         \
    X("  next:")                                                                                  \
    X("    mov eax, ecx")                                                                         \
    X("    and eax, 0xf000")                                                                      \
    X("    inc qword [rax + 0x600000]")                                                           \
    X("    add ecx, 0x1008")                                                                      \
    X("    mov edx, 64")                                                                          \
    X("  idle:")                                                                                  \
    X("    pause")                                                                                \
    X("    dec edx")                                                                              \
    X("    jnz idle")                                                                             \
    X("    jmp next")                                                                             \
    X("    times 0x40 - ($ - $$) db 0xcc")                                                        \
    X("    iretq")
#define FZ_AS_SOURCE(line) line "\n"
#define FZ_AS_COMMENT(line) "  #  " line "\n"
#define FZ_GUEST_SOURCE FZ_GUEST_LINES(FZ_AS_SOURCE)
#define FZ_GUEST_COMMENT FZ_GUEST_LINES(FZ_AS_COMMENT)

static int guest_prepare(struct fz_config *cfg, char *err, size_t errlen)
{
    /* Once per process: sim_fuzz_client_input runs once per fuzzer input. */
    static char *assembled;
    if (!assembled) {
        struct asm_source src = {.text = FZ_GUEST_SOURCE, .len = strlen(FZ_GUEST_SOURCE), .bits = 64,
                                 .org = 0x400000, .file = "fuzz-client guest", .first_line = 1};
        uint8_t *code = NULL;
        size_t len = 0;
        int rc = asm_nasm(&src, &code, &len, err, errlen);
        if (rc < 0)
            return rc;
        char *hex = malloc(len * 3 + 1);
        if (!hex) {
            free(code);
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        for (size_t i = 0; i < len; i++)
            sprintf(hex + 3 * i, i + 1 < len ? "%02x " : "%02x", code[i]);
        hex[len ? len * 3 - 1 : 0] = 0;
        free(code);
        assembled = hex;
    }
    if (!(cfg->code_hex = strdup(assembled))) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/*
 * The whole scenario: the looping guest, the monitor ring's version, and the
 * kept steps (a dropped step's `after` goes to the next kept one, as
 * inject_set_kept does, so the rest fire when they did).
 */
static int plan_yaml(const struct fz_config *cfg, const struct fz_plan *p, const bool *keep, uint64_t seed,
                     char **text, size_t *len)
{
    FILE *f = open_memstream(text, len);
    if (!f)
        return -ENOMEM;
    size_t kept = 0;
    for (size_t i = 0; i < p->n; i++)
        kept += !keep || keep[i];
    fprintf(f,
            "# Written by vmisim fuzz-client (docs/fuzzing.md): a guest that loops over its data pages on\n"
            "# every vCPU, and what the hypervisor does by itself (the `hypervisor` steps). Replay it with\n"
            "#   vmisim fuzz-client --replay THIS-FILE -- CLIENT ARGS...\n"
            "# or serve it to a client: vmisim serve THIS-FILE.\n"
            "name: fuzz-client-seed-%" PRIu64 "\n"
            "description: >-\n"
            "  vmisim fuzz-client, seed %" PRIu64 ": %zu hypervisor step(s)%s.\n"
            "guest:\n"
            "  memory: %uK\n"
            "  vcpus: %u\n"
            "  entry: 0x400000\n"
            "  mappings:\n"
            "    - {gla: 0x400000, gpa: 0x10000, size: 4K, rights: rx}\n"
            "    - {gla: 0x600000, gpa: %#x, size: %uK, rights: rw}\n"
            "    - {gla: 0x700000, gpa: 0x30000, size: 4K, rights: rw}   # the stack (no step writes it)\n"
            "  # A client may re-inject a breakpoint or debug trap it was told of (xc_hvm_inject_trap):\n"
            "  # the guest takes it and returns, as a guest with a debugger stub would.\n"
            "  idt_handler: 0x400040\n"
            "  registers: {rsp: 0x700ff0}\n"
            "  # The code (0x400000), assembled once per session from:\n"
            "%s"
            "  code_bytes: \"%s\"\n"
            "monitor:\n"
            "  version: %u\n"
            "limits:\n"
            "  instructions: 20000000\n"
            "hypervisor:\n",
            seed, seed, kept, keep ? ", minimised" : "", FZ_RAM_PAGES * 4, cfg->vcpus, FZ_DATA_GPA, FZ_DATA_PAGES * 4,
            FZ_GUEST_COMMENT, cfg->code_hex, cfg->version);
    uint64_t carried = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (keep && !keep[i]) {
            carried += p->steps[i].after;
            continue;
        }
        yaml_step(f, &p->steps[i], carried + p->steps[i].after);
        carried = 0;
    }
    if (!kept)
        fprintf(f, "  []\n");
    if (fclose(f) != 0)
        return -ENOMEM;
    return 0;
}

/* ---- Watching the client: the simulator's notes ------------------------------------------ */

struct fz_watch {
    unsigned nr_vcpus;
    uint32_t sync_out[SIM_MAX_VCPUS];      /* requests with VCPU_PAUSED not yet answered with it */
    uint32_t reason[SIM_MAX_VCPUS];        /* of the vCPU's last such request */
    uint64_t answered_at[SIM_MAX_VCPUS];   /* `answered` when that request was posted */
    bool no_paused_flag[SIM_MAX_VCPUS];    /* it was answered, but without VCPU_PAUSED */
    uint64_t requests, answered;           /* every request posted; every response taken */
    struct vme_msg last;                   /* the last request posted */
    uint64_t retired, requests_at_retired; /* the domain's instructions; requests then (livelock check) */
    enum sim_fuzz_failure failure;
    char what[512];
};

static void watch_fail(struct fz_watch *w, enum sim_fuzz_failure f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void watch_fail(struct fz_watch *w, enum sim_fuzz_failure f, const char *fmt, ...)
{
    if (w->failure)
        return; /* the first failure is the one to report */
    w->failure = f;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->what, sizeof(w->what), fmt, ap);
    va_end(ap);
}

static const char *reason_text(uint32_t reason)
{
    const char *n = vme_reason_name(reason);
    return n ? n : "UNKNOWN";
}

static void watch_note(void *opaque, const struct sim_note *note)
{
    struct fz_watch *w = opaque;
    const struct vme_msg *m = note->msg;
    switch (note->kind) {
    case SIM_NOTE_REQUEST:
        w->requests++;
        if (m)
            w->last = *m;
        if (m && (m->flags & VME_FLAG_VCPU_PAUSED) && m->vcpu_id < w->nr_vcpus) {
            w->sync_out[m->vcpu_id]++;
            w->reason[m->vcpu_id] = m->reason;
            w->answered_at[m->vcpu_id] = w->answered;
            w->no_paused_flag[m->vcpu_id] = false;
        }
        break;
    case SIM_NOTE_RESPONSE:
        w->answered++;
        if (!m || m->vcpu_id >= w->nr_vcpus || !w->sync_out[m->vcpu_id])
            break;
        if (m->flags & VME_FLAG_VCPU_PAUSED)
            w->sync_out[m->vcpu_id]--;
        else
            w->no_paused_flag[m->vcpu_id] = true;
        break;
    case SIM_NOTE_IGNORED:
        /* monitor_apply's three reasons to drop a response (Xen's vm_event_resume). */
        w->answered++;
        if (!m)
            break;
        if (m->vcpu_id >= w->nr_vcpus)
            watch_fail(w, SIM_FUZZ_PROTOCOL, "a response for vCPU %u, and the domain has %u vCPUs (%s)", m->vcpu_id,
                       w->nr_vcpus, note->text);
        else if (w->sync_out[m->vcpu_id] || (m->flags & VME_FLAG_VCPU_PAUSED))
            /* Version mismatch, or VCPU_PAUSED for a vCPU that waits for nothing (a duplicate). */
            watch_fail(w, SIM_FUZZ_PROTOCOL, "vCPU %u: %s", m->vcpu_id, note->text);
        /* Else an answer to an async request: Xen ignores it, and so may the client send it. */
        break;
    case SIM_NOTE_RING:
        watch_fail(w, SIM_FUZZ_PROTOCOL, "the client broke the ring: %s", note->text);
        break;
    default:
        break;
    }
}

/* Requests that wait for the client: unanswered sync requests, anything on the ring, vCPUs waiting for a slot. */
static bool watch_pending(const struct fz_watch *w, struct sim_domain *d)
{
    if (d->monitor.ring && ring_nr_outstanding(d->monitor.ring))
        return true;
    for (unsigned v = 0; v < w->nr_vcpus; v++)
        if (w->sync_out[v] || d->vcpus[v].waiting_slot)
            return true;
    return false;
}

/* The client let requests wait `waited` (simulated instructions or ms): say which kind of failure that is. */
static void watch_judge_wait(struct fz_watch *w, struct sim_domain *d, const char *waited)
{
    for (unsigned v = 0; v < w->nr_vcpus; v++) {
        if (!w->sync_out[v])
            continue;
        if (w->no_paused_flag[v])
            watch_fail(w, SIM_FUZZ_UNRELEASED,
                       "vCPU %u stays paused: the client answered its %s request without VCPU_PAUSED (Xen "
                       "unpauses only on that flag)", v, reason_text(w->reason[v]));
        else if (w->answered > w->answered_at[v])
            watch_fail(w, SIM_FUZZ_UNRELEASED,
                       "vCPU %u stays paused: its %s request got no answer in %s, while the client answered %" PRIu64
                       " request(s) after it was sent", v, reason_text(w->reason[v]), waited,
                       w->answered - w->answered_at[v]);
        else
            watch_fail(w, SIM_FUZZ_HANG,
                       "the client stopped answering: vCPU %u's %s request (and every later one) got no answer "
                       "in %s", v, reason_text(w->reason[v]), waited);
        return;
    }
    uint32_t out = d->monitor.ring ? ring_nr_outstanding(d->monitor.ring) : 0;
    watch_fail(w, SIM_FUZZ_HANG,
               "the client stopped answering: %" PRIu32 " request(s) on the ring (async: no vCPU paused) got no "
               "answer in %s; their slots stay taken, so the ring fills and vCPUs will wait", out, waited);
}

/*
 * A livelock: requests keep coming and being answered, but no instruction
 * retires (a client whose answers re-create the fault each time, e.g. one that
 * re-protects a page-table page the walk must write).  True when found.
 */
static bool watch_livelock(struct fz_watch *w, struct sim_domain *d)
{
    uint64_t retired = inject_insns(d);
    if (retired != w->retired) {
        w->retired = retired;
        w->requests_at_retired = w->requests;
        return false;
    }
    if (w->requests - w->requests_at_retired < FZ_LIVELOCK_REQUESTS)
        return false;
    const struct vme_msg *m = &w->last;
    if (m->reason == VME_REASON_MEM_ACCESS)
        watch_fail(w, SIM_FUZZ_HANG,
                   "a livelock: %" PRIu64 " requests answered and not one guest instruction retired; the last: "
                   "vCPU %u MEM_ACCESS gfn %#" PRIx64 " flags %#x (the answers re-create the fault each time)",
                   w->requests - w->requests_at_retired, m->vcpu_id, m->u.mem_access.gfn, m->u.mem_access.flags);
    else
        watch_fail(w, SIM_FUZZ_HANG,
                   "a livelock: %" PRIu64 " requests answered and not one guest instruction retired; the last: "
                   "vCPU %u %s (the answers re-create the event each time)",
                   w->requests - w->requests_at_retired, m->vcpu_id, reason_text(m->reason));
    return true;
}

static void watch_init(struct fz_watch *w, unsigned nr_vcpus)
{
    memset(w, 0, sizeof(*w));
    w->nr_vcpus = nr_vcpus;
}

/* ---- One run, in-process -------------------------------------------------------------------- */

static int run_inprocess(const struct fz_config *cfg, const struct scenario *s, struct fz_watch *w, char *err,
                         size_t errlen)
{
    struct sim_domain *d = NULL;
    int rc = run_build_domain(s, &d, err, errlen);
    if (rc < 0)
        return rc;
    watch_init(w, sim_nr_vcpus(d));
    sim_set_observer(d, watch_note, w);
    /* A client that lets every vCPU wait: SIM_STOP_DEADLOCK after this much simulated time. */
    d->deadlock_timeout = FZ_HANG_INSNS;
    const struct sim_fuzz_client *c = cfg->client;
    if ((rc = c->attach(c->opaque, d)) < 0) {
        snprintf(err, errlen, "the client %s failed to attach: %s (%s)", c->name ? c->name : "", strerror(-rc),
                 sim_error(d));
        sim_domain_destroy(d);
        return rc;
    }
    /*
     * Run the script, then FZ_GRACE_INSNS more; then drain: the domain is
     * paused (xc_domain_pause: no new event can come) and the client gets
     * turns — one per sim_run — until nothing waits for it, or FZ_DRAIN_TURNS
     * turns pass without an answer.  A client that keeps up with a guest that
     * never stops making events would otherwise never be seen idle.
     */
    uint64_t total = 0, progress_at = 0, last_seen = 0, done_at = 0;
    bool done = false, draining = false;
    while (!w->failure) {
        struct sim_stop st = {.reason = SIM_STOP_BLOCKED};
        if (draining) {
            /* A turn of the client, as sim_client_turn gives one, then its responses taken. */
            if (d->client) {
                d->in_client = true;
                d->client(d->client_opaque);
                d->in_client = false;
            }
            sim_monitor_poll(d);
        } else if (sim_run(d, FZ_SLICE, &st) < 0) {
            snprintf(err, errlen, "vmisim error during the run: %s", sim_error(d));
            rc = -EIO;
            break;
        }
        total += draining ? 1 : st.insns + 1; /* +1: an idle turn is time too */
        if (w->requests + w->answered != last_seen) {
            last_seen = w->requests + w->answered;
            progress_at = total;
        }
        if (!draining && watch_livelock(w, d))
            break;
        bool pending = watch_pending(w, d);
        uint64_t limit = draining ? FZ_DRAIN_TURNS : FZ_HANG_INSNS;
        if (st.reason == SIM_STOP_DEADLOCK || (pending && total - progress_at >= limit)) {
            char waited[64];
            snprintf(waited, sizeof(waited), draining ? "%" PRIu64 " turns with the domain paused"
                                                      : "%" PRIu64 " simulated instructions", limit);
            watch_judge_wait(w, d, waited);
            break;
        }
        if (draining) {
            if (!pending)
                break;
            continue;
        }
        if (st.reason != SIM_STOP_LIMIT && st.reason != SIM_STOP_EVENT && st.reason != SIM_STOP_BLOCKED)
            break; /* the guest ended (a vCPU the client steered crashed): no more events come */
        if (!done && inject_done(d)) {
            done = true;
            done_at = total;
        }
        if ((done && total - done_at >= FZ_GRACE_INSNS) || total >= FZ_MAX_INSNS) {
            if ((rc = sim_domain_pause(d)) < 0) {
                snprintf(err, errlen, "cannot pause the domain to drain the ring: %s", sim_error(d));
                break;
            }
            draining = true;
            total = progress_at = 0;
        }
    }
    c->detach(c->opaque, d);
    sim_domain_destroy(d);
    return rc;
}

/*
 * The same in a forked child, so a client that crashes ends the child, not
 * the fuzzer.  The child sends its verdict through a pipe.
 */
struct fz_verdict {
    int rc;
    enum sim_fuzz_failure failure;
    char what[512];
    char err[512];
};

static int run_isolated(const struct fz_config *cfg, const struct scenario *s, struct fz_watch *w, char *err,
                        size_t errlen)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -errno;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return -errno;
    }
    if (pid == 0) {
        close(p[0]);
        struct fz_verdict v;
        memset(&v, 0, sizeof(v));
        v.rc = run_inprocess(cfg, s, w, v.err, sizeof(v.err));
        v.failure = w->failure;
        memcpy(v.what, w->what, sizeof(v.what));
        ssize_t n = write(p[1], &v, sizeof(v));
        _exit(n == (ssize_t)sizeof(v) ? 0 : 3);
    }
    close(p[1]);
    struct fz_verdict v;
    size_t got = 0;
    while (got < sizeof(v)) {
        ssize_t n = read(p[0], (char *)&v + got, sizeof(v) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(p[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    watch_init(w, 0);
    if (got == sizeof(v)) {
        if (v.rc < 0)
            snprintf(err, errlen, "%s", v.err);
        w->failure = v.failure;
        memcpy(w->what, v.what, sizeof(w->what));
        return v.rc;
    }
    if (WIFSIGNALED(status))
        watch_fail(w, SIM_FUZZ_CRASH, "the client crashed: signal %d (%s)", WTERMSIG(status),
                   strsignal(WTERMSIG(status)));
    else
        watch_fail(w, SIM_FUZZ_CRASH, "the client ended the process with exit status %d before the run ended "
                   "(a sanitizer report, exit() or abort in the client)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}

/* ---- One run, out of process ---------------------------------------------------------------- */

static long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* argv with {domid} and {socket} replaced; NULL on no memory. */
static char **client_argv(const struct fz_config *cfg, const char *socket_path)
{
    size_t n = 0;
    while (cfg->argv[n])
        n++;
    char **a = calloc(n + 1, sizeof(*a));
    if (!a)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char buf[4096];
        size_t o = 0;
        for (const char *p = cfg->argv[i]; *p && o < sizeof(buf) - 1;) {
            if (!strncmp(p, "{domid}", 7)) {
                o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%" PRIu32, cfg->domid);
                p += 7;
            } else if (!strncmp(p, "{socket}", 8)) {
                o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s", socket_path);
                p += 8;
            } else {
                buf[o++] = *p++;
            }
            if (o >= sizeof(buf))
                o = sizeof(buf) - 1;
        }
        buf[o] = 0;
        if (!(a[i] = strdup(buf))) {
            for (size_t k = 0; k < i; k++)
                free(a[k]);
            free(a);
            return NULL;
        }
    }
    return a;
}

static pid_t spawn_client(const struct fz_config *cfg, const char *socket_path, const char *log_path, char *err,
                          size_t errlen)
{
    char **argv = client_argv(cfg, socket_path);
    if (!argv) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    char ld[PATH_MAX * 2];
    const char *old = getenv("LD_LIBRARY_PATH");
    snprintf(ld, sizeof(ld), "%s%s%s", cfg->xenlibs, old && *old ? ":" : "", old && *old ? old : "");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null >= 0)
            dup2(null, 0);
        setenv("VMISIM_SOCKET", socket_path, 1);
        setenv("LD_LIBRARY_PATH", ld, 1);
        execvp(argv[0], argv);
        fprintf(stderr, "vmisim fuzz-client: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int e = errno;
    for (size_t i = 0; argv[i]; i++)
        free(argv[i]);
    free(argv);
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(e));
        return -e;
    }
    return pid;
}

/* The last lines of the client's output, for a report. */
static void log_tail(const char *path, char *out, size_t len)
{
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char buf[4096];
    size_t n = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        fseek(f, size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0, SEEK_SET);
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    /* At most 8 lines. */
    char *p = buf + n;
    unsigned lines = 0;
    while (p > buf && lines <= 8)
        if (*--p == '\n' && p + 1 < buf + n)
            lines++;
    if (*p == '\n')
        p++;
    snprintf(out, len, "%s", p);
}

/* Judges how the client process ended; true if it counts as a crash. */
static void judge_exit(struct fz_watch *w, int status, bool asked_to_stop, bool pending)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (asked_to_stop && (sig == SIGINT || sig == SIGTERM || sig == SIGKILL))
            return; /* the default action of the signal we sent */
        watch_fail(w, SIM_FUZZ_CRASH, "the client crashed: signal %d (%s)%s", sig, strsignal(sig),
                   asked_to_stop ? " while shutting down after SIGINT" : "");
        return;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (asked_to_stop)
        return; /* its exit code after SIGINT is its own business (xen-access: 255 in altp2m modes) */
    if (code != 0)
        watch_fail(w, SIM_FUZZ_CRASH,
                   "the client exited with status %d while the guest ran (a sanitizer report, assert or error "
                   "exit on an event it did not expect)", code);
    else if (pending)
        watch_fail(w, SIM_FUZZ_UNRELEASED, "the client exited (status 0) and left requests unanswered");
}

static int run_process(const struct fz_config *cfg, const struct scenario *s, struct fz_watch *w, char *tail,
                       size_t taillen, char *err, size_t errlen)
{
    char sock[128], log[128];
    snprintf(sock, sizeof(sock), "%s/sock", cfg->dir);
    snprintf(log, sizeof(log), "%s/client.log", cfg->dir);
    struct serve_opts o = {.socket_path = sock, .domid = cfg->domid, .quiet = !cfg->verbose};
    struct serve *sv = NULL;
    int rc = serve_open(s, &o, &sv, err, errlen);
    if (rc < 0)
        return rc;
    struct sim_domain *d = serve_domain(sv);
    watch_init(w, sim_nr_vcpus(d));
    serve_set_observer(sv, watch_note, w);
    pid_t pid = spawn_client(cfg, sock, log, err, errlen);
    if (pid < 0) {
        serve_close(sv);
        return (int)pid;
    }
    long t0 = mono_ms(), progress_at = t0, done_at = 0;
    uint64_t last_seen = 0;
    bool exited = false, done = false, draining = false;
    int status = 0;
    while (!w->failure) {
        if ((rc = serve_poll(sv, 5)) < 0) {
            snprintf(err, errlen, "the server failed: %s", strerror(-rc));
            break;
        }
        long now = mono_ms();
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            exited = true;
            if (!serve_started(sv)) {
                log_tail(log, tail, taillen);
                snprintf(err, errlen, "the client exited (%s %d) before it enabled the monitor ring and notified: "
                         "is the command right? Its last output:\n%s",
                         WIFSIGNALED(status) ? "signal" : "status",
                         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), tail);
                rc = -ECHILD;
                break;
            }
            judge_exit(w, status, false, watch_pending(w, d));
            break;
        }
        if (!serve_started(sv)) {
            if (now - t0 > 10000 + 4 * cfg->hang_ms) {
                snprintf(err, errlen, "the client did not enable the monitor ring and notify within %ld ms",
                         now - t0);
                rc = -ETIMEDOUT;
                break;
            }
            continue;
        }
        if (w->requests + w->answered != last_seen) {
            last_seen = w->requests + w->answered;
            progress_at = now;
        }
        if (!draining && watch_livelock(w, d))
            break;
        bool pending = watch_pending(w, d);
        if (pending && now - progress_at >= cfg->hang_ms) {
            char waited[64];
            snprintf(waited, sizeof(waited), "%ld ms", cfg->hang_ms);
            watch_judge_wait(w, d, waited);
            break;
        }
        if (serve_end(sv))
            break; /* the guest ended (a vCPU the client steered crashed): no more events come */
        if (draining && !pending)
            break; /* everything answered, and no new event can come */
        if (!done && inject_done(d)) {
            done = true;
            done_at = now;
        }
        /*
         * A moment after the last step (late crashes still count), drain as
         * run_inprocess does: the domain paused, the client given until
         * --hang-ms without an answer to answer what waits.
         */
        if (done && !draining && now - done_at >= 20) {
            if ((rc = sim_domain_pause(d)) < 0) {
                snprintf(err, errlen, "cannot pause the domain to drain the ring: %s", sim_error(d));
                break;
            }
            draining = true;
            progress_at = now;
        }
    }
    if (!exited) {
        bool failed = w->failure != SIM_FUZZ_NONE;
        /* A failure found: the client is stopped hard; else asked to stop, as xen-access is. */
        kill(pid, failed ? SIGKILL : SIGINT);
        long t1 = mono_ms();
        for (;;) {
            pid_t r = waitpid(pid, &status, WNOHANG);
            if (r == pid)
                break;
            if (mono_ms() - t1 > cfg->hang_ms) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                break;
            }
            /* It disables its ring on the way out: keep answering its calls. */
            if (serve_poll(sv, 5) < 0)
                usleep(5000);
        }
        if (!failed)
            judge_exit(w, status, true, false);
    }
    if (w->failure)
        log_tail(log, tail, taillen);
    serve_close(sv);
    return rc < 0 ? rc : 0;
}

/* ---- Runs, minimising, sessions ----------------------------------------------------------- */

struct fz_outcome {
    enum sim_fuzz_failure failure;
    char what[512];
    char tail[2048]; /* the client's last output (out of process) */
};

/* Runs scenario text once against the client. 0 with *out, or a negative errno (err says why). */
static int run_text(const struct fz_config *cfg, const char *text, size_t len, const char *name,
                    struct fz_outcome *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    struct scenario *s = NULL;
    int rc = scenario_parse(text, len, name, &s, err, errlen);
    if (rc < 0)
        return rc;
    struct fz_watch w;
    watch_init(&w, 0);
    if (cfg->client)
        rc = cfg->isolate ? run_isolated(cfg, s, &w, err, errlen) : run_inprocess(cfg, s, &w, err, errlen);
    else
        rc = run_process(cfg, s, &w, out->tail, sizeof(out->tail), err, errlen);
    scenario_free(s);
    out->failure = w.failure;
    memcpy(out->what, w.what, sizeof(out->what));
    return rc;
}

static int run_plan(const struct fz_config *cfg, const struct fz_plan *p, const bool *keep, uint64_t seed,
                    struct fz_outcome *out, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = plan_yaml(cfg, p, keep, seed, &text, &len);
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    char name[64];
    snprintf(name, sizeof(name), "fuzz-client-seed-%" PRIu64 ".yaml", seed);
    rc = run_text(cfg, text, len, name, out, err, errlen);
    free(text);
    return rc;
}

/*
 * Delta debugging, simply: try to drop chunks of kept steps (halves, then
 * quarters, ... single steps); keep a drop when the run still fails the same
 * way.  Bounded by FZ_MAX_TRIALS runs.
 */
static int minimise(const struct fz_config *cfg, const struct fz_plan *p, uint64_t seed, enum sim_fuzz_failure want,
                    bool *keep, unsigned *trials, char *err, size_t errlen)
{
    for (size_t i = 0; i < p->n; i++)
        keep[i] = true;
    bool *trial = malloc(p->n ? p->n : 1);
    if (!trial)
        return -ENOMEM;
    size_t kept = p->n;
    for (size_t chunk = kept / 2 ? kept / 2 : 1; chunk >= 1 && *trials < FZ_MAX_TRIALS;) {
        bool dropped_any = false;
        for (size_t start = 0; start < p->n && *trials < FZ_MAX_TRIALS;) {
            /* The chunk: the next `chunk` kept steps from `start`. */
            memcpy(trial, keep, p->n);
            size_t taken = 0, end = start;
            for (; end < p->n && taken < chunk; end++)
                if (trial[end]) {
                    trial[end] = false;
                    taken++;
                }
            if (!taken)
                break;
            struct fz_outcome o;
            (*trials)++;
            int rc = run_plan(cfg, p, trial, seed, &o, err, errlen);
            if (rc < 0) {
                free(trial);
                return rc;
            }
            if (o.failure && failure_family(o.failure) == failure_family(want)) {
                memcpy(keep, trial, p->n);
                kept -= taken;
                dropped_any = true;
            } else {
                start = end;
            }
            if (cfg->verbose)
                fprintf(stderr, "vmisim fuzz-client: minimising: %zu step(s) left (trial %u: %s)\n", kept, *trials,
                        sim_fuzz_failure_name(o.failure));
        }
        if (chunk == 1 && !dropped_any)
            break;
        if (!dropped_any || chunk > 1)
            chunk = chunk / 2 ? chunk / 2 : 1;
    }
    free(trial);
    return 0;
}

static int write_file(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        snprintf(err, errlen, "cannot write the reproducer %s: %s", path, strerror(errno));
        return -EIO;
    }
    return 0;
}

static void report_run(const struct fz_config *cfg, unsigned i, uint64_t seed, size_t steps,
                       const struct fz_outcome *o)
{
    if (cfg->verbose || o->failure)
        fprintf(stderr, "vmisim fuzz-client: run %u (seed %" PRIu64 ", %zu step(s)): %s%s%s\n", i, seed, steps,
                o->failure ? sim_fuzz_failure_name(o->failure) : "ok", o->failure ? ": " : "",
                o->failure ? o->what : "");
}

/*
 * The session: runs with seeds seed, seed+1, ... until one fails (then it is
 * minimised, written and replayed) or the budget is spent.  `res` says what
 * was found.  0, or a negative errno for a set-up error (err says which).
 */
static int fz_session_runs(const struct fz_config *cfg, struct sim_fuzz_result *res, char *err, size_t errlen);

static int fz_session(struct fz_config *cfg, struct sim_fuzz_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof(*res));
    int rc = guest_prepare(cfg, err, errlen);
    if (rc < 0)
        return rc;
    rc = fz_session_runs(cfg, res, err, errlen);
    free(cfg->code_hex);
    cfg->code_hex = NULL;
    return rc;
}

static int fz_session_runs(const struct fz_config *cfg, struct sim_fuzz_result *res, char *err, size_t errlen)
{
    for (unsigned i = 0; i < cfg->runs; i++) {
        uint64_t seed = cfg->seed + i;
        struct fz_rng rng = {.state = seed};
        struct fz_plan plan = {0};
        int rc = plan_generate(&rng, cfg, &plan);
        struct fz_outcome o;
        if (rc == 0)
            rc = run_plan(cfg, &plan, NULL, seed, &o, err, errlen);
        if (rc < 0) {
            free(plan.steps);
            return rc;
        }
        res->runs = i + 1;
        report_run(cfg, i, seed, plan.n, &o);
        if (!o.failure) {
            free(plan.steps);
            continue;
        }
        res->failure = o.failure;
        res->seed = seed;
        res->steps = (unsigned)plan.n;
        memcpy(res->what, o.what, sizeof(res->what));
        if (o.tail[0])
            fprintf(stderr, "vmisim fuzz-client: the client's last output:\n%s%s", o.tail,
                    o.tail[strlen(o.tail) - 1] == '\n' ? "" : "\n");
        bool *keep = malloc(plan.n ? plan.n : 1);
        unsigned trials = 0;
        rc = keep ? minimise(cfg, &plan, seed, o.failure, keep, &trials, err, errlen) : -ENOMEM;
        char *text = NULL;
        size_t len = 0;
        if (rc == 0)
            rc = plan_yaml(cfg, &plan, keep, seed, &text, &len);
        size_t kept = 0;
        for (size_t k = 0; rc == 0 && k < plan.n; k++)
            kept += keep[k];
        res->minimised_steps = (unsigned)kept;
        free(keep);
        free(plan.steps);
        if (rc == 0 && cfg->reproducer)
            rc = write_file(cfg->reproducer, text, len, err, errlen);
        if (rc == 0) {
            /* The reproducer, replayed once more from its own text: it must fail the same way. */
            struct fz_outcome again;
            rc = run_text(cfg, text, len, cfg->reproducer ? cfg->reproducer : "reproducer", &again, err, errlen);
            if (rc == 0 && (!again.failure || failure_family(again.failure) != failure_family(o.failure)))
                fprintf(stderr, "vmisim fuzz-client: warning: the minimised reproducer replayed as '%s', not '%s' "
                        "(a failure that depends on timing); run it again with --replay\n",
                        sim_fuzz_failure_name(again.failure), sim_fuzz_failure_name(o.failure));
        }
        if (cfg->verbose)
            fprintf(stderr, "vmisim fuzz-client: minimised in %u run(s)\n", trials);
        free(text);
        return rc;
    }
    return 0;
}

/* ---- The C API (sim/sim.h) ------------------------------------------------------------------ */

static void config_defaults(struct fz_config *cfg, const struct sim_fuzz_options *o)
{
    cfg->seed = o->seed;
    cfg->runs = o->runs ? o->runs : FZ_DEFAULT_RUNS;
    cfg->vcpus = o->vcpus ? o->vcpus : FZ_DEFAULT_VCPUS;
    cfg->max_steps = o->max_steps ? o->max_steps : FZ_DEFAULT_STEPS;
    cfg->version = o->ring_version ? o->ring_version : 7;
    cfg->reproducer = o->reproducer;
    cfg->isolate = o->isolate;
    cfg->verbose = o->verbose;
}

static int check_config(const struct fz_config *cfg, char *err, size_t errlen)
{
    if (cfg->vcpus > SIM_MAX_VCPUS) {
        snprintf(err, errlen, "%u vCPUs: at most %u", cfg->vcpus, SIM_MAX_VCPUS);
        return -EINVAL;
    }
    if (!vme_version_supported(cfg->version)) {
        snprintf(err, errlen, "ring version %u: vmisim speaks 1 and 7", cfg->version);
        return -EINVAL;
    }
    if (cfg->max_steps > INJECT_MAX_STEPS / SIM_MAX_VCPUS) {
        snprintf(err, errlen, "%u steps per run: at most %u", cfg->max_steps, INJECT_MAX_STEPS / SIM_MAX_VCPUS);
        return -EINVAL;
    }
    return 0;
}

int sim_fuzz_client(const struct sim_fuzz_client *c, const struct sim_fuzz_options *o, struct sim_fuzz_result *res)
{
    struct fz_config cfg = {.client = c};
    char err[600];
    config_defaults(&cfg, o);
    memset(res, 0, sizeof(*res));
    int rc = check_config(&cfg, err, sizeof(err));
    if (rc == 0)
        rc = fz_session(&cfg, res, err, sizeof(err));
    if (rc < 0)
        snprintf(res->what, sizeof(res->what), "%.500s", err);
    return rc;
}

int sim_fuzz_client_input(const struct sim_fuzz_client *c, const uint8_t *data, size_t size,
                          const struct sim_fuzz_options *o, struct sim_fuzz_result *res)
{
    struct fz_config cfg = {.client = c};
    char err[600];
    config_defaults(&cfg, o);
    cfg.isolate = false;
    memset(res, 0, sizeof(*res));
    int rc = check_config(&cfg, err, sizeof(err));
    if (rc == 0)
        rc = guest_prepare(&cfg, err, sizeof(err));
    struct fz_plan plan = {0};
    struct fz_rng rng = {.data = data, .len = size};
    if (rc == 0)
        rc = plan_generate(&rng, &cfg, &plan);
    char *text = NULL;
    size_t len = 0;
    if (rc == 0)
        rc = plan_yaml(&cfg, &plan, NULL, 0, &text, &len);
    struct fz_outcome out;
    if (rc == 0)
        rc = run_text(&cfg, text, len, "fuzz-client-input.yaml", &out, err, sizeof(err));
    if (rc == 0) {
        res->runs = 1;
        res->steps = res->minimised_steps = (unsigned)plan.n;
        res->failure = out.failure;
        memcpy(res->what, out.what, sizeof(res->what));
        if (out.failure && cfg.reproducer)
            rc = write_file(cfg.reproducer, text, len, err, sizeof(err));
    }
    if (rc < 0)
        snprintf(res->what, sizeof(res->what), "%.500s", err);
    free(text);
    free(plan.steps);
    free(cfg.code_hex);
    return rc;
}

int sim_fuzz_client_replay(const struct sim_fuzz_client *c, const char *scenario_path, bool isolate,
                           struct sim_fuzz_result *res)
{
    struct fz_config cfg = {.client = c, .isolate = isolate};
    memset(res, 0, sizeof(*res));
    char err[600];
    struct fz_outcome o;
    FILE *f = fopen(scenario_path, "r");
    char *text = NULL;
    size_t len = 0;
    int rc = 0;
    if (!f) {
        snprintf(res->what, sizeof(res->what), "%s: %s", scenario_path, strerror(errno));
        return -errno;
    }
    FILE *m = open_memstream(&text, &len);
    char buf[65536];
    size_t n;
    while (m && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, m);
    fclose(f);
    if (!m || fclose(m) != 0) {
        snprintf(res->what, sizeof(res->what), "out of memory");
        return -ENOMEM;
    }
    rc = run_text(&cfg, text, len, scenario_path, &o, err, sizeof(err));
    free(text);
    res->runs = 1;
    if (rc < 0) {
        snprintf(res->what, sizeof(res->what), "%.500s", err);
        return rc;
    }
    res->failure = o.failure;
    memcpy(res->what, o.what, sizeof(res->what));
    return 0;
}

/* ---- The command ------------------------------------------------------------------------------- */

static void fz_usage(FILE *f)
{
    fprintf(f,
            "usage: vmisim fuzz-client [--seed S] [--runs N] [--vcpus N] [--steps N] [--out FILE]\n"
            "                          [--xenlibs DIR] [--domid N] [--hang-ms MS] [--verbose] -- CLIENT [ARGS...]\n"
            "       vmisim fuzz-client --replay FILE [--xenlibs DIR] [--domid N] [--hang-ms MS] -- CLIENT [ARGS...]\n"
            "  Runs CLIENT (a Xen introspection client: it finds vmisim through the drop-in libraries in\n"
            "  --xenlibs and $VMISIM_SOCKET) against event streams generated from seeds S, S+1, ... (N runs,\n"
            "  default %u), each a guest of --vcpus vCPUs (default %u) and up to --steps hypervisor steps\n"
            "  (default %u): hostile but valid vm_event requests and memory rewrites. A run fails when the\n"
            "  client crashes, hangs (--hang-ms without an answer, default 2000), breaks the protocol or\n"
            "  leaves a vCPU paused; the failure is minimised and written to --out (default\n"
            "  fuzz-client-repro.yaml), a scenario that --replay runs again. In ARGS, {domid} and {socket}\n"
            "  are replaced. Exit status: 0 no failure, 1 a failure found, 2 a usage or set-up error.\n",
            FZ_DEFAULT_RUNS, FZ_DEFAULT_VCPUS, FZ_DEFAULT_STEPS);
}

static bool arg_num(const char *opt, const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = v ? strtoull(v, &end, 0) : 0;
    if (!v || !*v || *end || errno || n < min || n > max || v[0] == '-') {
        fprintf(stderr, "vmisim fuzz-client: %s %s: expected a number from %" PRIu64 " to %" PRIu64 "\n", opt,
                v ? v : "(missing)", min, max);
        return false;
    }
    *out = n;
    return true;
}

/* <directory of this executable>/../ring/xenlibs, when the drop-ins are there (a build tree). */
static int default_xenlibs(char *out, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -ENOENT;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -ENOENT;
    *slash = 0;
    char probe[PATH_MAX + 64];
    snprintf(probe, sizeof(probe), "%s/../ring/xenlibs/libxenctrl.so.4.17", exe);
    if (access(probe, R_OK) < 0)
        return -ENOENT;
    if ((size_t)snprintf(out, len, "%.*s/../ring/xenlibs", (int)(len > 32 ? len - 32 : 0), exe) >= len)
        return -ENAMETOOLONG;
    return 0;
}

int vmisim_fuzz_client(int argc, char **argv)
{
    struct fz_config cfg = {.runs = FZ_DEFAULT_RUNS, .vcpus = FZ_DEFAULT_VCPUS, .max_steps = FZ_DEFAULT_STEPS,
                            .version = 7, .domid = 1, .hang_ms = 2000, .reproducer = "fuzz-client-repro.yaml"};
    const char *replay = NULL;
    char xenlibs[PATH_MAX];
    xenlibs[0] = 0;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        if (!strcmp(a, "--")) {
            i++;
            break;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fz_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--verbose")) {
            cfg.verbose = true;
            continue;
        } else if (!v) {
            fprintf(stderr, "vmisim fuzz-client: unknown or incomplete option '%s'\n", a);
            fz_usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--seed") && arg_num(a, v, 0, UINT64_MAX, &n))
            cfg.seed = n;
        else if (!strcmp(a, "--runs") && arg_num(a, v, 1, 100000000, &n))
            cfg.runs = (unsigned)n;
        else if (!strcmp(a, "--vcpus") && arg_num(a, v, 1, SIM_MAX_VCPUS, &n))
            cfg.vcpus = (unsigned)n;
        else if (!strcmp(a, "--steps") && arg_num(a, v, 1, INJECT_MAX_STEPS / SIM_MAX_VCPUS, &n))
            cfg.max_steps = (unsigned)n;
        else if (!strcmp(a, "--domid") && arg_num(a, v, 0, 0x7fef, &n))
            cfg.domid = (uint32_t)n;
        else if (!strcmp(a, "--hang-ms") && arg_num(a, v, 10, 3600000, &n))
            cfg.hang_ms = (long)n;
        else if (!strcmp(a, "--out"))
            cfg.reproducer = v;
        else if (!strcmp(a, "--replay"))
            replay = v;
        else if (!strcmp(a, "--xenlibs"))
            snprintf(xenlibs, sizeof(xenlibs), "%s", v);
        else {
            if (strcmp(a, "--seed") && strcmp(a, "--runs") && strcmp(a, "--vcpus") && strcmp(a, "--steps")
                && strcmp(a, "--domid") && strcmp(a, "--hang-ms")) {
                fprintf(stderr, "vmisim fuzz-client: unknown option '%s'\n", a);
                fz_usage(stderr);
            }
            return 2;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "vmisim fuzz-client: no client command: give it after '--'\n");
        fz_usage(stderr);
        return 2;
    }
    cfg.argv = argv + i;
    if (!xenlibs[0] && default_xenlibs(xenlibs, sizeof(xenlibs)) < 0) {
        fprintf(stderr, "vmisim fuzz-client: where are the drop-in Xen libraries? Give --xenlibs "
                "<builddir>/ring/xenlibs\n");
        return 2;
    }
    cfg.xenlibs = xenlibs;
    snprintf(cfg.dir, sizeof(cfg.dir), "/tmp/vmisim-fuzz-XXXXXX");
    if (!mkdtemp(cfg.dir)) {
        fprintf(stderr, "vmisim fuzz-client: cannot make a directory in /tmp: %s\n", strerror(errno));
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    char err[2600];
    err[0] = 0;
    struct sim_fuzz_result res;
    memset(&res, 0, sizeof(res));
    int rc = check_config(&cfg, err, sizeof(err));
    struct fz_outcome o;
    if (rc == 0 && replay) {
        FILE *f = fopen(replay, "r");
        char *text = NULL;
        size_t len = 0;
        FILE *m = f ? open_memstream(&text, &len) : NULL;
        char buf[65536];
        size_t got;
        while (m && (got = fread(buf, 1, sizeof(buf), f)) > 0)
            fwrite(buf, 1, got, m);
        if (f)
            fclose(f);
        if (!f || !m || fclose(m) != 0) {
            snprintf(err, sizeof(err), "cannot read %s: %s", replay, strerror(errno));
            rc = -EIO;
        } else {
            rc = run_text(&cfg, text, len, replay, &o, err, sizeof(err));
            res.failure = o.failure;
            memcpy(res.what, o.what, sizeof(res.what));
            if (o.failure && o.tail[0])
                fprintf(stderr, "vmisim fuzz-client: the client's last output:\n%s%s", o.tail,
                        o.tail[strlen(o.tail) - 1] == '\n' ? "" : "\n");
        }
        free(text);
    } else if (rc == 0) {
        rc = fz_session(&cfg, &res, err, sizeof(err));
    }
    char path[128];
    snprintf(path, sizeof(path), "%s/client.log", cfg.dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/sock", cfg.dir);
    unlink(path);
    rmdir(cfg.dir);
    if (rc < 0) {
        fprintf(stderr, "vmisim fuzz-client: %s\n", err);
        return 2;
    }
    if (replay) {
        printf("vmisim fuzz-client: replay of %s: %s%s%s\n", replay,
               res.failure ? sim_fuzz_failure_name(res.failure) : "no failure", res.failure ? ": " : "",
               res.failure ? res.what : "");
        return res.failure ? 1 : 0;
    }
    if (!res.failure) {
        printf("vmisim fuzz-client: no failure in %u run(s) (seeds %" PRIu64 " to %" PRIu64 ")\n", res.runs,
               cfg.seed, cfg.seed + res.runs - 1);
        return 0;
    }
    printf("vmisim fuzz-client: FAILURE (%s) in run %u, seed %" PRIu64 ": %s\n"
           "vmisim fuzz-client: reproducer: %s (%u hypervisor step(s), minimised from %u); replay it with\n"
           "  vmisim fuzz-client --replay %s --",
           sim_fuzz_failure_name(res.failure), res.runs - 1, res.seed, res.what, cfg.reproducer, res.minimised_steps,
           res.steps, cfg.reproducer);
    for (int k = i; k < argc; k++)
        printf(" %s", argv[k]);
    printf("\n");
    return 1;
}
