#!/usr/bin/env python3
"""Writes the hand-made seed corpus of the serve target (tests/fuzz/corpus/serve/).

Each file is an input in the format of tests/fuzz/fuzz_serve.c: a flags byte, then
client actions (a byte op % 12 and its arguments).  Run from anywhere:
python3 tests/fuzz/corpus/make_serve.py
"""
import os
import struct

CONNECT, CALL, RAW, POLL, CLOSE, SHUTDOWN, NOTIFY, ANSWER, RUN, FDS, HEADER = range(11)
(GETINFO, MAX_GPFN, PAUSE, UNPAUSE, MONITOR_ENABLE, MONITOR_DISABLE, MONITOR_CONTROL,
 SET_ACCESS_REQUIRED, SET_MEM_ACCESS, GET_MEM_ACCESS, DEBUG_CONTROL, INJECT_TRAP, ALTP2M,
 VCPU_GETCONTEXT, VCPU_SETCONTEXT, FOREIGN_MAP) = range(1, 17)
# CALL's m byte
WRONG_DOMID, LONGER, WITH_FDS, SPLIT, EMPTY, HIGH_GFNS = 1, 2, 4, 8, 0x20, 0x40
MAGIC = 0x58434d56


# Payload sizes of the known ops (ring/xenctl_abi.h); FOREIGN_MAP is foreign_map() below.
SIZES = {GETINFO: 0, MAX_GPFN: 0, PAUSE: 0, UNPAUSE: 0, MONITOR_ENABLE: 8, MONITOR_DISABLE: 0,
         MONITOR_CONTROL: 24, SET_ACCESS_REQUIRED: 8, SET_MEM_ACCESS: 16, GET_MEM_ACCESS: 16, DEBUG_CONTROL: 8,
         INJECT_TRAP: 24, ALTP2M: 32, VCPU_GETCONTEXT: 8, VCPU_SETCONTEXT: 232}


def call(conn, op, payload=b'', m=0, n=0):
    """A CALL action: the target reads exactly the op's payload size (n & 15 for an unknown op),
    then 1 + (n & 7) more with LONGER: the payload is cut or zero-padded to that."""
    size = SIZES[op] if op in SIZES else n & 15
    if m & LONGER:
        size += 1 + (n & 7)
    payload = (payload + bytes(size))[:size]
    return bytes([CALL, conn, op, m, n]) + payload


def u32(v):
    return struct.pack('<II', v, 0)


def monitor(event, enable=1, sync=0, index=0, onchangeonly=0, allow_userspace=0, bitmask=0):
    return struct.pack('<IIBBBBIQ', event, index, enable, sync, onchangeonly, allow_userspace, 0, bitmask)


def mem_access(gfn, nr, access):
    return struct.pack('<QII', gfn, nr, access)


def altp2m(op, view=0, access=0, gfn=0, gfn2=0):
    return struct.pack('<IHHIIQQ', op, view, 0, access, 0, gfn, gfn2)


def trap(vcpu, vector, type_, insn_len=0, error_code=0xffffffff, cr2=0):
    return struct.pack('<IBBBBIIQ', vcpu, vector, type_, insn_len, 0, error_code, 0, cr2)


def vcpu_regs(vcpu, rip, rsp=0x701000, cr3=0):
    regs = [0] * 26
    regs[7] = rsp      # rsp
    regs[16] = rip     # rip
    regs[17] = 2       # rflags
    return struct.pack('<II', vcpu, 0) + struct.pack('<26Q', *regs) + struct.pack('<8H', *([0] * 8))


def foreign_map(conn, gfns, write=False, m=0):
    n = len(gfns) | (0x80 if write else 0)
    extra = bytes(1 + (n & 7)) if m & LONGER else b''
    return bytes([CALL, conn, FOREIGN_MAP, m, n]) + b''.join(struct.pack('<H', g) for g in gfns) + extra


def header(conn, op, length):
    return bytes([HEADER, conn, op]) + struct.pack('<H', length)


def raw(conn, data):
    return bytes([RAW, conn, len(data)]) + data


def poll(n=0):
    return bytes([POLL, n])


def run(n):
    return bytes([RUN, n])


SEEDS = {
    # Every simple call, the ABI's error rules: wrong domid, unknown ops, wrong sizes.
    'basics': bytes([0, CONNECT]) + call(0, GETINFO) + call(0, MAX_GPFN) + call(0, PAUSE) + call(0, UNPAUSE)
    + call(0, UNPAUSE) + call(0, GETINFO, m=WRONG_DOMID | 0x30) + call(0, 0, b'\x01\x02', n=2)
    + call(0, 17, n=0) + call(0, GETINFO, b'\x00' * 3, m=LONGER, n=2) + call(0, MONITOR_ENABLE, m=EMPTY)
    + call(0, VCPU_GETCONTEXT, u32(1)) + call(0, VCPU_GETCONTEXT, u32(9)) + poll(3),
    # xen-access: enable the ring, watch the page, let the guest run, answer, disable.
    'xen-access': bytes([0, CONNECT]) + call(0, MONITOR_ENABLE, u32(7)) + poll()
    + call(0, MONITOR_CONTROL, monitor(10, 1, 1)) + call(0, MONITOR_CONTROL, monitor(6, 1))
    + call(0, SET_MEM_ACCESS, mem_access(0x20, 1, 1)) + call(0, GET_MEM_ACCESS, mem_access(0x20, 0, 0)) + poll()
    + bytes([NOTIFY]) + run(4) + bytes([ANSWER]) + run(3) + bytes([ANSWER]) + run(2)
    + call(0, SET_MEM_ACCESS, mem_access(0x20, 1, 7)) + bytes([ANSWER]) + call(0, MONITOR_DISABLE) + poll(1),
    # xc_monitor_enable, then garbage on the same connection; another connection goes on.
    'enable-garbage': bytes([1, CONNECT, CONNECT]) + call(0, MONITOR_ENABLE, u32(1)) + poll()
    + raw(0, b'\x00' * 7 + b'garbage that is not a header' + b'\xff' * 8) + poll()
    + call(1, GETINFO) + call(1, MONITOR_ENABLE, u32(7)) + poll() + bytes([NOTIFY]) + run(2) + bytes([ANSWER]),
    # Messages cut anywhere and finished later, a length above the maximum, a bad version.
    'fragments': bytes([0, CONNECT, CONNECT]) + call(0, SET_MEM_ACCESS, mem_access(0x20, 1, 3), m=SPLIT, n=30)
    + poll() + call(1, MAX_GPFN) + poll() + call(0, GETINFO) + poll()
    + raw(1, struct.pack('<IHHIIiI', MAGIC, 1, GETINFO, 1, 77, 0, 0)[:10]) + poll()
    + raw(1, struct.pack('<IHHIIiI', MAGIC, 1, GETINFO, 1, 77, 0, 0)[10:]) + poll()
    + header(1, GETINFO, 0xffff) + raw(1, b'\x00' * 40) + poll() + raw(1, struct.pack('<I', 0x100000)) + poll()
    + bytes([CONNECT]) + raw(2, struct.pack('<IHHIIiI', MAGIC, 2, GETINFO, 1, 5, 0, 0)) + poll(),
    # Foreign maps of any gfn: RAM, beyond it, above 2^32; a bad count.
    'maps': bytes([0, CONNECT]) + foreign_map(0, [0, 0x10, 0x20, 0x3f, 0x40, 0xffff]) + poll()
    + foreign_map(0, [0x21, 0x20], write=True) + foreign_map(0, [1, 2, 3], m=HIGH_GFNS)
    + foreign_map(0, [], m=0) + foreign_map(0, [5], m=LONGER) + poll(),
    # Descriptors nobody asked for, disconnects mid-message, half-closed connections.
    'fds-disconnects': bytes([0, CONNECT, CONNECT, CONNECT]) + call(0, GETINFO, m=WITH_FDS) + bytes([FDS, 1])
    + call(1, MAX_GPFN) + poll() + call(2, SET_MEM_ACCESS, mem_access(0x20, 1, 1), m=SPLIT | WITH_FDS, n=9)
    + bytes([CLOSE, 2]) + poll() + call(1, GETINFO) + bytes([SHUTDOWN, 1]) + poll() + bytes([CLOSE, 0]) + poll(),
    # altp2m, vCPU contexts, traps, single-step: the calls that change the guest.
    'altp2m-vcpus': bytes([0, CONNECT]) + call(0, MONITOR_ENABLE, u32(7)) + poll()
    + call(0, ALTP2M, altp2m(1, access=1)) + call(0, ALTP2M, altp2m(2, access=7)) + call(0, ALTP2M, altp2m(8))
    + call(0, ALTP2M, altp2m(7, view=1, gfn=0x20, gfn2=0x30)) + call(0, ALTP2M, altp2m(4, view=1))
    + call(0, ALTP2M, altp2m(5, view=1, gfn=0x20, access=1)) + call(0, ALTP2M, altp2m(6, view=1, gfn=0x20))
    + call(0, ALTP2M, altp2m(3, view=1)) + call(0, ALTP2M, altp2m(9))
    + call(0, DEBUG_CONTROL, struct.pack('<II', 1, 1)) + call(0, DEBUG_CONTROL, struct.pack('<II', 1, 5))
    + call(0, INJECT_TRAP, trap(0, 3, 6, 1)) + call(0, INJECT_TRAP, trap(7, 14, 3, 0, 2, 0x1234))
    + call(0, SET_ACCESS_REQUIRED, u32(1)) + call(0, VCPU_GETCONTEXT, u32(0)) + poll()
    + bytes([NOTIFY]) + run(3) + bytes([ANSWER]) + run(2) + bytes([ANSWER]) + poll(),
    # The ring's owner dies with vCPUs paused; the next client gets its requests.
    'owner-dies': bytes([0, CONNECT, CONNECT]) + call(0, MONITOR_ENABLE, u32(7))
    + call(0, SET_MEM_ACCESS, mem_access(0x20, 1, 1)) + poll() + bytes([NOTIFY]) + run(4) + bytes([CLOSE, 0])
    + poll() + call(1, MONITOR_ENABLE, u32(7)) + call(1, MONITOR_ENABLE, u32(7)) + poll() + bytes([NOTIFY])
    + run(3) + bytes([ANSWER]) + run(2) + call(1, VCPU_SETCONTEXT, vcpu_regs(1, 0x400000)) + poll(),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'serve')
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
