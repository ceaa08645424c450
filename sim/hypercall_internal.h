/*
 * sim/hypercall_internal.h — the declared hypercall table (sim/hypercall.c),
 * modelled on Valgrind's syscall wrappers: each hypercall is declared once
 * with its ABI, number, name, arguments, a *pre* step (decode, check every
 * guest buffer it will read, copy it in), the call itself, and a *post* step
 * that records what it wrote.  An undeclared hypercall returns -ENOSYS to the
 * guest with one log line pointing at docs/adding-a-hypercall.md.
 */
#ifndef VMISIM_HYPERCALL_INTERNAL_H
#define VMISIM_HYPERCALL_INTERNAL_H

#include "sim_internal.h"

#define HCALL_MAX_ARGS 5
/* Written into the registers a hypercall declares clobbered (KVM_HC_XEN_HVM_OP). */
#define HCALL_POISON64 0xdeadbeefdeadbeefull
#define HCALL_POISON32 0xdeadbeefull
/* Guest bytes one hypercall may read (console_io's buffer is cut there, see the guide). */
#define HCALL_BUF_MAX 4096u

enum hcall_arg_kind {
    HCALL_ARG_INT, /* printed in hex */
    HCALL_ARG_OP,  /* a sub-operation number: printed as name(number) */
    HCALL_ARG_PTR, /* a guest-linear pointer, read through the guest's page walk */
    HCALL_ARG_LEN, /* a byte count, printed in decimal */
};

struct hcall_arg {
    const char *name;
    enum hcall_arg_kind kind;
};

/* One call in progress: the Valgrind "ARGn" and "SET_STATUS" of a wrapper. */
struct hcall_ctx {
    struct sim_domain *d;
    struct sim_vcpu *v;
    enum sim_hypercall_abi abi;
    bool is64;                 /* the 64-bit convention (CS.L in long mode) */
    unsigned cpl;
    uint64_t rip;
    uint64_t nr;
    uint64_t arg[HCALL_MAX_ARGS];
    const struct hcall_desc *desc;
    uint8_t buf[HCALL_BUF_MAX];/* what pre copied in from the guest */
    uint32_t buf_len;
    char wrote[160];           /* post: what the hypercall wrote, for the trace */
};

struct hcall_desc {
    unsigned abis;             /* 1u << SIM_HYPERCALL_XEN | 1u << SIM_HYPERCALL_KVM */
    uint64_t nr;
    const char *name;
    bool has_op;               /* arg 0 is a sub-operation: the entry is for `op` only */
    uint64_t op;
    const char *op_name;
    unsigned nargs;
    struct hcall_arg args[HCALL_MAX_ARGS];
    bool clobbers;             /* KVM: rdx, r10, r8, r9 (32-bit: edx, esi, edi, ebp) poisoned */
    /* Checks and copies in: 0, or the negative error the guest gets (nothing happens). */
    int64_t (*pre)(struct hcall_ctx *c);
    /* The hypercall itself: its result (0 or a negative errno). */
    int64_t (*call)(struct hcall_ctx *c);
    /* Only after success: records what it wrote (guest memory, registers) in c->wrote. */
    void (*post)(struct hcall_ctx *c);
};

/* __HYPERVISOR_vcpu_op (sim/vcpu_op.c). */
int64_t hcall_pre_vcpu_initialise(struct hcall_ctx *c);
int64_t hcall_call_vcpu_initialise(struct hcall_ctx *c);
int64_t hcall_call_vcpu_up(struct hcall_ctx *c);
int64_t hcall_call_vcpu_down(struct hcall_ctx *c);
int64_t hcall_call_vcpu_is_up(struct hcall_ctx *c);

/* The table and its size (for tests and the guide). */
extern const struct hcall_desc hcall_table[];
extern const size_t hcall_table_len;

/* The ABI's VMCALL/VMMCALL intercept mask (1u << CPU_INSN_*): 0 for SIM_HYPERCALL_NONE. */
uint32_t hcall_intercept_mask(enum sim_hypercall_abi abi);
/* Does this intercepted instruction make a hypercall in the domain's ABI? */
bool hcall_is_hypercall(const struct sim_domain *d, const struct cpu_insn *in);
/*
 * The hypercall at an intercepted VMCALL/VMMCALL: decode with the ABI, look
 * it up, pre / call / post, result in RAX, clobbers, RIP past the instruction.
 * Returns the instructions completed (1) or -errno for a simulator failure.
 */
int hcall_dispatch(struct sim_domain *d, struct sim_vcpu *v, const struct cpu_insn *in);
/*
 * The same with the arguments given (tests): nr and args as the ABI would
 * decode them, the vCPU's CPL and page tables apply.  Returns the guest's
 * result; registers are not touched.
 */
int64_t hcall_invoke(struct sim_domain *d, unsigned vcpu, enum sim_hypercall_abi abi, bool is64,
                     uint64_t nr, const uint64_t args[HCALL_MAX_ARGS]);
/* Copies len bytes from guest-linear gla through the vCPU's page walk: 0 or -EFAULT. */
int hcall_read_guest(struct hcall_ctx *c, uint64_t gla, void *out, uint32_t len);

#endif
