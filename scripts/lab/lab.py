#!/usr/bin/env python3
"""The lab: up to nineteen real hosts on one machine, each an sshd in a private
mount and UTS namespace on its own loopback address.

    lab.py up lab1 lab2 lab3      start hosts (127.0.0.11, .12, .13), port 22
    lab.py up --own-network lab19 a host with a network of its own (see below)
    lab.py down lab1 ... | --all  stop every process a host runs, remove its files
    lab.py status                 the hosts that are up
    lab.py inventory lab1 ...     an INI inventory for ansible-playbook
    lab.py exec lab1 -- CMD...    run CMD inside the host (its files, its hostname)

A host (labN, address 127.0.0.(10+N)) sees the machine's /usr and binaries, read-only,
and its own copies of everything a role writes:

    /etc                   a copy of the machine's (users, sudoers.d, logrotate.d, apt
                           sources, systemd units), /etc/valkey emptied as a fresh package
    /home /root /var/log /var/lib/valkey /var/lib/sudo /var/tmp   its own, empty but for
                           what the package makes (/var/log/valkey)
    /run                   its own tmpfs (no /run/systemd: the roles choose `direct`)
    /proc/sys              read-only: a role's sysctl reaches no machine setting
    /                      read-only (the rest of the machine), except /tmp, which is shared
                           so tests can hand files to hosts

Ansible logs in as an unprivileged user (`vkolab`, or --user NAME ...) with a key and
becomes root with sudo, as on a real host. Host keys are made once per address and kept
in $VALKEYOPS_LAB_DIR/known_hosts, so ssh checks them.

Every process a host runs (sshd, the sessions, the Valkey servers it starts, commands
run with `exec`) lives in the host's mount namespace and nowhere else: `down` ends
exactly those, found by namespace, by pid; never by name. The namespace dies with its
last process and takes its mounts with it. `down --all` also ends hosts that a killed
test run left behind.

A host started with --own-network also gets its own network namespace: its own loopback
(127.0.0.1 there is the host's, not the machine's) and one veth pair, 10.200.N.2/24 inside
(eth0) and 10.200.N.1 on the machine (vklabN), so a server there can listen on an address
that is not loopback while its traffic stays on that pair. sshd listens on 10.200.N.2;
ssh checks the host key under the host's usual address (HostKeyAlias). `down` removes the
veth pair (the namespace goes with the host's last process).

Per-host server binaries (the upgrade issue): a host's /usr/local/sbin is its own
directory (empty on the machine; first in sudo's secure_path), holding at `up` a copy of
the machine's valkey-server (the file its /usr/bin symlink names). Roles run with
`valkey_server_binary: /usr/local/sbin/valkey-server` (LAB_SERVER_BINARY) start each
host's own server, and replacing it there (a rename in that directory, as
valkey_server's upgrade does) changes nothing on the machine or on another host. A
directory, not a file bound over /usr/bin/valkey-server: mount follows that symlink, and
an atomic rename onto a bound file fails (EBUSY).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

LAB_DIR = Path(os.environ.get("VALKEYOPS_LAB_DIR", "/tmp/valkeyops-lab"))
HOSTS = range(1, 20)  # lab1..lab19 = 127.0.0.11..29
SSH_PORT = int(os.environ.get("VALKEYOPS_LAB_SSH_PORT", "22"))  # another port if the machine runs sshd on *:22
DEFAULT_USER = "vkolab"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 15.0

# Inside path -> (owner, mode) of the host's own, empty, directory. /etc is a copy.
PRIVATE_DIRS = {
    "/home": ("root", 0o755),
    "/root": ("root", 0o700),
    "/var/log": ("root", 0o755),
    "/var/lib/valkey": ("valkey", 0o750),
    "/var/lib/sudo": ("root", 0o711),
    "/var/tmp": ("root", 0o1777),
}
# What the distribution package leaves in a fresh host's private dirs.
# The host's own server binary directory (see the docstring) and what the roles run.
SERVER_BIN_DIR = "/usr/local/sbin"
LAB_SERVER_BINARY = SERVER_BIN_DIR + "/valkey-server"
MACHINE_SERVER_BINARY = "/usr/bin/valkey-server"
PACKAGE_DIRS = {"/etc/valkey": ("root", "valkey", 0o750), "/var/log/valkey": ("valkey", "valkey", 0o750)}
# Left out of the /etc copy: the machine's ssh host keys (secrets a host has no use for),
# what the roles write (a fresh host has none of it, whatever `make site` did here), and
# what the tests of 0.1.0 left on the machine (test_bridge's user and its sudoers entry).
ETC_LEFT_OUT = (
    "ssh/ssh_host_*key",
    "logrotate.d/valkeyops",
    "systemd/system/valkey-server*.service.d/valkeyops-*",
    "sysctl.d/60-valkeyops.conf",
    "sudoers.d/valkeyops-test",
)
LEFTOVER_USERS = ("vkotest",)

# Runs inside the new namespaces as root; argv: host dir, hostname, users' sudoers file.
# The first check makes every mount below impossible in the machine's own namespace.
INIT = r"""
set -eu
H=$1
if [ "$(readlink /proc/self/ns/mnt)" = "$(readlink /proc/1/ns/mnt)" ]; then
  echo "lab: not in a private mount namespace; refusing to mount anything" >&2; exit 1
fi
hostname "$2"
# A network of its own ($3 = its address): the machine moves eth0 in, then says "go".
if [ -n "${3:-}" ]; then
  if [ "$(readlink /proc/self/ns/net)" = "$(readlink /proc/1/ns/net)" ]; then
    echo "lab: not in a private network namespace; refusing to configure it" >&2; exit 1
  fi
  read -r go
  ip link set lo up
  ip addr add "$3/24" dev eth0
  ip link set eth0 up
fi
# Machine paths a host shares read-only although they lie under its private dirs (a
# controller's Python under /root, for tests that run ansible-playbook inside a host).
if [ -f "$H/shared" ]; then
  while IFS= read -r p; do mount --bind "$p" "$H/fs$p"; mount -o remount,bind,ro "$H/fs$p"; done < "$H/shared"
fi
mount --bind "$H/fs/etc" /etc
mount --bind "$H/fs/usr/local/sbin" /usr/local/sbin
for d in home root var/log var/lib/valkey var/lib/sudo var/tmp; do mount --rbind "$H/fs/$d" "/$d"; done
mount -t tmpfs -o mode=0755,nosuid,nodev lab-run /run
mkdir -m 0755 /run/sshd
mount --bind /tmp /tmp
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
mount -o remount,bind,ro /
echo ready > "$H/ready"
exec /usr/sbin/sshd -D -e -f "$H/sshd_config"
"""


class LabError(Exception):
    pass


class HostTaken(LabError):
    """The host is up, or being started, for someone else."""


class Host:
    def __init__(self, index: int):
        if index not in HOSTS:
            raise LabError("lab hosts are lab1 to lab19, not lab%d" % index)
        self.index = index
        self.name = "lab%d" % index
        self.address = "127.0.0.%d" % (10 + index)
        self.dir = LAB_DIR / "hosts" / self.name

    # A host with a network of its own (up --own-network): its address inside, the
    # machine's end of the veth pair, and the pair's name on the machine.
    @property
    def net_address(self) -> str:
        return "10.200.%d.2" % self.index

    @property
    def machine_address(self) -> str:
        return "10.200.%d.1" % self.index

    @property
    def veth(self) -> str:
        return "vklab%d" % self.index

    @property
    def own_network(self) -> bool:
        return (self.dir / "network").exists()

    @property
    def ssh_address(self) -> str:
        """Where its sshd listens: its own network's address, else its loopback one."""
        return self.net_address if self.own_network else self.address

    @classmethod
    def named(cls, name: str) -> "Host":
        if not (name.startswith("lab") and name[3:].isdigit()):
            raise LabError("a lab host is named lab1 to lab19, not %r" % name)
        return cls(int(name[3:]))

    def path(self, inside: str) -> Path:
        """The machine-side path of a path inside the host's private directories."""
        for top in ["/etc", SERVER_BIN_DIR, *PRIVATE_DIRS]:
            if inside == top or inside.startswith(top + "/"):
                return self.dir / "fs" / inside.lstrip("/")
        raise LabError("%s is not private to a lab host" % inside)

    @property
    def pid(self) -> int | None:
        try:
            return int((self.dir / "pid").read_text())
        except (OSError, ValueError):
            return None

    @property
    def namespace(self) -> str | None:
        try:
            return (self.dir / "mntns").read_text().strip()
        except OSError:
            return None

    def processes(self) -> list[int]:
        """Every process in the host's mount namespace (ours by construction)."""
        ns = self.namespace
        if not ns or ns in (_ns(1), _ns(os.getpid())):
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _ns(int(entry.name)) == ns:
                found.append(int(entry.name))
        return found

    def is_up(self) -> bool:
        pid = self.pid
        return pid is not None and self.namespace is not None and _ns(pid) == self.namespace

    def exec_argv(self, argv: list[str]) -> list[str]:
        if not self.is_up():
            raise LabError("%s is not up" % self.name)
        net = ["--net"] if self.own_network else []
        return ["nsenter", "--target", str(self.pid), "--mount", "--uts", *net, "--", *argv]

    def instance(self, user: str = DEFAULT_USER) -> dict:
        """How molecule's delegated driver logs in (its instance_config.yml entry)."""
        return {"instance": self.name, "address": self.ssh_address, "user": user, "port": SSH_PORT, "identity_file": str(client_key())}

    def ssh_options(self) -> list[str]:
        alias = ["-o HostKeyAlias=%s" % self.address] if self.own_network else []
        return ssh_options() + alias

    def inventory_line(self, user: str = DEFAULT_USER) -> str:
        return (
            "%s ansible_host=%s ansible_port=%d ansible_user=%s ansible_connection=ssh "
            "ansible_ssh_private_key_file=%s ansible_python_interpreter=/usr/bin/python3 "
            "ansible_ssh_common_args='%s'" % (self.name, self.ssh_address, SSH_PORT, user, client_key(), " ".join(self.ssh_options()))
        )


def _ns(pid: int) -> str | None:
    try:
        return os.readlink("/proc/%d/ns/mnt" % pid)
    except OSError:
        return None


def ssh_options() -> list[str]:
    return ["-o UserKnownHostsFile=%s" % (LAB_DIR / "known_hosts"), "-o StrictHostKeyChecking=yes", "-o IdentitiesOnly=yes"]


def client_key() -> Path:
    return LAB_DIR / "client_key"


def _lab_dir():
    LAB_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    (LAB_DIR / "hosts").mkdir(mode=0o700, exist_ok=True)
    with open(LAB_DIR / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not client_key().exists():
            _keygen(client_key(), "valkeyops-lab-client")
        for h in HOSTS:
            host = Host(h)
            key = LAB_DIR / "keys" / host.address / "ssh_host_ed25519_key"
            if not key.exists():
                key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                _keygen(key, host.name)
        lines = []
        for h in HOSTS:
            host = Host(h)
            pub = (LAB_DIR / "keys" / host.address / "ssh_host_ed25519_key.pub").read_text().split()
            lines.append("%s %s %s\n" % (host.address, pub[0], pub[1]))
        known = LAB_DIR / "known_hosts"
        if not known.exists() or known.read_text() != "".join(lines):
            known.write_text("".join(lines))


def _keygen(path: Path, comment: str):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)


def _copy_etc(dest: Path):
    subprocess.run(["cp", "-a", "/etc", str(dest)], check=True)  # owners too (shadow, sudoers)
    for pattern in ETC_LEFT_OUT:
        for p in dest.glob(pattern):
            p.unlink()
    shutil.rmtree(dest / "valkey", ignore_errors=True)
    for name in ("passwd", "shadow", "group", "gshadow"):
        f = dest / name
        if f.exists():
            kept = [x for x in f.read_text().splitlines(keepends=True) if x.split(":")[0] not in LEFTOVER_USERS]
            f.write_text("".join(kept))


def _server_bin_dir(dest: Path):
    """The host's own /usr/local/sbin: root's, 0755, a copy of the machine's server binary
    (resolved through its symlink; copied, so a change on the host stays there)."""
    dest.mkdir(parents=True)
    dest.chmod(0o755)
    shutil.copy2(os.path.realpath(MACHINE_SERVER_BINARY), dest / "valkey-server")
    (dest / "valkey-server").chmod(0o755)


def _chown(path: Path, user: str, group: str | None = None):
    pw = pwd.getpwnam(user)
    gid = pw.pw_gid if group is None else _group_id(group)
    os.chown(path, pw.pw_uid, gid)


def _group_id(name: str) -> int:
    import grp

    return grp.getgrnam(name).gr_gid


def _add_user(etc: Path, home_root: Path, user: str, pubkey: str):
    """An account in the host's own /etc (never the machine's): key login, sudo to anyone."""
    passwd = (etc / "passwd").read_text().splitlines()
    groups = (etc / "group").read_text().splitlines()
    names = {line.split(":")[0] for line in passwd}
    if user in names:
        raise LabError("user %r already exists on the machine; pick another lab user name" % user)
    used = {int(line.split(":")[2]) for line in passwd} | {int(line.split(":")[2]) for line in groups}
    uid = next(i for i in range(2000, 60000) if i not in used)
    with open(etc / "passwd", "a") as f:
        f.write("%s:x:%d:%d::/home/%s:/bin/sh\n" % (user, uid, uid, user))
    with open(etc / "group", "a") as f:
        f.write("%s:x:%d:\n" % (user, uid))
    # "*": no password, not locked (sshd without PAM refuses locked accounts even for keys).
    with open(etc / "shadow", "a") as f:
        f.write("%s:*:19000:0:99999:7:::\n" % user)
    if (etc / "gshadow").exists():
        with open(etc / "gshadow", "a") as f:
            f.write("%s:!::\n" % user)
    sudoers = etc / "sudoers.d" / ("lab-" + user)
    sudoers.write_text("%s ALL=(ALL) NOPASSWD: ALL\n" % user)
    sudoers.chmod(0o440)
    home = home_root / user
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "authorized_keys").write_text(pubkey)
    (home / ".ssh").chmod(0o700)
    (home / ".ssh" / "authorized_keys").chmod(0o600)
    for p in (home, home / ".ssh", home / ".ssh" / "authorized_keys"):
        os.chown(p, uid, uid)


def _sshd_config(host: Host, users: list[str]) -> str:
    return "\n".join(
        [
            "ListenAddress %s:%d" % (host.ssh_address, SSH_PORT),
            "HostKey %s" % (LAB_DIR / "keys" / host.address / "ssh_host_ed25519_key"),
            "PidFile none",
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin no",
            "AllowUsers %s" % " ".join(users),
            "PrintMotd no",
            "PrintLastLog no",
            "MaxSessions 50",
            "MaxStartups 50:30:100",
            "Subsystem sftp internal-sftp",
            "",
        ]
    )


def up(hosts: list[Host], users: list[str] | None = None, shared: tuple[str, ...] = (), own_network: bool = False):
    """Start the hosts; `shared`: machine directories under a host's private dirs that
    the host sees too, read-only; `own_network`: each host in a network namespace of its
    own with a veth pair to the machine (see the module's docstring)."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (mount namespaces, sshd)")
    users = users or [DEFAULT_USER]
    _lab_dir()
    pubkey = (LAB_DIR / "client_key.pub").read_text()
    started = []
    try:
        for host in hosts:
            _claim(host)
            started.append(host)
            fs = host.dir / "fs"
            fs.mkdir()
            _copy_etc(fs / "etc")
            for inside, (owner, mode) in PRIVATE_DIRS.items():
                d = host.path(inside)
                d.mkdir(parents=True, exist_ok=True)
                _chown(d, owner)
                d.chmod(mode)
            for inside, (owner, group, mode) in PACKAGE_DIRS.items():
                d = host.path(inside)
                d.mkdir(exist_ok=True)
                _chown(d, owner, group)
                d.chmod(mode)
            _server_bin_dir(fs / SERVER_BIN_DIR.lstrip("/"))
            with open(fs / "etc" / "hosts", "a") as f:  # every lab host by name, its own too (sudo)
                f.write("".join("%s %s\n" % (Host(h).address, Host(h).name) for h in HOSTS))
            for user in users:
                _add_user(fs / "etc", host.path("/home"), user, pubkey)
            for p in shared:
                host.path(p).mkdir(parents=True, exist_ok=True)
            (host.dir / "shared").write_text("".join(p + "\n" for p in shared))
            if own_network:
                (host.dir / "network").write_text(host.net_address + "\n")
            (host.dir / "sshd_config").write_text(_sshd_config(host, users))
            log = open(host.dir / "sshd.log", "w")
            net = ["--net"] if own_network else []
            proc = subprocess.Popen(
                ["unshare", "--mount", "--uts", *net, "--propagation", "private", "--", "/bin/sh", "-c", INIT, "lab-init", str(host.dir), host.name,
                 host.net_address if own_network else ""],
                stdin=subprocess.PIPE if own_network else subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
            (host.dir / "pid").write_text("%d\n" % proc.pid)
            if own_network:
                _connect(host, proc)
            _wait_ready(host, proc)
    except BaseException:
        down(started)
        raise


def _claim(host: Host):
    """The host's directory is its lock: made atomically, or found stale and replaced."""
    host.dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        host.dir.mkdir(mode=0o700)
    except FileExistsError:
        if host.is_up() or host.processes():
            raise HostTaken("%s (%s) is already up (pid %s); `lab.py down %s` first" % (host.name, host.address, host.pid, host.name))
        try:
            owner = int((host.dir / "owner").read_text())
        except (OSError, ValueError):
            owner = None
        if owner is not None and owner != os.getpid() and _alive(owner):
            raise HostTaken("%s is being started by process %d" % (host.name, owner))
        shutil.rmtree(host.dir)  # stale: its processes and its starter are gone
        host.dir.mkdir(mode=0o700)
    (host.dir / "owner").write_text("%d\n" % os.getpid())


def _netns(pid: int) -> str | None:
    try:
        return os.readlink("/proc/%d/ns/net" % pid)
    except OSError:
        return None


def _connect(host: Host, proc: subprocess.Popen):
    """Once the host's process is in its own network namespace, make the veth pair with
    its inner end (eth0) there, address the machine's end, and let the host go on."""
    deadline = time.monotonic() + START_TIMEOUT
    while _netns(proc.pid) in (None, _netns(os.getpid())):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise LabError("%s did not enter its network namespace: %s" % (host.name, (host.dir / "sshd.log").read_text()[-2000:]))
        time.sleep(0.01)
    _remove_veth(host)  # a pair a killed run left behind
    for argv in (
        ["ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", str(proc.pid)],
        ["ip", "addr", "add", host.machine_address + "/24", "dev", host.veth],
        ["ip", "link", "set", host.veth, "up"],
    ):
        subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)
    proc.stdin.write(b"go\n")
    proc.stdin.close()


def _remove_veth(host: Host):
    """The machine's end of a host's veth pair (deleting one end deletes both). The kernel
    deletes the pair itself when the host's network namespace goes (its last process ended),
    which can happen between our look and our delete: only a pair still there is an error."""
    def present() -> bool:
        return subprocess.run(["ip", "link", "show", host.veth], capture_output=True, timeout=30).returncode == 0

    if present():
        out = subprocess.run(["ip", "link", "del", host.veth], capture_output=True, text=True, timeout=30)
        # A failed delete of a pair the kernel is removing: wait (bounded) until it is gone.
        deadline = time.monotonic() + START_TIMEOUT
        while out.returncode != 0 and present():
            if time.monotonic() > deadline:
                raise LabError("%s: cannot delete %s: %s" % (host.name, host.veth, out.stderr.strip()))
            time.sleep(0.05)


def _wait_ready(host: Host, proc: subprocess.Popen):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (host.dir / "sshd.log").read_text()[-2000:]
            if "Address already in use" in log:  # another lab (another VALKEYOPS_LAB_DIR) holds the address
                raise HostTaken("%s: %s:%d is in use by another process" % (host.name, host.address, SSH_PORT))
            raise LabError("%s did not start: %s" % (host.name, log))
        ns = _ns(proc.pid)
        if (host.dir / "ready").exists() and ns and ns != _ns(os.getpid()):
            (host.dir / "mntns").write_text(ns + "\n")
            # Our own sshd says it listens (a connect could reach another lab's sshd on the address).
            if "Server listening on %s port %d." % (host.ssh_address, SSH_PORT) in (host.dir / "sshd.log").read_text():
                return
        time.sleep(0.05)
    log = (host.dir / "sshd.log").read_text()[-2000:]
    raise LabError("%s did not answer on %s:%d within %ds: %s" % (host.name, host.ssh_address, SSH_PORT, START_TIMEOUT, log))


def down(hosts: list[Host]):
    """End every process of each host (SIGTERM, then SIGKILL), then remove its files."""
    for host in hosts:
        if not host.dir.exists():
            continue
        pids = host.processes()
        if not pids and host.pid and host.namespace is None:
            pids = [host.pid]  # died before its namespace was recorded: only the one we started
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 5.0)):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                pids = host.processes() if host.namespace else [p for p in pids if _alive(p)]
                if not pids:
                    break
                time.sleep(0.05)
            if not pids:
                break
        if pids:
            raise LabError("%s: processes %s did not end" % (host.name, pids))
        if host.own_network:
            _remove_veth(host)
        shutil.rmtree(host.dir)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def acquire(n: int, users: list[str] | None = None, shared: tuple[str, ...] = ()) -> list[Host]:
    """n hosts that nobody else uses, from lab19 down (molecule scenarios count up from lab1)."""
    got: list[Host] = []
    try:
        for h in reversed(HOSTS):
            if len(got) == n:
                break
            try:
                up([Host(h)], users, shared)
            except HostTaken:
                continue
            got.append(Host(h))
        if len(got) < n:
            raise LabError("only %d of the %d lab hosts asked for are free" % (len(got), n))
    except BaseException:
        down(got)
        raise
    return got


def up_hosts() -> list[Host]:
    return [Host(h) for h in HOSTS if Host(h).is_up()]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lab.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("up")
    p.add_argument("hosts", nargs="+")
    p.add_argument("--user", action="append", help="login user(s) to create on each host (default %s)" % DEFAULT_USER)
    p.add_argument("--own-network", action="store_true", help="each host in its own network namespace, 10.200.N.2 on a veth pair")
    p = sub.add_parser("down")
    p.add_argument("hosts", nargs="*")
    p.add_argument("--all", action="store_true")
    sub.add_parser("status")
    p = sub.add_parser("inventory")
    p.add_argument("hosts", nargs="*")
    p = sub.add_parser("instances", help="molecule's instance config (JSON) for these hosts")
    p.add_argument("hosts", nargs="+")
    p = sub.add_parser("exec")
    p.add_argument("host")
    p.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "up":
            hosts = [Host.named(n) for n in args.hosts]
            up(hosts, args.user, own_network=args.own_network)
            for h in hosts:
                print("%s up: %s:%d, pid %d" % (h.name, h.ssh_address, SSH_PORT, h.pid))
        elif args.cmd == "down":
            hosts = [Host(h) for h in HOSTS if Host(h).dir.exists()] if args.all else [Host.named(n) for n in args.hosts]
            down(hosts)
        elif args.cmd == "status":
            for h in up_hosts():
                print("%s %s pid %d, %d processes" % (h.name, h.address, h.pid, len(h.processes())))
        elif args.cmd == "inventory":
            hosts = [Host.named(n) for n in args.hosts] if args.hosts else up_hosts()
            print("[lab]")
            for h in hosts:
                print(h.inventory_line())
        elif args.cmd == "instances":
            print(json.dumps([h.instance() for h in map(Host.named, args.hosts)], indent=2))
        elif args.cmd == "exec":
            argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            os.execvp("nsenter", Host.named(args.host).exec_argv(argv or ["/bin/bash"]))
    except LabError as e:
        print("lab: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
