#!/usr/bin/env python3
"""`vmisim fuzz-client` against buggy_monitor, an out-of-process Xen client with
deliberate bugs (tests/fuzz_client/buggy_monitor.c).  Issue 10's acceptance test for
section 2: "a deliberately buggy example client in tests/ is caught by vmisim
fuzz-client within its default budget, and the minimised reproducer replays the
failure".

For each variant of buggy_monitor (both bugs, each bug alone, none) the test runs

    vmisim fuzz-client --out R.yaml -- buggy_monitor {domid} ARGS

with the default budget and checks:
  - a buggy variant: exit status 1, the output names the failure class that bug
    makes (gfn-table: crash; unknown-reason: unreleased or hang; both: any of them), R.yaml is
    written, holds a handful of hypervisor steps (minimised) and is a scenario
    vmisim accepts (`vmisim serve R.yaml` builds its domain); then
        vmisim fuzz-client --replay R.yaml -- buggy_monitor {domid} ARGS
    exits 1 with the same class (hang and unreleased are one family: a request never
    answered), and the same replay against `--fixed` exits 0
    (the reproducer shows the bug, not an artefact of the harness);
  - the fixed variant: exit status 0 over 50 runs with a 5 s hang limit (no false
    positive; the whole default budget, in simulated time, is test_inproc's) and no
    reproducer written.

usage: test_fuzz_client.py VMISIM BUGGY_MONITOR WORKDIR [CASE...]
Cases: default gfn-table unknown-reason fixed (all when none is given).
Prints PASS/FAIL per case with the outputs of a failing one; exit 1 if any failed.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

VMISIM, MONITOR, WORK = sys.argv[1:4]
CASES = sys.argv[4:] or ["default", "gfn-table", "unknown-reason", "fixed"]

# case -> (buggy_monitor's arguments, the failure classes it may be caught with; None: must pass)
# A request never answered is `unreleased` when the client answered later ones and `hang` when it
# answered nothing more: one family (sim/fuzz_client.c, failure_family), which one a run sees
# depends on timing out of process.
VARIANTS = {
    "default": ([], ("crash", "unreleased", "hang")),
    "gfn-table": (["--bug=gfn-table"], ("crash",)),
    "unknown-reason": (["--bug=unknown-reason"], ("unreleased", "hang")),
    "fixed": (["--fixed"], None),
}
CLASSES = ("crash", "hang", "protocol", "unreleased")
FAMILY = {"hang": "unreleased"}


def family(cls):
    return FAMILY.get(cls, cls)
MAX_MINIMISED_STEPS = 8
DEFAULT_RUNS = 200  # vmisim fuzz-client's default budget: each bug must be found within it
FIXED_RUNS = 50     # runs of the fixed client (out of process, wall-clock hang limit)
TIMEOUT = 900  # seconds for one fuzz-client command (the ASan build is several times slower)

# "vmisim fuzz-client: FAILURE (crash) in run 2, seed 2: ..." and "vmisim fuzz-client: replay of FILE: crash: ..."
FOUND = re.compile(r"^vmisim fuzz-client: FAILURE \((\w+)\)", re.M)
REPLAYED = re.compile(r"^vmisim fuzz-client: replay of \S+: (\w+)", re.M)


def fuzz_client(args, client_args, log):
    """Runs vmisim fuzz-client; returns (exit status, stdout + stderr, seconds)."""
    cmd = [VMISIM, "fuzz-client"] + args + ["--", MONITOR, "{domid}"] + client_args
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
        status, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        status = "timeout"
        out = (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(errors="replace")
    secs = time.monotonic() - t0
    log.append("$ %s\n(exit %s after %.1f s)\n%s" % (" ".join(cmd), status, secs, out))
    return status, out, secs


def failure_class(out):
    """The class the output names in its verdict line, or None."""
    m = FOUND.search(out) or REPLAYED.search(out)
    return m.group(1) if m and m.group(1) in CLASSES else None


def hypervisor_steps(path):
    """The list items of the reproducer's top-level `hypervisor:` section."""
    n, inside = 0, False
    with open(path) as f:
        for line in f:
            if line.startswith("hypervisor:"):
                inside = True
                continue
            if inside and line[:1] not in (" ", "-", "#", "\n", ""):
                inside = False
            if inside and re.match(r"^ {0,2}- ", line):
                n += 1
    return n


def served(path, problems, log):
    """`vmisim serve` parses the reproducer and builds its domain (it says it listens)."""
    # A short socket path (a unix socket's path has at most 107 bytes; build directories may be deep).
    sockdir = tempfile.mkdtemp(prefix="vmisim-fc-")
    sock = os.path.join(sockdir, "sock")
    p = subprocess.Popen([VMISIM, "serve", path, "--socket", sock], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    end = time.monotonic() + 60
    while time.monotonic() < end and not os.path.exists(sock) and p.poll() is None:
        time.sleep(0.05)
    listening = os.path.exists(sock) and p.poll() is None
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
    try:
        out, _ = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    log.append("$ vmisim serve %s\n(exit %s)\n%s" % (path, p.returncode, out))
    shutil.rmtree(sockdir, ignore_errors=True)
    if not listening:
        problems.append("vmisim serve did not accept the reproducer (exit %s)" % p.returncode)


def run_case(case):
    client_args, classes = VARIANTS[case]
    problems, log = [], []
    out_path = os.path.join(WORK, "reproducer-%s.yaml" % case)
    if os.path.exists(out_path):
        os.remove(out_path)
    # The fixed client: FIXED_RUNS runs with a generous hang limit (a wall-clock limit on a loaded
    # ASan build is the one source of false positives); the whole default budget, deterministic,
    # is test_inproc's (in-process, simulated time).
    extra = ["--runs", str(FIXED_RUNS), "--hang-ms", "5000"] if classes is None else []
    status, out, secs = fuzz_client(["--out", out_path] + extra, client_args, log)
    timing = ["%s: fuzz %.1f s" % (case, secs)]

    if classes is None:
        if status != 0:
            problems.append("the fixed client was flagged (exit %s, %s): a false positive"
                            % (status, failure_class(out)))
        if os.path.exists(out_path):
            problems.append("a reproducer was written with no finding")
        m = re.search(r"no failure in (\d+) run", out)
        if status == 0 and (not m or int(m.group(1)) != FIXED_RUNS):
            problems.append("not all %d runs were run (%s)" % (FIXED_RUNS, m.group(0) if m else "no summary line"))
        return problems, log, timing

    found = failure_class(out)
    if status != 1:
        problems.append("exit status %s, expected 1 (a failure found)" % status)
    if found not in classes:
        problems.append("the failure named is %s, expected %s" % (found, " or ".join(classes)))
    if not os.path.exists(out_path):
        problems.append("no reproducer written at %s" % out_path)
        return problems, log, timing
    steps = hypervisor_steps(out_path)
    if not 1 <= steps <= MAX_MINIMISED_STEPS:
        problems.append("the reproducer holds %d hypervisor steps, expected a handful (1-%d)"
                        % (steps, MAX_MINIMISED_STEPS))
    served(out_path, problems, log)

    status, out, secs = fuzz_client(["--replay", out_path], client_args, log)
    timing.append("replay %.1f s" % secs)
    replayed = failure_class(out)
    if status != 1 or replayed is None or family(replayed) != family(found):
        problems.append("the replay gave exit %s, %s; expected exit 1, %s" % (status, replayed, found))
    status, out, secs = fuzz_client(["--replay", out_path, "--hang-ms", "5000"], ["--fixed"], log)
    timing.append("replay against --fixed %.1f s" % secs)
    if status != 0:
        problems.append("the reproducer fails the fixed client too (exit %s, %s)" % (status, failure_class(out)))
    return problems, log, timing


def main():
    os.makedirs(WORK, exist_ok=True)
    passed = failed = 0
    for case in CASES:
        problems, log, timing = run_case(case)
        print(", ".join(timing))
        if problems:
            failed += 1
            print("FAIL fuzz-client %s" % case)
            for p in problems:
                print("  - " + p)
            print("\n".join(log))
        else:
            passed += 1
            print("PASS fuzz-client %s" % case)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
