#!/usr/bin/env python3
"""Writes the seed corpus of the guest target (tests/fuzz/corpus/guest/).

Each file is a 64-byte header and x86-64 code, in the format of tests/fuzz/fuzz_guest.c; the
code is assembled with nasm (installed by .ci/setup).  Every seed runs 100 instructions (header
byte 1 = 0), the size of the issue's benchmark input.  Run from anywhere:
    python3 tests/fuzz/corpus/make_guest.py
"""
import os
import random
import struct
import subprocess
import tempfile

# Access types (xenmem_access_t) and the header's page numbers (p2m settings, page % 16).
N, R, W, RW, X, RX, WX, RWX, RX2RW, N2RWX, DEFAULT = range(11)
CODE, DATA_A, DATA_B, RO, STACK, IST, SYS, IDT, HANDLER, PT, PD, PDPT, PML4, SPARE0, SPARE1, SPARE2 = range(16)
# change_gfn: old (% 5) and new (% 8).
OLD_CODE, OLD_DATA_A, OLD_DATA_B, OLD_RO, OLD_STACK = range(5)
NEW_SPARE0, NEW_SPARE1, NEW_SPARE2, NEW_DATA_A, NEW_DATA_B, NEW_RO, NEW_CODE, NEW_NONE = range(8)
# Response flags (VM_EVENT_FLAG_*) and the responder's actions.
PAUSED, EMULATE, NOWRITE, SSTEP, READ_DATA, DENY, ALTP2M, SETREGS = 1, 4, 8, 16, 32, 64, 128, 256
ADVANCE, REINJECT, RELAX, FUZZREGS, READDATA, RESTRICT = 1, 2, 4, 8, 0x40, 0x80


def altidx(i):
    return (i & 3) << 4


def asm(text):
    with tempfile.TemporaryDirectory() as d:
        src, out = os.path.join(d, 'x.asm'), os.path.join(d, 'x.bin')
        with open(src, 'w') as f:
            f.write('bits 64\norg 0x400000\n' + text + '\n')
        subprocess.run(['nasm', '-f', 'bin', '-o', out, src], check=True)
        with open(out, 'rb') as f:
            return f.read()


def header(flags=0, seed=0, entry1=0, p2m=(), altp2m=0, views=(), answers=(), reg_seed=0, reg_mask=0,
           cr=0b000111, drop_at=0, emul_size=0):
    """p2m: up to six (page, access); views: up to two (default, [(page, access)...], (old, new));
    answers: up to four (flags, actions); cr: bits 0-2 sync (set up: all sync)."""
    h = bytearray(64)
    h[0], h[1], h[2], h[3] = flags, 0, seed, entry1
    p2m = list(p2m) + [(CODE, DEFAULT)] * (6 - len(p2m))  # default: leave the page as built (rwx)
    for i, (page, acc) in enumerate(p2m):
        h[4 + 2 * i], h[5 + 2 * i] = page, acc
    h[16] = altp2m
    for v, (default, sets, change) in enumerate(views):
        base = 17 + 7 * v
        sets = list(sets) + [(CODE, DEFAULT)] * (2 - len(sets))
        h[base] = default
        for k, (page, acc) in enumerate(sets):
            h[base + 1 + 2 * k], h[base + 2 + 2 * k] = page, acc
        h[base + 5], h[base + 6] = change
    answers = list(answers) + [(PAUSED, ADVANCE)] * (4 - len(answers))
    for i, (fl, act) in enumerate(answers):
        h[31 + 3 * i:34 + 3 * i] = struct.pack('<HB', fl, act)
    h[43:51] = struct.pack('<Q', reg_seed)
    h[51:53] = struct.pack('<H', reg_mask)
    h[53], h[54], h[55] = cr, drop_at, emul_size
    return bytes(h)


# No change_gfn in a view: old and new name the same gfn (code, code).
NO_CHANGE = (OLD_CODE, NEW_CODE)

SEEDS = {
    # Plain code, no event: a loop over the data pages and the stack.
    'plain': header() + asm('''
        top: mov [rbx], rax
             add rax, [rsi]
             push rax
             pop rdx
             inc rcx
             mov r8, [rdi]
             xor r9, rcx
             jmp top'''),
    # Every monitored instruction the responder moves past or re-injects: INT3, CPUID, ICEBP,
    # a guest request (HVMOP_guest_request_vm_event through VMCALL), an INT3 re-injected to the guest.
    'monitored': header(answers=[(PAUSED, ADVANCE), (PAUSED, ADVANCE), (PAUSED, REINJECT), (PAUSED, ADVANCE)]) + asm('''
        top: int3
             mov eax, 1
             cpuid
             int1
             mov eax, 34
             mov edi, 24
             xor esi, esi
             vmcall
             int3
             nop
             jmp top'''),
    # Descriptor-table instructions (sync events, executed by EMULATE), reloading what they stored.
    'descriptors': header(answers=[(PAUSED | EMULATE, 0)] * 4) + asm('''
        top: sgdt [rbx]
             sidt [rbx + 16]
             str ax
             sldt dx
             lgdt [rbx]
             lidt [rbx + 16]
             jmp top'''),
    # Control registers and MSRs: CR0.TS toggled (deferred, then applied or DENYed), CR3 and CR4
    # written with their own value (no event), WRMSR of STAR (an event) and of an MSR cpu/ cannot read (#GP).
    'ctrlregs': header(answers=[(PAUSED, 0), (PAUSED | DENY, 0), (PAUSED, 0), (PAUSED | DENY, 0)]) + asm('''
        top: mov rax, cr0
             xor rax, 8
             mov cr0, rax
             mov rax, cr3
             mov cr3, rax
             mov rax, cr4
             mov cr4, rax
             mov ecx, 0xc0000081
             rdmsr
             inc eax
             wrmsr
             mov ecx, 0x40000000
             wrmsr
             jmp top'''),
    # EFLAGS.TF on and off with PUSHF/POPF: single-step #DB traps (DEBUG_EXCEPTION, type 3),
    # and the SINGLESTEP monitor through TOGGLE_SINGLESTEP in an answer.
    'singlestep': header(answers=[(PAUSED, 0), (PAUSED | SSTEP, 0), (PAUSED, 0), (PAUSED | SSTEP, 0)]) + asm('''
        top: pushfq
             or qword [rsp], 0x100
             popfq
             nop
             mov [rbx], rax
             pushfq
             and qword [rsp], ~0x100
             popfq
             int3
             jmp top'''),
    # Writes to restricted pages: data A read-only (relaxed by the responder), data B rx2rw (no event),
    # the stack n2rwx (an async event), the read-only page's p2m x (reads fault), a page table r (in-GPT).
    'restricted': header(p2m=[(DATA_A, R), (DATA_B, RX2RW), (STACK, N2RWX), (RO, X), (PT, R)],
                         answers=[(PAUSED, 0), (PAUSED, RELAX), (PAUSED | EMULATE | NOWRITE, 0),
                                  (PAUSED | EMULATE, RESTRICT)]) + asm('''
        top: mov [rbx], rax
             mov [rsi], rax
             push rax
             pop rax
             mov rdx, [rdi]
             inc rax
             jmp top'''),
    # altp2m (domain 1), no VMFUNC: two views; view 1 shows spare frame 1's code at the code gfn
    # (CPUID, INT3, writes, ICEBP) and restricts data A; vCPU 0 runs on view 1, vCPU 1 on view 0;
    # answers switch views (ALTERNATE_P2M) and relax.
    'altp2m': header(flags=1 | 2, entry1=0,
                     altp2m=1 | (1 << 2) | (0 << 4),
                     views=[(RWX, [(DATA_A, R), (DATA_B, RX)], (OLD_CODE, NEW_SPARE1)),
                            (RX, [(STACK, RW), (CODE, RX)], (OLD_DATA_A, NEW_SPARE0))],
                     answers=[(PAUSED | ALTP2M, ADVANCE | altidx(0)), (PAUSED | ALTP2M, ADVANCE | altidx(2)),
                              (PAUSED, RELAX | ADVANCE), (PAUSED | ALTP2M, ADVANCE | altidx(1))]) + asm('''
        top: mov [rbx], rax
             mov [rsi], rax
             push rax
             pop rax
             cpuid
             int3
             jmp top'''),
    # Every response flag at least once (and bits Xen defines that vmisim ignores), fuzzed registers,
    # emul read data, one answer without VCPU_PAUSED, two vCPUs on a seeded schedule.
    'flags': header(flags=2 | 0x20, seed=7, entry1=3, p2m=[(DATA_A, R), (DATA_B, N)],
                    answers=[(PAUSED | EMULATE | READ_DATA, READDATA), (PAUSED | EMULATE | NOWRITE | SSTEP, FUZZREGS),
                             (PAUSED | DENY | ALTP2M | SETREGS | 0x200 | 0x400, ADVANCE),
                             (PAUSED | 0x800 | 0x1000 | 0x2000 | 0x4000 | 0x8000, RELAX)],
                    reg_seed=0x0123456789abcdef, reg_mask=(1 << 0) | (1 << 1) | (1 << 14), drop_at=5, emul_size=8) + asm('''
        top: mov rax, [rbx]
             mov [rsi], rax
             add rax, [rsi + 8]
             int3
             cpuid
             mov [rbx + 8], rcx
             jmp top'''),
    # Random bytes (a fixed seed): what most mutated inputs look like.
    'random': header(p2m=[(DATA_A, R), (CODE, RX)], answers=[(PAUSED, ADVANCE), (PAUSED, RELAX),
                                                            (PAUSED | EMULATE, 0), (PAUSED, REINJECT)])
              + random.Random(10).randbytes(256),
}

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'guest')
os.makedirs(here, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(here, name), 'wb') as f:
        f.write(data)
