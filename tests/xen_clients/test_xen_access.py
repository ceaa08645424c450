#!/usr/bin/env python3
"""Debian's own xen-access (xen-utils-4.17), unmodified, against `vmisim serve`.

Issue 9's acceptance test.  xen-access is downloaded with `apt-get download` and
unpacked with `dpkg -x` into this test's build directory (nothing is installed),
and run through the drop-in libxenctrl/libxenevtchn (LD_LIBRARY_PATH alone) in each
of its ten modes against a guest from scenarios/xen-access/ that does a known set
of things and halts.  For each mode the test checks the events xen-access printed
(kinds, gfns, offsets, rips, vCPUs, counts, the fields it prints), stops it with
SIGINT once vmisim serve says the guest halted, and checks that xen-access shut
down cleanly (its exit code, "xenaccess exit code") and that the guest ran on to
its end.  A mode is an error in the test (not a failure of vmisim) when the
harness itself cannot run it.

usage: test_xen_access.py VMISIM XENLIBS_DIR SCENARIO_DIR WORKDIR [asan] [MODE...]
Exit 77 (skipped) only when the package cannot be downloaded.
"""
import glob
import os
import re
import signal
import subprocess
import sys
import time

VMISIM, XENLIBS, SCENARIOS, WORK = sys.argv[1:5]
REST = sys.argv[5:]
ASAN = bool(REST) and REST[0] == "asan"
if REST and REST[0] in ("asan", ""):
    REST = REST[1:]

ALTP2M = ("altp2m_write", "altp2m_exec", "altp2m_write_no_gpt")
MODES = ["write", "exec", "breakpoint", "altp2m_write", "altp2m_exec", "debug", "cpuid",
         "desc_access", "write_ctrlreg_cr4", "altp2m_write_no_gpt"]

PAGE = re.compile(r"PAGE ACCESS: (.)(.)(.) for GFN ([0-9a-f]+) \(offset ([0-9a-f]+)\) gla ([0-9a-f]+) "
                  r"\(valid: (.); fault in gpt: (.); fault with gla: (.)\) \(vcpu (\d+) \[(.)\], altp2m view (\d+)\)")
BREAK = re.compile(r"Breakpoint: rip=([0-9a-f]+), gfn=([0-9a-f]+) \(vcpu (\d+)\)")
STEP = re.compile(r"Singlestep: rip=([0-9a-f]+), vcpu (\d+), altp2m (\d+)")
DEBUG = re.compile(r"Debug exception: rip=([0-9a-f]+), vcpu (\d+)\. Type: (\d+)\. Length: (\d+)\. "
                   r"Pending dbg 0x([0-9a-f]+)")
CPUID = re.compile(r"CPUID executed: rip=([0-9a-f]+), vcpu (\d+)\. Insn length: (\d+) 0x([0-9a-f]+) "
                   r"0x([0-9a-f]+): EAX=")
DESC = re.compile(r"Descriptor access: rip=([0-9a-f]+), vcpu (\d+): VMExit info=0x([0-9a-f]+), "
                  r"descriptor=(\d+), is write=(\d+)")
CREG = re.compile(r"Control register written: rip=([0-9a-f]+), vcpu (\d+): reg=(\w*), "
                  r"old_value=([0-9a-f]+), new_value=([0-9a-f]+)")


def fetch_xen_access():
    """Debian's binary, unpacked in WORK (downloaded once per build directory)."""
    binary = os.path.join(WORK, "x/usr/lib/xen-4.17/bin/xen-access")
    if os.access(binary, os.X_OK):
        return binary
    os.makedirs(WORK, exist_ok=True)
    for old in glob.glob(os.path.join(WORK, "xen-utils-4.17_*.deb")):
        os.remove(old)
    dl = subprocess.run(["apt-get", "download", "xen-utils-4.17"], cwd=WORK, capture_output=True, text=True)
    debs = glob.glob(os.path.join(WORK, "xen-utils-4.17_*.deb"))
    if dl.returncode != 0 or not debs:
        print("SKIP: cannot download Debian's xen-utils-4.17: " + (dl.stderr.strip().splitlines() or ["?"])[-1])
        sys.exit(77)
    subprocess.run(["dpkg", "-x", debs[0], os.path.join(WORK, "x")], check=True)
    return binary


def lines(text, rx):
    return [m.groups() for m in (rx.search(line) for line in text.splitlines()) if m]


def expect(problems, ok, what):
    if not ok:
        problems.append(what)


def check_common(problems, out):
    """Every event comes from vCPU 0 of this one-vCPU guest."""
    for rx in (PAGE, BREAK, STEP, DEBUG, CPUID, DESC, CREG):
        for g in lines(out, rx):
            vcpu = g[9] if rx is PAGE else g[2] if rx is BREAK else g[1]
            expect(problems, vcpu == "0", "an event from vCPU %s (the guest has one vCPU)" % vcpu)


def own_accesses(out):
    """The guest's own accesses: PAGE ACCESS lines not from the page walker (gpt: n)."""
    return [g for g in lines(out, PAGE) if g[7] == "n"]


def check_write(p, out):
    got = [(g[0] + g[1] + g[2], int(g[3], 16), int(g[4], 16), int(g[5], 16), g[11]) for g in own_accesses(out)]
    want = [("-w-", gfn, 0, 0x600000 + 0x1000 * k, "0") for k, gfn in enumerate(range(0x30, 0x34))]
    expect(p, got == want, "write events %s, expected one per page %s" % (got, want))


def check_exec(p, out):
    got = [(g[0] + g[1] + g[2], int(g[3], 16)) for g in own_accesses(out)]
    expect(p, got == [("--x", 0x10), ("--x", 0x11)], "exec events %s, expected x on gfns 0x10 and 0x11" % got)


def check_breakpoint(p, out):
    got = [(int(r, 16), int(g, 16)) for r, g, _ in lines(out, BREAK)]
    want = [(0x400005, 0x10), (0x40000B, 0x10), (0x400011, 0x10)]
    expect(p, got == want, "breakpoints %s, expected %s" % (got, want))


def check_debug(p, out):
    got = [(int(g[0], 16), int(g[2]), int(g[3])) for g in lines(out, DEBUG)]
    want = [(0x400005, 5, 1), (0x40000B, 5, 1)]
    expect(p, got == want, "debug exceptions %s, expected ICEBP (type 5, length 1) at %s" % (got, want))


def check_cpuid(p, out):
    got = [(int(g[0], 16), int(g[2]), int(g[3], 16), int(g[4], 16)) for g in lines(out, CPUID)]
    want = [(0x400004, 2, 0, 0), (0x40000D, 2, 1, 0), (0x400016, 2, 7, 0)]
    expect(p, got == want, "CPUID events %s, expected %s" % (got, want))


def check_desc_access(p, out):
    got = [(int(g[3]), int(g[4])) for g in lines(out, DESC)]
    want = [(2, 0), (1, 0), (3, 0), (1, 1)]
    expect(p, got == want, "descriptor accesses (descriptor, is write) %s, expected sgdt sidt sldt lidt %s"
           % (got, want))


def check_write_ctrlreg_cr4(p, out):
    got = [(g[2], int(g[3], 16), int(g[4], 16)) for g in lines(out, CREG)]
    want = [("CR4", 0x40620, 0x40220), ("CR4", 0x40220, 0x40620)]
    expect(p, got == want, "CR4 writes %s, expected %s (the PGE-only writes masked)" % (got, want))


def check_altp2m_pairs(p, out):
    """Every access in view 1 is answered by a switch to view 0 and a single-step back."""
    events = [("A", m) for m in lines(out, PAGE)] + [("S", m) for m in lines(out, STEP)]
    order = [line for line in out.splitlines() if PAGE.search(line) or STEP.search(line)]
    kinds = "".join("A" if PAGE.search(line) else "S" for line in order)
    expect(p, kinds == "AS" * (len(kinds) // 2) and kinds, "events %s, expected PAGE ACCESS / Singlestep pairs"
           % kinds)
    for g in lines(out, PAGE):
        expect(p, g[11] == "1", "a PAGE ACCESS in view %s, expected view 1" % g[11])
    for g in lines(out, STEP):
        expect(p, g[2] == "0", "a Singlestep in view %s, expected view 0 (then switched back)" % g[2])
    expect(p, out.count("Switching altp2m to view 1!") == len(lines(out, STEP)),
           "not every Singlestep switched back to view 1")
    return events


def check_altp2m_write(p, out):
    check_altp2m_pairs(p, out)
    # View 1 is rx everywhere, page tables included.  Each instruction that writes in view 1
    # faults once and then runs whole in view 0: the fetch of the first instruction (the
    # walker sets accessed bits, gfn 0xff), the first write to gfn 0x30 (its walk sets the
    # data PTE's bits, gfn 0xfd), the second write to gfn 0x30 (its own access: the TLB
    # holds the translation), the write to gfn 0x31 (a new walk, gfn 0xfb).
    got = [(g[0] + g[1] + g[2], int(g[3], 16), g[7]) for g in lines(out, PAGE)]
    want = [("-w-", 0xFF, "y"), ("-w-", 0xFD, "y"), ("-w-", 0x30, "n"), ("-w-", 0xFB, "y")]
    expect(p, got == want, "writes in view 1 (access, gfn, in gpt) %s, expected %s" % (got, want))


def check_altp2m_exec(p, out, no_gpt=False):
    check_altp2m_pairs(p, out)
    own = own_accesses(out)
    expect(p, len(own) == 4, "%d fetch events, expected one per instruction (4, HLT included)" % len(own))
    for g in own:
        expect(p, g[0] + g[1] + g[2] == "--x" and int(g[3], 16) == 0x10, "a fetch event %s, expected x on gfn 0x10"
               % (g[:4],))
    if no_gpt:
        gpt = [g for g in lines(out, PAGE) if g[7] == "y"]
        expect(p, not gpt, "%d page-walk events with in-guest page faults emulated" % len(gpt))


CHECKS = {
    "write": check_write, "exec": check_exec, "breakpoint": check_breakpoint, "debug": check_debug,
    "cpuid": check_cpuid, "desc_access": check_desc_access, "write_ctrlreg_cr4": check_write_ctrlreg_cr4,
    "altp2m_write": check_altp2m_write, "altp2m_exec": check_altp2m_exec,
    "altp2m_write_no_gpt": lambda p, out: check_altp2m_exec(p, out, no_gpt=True),
}


def wait_for(cond, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def run_mode(xa, mode):
    """Runs one mode; returns (problems, log)."""
    d = os.path.join(WORK, mode)
    os.makedirs(d, exist_ok=True)
    sock = os.path.join(d, "serve.sock")
    scenario = os.path.join(SCENARIOS, mode.replace("_", "-") + ".yaml")
    env = dict(os.environ)
    with open(os.path.join(d, "serve.out"), "w") as so, open(os.path.join(d, "serve.err"), "w") as se:
        serve = subprocess.Popen([VMISIM, "serve", scenario, "--socket", sock, "--domid", "1", "--exit-when-halted"],
                                 stdout=so, stderr=se, env=env)
    if not wait_for(lambda: os.path.exists(sock) or serve.poll() is not None, 10) or serve.poll() is not None:
        serve.kill()
        return ["TEST ERROR: vmisim serve did not start: " + open(os.path.join(d, "serve.err")).read()], ""
    xenv = dict(env, VMISIM_SOCKET=sock, LD_LIBRARY_PATH=XENLIBS)
    if ASAN:
        # Debian's xen-access is not an ASan program: the runtime must come first.
        lib = subprocess.run(["cc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
        xenv.update(LD_PRELOAD=lib, ASAN_OPTIONS="detect_leaks=0")
    with open(os.path.join(d, "xa.out"), "w") as xo, open(os.path.join(d, "xa.err"), "w") as xe:
        xen_access = subprocess.Popen(["stdbuf", "-oL", xa, "1", mode], stdout=xo, stderr=xe, env=xenv)
    problems = []
    halted = wait_for(lambda: "the guest halted" in open(os.path.join(d, "serve.out")).read()
                      or xen_access.poll() is not None, 60)
    expect(problems, halted and xen_access.poll() is None,
           "the guest did not halt while xen-access ran (xen-access exit status %s)" % xen_access.poll())
    if xen_access.poll() is None:
        xen_access.send_signal(signal.SIGINT)
    try:
        xs = xen_access.wait(30)
    except subprocess.TimeoutExpired:
        xen_access.kill()
        xs = "hung"
    try:
        ss = serve.wait(30)
    except subprocess.TimeoutExpired:
        serve.send_signal(signal.SIGINT)
        ss = "still running after xen-access left"
        serve.wait(10)
    out = open(os.path.join(d, "xa.out")).read()
    err = open(os.path.join(d, "xa.err")).read()
    serve_out = open(os.path.join(d, "serve.out")).read() + open(os.path.join(d, "serve.err")).read()
    # xen-access's altp2m modes end by turning single-step off for vCPUs 0..31; Xen (and vmisim)
    # refuse the ones a one-vCPU domain does not have, so they exit -1 (255), as on a real host.
    want_status, want_code = (255, "xenaccess exit code -1") if mode in ALTP2M else (0, "xenaccess exit code 0")
    expect(problems, xs == want_status, "xen-access exit status %s, expected %s" % (xs, want_status))
    expect(problems, want_code in err, "xen-access did not shut down cleanly (no '%s')" % want_code)
    expect(problems, "shutting down on signal 2" in err, "xen-access did not stop on SIGINT")
    expect(problems, ss == 0, "vmisim serve exit status %s" % ss)
    expect(problems, re.search(r"summary:.*the guest halted", serve_out) is not None,
           "the guest did not run on to its end")
    check_common(problems, out)
    CHECKS[mode](problems, out)
    log = "--- xen-access stdout\n%s--- xen-access stderr (no 'Got event')\n%s--- vmisim serve\n%s" % (
        out, "".join(line + "\n" for line in err.splitlines() if "Got event" not in line), serve_out)
    return problems, log


def main():
    xa = fetch_xen_access()
    modes = REST or MODES
    passed = failed = 0
    for mode in modes:
        problems, log = run_mode(xa, mode)
        if problems:
            failed += 1
            print("FAIL xen-access %s" % mode)
            for what in problems:
                print("  - " + what)
            print(log)
        else:
            passed += 1
            print("PASS xen-access %s" % mode)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
