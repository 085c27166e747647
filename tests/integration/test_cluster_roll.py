"""Rolling a Valkey Cluster (issue 17), without a server: the gate's and the
move's judgement of what a node says (plugins/filter/valkey_cluster_roll.py),
one row per way a cluster can be unhealthy, each with the gate it names and
the sentence that stops the roll. The replies are Valkey 8.0.1's own CLUSTER
NODES text as the molecule `cluster` scenario's nodes print it; the roll
itself runs there (lab10-12) under bench/loadgen."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "filter"))
import valkey_cluster_roll as cr  # noqa: E402

A1, A2 = "566d43316eb739379f79945d4846dff961d24924", "1d4cbea33ef21d3cc730e464c151754aafd9874d"
B1, B2 = "64af75d9c9e35716c9650e1e556d18a7b66eed64", "403d3bd4c11656b04c8c3fd4a587d750c3e9dd36"
C1, C2 = "f5a29ad4be89d292dfca86858a4bec78334e0a62", "871b03451af0609be5a51e112ae72dc47d3d7e40"

# lab12/n1's view (A2): three primaries, each with a replica on another host.
HEALTHY = "\n".join([
    A1 + " 127.0.0.21:7002@17002 master - 0 1795649781050 9 connected 10923-16383",
    B2 + " 127.0.0.20:7001@17001 slave " + B1 + " 0 1795649781151 7 connected",
    B1 + " 127.0.0.22:7002@17002 master - 0 1795649781000 7 connected 0-5461",
    A2 + " 127.0.0.22:7001@17001 myself,slave " + A1 + " 0 0 9 connected",
    C1 + " 127.0.0.20:7002@17002 master - 0 1795649781151 8 connected 5462-10922",
    C2 + " 127.0.0.21:7001@17001 slave " + C1 + " 0 1795649781050 8 connected",
]) + "\n"


def _node(label, node_id, primary=None):
    host, instance = label.split("/")
    return {"label": label, "host": host, "instance": instance, "topology": "cluster", "group": "cluster",
            "node_id": node_id, "role": "replica" if primary else "primary", "primary": primary,
            "unixsocket": "/run/valkey-%s/valkey.sock" % instance, "config_file": "/etc/valkey/valkey-%s.conf" % instance}


PLAN = [_node("lab12/n1", A2, "lab11/n2"), _node("lab10/n1", B2, "lab12/n2"), _node("lab11/n1", C2, "lab10/n2"),
        _node("lab11/n2", A1), _node("lab12/n2", B1), _node("lab10/n2", C1)]
READER = PLAN[0]


INFO = {"loading": "0", "role": "slave", "master_link_status": "up", "master_sync_in_progress": "0",
        "cluster_state": "ok", "cluster_slots_ok": "16384", "cluster_known_nodes": "6"}


def _read(nodes=HEALTHY, rc=0, stderr="", **fields):
    """What valkey-cli prints for INFO replication persistence, CLUSTER INFO and CLUSTER NODES."""
    info = {**INFO, **fields}
    persistence = "# Persistence\r\nloading:%s\r\nasync_loading:0\r\n" % info.pop("loading")
    replication = "# Replication\r\n" + "".join("%s:%s\r\n" % (k, v) for k, v in info.items() if not k.startswith("cluster_"))
    cluster = "".join("%s:%s\r\n" % (k, v) for k, v in info.items() if k.startswith("cluster_"))
    return {"rc": rc, "stdout": persistence + "\n" + replication + cluster + nodes, "stderr": stderr, "item": READER}


def test_a_healthy_cluster_passes_every_gate():
    assert cr.valkey_cluster_gate_problems(_read(), READER, PLAN) == []
    assert cr.valkey_cluster_gate_problems(_read(), None, PLAN) == [], "the reader is the result's loop item"
    parsed = cr.valkey_cluster_nodes(HEALTHY)
    assert parsed["malformed"] == []
    assert parsed["nodes"][A2] == {"id": A2, "address": "127.0.0.22:7001", "flags": ["myself", "slave"], "primary_id": A1,
                                   "config_epoch": 9, "link_state": "connected"}
    # Over the unix socket a TLS-only node lists the plain port, 0.
    assert cr.valkey_cluster_nodes(HEALTHY.replace(":7001@", ":0@"))["nodes"][A2]["address"] == "127.0.0.22:0"


INFO_CASES = [
    ("still loading", {"loading": "1"}, "loaded", "lab12/n1 says loading:1"),
    ("cluster down", {"cluster_state": "fail"}, "cluster-state", "lab12/n1 says cluster_state:fail"),
    ("slots not ok", {"cluster_slots_ok": "10923"}, "cluster-slots", "lab12/n1 says cluster_slots_ok:10923, not 16384"),
    ("replica link down", {"master_link_status": "down"}, "replica-link", "lab12/n1 says master_link_status:down"),
    ("full sync running", {"master_sync_in_progress": "1"}, "replica-sync", "lab12/n1 says master_sync_in_progress:1"),
    ("neither primary nor replica", {"role": "sentinel"}, "answers", "lab12/n1 says role:sentinel"),
]


@pytest.mark.parametrize("case, fields, gate, saw", INFO_CASES, ids=[c[0] for c in INFO_CASES])
def test_what_a_node_says_of_itself_stops_the_roll(case, fields, gate, saw):
    assert cr.valkey_cluster_gate_problems(_read(**fields), READER, PLAN) == [{"gate": gate, "saw": saw}]


def test_a_node_that_does_not_answer_stops_the_roll():
    read = _read(rc=1, stderr="Could not connect to Valkey at /run/valkey-n1/valkey.sock: No such file or directory\n")
    assert cr.valkey_cluster_gate_problems(read, READER, PLAN) == [
        {"gate": "answers", "saw": "lab12/n1 did not answer: Could not connect to Valkey at /run/valkey-n1/valkey.sock: No such file or directory"}]
    # An error reply instead of the nodes (a user without CLUSTER NODES): no node is known, fail closed.
    problems = cr.valkey_cluster_gate_problems(_read(nodes="NOPERM User x has no permissions to run the 'cluster|nodes' command\n"), READER, PLAN)
    assert problems[0] == {"gate": "cluster-nodes", "saw": "lab12/n1 is not node %s (the plan's)" % A2}
    assert len(problems) == 1 + len(PLAN)


def _swap(old, new):
    assert old in HEALTHY
    return HEALTHY.replace(old, new)


NODES_CASES = [
    ("a node failing", _swap(" 127.0.0.20:7002@17002 master ", " 127.0.0.20:7002@17002 master,fail "),
     "lab12/n1 sees lab10/n2 as master,fail"),
    ("a node suspected", _swap(" 127.0.0.21:7001@17001 slave ", " 127.0.0.21:7001@17001 slave,fail? "),
     "lab12/n1 sees lab11/n1 as slave,fail?"),
    ("a node in handshake", _swap(" 127.0.0.20:7001@17001 slave ", " 127.0.0.20:7001@17001 handshake "),
     "lab12/n1 sees lab10/n1 as handshake"),
    ("a bus link down", _swap("0 1795649781050 8 connected", "0 1795649781050 8 disconnected"),
     "lab12/n1's bus link to lab11/n1 is disconnected"),
    ("a node unknown", "\n".join(line for line in HEALTHY.splitlines() if not line.startswith(C2)),
     "lab12/n1 does not know lab11/n1 (%s)" % C2),
    ("another node answers on the socket", _swap("myself,slave", "slave").replace(B1 + " 127.0.0.22:7002@17002 master",
                                                                                   B1 + " 127.0.0.22:7002@17002 myself,master"),
     "lab12/n1 is not node %s (the plan's)" % A2),
    ("a line of another shape", HEALTHY + "not-a-node-line\n",
     "lab12/n1 sent a CLUSTER NODES line that is not of the expected shape (line 7)"),
    ("a line with a command in its address", _swap("127.0.0.20:7002@17002", "127.0.0.20:7002@17002;reboot"),
     "lab12/n1 sent a CLUSTER NODES line that is not of the expected shape (line 5)"),
]


@pytest.mark.parametrize("case, text, saw", NODES_CASES, ids=[c[0] for c in NODES_CASES])
def test_what_a_node_says_of_the_others_stops_the_roll(case, text, saw):
    problems = cr.valkey_cluster_gate_problems(_read(nodes=text), READER, PLAN)
    assert problems[0] == {"gate": "cluster-nodes", "saw": saw}


def test_a_reply_out_of_bounds_fails_closed():
    assert cr.valkey_cluster_nodes("x" * (cr.MAX_REPLY_BYTES + 1)) == {"nodes": {}, "malformed": [0]}
    assert cr.valkey_cluster_nodes(HEALTHY * 200)["malformed"] == [0]


def _nodes(text):
    return {"rc": 0, "stdout": text, "stderr": "", "item": READER}


def test_the_move_waits_until_the_node_says_the_failover_happened():
    primary, replica = PLAN[3], PLAN[0]  # lab11/n2 (A1) hands its slots to lab12/n1 (A2)
    assert cr.valkey_cluster_move_problems(_nodes(HEALTHY), None, primary, replica) == [
        {"gate": "cluster-failover", "saw": "lab12/n1 sees lab12/n1 as myself,slave, not a primary"},
        {"gate": "cluster-failover", "saw": "lab12/n1 sees lab11/n2 as master, not a replica of lab12/n1"}]
    moved = "\n".join([
        A1 + " 127.0.0.21:7002@17002 slave " + A2 + " 0 1795649781050 10 connected",
        A2 + " 127.0.0.22:7001@17001 myself,master - 0 0 10 connected 10923-16383",
    ])
    assert cr.valkey_cluster_move_problems(_nodes(moved), READER, primary, replica) == []
    failed_new = moved.replace("myself,master", "myself,master,fail?")
    assert cr.valkey_cluster_move_problems(_nodes(failed_new), READER, primary, replica)[0]["saw"] == (
        "lab12/n1 sees lab12/n1 as myself,master,fail?, not a primary")
