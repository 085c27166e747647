"""Rolling restarts under load: molecule's `replication` scenario (3 data
nodes + 3 Sentinels on lab4-lab6, TLS) runs rolling_restart.yml and then a
rolling config change through site.yml while bench/loadgen writes through
the Sentinels, each write acknowledged only after WAIT 1, and reads every
acknowledged write back at the end. molecule/replication/rolling.yml writes
its numbers to VALKEYOPS_BENCH_ROLLING_OUT; this script runs the scenario
and writes its section of docs/benchmarks.md. Not part of `make test`.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from per_task import ROOT, write_section


def main():
    with tempfile.TemporaryDirectory(prefix="valkeyops-rolling-bench-") as work:
        out = Path(work) / "result.json"
        env = dict(os.environ, VALKEYOPS_BENCH_ROLLING_OUT=str(out), SCENARIO="replication")
        subprocess.run(["make", "--no-print-directory", "molecule"], cwd=ROOT, env=env, check=True)
        r = json.loads(out.read_text())
    lg = r["loadgen"]
    body = f"""
A replication group of 3 data nodes and 3 Sentinels (lab4-lab6, TLS, Valkey 8.0.1, one 2-core
machine shared by every lab host), rolled twice by molecule's `replication` scenario
(`molecule/replication/rolling.yml`, written by `bench/rolling.py`): `rolling_restart.yml` (at
-vvvv --diff), then `site.yml` changing `databases`, which valkey_server leaves to the roll at its
end. Each roll restarts the two replicas, then moves the primary (CLIENT PAUSE WRITE, offsets equal,
SENTINEL FAILOVER, the old primary follows, the pause ends) and restarts it. The client is
bench/loadgen `-sentinel main -wait 1 -workers 4 -rate 400` through both rolls: a write counts only
when a replica has it (WAIT 1), and every acknowledged write is read back at the end.

| | value |
|---|---:|
| rolling_restart.yml, 3 nodes (s) | {r['roll_seconds']:.1f} |
| site.yml with the rolling config change, 3 nodes (s) | {r['site_roll_seconds']:.1f} |
| primaries moved | 2 |
| acknowledged writes | {lg['acked_writes']} |
| acknowledged writes lost | {lg['lost_keys']} |
| longest window the client could not write (ms) | {lg['longest_unavailable_ms']:.0f} |
| client errors (all kinds) | {sum(lg['errors'].values())} |

The longest window is the move of a primary: writes are paused while Ansible, one task and one SSH
round trip at a time, waits for the replicas' offsets, asks a Sentinel to fail over, waits for the
promoted replica's `role:master` and repoints the old primary. The goal of under 1 s per primary moved
needs the move in one module call on the primary's host (not done yet).
"""
    write_section("Rolling restart of a replication group under load", body)


if __name__ == "__main__":
    main()
