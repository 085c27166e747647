#!/usr/bin/env python3
"""Run every molecule scenario, in lanes that run side by side.

Two scenarios may run at the same time only when their lab hosts differ
(scripts/lab/lab.py claims a host for one user at a time). The lanes are made
from the scenarios' own molecule.yml: scenarios sharing a host go into one lane
and run one after the other there; lanes run in parallel, at most --jobs at a
time. Each scenario's output goes to LOGDIR/<scenario>.log; a failed one is
printed whole at the end. Exit 1 when any scenario failed.

    molecule_lanes.py [--jobs N] [--logdir DIR] [SCENARIO ...]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def scenarios() -> dict[str, set[str]]:
    """Every scenario with the lab hosts it uses (its platforms)."""
    out = {}
    for f in sorted((ROOT / "molecule").glob("*/molecule.yml")):
        out[f.parent.name] = set(re.findall(r"^\s*-\s*name:\s*(lab\d+)\s*$", f.read_text(), re.M))
    return out


def lanes(hosts: dict[str, set[str]]) -> list[list[str]]:
    """Scenarios grouped so that no two lanes share a host (connected components)."""
    groups: list[tuple[set[str], list[str]]] = []
    for name, used in hosts.items():
        touching = [g for g in groups if g[0] & used or not used]
        merged_hosts, merged_names = set(used), []
        for g in touching:
            merged_hosts |= g[0]
            merged_names += g[1]
            groups.remove(g)
        groups.append((merged_hosts, merged_names + [name]))
    # The heaviest lanes first, so that the light ones fill in after.
    return sorted((names for _, names in groups), key=lambda names: (-sum(weight(n, hosts[n]) for n in names), names))


def weight(name: str, used: set[str]) -> int:
    """A scenario's expected length: its test_sequence's steps times its hosts
    (a converge on three hosts takes longer than on one)."""
    text = (ROOT / "molecule" / name / "molecule.yml").read_text()
    sequence = text.split("test_sequence:", 1)[1] if "test_sequence:" in text else ""
    return max(1, len(re.findall(r"^\s+-\s+\S", sequence, re.M))) * max(1, len(used))


def run_lane(lane: list[str], logdir: Path) -> list[tuple[str, int, float]]:
    results = []
    for name in lane:
        start = time.monotonic()
        with open(logdir / (name + ".log"), "w") as log:
            rc = subprocess.call(["molecule", "test", "--scenario-name", name], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        results.append((name, rc, time.monotonic() - start))
        print("molecule %-12s %s in %4.0fs" % (name, "passed" if rc == 0 else "FAILED", results[-1][2]), flush=True)
        if rc != 0:
            break  # the lane's hosts may be left up; the next scenario's create would find them taken
    return results


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def failures(log: str, width: int = 700) -> list[str]:
    """The failed tasks of a molecule log: the task's name, then its fatal line, shortened."""
    out, task, more = [], "", 0
    for raw in log.splitlines():
        line = ANSI.sub("", raw).strip(" \u2502")
        if line.startswith("TASK ["):
            task, more = line.rstrip("* "), 0
        elif line.startswith(("fatal:", "failed:")) or "FAILED!" in line or line.startswith("ERROR"):
            out += [task, "  " + line[:width]]
            more = 12  # the message goes on over the lines molecule wrapped it into
        elif more and line:
            out.append("  " + line[:width])
            more -= 1
    return out


def gaps(log: str, width: int = 3000) -> list[str]:
    """The distinct "WARNING known gap" messages of a molecule log, shortened."""
    out: list[str] = []
    for raw in log.splitlines():
        line = ANSI.sub("", raw)
        at = line.find("WARNING known gap")
        if at >= 0 and '"msg"' in line[:at]:
            msg = line[at:].rstrip().rstrip('"').replace('\\"', '"')[:width]
            if msg not in out:
                out.append(msg)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--logdir", default=str(ROOT / ".cache" / "molecule-logs"))
    parser.add_argument("only", nargs="*")
    args = parser.parse_args(argv)
    hosts = scenarios()
    if args.only:
        hosts = {k: v for k, v in hosts.items() if k in args.only}
    logdir = Path(args.logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    plan = lanes(hosts)
    print("molecule lanes: " + " | ".join(" ".join(lane) for lane in plan), flush=True)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = [r for lane_results in pool.map(lambda lane: run_lane(lane, logdir), plan) for r in lane_results]
    ran = {name for name, _, _ in results}
    failed = [name for name, rc, _ in results if rc != 0]
    for name in failed:
        print("\n==== molecule %s failed; its output (%s):" % (name, logdir / (name + ".log")))
        sys.stdout.write((logdir / (name + ".log")).read_text(errors="replace"))
    for name in failed:
        # Last, where a CI page's tail shows it: each failed task with its message.
        print("\n==== molecule %s: the failed tasks" % name)
        for line in failures((logdir / (name + ".log")).read_text(errors="replace")):
            print(line)
    for name in sorted(ran):
        # A scenario that passed may still name a known gap (a warning, not an
        # assertion): shown here, where CI's page keeps it.
        for line in gaps((logdir / (name + ".log")).read_text(errors="replace")):
            print("==== molecule %s: %s" % (name, line))
    skipped = sorted(set(hosts) - ran)
    if skipped:
        print("not run (an earlier scenario of their lane failed): " + " ".join(skipped))
    return 1 if failed or skipped else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
