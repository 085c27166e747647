"""Per-task cost of valkey_config over a real SSH connection, against the
floor and against community.general's Python redis module.

Starts a throwaway sshd on 127.0.0.1 (key auth, the current user) and a
valkey-server, then times ansible-playbook runs of N tasks each, all with the
same ansible-core (from the bench venv, whose `ansible` package carries
community.general):

  raw        N x ansible.builtin.raw: "true"   (the floor: one SSH command per task)
  warm       N x valkey_config, no change, binary cached
  cold       N x valkey_config, empty binary cache (first task transfers the binary)
  cg         N x community.general.redis command=config, no change, pipelining off
  cg-pipe    the same with pipelining on

It also measures the module's peak RSS on the target and the binary sizes.

Reports medians of several runs and ratios taken in the same run, and
writes them as a Markdown table to docs/benchmarks.md. Not part of `make test`.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-bench"
TASKS = int(os.environ.get("BENCH_TASKS", "30"))
# Seven runs: with three, one noisy run on a 2-core machine moved the warm
# ratio from 1.08x to 1.20x; the median of seven is steady.
RUNS = int(os.environ.get("BENCH_RUNS", "7"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d did not open" % port)


def peak_rss_kib(port, runs=5):
    """Peak RSS of the module process, measured by the kernel (wait4 rusage)."""
    binary = ROOT / "files" / "bin" / "valkeyops_linux_amd64"
    payload = ('{"login_port": %d, "settings": {"timeout": 300}}' % port).encode()
    out = []
    for _ in range(runs):
        p = subprocess.Popen([str(binary), "module", "valkey_config"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        p.stdin.write(payload)
        p.stdin.close()
        _, _, usage = os.wait4(p.pid, 0)
        out.append(usage.ru_maxrss)
    return out


def start_sshd(work, extra=""):
    """A throwaway sshd on 127.0.0.1 for the current user: host and client
    keys in work (client_key), key login only. Returns (port, user, process)."""
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / name)], check=True)
    (work / "authorized_keys").write_text((work / "client_key.pub").read_text())
    port = free_port()
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    (work / "sshd_config").write_text(
        textwrap.dedent(
            f"""\
            Port {port}
            ListenAddress 127.0.0.1
            HostKey {work}/host_key
            PidFile {work}/sshd.pid
            AuthorizedKeysFile {work}/authorized_keys
            StrictModes no
            UsePAM no
            PasswordAuthentication no
            PermitRootLogin prohibit-password
            """
        )
        + extra
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([shutil.which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", str(work / "sshd_config")], stderr=subprocess.DEVNULL)
    wait_port(port)
    return port, user, proc


def write_section(title, body):
    """Replace (or add) one `## title` section of docs/benchmarks.md."""
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n\nEach section is written by its script under bench/ (`make bench`).\n"
    start = text.find("\n## %s\n" % title)
    section = "\n## %s\n\n%s\n" % (title, body.strip())
    if start < 0:
        text = text.rstrip("\n") + "\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end:] if end >= 0 else "")
    path.write_text(text)


def main():
    work = Path(tempfile.mkdtemp(prefix="valkeyops-bench-"))
    work.chmod(0o755)
    procs = []
    try:
        home = work / "home"
        home.mkdir()
        ssh_port, user, sshd = start_sshd(work)
        procs.append(sshd)
        # valkey-server.
        vk_port = free_port()
        (work / "valkey.conf").write_text(f"port {vk_port}\nbind 127.0.0.1\ndir {work}\nsave \"\"\ntimeout 300\n")
        procs.append(subprocess.Popen(["valkey-server", str(work / "valkey.conf")], stdout=subprocess.DEVNULL))
        wait_port(vk_port)

        coll = work / "collections" / "ansible_collections" / "valkeyops"
        coll.mkdir(parents=True)
        (coll / "secure").symlink_to(ROOT)
        inv = work / "inventory.ini"
        inv.write_text(
            f"bench ansible_host=127.0.0.1 ansible_port={ssh_port} ansible_user={user} ansible_connection=ssh "
            f"ansible_ssh_private_key_file={work}/client_key "
            "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null' "
            f"ansible_python_interpreter={VENV}/bin/python\n"
        )
        raw = work / "raw.yml"
        raw.write_text(
            "- hosts: bench\n  gather_facts: false\n  tasks:\n"
            + "".join('    - ansible.builtin.raw: "true"\n      changed_when: false\n' for _ in range(TASKS))
        )
        cfg = work / "config.yml"
        cfg.write_text(
            "- hosts: bench\n  gather_facts: false\n  tasks:\n"
            + "".join(
                f"    - valkeyops.secure.valkey_config:\n        login_port: {vk_port}\n        settings:\n          timeout: 300\n"
                for _ in range(TASKS)
            )
        )
        cg = work / "cg.yml"
        cg.write_text(
            "- hosts: bench\n  gather_facts: false\n  tasks:\n"
            + "".join(
                f"    - community.general.redis:\n        command: config\n        name: timeout\n        value: '300'\n"
                f"        login_port: {vk_port}\n        tls: false\n"
                for _ in range(TASKS)
            )
        )
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(work / "collections"), HOME=str(home),
                   ANSIBLE_HOST_KEY_CHECKING="false", ANSIBLE_SSH_CONTROL_PATH_DIR=str(work / "cp"))

        def timed(pb, fresh_cache=False, pipelining=False):
            if fresh_cache:
                shutil.rmtree(Path(os.path.expanduser("~" + user)) / ".ansible" / "valkeyops", ignore_errors=True)
            start = time.perf_counter()
            run_env = dict(env, ANSIBLE_PIPELINING="true" if pipelining else "false")
            out = subprocess.run([str(VENV / "bin" / "ansible-playbook"), "-i", str(inv), str(pb)], capture_output=True, text=True, env=run_env)
            elapsed = time.perf_counter() - start
            if out.returncode != 0:
                raise RuntimeError(out.stdout[-2000:] + out.stderr[-2000:])
            return elapsed

        timed(raw)  # warm ssh ControlPersist and Python caches
        rows = {"raw": [], "cold": [], "warm": [], "cg": [], "cg-pipe": []}
        for _ in range(RUNS):
            rows["raw"].append(timed(raw))
            rows["cold"].append(timed(cfg, fresh_cache=True))
            rows["warm"].append(timed(cfg))
            rows["cg"].append(timed(cg))
            rows["cg-pipe"].append(timed(cg, pipelining=True))
        rss = peak_rss_kib(vk_port)
        med = {k: statistics.median(v) for k, v in rows.items()}
        sizes = {p.name: p.stat().st_size for p in (ROOT / "files" / "bin").glob("valkeyops_linux_*")}
        version = subprocess.run([str(VENV / "bin" / "ansible"), "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        lines = [
            "",
            "",
            "Written by `make bench` (`bench/per_task.py`); numbers from the machine below, not a promise.",
            "",
            f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
            f"- {version}; valkey-server: {subprocess.run(['valkey-server', '--version'], capture_output=True, text=True).stdout.split()[2]}",
            f"- {TASKS} tasks per playbook over ssh to 127.0.0.1, median of {RUNS} runs (whole ansible-playbook wall time)",
            "",
            "| playbook | median s | per task ms | ratio to raw |",
            "|---|---:|---:|---:|",
        ]
        for key, label in (("raw", f'{TASKS} x ansible.builtin.raw: "true" (floor)'),
                           ("warm", f"{TASKS} x valkey_config, no change, binary cached"),
                           ("cold", f"{TASKS} x valkey_config, empty cache (first task transfers)"),
                           ("cg", f"{TASKS} x community.general.redis config, pipelining off"),
                           ("cg-pipe", f"{TASKS} x community.general.redis config, pipelining on")):
            lines.append(f"| {label} | {med[key]:.2f} | {1000 * med[key] / TASKS:.0f} | {med[key] / med['raw']:.2f}x |")
        lines += ["", f"valkey_config vs community.general.redis, same run: {med['cg'] / med['warm']:.2f}x faster than pipelining off, "
                  f"{med['cg-pipe'] / med['warm']:.2f}x faster than pipelining on.", ""]
        lines += ["| binary | bytes |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in sorted(sizes.items())]
        lines += ["", f"Peak RSS of one `valkey_config` run on the target (no change, {len(rss)} runs): median {statistics.median(rss)} KiB.", ""]
        write_section("Per-task cost", "\n".join(lines[2:]))
        print("\n".join(lines))
    finally:
        for p in procs:
            p.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
