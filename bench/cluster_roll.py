"""A rolling restart of a 6-node Valkey Cluster (3 primaries, 3 replicas on
lab10-12, TLS on the client port and the bus: the molecule `cluster`
scenario's nodes) under two capped bench/loadgen clients, one acknowledging
each write only after WAIT 1, one without WAIT. Reports the roll's time,
acknowledged writes lost, and the longest window in which a client could not
write: per primary moved (the client without WAIT: a replica's restart does
not stop its writes) and per replica restarted (the WAIT 1 client: a shard's
only replica is down). Writes its section of docs/benchmarks.md. Not part of
`make test`; it uses lab10-12, so never while the cluster scenario runs.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import tempfile
from pathlib import Path

from per_task import ROOT, write_section

MOLECULE = [str(ROOT / ".venv" / "bin" / "molecule")]


def ephemeral_dir():
    """Molecule's scenario directory for this checkout (its inventory links back here)."""
    for d in sorted(Path.home().glob(".ansible/tmp/molecule.*.cluster"), key=lambda p: p.stat().st_mtime, reverse=True):
        link = d / "inventory" / "group_vars"
        if link.is_symlink() and Path(os.path.realpath(link)).is_relative_to(ROOT):
            return d
    raise SystemExit("no molecule `cluster` scenario directory for %s" % ROOT)


def main():
    load_before = os.getloadavg()[0]
    env = dict(os.environ, VALKEYOPS_MOLECULE_ADMIN_PASSWORD=secrets.token_hex(16), VALKEYOPS_MOLECULE_APP_PASSWORD=secrets.token_hex(16),
               PATH="%s:%s" % (ROOT / ".venv" / "bin", os.environ["PATH"]))
    with tempfile.TemporaryDirectory(prefix="valkeyops-cluster-roll-") as work:
        subprocess.run(["go", "build", "-o", work + "/loadgen", "./bench/loadgen"], cwd=ROOT, check=True)
        # VALKEYOPS_BENCH_REUSE=1: the scenario's cluster is up already (`molecule test --destroy never`, the same
        # passwords in the environment); it is neither converged again nor destroyed.
        reuse = os.environ.get("VALKEYOPS_BENCH_REUSE") == "1"
        try:
            if reuse:
                env.update((k, os.environ[k]) for k in ("VALKEYOPS_MOLECULE_ADMIN_PASSWORD", "VALKEYOPS_MOLECULE_APP_PASSWORD"))
            else:
                subprocess.run(MOLECULE + ["converge", "--scenario-name", "cluster"], cwd=ROOT, env=env, check=True)
            eph = ephemeral_dir()
            env.update(MOLECULE_EPHEMERAL_DIRECTORY=str(eph), MOLECULE_PROJECT_DIRECTORY=str(ROOT), ANSIBLE_CONFIG=str(eph / "ansible.cfg"),
                       ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
                       ANSIBLE_PIPELINING="true")
            out = Path(work) / "result.json"
            subprocess.run(["ansible-playbook", "-i", str(eph / "inventory" / "ansible_inventory.yml"), "bench/cluster_roll.yml",
                            "-e", "bench_work=%s bench_out=%s" % (work, out)], cwd=ROOT, env=env, check=True)
            r = json.loads(out.read_text())
        finally:
            # A roll that failed left its clients running (the play that stops them never ran): end
            # exactly the processes started from this run's own loadgen binary, by pid.
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    argv0 = Path("/proc/%s/cmdline" % pid).read_bytes().split(b"\0")[0].decode(errors="replace")
                except OSError:
                    continue
                if argv0 == work + "/loadgen":
                    os.kill(int(pid), 9)
            if not reuse:
                subprocess.run(MOLECULE + ["destroy", "--scenario-name", "cluster"], cwd=ROOT, env=env, check=False)
    load = (load_before, os.getloadavg()[0])
    w1, w0 = r["wait1"], r["wait0"]

    def row(name, c):
        lat = c["latency_ms"]
        cells = [name, c["acked_writes"], c["lost_keys"], c["stale_reads"], ", ".join("%s %d" % kv for kv in sorted(c["errors"].items())) or "none",
                 "%.0f" % c["longest_unavailable_ms"], "%.2f" % lat["p50"], "%.2f" % lat["p99"], "%.0f" % lat["max"]]
        return "| " + " | ".join(str(x) for x in cells) + " |"

    # A window without a write: the longest run of failed writes, or, when none failed, the longest a
    # write (with its read back) waited.
    def window(c):
        return max(c["longest_unavailable_ms"], c["latency_ms"]["max"])

    body = f"""
`playbooks/rolling_restart.yml` through a 6-node cluster (3 primaries, 3 replicas, two nodes on each of
lab10-12, TLS on the client port and the bus; Valkey 8.0.1) while two clients (bench/loadgen, valkey-go's
cluster client, 4 workers each, capped at 1000 write+read pairs/s, every write read back) write in every
slot: one counts a write acknowledged only after `WAIT 1`, one without WAIT. Each node: gates, BGSAVE
waited for, a primary's slots handed to its replica with `CLUSTER FAILOVER`, restart, gates. Written by
`bench/cluster_roll.py` on this 2-core machine shared with the other lanes.

Roll time, 6 nodes: **{r['roll_seconds']:.0f} s** (3 primaries moved; load average {load[0]:.1f} before the run,
{load[1]:.1f} after it: other lanes or scenarios on the machine stretch it).

| client | acked writes | acked writes lost | stale reads | errors | longest run of failed writes ms | p50 ms | p99 ms | max ms |
|---|---:|---:|---:|---|---:|---:|---:|---:|
{row("WAIT 1", w1)}
{row("no WAIT", w0)}

The longest window in which a client could not write, per primary moved, is the client without WAIT's:
a replica's restart does not stop its writes, so its longest wait is a move's pause (the primary pauses
its clients until the replica has caught up): **{window(w0):.0f} ms**. The WAIT 1 client's longest,
{window(w1):.0f} ms, is a replica's restart, not a move: each shard has one replica, so while it
restarts a write to that shard waits for it (and is reported `unreplicated`, not acknowledged, when WAIT
gives up first); two replicas per shard would keep those writes going. Before the roll drained a moved
primary (no MOVED for 2 s before its restart, `valkey_rolling_cluster_drain`), the no-WAIT client saw 327
`connection` errors over 348 ms in one run, 1.9 s in another: the old primary restarted before the client's
slot map (valkey-go refreshes it lazily, on a MOVED) had learned the new owner (docs/ARCHITECTURE.md, "What a
cluster client sees during the operations"). Redirections are not counted here: the servers' counters start
again at each restart.
"""
    write_section("Rolling restart of a 6-node cluster", body)


if __name__ == "__main__":
    main()
