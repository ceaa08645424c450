/*
 * sim/scenario_internal.h — scenario files: loading and validating them.
 *
 * A scenario file (YAML; docs/scenario-format.md) describes a guest, the
 * p2m and monitor set-up, a scripted client (which events it expects, how it
 * answers each) and the final assertions.  scenario_load/scenario_parse turn
 * one into a `struct scenario`, checked completely: the runner may trust
 * every value (ranges, alignment, overlaps) and need not re-validate.
 *
 * Every element a runner's message may point at (a mapping, a register
 * value, one field of an event matcher, a final assertion) keeps the `line`
 * and `column` where it was written (1-based, as editors show them), so the
 * runner can say "x.yaml:20:9: expected gfn 0x200, got 0x201" with `file`.
 *
 * Functions return 0 or a negative errno: -EINVAL for a bad file (with one
 * message, `FILE:LINE:COLUMN: what is wrong; what was expected`), -ENOENT,
 * -EIO, ... for I/O (message `FILE: cannot read: <strerror>`), -ENOMEM.
 * Nothing here keeps global state.
 */
#ifndef VMISIM_SCENARIO_INTERNAL_H
#define VMISIM_SCENARIO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inject_internal.h"

/* ---- Limits (a file beyond one is an error, with the limit named) -------- */

#define SCENARIO_MAX_FILE_SIZE (4u << 20)         /* bytes of YAML */
#define SCENARIO_MIN_MEMORY (64u << 10)
#define SCENARIO_MAX_MEMORY (1u << 30)
#define SCENARIO_MAX_VCPUS 64u
#define SCENARIO_MAX_EVENTS 10000u                /* client events, repeats counted */
#define SCENARIO_MAX_CODE (1u << 20)              /* bytes of guest.code / code_bytes */
#define SCENARIO_MAX_HEX_BYTES (1u << 20)         /* bytes in one hex byte string */
#define SCENARIO_MAX_INSTRUCTIONS 10000000000ull  /* limits.instructions */
#define SCENARIO_DEFAULT_INSTRUCTIONS 1000000ull
#define SCENARIO_MAX_DEPTH 16u                    /* YAML nesting (the format needs 6) */
#define SCENARIO_MAX_NODES 1000000u               /* YAML nodes in the file */
#define SCENARIO_MAX_HYPERVISOR_STEPS INJECT_MAX_STEPS /* hypervisor: steps (10,000) */

/* ---- Names the runner can reuse for printing ----------------------------- */

/* vm_event reasons (VM_EVENT_REASON_*, Xen's values). */
enum scenario_reason {
    SCENARIO_REASON_UNKNOWN = 0,
    SCENARIO_REASON_MEM_ACCESS = 1,
    SCENARIO_REASON_MEM_SHARING = 2,
    SCENARIO_REASON_MEM_PAGING = 3,
    SCENARIO_REASON_WRITE_CTRLREG = 4,
    SCENARIO_REASON_MOV_TO_MSR = 5,
    SCENARIO_REASON_SOFTWARE_BREAKPOINT = 6,
    SCENARIO_REASON_SINGLESTEP = 7,
    SCENARIO_REASON_GUEST_REQUEST = 8,
    SCENARIO_REASON_DEBUG_EXCEPTION = 9,
    SCENARIO_REASON_CPUID = 10,
    SCENARIO_REASON_PRIVILEGED_CALL = 11,
    SCENARIO_REASON_INTERRUPT = 12,
    SCENARIO_REASON_DESCRIPTOR_ACCESS = 13,
    SCENARIO_REASON_EMUL_UNIMPLEMENTED = 14,
    SCENARIO_REASON_VMEXIT = 15,
    SCENARIO_REASON_IO_INSTRUCTION = 16,
    SCENARIO_REASON_COUNT
};
/* "MEM_ACCESS"; NULL for a value >= SCENARIO_REASON_COUNT. */
const char *scenario_reason_name(unsigned reason);

/* Request/response flags: bit numbers of VM_EVENT_FLAG_* (mask = 1u << bit). */
enum scenario_flag {
    SCENARIO_FLAG_VCPU_PAUSED = 0,
    SCENARIO_FLAG_FOREIGN,
    SCENARIO_FLAG_EMULATE,
    SCENARIO_FLAG_EMULATE_NOWRITE,
    SCENARIO_FLAG_TOGGLE_SINGLESTEP,
    SCENARIO_FLAG_SET_EMUL_READ_DATA,
    SCENARIO_FLAG_DENY,
    SCENARIO_FLAG_ALTERNATE_P2M,
    SCENARIO_FLAG_SET_REGISTERS,
    SCENARIO_FLAG_SET_EMUL_INSN_DATA,
    SCENARIO_FLAG_GET_NEXT_INTERRUPT,
    SCENARIO_FLAG_FAST_SINGLESTEP,
    SCENARIO_FLAG_NESTED_P2M,
    SCENARIO_FLAG_RESET_VMTRACE,
    SCENARIO_FLAG_RESET_FORK_STATE,
    SCENARIO_FLAG_RESET_FORK_MEMORY,
    SCENARIO_FLAG_COUNT
};
/* "VCPU_PAUSED" for bit 0; NULL for bit >= SCENARIO_FLAG_COUNT. */
const char *scenario_flag_name(unsigned bit);

/* Access types: xenmem_access_t of Xen 4.17 (<xen/memory.h>), numeric values. */
enum scenario_access {
    SCENARIO_ACCESS_N = 0,
    SCENARIO_ACCESS_R = 1,
    SCENARIO_ACCESS_W = 2,
    SCENARIO_ACCESS_RW = 3,
    SCENARIO_ACCESS_X = 4,
    SCENARIO_ACCESS_RX = 5,
    SCENARIO_ACCESS_WX = 6,
    SCENARIO_ACCESS_RWX = 7,
    SCENARIO_ACCESS_RX2RW = 8,
    SCENARIO_ACCESS_N2RWX = 9,
    SCENARIO_ACCESS_DEFAULT = 10,
    SCENARIO_ACCESS_COUNT
};
/* "rx2rw"; NULL for a value >= SCENARIO_ACCESS_COUNT. */
const char *scenario_access_name(unsigned access);

/* Registers, in the order the format lists them. */
enum scenario_reg {
    SCENARIO_REG_RAX, SCENARIO_REG_RBX, SCENARIO_REG_RCX, SCENARIO_REG_RDX,
    SCENARIO_REG_RSI, SCENARIO_REG_RDI, SCENARIO_REG_RBP, SCENARIO_REG_RSP,
    SCENARIO_REG_R8, SCENARIO_REG_R9, SCENARIO_REG_R10, SCENARIO_REG_R11,
    SCENARIO_REG_R12, SCENARIO_REG_R13, SCENARIO_REG_R14, SCENARIO_REG_R15,
    SCENARIO_REG_RIP, SCENARIO_REG_RFLAGS,
    SCENARIO_REG_CR0, SCENARIO_REG_CR2, SCENARIO_REG_CR3, SCENARIO_REG_CR4,
    SCENARIO_REG_DR7, SCENARIO_REG_EFER, SCENARIO_REG_STAR, SCENARIO_REG_LSTAR,
    SCENARIO_REG_CSTAR, SCENARIO_REG_SFMASK,
    SCENARIO_REG_SYSENTER_CS, SCENARIO_REG_SYSENTER_ESP, SCENARIO_REG_SYSENTER_EIP,
    SCENARIO_REG_FS_BASE, SCENARIO_REG_GS_BASE, SCENARIO_REG_SHADOW_GS,
    SCENARIO_REG_XCR0,
    SCENARIO_REG_COUNT
};
/*
 * p2m types (p2m_type_t of Xen 4.17, as u.mem_paging.p2mt and
 * u.mem_sharing.p2mt carry them): ram_rw 0, invalid 1, ... ram_paging_out 9,
 * ram_paged 10, ram_paging_in 11, ram_shared 12 ... ioreq_server 15.
 */
#define SCENARIO_P2MT_COUNT 16u
/* "ram_paged" for 10; NULL for a value >= SCENARIO_P2MT_COUNT. */
const char *scenario_p2mt_name(unsigned p2mt);

/* u.mem_paging.flags (MEM_PAGING_*): bit numbers. */
enum scenario_paging_flag {
    SCENARIO_PAGING_DROP_PAGE = 0,  /* MEM_PAGING_DROP_PAGE (1) */
    SCENARIO_PAGING_EVICT_FAIL = 1, /* MEM_PAGING_EVICT_FAIL (2) */
    SCENARIO_PAGING_FLAG_COUNT
};
/* "DROP_PAGE" for bit 0; NULL for bit >= SCENARIO_PAGING_FLAG_COUNT. */
const char *scenario_paging_flag_name(unsigned bit);

/* "rax"; NULL for a value >= SCENARIO_REG_COUNT. */
const char *scenario_reg_name(unsigned reg);
/* The register called `name` (exact, lower case), or -1. */
int scenario_reg_lookup(const char *name);

/* ---- The model ----------------------------------------------------------- */

enum scenario_mode {
    SCENARIO_MODE_LONG,  /* 64-bit long mode, 4-level paging ("long") */
    SCENARIO_MODE_PAE32, /* 32-bit protected mode, PAE paging ("pae32") */
};

/* A byte string from a hex string ("48 89 03 f4"); `len` >= 1 when present. */
struct scenario_bytes {
    uint8_t *data;
    size_t len;
};

/* One register value. */
struct scenario_reg_value {
    enum scenario_reg reg;
    uint64_t value;
    uint32_t line, column; /* of the value */
};

struct scenario_regs {
    struct scenario_reg_value *v; /* in file order, each register at most once */
    size_t n;
};

/* An optional number with its position (set == false: not given). */
struct scenario_opt {
    bool set;
    uint64_t value;
    uint32_t line, column;
};

/* Page-table rights of a mapping (r is always present). */
#define SCENARIO_RIGHT_R 1u
#define SCENARIO_RIGHT_W 2u
#define SCENARIO_RIGHT_X 4u
#define SCENARIO_RIGHT_U 8u /* user-accessible */

/* guest.mappings[i]: gla..gla+size-1 -> gpa..gpa+size-1, with `page`-sized pages. */
struct scenario_mapping {
    uint64_t gla, gpa, size;
    unsigned rights; /* SCENARIO_RIGHT_* */
    uint64_t page;   /* 4096, 2 MiB or 1 GiB */
    uint32_t line, column;
};

/* guest.data[i], final.memory[i]: bytes at a guest-physical address. */
struct scenario_data {
    uint64_t gpa;
    struct scenario_bytes bytes;
    uint32_t line, column;
};

/*
 * p2m.access[i], respond.set_access[i], altp2m.views[i].access[k]: gfns
 * [gfn, gfn+count) get `access`.  respond.altp2m_access[i] also names the
 * view (`view`: 0 is the host p2m); elsewhere view is 0.
 */
struct scenario_access_range {
    uint64_t gfn, count;
    enum scenario_access access;
    uint32_t view;
    uint32_t line, column;
};

/* ---- altp2m (xc_altp2m_*, HVM_PARAM_ALTP2M) ---------------------------- */

/* HVM_PARAM_ALTP2M's modes (enum sim_altp2m_mode's values; disabled is no section). */
enum scenario_altp2m_mode {
    SCENARIO_ALTP2M_MIXED = 1,
    SCENARIO_ALTP2M_EXTERNAL = 2,
    SCENARIO_ALTP2M_LIMITED = 3,
};

/* `to` of a change_gfn that removes the view's entry (INVALID_GFN, written `none`). */
#define SCENARIO_INVALID_GFN (~(uint64_t)0)

/*
 * altp2m.views[i].change_gfn[k] (view = i + 1) and respond.change_gfn[k]:
 * xc_altp2m_change_gfn(view, gfn, to): in the view, gfn shows to's frame;
 * to == SCENARIO_INVALID_GFN removes gfn's entry.  Both gfns below
 * guest.memory / 4K; view 1 to the number of views (never 0: the host p2m).
 */
struct scenario_change_gfn {
    uint32_t view;
    uint64_t gfn, to;
    uint32_t line, column; /* of the item */
};

/* altp2m.views[i]: view i + 1, created in order (xc_altp2m_create_view). */
struct scenario_altp2m_view {
    enum scenario_access default_access; /* default rwx; never SCENARIO_ACCESS_DEFAULT */
    bool copy;                             /* default_access: copy (sim_altp2m_create_view_copy) */
    struct scenario_change_gfn *change_gfn; /* xc_altp2m_change_gfn, in order, first */
    size_t nr_change_gfn;
    /* then xc_altp2m_set_mem_access, in order (so a remapped gfn gets its own access, as
     * DRAKVUF sets it after the remap) */
    struct scenario_access_range *access;
    size_t nr_access;
    bool visible;                          /* default true (xc_altp2m_set_visibility) */
    uint32_t line, column;
};

/* altp2m.vcpus[i]: vCPU `vcpu` starts on view `view` (per vCPU; visibility not needed). */
struct scenario_vcpu_view {
    uint32_t vcpu;         /* < guest.vcpus, each once */
    uint32_t view;         /* <= nr_views */
    uint32_t line, column; /* of the item */
};

/*
 * The altp2m section: the mode, then xc_altp2m_set_domain_state(1), the
 * views (each created, its gfns remapped, its access set, its visibility
 * set), then the start views: `view` for every vCPU (switch_to_view: a
 * visible view), then `vcpus` per vCPU.
 */
struct scenario_altp2m {
    bool given;
    enum scenario_altp2m_mode mode;        /* required */
    struct scenario_altp2m_view *views;    /* views[i] is view i + 1; at most 9 */
    size_t nr_views;
    struct scenario_opt view;              /* every vCPU's start view; not set: view 0 */
    struct scenario_vcpu_view *vcpus;
    size_t nr_vcpus;
    uint32_t line, column;
};
#define SCENARIO_MAX_ALTP2M_VIEWS 9u /* views besides view 0 (Xen 4.17's MAX_ALTP2M is 10) */

/* guest.hypercalls: the hypercall interface (enum sim_hypercall_abi's values). */
enum scenario_hypercalls {
    SCENARIO_HYPERCALLS_NONE = 0, /* VMCALL/VMMCALL raise #UD */
    SCENARIO_HYPERCALLS_XEN = 1,  /* the default */
    SCENARIO_HYPERCALLS_KVM = 2,
};

struct scenario_guest {
    enum scenario_mode mode;
    enum scenario_hypercalls hypercalls;
    uint64_t memory; /* bytes: a multiple of 4K, 64K..1G */
    uint32_t vcpus;  /* 1..64 */
    uint32_t online; /* 1..vcpus: vCPUs up at boot (the rest start down, Xen's _VPF_down) */
    /*
     * Exactly one of: `code` (nasm source, NUL-terminated, `code_len` bytes;
     * the runner prepends `bits 64`/`bits 32` and `org ENTRY`) or
     * `code_bytes` (machine code).  The other is NULL / empty.
     */
    char *code;
    size_t code_len;
    struct scenario_bytes code_bytes;
    uint32_t code_line, code_column; /* of the value (the '|' of a block scalar) */
    uint32_t code_first_line; /* the file's line holding the code's first line: the line
                                 after '|' or '>' for a block scalar, else code_line */
    uint64_t entry; /* guest-linear; inside one of the mappings */
    uint64_t entry_gpa; /* where `entry` maps to: the code is loaded there */
    uint32_t entry_line, entry_column;
    struct scenario_mapping *mappings; /* >= 1, gla ranges disjoint */
    size_t nr_mappings;
    struct scenario_data *data;
    size_t nr_data;
    struct scenario_regs registers; /* never contains rip (that is `entry`) */
    uint32_t *singlestep;  /* vCPUs with single-step on from the start (each < vcpus, once) */
    size_t nr_singlestep;
    struct scenario_opt idt_handler; /* gla: an IDT whose 32 gates all point there */
    uint32_t line, column;
};

struct scenario_p2m {
    enum scenario_access default_access; /* never SCENARIO_ACCESS_DEFAULT */
    struct scenario_access_range *access;
    size_t nr_access;
};

/* monitor.write_ctrlreg[i]: xc_monitor_write_ctrlreg(index, 1, sync, mask, onchangeonly). */
struct scenario_ctrlreg {
    uint32_t index;       /* 0 cr0, 1 cr3, 2 cr4, 3 xcr0 (VM_EVENT_X86_*); each at most once */
    bool sync;            /* default true */
    bool onchangeonly;    /* default false */
    uint64_t mask;        /* default 0 */
    uint32_t line, column;
};

/* monitor.mov_to_msr[i]: xc_monitor_mov_to_msr(msr, 1, onchangeonly). */
struct scenario_msr {
    uint32_t msr;         /* in 0-0x1fff, 0x40000000-0x40001fff or 0xc0000000-0xc0001fff; once */
    bool onchangeonly;
    uint32_t line, column;
};

struct scenario_monitor {
    bool ring;            /* a vm_event monitor ring (xc_monitor_enable) */
    uint32_t version;     /* 1 or 7 */
    bool access_required; /* xc_domain_set_access_required */
    struct scenario_ctrlreg *write_ctrlreg;
    size_t nr_write_ctrlreg;
    struct scenario_msr *mov_to_msr;
    size_t nr_mov_to_msr;
    bool software_breakpoint;      /* xc_monitor_software_breakpoint */
    bool singlestep;               /* xc_monitor_singlestep */
    bool control_register_deferral; /* XEN_DOMCTL_MONITOR_OP_CONTROL_REGISTERS (op 4) */
    /* xc_monitor_guest_request(1, sync, allow_userspace) when guest_request. */
    bool guest_request, guest_request_sync, guest_request_userspace;
    uint32_t guest_request_line, guest_request_column;
};

/* paging.nominate[i], paging.evict[i]: one gfn. */
struct scenario_gfn {
    uint64_t gfn;          /* below guest.memory / 4K */
    uint32_t line, column; /* of the value */
};

/*
 * The paging ring and the pager's work before the guest runs
 * (xc_mem_paging_enable, xc_mem_paging_nominate, xc_mem_paging_evict).
 */
struct scenario_paging {
    bool given;           /* a `paging` section was written */
    bool ring;            /* the paging ring stays enabled while the guest runs (default true) */
    uint32_t version;     /* 1 or 7; default monitor.version */
    struct scenario_gfn *nominate; /* in file order, each gfn once */
    size_t nr_nominate;
    struct scenario_gfn *evict;    /* each also in nominate, each once */
    size_t nr_evict;
    uint32_t line, column;
};

/* sharing.share[i]: xc_memshr_share_gfns(source, client) after nominating both. */
struct scenario_share {
    uint64_t source, client; /* two different gfns below guest.memory / 4K */
    uint32_t line, column;   /* of the item */
};

/*
 * Memory sharing and its ring, set up before the guest runs
 * (xc_memshr_control, xc_memshr_ring_enable, xc_memshr_nominate_gfn,
 * xc_memshr_share_gfns, xc_domain_setmaxmem).
 */
struct scenario_sharing {
    bool given;           /* a `sharing` section was written (sharing is then on) */
    bool ring;            /* the sharing ring is enabled (default true) */
    uint32_t version;     /* 1 or 7; default monitor.version */
    struct scenario_share *share; /* in file order */
    size_t nr_share;
    /* max_pages: set: a number (`max_pages`) or, with max_pages_tot, the domain's
     * tot_pages after the shares (written `tot_pages`). */
    struct scenario_opt max_pages;
    bool max_pages_tot;
    uint32_t line, column;
};

/*
 * One field of an event matcher.  An event matches when every field of the
 * matcher holds.  What `value` is compared with:
 */
enum scenario_match_field {
    SCENARIO_MATCH_REASON,     /* reason == value */
    SCENARIO_MATCH_VCPU,       /* vcpu_id == value */
    SCENARIO_MATCH_FLAGS,      /* (flags & value) == value: all listed flags set */
    SCENARIO_MATCH_ALTP2M_IDX, /* altp2m_idx == value */
    SCENARIO_MATCH_GFN,        /* the event's gfn (u.mem_access.gfn for MEM_ACCESS) == value */
    SCENARIO_MATCH_OFFSET,     /* u.mem_access.offset == value (<= 0xfff) */
    SCENARIO_MATCH_GLA,        /* u.mem_access.gla == value */
    SCENARIO_MATCH_ACCESS,     /* (u.mem_access.flags & 7) == value (MEM_ACCESS_R|W|X bits) */
    SCENARIO_MATCH_GLA_VALID,  /* !!(u.mem_access.flags & MEM_ACCESS_GLA_VALID) == value */
    SCENARIO_MATCH_FAULT,      /* (u.mem_access.flags & 0x30) == value: 0x10 with_gla,
                                  0x20 in_gpt, 0 none */
    SCENARIO_MATCH_REG,        /* the request's register `reg` == value */
    SCENARIO_MATCH_INDEX,      /* u.write_ctrlreg.index == value (0 cr0, 1 cr3, 2 cr4, 3 xcr0) */
    SCENARIO_MATCH_NEW_VALUE,  /* new_value of WRITE_CTRLREG or MOV_TO_MSR */
    SCENARIO_MATCH_OLD_VALUE,  /* old_value of WRITE_CTRLREG or MOV_TO_MSR */
    SCENARIO_MATCH_MSR,        /* u.mov_to_msr.msr == value */
    SCENARIO_MATCH_INSN_LENGTH, /* insn_length (SOFTWARE_BREAKPOINT, DEBUG_EXCEPTION) */
    SCENARIO_MATCH_TYPE,       /* type (SOFTWARE_BREAKPOINT, DEBUG_EXCEPTION) */
    SCENARIO_MATCH_P2MT,       /* u.mem_paging.p2mt (u.mem_sharing.p2mt for MEM_SHARING) */
    SCENARIO_MATCH_PAGING_FLAGS, /* u.mem_paging.flags == value (MEM_PAGING_* mask, exact) */
    SCENARIO_MATCH_FIELD_COUNT
};
/* The key as written in the file ("gla_valid"; "regs" for SCENARIO_MATCH_REG). */
const char *scenario_match_field_name(unsigned field);

struct scenario_match {
    enum scenario_match_field field;
    enum scenario_reg reg; /* SCENARIO_MATCH_REG only */
    uint64_t value;
    uint32_t line, column; /* of the value */
};

/* What the scripted client answers to one event. */
struct scenario_response {
    bool no_response;       /* never answer (then every other field is default) */
    uint32_t flags;         /* VM_EVENT_FLAG_* mask; default VCPU_PAUSED */
    struct scenario_opt altp2m_idx;     /* <= 0xffff */
    /* data.emul.read: `emul_read_data` (at most the ring version's capacity:
     * 340 bytes for v7, 252 for v1); the size field is emul_read_size if set,
     * else the data's length. */
    struct scenario_bytes emul_read_data;
    struct scenario_opt emul_read_size; /* <= 0xffffffff */
    struct scenario_access_range *set_access; /* applied before answering */
    size_t nr_set_access;
    struct scenario_regs registers;     /* data.regs.x86 (for SET_REGISTERS) */
    bool echo;                          /* copy the request's payload (default true) */
    struct scenario_opt version;        /* override the version field */
    struct scenario_opt vcpu_id;        /* override the vcpu_id field */
    uint32_t defer; /* hold the answer until this many further events arrived */
    /* xc_hvm_inject_trap before answering (set: inject.vector given). */
    struct {
        bool set;
        uint32_t vector;                /* 0-255 */
        struct scenario_opt type;       /* 0-7; default 6 (SW exception) for 3 and 4, else 3 */
        struct scenario_opt error_code; /* <= 0xffffffff; default none */
        struct scenario_opt insn_length; /* <= 15; default the request's insn_length */
        struct scenario_opt cr2;        /* default 0 */
        uint32_t line, column;
    } inject;
    /*
     * The pager (MEM_PAGING events only): `load` calls xc_mem_paging_load for
     * the request's gfn just before the answer goes out, with `load_bytes`
     * (then zeros to 4K) when given, else the page as the runner saved it at
     * eviction.  `paging_flags` (set: given) replaces the echoed
     * u.mem_paging.flags (MEM_PAGING_* mask).
     */
    bool load;
    uint32_t load_line, load_column;
    struct scenario_bytes load_bytes;   /* at most 4096 bytes; only with load */
    struct scenario_opt paging_flags;
    /*
     * The sharing helper (MEM_SHARING events only): xc_domain_setmaxmem just
     * before the answer goes out, to `max_pages` pages, or to the domain's
     * max_pages + `add_pages`.  At most one of the two is set.
     */
    struct scenario_opt max_pages, add_pages;
    /*
     * altp2m calls the client makes before answering (only with an altp2m
     * section): xc_altp2m_set_mem_access per gfn of each range (its `view`),
     * then xc_altp2m_change_gfn for each item, in order.
     */
    struct scenario_access_range *altp2m_access;
    size_t nr_altp2m_access;
    struct scenario_change_gfn *change_gfn;
    size_t nr_change_gfn;
    /*
     * `snapshot: take`: the client snapshots the whole machine (sim_snapshot_take)
     * and its own side of the ring as it was before it took this request, then
     * answers as scripted.  `snapshot: restore`: it puts both back instead of
     * answering (no other key), so the request of the `take` arrives again.
     */
    enum scenario_snapshot { SCENARIO_SNAPSHOT_NONE, SCENARIO_SNAPSHOT_TAKE, SCENARIO_SNAPSHOT_RESTORE } snapshot;
    uint32_t line, column; /* of `respond` (of the event item when absent) */
};

/* client.events[i]: expect one event (`repeat` times in a row), answer it. */
struct scenario_event {
    char *name;                   /* NULL when not given */
    uint32_t repeat;              /* 1..10000 */
    struct scenario_match *match; /* empty: any event matches */
    size_t nr_match;
    struct scenario_response response;
    uint32_t line, column;        /* of the item */
};

enum scenario_order {
    SCENARIO_ORDER_SEQUENCE, /* events arrive in the listed order */
    SCENARIO_ORDER_SET,      /* in any order, each (each repetition) once */
};

struct scenario_client {
    enum scenario_order order;
    struct scenario_event *events;
    size_t nr_events;
    uint64_t nr_expected; /* sum of the events' repeat counts (<= 10000) */
    uint32_t line, column;
};

enum scenario_end {
    SCENARIO_END_ANY,     /* final.guest not given */
    SCENARIO_END_HALTED,  /* every vCPU executed hlt ... */
    SCENARIO_END_LIMIT,   /* the instruction budget ran out */
    SCENARIO_END_CRASHED, /* the domain was crashed */
    SCENARIO_END_FAULT,   /* an undeliverable guest exception */
    SCENARIO_END_BLOCKED, /* every vCPU waits (for a response, a ring slot) and nothing
                             else can happen, e.g. after no_response */
    SCENARIO_END_SHUTDOWN, /* the guest shut the domain down (SCHEDOP_shutdown) */
};
/* "halted"; NULL for an unknown value (and for SCENARIO_END_ANY). */
const char *scenario_end_name(unsigned end);

/* final.registers (as vcpu 0) and final.vcpus[i]. */
struct scenario_final_vcpu {
    uint32_t vcpu; /* < guest.vcpus; each vcpu at most once */
    struct scenario_regs registers;
    struct scenario_opt view; /* final.view (vcpu 0) / final.vcpus[i].view: its altp2m view */
    uint32_t line, column;
};

/* final.paging[i] and final.p2mt[i] (one list, paging's items first): the gfn's p2m type at the end. */
struct scenario_final_paging {
    uint64_t gfn;
    uint32_t p2mt;         /* SCENARIO_P2MT numbering (Xen's p2m_type_t) */
    uint32_t line, column; /* of the item */
};

/* final.event_counts: `count` events of `reason`. */
struct scenario_event_count {
    enum scenario_reason reason;
    uint64_t count;
    uint32_t line, column; /* of the count */
};

struct scenario_final {
    enum scenario_end guest;
    uint32_t guest_line, guest_column;
    struct scenario_final_vcpu *vcpus;
    size_t nr_vcpus;
    struct scenario_data *memory; /* memory must equal these bytes */
    size_t nr_memory;
    struct scenario_opt events;   /* total number of events */
    struct scenario_event_count *event_counts;
    size_t nr_event_counts;
    struct scenario_opt shutdown_reason; /* SHUTDOWN_* value (0 poweroff .. 5 soft_reset, <= 255) */
    struct scenario_final_paging *paging; /* final.paging, then final.p2mt */
    size_t nr_paging;
    struct scenario_opt tot_pages, max_pages; /* the domain's page counts at the end */
    struct scenario_opt mapped; /* final.introspector only: sim_kvmi_nr_mapped */
    /* final.introspector: the second domain's state (guest, registers, vcpus, memory,
     * shutdown_reason, mapped only); NULL when not given. */
    struct scenario_final *introspector;
};

/*
 * The introspector: a second domain with its own guest, using the KVM
 * hypercall ABI, that may map pages of the main guest with KVM_HC_MEM_MAP.
 * The runner issues a map token (sim_kvmi_get_map_token(main, introspector))
 * and writes its 32 bytes at token_gpa in the introspector's memory.
 */
struct scenario_introspector {
    bool given;
    struct scenario_guest guest; /* hypercalls is always KVM; no singlestep */
    struct scenario_opt token_gpa; /* token_gpa + 32 <= guest.memory */
    uint32_t line, column;
};

/*
 * The hypervisor section: steps the hypervisor performs by itself, in file
 * order (sim/inject.c runs them; inject_internal.h says when each fires).
 * Each step's line and column are those of its item; a write step's bytes
 * live in the scenario.  Checked: every vcpu below guest.vcpus, every write
 * within guest memory, only the payload keys the reason carries (each value
 * within its wire width), never MEM_PAGING or MEM_SHARING.
 */
struct scenario_hypervisor {
    bool given;
    struct inject_step *steps;
    size_t nr_steps;       /* <= SCENARIO_MAX_HYPERVISOR_STEPS */
    uint32_t line, column; /* of the list */
};

struct scenario_arena;

struct scenario {
    char *file;        /* the file name given (for messages) */
    char *name;        /* `name`, or the file name without directory and .yaml */
    char *description; /* NULL when not given */
    struct scenario_guest guest;
    struct scenario_p2m p2m;
    struct scenario_monitor monitor;
    struct scenario_paging paging;
    struct scenario_sharing sharing;
    struct scenario_introspector introspector;
    struct scenario_altp2m altp2m;
    bool has_client;   /* a `client` section was given */
    struct scenario_client client;
    struct scenario_final final;
    struct scenario_hypervisor hypervisor;
    uint64_t instruction_limit; /* limits.instructions */
    struct scenario_arena *arena; /* private: owns every allocation above */
};

/* ---- API ----------------------------------------------------------------- */

/*
 * Reads and parses the scenario file `path` (at most 4 MiB).  On success
 * *out is the model (free it with scenario_free).  On failure *out is NULL
 * and `err` (errlen bytes, may be 0) holds one message.
 */
int scenario_load(const char *path, struct scenario **out, char *err, size_t errlen);

/*
 * Parses `len` bytes of `text` (need not be NUL-terminated).  `filename` is
 * used in messages and for the default name (NULL: "<input>").
 */
int scenario_parse(const char *text, size_t len, const char *filename, struct scenario **out,
                   char *err, size_t errlen);

/* Frees everything; NULL is fine. */
void scenario_free(struct scenario *s);

#endif
