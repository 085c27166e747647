"""Playbook-level tests: the built collection, installed from its Galaxy
tarball, driven by the real ansible-playbook against real valkey-server
processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pytest_addoption(parser):
    parser.addoption("--venv", default=str(ROOT / ".venv"), help="venv with the newest ansible-core")
    parser.addoption("--venv-oldest", default=str(ROOT / ".venv-oldest"), help="venv with the oldest supported ansible-core")
    parser.addoption("--tarball", default=None, help="the collection tarball to install and test")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listens_on(pid: int, port: int) -> bool:
    """Whether process pid holds the socket listening on 127.0.0.1:port."""
    want = "0100007F:%04X" % port
    try:
        lines = Path("/proc/%d/net/tcp" % pid).read_text().splitlines()[1:]
        inodes = {"socket:[%s]" % f[9] for f in map(str.split, lines) if len(f) > 9 and f[1] == want and f[3] == "0A"}
        return any(os.readlink("/proc/%d/fd/%s" % (pid, fd)) in inodes for fd in os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return False


def set_waited(port: int, key: str, value: str, replicas: int = 1, timeout_ms: int = 30000) -> str:
    """SET, then WAIT on the same connection of a local server (one valkey-cli, the commands on
    stdin): WAIT counts the replicas that acknowledged its own connection's writes, so on another
    connection it answers at once. Returns WAIT's answer: the replicas that have the write (the
    server's event), fewer only after timeout_ms."""
    out = subprocess.run(["valkey-cli", "-p", str(port)], input="SET %s %s\nWAIT %d %d\n" % (key, value, replicas, timeout_ms),
                         capture_output=True, text=True, check=True, timeout=timeout_ms / 1000 + 10).stdout.split()
    assert out[:1] == ["OK"], out
    return out[-1]


class Valkey:
    """A real valkey-server with its own config file in a temp dir."""

    def __init__(self, base: Path, extra: str = "", conf_dir: Path | None = None, args: tuple = ()):
        self.dir = base
        self.args = tuple(args)  # e.g. ("--sentinel",)
        self.conf_dir = conf_dir or base
        self.port = free_port()
        self.conf = self.conf_dir / "valkey.conf"
        self.log = base / "valkey.log"
        self.password = None
        self.conf.write_text(
            textwrap.dedent(
                f"""\
                # valkeyops test server
                port {self.port}
                bind 127.0.0.1
                dir {base}
                save ""
                logfile {self.log}
                maxmemory 100mb
                timeout 0
                """
            )
            + textwrap.dedent(extra)
        )
        self.conf.chmod(0o640)
        self.proc = None

    def start(self):
        # The port was free when picked; another process (tests run in parallel on
        # this machine) may take it before the server binds: then pick another. The
        # server is ready when its log says so and its own pid holds the listening
        # socket: a PING could be answered by somebody else's server on that port.
        for _ in range(5):
            seen = self.log.stat().st_size if self.log.exists() else 0  # a restart: only this start's lines count
            self.proc = subprocess.Popen(["valkey-server", str(self.conf), *self.args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60  # a guard against a hang; the event is the log line
            while time.monotonic() < deadline and self.proc.poll() is None:
                log = self.log.read_bytes()[seen:].decode(errors="replace") if self.log.exists() else ""
                # A Sentinel logs its id once it listens, never "Ready to accept connections".
                if ("Sentinel ID is" if "--sentinel" in self.args else "Ready to accept connections") in log:
                    if _listens_on(self.proc.pid, self.port):
                        return self
                    break
                time.sleep(0.05)
            log = self.log.read_bytes()[seen:].decode(errors="replace") if self.log.exists() else "no log"
            if self.proc.poll() is None or "Address already in use" not in log:
                break
            old, self.port = self.port, free_port()
            self.conf.write_text(self.conf.read_text().replace("port %d\n" % old, "port %d\n" % self.port, 1))
        self.stop()
        raise RuntimeError("valkey-server did not start on its own port %d: %s" % (self.port, log[-2000:]))

    def cli(self, *args: str) -> str:
        cmd = ["valkey-cli", "-h", "127.0.0.1", "-p", str(self.port)]
        env = dict(os.environ)
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        out = subprocess.run(cmd + list(args), check=True, capture_output=True, text=True, env=env, timeout=10)
        return out.stdout

    def get(self, name: str) -> str:
        lines = self.cli("CONFIG", "GET", name).splitlines()
        return lines[1] if len(lines) > 1 else ""

    def snapshot(self):
        """Everything a failed task must leave as it was."""
        return self.cli("CONFIG", "GET", "*"), self.conf.read_bytes()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def valkey(tmp_path):
    servers = []

    def make(extra: str = "", conf_dir: Path | None = None, args: tuple = ()) -> Valkey:
        d = tmp_path / ("vk%d" % len(servers))
        d.mkdir()
        s = Valkey(d, extra, conf_dir=conf_dir, args=args).start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


class Ansible:
    """Runs ansible-playbook from one venv against the installed collection."""

    def __init__(self, venv: Path, collections: Path, home: Path):
        self.venv = venv
        self.collections = collections
        self.home = home

    def version(self):
        out = subprocess.run([str(self.venv / "bin" / "ansible"), "--version"], capture_output=True, text=True, check=True)
        return out.stdout.splitlines()[0]

    def env(self, **extra):
        env = dict(os.environ)
        env.update(
            {
                "HOME": str(self.home),
                "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
                "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
                "ANSIBLE_LOCAL_TEMP": str(self.home / ".ansible-local"),
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_FORCE_COLOR": "0",
                "ANSIBLE_HOST_KEY_CHECKING": "false",
                "ANSIBLE_RETRY_FILES_ENABLED": "false",
                "ANSIBLE_DEPRECATION_WARNINGS": "false",
                "ANSIBLE_PYTHON_INTERPRETER": str(self.venv / "bin" / "python"),
                "PATH": str(self.venv / "bin") + os.pathsep + env.get("PATH", ""),
            }
        )
        env.update(extra)
        return env

    def playbook(self, path: Path, *args: str, inventory: str = "localhost,", env=None, check=True, within=None):
        """`within`: a lab host to run ansible-playbook inside (its localhost is then the lab host)."""
        self._private_journal(path)
        cmd = [str(self.venv / "bin" / "ansible-playbook"), "-i", inventory, str(path), *args]
        if inventory == "localhost,":
            cmd += ["-c", "local"]
        if within is not None:
            cmd = within.exec_argv(cmd)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env(**(env or {})), cwd=str(path.parent), timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError("ansible-playbook failed (%d):\n%s\n%s" % (proc.returncode, proc.stdout[-6000:], proc.stderr[-3000:]))
        return proc

    def _private_journal(self, path: Path):
        """Tests never write the machine's change journal (/var/log/valkeyops, which the
        machine's own audit reads): every play gets a journal_path in this test's home.
        A playbook that names journal options itself (its test is about the journal, and
        may keep it in a git repository) or is not plain YAML is left as it is."""
        import yaml

        text = path.read_text()
        if "journal" in text:
            return
        try:
            plays = yaml.safe_load(text)
        except yaml.YAMLError:
            return
        if not isinstance(plays, list):
            return
        journal = str(self.home / "journal" / "changes.jsonl")
        for play in plays:
            if isinstance(play, dict) and "hosts" in play:
                play.setdefault("module_defaults", {}).setdefault("group/valkeyops.secure.valkey", {})["journal_path"] = journal
        path.write_text(yaml.safe_dump(plays, sort_keys=False))


class ArgvWatcher:
    """Collects every process's argv from /proc, as fast as it can, while the
    `with` block runs (a module run lasts milliseconds)."""

    def __init__(self):
        import threading

        self.snapshots: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch)

    def _watch(self):
        while not self._stop.is_set():
            snap = []
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    snap.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
                except OSError:
                    pass
            self.snapshots.append("\n".join(snap))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def saw(self, text: str) -> bool:
        return any(text in snap for snap in self.snapshots)


def recap(output: str, host: str = "localhost"):
    m = re.search(r"^%s\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)" % re.escape(host), output, re.M)
    assert m, "no PLAY RECAP for %s in:\n%s" % (host, output[-3000:])
    return {"ok": int(m.group(1)), "changed": int(m.group(2)), "unreachable": int(m.group(3)), "failed": int(m.group(4))}


@pytest.fixture(scope="session")
def tarball(request):
    path = request.config.getoption("--tarball")
    if not path:
        found = sorted((ROOT / "dist").glob("valkeyops-secure-*.tar.gz"))
        assert found, "no collection tarball: run `make collection` (or pass --tarball)"
        path = found[-1]
    return Path(path).resolve()


def _install(venv: Path, tarball: Path, dest: Path):
    subprocess.run(
        [str(venv / "bin" / "ansible-galaxy"), "collection", "install", "--force", "-p", str(dest), str(tarball)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false"},
    )
    return dest


@pytest.fixture(scope="session")
def installed(tmp_path_factory, tarball, request):
    """The tarball installed into a fresh collections path with the newest ansible-core."""
    venv = Path(request.config.getoption("--venv")).resolve()
    return _install(venv, tarball, tmp_path_factory.mktemp("collections"))


@pytest.fixture
def ansible(request, installed, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    return Ansible(Path(request.config.getoption("--venv")).resolve(), installed, home)


@pytest.fixture(scope="session")
def installed_oldest(tmp_path_factory, tarball, request):
    venv = Path(request.config.getoption("--venv-oldest")).resolve()
    if not (venv / "bin" / "ansible-playbook").exists():
        pytest.fail("the oldest-ansible venv is missing: run `make venv-oldest`")
    return _install(venv, tarball, tmp_path_factory.mktemp("collections-oldest"))


@pytest.fixture
def ansible_oldest(request, installed_oldest, tmp_path):
    home = tmp_path / "home-oldest"
    home.mkdir()
    return Ansible(Path(request.config.getoption("--venv-oldest")).resolve(), installed_oldest, home)


@pytest.fixture
def write_playbook(tmp_path):
    def write(text: str, name: str = "play.yml") -> Path:
        p = tmp_path / name
        p.write_text(textwrap.dedent(text))
        return p

    return write


def results_file(tmp_path: Path) -> Path:
    return tmp_path / "results.json"


def load_results(path: Path):
    return json.loads(path.read_text())


# ---- lab hosts (scripts/lab/lab.py) ------------------------------------------------

sys.path.insert(0, str(ROOT / "scripts" / "lab"))
import lab as labhosts  # noqa: E402


class Lab(list):
    """Lab hosts a test asked for: each an sshd in its own mount namespace on its own
    loopback address, logged into as `users[0]` with sudo, as on a real host."""

    def __init__(self, hosts, inventory: Path, users):
        super().__init__(hosts)
        self.inventory = inventory
        self.user = users[0]


def controller_python(venv: str) -> tuple[str, ...]:
    """What a lab host must share for a venv's ansible-playbook to run inside it: the
    base Python the venv links to, when it lies under a host's private dirs (/root)."""
    base = subprocess.run([str(Path(venv) / "bin" / "python"), "-c", "import sys; print(sys.base_prefix)"],
                          capture_output=True, text=True, check=True).stdout.strip()
    return (base,) if base.startswith(("/root/", "/home/")) else ()


@pytest.fixture
def lab_hosts(tmp_path):
    """`lab_hosts(n, users=[...])` starts n lab hosts nobody else uses and writes an
    inventory (group `lab`); they end, every process with them, after the test."""
    taken = []

    def make(n: int = 1, users: list[str] | None = None) -> Lab:
        if os.geteuid() != 0:
            pytest.skip("lab hosts need root (mount namespaces, sshd)")
        users = users or [labhosts.DEFAULT_USER]
        hosts = labhosts.acquire(n, users)
        taken.extend(hosts)
        inventory = tmp_path / ("lab-inventory-%d.ini" % len(taken))
        inventory.write_text("[lab]\n" + "".join(h.inventory_line(users[0]) + "\n" for h in hosts))
        return Lab(hosts, inventory, users)

    yield make
    labhosts.down(taken)


def fixed_lab_hosts(numbers, inventory: Path, render=None) -> Lab:
    """Start the fixed lab hosts a test file owns (labN for N in numbers) and write their
    inventory: render(hosts) when given, else the hosts in group `lab`. Skips when the machine
    cannot run them (not root) or another run holds them; any other lab failure is the test's
    (raised, with the hosts this call started ended). The caller ends them with
    labhosts.down(lab)."""
    if os.geteuid() != 0:
        pytest.skip("lab hosts need root (mount namespaces, sshd)")
    hosts = [labhosts.Host(n) for n in numbers]
    try:
        labhosts.up(hosts)
    except labhosts.LabError as e:
        if not isinstance(e, labhosts.HostTaken):
            labhosts.down([h for h in hosts if h.is_up()])
            raise
        pytest.skip("%s are taken: %s" % (", ".join(h.name for h in hosts), e))
    inventory.write_text(render(hosts) if render else "[lab]\n" + "".join(h.inventory_line() + "\n" for h in hosts))
    return Lab(hosts, inventory, [labhosts.DEFAULT_USER])
