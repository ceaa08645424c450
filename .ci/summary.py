#!/usr/bin/env python3
"""Counts the test cases of one or more Meson build directories.

Reads each build's meson-logs/testlog.json.  A Criterion test binary counts as
its own test cases (its "Synthesis" line); any other test counts as one.
Prints one line per build, then the total as "N passed, N failed".
"""
import json
import re
import sys

SYNTHESIS = re.compile(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)")


def count(build):
    passed = failed = 0
    try:
        with open(f"{build}/meson-logs/testlog.json") as log:
            lines = [json.loads(line) for line in log if line.strip()]
    except OSError as err:
        print(f"summary: no test log in {build}: {err}", file=sys.stderr)
        return 0, 1
    for test in lines:
        ok = test.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
        output = (test.get("stdout") or "") + (test.get("stderr") or "")
        found = SYNTHESIS.findall(output)
        if found:
            tested, passing, failing, crashing = map(int, found[-1])
            passed += passing
            failed += tested - passing
            if not ok and tested == passing:
                failed += 1  # the binary failed outside its test cases
        elif ok:
            passed += 1
        else:
            failed += 1
    return passed, failed


total_passed = total_failed = 0
for build in sys.argv[1:]:
    p, f = count(build)
    print(f"{build}: {p} passed, {f} failed")
    total_passed += p
    total_failed += f
print(f"{total_passed} passed, {total_failed} failed")
sys.exit(1 if total_failed else 0)
