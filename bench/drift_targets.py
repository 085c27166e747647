"""`valkeyops drift` over 50 targets: the wall time of one read-only fleet
scan at several parallelism bounds, against scanning the targets one by one.

One sshd on 127.0.0.1 (throwaway keys, the current user) and one
valkey-server per target, each with its own valkey.conf; every target is a
separate SSH connection with its own SFTP reads and tunnelled server
connection, as in a real fleet. Writes its section of docs/benchmarks.md.
Not part of `make test`.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from per_task import ROOT, free_port, start_sshd, wait_port, write_section

TARGETS = int(os.environ.get("BENCH_TARGETS", "50"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
BINARY = ROOT / "files" / "bin" / "valkeyops_linux_amd64"


def main():
    work = Path(tempfile.mkdtemp(prefix="valkeyops-drift-bench-"))
    work.chmod(0o755)
    procs = []
    try:
        ssh_port, user, sshd = start_sshd(work, extra="MaxStartups 200\nMaxSessions 200\n")
        procs.append(sshd)
        host_key = (work / "host_key.pub").read_text().split()
        (work / "known_hosts").write_text("[127.0.0.1]:%d %s %s\n" % (ssh_port, host_key[0], host_key[1]))

        targets = []
        for i in range(TARGETS):
            d = work / ("t%02d" % i)
            d.mkdir()
            port = free_port()
            conf = d / "valkey.conf"
            conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {d}\nsave \"\"\nmaxmemory 64mb\ntimeout 300\n")
            procs.append(subprocess.Popen(["valkey-server", str(conf)], stdout=subprocess.DEVNULL))
            targets.append((i, port, conf))
        for _, port, _ in targets:
            wait_port(port)
        lines = [
            "defaults:",
            "  host: 127.0.0.1",
            f"  port: {ssh_port}",
            f"  user: {user}",
            f"  identity_file: {work}/client_key",
            f"  known_hosts: {work}/known_hosts",
            "  desired:",
            "    settings:",
            "      maxmemory: 64mb",
            "      timeout: 300",
            "targets:",
        ]
        for i, port, conf in targets:
            lines += [f"  - name: t{i:02d}", "    host: 127.0.0.1", f"    valkey_port: {port}", f"    config_file: {conf}"]
        (work / "targets.yml").write_text("\n".join(lines) + "\n")

        def scan(parallel):
            start = time.perf_counter()
            out = subprocess.run([str(BINARY), "drift", "--targets", str(work / "targets.yml"), "--format", "json", "--parallel", str(parallel)],
                                 capture_output=True, text=True)
            elapsed = time.perf_counter() - start
            if out.returncode not in (0, 1):
                raise RuntimeError(out.stdout[-2000:] + out.stderr[-2000:])
            return elapsed

        scan(16)  # warm
        results = {}
        for parallel in (1, 8, 16, 32):
            results[parallel] = statistics.median(scan(parallel) for _ in range(RUNS))
        body = [
            f"`valkeyops drift` over {TARGETS} targets (one sshd on loopback, one valkey-server per target, "
            f"each target its own SSH connection, SFTP reads and tunnelled server connection), "
            f"median of {RUNS} scans; written by `bench/drift_targets.py`.",
            "",
            "| --parallel | wall s | per target ms | speed-up over one by one |",
            "|---:|---:|---:|---:|",
        ]
        for parallel, secs in results.items():
            body.append(f"| {parallel} | {secs:.2f} | {1000 * secs / TARGETS:.0f} | {results[1] / secs:.1f}x |")
        write_section("Drift scan: %d targets" % TARGETS, "\n".join(body))
        print("\n".join(body))
    finally:
        for p in procs:
            p.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
