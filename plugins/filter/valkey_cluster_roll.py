# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rolling a Valkey Cluster (valkey_rolling's cluster gate and move): what one
node says about the cluster, turned into the problems that stop a roll, each
named by its gate. CLUSTER NODES comes from a server, and what it lists comes
from gossip on the bus, so it is parsed strictly and bounded: a line that is
not of the exact shape is a problem of its own, never a guess, and a node the
reader does not list healthy stops the roll (fail closed)."""

from __future__ import annotations

import re

DOCUMENTATION = r"""
name: valkey_cluster_roll
author: valkeyops.secure contributors (@valkeyops)
version_added: 0.2.0
short_description: Gate a rolling restart of a Valkey Cluster on what its nodes say
description:
  - C(valkey_cluster_nodes) parses a C(CLUSTER NODES) reply strictly (bounded; every line of the exact shape the
    server prints) into C(nodes) (by id - C(address), C(flags), C(primary_id), C(config_epoch), C(link_state)) and
    C(malformed) (the numbers of the lines that are not of that shape).
  - C(valkey_cluster_gate_problems) lists what one node of the plan says is wrong, as C({gate, saw}) dicts - its
    C(valkey_info) result (C(loading), C(cluster-state), C(cluster-slots), C(replica-link), C(replica-sync), C(version))
    and its C(CLUSTER NODES) (C(cluster-nodes) - every cluster node of the plan known, not failing, its bus link up,
    and the reader is the node the plan says). Empty when the node sees a healthy cluster.
  - C(valkey_cluster_move_problems) lists what one node's C(CLUSTER NODES) still says against a finished failover
    (the promoted replica a primary, the old primary its replica).
  - C(valkey_cluster_gate_message) turns the first problem into the sentence that stops the roll.
positional: _input
options:
  _input:
    description: A C(valkey_info) or C(ansible.builtin.command) result, or the reply text.
    type: raw
    required: true
"""

EXAMPLES = r"""
problems: "{{ info_result | valkeyops.secure.valkey_cluster_gate_problems(nodes_result, item, valkey_rolling_plan) }}"
"""

RETURN = r"""
_value:
  description: The parsed reply, a list of C({gate, saw}) problems, or a sentence.
  type: raw
"""

# Bounds: a real reply is a few KiB; Valkey caps a cluster far below 1000 nodes in practice.
MAX_REPLY_BYTES = 8 << 20
MAX_NODES = 1000
SLOTS = 16384
UNHEALTHY_FLAGS = ("fail", "fail?", "handshake", "noaddr")

# id address[@bus[,hostname]] flags primary-id ping-sent pong-recv config-epoch link-state [slots...]
NODE_LINE = re.compile(
    r"(?P<id>[0-9a-f]{40}) (?P<address>[0-9A-Za-z.:\[\]%_-]*:[0-9]+@[0-9]+(?:,[0-9A-Za-z._-]*)?) "
    r"(?P<flags>[a-z?]+(?:,[a-z?]+)*) (?P<primary>[0-9a-f]{40}|-) [0-9]+ [0-9]+ (?P<epoch>[0-9]+) "
    r"(?P<link>connected|disconnected)(?: [0-9a-f\[\]<>-]+)*"
)


def valkey_cluster_nodes(text):
    """Parse CLUSTER NODES text: {"nodes": {id: node}, "malformed": [line numbers from 1]}."""
    if not isinstance(text, str) or len(text) > MAX_REPLY_BYTES:
        return {"nodes": {}, "malformed": [0]}
    nodes, malformed = {}, []
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) > MAX_NODES:
        return {"nodes": {}, "malformed": [0]}
    for number, line in enumerate(lines, 1):
        m = NODE_LINE.fullmatch(line.rstrip("\r"))
        if m is None or m["id"] in nodes:
            malformed.append(number)
            continue
        nodes[m["id"]] = {
            "id": m["id"],
            "address": m["address"].split("@")[0],
            "flags": m["flags"].split(","),
            "primary_id": "" if m["primary"] == "-" else m["primary"],
            "config_epoch": int(m["epoch"]),
            "link_state": m["link"],
        }
    return {"nodes": nodes, "malformed": malformed}


def _cluster_plan(plan):
    return [n for n in plan or [] if n.get("topology") == "cluster"]


def _read_failure(result, reader, what):
    """A problem when a task result says the read failed, else None."""
    if result.get("failed") or result.get("rc", 0) != 0:
        said = result.get("msg") or (result.get("stderr") or "").strip().splitlines()[:1] or ["no answer"]
        said = said if isinstance(said, str) else said[0]
        return {"gate": "reachable", "saw": "%s: %s failed: %s" % (reader["label"], what, said)}
    return None


def valkey_cluster_gate_problems(info_result, nodes_result, reader, plan, expect_version=None, rolled=None):
    """Problems one node (reader, a plan node) sees. Either result may be None (not read in this step)."""
    label = reader["label"]
    problems = []
    if info_result is not None:
        failure = _read_failure(info_result, reader, "valkey_info")
        if failure:
            return [failure]
        info = info_result.get("info") or {}
        persistence = info.get("persistence") or {}
        cluster = info.get("cluster") or {}
        replication = info.get("replication") or {}
        if persistence.get("loading", True):
            problems.append({"gate": "loading", "saw": "%s is loading its data (loading:1)" % label})
        if cluster.get("state") != "ok":
            problems.append({"gate": "cluster-state", "saw": "%s says cluster_state:%s" % (label, cluster.get("state", "(none)"))})
        if cluster.get("slots_ok") != SLOTS:
            problems.append({"gate": "cluster-slots", "saw": "%s says cluster_slots_ok:%s, not %d" % (label, cluster.get("slots_ok"), SLOTS)})
        if replication.get("role") == "replica":
            if replication.get("link_status") != "up":
                problems.append({"gate": "replica-link", "saw": "%s: master_link_status is %s" % (label, replication.get("link_status"))})
            elif replication.get("sync_in_progress"):
                problems.append({"gate": "replica-sync", "saw": "%s is still receiving a full copy (master_sync_in_progress:1)" % label})
        if expect_version and label == rolled and info.get("version") != expect_version:
            problems.append({"gate": "version", "saw": "%s runs %s, not %s" % (label, info.get("version"), expect_version)})
    if nodes_result is not None:
        failure = _read_failure(nodes_result, reader, "CLUSTER NODES")
        if failure:
            return problems + [failure]
        view = valkey_cluster_nodes(nodes_result.get("stdout", ""))
        for number in view["malformed"]:
            problems.append({"gate": "cluster-nodes", "saw": "%s sent a CLUSTER NODES line that is not of the expected shape (line %d)" % (label, number)})
        myself = [n for n in view["nodes"].values() if "myself" in n["flags"]]
        if len(myself) != 1 or myself[0]["id"] != reader.get("node_id"):
            problems.append({"gate": "cluster-nodes", "saw": "%s is not node %s (the plan's)" % (label, reader.get("node_id"))})
        for node in _cluster_plan(plan):
            seen = view["nodes"].get(node.get("node_id"))
            if seen is None:
                problems.append({"gate": "cluster-nodes", "saw": "%s does not know %s (%s)" % (label, node["label"], node.get("node_id"))})
                continue
            bad = [f for f in seen["flags"] if f in UNHEALTHY_FLAGS]
            if bad:
                problems.append({"gate": "cluster-nodes", "saw": "%s sees %s as %s" % (label, node["label"], ",".join(seen["flags"]))})
            elif seen["link_state"] != "connected":
                problems.append({"gate": "cluster-nodes", "saw": "%s's bus link to %s is %s" % (label, node["label"], seen["link_state"])})
    return problems


def valkey_cluster_move_problems(nodes_result, reader, primary, replica):
    """What reader's CLUSTER NODES still says against a failover of primary (a plan node) to replica."""
    failure = _read_failure(nodes_result, reader, "CLUSTER NODES")
    if failure:
        return [failure]
    view = valkey_cluster_nodes(nodes_result.get("stdout", ""))
    new, old = view["nodes"].get(replica["node_id"]), view["nodes"].get(primary["node_id"])
    problems = []
    if new is None or "master" not in new["flags"] or any(f in UNHEALTHY_FLAGS for f in new["flags"]):
        problems.append({"gate": "cluster-failover", "saw": "%s sees %s as %s, not a primary" % (
            reader["label"], replica["label"], ",".join(new["flags"]) if new else "unknown")})
    if old is None or "slave" not in old["flags"] or old["primary_id"] != replica["node_id"]:
        problems.append({"gate": "cluster-failover", "saw": "%s sees %s as %s, not a replica of %s" % (
            reader["label"], primary["label"], ",".join(old["flags"]) if old else "unknown", replica["label"])})
    return problems


def valkey_cluster_gate_message(problems, node, phase, plan, timeout, reason="restart", only=None):
    """The sentence that stops the roll: the node, the first problem's gate, what was seen, the nodes not rolled."""
    labels = [n["label"] for n in plan or [] if not only or n["label"] in only]
    start = labels.index(node["label"]) + (0 if phase == "before" else 1) if node["label"] in labels else 0
    first = (problems or [{"gate": "unknown", "saw": "no problem recorded"}])[0]
    waited = "" if timeout is None else " after %s s" % timeout
    return "rolling %s stopped %s %s: gate %s: %s%s; not rolled: %s; nothing else was changed" % (
        reason or "restart", "before" if phase == "before" else "after", node["label"], first["gate"], first["saw"],
        waited, ", ".join(labels[start:]) or "none")


class FilterModule(object):
    def filters(self):
        return {
            "valkey_cluster_nodes": valkey_cluster_nodes,
            "valkey_cluster_gate_problems": valkey_cluster_gate_problems,
            "valkey_cluster_move_problems": valkey_cluster_move_problems,
            "valkey_cluster_gate_message": valkey_cluster_gate_message,
        }
