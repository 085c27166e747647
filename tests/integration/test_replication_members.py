"""A replication group's members change (issue 15) on lab7-lab9, real ssh, real
Sentinels, TLS with one CA for the group: a replica added in the inventory joins
the current primary at the next site.yml and every Sentinel learns it by itself;
playbooks/remove_replica.yml takes one out and resets the Sentinels one at a time
until none lists it and the quorum still holds; and a member that claims to be the
primary while the Sentinels name another stops site.yml before anything changes,
with one sentence naming who says what. One group build for all the cases."""

from __future__ import annotations

import hashlib
import json
import os
import selectors
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Ansible, Lab, fixed_lab_hosts, labhosts, recap

# This helper's lab hosts (fixed; the shared lab_hosts fixture takes hosts from lab19 down).
OUR_HOSTS = (7, 8, 9)
ADMIN = "members-admin-password-5c1e9a7d"
REPLICATION = "members-replication-password-2b8f"
SENTINEL_AUTH = "members-sentinel-auth-password-9d3a"
SENTINEL_ADMIN = "members-sentinel-admin-password-4e7c"
SENTINEL_PEER = "members-sentinel-peer-password-6a0b"
SECRETS = (ADMIN, REPLICATION, SENTINEL_AUTH, SENTINEL_ADMIN, SENTINEL_PEER)
DATA_SOCKET = "/run/valkey/valkey.sock"
SENTINEL_SOCKET = "/run/valkey-sentinel/sentinel.sock"
TLS_PORT = 6380


def _group(*replicas: str) -> dict:
    return {"name": "main", "members": [{"host": "lab7", "initial_primary": True}, *replicas],
            "sentinels": ["lab7", "lab8", "lab9"], "quorum": 2, "down_after_milliseconds": 5000, "failover_timeout": 15000}


def _make_group_ca(ca: Path, hosts) -> None:
    """As molecule/replication/prepare.yml: one CA, each node's certificate with its names."""
    ca.mkdir(mode=0o700)

    def run(*argv: str) -> None:
        subprocess.run(argv, check=True, capture_output=True, timeout=60)

    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "90",
        "-subj", "/CN=valkeyops members lab CA", "-keyout", str(ca / "ca.key"), "-out", str(ca / "ca.crt"))
    for h in hosts:
        base = ca / h.name
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=%s" % h.name,
            "-keyout", "%s.key" % base, "-out", "%s.csr" % base)
        Path("%s.ext" % base).write_text("subjectAltName=DNS:%s,IP:%s\nextendedKeyUsage=serverAuth,clientAuth\n" % (h.name, h.address))
        run("openssl", "x509", "-req", "-in", "%s.csr" % base, "-CA", str(ca / "ca.crt"), "-CAkey", str(ca / "ca.key"),
            "-CAcreateserial", "-days", "90", "-extfile", "%s.ext" % base, "-out", "%s.crt" % base)


def _group_vars(ca: Path) -> dict:
    return {
        "valkey_server_install": False,
        "valkey_server_bind": "{{ ansible_host }}",
        "valkey_server_admin_password": ADMIN,
        "valkey_acl_users": [],
        "valkey_tls_enabled": True,
        "valkey_tls_generate_self_signed": False,
        "valkey_tls_server_names": ["{{ ansible_host }}", "{{ inventory_hostname }}"],
        "valkey_tls_cert": "{{ lookup('ansible.builtin.file', '%s/' ~ inventory_hostname ~ '.crt') }}" % ca,
        "valkey_tls_key": "{{ lookup('ansible.builtin.file', '%s/' ~ inventory_hostname ~ '.key') }}" % ca,
        "valkey_tls_ca": "{{ lookup('ansible.builtin.file', '%s/ca.crt') }}" % ca,
        "valkey_replication_password": REPLICATION,
        "valkey_sentinel_auth_password": SENTINEL_AUTH,
        "valkey_sentinel_admin_password": SENTINEL_ADMIN,
        "valkey_sentinel_peer_password": SENTINEL_PEER,
        "valkey_sentinel_tls": True,
        "valkey_sentinel_tls_cert_file": "/etc/valkey/tls/server.crt",
        "valkey_sentinel_tls_key_file": "/etc/valkey/tls/server.key",
        "valkey_sentinel_tls_ca_file": "/etc/valkey/tls/ca.crt",
        "valkey_sentinel_bind": "{{ ansible_host }}",
        "valkey_sentinel_announce_ip": "{{ ansible_host }}",
    }


class Group:
    """The lab group and how the test runs the collection's playbooks on it."""

    def __init__(self, lab: Lab, ansible: Ansible, work: Path):
        self.lab = lab
        self.by_name = {h.name: h for h in lab}
        self.ansible = ansible
        self.work = work

    def __getitem__(self, name: str):
        return self.by_name[name]

    def play(self, playbook: str, extra: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        pb = self.work / ("%s.yml" % playbook)
        pb.write_text(json.dumps([{"import_playbook": "valkeyops.secure.%s" % playbook}]))
        extra_file = self.work / "extra.json"  # not on the command line (ps, -vvvv)
        extra_file.write_text(json.dumps({"valkey_hosts": "lab", **extra}))
        out = self.ansible.playbook(pb, "-e", "@%s" % extra_file, *args, inventory=str(self.lab.inventory), check=check)
        for secret in SECRETS:
            assert secret not in out.stdout + out.stderr, "a password shows in the output of %s" % playbook
        return out

    def site(self, *replicas: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.play("site", {"valkey_replication_groups": [_group(*replicas)]}, check=check)


def cli(host, *args: str, sentinel: bool = False) -> str:
    """valkey-cli inside the host on the instance's or the Sentinel's socket as its admin (password on stdin)."""
    user, password, sock = ("sentinel-admin", SENTINEL_ADMIN, SENTINEL_SOCKET) if sentinel else ("valkeyops-admin", ADMIN, DATA_SOCKET)
    argv = ["valkey-cli", "-s", sock, "--user", user, "--askpass", "--raw", *args]
    out = subprocess.run(host.exec_argv(argv), input=password + "\n", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, (host.name, args, out.stdout, out.stderr)
    return out.stdout.strip()


def set_waited(host, key: str, value: str, replicas: int) -> str:
    """SET, then WAIT on the same connection (one valkey-cli: the password, then the commands on
    stdin): WAIT counts the replicas that acknowledged its connection's own writes, so on another
    connection it answers at once. Returns WAIT's answer once that many replicas have the write."""
    argv = ["valkey-cli", "-s", DATA_SOCKET, "--user", "valkeyops-admin", "--askpass", "--raw"]
    out = subprocess.run(host.exec_argv(argv), input="%s\nSET %s %s\nWAIT %d 30000\n" % (ADMIN, key, value, replicas),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, (host.name, out.stdout, out.stderr)
    return out.stdout.split()[-1]


def info(host, field: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in cli(host, "INFO", "replication").splitlines() if line.startswith(field + ":"))


def sentinel_replicas(host) -> list[str]:
    """host:port of each replica the Sentinel on `host` lists for the group (SENTINEL REPLICAS, --raw: name/value lines)."""
    lines = cli(host, "SENTINEL", "REPLICAS", "main", sentinel=True).splitlines()
    out, cur = [], {}
    for key, value in zip(lines[::2], lines[1::2]):
        if key == "name" and cur:
            out.append(cur)
            cur = {}
        cur[key] = value
    if cur:
        out.append(cur)
    return sorted("%s:%s" % (r["ip"], r["port"]) for r in out)


class Events:
    """A subscription to a Sentinel's events (inside its host, on its socket), read
    until an expected message or a deadline: what the test waits on, instead of sleeping."""

    def __init__(self, host, *channels: str):
        argv = ["valkey-cli", "-s", SENTINEL_SOCKET, "--user", "sentinel-admin", "--askpass", "--raw", "SUBSCRIBE", *channels]
        self.proc = subprocess.Popen(host.exec_argv(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.proc.stdin.write((SENTINEL_ADMIN + "\n").encode())
        self.proc.stdin.close()
        self.seen: list[str] = []
        self.pending = b""
        self.wait_for(lambda line: line == channels[-1], 30)  # subscribed: the reply names the channel

    def wait_for(self, match, timeout: float) -> str:
        """The first line (seen before or arriving within timeout) that matches. Reads the
        pipe's bytes directly: a buffered reader would hold lines select() cannot see."""
        for line in self.seen:
            if match(line):
                return line
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and sel.select(deadline - time.monotonic()):
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                *lines, self.pending = (self.pending + chunk).split(b"\n")
                new = [raw.decode(errors="replace").strip() for raw in lines]
                self.seen.extend(new)
                found = [line for line in new if match(line)]
                if found:
                    return found[0]
        finally:
            sel.close()
        raise AssertionError("no such event within %ss; seen: %s" % (timeout, self.seen[-20:]))

    def close(self):
        self.proc.kill()  # our own valkey-cli, by its Popen
        self.proc.wait(timeout=30)


def _files(host) -> dict:
    """Every file under the host's /etc/valkey, by its digest."""
    top = host.path("/etc/valkey")
    return {str(p.relative_to(top)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(top.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def group(request, installed, tmp_path_factory):
    """lab7-lab9 up, the group built once: lab7 the primary, lab8 its replica, a
    Sentinel on each of the three; lab9 runs a Valkey that is no member yet."""
    work = tmp_path_factory.mktemp("members")
    inv_dir = work / "inventory"
    (inv_dir / "group_vars").mkdir(parents=True)
    lab = fixed_lab_hosts(OUR_HOSTS, inv_dir / "hosts.ini")
    hosts = list(lab)
    try:
        _make_group_ca(work / "ca", hosts)
        (inv_dir / "group_vars" / "lab.json").write_text(json.dumps(_group_vars(work / "ca")))
        home = work / "home"
        home.mkdir()
        g = Group(lab, Ansible(Path(request.config.getoption("--venv")).resolve(), installed, home), work)
        out = g.site("lab8")
        for h in hosts:
            assert recap(out.stdout, h.name)["failed"] == 0, out.stdout[-4000:]
        assert info(g["lab8"], "master_host") == g["lab7"].address and info(g["lab9"], "role") == "master"
        yield g
    finally:
        labhosts.down(hosts)


def test_a_replica_added_in_the_inventory_joins_and_every_sentinel_learns_it(group):
    lab7, lab8, lab9 = group["lab7"], group["lab8"], group["lab9"]
    lab9_addr = "%s:%d" % (lab9.address, TLS_PORT)
    assert all(lab9_addr not in sentinel_replicas(h) for h in group.lab)
    assert "valkeyops-replication" not in cli(lab9, "ACL", "USERS")
    confs = {h.name: h.path("/etc/valkey/sentinel/sentinel.conf").read_text() for h in group.lab}
    events = [Events(h, "+slave") for h in group.lab]
    try:
        out = group.site("lab8", "lab9")
        # The Sentinels were not told: each found lab9 in the primary's INFO (+slave).
        for e in events:
            e.wait_for(lambda line: line.startswith("slave %s " % lab9_addr), 60)
    finally:
        for e in events:
            e.close()
    assert recap(out.stdout, "lab9")["changed"] > 0
    assert "Point the member at its group's current primary, lab7" in out.stdout
    sentinel_task = out.stdout.split("TASK [valkeyops.secure.valkey_sentinel : Converge the Sentinel's monitors and settings]")[1]
    sentinel_task = sentinel_task.split("TASK [")[0]
    assert "changed:" not in sentinel_task, sentinel_task
    # lab9 replicates from lab7 over TLS as the replication user, which it has now.
    assert info(lab9, "role") == "slave" and info(lab9, "master_host") == lab7.address and info(lab9, "master_link_status") == "up"
    assert "valkeyops-replication" in cli(lab9, "ACL", "USERS").splitlines()
    assert set_waited(lab7, "members:added", "reaches-lab9", 2) == "2"
    assert cli(lab9, "GET", "members:added") == "reaches-lab9"
    for h in group.lab:
        assert sentinel_replicas(h) == sorted(["%s:%d" % (lab8.address, TLS_PORT), lab9_addr])
        # No Sentinel state written by the play: only Sentinel's own discoveries were added.
        own = ("sentinel known-", "sentinel current-epoch", "sentinel config-epoch", "sentinel leader-epoch", "# ")
        before = [line for line in confs[h.name].splitlines() if line and not line.startswith(own)]
        after = [line for line in h.path("/etc/valkey/sentinel/sentinel.conf").read_text().splitlines() if line and not line.startswith(own)]
        assert before == after, (h.name, set(before) ^ set(after))
    # The next run changes nothing.
    out = group.site("lab8", "lab9")
    for h in group.lab:
        assert recap(out.stdout, h.name)["changed"] == 0, out.stdout[-4000:]


def test_a_replica_still_listed_is_not_removed(group):
    out = group.play("remove_replica", {"valkey_replication_groups": [_group("lab8", "lab9")], "valkey_remove_group": "main",
                                        "valkey_remove_member": "lab9"}, check=False)
    assert out.returncode == 2
    assert ("lab9 is still a member of replication group main in valkey_replication_groups; take it out there first "
            "(the next site.yml would make it a replica again); nothing was changed") in out.stdout
    for h in group.lab:
        assert recap(out.stdout, h.name)["changed"] == 0
    assert info(group["lab9"], "role") == "slave"


def test_removing_a_replica_resets_each_sentinel_in_turn(group):
    lab7, lab8, lab9 = group["lab7"], group["lab8"], group["lab9"]
    lab9_addr = "%s:%d" % (lab9.address, TLS_PORT)
    assert all(lab9_addr in sentinel_replicas(h) for h in group.lab), "run with the add test first"
    remove = {"valkey_replication_groups": [_group("lab8")], "valkey_remove_group": "main", "valkey_remove_member": "lab9"}
    out = group.play("remove_replica", remove)
    # One reset per Sentinel, each its own changed task naming what it reset, one host at a time.
    header = "valkeyops.secure.valkey_replication : Reset this Sentinel's view: SENTINEL RESET main, forgetting lab9 (%s)]" % lab9_addr
    blocks = [b for b in out.stdout.split("TASK [") if b.startswith(header)]
    assert len(blocks) == 3, out.stdout[-6000:]
    assert sorted(line for b in blocks for line in b.splitlines() if line.startswith("changed: [")) == [
        "changed: [lab7]", "changed: [lab8]", "changed: [lab9]"]
    for h in group.lab:
        assert ("The Sentinel on %s reset group main: it forgot lab9 (%s) and knows again the replicas %s:%d"
                % (h.name, lab9_addr, lab8.address, TLS_PORT)) in out.stdout
    # lab9 is a primary of its own, keeps its data, and has no user of the group any more.
    assert info(lab9, "role") == "master" and cli(lab9, "GET", "members:added") == "reaches-lab9"
    users = cli(lab9, "ACL", "USERS").splitlines()
    assert "valkeyops-replication" not in users and "sentinel" not in users
    conf = lab9.path("/etc/valkey/valkey.conf").read_text().splitlines()
    assert [line for line in conf if line.startswith("replicaof ")] in ([], ["replicaof no one"]), conf
    # Every Sentinel forgot it, knows lab8 and the two other Sentinels, and can still agree on a failover.
    for h in group.lab:
        assert sentinel_replicas(h) == ["%s:%d" % (lab8.address, TLS_PORT)]
        assert cli(h, "SENTINEL", "CKQUORUM", "main", sentinel=True).startswith("OK 3 usable Sentinels"), h.name
    assert info(lab7, "connected_slaves") == "1"
    # Run again: nothing left to do, no Sentinel reset.
    out = group.play("remove_replica", remove)
    for h in group.lab:
        assert recap(out.stdout, h.name)["changed"] == 0, out.stdout[-4000:]
    # site.yml with the group as the inventory now says it leaves lab9 alone.
    out = group.site("lab8")
    for h in group.lab:
        assert recap(out.stdout, h.name)["changed"] == 0, out.stdout[-4000:]
    assert info(lab9, "role") == "master"


def test_a_member_claiming_the_primary_stops_site_before_anything_changes(group):
    lab8 = group["lab8"]
    # lab8 claims to be a primary; its Sentinel user may not turn it back (SLAVEOF) while site.yml reads.
    cli(lab8, "ACL", "SETUSER", "sentinel", "-slaveof")
    try:
        assert cli(lab8, "REPLICAOF", "NO", "ONE") == "OK"
        files = {h.name: _files(h) for h in group.lab}
        out = group.site("lab8", check=False)
        assert out.returncode == 2, out.stdout[-4000:]
        sentence = ("replication group main: its Sentinels (lab7, lab8, lab9) say the primary is lab7 (%s:%d), but lab8 says it is a "
                    "primary; nothing was changed: make it a replica again (Sentinel does it by itself within seconds) or move the "
                    "primary with playbooks/switchover.yml") % (group["lab7"].address, TLS_PORT)
        failed = [b for b in out.stdout.split("TASK [") if '"msg": %s' % json.dumps(sentence) in b]
        assert len(failed) == 1, out.stdout[-4000:]
        # site.yml's pre_tasks, on every host of the group, before any role ran.
        assert failed[0].startswith("valkeyops.secure.valkey_replication : Stop when the Sentinels and the members disagree on a primary]")
        assert sorted(line.split("]")[0] for line in failed[0].splitlines() if line.startswith("fatal: [")) == [
            "fatal: [lab7", "fatal: [lab8", "fatal: [lab9"]
        assert "TASK [valkeyops.secure.valkey_server : " not in out.stdout.split("PLAY RECAP")[0].split(sentence)[-1]
        for h in group.lab:
            assert recap(out.stdout, h.name)["changed"] == 0
        assert {h.name: _files(h) for h in group.lab} == files
        assert info(lab8, "role") == "master"
        assert "+slaveof" not in cli(lab8, "ACL", "GETUSER", "sentinel")
        # Given its right back, a Sentinel makes lab8 a replica again by itself: the
        # primary's WAIT returns when lab8 has synced and acknowledged the write.
        replicas = int(info(group["lab7"], "connected_slaves")) + 1
        cli(lab8, "ACL", "SETUSER", "sentinel", "+slaveof")
        cli(group["lab7"], "SET", "members:claim", "back")
        assert cli(group["lab7"], "WAIT", str(replicas), "60000") == str(replicas)
    finally:
        cli(lab8, "ACL", "SETUSER", "sentinel", "+slaveof")
    assert info(lab8, "role") == "slave" and info(lab8, "master_host") == group["lab7"].address


def test_a_replica_removed_with_stop_is_stopped_and_forgotten(group):
    lab8, lab9 = group["lab8"], group["lab9"]
    lab9_addr = "%s:%d" % (lab9.address, TLS_PORT)
    # lab9 (a primary of its own since its removal, unknown to the Sentinels) joins again ...
    group.site("lab8", "lab9")
    assert info(lab9, "role") == "slave" and info(lab9, "master_link_status") == "up"
    assert "valkeyops-replication" in cli(lab9, "ACL", "USERS").splitlines()
    events = {h.name: Events(h, "+slave") for h in group.lab}
    try:
        # Subscribed first, then looked at: a Sentinel that learned it during the run lists it already.
        for h in group.lab:
            if lab9_addr not in sentinel_replicas(h):
                events[h.name].wait_for(lambda line: line.startswith("slave %s " % lab9_addr), 60)
    finally:
        for e in events.values():
            e.close()
    # ... and leaves again, stopped this time.
    out = group.play("remove_replica", {"valkey_replication_groups": [_group("lab8")], "valkey_remove_group": "main",
                                        "valkey_remove_member": "lab9", "valkey_remove_how": "stop"})
    assert recap(out.stdout, "lab9")["changed"] > 0
    stopped = subprocess.run(lab9.exec_argv(["test", "-S", DATA_SOCKET]), timeout=30)
    assert stopped.returncode != 0, "lab9's instance still has its socket"
    for h in group.lab:
        assert sentinel_replicas(h) == ["%s:%d" % (lab8.address, TLS_PORT)]
        assert cli(h, "SENTINEL", "CKQUORUM", "main", sentinel=True).startswith("OK 3 usable Sentinels"), h.name
    assert info(group["lab7"], "connected_slaves") == "1"
