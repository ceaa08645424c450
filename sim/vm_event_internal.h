/*
 * sim/vm_event_internal.h — vm_event messages inside the simulator, one
 * version-neutral form (struct vme_msg) for every interface version, and the
 * codecs between it and the bytes of a ring slot (vme_encode, vme_decode).
 *
 * The wire formats come from Xen's own headers: version 1 from the seed
 * header (Xen 4.6–4.7), version 7 from Debian's libxen-dev (Xen 4.15–4.17).
 * The two define the same C names, so each codec is its own translation unit
 * (vme_v1.c, vme_v7.c) compiled from one source, vme_codec.inc.  The
 * constants below carry Xen's values; vme_v7.c asserts they match.
 */
#ifndef VMISIM_VM_EVENT_INTERNAL_H
#define VMISIM_VM_EVENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Request and response flags (VM_EVENT_FLAG_*). */
#define VME_FLAG_VCPU_PAUSED (1u << 0)
#define VME_FLAG_FOREIGN (1u << 1)
#define VME_FLAG_EMULATE (1u << 2)
#define VME_FLAG_EMULATE_NOWRITE (1u << 3)
#define VME_FLAG_TOGGLE_SINGLESTEP (1u << 4)
#define VME_FLAG_SET_EMUL_READ_DATA (1u << 5)
#define VME_FLAG_DENY (1u << 6)
#define VME_FLAG_ALTERNATE_P2M (1u << 7)
#define VME_FLAG_SET_REGISTERS (1u << 8)
#define VME_FLAG_SET_EMUL_INSN_DATA (1u << 9)
#define VME_FLAG_GET_NEXT_INTERRUPT (1u << 10)
#define VME_FLAG_FAST_SINGLESTEP (1u << 11)
#define VME_FLAG_NESTED_P2M (1u << 12)
#define VME_FLAG_RESET_VMTRACE (1u << 13)
#define VME_FLAG_RESET_FORK_STATE (1u << 14)
#define VME_FLAG_RESET_FORK_MEMORY (1u << 15)
#define VME_FLAG_COUNT 16

/* Reasons (VM_EVENT_REASON_*). */
enum vme_reason {
    VME_REASON_UNKNOWN = 0,
    VME_REASON_MEM_ACCESS = 1,
    VME_REASON_MEM_SHARING = 2,
    VME_REASON_MEM_PAGING = 3,
    VME_REASON_WRITE_CTRLREG = 4,
    VME_REASON_MOV_TO_MSR = 5,
    VME_REASON_SOFTWARE_BREAKPOINT = 6,
    VME_REASON_SINGLESTEP = 7,
    VME_REASON_GUEST_REQUEST = 8,
    VME_REASON_DEBUG_EXCEPTION = 9,   /* v2+ */
    VME_REASON_CPUID = 10,
    VME_REASON_PRIVILEGED_CALL = 11,
    VME_REASON_INTERRUPT = 12,
    VME_REASON_DESCRIPTOR_ACCESS = 13,
    VME_REASON_EMUL_UNIMPLEMENTED = 14,
    VME_REASON_VMEXIT = 15,           /* Xen 4.17 */
    VME_REASON_COUNT
};

/* u.mem_access.flags (MEM_ACCESS_*). */
#define VME_MEM_ACCESS_R (1u << 0)
#define VME_MEM_ACCESS_W (1u << 1)
#define VME_MEM_ACCESS_X (1u << 2)
#define VME_MEM_ACCESS_GLA_VALID (1u << 3)
#define VME_MEM_ACCESS_FAULT_WITH_GLA (1u << 4)
#define VME_MEM_ACCESS_FAULT_IN_GPT (1u << 5)

/* u.mem_paging.flags (MEM_PAGING_*). */
#define VME_MEM_PAGING_DROP_PAGE (1u << 0)
#define VME_MEM_PAGING_EVICT_FAIL (1u << 1)

/* Capacity of data.emul.read.data: sizeof(regs_x86) - 4. */
#define VME_EMUL_READ_MAX_V1 252u
#define VME_EMUL_READ_MAX_V7 340u

struct vme_selector {
    uint16_t sel;
    uint32_t limit; /* 20 bits on the wire (v4+), in pages when G is set */
    uint32_t ar;    /* 12 bits on the wire */
};

/* Every register any version carries; a version encodes the ones it has. */
struct vme_regs {
    uint64_t rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rflags, dr6, dr7, rip;
    uint64_t cr0, cr2, cr3, cr4;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t msr_efer, msr_star, msr_lstar;
    uint64_t gdtr_base, npt_base, vmtrace_pos;
    uint32_t cs_base, ss_base, ds_base, es_base; /* v4+ */
    uint64_t fs_base, gs_base;
    struct vme_selector cs, ss, ds, es, fs, gs; /* v4+ */
    uint64_t shadow_gs;                         /* v4+ */
    uint16_t gdtr_limit;                        /* v5+ */
    uint32_t cs_arbytes;                        /* v1-v3 */
};

struct vme_msg {
    uint32_t version, flags, reason, vcpu_id;
    uint16_t altp2m_idx;
    /* The payload `u`: the member named by `reason` is meaningful. */
    union {
        struct { uint64_t gfn, offset, gla; uint32_t flags; } mem_access;
        struct { uint32_t index; uint64_t new_value, old_value; } write_ctrlreg;
        /* v1 carries the new value only (as `value`); old_value is v3+. */
        struct { uint64_t msr, new_value, old_value; } mov_to_msr;
        /* SOFTWARE_BREAKPOINT, DEBUG_EXCEPTION; SINGLESTEP uses gfn only.  v1: gfn only. */
        struct { uint64_t gfn, pending_dbg; uint32_t insn_length; uint8_t type; } debug;
        struct { uint64_t gfn; uint32_t p2mt, flags; } paging;
        struct { uint64_t gfn; uint32_t p2mt; } sharing;
        struct { uint32_t insn_length, leaf, subleaf; } cpuid;
        struct { uint32_t instr_info; uint64_t exit_qualification; uint8_t descriptor, is_write; } desc;
        struct { uint32_t vector, type, error_code; uint64_t cr2; } interrupt;
        struct { uint64_t reason, qualification; } vmexit;
        struct { uint16_t p2midx; } fast_singlestep; /* responses with FAST_SINGLESTEP */
    } u;
    /*
     * The `data` union of the wire format, decoded every way it can be read:
     * requests carry regs; a response's flags say which one Xen reads
     * (SET_REGISTERS: regs, SET_EMUL_READ_DATA: emul_read, SET_EMUL_INSN_DATA:
     * emul_insn).  They alias on the wire: encoding writes emul_read when the
     * flags have SET_EMUL_READ_DATA, else emul_insn with SET_EMUL_INSN_DATA
     * (v7), else regs.
     */
    struct vme_regs regs;
    struct { uint32_t size; uint8_t data[VME_EMUL_READ_MAX_V7]; } emul_read;
    uint8_t emul_insn[16];
};

/* 1 and 7 are the versions vmisim speaks. */
bool vme_version_supported(unsigned version);
/* sizeof(vm_event_request_t) of the version: 312 (v1) or 400 (v7). */
size_t vme_slot_size(unsigned version);
/* Capacity of the emul read buffer: 252 (v1) or 340 (v7). */
uint32_t vme_emul_read_max(unsigned version);
/* The highest reason the version can carry: 8 (v1), 15 (v7). */
unsigned vme_max_reason(unsigned version);

/*
 * Writes `m` as a request of `version` into `slot` (vme_slot_size bytes, all
 * written: what the version lacks is zero).  -EOPNOTSUPP when the version has
 * no such reason; -EINVAL for an unsupported version.
 */
int vme_encode(unsigned version, const struct vme_msg *m, void *slot);
/*
 * Reads a response (or request) of `version` from `slot`, which must be a
 * private copy: never shared memory.  Every field is decoded, whatever it
 * says; validating it is the caller's job.
 */
int vme_decode(unsigned version, const void *slot, struct vme_msg *m);

/* Names, for logs: "MEM_ACCESS", "VCPU_PAUSED"; NULL when unknown. */
const char *vme_reason_name(unsigned reason);
const char *vme_flag_name(unsigned bit);

#endif
