"""Rolling restarts (issue 17), the decisions without Ansible: the plan's
order (replicas first, a primary after the replicas one of which takes its
role) and what it refuses before anything changes, each as one exact
sentence; and the gates' judgement of real servers' INFO (a real primary and
replica started here by pid on free ports) and of a Sentinel's replies. The
roll itself runs in molecule's `replication` scenario (lab4-lab6)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port, set_waited

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "filter"))
import valkey_rolling as vr  # noqa: E402


def _node(host, role, primary=None, group="main", link="up", topology="replication", port=6380, instance="default"):
    address = {"lab4": "127.0.0.14", "lab5": "127.0.0.15", "lab6": "127.0.0.16", "lab7": "127.0.0.17"}[host]
    info = {"role": "master" if role == "primary" else "slave", "run_id": "r-" + host, "loading": "0"}
    if role == "replica":
        paddr = {"lab4": "127.0.0.14", "lab5": "127.0.0.15", "lab6": "127.0.0.16", "lab7": "127.0.0.17"}[primary]
        info.update(master_host=paddr, master_port=str(port), master_link_status=link, master_sync_in_progress="0")
    label = host if instance == "default" else host + "/" + instance
    return {"label": label, "host": host, "instance": instance, "address": address, "port": port, "topology": topology,
            "group": group if topology != "standalone" else None, "unixsocket": "/run/valkey/valkey.sock",
            "config_file": "/etc/valkey/valkey.conf", "sentinels": [], "node_id": None, "info": info}


GROUP = [_node("lab4", "primary"), _node("lab5", "replica", "lab4"), _node("lab6", "replica", "lab4")]

PLANS = [
    ("replicas first, the primary last", GROUP, None, ["lab5", "lab6", "lab4"]),
    ("standalone first, whatever its host", [_node("lab7", "primary", topology="standalone")] + GROUP[::-1], None,
     ["lab7", "lab5", "lab6", "lab4"]),
    ("only the pending ones, in the same order", GROUP, ["lab4", "lab6"], ["lab6", "lab4"]),
    ("a replica alone needs no healthy peer", [_node("lab4", "primary"), _node("lab5", "replica", "lab4", link="down")], ["lab5"], ["lab5"]),
    # After a failover: lab5 leads, lab4 follows it.
    ("the current primary, not the inventory's", [_node("lab4", "replica", "lab5"), _node("lab5", "primary"), _node("lab6", "replica", "lab5")],
     None, ["lab4", "lab6", "lab5"]),
]


@pytest.mark.parametrize("case,states,only,order", PLANS, ids=[p[0] for p in PLANS])
def test_the_plan_rolls_replicas_first_and_a_primary_last(case, states, only, order):
    got = vr.valkey_rolling_plan(states, only)
    assert got["problem"] == ""
    assert [n["label"] for n in got["plan"]] == order
    primary = [n for n in got["plan"] if n["role"] == "primary" and n["topology"] == "replication"]
    assert all(n["run_id"] == "r-" + n["host"] for n in got["plan"])
    assert all(p["primary"] is None for p in primary)


REFUSED = [
    ("a primary without a replica whose link is up",
     [_node("lab4", "primary"), _node("lab5", "replica", "lab4", link="down"), _node("lab6", "replica", "lab4", link="down")], None,
     "lab4 is the primary of replication group main and has no replica in this play with its link up to take its role; "
     "rolling it would stop the writes; nothing was changed"),
    ("a primary whose replicas are not in the play", [_node("lab4", "primary")], None,
     "lab4 is the primary of replication group main and has no replica in this play with its link up to take its role; "
     "rolling it would stop the writes; nothing was changed"),
    ("two primaries", [_node("lab4", "primary"), _node("lab5", "primary"), _node("lab6", "replica", "lab4")], None,
     "replication group main has 2 primaries (lab4, lab5); move it to one primary with playbooks/switchover.yml; nothing was changed"),
    ("an unknown label", GROUP, ["lab9"],
     "valkey_rolling_only names lab9, not an instance of this play (known: lab4, lab5, lab6); nothing was changed"),
]


@pytest.mark.parametrize("case,states,only,problem", REFUSED, ids=[r[0] for r in REFUSED])
def test_an_impossible_plan_is_refused(case, states, only, problem):
    got = vr.valkey_rolling_plan(states, only)
    assert got == {"plan": [], "problem": problem}


SENTINEL_MASTER = {"name": "main", "ip": "127.0.0.14", "port": "6380", "flags": "master"}
SENTINEL_REPLICA = {"name": "127.0.0.15:6380", "ip": "127.0.0.15", "port": "6380", "flags": "slave"}
SENTINEL = [
    ("agrees", SENTINEL_MASTER, [SENTINEL_REPLICA], "127.0.0.14:6380", (True, "sentinel-sees-node", "")),
    ("names another primary", SENTINEL_MASTER, [SENTINEL_REPLICA], "127.0.0.16:6380",
     (False, "sentinel-agrees", "the Sentinel names 127.0.0.14:6380 as the primary, the nodes 127.0.0.16:6380")),
    ("a failover in progress", dict(SENTINEL_MASTER, flags="master,failover_in_progress"), [SENTINEL_REPLICA], "127.0.0.14:6380",
     (False, "sentinel-agrees", "a failover is in progress")),
    ("sees the node down", SENTINEL_MASTER, [dict(SENTINEL_REPLICA, flags="slave,s_down,disconnected")], "127.0.0.14:6380",
     (False, "sentinel-sees-node", "the Sentinel flags lab5 s_down,disconnected")),
    ("does not know the node", SENTINEL_MASTER, [], "127.0.0.14:6380",
     (False, "sentinel-sees-node", "the Sentinel does not list lab5 (127.0.0.15:6380) as a replica")),
]


@pytest.mark.parametrize("case,master,replicas,primary,want", SENTINEL, ids=[s[0] for s in SENTINEL])
def test_the_sentinel_gate(case, master, replicas, primary, want):
    text = json.dumps(master) + "\n" + json.dumps(replicas) + "\n"
    got = vr.valkey_rolling_sentinel_gate(text, _node("lab5", "replica", "lab4"), primary)
    assert (got["ok"], got["gate"], got["saw"]) == want
    # An error reply (a Sentinel that refused the login) is never a pass.
    assert not vr.valkey_rolling_sentinel_gate("NOAUTH Authentication required.\n", _node("lab5", "replica", "lab4"), primary)["ok"]


# The gates on real servers: a primary and its replica, each a valkey-server
# started here (conftest's Valkey: ready when its log says so and its own pid
# holds the port) and ended by its pid.
def _cli(port, *args):
    return subprocess.run(["valkey-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=10).stdout


def _follow(replica, primary):
    """REPLICAOF, then wait for the replica's log to say its first sync finished (the server's
    event; bounded by a guard against a hang): a WAIT right after could time out on a loaded
    machine before the sync is done (CI saw WAIT 1 5000 answer 0)."""
    replica.cli("REPLICAOF", "127.0.0.1", str(primary.port))
    _logged(replica, "REPLICA sync: Finished with success")


def _logged(server, line):
    """Wait until the server's own log has the line (its event), bounded against a hang."""
    deadline = time.monotonic() + 120
    while line not in server.log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "%s never logged %r" % (server.port, line)
        time.sleep(0.05)


@pytest.fixture
def pair(valkey):
    primary, replica = valkey(), valkey()
    _follow(replica, primary)
    return {"primary": (primary.proc, primary.port), "replica": (replica.proc, replica.port)}


def _caught_up(pport):
    """Wait until the gate's filter sees the replica caught up with the primary's offset. A probe
    write is WAITed for first (the server's event: the replica has the data). WAIT itself appends
    REPLCONF GETACK (37 bytes) to the stream, which the replica's answer does not count, so the
    offsets meet at the replica's next acknowledgement (seen 60 ms later here; at the latest its
    periodic one, once a second): polled, bounded by 30 s. (A loop of WAIT-then-check never met
    them: each WAIT appended another GETACK.)"""
    assert set_waited(pport, "rolling:caught-up-probe", "1") == "1"
    deadline = time.monotonic() + 30
    while not vr.valkey_rolling_caught_up(vr.valkey_rolling_info(_cli(pport, "INFO", "replication")))["ok"]:
        assert time.monotonic() < deadline, "timed out waiting for the replica's acknowledged offset"
        time.sleep(0.05)
    return True


def test_the_gates_on_a_real_primary_and_replica(pair):
    _, pport = pair["primary"]
    rproc, rport = pair["replica"]
    node = {"label": "lab5", "topology": "replication", "run_id": ""}
    # A write the replica acknowledged: its link is up (the reply is the event).
    assert set_waited(pport, "k", "v") == "1"
    info = vr.valkey_rolling_info(_cli(rport, "INFO", "replication", "server", "persistence"))
    assert vr.valkey_rolling_gate(info, node, "before") == {"ok": True, "gate": "replica-sync", "saw": ""}
    # The same run_id after a "restart" is no restart.
    assert vr.valkey_rolling_gate(info, dict(node, run_id=info["run_id"]), "after") == {
        "ok": False, "gate": "restarted", "saw": "run_id is still %s" % info["run_id"]}
    assert vr.valkey_rolling_gate(info, node, "after", "99.0.0")["saw"] == "valkey_version is %s, expected 99.0.0" % info["valkey_version"]
    # The primary: every replica online, and caught up (replicas acknowledge once a second).
    pinfo = vr.valkey_rolling_info(_cli(pport, "INFO", "replication", "server", "persistence"))
    assert vr.valkey_rolling_gate(pinfo, node, "before")["ok"]
    _caught_up(pport)
    # The replica loses its primary: the gate names the link.
    _cli(pport, "CLIENT", "KILL", "TYPE", "replica")
    _cli(rport, "REPLICAOF", "127.0.0.1", str(free_port()))
    down = vr.valkey_rolling_info(_cli(rport, "INFO", "replication", "server", "persistence"))
    assert vr.valkey_rolling_gate(down, node, "before") == {"ok": False, "gate": "replica-link", "saw": "master_link_status is down"}
    # A node that does not answer.
    os.kill(rproc.pid, signal.SIGTERM)
    rproc.wait(timeout=10)
    assert vr.valkey_rolling_gate(vr.valkey_rolling_info(_cli(rport, "INFO")), node, "after") == {
        "ok": False, "gate": "answers", "saw": "the node did not answer INFO"}


# The Sentinels' roll (valkey_rolling_sentinels): the state and gate filters on a
# real Sentinel watching a real primary and replica, restarted here by its pid.
def _sentinel_read(port, monitors=("main",)):
    cmds = "INFO server\nSENTINEL MASTERS\n" + "".join("SENTINEL CKQUORUM %s\n" % m for m in monitors)
    return subprocess.run(["valkey-cli", "-p", str(port), "--json"], input=cmds, capture_output=True, text=True, timeout=10).stdout


def test_the_sentinel_restart_gates_on_a_real_sentinel(valkey):
    primary, replica = valkey(), valkey()
    _follow(replica, primary)
    _caught_up(primary.port)
    sentinel = valkey("sentinel monitor main 127.0.0.1 %d 1\n" % primary.port, args=("--sentinel",))
    version = vr.valkey_rolling_info(primary.cli("INFO", "server"))["valkey_version"]

    # Before: the Sentinel has learned the replica from the primary's INFO (its log's +slave line is
    # the event), then the gate passes with the quorum reached.
    _logged(sentinel, "+slave slave 127.0.0.1:%d " % replica.port)
    before = vr.valkey_rolling_sentinel_state(_sentinel_read(sentinel.port))
    assert before["monitors"]["main"] == {"primary": "127.0.0.1:%d" % primary.port, "others": 0, "replicas": 1,
                                          "down": [], "failover": False}
    assert before["version"] == version and before["quorum"][0].startswith("OK 1 usable Sentinels")
    assert vr.valkey_rolling_sentinel_judge(before) == {"ok": True, "gate": "sentinel-quorum", "saw": ""}

    # Not restarted yet: the gate after says so.
    same = vr.valkey_rolling_sentinel_state(_sentinel_read(sentinel.port))
    assert vr.valkey_rolling_sentinel_judge(same, before, version)["saw"] == "the same process still runs (run id unchanged)"

    # Restarted (the process this test started, by its pid): a new process that still knows the replica
    # (sentinel.conf keeps it), on the version expected; another version is refused.
    sentinel.stop()
    sentinel.start()
    after = vr.valkey_rolling_sentinel_state(_sentinel_read(sentinel.port))
    assert vr.valkey_rolling_sentinel_judge(after, before, version) == {"ok": True, "gate": "sentinel-quorum", "saw": ""}
    assert vr.valkey_rolling_sentinel_judge(after, before, "9.9.9") == {
        "ok": False, "gate": "sentinel-version", "saw": "it runs %s, not 9.9.9" % version}

    # What the gates refuse, on that real reading changed as a Sentinel would show it.
    main = after["monitors"]["main"]
    cases = [
        (dict(after, monitors={}), "sentinel-monitors", "it no longer monitors main"),
        (dict(after, monitors={"main": dict(main, primary="127.0.0.9:6379")}), "sentinel-monitors",
         "it names 127.0.0.9:6379 as main's primary, 127.0.0.1:%d before" % primary.port),
        (dict(after, monitors={"main": dict(main, replicas=0)}), "sentinel-monitors",
         "it knows 0 other Sentinels and 0 replicas of main, 0 and 1 before"),
        (dict(after, monitors={"main": dict(main, failover=True)}), "sentinel-monitors", "main: a failover is in progress"),
        (dict(after, monitors={"main": dict(main, down=["s_down"])}), "sentinel-monitors", "main: its primary is flagged s_down"),
        (dict(after, quorum=["NOQUORUM 1 usable Sentinels"]), "sentinel-quorum", "NOQUORUM 1 usable Sentinels"),
        (dict(after, quorum=[]), "sentinel-quorum", "CKQUORUM was not answered for every monitor"),
    ]
    for state, gate, saw in cases:
        assert vr.valkey_rolling_sentinel_judge(state, before, version) == {"ok": False, "gate": gate, "saw": saw}
    # valkey-cli --json prints an error reply as error:"...": CKQUORUM's refusal is what the gate says.
    refused = _sentinel_read(sentinel.port, ("main", "nope"))
    assert vr.valkey_rolling_sentinel_judge(vr.valkey_rolling_sentinel_state(refused)) == {
        "ok": False, "gate": "sentinel-quorum", "saw": "ERR No such master with that name"}
    # An error reply (a Sentinel that refused the login) is never a state.
    assert vr.valkey_rolling_sentinel_state("NOAUTH Authentication required.\n") == {}
    assert vr.valkey_rolling_sentinel_judge({}, before)["gate"] == "sentinel-answers"
