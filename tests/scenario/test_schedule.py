#!/usr/bin/env python3
"""tests/scenario/test_schedule.py -- seeds, --explore, record and replay (issue 8).

Each case proves one promise: seed 0 is the schedule vmisim always had (the
round-robin order of the race scenario; test_runner.py's determinism case
shows that --seed 0 gives every scenario the log it has without a seed); a seed reproduces exactly; --explore finds both the
passing and the failing interleavings of scenarios/race-singlestep-reprotect
and names a failing seed whose command reproduces the failure; a recording of
that seed replays with the same requests and the same failure, also with the
recording standing in for the client; a changed scenario, a corrupt or
truncated recording and a tampered entry are refused or reported precisely.
Ends with "N passed, N failed".
"""
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

VMISIM, SCENARIOS = sys.argv[1], sys.argv[2]
RACE = os.path.join(SCENARIOS, "race-singlestep-reprotect.yaml")
results = []


def vmisim(*args, timeout=300):
    p = subprocess.run([VMISIM, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def case(name):
    def wrap(fn):
        try:
            fn()
            results.append((name, None))
        except AssertionError as e:
            results.append((name, str(e) or "assertion failed"))
        return fn
    return wrap


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def requests(out):
    """The '#N request ...' lines of a run's log: the event sequence as the client saw it."""
    return [l.strip() for l in out.splitlines() if re.match(r"\s+#\d+\s+request ", l)]


def all_scenarios():
    return sorted(os.path.join(SCENARIOS, f) for f in os.listdir(SCENARIOS) if f.endswith(".yaml"))


_explored = {}


def explore_race(n=40, fresh=False):
    if fresh or n not in _explored:
        rc, out, err = vmisim("run", "--explore", str(n), RACE)
        m = re.search(r"first failing seed: (\d+)", out)
        _explored[n] = (rc, out, err, int(m.group(1)) if m else None)
    return _explored[n]


def parallel(fn, items):
    """The slow cases run their vmisim processes side by side (each is single-threaded)."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
        return list(pool.map(fn, items))


@case("seed 0 keeps round robin: the race scenario sees vCPU 0's write, its step, then vCPU 1's")
def _():
    rc, out, _ = vmisim("run", RACE)
    expect(rc == 0, f"exit {rc}\n{out}")
    seq = [re.sub(r"^#\d+\s+request\s+", "", l).split(" gfn")[0] for l in requests(out)]
    expect(seq == ["MEM_ACCESS vCPU 0", "SINGLESTEP vCPU 0", "MEM_ACCESS vCPU 1", "SINGLESTEP vCPU 1"], seq)


@case("the same seed twice gives byte-identical output; other seeds give other orders")
def _():
    outs = {}
    for seed in ["7", "7", "8", "9", "10", "11"]:
        rc, out, err = vmisim("run", "--seed", seed, RACE, os.path.join(SCENARIOS, "two-vcpus-deferred.yaml"))
        expect(rc in (0, 1), f"seed {seed}: exit {rc}\n{out}{err}")
        expect("schedule: seed " + seed in out, f"the log must name the seed\n{out}")
        outs.setdefault(seed, []).append(out)
    expect(outs["7"][0] == outs["7"][1], "two runs of seed 7 differ")
    orders = {tuple(requests(o[0])) for o in outs.values()}
    expect(len(orders) >= 2, "five seeds all gave the same event sequence: the seed changes nothing")


@case("--explore finds the passing and the failing interleavings and names a failing seed (exit 1)")
def _():
    rc, out, err, seed = explore_race()
    expect(rc == 1, f"exit {rc}\n{out}{err}")
    expect(re.search(r"sequence [0-9a-f]{16}: PASS", out) and re.search(r"sequence [0-9a-f]{16}: FAIL", out), out)
    expect(seed is not None, out)
    expect(f"vmisim run --seed {seed} {RACE}" in out, "the reproducing command must be printed\n" + out)
    expect("EXPLORE race-singlestep-reprotect: 40 seed(s)" in out, out)
    expect(re.search(r"seeds/s", err), "the speed goes to stderr\n" + err)
    # The report is deterministic too.
    expect(explore_race(fresh=True)[1] == out, "two explorations gave different reports")
    # The seed it names fails on its own, with 2 of the 4 events.
    rc, out, _ = vmisim("run", "--seed", str(seed), RACE)
    expect(rc == 1 and "FAIL race-singlestep-reprotect: 2 event(s)" in out, f"exit {rc}\n{out}")


@case("--explore of a scenario that passes under every seed exits 0")
def _():
    rc, out, err = vmisim("run", "--explore", "5", os.path.join(SCENARIOS, "quickstart.yaml"))
    expect(rc == 0 and "1 distinct event sequence(s), 0 failing seed(s)" in out, f"exit {rc}\n{out}{err}")


@case("a recording of the failing seed replays with the same requests and the same failure")
def _():
    _, _, _, seed = explore_race()
    with tempfile.TemporaryDirectory() as tmp:
        rec = os.path.join(tmp, "race.rec")
        rc, run_out, err = vmisim("run", "--seed", str(seed), "--record", rec, RACE)
        expect(rc == 1 and os.path.exists(rec), f"exit {rc}\n{run_out}{err}")
        expect(f"replay with: vmisim replay {rec}" in run_out, run_out)
        rc, out, err = vmisim("replay", rec)
        expect(rc == 0, f"exit {rc}\n{out}{err}")
        expect(requests(out) == requests(run_out) and len(requests(out)) == 2,
               f"the replay's requests differ:\n{requests(run_out)}\n{requests(out)}")
        expect("FAIL race-singlestep-reprotect" in out and "reproduced" in out and "verdict FAIL" in out, out)


@case("replay --as-client reproduces the failure without the scripted client")
def _():
    _, _, _, seed = explore_race()
    with tempfile.TemporaryDirectory() as tmp:
        rec = os.path.join(tmp, "race.rec")
        vmisim("run", "--quiet", "--seed", str(seed), "--record", rec, RACE)
        rc, out, err = vmisim("replay", "--as-client", rec)
        expect(rc == 0, f"exit {rc}\n{out}{err}")
        expect(" expected  matches" not in out, "the scripted client must not run\n" + out)
        expect("(recorded) xc_set_mem_access(rw, gfn 0x20, count 1) -> 0" in out, out)
        # The scenario's own final assertion sees the lost write, with no client script involved.
        expect("2 event(s) in all (expected 4)" in out, out)
        expect("FAIL race-singlestep-reprotect" in out and "verdict FAIL" in out, out)


# One scenario per kind of thing a recording holds: every client call (set_access, altp2m_access,
# change_gfn, inject, paging_load, max_pages), held responses, three rings, the introspector's
# second schedule, many vCPUs, a run that ends blocked, and version 1 slots.
REPLAYED = ["quickstart", "two-vcpus-deferred", "altp2m-drakvuf-breakpoint", "altp2m-change-gfn",
            "int3-reinject", "paging-load-bytes", "paging-two-vcpus-one-request", "sharing-enomem",
            "v1-paging-evict-fail-two-rings", "memmap-alias-both-ways", "never-relaxes",
            "vcpus-four-same-page", "v1-singlestep-toggle", "hcall-shutdown", "hypervisor-event-burst",
            "hypervisor-late-event"]


@case("scenarios of every kind, recorded with seeds 0 and 3, replay in both modes")
def _():
    with tempfile.TemporaryDirectory() as tmp:
        def one(item):
            f, seed = item
            bad = []
            rec = os.path.join(tmp, f"{os.path.basename(f)}-{seed}.rec")
            vmisim("run", "--quiet", "--seed", seed, "--record", rec, f)
            for mode in ([], ["--as-client"]):
                rc, out, err = vmisim("replay", "--quiet", *mode, rec)
                if rc != 0:
                    bad.append(f"{os.path.basename(f)} seed {seed} {mode}: exit {rc}: {out[-300:]}{err[-300:]}")
            return bad
        items = [(os.path.join(SCENARIOS, n + ".yaml"), seed) for n in REPLAYED for seed in ("0", "3")
                 if os.path.exists(os.path.join(SCENARIOS, n + ".yaml"))]
        expect(len(items) >= 20, f"only {len(items)} of the scenarios to replay exist")
        bad = [b for r in parallel(one, items) for b in r]
        expect(not bad, "\n".join(bad[:5]))


@case("a replay against a changed scenario is refused (exit 2)")
def _():
    with tempfile.TemporaryDirectory() as tmp:
        scen, rec = os.path.join(tmp, "race.yaml"), os.path.join(tmp, "race.rec")
        open(scen, "w").write(open(RACE).read())
        vmisim("run", "--quiet", "--seed", "3", "--record", rec, scen)
        open(scen, "a").write("# one more line\n")
        rc, out, err = vmisim("replay", rec)
        expect(rc == 2 and "is not the scenario" in err and "recorded from" in err, f"exit {rc}\n{out}{err}")
        rc, out, err = vmisim("replay", "--scenario", RACE, rec)
        expect(rc == 0, f"--scenario with the unchanged file must replay: exit {rc}\n{out}{err}")


@case("corrupt, truncated and unknown-version recordings give file:line errors (exit 2)")
def _():
    with tempfile.TemporaryDirectory() as tmp:
        rec = os.path.join(tmp, "ok.rec")
        vmisim("run", "--quiet", "--seed", "5", "--record", rec, RACE)
        text = open(rec).read()
        lines = text.split("\n")
        req = next(i for i, l in enumerate(lines) if l.startswith("request "))
        sched = next(i for i, l in enumerate(lines) if l.startswith("sched "))
        bad = {
            "garbage": ("hello\n", r"bad\.rec:1: not a vmisim recording"),
            "version": (text.replace("vmisim-record 1", "vmisim-record 2", 1), r"bad\.rec:1: recording format version '2'"),
            "truncated": ("\n".join(lines[: req + 1]) + "\n", r"bad\.rec:\d+: the file ends without 'verdict'"),
            "no newline": (text.rstrip("\n"), r"bad\.rec:\d+: the last line has no line break"),
            "hex": ("\n".join(lines[:req] + [lines[req][:-2] + "zz"] + lines[req + 1:]),
                    rf"bad\.rec:{req + 1}: the slot bytes of this request: 'z'"),
            "sched": ("\n".join(lines[:sched] + ["sched 0 one 10"] + lines[sched + 1:]),
                      rf"bad\.rec:{sched + 1}: a malformed 'sched' entry"),
            "entry": ("\n".join(lines[:sched] + ["jump 3"] + lines[sched + 1:]), rf"bad\.rec:{sched + 1}: unknown entry 'jump'"),
            "binary": (text.replace("begin", "be\0gin", 1), r"bad\.rec:\d+: a NUL byte"),
        }
        for name, (content, want) in bad.items():
            path = os.path.join(tmp, "bad.rec")
            open(path, "w").write(content)
            rc, out, err = vmisim("replay", path)
            expect(rc == 2 and re.search(want, err), f"{name}: exit {rc}, wanted /{want}/\n{out}{err}")
            expect("REPLAY" not in out, f"{name}: nothing may run from a corrupt file\n{out}")


@case("a tampered request or schedule is a divergence named by its entry and line (exit 1)")
def _():
    with tempfile.TemporaryDirectory() as tmp:
        rec = os.path.join(tmp, "ok.rec")
        vmisim("run", "--quiet", "--seed", "5", "--record", rec, RACE)
        lines = open(rec).read().split("\n")
        body = lines.index("begin") + 1
        entries = [i for i in range(body, len(lines)) if lines[i] and not lines[i].startswith("#")]
        req = next(i for i in entries if lines[i].startswith("request "))
        n = entries.index(req) + 1
        # Byte 0x18 of a MEM_ACCESS slot is the gfn's low byte: 0x20 becomes 0x21.
        ring, hexs = lines[req].split(" ")[1:]
        tampered = lines[:req] + [f"request {ring} {hexs[:48]}21{hexs[50:]}"] + lines[req + 1:]
        path = os.path.join(tmp, "t.rec")
        open(path, "w").write("\n".join(tampered))
        for mode in ([], ["--as-client"]):
            rc, out, err = vmisim("replay", *mode, path)
            expect(rc == 1, f"{mode}: exit {rc}\n{out}{err}")
            expect(f"DIVERGED at entry {n} (line {req + 1}): expected a request on the monitor ring: "
                   f"MEM_ACCESS" in out and "gfn 0x21" in out and "first differ at byte 0x18: recorded 0x21, now 0x20"
                   in out, f"{mode}:\n{out}")
        # A decision to run a vCPU that cannot run (the guest has two).
        sched = next(i for i in entries if lines[i].startswith("sched 0 "))
        q = lines[sched].split(" ")[3]
        open(path, "w").write("\n".join(lines[:sched] + [f"sched 0 5 {q}"] + lines[sched + 1:]))
        rc, out, err = vmisim("replay", path)
        expect(rc == 1 and f"(line {sched + 1}): the recording runs vCPU 5 here, but vCPU 5 is not runnable now"
               in out, f"exit {rc}\n{out}{err}")


@case("--record needs one scenario; --explore refuses --record; bad seeds are refused (exit 2)")
def _():
    with tempfile.TemporaryDirectory() as tmp:
        rec = os.path.join(tmp, "x.rec")
        rc, _, err = vmisim("run", "--record", rec, RACE, RACE)
        expect(rc == 2 and "exactly one scenario" in err, f"exit {rc}\n{err}")
        rc, _, err = vmisim("run", "--explore", "3", "--record", rec, RACE)
        expect(rc == 2 and "--explore" in err, f"exit {rc}\n{err}")
        rc, _, err = vmisim("run", "--seed", "-1", RACE)
        expect(rc == 2 and "--seed '-1' is not a number" in err, f"exit {rc}\n{err}")
        rc, _, err = vmisim("run", "--explore", "0", RACE)
        expect(rc == 2 and "--explore 0" in err, f"exit {rc}\n{err}")


for name, err in results:
    print(("ok     " if err is None else "FAILED ") + name)
    if err:
        print("       " + err.replace("\n", "\n       "))
failed = sum(1 for _, e in results if e)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
