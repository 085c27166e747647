"""The valkey_sentinel role on lab hosts (issue 15): three Sentinels on lab13-15
watching a primary and two replicas the test starts inside the same hosts;
converge, then a second run changes nothing; the Sentinels find each other,
refuse anonymous clients, and keep their config file as Sentinel's own."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest

from conftest import fixed_lab_hosts, labhosts, recap

ADMIN = "sentinel-admin-password-7f3b1c9e"
PEER = "sentinel-peer-password-2d8a6e41"
# This branch's lab hosts; the shared lab_hosts fixture starts at lab19.
OUR_HOSTS = (13, 14, 15)
DATA_PORT = 6379
SENTINEL_PORT = 26379


@pytest.fixture
def lab3(tmp_path):
    lab = fixed_lab_hosts(OUR_HOSTS, tmp_path / "lab-inventory.ini")
    yield lab
    labhosts.down(list(lab))


def _cli(host, *args: str, user: str = "", password: str = "", port: int = SENTINEL_PORT) -> str:
    argv = ["valkey-cli", "-h", host.address, "-p", str(port), "--no-auth-warning", "--raw"]
    env = dict(os.environ)
    if user:
        argv += ["--user", user]
        env["REDISCLI_AUTH"] = password  # never on argv
    out = subprocess.run(argv + list(args), capture_output=True, text=True, env=env, timeout=30)
    return out.stdout.strip()


def _start_data_node(host, primary=None):
    """A data node inside the lab host (its /var/tmp), ended with the host."""
    argv = ["valkey-server", "--port", str(DATA_PORT), "--bind", host.address, "--daemonize", "yes",
            "--dir", "/var/tmp", "--save", "", "--appendonly", "no", "--logfile", "/var/tmp/valkey.log"]
    if primary is not None:
        argv += ["--replicaof", primary.address, str(DATA_PORT)]
    subprocess.run(host.exec_argv(argv), check=True, timeout=30)
    deadline = time.monotonic() + 30
    while _cli(host, "PING", port=DATA_PORT) != "PONG":
        assert time.monotonic() < deadline, "the data node on %s did not start" % host.name
        time.sleep(0.05)  # the first PONG is the event; this only bounds the wait


class _Subscription:
    """A raw RESP subscription, as the admin user, to Sentinel events."""

    def __init__(self, host, *channels: str):
        self.sock = socket.create_connection((host.address, SENTINEL_PORT), timeout=60)
        self.file = self.sock.makefile("rb")
        self._send("AUTH", "sentinel-admin", ADMIN)
        assert self.file.readline().startswith(b"+OK")
        self._send("SUBSCRIBE", *channels)
        for _ in channels:
            self._read()

    def _send(self, *args: str):
        out = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
        self.sock.sendall(out)

    def _read(self):
        head = self.file.readline()
        assert head.startswith(b"*"), head
        items = []
        for _ in range(int(head[1:])):
            h = self.file.readline()
            if h.startswith(b":"):
                items.append(h[1:].strip().decode())
            else:
                items.append(self.file.read(int(h[1:]) + 2)[:-2].decode())
        return items

    def next(self):
        while True:
            items = self._read()
            if items[0] == "message":
                return items[1], items[2]

    def close(self):
        self.sock.close()


def _play(lab, primary):
    return [{
        "hosts": "lab",
        "become": True,
        "gather_facts": False,
        "vars": {
            "valkey_sentinel_admin_password": ADMIN,
            "valkey_sentinel_peer_password": PEER,
            # The lab hosts share the machine's loopback: without it every Sentinel announces 127.0.0.1.
            "valkey_sentinel_announce_ip": "{{ ansible_host }}",
            "valkey_sentinel_monitors": [{"name": "grp", "primary_host": primary.address, "primary_port": DATA_PORT,
                                          "quorum": 2, "down_after_milliseconds": 5000}],
        },
        "roles": ["valkeyops.secure.valkey_sentinel"],
    }]


def test_three_sentinels_converge_and_a_rerun_changes_nothing(ansible, lab3, tmp_path):
    primary, *replicas = lab3
    _start_data_node(primary)
    for r in replicas:
        _start_data_node(r, primary)

    pb = tmp_path / "sentinel.yml"
    pb.write_text(json.dumps(_play(lab3, primary), indent=1))
    out = ansible.playbook(pb, inventory=str(lab3.inventory), check=False).stdout
    for h in lab3:
        assert recap(out, h.name)["failed"] == 0, out[-3000:]
        assert recap(out, h.name)["changed"] > 0
    assert ADMIN not in out and PEER not in out

    files = {h.name: h.path("/etc/valkey/sentinel/sentinel.conf").read_bytes() for h in lab3}
    # The rerun at -vvvv --diff: nothing changes, and no password shows anywhere.
    run = ansible.playbook(pb, "-vvvv", "--diff", inventory=str(lab3.inventory), check=False)
    out = run.stdout
    for h in lab3:
        assert recap(out, h.name) == {"ok": recap(out, h.name)["ok"], "changed": 0, "unreachable": 0, "failed": 0}, out[-3000:]
    for secret in (ADMIN, PEER):
        assert secret not in run.stdout + run.stderr

    for h in lab3:
        conf = h.path("/etc/valkey/sentinel/sentinel.conf")
        st = conf.stat()
        assert oct(st.st_mode & 0o777) == "0o640"
        text = conf.read_text()
        assert "sentinel monitor grp %s %d 2" % (primary.address, DATA_PORT) in text
        assert "sentinel deny-scripts-reconfig yes" in text
        assert "sentinel sentinel-user sentinel-peer" in text
        assert "\nuser default off " in text
        # Anonymous clients are refused; the admin works.
        assert _cli(h, "SENTINEL", "MASTERS").startswith("NOAUTH")
        assert _cli(h, "PING", user="sentinel-admin", password=ADMIN) == "PONG"
        # Each Sentinel finds the two others (on the event, when it has not yet).
        sub = _Subscription(h, "+sentinel")
        try:
            lines = _cli(h, "SENTINEL", "SENTINELS", "grp", user="sentinel-admin", password=ADMIN).split("\n")
            known = sum(1 for line in lines if line == "runid")
            while known < 2:
                sub.next()
                known += 1
        finally:
            sub.close()
        assert _cli(h, "SENTINEL", "CKQUORUM", "grp", user="sentinel-admin", password=ADMIN).startswith("OK 3 usable"), (
            _cli(h, "SENTINEL", "SENTINELS", "grp", user="sentinel-admin", password=ADMIN), h.path("/var/log/valkey/valkey-sentinel.log").read_text()[-3000:])
    # The second run left each Sentinel's file as Sentinel wrote it, except for
    # Sentinel's own discoveries (known-replica, known-sentinel, epochs).
    for h in lab3:
        own = ("sentinel known-", "sentinel current-epoch", "sentinel config-epoch", "sentinel leader-epoch", "# ")
        before = [line for line in files[h.name].decode().splitlines() if line and not line.startswith(own)]
        after = [line for line in h.path("/etc/valkey/sentinel/sentinel.conf").read_text().splitlines() if line and not line.startswith(own)]
        assert before == after, (h.name, set(before) ^ set(after))
