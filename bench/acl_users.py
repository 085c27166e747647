"""valkey_acl at scale: N users (default 1,000) converged from nothing, and
the idempotent rerun, in ONE task, against one task per user in a loop.

Starts a throwaway valkey-server with an aclfile for every timed run (so
"from nothing" really is), runs ansible-playbook with the local connection
against the installed collection tarball, and reports the median wall time
of several runs and the ratios. Writes its own section of docs/benchmarks.md
(replacing it if present; the rest of the file is kept). Not part of `make test`.

  BENCH_USERS=1000 BENCH_RUNS=3 .venv/bin/python bench/acl_users.py
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
USERS = int(os.environ.get("BENCH_USERS", "1000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
HEADING = "## valkey_acl: %s users in one task vs one task per user"
DOC = ROOT / "docs" / "benchmarks.md"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, base: Path):
        base.mkdir()
        self.port = free_port()
        self.acl = base / "users.acl"
        self.acl.write_text("")
        conf = base / "valkey.conf"
        conf.write_text(
            "port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\nlogfile %s\naclfile %s\n" % (self.port, base, base / "log", self.acl)
        )
        self.proc = subprocess.Popen(["valkey-server", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.time() + 10
        while time.time() < end:
            if subprocess.run(["valkey-cli", "-p", str(self.port), "PING"], capture_output=True, text=True).stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("valkey-server did not start")

    def users(self):
        return int(subprocess.run(["valkey-cli", "-p", str(self.port), "ACL", "USERS"], capture_output=True, text=True).stdout.count("\n"))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def users_file(path: Path):
    users = [
        {
            "name": "user%04d" % i,
            "passwords": ["pw-%04d-%s" % (i, os.urandom(6).hex())],
            "keys": ["app%d:*" % i, "%%R~shared:%d:*" % (i % 10)],
            "channels": ["events.%d" % i],
            "commands": ["+@read", "+@write", "-@dangerous", "+client|setname"],
        }
        for i in range(USERS)
    ]
    path.write_text(json.dumps({"bench_users": users}))


ONE_TASK = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: All users in one task
      valkeyops.secure.valkey_acl:
        login_port: "{{ vk_port }}"
        users: "{{ bench_users }}"
"""

LOOP = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: One task per user
      valkeyops.secure.valkey_acl:
        login_port: "{{ vk_port }}"
        name: "{{ item.name }}"
        passwords: "{{ item.passwords }}"
        keys: "{{ item['keys'] }}"
        channels: "{{ item.channels }}"
        commands: "{{ item.commands }}"
      loop: "{{ bench_users }}"
      loop_control:
        label: "{{ item.name }}"
"""


def main():
    work = Path(tempfile.mkdtemp(prefix="valkeyops-bench-acl-"))
    tarball = sorted((ROOT / "dist").glob("valkeyops-secure-*.tar.gz"))[-1]
    collections = work / "collections"
    subprocess.run([str(VENV / "bin" / "ansible-galaxy"), "collection", "install", "--force", "-p", str(collections), str(tarball)], check=True, capture_output=True)
    users = work / "users.json"
    users_file(users)
    (work / "one.yml").write_text(ONE_TASK)
    (work / "loop.yml").write_text(LOOP)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", HOME=str(work),
               ANSIBLE_PYTHON_INTERPRETER=str(VENV / "bin" / "python"), ANSIBLE_NOCOLOR="1")

    def play(name, port):
        cmd = [str(VENV / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(work / name), "-e", "@" + str(users), "-e", "vk_port=%d" % port]
        t = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        elapsed = time.perf_counter() - t
        if out.returncode != 0:
            raise RuntimeError(out.stdout[-3000:] + out.stderr[-2000:])
        changed = int(re.search(r"changed=(\d+)", out.stdout).group(1))
        return elapsed, changed

    times = {k: [] for k in ("one_create", "one_rerun", "loop_create", "loop_rerun")}
    n = 0
    for run in range(RUNS):
        for style in ("one", "loop"):
            n += 1
            srv = Server(work / ("srv%d" % n))
            try:
                t, changed = play(style + ".yml", srv.port)
                assert changed >= 1 and srv.users() == USERS + 1, "not converged"
                times[style + "_create"].append(t)
                t, changed = play(style + ".yml", srv.port)
                assert changed == 0, "rerun changed something"
                times[style + "_rerun"].append(t)
            finally:
                srv.stop()
        print("run %d/%d: %s" % (run + 1, RUNS, {k: round(v[-1], 2) for k, v in times.items()}), flush=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    version = subprocess.run([str(VENV / "bin" / "ansible"), "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    vk = subprocess.run(["valkey-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    section = [
        HEADING % format(USERS, ","),
        "",
        "Written by `bench/acl_users.py` (not part of `make test`).",
        "",
        "- machine: %s, %d cores, %s" % (platform.machine(), os.cpu_count(), platform.platform()),
        "- %s; valkey-server: %s; local connection; fresh server with an aclfile per run; median of %d runs" % (version, vk, RUNS),
        "- every user: 1 password, 2 key patterns, 1 channel, 4 command rules",
        "",
        "| playbook | median s | loop / one task |",
        "|---|---:|---:|",
        "| one task, %d users, from nothing | %.2f | |" % (USERS, med["one_create"]),
        "| one task per user (loop), from nothing | %.2f | %.1fx |" % (med["loop_create"], med["loop_create"] / med["one_create"]),
        "| one task, idempotent rerun (changed=0) | %.2f | |" % med["one_rerun"],
        "| one task per user (loop), idempotent rerun | %.2f | %.1fx |" % (med["loop_rerun"], med["loop_rerun"] / med["one_rerun"]),
        "",
    ]
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## valkey_acl:.*?(?=^## |\Z)", re.S | re.M)
    new = "\n".join(section) + "\n"
    if pattern.search(text):
        text = pattern.sub(lambda _: new, text)
    else:
        text = text.rstrip("\n") + "\n\n" + new
    DOC.write_text(text)
    print("\n".join(section))


if __name__ == "__main__":
    main()
