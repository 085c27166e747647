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
version_added: 0.3.0
short_description: Gate a rolling restart of a Valkey Cluster on what its nodes say
description:
  - C(valkey_cluster_nodes) parses a C(CLUSTER NODES) reply strictly (bounded; every line of the exact shape the
    server prints) into C(nodes) (by id - C(address), C(flags), C(primary_id), C(config_epoch), C(link_state)) and
    C(malformed) (the numbers of the lines that are not of that shape).
  - C(valkey_cluster_reading) splits what one C(valkey-cli) run of C(INFO replication persistence), C(CLUSTER INFO) and
    C(CLUSTER NODES) printed (a command task's result) into C(info) (the fields) and C(nodes) (the C(CLUSTER NODES) text),
    or C(error) when the node did not answer.
  - C(valkey_cluster_gate_problems) lists what one node of the plan says is wrong, as C({gate, saw}) dicts - C(loaded),
    C(cluster-state), C(cluster-slots), C(replica-link), C(replica-sync), and C(cluster-nodes) (every cluster node of the
    plan known, not failing, its bus link up, and the reader is the node the plan says). Empty when the node sees a healthy
    cluster.
  - C(valkey_cluster_move_problems) lists what one node's C(CLUSTER NODES) still says against a finished failover
    (the promoted replica a primary, the old primary its replica).
positional: _input
options:
  _input:
    description: A C(ansible.builtin.command) result of C(valkey-cli), or the C(CLUSTER NODES) text.
    type: raw
    required: true
"""

EXAMPLES = r"""
problems: "{{ read | valkeyops.secure.valkey_cluster_gate_problems(item, valkey_rolling_plan) }}"
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


NODE_ID = re.compile(r"[0-9a-f]{40} ")


def valkey_cluster_reading(result):
    """What one valkey-cli run said (a command task's result): the INFO and
    CLUSTER INFO fields before the first CLUSTER NODES line, and the CLUSTER
    NODES text from there on. {"error": sentence or "", "info": {...}, "nodes": text}."""
    out = result.get("stdout") or ""
    if result.get("rc", 0) != 0 or len(out) > MAX_REPLY_BYTES:
        said = ((result.get("stderr") or "").strip().splitlines() or ["no answer"])[0]
        return {"error": said, "info": {}, "nodes": ""}
    lines = out.replace("\r", "").split("\n")
    first = next((i for i, line in enumerate(lines) if NODE_ID.match(line)), len(lines))
    info = {}
    for line in lines[:first]:
        key, sep, value = line.strip().partition(":")
        if sep and not key.startswith("#"):
            info[key] = value
    return {"error": "", "info": info, "nodes": "\n".join(lines[first:])}


def valkey_cluster_gate_problems(result, reader, plan):
    """Problems one cluster node of the plan (reader) sees, from one valkey-cli
    run of INFO replication persistence, CLUSTER INFO and CLUSTER NODES.
    reader none: the result's own loop item."""
    reader = reader or result.get("item") or {}
    label = reader.get("label", "(unknown)")
    reading = valkey_cluster_reading(result)
    if reading["error"]:
        return [{"gate": "answers", "saw": "%s did not answer: %s" % (label, reading["error"])}]
    info = reading["info"]
    problems = []
    if info.get("loading") != "0":
        problems.append({"gate": "loaded", "saw": "%s says loading:%s" % (label, info.get("loading", "(missing)"))})
    if info.get("cluster_state") != "ok":
        problems.append({"gate": "cluster-state", "saw": "%s says cluster_state:%s" % (label, info.get("cluster_state", "(missing)"))})
    if info.get("cluster_slots_ok") != str(SLOTS):
        problems.append({"gate": "cluster-slots", "saw": "%s says cluster_slots_ok:%s, not %d" % (label, info.get("cluster_slots_ok", "(missing)"), SLOTS)})
    if info.get("role") == "slave":
        if info.get("master_link_status") != "up":
            problems.append({"gate": "replica-link", "saw": "%s says master_link_status:%s" % (label, info.get("master_link_status", "(missing)"))})
        elif info.get("master_sync_in_progress") != "0":
            problems.append({"gate": "replica-sync", "saw": "%s says master_sync_in_progress:%s" % (label, info.get("master_sync_in_progress", "(missing)"))})
    elif info.get("role") != "master":
        problems.append({"gate": "answers", "saw": "%s says role:%s" % (label, info.get("role", "(missing)"))})
    view = valkey_cluster_nodes(reading["nodes"])
    for number in view["malformed"]:
        problems.append({"gate": "cluster-nodes", "saw": "%s sent a CLUSTER NODES line that is not of the expected shape (line %d)" % (label, number)})
    myself = [n for n in view["nodes"].values() if "myself" in n["flags"]]
    if len(myself) != 1 or myself[0]["id"] != reader.get("node_id"):
        problems.append({"gate": "cluster-nodes", "saw": "%s is not node %s (the plan's)" % (label, reader.get("node_id"))})
    for node in _cluster_plan(plan):
        seen = view["nodes"].get(node.get("node_id"))
        if seen is None:
            problems.append({"gate": "cluster-nodes", "saw": "%s does not know %s (%s)" % (label, node["label"], node.get("node_id"))})
        elif any(f in UNHEALTHY_FLAGS for f in seen["flags"]):
            problems.append({"gate": "cluster-nodes", "saw": "%s sees %s as %s" % (label, node["label"], ",".join(seen["flags"]))})
        elif seen["link_state"] != "connected":
            problems.append({"gate": "cluster-nodes", "saw": "%s's bus link to %s is %s" % (label, node["label"], seen["link_state"])})
    return problems


def valkey_cluster_move_problems(result, reader, primary, replica):
    """What reader's CLUSTER NODES (one valkey-cli run) still says against a
    failover of primary (a plan node) to replica. reader none: the result's own loop item."""
    reader = reader or result.get("item") or {"label": "(unknown)"}
    reading = valkey_cluster_reading(result)
    if reading["error"]:
        return [{"gate": "cluster-failover", "saw": "%s did not answer: %s" % (reader["label"], reading["error"])}]
    view = valkey_cluster_nodes(reading["nodes"])
    new, old = view["nodes"].get(replica["node_id"]), view["nodes"].get(primary["node_id"])
    problems = []
    if new is None or "master" not in new["flags"] or any(f in UNHEALTHY_FLAGS for f in new["flags"]):
        problems.append({"gate": "cluster-failover", "saw": "%s sees %s as %s, not a primary" % (
            reader["label"], replica["label"], ",".join(new["flags"]) if new else "unknown")})
    if old is None or "slave" not in old["flags"] or old["primary_id"] != replica["node_id"]:
        problems.append({"gate": "cluster-failover", "saw": "%s sees %s as %s, not a replica of %s" % (
            reader["label"], primary["label"], ",".join(old["flags"]) if old else "unknown", replica["label"])})
    return problems


class FilterModule(object):
    def filters(self):
        return {
            "valkey_cluster_nodes": valkey_cluster_nodes,
            "valkey_cluster_gate_problems": valkey_cluster_gate_problems,
            "valkey_cluster_move_problems": valkey_cluster_move_problems,
            "valkey_cluster_reading": valkey_cluster_reading,
        }
