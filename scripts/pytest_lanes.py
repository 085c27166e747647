#!/usr/bin/env python3
"""Run tests/integration in pytest processes side by side.

The tests that drive lab hosts (over ssh: they mostly wait on the hosts'
ansible runs) are grouped by the hosts they use: a file's fixed hosts
(`HOSTS = (7, 8, 9)`), or, for a file that takes free hosts (conftest's
lab_hosts, labhosts.acquire: from lab19 down), lab16-19. Files whose hosts
overlap share a lane and run one after the other in it; every other test goes
into the `local` lane. Lanes run at the same time. Each lane's output goes to
LOGDIR/<lane>.log and is printed whole at the end; exit 1 when a lane failed.

    pytest_lanes.py [--logdir DIR] -- PYTEST_ARGS...
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests" / "integration"
# A test file that asks for a lab host by one of conftest's fixtures.
USES_LAB = re.compile(r"\b(lab_host|lab_hosts|fixed_lab_hosts|labhosts)\b")


FIXED = re.compile(r"^[A-Z_]*HOSTS = \(([0-9, ]+)\)", re.M)
FREE_HOSTS = {16, 17, 18, 19}


def split() -> dict[str, list[str]]:
    """Lane name -> its test files, relative to ROOT: `local`, then one lane per
    group of lab files whose hosts overlap."""
    local, groups = [], []  # groups: (hosts, files)
    for f in sorted(TESTS.glob("test_*.py")):
        text, rel = f.read_text(), str(f.relative_to(ROOT))
        if not USES_LAB.search(text):
            local.append(rel)
            continue
        fixed = FIXED.search(text)
        hosts = {int(n) for n in fixed.group(1).replace(" ", "").split(",") if n} if fixed else set(FREE_HOSTS)
        touching = [g for g in groups if g[0] & hosts]
        for g in touching:
            groups.remove(g)
            hosts |= g[0]
        groups.append((hosts, [x for g in touching for x in g[1]] + [rel]))
    lanes = {"local": local}
    for hosts, files in sorted(groups, key=lambda g: min(g[0])):
        lanes["lab%d-%d" % (min(hosts), max(hosts))] = files
    return lanes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logdir", default=str(ROOT / ".cache" / "pytest-logs"))
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    extra = [a for a in args.pytest_args if a != "--"]
    logdir = Path(args.logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    lanes = split()
    procs = {}
    for name, files in lanes.items():
        log = open(logdir / (name + ".log"), "w")
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"] + files + extra
        procs[name] = (subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log, time.monotonic())
        print("pytest lane %-9s %s" % (name, " ".join(Path(f).stem for f in files)), flush=True)
    failed = []
    # Each lane as it ends (os.wait: whichever child exits first), so its time is its own.
    pending = {proc.pid: name for name, (proc, _, _) in procs.items()}
    while pending:
        pid, status = os.wait()
        name = pending.pop(pid, None)
        if name is None:
            continue
        proc, log, start = procs[name]
        rc = proc.returncode = os.waitstatus_to_exitcode(status)
        rc = 0 if rc == 5 else rc  # 5: -k left this lane no test to run
        log.close()
        print("pytest lane %-9s %s in %4.0fs" % (name, "passed" if rc == 0 else "FAILED", time.monotonic() - start), flush=True)
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
