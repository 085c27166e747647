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

BENCH_USERS=0 skips the first part, BENCH_OVERHEAD_USERS=0 the second; BENCH_BEFORE_TARBALL=path adds a
column for an older build to the second (e.g. one built from the 0.1.0 tag); BENCH_TARBALL picks the build.
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


def play(work, env, name, users, port, output=False):
    """One ansible-playbook run: (wall seconds, changed count[, stdout])."""
    cmd = [str(VENV / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(work / name), "-e", "@" + str(users), "-e", "vk_port=%d" % port]
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(out.stdout[-3000:] + out.stderr[-2000:])
    changed = int(re.search(r"changed=(\d+)", out.stdout).group(1))
    return (elapsed, changed, out.stdout) if output else (elapsed, changed)


DEBUG_ONLY = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Only Ansible's own work with the same variables
      ansible.builtin.debug:
        msg: "{{ bench_users | length }} users on port {{ vk_port }}"
"""


TIMED_TASK = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: All users in one task, timed inside the worker
      valkey_acl_timed:
        login_port: "{{ vk_port }}"
        users: "{{ bench_users }}"
      register: timed
    - name: Report
      ansible.builtin.debug:
        msg: "BENCH {{ timed.bench | to_json }} BENCH"
"""

# The collection's own valkey_acl action, timed where it runs (the worker):
# reading the task's arguments (ansible-core templates them), run() as a
# whole, its validate() and the target commands it sends (the binary's run).
TIMED_ACTION = """\
import time

from ansible_collections.valkeyops.secure.plugins.action.valkey_acl import ActionModule as Base


class ActionModule(Base):
    def _low_level_execute_command(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return super()._low_level_execute_command(*args, **kwargs)
        finally:
            self._bench["command"] += time.perf_counter() - start

    def validate(self, args):
        start = time.perf_counter()
        try:
            return super().validate(args)
        finally:
            self._bench["validate"] += time.perf_counter() - start

    def run(self, tmp=None, task_vars=None):
        self._bench = {"command": 0.0, "validate": 0.0}
        start = time.perf_counter()
        dict(self._task.args)
        self._bench["args"] = time.perf_counter() - start
        start = time.perf_counter()
        result = super().run(tmp, task_vars)
        self._bench["run"] = time.perf_counter() - start
        result["bench"] = self._bench
        return result
"""


NOOP_TASK = TIMED_TASK.replace("valkey_acl_timed", "valkey_acl_noop").replace("timed.bench | to_json", "'{}'")

# The control: a task with the same arguments (ansible-core templates them and
# forks the worker the same way) whose action reads every argument and returns.
NOOP_ACTION = """\
from ansible.plugins.action import ActionBase


def touch(v):
    if isinstance(v, dict):
        for e in v.values():
            touch(e)
    elif isinstance(v, list):
        for e in v:
            touch(e)


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        touch(dict(self._task.args))
        return {"changed": False}
"""


def install(work, tarball, name):
    """Install a tarball into its own collections path; return (collections, env)."""
    collections = work / name
    subprocess.run([str(VENV / "bin" / "ansible-galaxy"), "collection", "install", "--force", "-p", str(collections), str(tarball)],
                   check=True, capture_output=True)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", HOME=str(work),
               ANSIBLE_PYTHON_INTERPRETER=str(VENV / "bin" / "python"), ANSIBLE_NOCOLOR="1")
    return collections, env


def measure_overhead(work, collections, env, users, data, in_process):
    """Median seconds of each part of one valkey_acl task's rerun (changed=0).
    The whole-play numbers move with the machine's load; the ones timed inside
    the worker (args, run, validate, command) much less."""
    binary = sorted(p for p in collections.rglob("valkeyops_linux_amd64") if p.is_file())[0]
    if in_process:
        import importlib
        import sys

        sys.path.insert(0, str(collections))
        bm = importlib.import_module("ansible_collections.valkeyops.secure.plugins.plugin_utils.binary_module")
        action_cls = importlib.import_module("ansible_collections.valkeyops.secure.plugins.action.valkey_acl").ActionModule
        action = action_cls.__new__(action_cls)
    for name, text in (("timed.yml", TIMED_TASK), ("noop.yml", NOOP_TASK), ("debug.yml", DEBUG_ONLY), ("one.yml", ONE_TASK),
                       ("action_plugins/valkey_acl_timed.py", TIMED_ACTION), ("action_plugins/valkey_acl_noop.py", NOOP_ACTION)):
        (work / name).parent.mkdir(exist_ok=True)
        (work / name).write_text(text)
    srv = Server(Path(tempfile.mkdtemp(dir=work, prefix="srv-")) / "s")
    times = {k: [] for k in ("total", "debug", "noop", "binary", "args", "run", "validate", "command", "plugin")}
    try:
        t, changed = play(work, env, "one.yml", users, srv.port)
        assert changed >= 1 and srv.users() == OVERHEAD_USERS + 1, "not converged"
        for run in range(RUNS):
            t, changed, out = play(work, env, "timed.yml", users, srv.port, output=True)
            assert changed == 0, "rerun changed something"
            times["total"].append(t)
            inside = json.loads(re.search(r"BENCH (.*) BENCH", out).group(1).replace('\\"', '"'))
            for k in ("args", "run", "validate", "command"):
                times[k].append(inside[k])
            times["debug"].append(play(work, env, "debug.yml", users, srv.port)[0])
            times["noop"].append(play(work, env, "noop.yml", users, srv.port)[0])
            # The binary alone, on the task's JSON (the users are already of
            # the right types, so it is what the plugin sends).
            args = {"login_port": srv.port, "users": data}
            payload = json.dumps(dict(args, _ansible_check_mode=False, _ansible_diff=False, _ansible_verbosity=0)).encode()
            start = time.perf_counter()
            out = subprocess.run([str(binary), "module", "valkey_acl"], input=payload, capture_output=True, check=True)
            times["binary"].append(time.perf_counter() - start)
            result = json.loads(out.stdout)
            assert result["changed"] is False, result.get("msg")
            if in_process:  # the plugin's own work, timed in this process
                start = time.perf_counter()
                params, secrets_ = action.validate(args)
                json.dumps(params)
                bm.mask(result, secrets_)
                times["plugin"].append(time.perf_counter() - start)
            print("overhead run %d/%d: %s" % (run + 1, RUNS, {k: round(v[-1], 2) for k, v in times.items() if v}), flush=True)
    finally:
        srv.stop()
    return {k: statistics.median(v) if v else None for k, v in times.items()}


def plugin_overhead(work, tarball):
    """What the action plugin adds to one valkey_acl task on a rerun
    (changed=0) at OVERHEAD_USERS users: timed inside the worker (run()
    minus the command on the target), and end to end against a control play
    whose action is a no-op (and the issue's measure: minus a debug-only play
    and the binary's own time). BENCH_BEFORE_TARBALL adds a column for an
    older build (e.g. 0.1.0's)."""
    users = work / "users-overhead.json"
    data = users_file(users, OVERHEAD_USERS)
    columns = [("this build", measure_overhead(work, *install(work, tarball, "collections-now"), users, data, True))]
    before = os.environ.get("BENCH_BEFORE_TARBALL")
    if before:
        columns.append(("before (%s)" % os.path.basename(before), measure_overhead(work, *install(work, before, "collections-before"), users, data, False)))
    for _, m in columns:
        m["issue"] = m["total"] - m["debug"] - m["binary"]
        m["end_to_end"] = m["total"] - m["noop"] - m["command"]
        m["adds"] = m["run"] - m["command"]
    rows = [
        ("whole playbook, one task, rerun (changed=0)", "total"),
        ("debug-only play, same extra vars", "debug"),
        ("control: same play and arguments, the action a no-op that reads every argument", "noop"),
        ("the binary alone on the same JSON (`valkeyops module valkey_acl` on stdin)", "binary"),
        ("whole - debug - binary (the issue's measure; includes ansible-core's handling of the %s-user argument)" % format(OVERHEAD_USERS, ","), "issue"),
        ("whole - control - the command on the target (the plugin, end to end)", "end_to_end"),
        ("in the worker: the action plugin's `run()`", "run"),
        ("in the worker: of which the one command on the target (the binary over the connection)", "command"),
        ("in the worker: of which `validate()` (check with the spec, collect the secrets)", "validate"),
        ("**what the action plugin adds: `run()` - the command** (goal: under 1 s)", "adds"),
        ("validate + serialize + mask, timed in the bench process", "plugin"),
    ]
    version = subprocess.run([str(VENV / "bin" / "ansible"), "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    load = os.getloadavg()[0]
    n = format(OVERHEAD_USERS, ",")
    section = [
        OVERHEAD_HEADING % n,
        "",
        "Written by `bench/acl_users.py` (not part of `make test`). One `valkey_acl` task with %s users (each: 1 password,"
        " 2 key patterns, 1 channel, 4 command rules) rerun on a converged server (changed=0); goal: the action plugin adds"
        " under 1 s." % n,
        "",
        "- machine: %s, %d cores, %s; load average %.1f when written (the machine is shared: whole-play numbers move with"
        " it, the ones timed inside the worker much less)" % (platform.machine(), os.cpu_count(), platform.platform(), load),
        "- %s; local connection; median of %d runs; `run()`, `validate()` and the command are timed inside the worker by a"
        " subclass of the collection's action plugin" % (version, RUNS),
        "",
        "| seconds | " + " | ".join(c[0] for c in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for label, key in rows:
        cells = ["%.2f" % m[key] if m.get(key) is not None else "" for _, m in columns]
        section.append("| %s | %s |" % (label, " | ".join(cells)))
    section.append("")
    write_section(re.escape(OVERHEAD_HEADING.split("%s")[0]) + r"[\d,]+ users: what the action plugin adds", section)


def main():
    work = Path(tempfile.mkdtemp(prefix="valkeyops-bench-acl-"))
    tarball = os.environ.get("BENCH_TARBALL") or sorted((ROOT / "dist").glob("valkeyops-secure-*.tar.gz"))[-1]
    if USERS:
        loop_vs_one(work, install(work, tarball, "collections")[1])
    if OVERHEAD_USERS:
        plugin_overhead(work, tarball)


def loop_vs_one(work, env):
    (work / "one.yml").write_text(ONE_TASK)
    (work / "loop.yml").write_text(LOOP)
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
        print("run %d/%d: %s" % (run + 1, RUNS, {k: round(v[-1], 2) for k, v in times.items() if v}), flush=True)

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
