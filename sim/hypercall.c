/*
 * sim/hypercall.c — the declared hypercall table, after Valgrind's syscall
 * wrappers (docs/adding-a-hypercall.md): Xen's hvm_hypercall dispatch
 * (xen/arch/x86/hvm/hypercall.c) and KVM's KVM_HC_XEN_HVM_OP (the KVM VMI
 * patches).  Each hypercall is declared once in hcall_table[]; hcall_dispatch
 * decodes the ABI, runs pre (checks and copies in every guest buffer through
 * the guest's page walk and sim_mem_read: a bad pointer is -EFAULT for the
 * guest, never a simulator crash), the call, and post (what was written).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hypercall_internal.h"

#define XEN_HC_CONSOLE_IO 18
#define XEN_HC_VCPU_OP 24
#define VCPUOP_INITIALISE 0
#define VCPUOP_UP 1
#define VCPUOP_DOWN 2
#define VCPUOP_IS_UP 3
#define XEN_HC_SCHED_OP 29
#define XEN_HC_HVM_OP 34
#define KVM_HC_XEN_HVM_OP 34
#define CONSOLEIO_WRITE 0
#define SCHEDOP_YIELD 0
#define SCHEDOP_SHUTDOWN 2
#define HVMOP_GUEST_REQUEST_VM_EVENT 24
#define KVM_HC_MEM_MAP 32
#define KVM_HC_MEM_UNMAP 33
#define KVM_ENOSYS 1000 /* include/uapi/linux/kvm_para.h: KVM returns -KVM_ENOSYS */

#define XEN (1u << SIM_HYPERCALL_XEN)
#define KVM (1u << SIM_HYPERCALL_KVM)

/* ---- Guest memory, the PRE_MEM_READ of a wrapper ------------------------------------- */

int hcall_read_guest(struct hcall_ctx *c, uint64_t gla, void *out, uint32_t len)
{
    uint8_t *dst = out;
    if (!c->is64)
        gla &= 0xffffffffu;
    while (len) {
        struct cpu_walk w;
        uint32_t chunk = CPU_PAGE_SIZE - (uint32_t)(gla & (CPU_PAGE_SIZE - 1));
        if (chunk > len)
            chunk = len;
        if (cpu_translate(c->v->cpu, gla, CPU_R, &w) < 0 || w.fault)
            return -EFAULT;
        uint64_t gfn = w.gpa >> CPU_PAGE_SHIFT;
        if (!sim_frame(c->d, gfn)) {
            /* __hvm_copy: HVMTRANS_gfn_paged_out; the vCPU's own touch pages in and pauses it. */
            sim_paging_populate(c->d, c->v, gfn);
            return -EFAULT;
        }
        if (sim_mem_read(c->d, w.gpa, dst, chunk) < 0)
            return -EFAULT;
        dst += chunk;
        gla += chunk;
        len -= chunk;
        if (!c->is64)
            gla &= 0xffffffffu;
    }
    return 0;
}

/* ---- Xen __HYPERVISOR_hvm_op / KVM_HC_XEN_HVM_OP: HVMOP_guest_request_vm_event ------- */

static int64_t pre_guest_request(struct hcall_ctx *c)
{
    /* hvm_hypercall checks CPL first: > 0 only for this call and only with allow_userspace. */
    if (c->cpl > 0 && !c->d->mon.guest_request_userspace)
        return -EPERM;
    /* do_hvm_op: the argument must be a NULL handle. */
    if (c->arg[1] != 0)
        return -EINVAL;
    return 0;
}

static int64_t call_guest_request(struct hcall_ctx *c)
{
    /* monitor_guest_request (xen/common/monitor.c). */
    if (!c->d->mon.guest_request)
        return 0;
    struct vme_msg req;
    memset(&req, 0, sizeof(req));
    req.reason = VME_REASON_GUEST_REQUEST;
    int rc = sim_monitor_traps(c->d, c->v, c->d->mon.guest_request_sync, &req);
    (void)rc; /* the hypercall's result does not depend on it */
    return 0;
}

static void post_clobbers(struct hcall_ctx *c)
{
    /* The registers the dispatcher poisons after the call (HCALL_POISON64/32). */
    snprintf(c->wrote, sizeof(c->wrote), "%s", c->is64 ? "rdx r10 r8 r9 (poisoned)"
                                                       : "edx esi edi ebp (poisoned)");
}

/* ---- Xen __HYPERVISOR_sched_op --------------------------------------------------------- */

static int64_t call_yield(struct hcall_ctx *c)
{
    (void)c;
    return 0;
}

static int64_t pre_shutdown(struct hcall_ctx *c)
{
    /* copy_from_guest(&sched_shutdown, arg, 1): struct sched_shutdown { unsigned int reason; }. */
    c->buf_len = 4;
    return hcall_read_guest(c, c->arg[1], c->buf, 4);
}

static const char *const shutdown_names[] = {"poweroff", "reboot", "suspend", "crash", "watchdog",
                                             "soft_reset"};

static int64_t call_shutdown(struct hcall_ctx *c)
{
    uint32_t reason;
    memcpy(&reason, c->buf, 4);
    /* do_sched_op: domain_shutdown(currd, (u8)sched_shutdown.reason). */
    struct sim_domain *d = c->d;
    if (!d->shutdown) {
        d->shutdown = true;
        d->shutdown_reason = (uint8_t)reason;
        uint8_t r8 = (uint8_t)reason;
        sim_note(d, SIM_NOTE_ACTION, c->v->id, NULL, "vCPU %u shut the domain down: reason %s (%u)",
                 c->v->id, r8 < 6 ? shutdown_names[r8] : "unknown", r8);
    }
    return 0;
}

/* ---- Xen __HYPERVISOR_console_io: CONSOLEIO_write ------------------------------------------ */

static int64_t pre_console_write(struct hcall_ctx *c)
{
    uint64_t count = c->arg[1];
    /* Read at most HCALL_BUF_MAX bytes (Xen copies in chunks and may preempt; see the guide). */
    c->buf_len = count > HCALL_BUF_MAX ? HCALL_BUF_MAX : (uint32_t)count;
    return hcall_read_guest(c, c->arg[2], c->buf, c->buf_len);
}

static void console_line(struct hcall_ctx *c, const char *text, size_t n)
{
    sim_note(c->d, SIM_NOTE_CONSOLE, c->v->id, NULL, "(d1) %.*s", (int)n, text);
}

static int64_t call_console_write(struct hcall_ctx *c)
{
    /* guest_console_write: non-printable characters are dropped, one log line per line. */
    char line[200];
    size_t n = 0;
    for (uint32_t i = 0; i < c->buf_len; i++) {
        uint8_t ch = c->buf[i];
        if (ch == '\n' || n == sizeof(line)) {
            console_line(c, line, n);
            n = 0;
            if (ch == '\n')
                continue;
        }
        if (ch >= 0x20 && ch < 0x7f)
            line[n++] = (char)ch;
    }
    if (n)
        console_line(c, line, n);
    return 0;
}

static void post_console_write(struct hcall_ctx *c)
{
    snprintf(c->wrote, sizeof(c->wrote), "%" PRIu32 " byte(s) to the console", c->buf_len);
}

/* ---- KVM_HC_MEM_MAP / KVM_HC_MEM_UNMAP (sim/kvmi_mem.c) ----------------------------------- */

static int64_t pre_kvm_cpl0(struct hcall_ctx *c)
{
    /* kvm_emulate_hypercall: any CPL but 0 gets -KVM_EPERM. */
    return c->cpl > 0 ? -EPERM : 0;
}

static int64_t pre_mem_map(struct hcall_ctx *c)
{
    int64_t rc = pre_kvm_cpl0(c);
    if (rc < 0)
        return rc;
    /* struct kvmi_map_mem_token { __u64 token[4]; }: a bad pointer is -KVM_EFAULT. */
    c->buf_len = sizeof(struct sim_map_token);
    return hcall_read_guest(c, c->arg[0], c->buf, c->buf_len);
}

static int64_t call_mem_map(struct hcall_ctx *c)
{
    struct sim_map_token token;
    memcpy(&token, c->buf, sizeof(token));
    char why[160];
    int64_t rc = sim_kvmi_mem_map(c->d, &token, c->arg[1], c->arg[2], why, sizeof(why));
    snprintf(c->wrote, sizeof(c->wrote), "%s", why);
    if (rc < 0)
        sim_note(c->d, SIM_NOTE_ACTION, c->v->id, NULL, "KVM_HC_MEM_MAP refused (-KVM_EFAULT): %s", why);
    return rc;
}

static int64_t call_mem_unmap(struct hcall_ctx *c)
{
    char why[160];
    int64_t rc = sim_kvmi_mem_unmap(c->d, c->arg[0], why, sizeof(why));
    snprintf(c->wrote, sizeof(c->wrote), "%s", why);
    if (rc < 0)
        sim_note(c->d, SIM_NOTE_ACTION, c->v->id, NULL, "KVM_HC_MEM_UNMAP refused (-KVM_EFAULT): %s", why);
    return rc;
}

/* ---- The table --------------------------------------------------------------------------- */

const struct hcall_desc hcall_table[] = {
    {.abis = XEN, .nr = XEN_HC_HVM_OP, .name = "hvm_op", .has_op = true,
     .op = HVMOP_GUEST_REQUEST_VM_EVENT, .op_name = "guest_request_vm_event", .nargs = 2,
     .args = {{"op", HCALL_ARG_OP}, {"arg", HCALL_ARG_PTR}},
     .pre = pre_guest_request, .call = call_guest_request},
    {.abis = KVM, .nr = KVM_HC_XEN_HVM_OP, .name = "KVM_HC_XEN_HVM_OP", .has_op = true,
     .op = HVMOP_GUEST_REQUEST_VM_EVENT, .op_name = "guest_request_vm_event", .nargs = 2,
     .args = {{"op", HCALL_ARG_OP}, {"arg", HCALL_ARG_PTR}}, .clobbers = true,
     .pre = pre_guest_request, .call = call_guest_request, .post = post_clobbers},
    {.abis = XEN, .nr = XEN_HC_SCHED_OP, .name = "sched_op", .has_op = true, .op = SCHEDOP_YIELD,
     .op_name = "yield", .nargs = 2, .args = {{"cmd", HCALL_ARG_OP}, {"arg", HCALL_ARG_PTR}},
     .call = call_yield},
    {.abis = XEN, .nr = XEN_HC_SCHED_OP, .name = "sched_op", .has_op = true, .op = SCHEDOP_SHUTDOWN,
     .op_name = "shutdown", .nargs = 2, .args = {{"cmd", HCALL_ARG_OP}, {"arg", HCALL_ARG_PTR}},
     .pre = pre_shutdown, .call = call_shutdown},
    {.abis = XEN, .nr = XEN_HC_CONSOLE_IO, .name = "console_io", .has_op = true, .op = CONSOLEIO_WRITE,
     .op_name = "write", .nargs = 3,
     .args = {{"cmd", HCALL_ARG_OP}, {"count", HCALL_ARG_LEN}, {"buffer", HCALL_ARG_PTR}},
     .pre = pre_console_write, .call = call_console_write, .post = post_console_write},
    {.abis = XEN, .nr = XEN_HC_VCPU_OP, .name = "vcpu_op", .has_op = true, .op = VCPUOP_INITIALISE,
     .op_name = "initialise", .nargs = 3,
     .args = {{"cmd", HCALL_ARG_OP}, {"vcpuid", HCALL_ARG_INT}, {"ctxt", HCALL_ARG_PTR}},
     .pre = hcall_pre_vcpu_initialise, .call = hcall_call_vcpu_initialise},
    {.abis = XEN, .nr = XEN_HC_VCPU_OP, .name = "vcpu_op", .has_op = true, .op = VCPUOP_UP,
     .op_name = "up", .nargs = 3,
     .args = {{"cmd", HCALL_ARG_OP}, {"vcpuid", HCALL_ARG_INT}, {"arg", HCALL_ARG_PTR}},
     .call = hcall_call_vcpu_up},
    {.abis = XEN, .nr = XEN_HC_VCPU_OP, .name = "vcpu_op", .has_op = true, .op = VCPUOP_DOWN,
     .op_name = "down", .nargs = 3,
     .args = {{"cmd", HCALL_ARG_OP}, {"vcpuid", HCALL_ARG_INT}, {"arg", HCALL_ARG_PTR}},
     .call = hcall_call_vcpu_down},
    {.abis = XEN, .nr = XEN_HC_VCPU_OP, .name = "vcpu_op", .has_op = true, .op = VCPUOP_IS_UP,
     .op_name = "is_up", .nargs = 3,
     .args = {{"cmd", HCALL_ARG_OP}, {"vcpuid", HCALL_ARG_INT}, {"arg", HCALL_ARG_PTR}},
     .call = hcall_call_vcpu_is_up},
    {.abis = KVM, .nr = KVM_HC_MEM_MAP, .name = "KVM_HC_MEM_MAP", .nargs = 3,
     .args = {{"token", HCALL_ARG_PTR}, {"gpa", HCALL_ARG_INT}, {"map_gpa", HCALL_ARG_INT}},
     .pre = pre_mem_map, .call = call_mem_map},
    {.abis = KVM, .nr = KVM_HC_MEM_UNMAP, .name = "KVM_HC_MEM_UNMAP", .nargs = 1,
     .args = {{"map_gpa", HCALL_ARG_INT}}, .pre = pre_kvm_cpl0, .call = call_mem_unmap},
};
const size_t hcall_table_len = sizeof(hcall_table) / sizeof(hcall_table[0]);

/* ---- Dispatch ------------------------------------------------------------------------------ */

uint32_t hcall_intercept_mask(enum sim_hypercall_abi abi)
{
    switch (abi) {
    case SIM_HYPERCALL_XEN: return 1u << CPU_INSN_VMCALL;
    case SIM_HYPERCALL_KVM: return 1u << CPU_INSN_VMCALL | 1u << CPU_INSN_VMMCALL;
    default: return 0;
    }
}

bool hcall_is_hypercall(const struct sim_domain *d, const struct cpu_insn *in)
{
    return (in->kind == CPU_INSN_VMCALL || in->kind == CPU_INSN_VMMCALL)
           && (hcall_intercept_mask(d->hypercalls) & (1u << in->kind));
}

static const char *abi_name(enum sim_hypercall_abi abi)
{
    return abi == SIM_HYPERCALL_XEN ? "xen" : abi == SIM_HYPERCALL_KVM ? "kvm" : "none";
}

static const char *errno_name(int64_t rc)
{
    switch (rc) {
    case -EPERM: return "EPERM";
    case -EFAULT: return "EFAULT";
    case -EINVAL: return "EINVAL";
    case -ENOENT: return "ENOENT";
    case -EEXIST: return "EEXIST";
    case -ENOSYS: return "ENOSYS";
    case -KVM_ENOSYS: return "KVM_ENOSYS";
    default: return NULL;
    }
}

/* The lookup: the entry, or NULL; *known_nr tells whether the number itself is declared. */
static const struct hcall_desc *lookup(enum sim_hypercall_abi abi, uint64_t nr, uint64_t op, bool *known_nr)
{
    *known_nr = false;
    for (size_t i = 0; i < hcall_table_len; i++) {
        const struct hcall_desc *e = &hcall_table[i];
        if (!(e->abis & (1u << abi)) || e->nr != nr)
            continue;
        *known_nr = true;
        if (!e->has_op || e->op == op)
            return e;
    }
    return NULL;
}

/* The PRINT of a wrapper: "hvm_op(op=guest_request_vm_event(24), arg=0x0)". */
static void format_call(char *buf, size_t len, const struct hcall_ctx *c)
{
    const struct hcall_desc *e = c->desc;
    size_t off = 0;
    int n = snprintf(buf, len, "%s(", e->name);
    off = n > 0 ? (size_t)n : 0;
    for (unsigned i = 0; i < e->nargs && off < len; i++) {
        const struct hcall_arg *a = &e->args[i];
        const char *sep = i ? ", " : "";
        if (a->kind == HCALL_ARG_OP && i == 0 && e->has_op)
            n = snprintf(buf + off, len - off, "%s%s=%s(%" PRIu64 ")", sep, a->name, e->op_name, c->arg[i]);
        else if (a->kind == HCALL_ARG_LEN)
            n = snprintf(buf + off, len - off, "%s%s=%" PRIu64, sep, a->name, c->arg[i]);
        else
            n = snprintf(buf + off, len - off, "%s%s=%#" PRIx64, sep, a->name, c->arg[i]);
        off += n > 0 ? (size_t)n : 0;
    }
    if (off < len)
        snprintf(buf + off, len - off, ")");
}

static int64_t run_entry(struct hcall_ctx *c)
{
    const struct hcall_desc *e = c->desc;
    int64_t rc = 0;
    /* hvm_hypercall: user mode may only make guest_request, and only with allow_userspace. */
    bool user_ok = e->nr == XEN_HC_HVM_OP && e->op == HVMOP_GUEST_REQUEST_VM_EVENT;
    if (c->cpl > 0 && !user_ok)
        rc = -EPERM;
    if (rc == 0 && e->pre)
        rc = e->pre(c);
    if (rc == 0)
        rc = e->call(c);
    if (rc == 0 && e->post)
        e->post(c);
    return rc;
}

static int decode(struct hcall_ctx *c, struct sim_domain *d, struct sim_vcpu *v, struct cpu_regs *r)
{
    int rc = cpu_get_regs(v->cpu, r);
    if (rc < 0)
        return sim_set_error(d, rc, "vCPU %u: %s", v->id, cpu_error(v->cpu));
    memset(c, 0, sizeof(*c));
    c->d = d;
    c->v = v;
    c->abi = d->hypercalls;
    /* hvm_guest_x86_mode == 8: long mode with CS.L (VMX access rights bit 13). */
    c->is64 = d->mode == CPU_MODE_LONG && (r->cs.attr & (1u << 13));
    c->cpl = r->cs.selector & 3;
    c->rip = r->rip;
    if (c->is64 && c->abi == SIM_HYPERCALL_KVM && r->rax != KVM_HC_XEN_HVM_OP) {
        /* KVM's own convention (kvm_emulate_hypercall): a0..a3 in rbx, rcx, rdx, rsi. */
        c->nr = r->rax;
        uint64_t a[HCALL_MAX_ARGS] = {r->rbx, r->rcx, r->rdx, r->rsi, 0};
        memcpy(c->arg, a, sizeof(a));
    } else if (c->is64) {
        /* Xen's, which KVM_HC_XEN_HVM_OP copies: rdi, rsi, rdx, r10, r8. */
        c->nr = r->rax;
        uint64_t a[HCALL_MAX_ARGS] = {r->rdi, r->rsi, r->rdx, r->r10, r->r8};
        memcpy(c->arg, a, sizeof(a));
    } else {
        c->nr = (uint32_t)r->rax;
        uint64_t a[HCALL_MAX_ARGS] = {(uint32_t)r->rbx, (uint32_t)r->rcx, (uint32_t)r->rdx,
                                      (uint32_t)r->rsi, (uint32_t)r->rdi};
        memcpy(c->arg, a, sizeof(a));
    }
    return 0;
}

int hcall_dispatch(struct sim_domain *d, struct sim_vcpu *v, const struct cpu_insn *in)
{
    struct hcall_ctx ctx; /* sim_run's stack, never the engine's handler */
    struct hcall_ctx *c = &ctx;
    struct cpu_regs r;
    int rc = decode(c, d, v, &r);
    if (rc < 0)
        return rc;
    bool known_nr;
    c->desc = lookup(c->abi, c->nr, c->arg[0], &known_nr);
    int64_t ret;
    if (!c->desc) {
        ret = c->abi == SIM_HYPERCALL_KVM ? -KVM_ENOSYS : -ENOSYS;
        if (known_nr)
            sim_note(d, SIM_NOTE_ACTION, v->id, NULL,
                     "undeclared hypercall %" PRIu64 " sub-op %" PRIu64 " (%s ABI, %s) on vCPU %u at rip %#"
                     PRIx64 ": the guest gets %" PRId64 " (%s); see docs/adding-a-hypercall.md to declare it",
                     c->nr, c->arg[0], c->abi == SIM_HYPERCALL_KVM ? "KVM" : "Xen", c->is64 ? "64-bit" : "32-bit",
                     v->id, c->rip, ret, errno_name(ret));
        else
            sim_note(d, SIM_NOTE_ACTION, v->id, NULL,
                     "undeclared hypercall %" PRIu64 " (%s ABI, %s) on vCPU %u at rip %#" PRIx64
                     ": the guest gets %" PRId64 " (%s); see docs/adding-a-hypercall.md to declare it",
                     c->nr, c->abi == SIM_HYPERCALL_KVM ? "KVM" : "Xen", c->is64 ? "64-bit" : "32-bit",
                     v->id, c->rip, ret, errno_name(ret));
    } else {
        ret = run_entry(c);
        if (d->trace_hypercalls) {
            char call[200];
            format_call(call, sizeof(call), c);
            const char *en = errno_name(ret);
            sim_note(d, SIM_NOTE_HYPERCALL, v->id, NULL, "vCPU %u %s %s -> %" PRId64 "%s%s%s%s%s", v->id,
                     abi_name(c->abi), call, ret, en ? " (" : "", en ? en : "", en ? ")" : "",
                     c->wrote[0] ? "; wrote " : "", c->wrote);
        }
    }
    /* The result, the clobbers, and RIP past the instruction (the registers may have changed
     * under monitor_traps only through the client's later SET_REGISTERS, applied at resume). */
    if ((rc = cpu_get_regs(v->cpu, &r)) < 0)
        return sim_set_error(d, rc, "vCPU %u: %s", v->id, cpu_error(v->cpu));
    r.rax = c->is64 ? (uint64_t)ret : (uint32_t)ret;
    if (c->desc && c->desc->clobbers) {
        if (c->is64)
            r.rdx = r.r10 = r.r8 = r.r9 = HCALL_POISON64;
        else
            r.rdx = r.rsi = r.rdi = r.rbp = HCALL_POISON32;
    }
    r.rip = in->rip + in->len;
    if ((rc = cpu_set_regs(v->cpu, &r)) < 0)
        return sim_set_error(d, rc, "vCPU %u: %s", v->id, cpu_error(v->cpu));
    return 1;
}

int64_t hcall_invoke(struct sim_domain *d, unsigned vcpu, enum sim_hypercall_abi abi, bool is64,
                     uint64_t nr, const uint64_t args[HCALL_MAX_ARGS])
{
    struct hcall_ctx ctx;
    struct hcall_ctx *c = &ctx;
    struct cpu_regs r;
    if (vcpu >= d->nr_vcpus || decode(c, d, &d->vcpus[vcpu], &r) < 0)
        return -EINVAL;
    c->abi = abi;
    c->is64 = is64;
    c->nr = nr;
    memcpy(c->arg, args, sizeof(c->arg));
    bool known_nr;
    c->desc = lookup(abi, nr, args[0], &known_nr);
    if (!c->desc)
        return abi == SIM_HYPERCALL_KVM ? -KVM_ENOSYS : -ENOSYS;
    return run_entry(c);
}

/* ---- Controls -------------------------------------------------------------------------------- */

int sim_monitor_guest_request(struct sim_domain *d, bool enable, bool sync, bool allow_userspace)
{
    /* monitor_domctl, XEN_DOMCTL_MONITOR_EVENT_GUEST_REQUEST. */
    if (d->mon.guest_request == enable)
        return sim_set_error(d, -EEXIST, "guest_request is already %s (Xen: EEXIST)",
                             enable ? "enabled" : "disabled");
    d->mon.guest_request = enable;
    d->mon.guest_request_sync = sync;
    d->mon.guest_request_userspace = allow_userspace;
    return 0;
}

int sim_domain_shutdown_reason(const struct sim_domain *d)
{
    return d->shutdown ? d->shutdown_reason : -1;
}

void sim_set_hypercall_trace(struct sim_domain *d, bool on)
{
    d->trace_hypercalls = on;
}
