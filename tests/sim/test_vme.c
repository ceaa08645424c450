/*
 * tests/sim/test_vme.c — the vm_event codecs write and read Xen's bytes.
 *
 * Expected bytes are checked at raw offsets (spec §7: the common header is
 * stable; rip sits at 200 in v1 and 208 in v7), not through Xen's structs, so
 * the codec and the test cannot share a layout mistake.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "vm_event_internal.h"

static uint32_t rd32(const unsigned char *b, size_t off)
{
    uint32_t v;
    memcpy(&v, b + off, 4);
    return v;
}

static uint64_t rd64(const unsigned char *b, size_t off)
{
    uint64_t v;
    memcpy(&v, b + off, 8);
    return v;
}

static struct vme_msg mem_access_msg(unsigned version)
{
    struct vme_msg m;
    memset(&m, 0, sizeof(m));
    m.version = version;
    m.flags = VME_FLAG_VCPU_PAUSED | VME_FLAG_ALTERNATE_P2M;
    m.reason = VME_REASON_MEM_ACCESS;
    m.vcpu_id = 3;
    m.altp2m_idx = 2;
    m.u.mem_access.gfn = 0x1234;
    m.u.mem_access.offset = 0x56;
    m.u.mem_access.gla = 0xffff800000001056ull;
    m.u.mem_access.flags = VME_MEM_ACCESS_W | VME_MEM_ACCESS_GLA_VALID | VME_MEM_ACCESS_FAULT_WITH_GLA;
    m.regs.rax = 0x1111;
    m.regs.rip = 0xffffffff81000010ull;
    m.regs.r15 = 0xf15;
    m.regs.rflags = 0x202;
    m.regs.cr3 = 0x5000;
    m.regs.gs_base = 0xabcd;
    m.regs.dr6 = 0xffff0ff0; /* v7 only */
    return m;
}

/* A MEM_ACCESS request lands at Xen's offsets in both versions; all else is zero. */
Test(vme, mem_access_request_bytes)
{
    for (unsigned version = 1; version <= 7; version += 6) {
        unsigned char slot[401]; /* one byte more than the largest slot, to catch overruns */
        memset(slot, 0xee, sizeof(slot));
        struct vme_msg m = mem_access_msg(version);
        cr_assert_eq(vme_encode(version, &m, slot), 0);
        cr_expect_eq(rd32(slot, 0), version);
        cr_expect_eq(rd32(slot, 4), VME_FLAG_VCPU_PAUSED | VME_FLAG_ALTERNATE_P2M);
        cr_expect_eq(rd32(slot, 8), 1);
        cr_expect_eq(rd32(slot, 12), 3);
        cr_expect_eq(slot[16] | slot[17] << 8, 2);
        cr_expect_eq(rd64(slot, 24), 0x1234);
        cr_expect_eq(rd64(slot, 32), 0x56);
        cr_expect_eq(rd64(slot, 40), 0xffff800000001056ull);
        cr_expect_eq(rd32(slot, 48), VME_MEM_ACCESS_W | VME_MEM_ACCESS_GLA_VALID | VME_MEM_ACCESS_FAULT_WITH_GLA);
        cr_expect_eq(rd64(slot, 56), 0x1111, "regs.rax first");
        cr_expect_eq(rd64(slot, 56 + 15 * 8), 0xf15, "r15");
        cr_expect_eq(rd64(slot, 56 + 16 * 8), 0x202, "rflags");
        size_t rip = version == 1 ? 200 : 208;
        cr_expect_eq(rd64(slot, rip), 0xffffffff81000010ull, "v%u rip", version);
        cr_expect_eq(rd64(slot, rip + 8 * 3), 0x5000, "v%u cr3", version);
        if (version == 7)
            cr_expect_eq(rd64(slot, 56 + 17 * 8), 0xffff0ff0, "v7 dr6 after rflags");
        size_t size = vme_slot_size(version);
        /* Nothing of the 0xee background survives: every byte was written. */
        for (size_t k = 0; k < size; k++)
            cr_assert_neq(slot[k], 0xee, "v%u byte %zu not written", version, k);
        cr_expect_eq(slot[size], 0xee, "v%u wrote past its slot", version);
    }
}

/* Every reason a version has survives encode + decode unchanged; the others are refused. */
Test(vme, round_trip_every_reason)
{
    for (unsigned version = 1; version <= 7; version += 6) {
        for (unsigned reason = 0; reason < VME_REASON_COUNT + 2; reason++) {
            struct vme_msg m = mem_access_msg(version), back;
            m.reason = reason;
            memset(&m.u, 0, sizeof(m.u));
            m.u.debug.gfn = 0x777; /* first payload word for every reason that has one */
            unsigned char slot[400];
            int rc = vme_encode(version, &m, slot);
            if (reason > vme_max_reason(version)) {
                cr_expect_eq(rc, -EOPNOTSUPP, "v%u reason %u", version, reason);
                continue;
            }
            cr_assert_eq(rc, 0, "v%u reason %u", version, reason);
            cr_assert_eq(vme_decode(version, slot, &back), 0);
            cr_expect_eq(back.reason, reason);
            cr_expect_eq(back.vcpu_id, 3);
            cr_expect_eq(back.regs.rip, m.regs.rip);
            bool has_payload = reason != VME_REASON_GUEST_REQUEST && reason != VME_REASON_UNKNOWN
                               && reason != VME_REASON_PRIVILEGED_CALL
                               && reason != VME_REASON_EMUL_UNIMPLEMENTED;
            if (has_payload)
                cr_expect_eq(rd64(slot, 24), 0x777, "v%u reason %u payload", version, reason);
            else
                cr_expect_eq(rd64(slot, 24), 0, "v%u reason %u has no payload", version, reason);
        }
    }
}

/* v1's mov_to_msr carries only the new value; v7 has new and old (spec §7, v3). */
Test(vme, mov_to_msr_by_version)
{
    struct vme_msg m = mem_access_msg(1), back;
    m.reason = VME_REASON_MOV_TO_MSR;
    m.u.mov_to_msr.msr = 0xc0000080;
    m.u.mov_to_msr.new_value = 0xd01;
    m.u.mov_to_msr.old_value = 0x501;
    unsigned char slot[400];
    cr_assert_eq(vme_encode(1, &m, slot), 0);
    cr_expect_eq(rd64(slot, 24), 0xc0000080);
    cr_expect_eq(rd64(slot, 32), 0xd01);
    cr_expect_eq(rd64(slot, 40), 0, "v1 has no old value");
    vme_decode(1, slot, &back);
    cr_expect_eq(back.u.mov_to_msr.new_value, 0xd01);
    cr_assert_eq(vme_encode(7, &m, slot), 0);
    cr_expect_eq(rd64(slot, 40), 0x501);
}

/* A response's data union is read as emul read data: size at byte 56, bytes from 60. */
Test(vme, decode_emul_read_data)
{
    for (unsigned version = 1; version <= 7; version += 6) {
        unsigned char slot[400] = {0};
        uint32_t size = 300;
        memcpy(slot + 56, &size, 4);
        for (unsigned k = 0; k < vme_emul_read_max(version); k++)
            slot[60 + k] = (unsigned char)(k + 1);
        struct vme_msg m;
        cr_assert_eq(vme_decode(version, slot, &m), 0);
        cr_expect_eq(m.emul_read.size, 300, "the size is decoded raw, clamping is the caller's");
        cr_expect_eq(m.emul_read.data[0], 1);
        unsigned last = vme_emul_read_max(version) - 1;
        cr_expect_eq(m.emul_read.data[last], (unsigned char)(last + 1), "v%u last byte", version);
    }
    cr_expect_eq(vme_emul_read_max(1), 252);
    cr_expect_eq(vme_emul_read_max(7), 340);
}

/* Unknown versions are refused; names come from Xen's list. */
Test(vme, versions_and_names)
{
    struct vme_msg m = mem_access_msg(2);
    unsigned char slot[400];
    cr_expect_eq(vme_encode(2, &m, slot), -EINVAL);
    cr_expect_eq(vme_decode(6, slot, &m), -EINVAL);
    cr_expect_not(vme_version_supported(2));
    cr_expect_eq(vme_slot_size(1), 312);
    cr_expect_eq(vme_slot_size(7), 400);
    cr_expect_str_eq(vme_reason_name(VME_REASON_SINGLESTEP), "SINGLESTEP");
    cr_expect_str_eq(vme_flag_name(5), "SET_EMUL_READ_DATA");
    cr_expect_null(vme_reason_name(99));
}

/* A response with SET_EMUL_READ_DATA carries the read buffer in the data union, not registers. */
Test(vme, encode_emul_read_data_response)
{
    for (unsigned version = 1; version <= 7; version += 6) {
        struct vme_msg m = mem_access_msg(version);
        m.flags = VME_FLAG_VCPU_PAUSED | VME_FLAG_EMULATE | VME_FLAG_SET_EMUL_READ_DATA;
        m.emul_read.size = 4;
        memcpy(m.emul_read.data, "\x11\x22\x33\x44", 4);
        unsigned char slot[400];
        cr_assert_eq(vme_encode(version, &m, slot), 0);
        cr_expect_eq(rd32(slot, 56), 4, "v%u size at byte 56", version);
        cr_expect_eq(rd32(slot, 60), 0x44332211, "v%u data from byte 60", version);
        struct vme_msg back;
        vme_decode(version, slot, &back);
        cr_expect_eq(back.emul_read.size, 4);
        cr_expect_arr_eq(back.emul_read.data, m.emul_read.data, 4);
    }
}
