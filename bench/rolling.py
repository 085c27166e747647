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
from datetime import date
from pathlib import Path

from per_task import ROOT, write_section


def main():
    with tempfile.TemporaryDirectory(prefix="valkeyops-rolling-bench-") as work:
        out = Path(work) / "result.json"
        env = dict(os.environ, VALKEYOPS_BENCH_ROLLING_OUT=str(out), SCENARIO="replication")
        subprocess.run(["make", "--no-print-directory", "molecule"], cwd=ROOT, env=env, check=True)
        r = json.loads(out.read_text())
    lg = r["loadgen"]
    pauses = r.get("pause_ms") or []
    window = lg["longest_unavailable_ms"]
    verdict = "**met**" if window < 1000 else "**not met**"
    body = f"""
A replication group of 3 data nodes and 3 Sentinels (lab4-lab6, TLS, Valkey 8.0.1, one 2-core
machine shared by every lab host), rolled twice by molecule's `replication` scenario
(`molecule/replication/rolling.yml`, written by `bench/rolling.py`): `rolling_restart.yml` (at
-vvvv --diff), then `site.yml` changing `databases`, which valkey_server leaves to the roll at its
end. Each roll restarts the two replicas, then moves the primary and restarts it. The move is one
`valkey_sentinel_failover` call on the primary's host: CLIENT PAUSE WRITE, the replicas' acknowledged
offsets equal, SENTINEL FAILOVER, the Sentinel names the promoted replica and it has left the old
primary, REPLICAOF on the old primary, CLIENT UNPAUSE, each wait polling every 2 ms. The client is
bench/loadgen `-sentinel main -wait 1 -workers 4 -rate 400` through both rolls: a write counts only
when a replica has it (WAIT 1), and every acknowledged write is read back at the end. Measured once
({date.today().isoformat()}); the "before" column is the same scenario with the move as a sequence of
Ansible tasks (one SSH round trip each, polls 1 s apart).

| | now | before |
|---|---:|---:|
| rolling_restart.yml, 3 nodes (s) | {r['roll_seconds']:.1f} | 33.6 |
| site.yml with the rolling config change, 3 nodes (s) | {r['site_roll_seconds']:.1f} | 101.4 |
| primaries moved | {len(pauses)} | 2 |
| writes paused per move, as the module measured it (ms) | {', '.join(f'{p:.0f}' for p in pauses)} | |
| acknowledged writes | {lg['acked_writes']} | 87672 |
| acknowledged writes lost | {lg['lost_keys']} | 0 |
| longest window the client could not write (ms) | {window:.0f} | 5009 |
| client errors (all kinds) | {sum(lg['errors'].values())} | 8 |

The goal of under 1 s per primary moved is {verdict} in this run. What is left of the window is
Valkey's own cadence, not the tooling's: a replica acknowledges its offset once a second
(`REPLCONF ACK` from its replication cron; the primary does not ask for acknowledgements while
writes are paused, since asking would move its offset), so waiting for the replicas takes 0-1 s; and
the Sentinel that fails over reads the promoted replica's INFO once a second during a failover and
names it only after that INFO says `role:master`, another 0-1 s. The client then finds the new
primary through the Sentinels (+switch-master, or its own refresh once a second).
"""
    write_section("Rolling restart of a replication group under load", body)


if __name__ == "__main__":
    main()
