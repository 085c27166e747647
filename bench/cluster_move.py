"""valkey_cluster slot moves: a grow from 6 to 8 nodes (4096 slots, with
their keys, to the new primary) through valkey-cli's rebalance, once with no
client and once while a capped cluster client (internal/loadgen) writes and
reads back keys in every slot; the client's latency during the move against
the same client with no move. Real valkey-server nodes on 127.0.0.1-3
(modules/cluster's TestBenchSlotMove does the work). Writes its section of
docs/benchmarks.md. Not part of `make test`.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from per_task import ROOT, write_section


def main():
    with tempfile.TemporaryDirectory(prefix="valkeyops-cluster-bench-") as work:
        out = Path(work) / "result.json"
        env = dict(os.environ, VALKEYOPS_BENCH_CLUSTER_OUT=str(out))
        subprocess.run(["go", "test", "-count=1", "-timeout", "20m", "-run", "^TestBenchSlotMove$", "./modules/cluster/"],
                       cwd=ROOT, env=env, check=True)
        r = json.loads(out.read_text())
    idle, during = r["client_without_move"], r["client_during_move"]

    def ratio(key):
        base = idle["latency_ms"][key]
        return "%.1fx" % (during["latency_ms"][key] / base) if base else "-"

    def client_row(name, c):
        lat = c["latency_ms"]
        cells = [name, c["acked_writes"], "%.2f" % lat["p50"], "%.2f" % lat["p90"], "%.2f" % lat["p99"], "%.1f" % lat["max"],
                 "%.0f" % c["longest_unavailable_ms"], c["redirections"]["MOVED"], c["redirections"]["ASK"],
                 sum(c["errors"].values()), c["lost_keys"]]
        return "| " + " | ".join(str(x) for x in cells) + " |"

    busy = "client at %d write+read pairs/s" % r["client_rate"]
    body = f"""
A grow from 6 to 8 nodes on one 2-core machine (nodes on 127.0.0.1-3): the new primary receives
{r['slots_moved']} slots holding {r['keys_moved']} keys ({r['keys_per_slot']} per slot), moved by
`valkey-cli --cluster rebalance` (Valkey 8.0.1); written by `bench/cluster_move.py`.

| | move s | slots/s | keys/s |
|---|---:|---:|---:|
| no client, empty slots | {r['move_seconds_idle']:.1f} | {r['slots_per_second_idle']:.0f} | - |
| {busy} | {r['move_seconds_under_traffic']:.1f} | {r['slots_per_second_under_traffic']:.0f} | {r['keys_per_second_under_traffic']:.0f} |

The client (8 workers, valkey-go's cluster client, every write read back) with no move and during
the move:

| | acked writes | p50 ms | p90 ms | p99 ms | max ms | longest outage ms | MOVED | ASK | errors | keys lost |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{client_row("no move", idle)}
{client_row("during the move", during)}

Latency during the move against no move: p50 {ratio('p50')}, p99 {ratio('p99')}. The move's pace is
valkey-cli's: it moves one slot at a time, several round trips per slot (SETSLOT IMPORTING and
MIGRATING, GETKEYSINSLOT, MIGRATE in batches of 10 keys, SETSLOT NODE on the primaries), so the
time goes with the number of slots more than with the keys in them. Replicas add to it: the same
grow of a cluster without replicas (3 primaries + 1) took 18 s, measured once by hand. The client is capped so that
both share two cores; uncapped it starved the move (3.5 minutes for the same grow).
"""
    write_section("valkey_cluster: slot moves under traffic", body)


if __name__ == "__main__":
    main()
