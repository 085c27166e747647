"""valkey_cluster through ansible-playbook, from the installed Galaxy tarball,
against three real cluster-enabled servers behind a password: check mode
plans and changes nothing, the run creates the cluster, the rerun reports
changed=0, a bad layout is refused in one sentence, and the password is in
no output at -vvvv --diff. (Grow, shrink, failover and TLS: the Go tests of
modules/cluster; the role and playbook: the molecule cluster scenario.)"""

from __future__ import annotations

import json

from conftest import free_port, recap

PASSWORD = "cluster-requirepass-Pw-51e0aa"


def nodes_of(servers):
    return [{"host": "127.0.0.1", "port": s.port} for s in servers]


def play(task, out):
    return json.dumps(
        [
            {
                "hosts": "localhost",
                "gather_facts": False,
                "tasks": [
                    {"name": "Cluster", "valkeyops.secure.valkey_cluster": task, "register": "r", "ignore_errors": True},
                    {"name": "Keep", "ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": str(out)}, "check_mode": False, "diff": False},
                ],
            }
        ]
    )


def cluster_nodes(servers):
    return [s.cli("CLUSTER", "NODES") for s in servers]


def test_cluster_create_check_rerun(ansible, valkey, write_playbook, tmp_path):
    servers = []
    for _ in range(3):
        vk = valkey(f"cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-port {free_port()}\nrequirepass {PASSWORD}\nmasterauth {PASSWORD}\n")
        vk.password = PASSWORD
        servers.append(vk)
    out = tmp_path / "r.json"
    task = {"nodes": nodes_of(servers), "replicas": 0, "login_password": PASSWORD}
    pb = write_playbook(play(task, out))

    bare = cluster_nodes(servers)
    run = ansible.playbook(pb, "-vvvv", "--diff", "--check")
    assert PASSWORD not in run.stdout + run.stderr
    r = json.loads(out.read_text())
    assert r["changed"] is True and not r.get("failed"), r
    assert r["msg"].startswith("would create a cluster of 3 primaries")
    assert r["plan"]["create"] is True and len(r["plan"]["meet"]) == 2
    assert "primary 0-5461 (5462 slots)" in run.stdout  # the diff
    assert cluster_nodes(servers) == bare  # check mode changed nothing

    run = ansible.playbook(pb, "-vvvv", "--diff")
    assert PASSWORD not in run.stdout + run.stderr
    r = json.loads(out.read_text())
    assert r["changed"] is True and r["state"] == "ok", r
    assert sorted(n["slot_count"] for n in r["nodes"]) == [5461, 5461, 5462]
    assert r["uncovered_slots"] == [] and r["failed_nodes"] == []
    for s in servers:
        assert "cluster_state:ok" in s.cli("CLUSTER", "INFO")

    run = ansible.playbook(pb, "-vvvv", "--diff")
    assert recap(run.stdout)["changed"] == 1  # the copy only
    assert json.loads(out.read_text())["changed"] is False

    # Refused in one sentence, nothing changed: a fourth node listed twice.
    formed = cluster_nodes(servers)
    task = dict(task, nodes=nodes_of(servers) + nodes_of(servers[:1]))
    run = ansible.playbook(write_playbook(play(task, out), "dup.yml"), "-vvvv")
    r = json.loads(out.read_text())
    assert r["failed"] is True and r["changed"] is False
    assert r["msg"] == 'option "nodes": nodes[0] and nodes[3] are both 127.0.0.1:%d; expected each node once; nothing was changed' % servers[0].port
    assert PASSWORD not in run.stdout + run.stderr
    strip = [[" ".join(line.split()[:3] + line.split()[8:]) for line in n.splitlines()] for n in formed]
    assert [[" ".join(line.split()[:3] + line.split()[8:]) for line in n.splitlines()] for n in cluster_nodes(servers)] == strip
