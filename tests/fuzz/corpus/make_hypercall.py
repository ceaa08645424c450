#!/usr/bin/env python3
"""Writes the hand-made seed corpus of the hypercall target (tests/fuzz/corpus/hypercall/).

Each file is an input in the format of tests/fuzz/fuzz_hypercall.c: a domain byte, a
controls byte, then hypercalls (sel, flags, nr32, five (how, val32) arguments, a slot
payload).  Run from anywhere: python3 tests/fuzz/corpus/make_hypercall.py
"""
import os
import struct

XEN64, XENPAE, KVM64, KVMPAE = range(4)
# controls
GR_ON, GR_SYNC, GR_USER = 1, 2, 4
ANSWER_NOW, ANSWER_ODD, ANSWER_END = 0, 1 << 3, 2 << 3
# flags
VMMCALL, RAW_NR, RAW_OP, WIDE_NR = 1, 2, 4, 0x20
SLOT_PAYLOAD, SLOT_CONTEXT, SLOT_TOKEN, SLOT_NONE = 0, 1 << 3, 2 << 3, 3 << 3
# argument kinds
VAL, SEXT, SCRATCH, BEFORE_RO, RO, UNMAPPED, NONCANON, BOTH = range(8)

# Template indices (xen_calls[] / kvm_calls[] in the target).
X_GUEST_REQUEST, X_YIELD, X_SHUTDOWN, X_CONSOLE, X_INIT, X_UP, X_DOWN, X_IS_UP = range(8)
X_ALTP2M, X_HVMOP0, X_MEMOP0, X_MEMOP6, X_BLOCK, X_POLL, X_CONSOLE_READ = range(8, 15)
K_GUEST_REQUEST, K_MAP, K_UNMAP, K_ALTP2M, K_VAPIC, K_KICK, K_CLOCK, K_IPI, K_YIELD, K_MAPGPA = range(10)

# Offsets of fields in struct vcpu_hvm_context (xen/include/public/hvm/hvm_vcpu.h).
CTX64 = {'mode': 0, 'rax': 8, 'rsp': 40, 'rip': 72, 'rflags': 80, 'cr0': 88, 'cr3': 96, 'cr4': 104, 'efer': 112}
CTX32 = {'mode': 0, 'eip': 40, 'eflags': 44, 'cr0': 48, 'cr3': 52, 'cr4': 56, 'efer': 64, 'cs_base': 72}
CODE_GLA = 0x400000


def arg(how, val=0):
    return (how, val & 0xffffffff)


def call(sel, args=(), flags=0, nr=0, payload=b''):
    args = list(args) + [arg(VAL, 0)] * (5 - len(args))
    out = bytes([sel, flags]) + struct.pack('<I', nr & 0xffffffff)
    for how, val in args:
        out += bytes([how]) + struct.pack('<I', val)
    return out + bytes([len(payload)]) + payload


def overlay(off, data):
    """A slot payload over a template (context or token): offset, then the bytes."""
    return bytes([off]) + data


def header(dom, ctl=0):
    return bytes([dom, ctl])


def text(s):
    return s.encode()


# ---- Xen, long mode: every declared call, good and bad pointers ----------------------
xen_basics = header(XEN64, GR_ON | GR_SYNC | ANSWER_NOW) + b''.join([
    call(X_GUEST_REQUEST, [arg(VAL, 24), arg(VAL, 0)]),
    call(X_GUEST_REQUEST, [arg(VAL, 24), arg(VAL, 1)]),                 # -EINVAL
    call(X_YIELD),
    call(X_CONSOLE, [arg(VAL), arg(VAL, 13), arg(SCRATCH, 0)], payload=text('hello, xen!\n')),
    call(X_CONSOLE, [arg(VAL), arg(VAL, 16), arg(UNMAPPED, 0x10)]),      # -EFAULT
    call(X_CONSOLE, [arg(VAL), arg(VAL, 64), arg(BEFORE_RO, 8)]),        # crosses into the read-only page
    call(X_CONSOLE, [arg(VAL), arg(VAL, 200), arg(RO, 4000)]),          # crosses out of it: -EFAULT
    call(X_CONSOLE, [arg(VAL), arg(SEXT, -1), arg(SCRATCH, 0)], payload=text('x' * 40)),  # count 2^64-1
    call(X_CONSOLE, [arg(VAL), arg(VAL, 8), arg(NONCANON, 0x1000)]),     # -EFAULT
    call(X_SHUTDOWN, [arg(VAL, 2), arg(UNMAPPED, 0)]),                   # -EFAULT, goes on
    call(X_SHUTDOWN, [arg(VAL, 2), arg(SCRATCH, 0)], payload=struct.pack('<I', 3)),  # crash: stops
])

# ---- Xen, long mode: vCPUs up and down with vcpu_hvm_context -------------------------
xen_vcpus = header(XEN64, ANSWER_NOW) + b''.join([
    call(X_IS_UP, [arg(VAL), arg(VAL, 1)]),
    call(X_UP, [arg(VAL), arg(VAL, 1)]),                                  # not initialised: -EINVAL
    call(X_INIT, [arg(VAL), arg(VAL, 1), arg(SCRATCH, 0)], flags=SLOT_CONTEXT),
    call(X_INIT, [arg(VAL), arg(VAL, 1), arg(SCRATCH, 0)], flags=SLOT_CONTEXT),  # -EEXIST
    call(X_INIT, [arg(VAL), arg(VAL, 7), arg(SCRATCH, 0)], flags=SLOT_CONTEXT),  # -ENOENT
    call(X_INIT, [arg(VAL), arg(VAL, 2), arg(SCRATCH, 0)], flags=SLOT_CONTEXT,
         payload=overlay(CTX64['mode'], struct.pack('<I', 7))),          # bad mode: -EINVAL
    call(X_INIT, [arg(VAL), arg(VAL, 2), arg(SCRATCH, 0)], flags=SLOT_CONTEXT,
         payload=overlay(CTX64['rip'], struct.pack('<Q', 0x0000900000000000))),  # non-canonical RIP
    call(X_INIT, [arg(VAL), arg(VAL, 2), arg(RO, 4000)], flags=SLOT_CONTEXT),   # crosses out: -EFAULT
    call(X_UP, [arg(VAL), arg(VAL, 1)]),
    call(X_IS_UP, [arg(VAL), arg(VAL, 1)]),
    call(X_IS_UP, [arg(VAL), arg(VAL, 0)]),
    call(X_DOWN, [arg(VAL), arg(VAL, 1)]),
    call(X_DOWN, [arg(VAL), arg(VAL, 9)]),                                # -ENOENT
    call(X_YIELD),
])

# ---- Xen, long mode: a second vCPU on the loop, and one with garbage state ------------
xen_garbage = header(XEN64, GR_ON | ANSWER_ODD) + b''.join([
    call(X_INIT, [arg(VAL), arg(VAL, 1), arg(SCRATCH, 0)], flags=SLOT_CONTEXT,
         payload=overlay(CTX64['rip'], struct.pack('<Q', CODE_GLA))),     # runs the script too
    call(X_UP, [arg(VAL), arg(VAL, 1)]),
    call(X_INIT, [arg(VAL), arg(VAL, 2), arg(SCRATCH, 0)], flags=SLOT_CONTEXT,
         payload=overlay(CTX64['rax'], bytes(range(0x40, 0x80)))),      # every GPR garbage
    call(X_INIT, [arg(VAL), arg(VAL, 2), arg(SCRATCH, 0)], flags=SLOT_CONTEXT,
         payload=overlay(CTX64['cr3'], struct.pack('<Q', 0x1000))),      # another CR3 (EEXIST if the first took)
    call(X_UP, [arg(VAL), arg(VAL, 2)]),
] + [call(X_GUEST_REQUEST, [arg(VAL, 24), arg(VAL, 0)]), call(X_YIELD)] * 6)

# ---- Xen, long mode: what is not declared ---------------------------------------------
xen_undeclared = header(XEN64, ANSWER_NOW) + b''.join([
    call(X_ALTP2M, [arg(VAL), arg(SCRATCH, 0)], payload=bytes(64)),
    call(X_HVMOP0, [arg(VAL), arg(SCRATCH, 0)]),
    call(X_MEMOP0, [arg(VAL), arg(SCRATCH, 0)], payload=bytes(range(48))),
    call(X_MEMOP6, [arg(VAL), arg(RO, 0)]),
    call(X_BLOCK), call(X_POLL, [arg(VAL), arg(UNMAPPED, 0)]), call(X_CONSOLE_READ, [arg(VAL), arg(VAL, 5)]),
    call(0, [arg(VAL, 0x10), arg(VAL)], flags=RAW_OP),                   # hvm_op 16
    call(0, [arg(VAL, 0x7)], flags=RAW_NR, nr=36),                        # domctl
    call(0, [arg(SEXT, -1)], flags=RAW_NR, nr=0xffffffff),
    call(0, [arg(BOTH, 0x24)], flags=RAW_NR | WIDE_NR, nr=34),            # rax = 34 | 34 << 32
    call(0, [arg(VAL, 24), arg(VAL, 0)], flags=VMMCALL),                  # #UD under Xen
])

# ---- Xen, PAE: the 32-bit convention ----------------------------------------------------
xen_pae = header(XENPAE, GR_ON | GR_SYNC | ANSWER_NOW) + b''.join([
    call(X_GUEST_REQUEST, [arg(VAL, 24), arg(VAL, 0)]),
    call(X_GUEST_REQUEST, [arg(BOTH, 24), arg(BOTH, 0)]),               # high halves dropped
    call(X_CONSOLE, [arg(VAL), arg(VAL, 6), arg(SCRATCH, 0)], payload=text('pae32\n')),
    call(X_CONSOLE, [arg(VAL), arg(VAL, 6), arg(NONCANON, 0x602000)], payload=text('wrap\n')),  # 2^63 + x: x
    call(X_CONSOLE, [arg(VAL), arg(VAL, 0x100), arg(SEXT, -8)]),         # 0xfffffff8, wraps to 0
    call(X_INIT, [arg(VAL), arg(VAL, 1), arg(SCRATCH, 0)], flags=SLOT_CONTEXT),
    call(X_INIT, [arg(VAL), arg(VAL, 2), arg(SCRATCH, 0)], flags=SLOT_CONTEXT,
         payload=overlay(CTX32['cs_base'], struct.pack('<I', 0x1000))),  # vmisim: flat segments only
    call(X_INIT, [arg(VAL), arg(VAL, 2), arg(SCRATCH, 0)], flags=SLOT_CONTEXT,
         payload=overlay(CTX32['mode'], struct.pack('<I', 1))),          # a 64-bit context in PAE
    call(X_UP, [arg(VAL), arg(VAL, 1)]),
    call(X_IS_UP, [arg(VAL), arg(VAL, 1)]),
    call(X_SHUTDOWN, [arg(VAL, 2), arg(RO, 4094)]),                       # crosses out: -EFAULT
    call(X_YIELD),
])

# ---- KVM, long mode: KVM's convention, MEM_MAP/UNMAP with the token --------------------
kvm_long = header(KVM64, GR_ON | GR_SYNC | ANSWER_NOW) + b''.join([
    call(K_GUEST_REQUEST, [arg(VAL, 24), arg(VAL, 0)]),
    call(K_GUEST_REQUEST, [arg(VAL, 24), arg(VAL, 0)], flags=VMMCALL),
    call(K_GUEST_REQUEST, [arg(VAL, 24), arg(VAL, 5)]),                  # -EINVAL
    call(K_VAPIC), call(K_KICK, [arg(VAL, 0), arg(VAL, 1)]), call(K_CLOCK, [arg(SCRATCH, 0)]),
    call(K_IPI, [arg(SEXT, -1)]), call(K_YIELD), call(K_MAPGPA, [arg(VAL, 0x1000)]),
    call(K_MAP, [arg(UNMAPPED, 0), arg(VAL, 0x1000), arg(VAL, 0x30000)]),  # token unreadable
    call(K_MAP, [arg(SCRATCH, 0), arg(VAL, 0x1000), arg(VAL, 0x30000)], payload=bytes(32)),  # bad token
    call(K_MAP, [arg(RO, 0), arg(VAL, 0x100000), arg(VAL, 0x30000)]),      # beyond the target's RAM
    call(K_MAP, [arg(RO, 0), arg(VAL, 0x1000), arg(VAL, 0x400000)]),       # beyond the guest's RAM
    call(K_UNMAP, [arg(VAL, 0x30000)]),                                   # nothing mapped: -EFAULT
    call(K_MAP, [arg(SCRATCH, 0), arg(VAL, 0x2000), arg(VAL, 0x31000)], flags=SLOT_TOKEN),
    call(K_UNMAP, [arg(VAL, 0x31000)]),
    call(K_MAP, [arg(RO, 0), arg(VAL, 0x3000), arg(VAL, 0x32000)]),
])

# ---- KVM, long mode: a map over the guest's own script page -----------------------------
kvm_remap = header(KVM64, ANSWER_NOW) + b''.join([
    call(K_MAP, [arg(RO, 0), arg(VAL, 0x4000), arg(VAL, 0x22000)]),       # over the first scratch page
    call(K_MAP, [arg(RO, 0), arg(VAL, 0x5000), arg(VAL, 0x20000)]),       # over the script itself
    call(K_UNMAP, [arg(VAL, 0x20000)]),
])

# ---- KVM, PAE ---------------------------------------------------------------------------
kvm_pae = header(KVMPAE, GR_ON | ANSWER_NOW) + b''.join([
    call(K_GUEST_REQUEST, [arg(VAL, 24), arg(VAL, 0)]),
    call(K_GUEST_REQUEST, [arg(VAL, 24), arg(VAL, 0)], flags=VMMCALL),
    call(K_VAPIC),
    call(K_MAP, [arg(BOTH, 0x606000), arg(VAL, 0x1000), arg(VAL, 0x30000)]),  # the token, via the low half
    call(K_UNMAP, [arg(VAL, 0x30000)]),
    call(K_UNMAP, [arg(SEXT, -4096)]),
])

# ---- Xen: asynchronous guest requests fill the ring; the client answers at the end -------
xen_ring_full = header(XEN64, GR_ON | ANSWER_END) + call(X_GUEST_REQUEST, [arg(VAL, 24), arg(VAL, 0)]) * 24

SEEDS = {
    'xen-basics': xen_basics,
    'xen-vcpus': xen_vcpus,
    'xen-garbage-vcpu': xen_garbage,
    'xen-undeclared': xen_undeclared,
    'xen-pae': xen_pae,
    'kvm-long': kvm_long,
    'kvm-remap': kvm_remap,
    'kvm-pae': kvm_pae,
    'xen-ring-full': xen_ring_full,
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'hypercall')
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
