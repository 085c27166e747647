"""What the bridge's one shell command costs on the target, over exec'ing
the binary directly: the checks that decide whether the cached binary may
run (the effective user's home from passwd, the platform, owner, mode and
size). Paired runs of the same no-change valkey_config task, run by the
current user against a throwaway valkey-server, alternating which goes
first; the median of the differences is steady on a busy machine, where the
per-task wall time of whole playbooks (bench/per_task.py) is not.

Installs the binary into the current user's cache with the real install
script first, and reports how long that took. Writes its section of
docs/benchmarks.md. Not part of `make test`.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from per_task import ROOT, free_port, wait_port, write_section

sys.path.insert(0, str(ROOT / "plugins" / "plugin_utils"))
import binary_module  # noqa: E402  (the bridge itself, not a copy of its script)

RUNS = int(os.environ.get("BENCH_RUNS", "400"))


def main():
    work = Path(tempfile.mkdtemp(prefix="valkeyops-bridge-bench-"))
    vk = None
    try:
        port = free_port()
        (work / "valkey.conf").write_text(f"port {port}\nbind 127.0.0.1\ndir {work}\nsave \"\"\ntimeout 300\n")
        vk = subprocess.Popen(["valkey-server", str(work / "valkey.conf")], stdout=subprocess.DEVNULL)
        wait_port(port)
        payload = ('{"login_port": %d, "journal": false, "persist": "runtime", "settings": {"timeout": 300}}' % port).encode()

        key, shipped = binary_module.shipped_binaries()
        user = pwd.getpwuid(os.geteuid()).pw_name
        hot = binary_module.remote_script(key, shipped, "valkey_config", user)

        def sh(script):
            start = time.perf_counter()
            out = subprocess.run(["/bin/sh", "-c", script], input=payload, capture_output=True)
            return time.perf_counter() - start, out.stdout

        # The cache as a first task leaves it: MISSING, then the install script.
        _, out = sh(hot)
        if out.startswith(binary_module.MISSING.encode()):
            plat = out.split()[1].decode()
            install = binary_module.remote_script(key, shipped, "valkey_config", user, staged=str(binary_module.BIN_DIR) + "/valkeyops_" + plat)
            install_s, out = sh(install)
        else:
            install_s = None
        assert b'"changed":false' in out, out[:300]
        _, out = sh(hot)
        assert b'"changed":false' in out, "the cached binary did not run: %r" % out[:300]
        # The same binary by its path, with none of the checks.
        locate = hot[: hot.index('if [ -f "$b" ]')]
        binary = subprocess.run(["/bin/sh", "-c", locate + 'echo "$b"'], capture_output=True, text=True, check=True).stdout.strip()
        direct = "exec %s module valkey_config" % shlex.quote(binary)

        rows = {"direct": [], "bridge": []}
        for i in range(RUNS):
            pair = (("direct", direct), ("bridge", hot))
            for name, script in (pair if i % 2 else pair[::-1]):
                rows[name].append(sh(script)[0])
        med = {k: 1000 * statistics.median(v) for k, v in rows.items()}
        diff = 1000 * statistics.median([b - a for a, b in zip(rows["direct"], rows["bridge"])])
        lines = [
            f"Written by `bench/bridge_overhead.py`; {RUNS} paired runs of one no-change `valkey_config` task on this machine"
            f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores), not a promise.",
            "",
            "| command on the target | median ms |",
            "|---|---:|",
            f"| `exec` the cached binary directly | {med['direct']:.2f} |",
            f"| the bridge's command (passwd home, platform, owner/mode/size checks, then `exec`) | {med['bridge']:.2f} |",
            f"| median of the paired differences | {diff:+.2f} |",
            "",
            (f"Installing the binary into an empty cache (copy, sha256 check, rename, first run): {1000 * install_s:.0f} ms, once per host,"
             " version and user." if install_s is not None else "The binary was already cached."),
        ]
        write_section("Bridge: the per-task checks on the target", "\n".join(lines))
        print("\n".join(lines))
    finally:
        if vk:
            vk.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
