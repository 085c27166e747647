"""Cluster nodes are valkey_server instances (issue 16): the per-instance cluster
settings are checked before anything changes, one sentence per problem, and a
node converges with cluster-enabled, its bus port, nodes.conf in its data dir and
the cluster-announce-* values from the inventory, on the first start and when an
existing instance becomes a node (cluster-enabled takes effect only at start: a
restart). On lab12, the cluster scenario's third host (never run the two at once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, Lab, labhosts, recap

sys.path.insert(0, str(ROOT / "plugins" / "filter"))
from valkey_instances import valkey_instances  # noqa: E402

ADMIN = "cluster-settings-admin-password-8d41"
OUR_HOST = 12

ROLE = {
    "config_file": "/etc/valkey/valkey.conf", "data_dir": "/var/lib/valkey", "log_dir": "/var/log/valkey",
    "run_dir": "/run/valkey", "acl_dir": "/etc/valkey/acl", "aclfile": "/etc/valkey/acl/users.acl",
    "unixsocket": "/run/valkey/valkey.sock", "unixsocketperm": "0700", "port": 6379, "bind": "127.0.0.22",
    "maxmemory": "256mb", "maxmemory_policy": "noeviction", "maxclients": 1000, "timeout": 300, "tcp_keepalive": 60,
    "extra_settings": {},
}
NODE = {"name": "n1", "port": 0, "tls_port": 7001, "cluster": True, "cluster_port": 17001}

BAD_LISTS = [
    ("no bus port", [{**NODE, "cluster_port": None}],
     "valkey_server_instances[0] (n1): cluster is true but cluster_port is not set; give the cluster bus a port of its own"),
    ("bus port = its TLS port", [{**NODE, "cluster_port": 7001}],
     "instance n1 uses port 7001 for both the cluster bus and TLS; give cluster_port a port of its own"),
    ("bus port = its plain port", [{**NODE, "port": 7000, "cluster_port": 7000}],
     "instance n1 uses port 7000 for both the cluster bus and plain TCP; give cluster_port a port of its own"),
    ("bus port = another instance's port", [NODE, {"name": "n2", "port": 17001}],
     "instances n1 and n2 use the same port 17001; each instance needs its own"),
    ("two nodes, one bus port", [NODE, {**NODE, "name": "n2", "tls_port": 7002}],
     "instances n1 and n2 use the same port 17001; each instance needs its own"),
    ("bus port out of range", [{**NODE, "cluster_port": 70000}],
     "valkey_server_instances[0] (n1): cluster_port must be a TCP port (1 to 65535), got 70000"),
    ("socket only", [{**NODE, "tls_port": None}],
     "valkey_server_instances[0] (n1): a cluster node needs a TCP port for its clients (port or tls_port), not only a unix socket"),
    ("no single address to announce", [{**NODE, "bind": "0.0.0.0"}],
     "valkey_server_instances[0] (n1): cluster_announce_ip must be the node's IP address as its peers reach it, "
     "got '0.0.0.0' (set it, or bind one address)"),
    ("announce a name", [{**NODE, "cluster_announce_ip": "lab12"}],
     "valkey_server_instances[0] (n1): cluster_announce_ip must be the node's IP address as its peers reach it, got 'lab12'"),
    ("cluster keys without cluster", [{"name": "n1", "port": 7000, "cluster_port": 17000}],
     "valkey_server_instances[0] (n1): cluster_port set but cluster is not true; set cluster: true or remove them"),
    ("cluster not a boolean", [{**NODE, "cluster": "sometimes"}],
     "valkey_server_instances[0] (n1): cluster must be true or false, got 'sometimes'"),
]


@pytest.mark.parametrize("case,instances,message", BAD_LISTS, ids=[c[0] for c in BAD_LISTS])
def test_a_bad_cluster_node_is_one_sentence(case, instances, message):
    instances = [{k: v for k, v in i.items() if v is not None} for i in instances]
    assert valkey_instances(instances, ROLE)["problems"] == [message]


def test_a_node_gets_its_settings_from_the_inventory():
    node = valkey_instances([NODE, {**NODE, "name": "n2", "tls_port": 7002, "cluster_port": 17002,
                                    "cluster_announce_ip": "10.0.0.2", "cluster_announce_tls_port": 17002 + 1}], ROLE)
    assert node["problems"] == []
    assert [i["cluster_settings"] for i in node["instances"]] == [
        {"cluster-enabled": True, "cluster-config-file": "/var/lib/valkey/n1/nodes.conf", "cluster-port": 17001,
         "cluster-announce-ip": "127.0.0.22", "cluster-announce-port": 0, "cluster-announce-tls-port": 7001,
         "cluster-announce-bus-port": 17001, "cluster-require-full-coverage": True},
        {"cluster-enabled": True, "cluster-config-file": "/var/lib/valkey/n2/nodes.conf", "cluster-port": 17002,
         "cluster-announce-ip": "10.0.0.2", "cluster-announce-port": 0, "cluster-announce-tls-port": 17003,
         "cluster-announce-bus-port": 17002, "cluster-require-full-coverage": True},
    ]
    # Not a node: no cluster directive at all (a 0.1.0 host converges unchanged).
    assert valkey_instances([], ROLE)["instances"][0]["cluster_settings"] == {}


@pytest.fixture
def lab_host(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("lab hosts need root (mount namespaces, sshd)")
    host = labhosts.Host(OUR_HOST)
    try:
        labhosts.up([host])
    except labhosts.LabError as e:
        pytest.skip("lab%d is not free: %s" % (OUR_HOST, e))
    inventory = tmp_path / "lab-inventory.ini"
    inventory.write_text("[lab]\n" + host.inventory_line() + "\n")
    yield Lab([host], inventory, [labhosts.DEFAULT_USER])
    labhosts.down([host])


def _play(host, instances) -> Path:
    return [{
        "hosts": "lab", "become": True, "gather_facts": False,
        "vars": {"valkey_server_install": False, "valkey_server_bind": host.address, "valkey_server_admin_password": ADMIN,
                 "valkey_server_instances": instances},
        "roles": ["valkeyops.secure.valkey_server"],
    }]


def _write(tmp_path: Path, plays) -> Path:
    path = tmp_path / "play.yml"
    path.write_text(json.dumps(plays, indent=1))
    return path


def _cli(host, port_or_socket, *args) -> str:
    cli = ["env", "REDISCLI_AUTH=" + ADMIN, "valkey-cli", "-s", port_or_socket, "--user", "valkeyops-admin", "--no-auth-warning", *args]
    return subprocess.run(host.exec_argv(cli), capture_output=True, text=True, check=True, timeout=60).stdout


def test_bad_cluster_settings_change_nothing_on_the_host(ansible, lab_host, tmp_path):
    host = lab_host[0]
    before = sorted(p.relative_to(host.path("/etc")).as_posix() for p in host.path("/etc/valkey").rglob("*"))
    for case, instances, message in BAD_LISTS[:2]:
        instances = [{k: v for k, v in i.items() if v is not None} for i in instances]
        out = ansible.playbook(_write(tmp_path, _play(host, instances)), inventory=str(lab_host.inventory), check=False)
        assert out.returncode == 2, case
        assert recap(out.stdout, host.name)["failed"] == 1, case
        assert '"msg": %s' % json.dumps(message + "; nothing was changed") in out.stdout, (case, out.stdout[-2000:])
    assert sorted(p.relative_to(host.path("/etc")).as_posix() for p in host.path("/etc/valkey").rglob("*")) == before
    assert not host.path("/var/lib/valkey/n1").exists()


def test_a_node_starts_as_one_and_an_instance_becomes_one(ansible, lab_host, tmp_path):
    """First start: cluster-enabled from the rendered file, no restart needed, second
    run changed=0. An existing plain instance made a node: valkey_config puts the
    immutable directives in the file and the role restarts it (new run_id)."""
    host = lab_host[0]
    node = {"name": "n1", "port": 7001, "cluster": True, "cluster_port": 17001}
    plain = {"name": "n2", "port": 7002}
    pb = _write(tmp_path, _play(host, [node, plain]))
    out = ansible.playbook(pb, inventory=str(lab_host.inventory))
    assert recap(out.stdout, host.name)["failed"] == 0, out.stdout[-3000:]
    conf = host.path("/etc/valkey/valkey-n1.conf").read_text()
    for line in ("cluster-enabled yes", "cluster-config-file /var/lib/valkey/n1/nodes.conf", "cluster-port 17001",
                 "cluster-announce-ip %s" % host.address, "cluster-announce-port 7001", "cluster-announce-bus-port 17001",
                 "cluster-require-full-coverage yes"):
        assert "\n" + line + "\n" in conf, line
    assert _cli(host, "/run/valkey-n1/valkey.sock", "CLUSTER", "INFO").startswith("cluster_state:fail")
    assert host.path("/var/lib/valkey/n1/nodes.conf").exists()
    assert "ERR This instance has cluster support disabled" in _cli(host, "/run/valkey-n2/valkey.sock", "CLUSTER", "INFO")
    out = ansible.playbook(pb, inventory=str(lab_host.inventory))
    assert recap(out.stdout, host.name)["changed"] == 0

    run_id = _cli(host, "/run/valkey-n2/valkey.sock", "INFO", "server").split("run_id:")[1].split()[0]
    pb = _write(tmp_path, _play(host, [node, {**plain, "cluster": True, "cluster_port": 17002}]))
    out = ansible.playbook(pb, inventory=str(lab_host.inventory))
    assert recap(out.stdout, host.name)["failed"] == 0, out.stdout[-3000:]
    assert _cli(host, "/run/valkey-n2/valkey.sock", "INFO", "server").split("run_id:")[1].split()[0] != run_id
    assert _cli(host, "/run/valkey-n2/valkey.sock", "CONFIG", "GET", "cluster-enabled").split() == ["cluster-enabled", "yes"]
    out = ansible.playbook(pb, inventory=str(lab_host.inventory))
    assert recap(out.stdout, host.name)["changed"] == 0


ROLE_REFUSALS = [
    ("no node", [{"name": "plain", "port": 7001}], [],
     "no instance on the play's hosts has cluster: true (valkey_server_instances)"),
    ("mixed TLS", [{**NODE, "port": 7000}, {"name": "n2", "port": 7002, "cluster": True, "cluster_port": 17002}], [],
     "the cluster nodes must all have a tls_port or none; these have none: lab12 instance n2"),
    ("no replication user", [NODE], [{"name": "app", "passwords": ["app-password-0123456789"]}],
     "lab12 instance n1: the ACL users (valkey_acl_users or the instance's acl_users) must list valkeyops-replication once, "
     "with a password, the same on every node, and the commands +psync +replconf +ping, so that replicas can sync"),
]


def test_the_cluster_role_refuses_before_anything_changes(ansible, lab_host, tmp_path):
    """Each refusal of the valkey_cluster role: its sentence, no password in the output, the
    host's /etc/valkey and processes as they were (the role runs alone: nothing before it)."""
    host = lab_host[0]
    secret = "replication-secret-5b7f0c2e91"
    before = sorted(p.relative_to(host.path("/etc")).as_posix() for p in host.path("/etc/valkey").rglob("*"))
    procs = sorted(host.processes())
    for case, instances, users, message in ROLE_REFUSALS:
        if case == "no replication user":  # another node's user by that name must not leak either
            users = users + [{"name": "valkeyops-replication-other", "passwords": [secret]}]
        play = _play(host, instances)
        play[0]["vars"]["valkey_acl_users"] = users
        play[0]["roles"] = ["valkeyops.secure.valkey_cluster"]
        out = ansible.playbook(_write(tmp_path, play), inventory=str(lab_host.inventory), check=False)
        assert out.returncode == 2, case
        assert recap(out.stdout, host.name)["failed"] == 1, case
        assert '"msg": %s' % json.dumps(message + "; nothing was changed") in out.stdout, (case, out.stdout[-2000:])
        assert secret not in out.stdout + out.stderr, case
    assert sorted(p.relative_to(host.path("/etc")).as_posix() for p in host.path("/etc/valkey").rglob("*")) == before
    assert sorted(host.processes()) == procs
