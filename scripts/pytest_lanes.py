#!/usr/bin/env python3
"""Run tests/integration in two pytest processes side by side.

The tests that drive lab hosts (over ssh: they mostly wait on the hosts'
ansible runs) go into one lane, every other test into the other, so that the
two kinds of waiting overlap on this 2-core machine. The lab lane keeps its
tests one after the other: the lab hosts they take are shared among them.
Each lane's output goes to LOGDIR/<lane>.log and is printed whole at the end,
the lab lane's last; exit 1 when either lane failed.

    pytest_lanes.py [--logdir DIR] -- PYTEST_ARGS...
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests" / "integration"
# A test file that asks for a lab host by one of conftest's fixtures.
USES_LAB = re.compile(r"\b(lab_host|lab_hosts|fixed_lab_hosts|labhosts)\b")


def split() -> tuple[list[str], list[str]]:
    """(lab files, other files), relative to ROOT."""
    lab, other = [], []
    for f in sorted(TESTS.glob("test_*.py")):
        (lab if USES_LAB.search(f.read_text()) else other).append(str(f.relative_to(ROOT)))
    return lab, other


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logdir", default=str(ROOT / ".cache" / "pytest-logs"))
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    extra = [a for a in args.pytest_args if a != "--"]
    logdir = Path(args.logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    lab, other = split()
    lanes = {"local": other, "lab": lab}
    procs = {}
    for name, files in lanes.items():
        log = open(logdir / (name + ".log"), "w")
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"] + files + extra
        procs[name] = (subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log, time.monotonic())
        print("pytest lane %-5s %d files" % (name, len(files)), flush=True)
    failed = []
    for name, (proc, log, start) in procs.items():
        rc = proc.wait()
        log.close()
        print("pytest lane %-5s %s in %4.0fs" % (name, "passed" if rc == 0 else "FAILED", time.monotonic() - start), flush=True)
        if rc != 0:
            failed.append(name)
    for name in lanes:
        print("\n==== pytest lane %s (%s)" % (name, logdir / (name + ".log")))
        sys.stdout.write((logdir / (name + ".log")).read_text(errors="replace"))
    if failed:
        print("\n==== failed lanes: " + " ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
