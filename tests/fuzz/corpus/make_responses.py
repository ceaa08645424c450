#!/usr/bin/env python3
"""Writes the hand-made seed corpus of the responses target (tests/fuzz/corpus/responses/).

Each file is an action stream in the format of tests/fuzz/fuzz_responses.c: a byte op
(op % 12) and its arguments.  Run from anywhere: python3 tests/fuzz/corpus/make_responses.py
"""
import os
import struct

RUN, TAKE, RESPOND, RAW, PUSH, NOTIFY, INDEX, ACCESS, SLOT, RESUME, DOORBELL, FINAL = range(12)
PAUSED, EMULATE, NOWRITE, SSTEP, READ_DATA, DENY, ALTP2M, SETREGS = 1, 4, 8, 16, 32, 64, 128, 256


def run(n):
    return bytes([RUN]) + struct.pack('<H', n)


def respond(flags, mod=0):
    return bytes([RESPOND]) + struct.pack('<HB', flags, mod)


def index(which, value, absolute=True):
    return bytes([INDEX, which | (0x80 if absolute else 0)]) + struct.pack('<I', value & 0xffffffff)


def raw(off, data):
    return bytes([RAW]) + struct.pack('<HB', off, len(data)) + data


def slot(s, off, data):
    return bytes([SLOT, s]) + struct.pack('<HB', off, len(data)) + data


def answer_all(flags, n=4, mod=0):
    return bytes([TAKE]) * n + respond(flags, mod) * n + bytes([PUSH, NOTIFY])


SEEDS = {
    # A faithful client: answers every request, the page stays read-only.
    'honest-answer': (run(2000) + answer_all(PAUSED)) * 4 + run(2000),
    # A faithful client that lifts the restriction, then restores it.
    'honest-relax': run(2000) + bytes([ACCESS, 7]) + answer_all(PAUSED) + run(5000)
                    + bytes([ACCESS, 1]) + run(2000) + answer_all(PAUSED),
    # Emulation, single-step toggles, DENY, SET_REGISTERS and read data in the answers.
    'flags': run(2000) + answer_all(PAUSED | EMULATE) + run(2000) + answer_all(PAUSED | SSTEP)
             + run(2000) + answer_all(PAUSED | NOWRITE | DENY) + run(2000)
             + answer_all(PAUSED | SETREGS, mod=2) + run(2000) + answer_all(PAUSED | EMULATE | READ_DATA, mod=8)
             + run(3000),
    # Answers naming the wrong vCPU, an absent vCPU, the wrong version, no VCPU_PAUSED.
    'misdirected': run(2000) + bytes([TAKE] * 4) + respond(PAUSED, 1 | (2 << 1)) + respond(PAUSED, 1 | (7 << 1))
                   + respond(PAUSED, 0x10) + respond(0) + bytes([PUSH, NOTIFY]) + run(2000)
                   + bytes([RESUME]) + run(2000),
    # A client that lies about rsp_prod (beyond what was asked, backwards) and req_event.
    'corrupt-indices': run(2000) + bytes([TAKE]) + index(0, 3, absolute=False) + bytes([NOTIFY]) + run(1000)
                       + index(0, 0xfffffff0) + bytes([NOTIFY]) + run(1000) + index(1, 0) + index(2, 0x12345678)
                       + bytes([DOORBELL, FINAL]) + run(1000),
    # Raw response bytes and a request slot overwritten before the client took it.
    'raw-slots': run(2000) + bytes([TAKE]) + raw(0, b'\xff' * 16) + raw(4, b'\x01\x00\x00\x00')
                 + bytes([PUSH, NOTIFY]) + run(1000) + slot(3, 0, b'\x07\x00\x00\x00\x01\x00\x00\x00' * 4)
                 + bytes([TAKE, TAKE]) + raw(12, b'\x03\x00\x00\x00') + bytes([PUSH, NOTIFY]) + run(2000),
}

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'responses')
os.makedirs(here, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(here, name), 'wb') as f:
        f.write(data)
