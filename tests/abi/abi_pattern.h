/*
 * tests/abi/abi_pattern.h — the byte-exact content of the ABI test's requests
 * and responses, written at raw byte offsets with no Xen header in sight.  The
 * client process reads and writes the same messages through Xen's structures,
 * so any disagreement about the layout shows up as a byte mismatch.
 */
#ifndef VMISIM_ABI_PATTERN_H
#define VMISIM_ABI_PATTERN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Offsets of vm_event_st, frozen since interface version 1 (spec §7). */
#define ABI_OFF_VERSION 0
#define ABI_OFF_FLAGS 4
#define ABI_OFF_REASON 8
#define ABI_OFF_VCPU 12
#define ABI_OFF_ALTP2M 16
#define ABI_OFF_U 24
#define ABI_U_SIZE 32
#define ABI_OFF_DATA 56
/* regs_x86.rip: after 16 GPRs, rflags, dr7 (v1) or rflags, dr6, dr7 (v4+). */
#define ABI_OFF_RIP_V1 (56 + 18 * 8)
#define ABI_OFF_RIP_V7 (56 + 19 * 8)

#define ABI_FLAG_VCPU_PAUSED (1u << 0)
#define ABI_FLAG_EMULATE (1u << 2)
#define ABI_FLAG_ALTERNATE_P2M (1u << 7)
#define ABI_REASON_MEM_ACCESS 1u
#define ABI_MEM_ACCESS_GLA_VALID (1u << 3)
#define ABI_MEM_ACCESS_FAULT_WITH_GLA (1u << 4)

static inline size_t abi_slot_size(unsigned version)
{
    return version == 1 ? 312 : 400;
}

static inline void abi_fill(unsigned char *buf, size_t len, uint32_t seq, unsigned char tag)
{
    uint32_t x = seq * 2654435761u ^ tag ^ 0x9e3779b9u;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)(x >> 7);
    }
}

static inline void abi_put32(unsigned char *b, size_t off, uint32_t v)
{
    memcpy(b + off, &v, 4);
}

static inline void abi_put64(unsigned char *b, size_t off, uint64_t v)
{
    memcpy(b + off, &v, 8);
}

/* The values the request for sequence number `i` carries. */
struct abi_fields {
    uint32_t flags, vcpu_id;
    uint16_t altp2m_idx;
    uint64_t gfn, offset, gla, rip;
    uint32_t access_flags;
};

static inline struct abi_fields abi_fields(uint32_t i)
{
    return (struct abi_fields){
        .flags = ABI_FLAG_VCPU_PAUSED | (i % 2 ? ABI_FLAG_ALTERNATE_P2M : 0),
        .vcpu_id = i % 128,
        .altp2m_idx = (uint16_t)(i % 10),
        .gfn = 0x100000u + i,
        .offset = i & 0xfff,
        .gla = 0xffff800000000000ull + (uint64_t)i * 0x1000 + (i & 0xfff),
        .rip = 0xffffffff81000000ull + i,
        .access_flags = (i % 7 + 1) | ABI_MEM_ACCESS_GLA_VALID | ABI_MEM_ACCESS_FAULT_WITH_GLA,
    };
}

/* Request i: pseudo-random bytes everywhere, with the header and mem_access fields set. */
static inline void abi_request(unsigned char *b, uint32_t i, unsigned version)
{
    struct abi_fields f = abi_fields(i);
    abi_fill(b, abi_slot_size(version), i, 'q');
    abi_put32(b, ABI_OFF_VERSION, version);
    abi_put32(b, ABI_OFF_FLAGS, f.flags);
    abi_put32(b, ABI_OFF_REASON, ABI_REASON_MEM_ACCESS);
    abi_put32(b, ABI_OFF_VCPU, f.vcpu_id);
    memcpy(b + ABI_OFF_ALTP2M, &f.altp2m_idx, 2);
    abi_put64(b, ABI_OFF_U + 0, f.gfn);
    abi_put64(b, ABI_OFF_U + 8, f.offset);
    abi_put64(b, ABI_OFF_U + 16, f.gla);
    abi_put32(b, ABI_OFF_U + 24, f.access_flags);
    abi_put64(b, version == 1 ? ABI_OFF_RIP_V1 : ABI_OFF_RIP_V7, f.rip);
}

/*
 * Response i, as the client builds it from request i (the way xen-access
 * does): zeroed, version, vcpu_id, reason, altp2m_idx echoed, flags =
 * VCPU_PAUSED (+ EMULATE for every third), mem_access echoed, and the data
 * block filled with its own pseudo-random bytes.
 */
static inline void abi_response(unsigned char *b, uint32_t i, unsigned version)
{
    size_t size = abi_slot_size(version);
    unsigned char req[400];
    abi_request(req, i, version);
    memset(b, 0, size);
    abi_put32(b, ABI_OFF_VERSION, version);
    abi_put32(b, ABI_OFF_FLAGS, ABI_FLAG_VCPU_PAUSED | (i % 3 == 0 ? ABI_FLAG_EMULATE : 0));
    abi_put32(b, ABI_OFF_REASON, ABI_REASON_MEM_ACCESS);
    memcpy(b + ABI_OFF_VCPU, req + ABI_OFF_VCPU, 4);
    memcpy(b + ABI_OFF_ALTP2M, req + ABI_OFF_ALTP2M, 2);
    memcpy(b + ABI_OFF_U, req + ABI_OFF_U, ABI_U_SIZE);
    abi_fill(b + ABI_OFF_DATA, size - ABI_OFF_DATA, i, 'r');
}

#endif
