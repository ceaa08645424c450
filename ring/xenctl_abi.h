/*
 * ring/xenctl_abi.h — the control protocol between `vmisim serve` and the
 * drop-in libxenctrl / libxenevtchn / libxenforeignmemory (ring/xenlibs/).
 *
 * This is an ABI, shared by the simulator and clients in other processes; its
 * layout is frozen by the _Static_asserts below.  docs/xen-clients.md
 * describes it in prose.
 *
 * Transport: a unix stream socket (created 0600), one domain per socket.
 * Every message, either way, is a `struct xenctl_hdr` followed by `len`
 * payload bytes.  The client sends a request and waits for its response; the
 * server answers every request exactly once, in order, with the same op and
 * seq, rc = 0 or a negative errno (Xen's -E* as the hypercall would return
 * it; the libraries turn it into -1 and errno).  Descriptors travel with a
 * response as SCM_RIGHTS ancillary data on its first byte: the ring's three
 * (MONITOR_ENABLE, in the order of struct ring_fds) and the guest RAM memfd
 * (FOREIGN_MAP).  The server never accepts descriptors from a client.
 *
 * A request with a bad magic or protocol version, or a length above
 * XENCTL_MAX_PAYLOAD, gets an -EPROTO answer and the connection is closed
 * (the stream cannot be resynchronised).  A request of an unknown op gets
 * -ENOSYS, a payload of the wrong size -EINVAL, a domid other than the
 * socket's -ESRCH (Xen: no such domain); the connection stays open.
 */
#ifndef VMISIM_XENCTL_ABI_H
#define VMISIM_XENCTL_ABI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define XENCTL_MAGIC 0x58434d56u /* "VMCX" little-endian */
#define XENCTL_VERSION 1u
#define XENCTL_MAX_PAYLOAD 65536u
/* Pages per FOREIGN_MAP request (the libraries split larger maps). */
#define XENCTL_MAX_MAP_PAGES ((XENCTL_MAX_PAYLOAD - 8u) / 8u)

/* The socket when VMISIM_SOCKET is not set. */
#define XENCTL_DEFAULT_SOCKET "/tmp/vmisim.sock"

struct xenctl_hdr {
    uint32_t magic;   /* XENCTL_MAGIC */
    uint16_t version; /* XENCTL_VERSION */
    uint16_t op;      /* enum xenctl_op */
    uint32_t domid;   /* the domain the call is for */
    uint32_t seq;     /* chosen by the client, echoed by the server */
    int32_t rc;       /* response: 0 or -errno; request: 0 */
    uint32_t len;     /* payload bytes that follow */
};
_Static_assert(sizeof(struct xenctl_hdr) == 24, "header size");
_Static_assert(offsetof(struct xenctl_hdr, op) == 6, "op");
_Static_assert(offsetof(struct xenctl_hdr, domid) == 8, "domid");
_Static_assert(offsetof(struct xenctl_hdr, seq) == 12, "seq");
_Static_assert(offsetof(struct xenctl_hdr, rc) == 16, "rc");
_Static_assert(offsetof(struct xenctl_hdr, len) == 20, "len");

/* Request payload -> response payload, per op (empty when not named). */
enum xenctl_op {
    XENCTL_OP_GETINFO = 1,          /* -> xenctl_info */
    XENCTL_OP_MAX_GPFN = 2,         /* -> xenctl_u64 (the highest gfn) */
    XENCTL_OP_PAUSE = 3,
    XENCTL_OP_UNPAUSE = 4,
    XENCTL_OP_MONITOR_ENABLE = 5,   /* xenctl_u32 (ring interface version) -> xenctl_port, 3 fds */
    XENCTL_OP_MONITOR_DISABLE = 6,
    XENCTL_OP_MONITOR_CONTROL = 7,  /* xenctl_monitor */
    XENCTL_OP_SET_ACCESS_REQUIRED = 8, /* xenctl_u32 */
    XENCTL_OP_SET_MEM_ACCESS = 9,   /* xenctl_mem_access */
    XENCTL_OP_GET_MEM_ACCESS = 10,  /* xenctl_mem_access (gfn) -> xenctl_u32 */
    XENCTL_OP_DEBUG_CONTROL = 11,   /* xenctl_debug */
    XENCTL_OP_INJECT_TRAP = 12,     /* xenctl_trap */
    XENCTL_OP_ALTP2M = 13,          /* xenctl_altp2m -> xenctl_altp2m (view, access) */
    XENCTL_OP_VCPU_GETCONTEXT = 14, /* xenctl_u32 (vcpu) -> xenctl_vcpu_regs */
    XENCTL_OP_VCPU_SETCONTEXT = 15, /* xenctl_vcpu_regs */
    XENCTL_OP_FOREIGN_MAP = 16,     /* xenctl_map + gfns -> int64 per gfn, 1 fd */
    XENCTL_OP_MAX
};

struct xenctl_u32 {
    uint32_t value;
    uint32_t pad;
};
struct xenctl_u64 {
    uint64_t value;
};
_Static_assert(sizeof(struct xenctl_u32) == 8 && sizeof(struct xenctl_u64) == 8, "scalars");

struct xenctl_port {
    uint32_t port;    /* the simulator's (Xen's) event-channel port */
    uint32_t version; /* the ring's vm_event interface version */
};
_Static_assert(sizeof(struct xenctl_port) == 8, "port");

#define XENCTL_INFO_PAUSED 0x1u   /* the toolstack's pause count is > 0 */
#define XENCTL_INFO_SHUTDOWN 0x2u
#define XENCTL_INFO_CRASHED 0x4u
#define XENCTL_INFO_BLOCKED 0x8u  /* no vCPU can run */
#define XENCTL_INFO_RUNNING 0x10u /* some vCPU can run */
#define XENCTL_INFO_HVM 0x20u
#define XENCTL_INFO_HAP 0x40u
struct xenctl_info {
    uint32_t domid;
    uint32_t flags;           /* XENCTL_INFO_* */
    uint32_t shutdown_reason;
    uint32_t nr_vcpus;
    uint32_t nr_online_vcpus;
    uint32_t pad;
    uint64_t tot_pages, max_pages;
    uint64_t cpu_insns;       /* instructions the vCPUs ran */
};
_Static_assert(sizeof(struct xenctl_info) == 48, "info");
_Static_assert(offsetof(struct xenctl_info, tot_pages) == 24, "info");

enum xenctl_monitor_event {
    XENCTL_MON_WRITE_CTRLREG = 1,    /* index, enable, sync, bitmask, onchangeonly */
    XENCTL_MON_MOV_TO_MSR = 2,       /* index = msr, enable, onchangeonly */
    XENCTL_MON_SOFTWARE_BREAKPOINT = 3,
    XENCTL_MON_SINGLESTEP = 4,
    XENCTL_MON_DEBUG_EXCEPTIONS = 5, /* enable, sync */
    XENCTL_MON_CPUID = 6,
    XENCTL_MON_DESC_ACCESS = 7,
    XENCTL_MON_INGUEST_PAGEFAULT = 8, /* enable = "disable in-guest page-fault events" */
    XENCTL_MON_EMUL_UNIMPLEMENTED = 9,
    XENCTL_MON_GUEST_REQUEST = 10,   /* enable, sync, allow_userspace */
};
struct xenctl_monitor {
    uint32_t event;     /* enum xenctl_monitor_event */
    uint32_t index;     /* control register index or MSR */
    uint8_t enable, sync, onchangeonly, allow_userspace;
    uint32_t pad;
    uint64_t bitmask;
};
_Static_assert(sizeof(struct xenctl_monitor) == 24, "monitor");
_Static_assert(offsetof(struct xenctl_monitor, bitmask) == 16, "monitor");

struct xenctl_mem_access {
    uint64_t first_gfn; /* ~0: the default access */
    uint32_t nr;
    uint32_t access;    /* xenmem_access_t */
};
_Static_assert(sizeof(struct xenctl_mem_access) == 16, "mem_access");

struct xenctl_debug {
    uint32_t op;   /* XEN_DOMCTL_DEBUG_OP_SINGLE_STEP_OFF (0) / _ON (1) */
    uint32_t vcpu;
};
_Static_assert(sizeof(struct xenctl_debug) == 8, "debug");

struct xenctl_trap {
    uint32_t vcpu;
    uint8_t vector, type, insn_len, pad;
    uint32_t error_code; /* 0xffffffff: none (X86_EVENT_NO_EC) */
    uint32_t pad2;
    uint64_t cr2;
};
_Static_assert(sizeof(struct xenctl_trap) == 24, "trap");
_Static_assert(offsetof(struct xenctl_trap, cr2) == 16, "trap");

enum xenctl_altp2m_op {
    XENCTL_ALTP2M_SET_DOMAIN_STATE = 1, /* access = state */
    XENCTL_ALTP2M_CREATE_VIEW = 2,      /* access = default access -> view */
    XENCTL_ALTP2M_DESTROY_VIEW = 3,     /* view */
    XENCTL_ALTP2M_SWITCH_TO_VIEW = 4,   /* view */
    XENCTL_ALTP2M_SET_MEM_ACCESS = 5,   /* view, gfn, access */
    XENCTL_ALTP2M_GET_MEM_ACCESS = 6,   /* view, gfn -> access */
    XENCTL_ALTP2M_CHANGE_GFN = 7,       /* view, gfn (old), gfn2 (new; ~0 removes) */
    XENCTL_ALTP2M_GET_DOMAIN_STATE = 8, /* -> access = state */
};
struct xenctl_altp2m {
    uint32_t op;     /* enum xenctl_altp2m_op */
    uint16_t view;
    uint16_t pad;
    uint32_t access;
    uint32_t pad2;
    uint64_t gfn, gfn2;
};
_Static_assert(sizeof(struct xenctl_altp2m) == 32, "altp2m");
_Static_assert(offsetof(struct xenctl_altp2m, gfn) == 16, "altp2m");

/* The registers of xc_vcpu_getcontext's vcpu_guest_context_x86_64_t that vmisim has. */
struct xenctl_vcpu_regs {
    uint32_t vcpu;
    uint32_t pad;
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rip, rflags;
    uint64_t cr0, cr2, cr3, cr4, dr7;
    uint64_t fs_base, gs_base, shadow_gs;
    uint16_t cs, ss, ds, es, fs, gs;
    uint16_t pad3[2];
};
_Static_assert(sizeof(struct xenctl_vcpu_regs) == 8 + 26 * 8 + 16, "vcpu_regs");
_Static_assert(offsetof(struct xenctl_vcpu_regs, rip) == 136, "vcpu_regs");

/* FOREIGN_MAP: this header, then nr uint64_t gfns.  The answer: nr int64_t,
 * each the byte offset of the gfn's frame in the memfd sent with it, or -errno. */
struct xenctl_map {
    uint32_t nr;
    uint32_t prot; /* PROT_READ / PROT_WRITE */
};
_Static_assert(sizeof(struct xenctl_map) == 8, "map");

/*
 * Both ends send a message with one sendmsg that may go out in parts: after n
 * bytes went, the iovec array of `msg` is moved on past them (the rest of a
 * partly sent iovec stays).  One place for the arithmetic both ends need.
 */
static inline void xenctl_iov_advance(struct msghdr *msg, size_t n)
{
    while (n > 0 && msg->msg_iovlen) {
        if (n >= msg->msg_iov[0].iov_len) {
            n -= msg->msg_iov[0].iov_len;
            msg->msg_iov++;
            msg->msg_iovlen--;
        } else {
            msg->msg_iov[0].iov_base = (char *)msg->msg_iov[0].iov_base + n;
            msg->msg_iov[0].iov_len -= n;
            n = 0;
        }
    }
}

#endif
