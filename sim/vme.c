/* sim/vme.c — version dispatch and names for vm_event messages. */
#include <errno.h>
#include <stddef.h>

#include "vm_event_internal.h"

int vme_encode_v1(const struct vme_msg *m, void *slot);
int vme_decode_v1(const void *slot, struct vme_msg *m);
int vme_encode_v7(const struct vme_msg *m, void *slot);
int vme_decode_v7(const void *slot, struct vme_msg *m);

bool vme_version_supported(unsigned version)
{
    return version == 1 || version == 7;
}

size_t vme_slot_size(unsigned version)
{
    return version == 1 ? 312 : version == 7 ? 400 : 0;
}

uint32_t vme_emul_read_max(unsigned version)
{
    return version == 1 ? VME_EMUL_READ_MAX_V1 : VME_EMUL_READ_MAX_V7;
}

unsigned vme_max_reason(unsigned version)
{
    return version == 1 ? VME_REASON_GUEST_REQUEST : VME_REASON_VMEXIT;
}

int vme_encode(unsigned version, const struct vme_msg *m, void *slot)
{
    if (version == 1)
        return vme_encode_v1(m, slot);
    if (version == 7)
        return vme_encode_v7(m, slot);
    return -EINVAL;
}

int vme_decode(unsigned version, const void *slot, struct vme_msg *m)
{
    if (version == 1)
        return vme_decode_v1(slot, m);
    if (version == 7)
        return vme_decode_v7(slot, m);
    return -EINVAL;
}

static const char *const vme_reason_names[VME_REASON_COUNT] = {
    "UNKNOWN", "MEM_ACCESS", "MEM_SHARING", "MEM_PAGING", "WRITE_CTRLREG", "MOV_TO_MSR",
    "SOFTWARE_BREAKPOINT", "SINGLESTEP", "GUEST_REQUEST", "DEBUG_EXCEPTION", "CPUID",
    "PRIVILEGED_CALL", "INTERRUPT", "DESCRIPTOR_ACCESS", "EMUL_UNIMPLEMENTED", "VMEXIT",
};

static const char *const vme_flag_names[VME_FLAG_COUNT] = {
    "VCPU_PAUSED", "FOREIGN", "EMULATE", "EMULATE_NOWRITE", "TOGGLE_SINGLESTEP",
    "SET_EMUL_READ_DATA", "DENY", "ALTERNATE_P2M", "SET_REGISTERS", "SET_EMUL_INSN_DATA",
    "GET_NEXT_INTERRUPT", "FAST_SINGLESTEP", "NESTED_P2M", "RESET_VMTRACE", "RESET_FORK_STATE",
    "RESET_FORK_MEMORY",
};

const char *vme_reason_name(unsigned reason)
{
    return reason < VME_REASON_COUNT ? vme_reason_names[reason] : NULL;
}

const char *vme_flag_name(unsigned bit)
{
    return bit < VME_FLAG_COUNT ? vme_flag_names[bit] : NULL;
}
