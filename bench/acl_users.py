"""valkey_acl at scale: N users (default 1,000) converged from nothing, and
the idempotent rerun, in ONE task, against one task per user in a loop; then
what the action plugin adds to one task at BENCH_OVERHEAD_USERS (default
10,000) users on a rerun (changed=0).

Starts a throwaway valkey-server with an aclfile for every timed run (so
"from nothing" really is), runs ansible-playbook with the local connection
against the installed collection tarball, and reports the median wall time
of several runs and the ratios. Writes its own section of docs/benchmarks.md
(replacing it if present; the rest of the file is kept). Not part of `make test`.

  BENCH_USERS=1000 BENCH_RUNS=3 BENCH_OVERHEAD_USERS=10000 .venv/bin/python bench/acl_users.py

BENCH_USERS=0 skips the first part, BENCH_OVERHEAD_USERS=0 the second.
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
OVERHEAD_USERS = int(os.environ.get("BENCH_OVERHEAD_USERS", "10000"))
HEADING = "## valkey_acl: %s users in one task vs one task per user"
OVERHEAD_HEADING = "## valkey_acl at %s users: what the action plugin adds"
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


def users_file(path: Path, count: int = USERS):
    users = [
        {
            "name": "user%04d" % i,
            "passwords": ["pw-%04d-%s" % (i, os.urandom(6).hex())],
            "keys": ["app%d:*" % i, "%%R~shared:%d:*" % (i % 10)],
            "channels": ["events.%d" % i],
            "commands": ["+@read", "+@write", "-@dangerous", "+client|setname"],
        }
        for i in range(count)
    ]
    path.write_text(json.dumps({"bench_users": users}))
    return users


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


def play(work, env, name, users, port):
    """One ansible-playbook run: (wall seconds, changed count)."""
    cmd = [str(VENV / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(work / name), "-e", "@" + str(users), "-e", "vk_port=%d" % port]
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(out.stdout[-3000:] + out.stderr[-2000:])
    changed = int(re.search(r"changed=(\d+)", out.stdout).group(1))
    return elapsed, changed


DEBUG_ONLY = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Only Ansible's own work with the same variables
      ansible.builtin.debug:
        msg: "{{ bench_users | length }} users on port {{ vk_port }}"
"""


def plugin_overhead(work, collections, env):
    """What the action plugin adds to one valkey_acl task on a rerun
    (changed=0) at OVERHEAD_USERS users, measured three ways: the whole
    playbook minus a debug-only play with the same extra vars minus the
    binary's own time on the same JSON; and, directly, the plugin's own
    controller-side work (validate, serialize, mask) timed in process."""
    import importlib
    import sys

    users = work / "users-overhead.json"
    data = users_file(users, OVERHEAD_USERS)
    binary = sorted(p for p in collections.rglob("valkeyops_linux_amd64") if p.is_file())[0]
    sys.path.insert(0, str(collections))
    bm = importlib.import_module("ansible_collections.valkeyops.secure.plugins.plugin_utils.binary_module")
    action_cls = importlib.import_module("ansible_collections.valkeyops.secure.plugins.action.valkey_acl").ActionModule
    action = action_cls.__new__(action_cls)

    srv = Server(work / "srv-overhead")
    try:
        t, changed = play(work, env, "one.yml", users, srv.port)
        assert changed >= 1 and srv.users() == OVERHEAD_USERS + 1, "not converged"
        times = {"total": [], "debug": [], "binary": [], "plugin": []}
        for run in range(RUNS):
            t, changed = play(work, env, "one.yml", users, srv.port)
            assert changed == 0, "rerun changed something"
            times["total"].append(t)
            times["debug"].append(play(work, env, "debug.yml", users, srv.port)[0])
            # The binary alone, on the task's JSON (the users are already of
            # the right types, so it is what the plugin sends).
            args = {"login_port": srv.port, "users": data}
            payload = json.dumps(dict(args, _ansible_check_mode=False, _ansible_diff=False, _ansible_verbosity=0)).encode()
            start = time.perf_counter()
            out = subprocess.run([str(binary), "module", "valkey_acl"], input=payload, capture_output=True, check=True)
            times["binary"].append(time.perf_counter() - start)
            result = json.loads(out.stdout)
            assert result["changed"] is False, result.get("msg")
            if hasattr(bm, "check_options"):  # the plugin's own work, timed in process
                start = time.perf_counter()
                params, secrets_ = action.validate(args)
                json.dumps(params)
                bm.mask(result, secrets_)
                times["plugin"].append(time.perf_counter() - start)
            print("overhead run %d/%d: %s" % (run + 1, RUNS, {k: round(v[-1], 2) for k, v in times.items()}), flush=True)
    finally:
        srv.stop()
    med = {k: statistics.median(v) if v else float("nan") for k, v in times.items()}
    version = subprocess.run([str(VENV / "bin" / "ansible"), "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    n = format(OVERHEAD_USERS, ",")
    if os.environ.get("BENCH_TARBALL"):
        print("%s (not written to docs/benchmarks.md): %s" % (os.environ["BENCH_TARBALL"], {k: round(v, 2) for k, v in med.items()}))
        return
    section = [
        OVERHEAD_HEADING % n,
        "",
        "Written by `bench/acl_users.py` (not part of `make test`). One `valkey_acl` task with %s users (each: 1 password,"
        " 2 key patterns, 1 channel, 4 command rules), rerun on a converged server (changed=0); goal: the action plugin adds"
        " under 1 s." % n,
        "",
        "- machine: %s, %d cores, %s" % (platform.machine(), os.cpu_count(), platform.platform()),
        "- %s; local connection; median of %d runs" % (version, RUNS),
        "",
        "| what | median s |",
        "|---|---:|",
        "| whole playbook, one task, rerun (changed=0) | %.2f |" % med["total"],
        "| debug-only play, same extra vars (Ansible loading and templating the variables) | %.2f |" % med["debug"],
        "| the binary alone on the same JSON (piped into `valkeyops module valkey_acl`) | %.2f |" % med["binary"],
        "| **the rest: what the action plugin and its worker add** (whole - debug - binary) | **%.2f** |" % (med["total"] - med["debug"] - med["binary"]),
        "| the plugin's own work timed in process (validate with the spec, serialize, mask the result) | %.2f |" % med["plugin"],
        "",
        "Before the spec-driven validator and the prefix-indexed masking (0.1.0: ArgumentSpecValidator over a spec parsed"
        " from DOCUMENTATION, masking strings x secrets) the same rerun took 13.7 s, about 8 s of it in the plugin.",
        "",
    ]
    write_section(re.escape(OVERHEAD_HEADING.split("%s")[0]) + r"[\d,]+ users: what the action plugin adds", section)


def main():
    work = Path(tempfile.mkdtemp(prefix="valkeyops-bench-acl-"))
    tarball = os.environ.get("BENCH_TARBALL") or sorted((ROOT / "dist").glob("valkeyops-secure-*.tar.gz"))[-1]
    collections = work / "collections"
    subprocess.run([str(VENV / "bin" / "ansible-galaxy"), "collection", "install", "--force", "-p", str(collections), str(tarball)],
                   check=True, capture_output=True)
    (work / "one.yml").write_text(ONE_TASK)
    (work / "loop.yml").write_text(LOOP)
    (work / "debug.yml").write_text(DEBUG_ONLY)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", HOME=str(work),
               ANSIBLE_PYTHON_INTERPRETER=str(VENV / "bin" / "python"), ANSIBLE_NOCOLOR="1")
    if USERS:
        loop_vs_one(work, env)
    if OVERHEAD_USERS:
        plugin_overhead(work, collections, env)


def loop_vs_one(work, env):
    users = work / "users.json"
    users_file(users)

    times = {k: [] for k in ("one_create", "one_rerun", "loop_create", "loop_rerun")}
    n = 0
    for run in range(RUNS):
        for style in ("one", "loop"):
            n += 1
            srv = Server(work / ("srv%d" % n))
            try:
                t, changed = play(work, env, style + ".yml", users, srv.port)
                assert changed >= 1 and srv.users() == USERS + 1, "not converged"
                times[style + "_create"].append(t)
                t, changed = play(work, env, style + ".yml", users, srv.port)
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
    write_section(r"## valkey_acl: [\d,]+ users in one task", section)


def write_section(heading_re, section):
    """Replace the section whose heading matches heading_re in
    docs/benchmarks.md (append it when missing); keep the rest."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^" + heading_re + r".*?(?=^## |\Z)", re.S | re.M)
    new = "\n".join(section) + "\n"
    if pattern.search(text):
        text = pattern.sub(lambda _: new + "\n" if not new.endswith("\n\n") else new, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + new
    DOC.write_text(text.rstrip("\n") + "\n")
    print("\n".join(section))


if __name__ == "__main__":
    main()
