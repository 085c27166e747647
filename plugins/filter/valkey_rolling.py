# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rolling operations (role valkey_rolling): the nodes of a host, the plan
(the order the nodes are rolled in, refused when a primary could not hand its
role to a healthy replica), and the gates' judgement of what a node and the
Sentinels report. One place for each decision, so that the role's tasks only
read and act, and the unit tests hold the rules."""

from __future__ import annotations

DOCUMENTATION = r"""
name: valkey_rolling
author: valkeyops.secure contributors (@valkeyops)
version_added: 0.3.0
short_description: Plan a rolling restart and judge its gates
description:
  - C(valkey_rolling_nodes) returns a host's instances as the nodes of a roll (label, socket, address, topology, group).
  - C(valkey_rolling_info) parses the text of INFO into a dict.
  - C(valkey_rolling_plan) orders the nodes of every host (replicas first, a primary after its replicas) and refuses
    a plan that would leave a group without a primary.
  - C(valkey_rolling_gate) and C(valkey_rolling_sentinel_gate) judge one reading of a node or of a Sentinel.
positional: _input
options:
  _input:
    description: The nodes, an INFO text, or a reading, depending on the filter.
    type: raw
    required: true
"""

EXAMPLES = r"""
plan: "{{ states | valkeyops.secure.valkey_rolling_plan(valkey_rolling_only) }}"
"""

RETURN = r"""
_value:
  description: Nodes, a dict of INFO fields, a plan with a problem sentence, or a judgement (ok, gate, saw).
  type: raw
"""

import json

from ansible.module_utils.common.text.converters import to_text

DEFAULT_INSTANCE = "default"
# The INFO sections a gate reads (one command: INFO takes several sections).
INFO_SECTIONS = "INFO replication server persistence"


def _label(host, instance):
    return host if instance == DEFAULT_INSTANCE else "%s/%s" % (host, instance)


def valkey_rolling_nodes(instances, members, host, opts=None):
    """This host's present instances as nodes: label, host, instance,
    unixsocket, config_file, address, port, topology, group, sentinels.
    `members` are the host's resolved replication members
    (valkey_replication_resolve); `opts`: tls_enabled, tls_port (the
    default instance's TLS port when TLS is on)."""
    opts = opts or {}
    by_instance = dict((m["instance"], m) for m in members or [])
    out = []
    for inst in instances or []:
        if inst.get("state", "present") != "present":
            continue
        node = {"label": _label(host, inst["name"]), "host": host, "instance": inst["name"],
                "unixsocket": inst["unixsocket"], "config_file": inst["config_file"], "sentinels": [], "node_id": None}
        member = by_instance.get(inst["name"])
        if member is not None:
            node.update(topology="replication", group=member["group"], address=member["address"], port=int(member["port"]),
                        sentinels=list(member.get("sentinels") or []))
        else:
            tls_port = inst.get("tls_port")
            if not tls_port and inst.get("default") and opts.get("tls_enabled"):
                tls_port = opts.get("tls_port")
            words = [w.lstrip("-") for w in to_text(inst.get("bind") or "").split()]
            address = inst.get("cluster_announce_ip") if inst.get("cluster") else ""
            node.update(topology="cluster" if inst.get("cluster") else "standalone",
                        group="cluster" if inst.get("cluster") else None,
                        address=address or (words[0] if words else "127.0.0.1"),
                        port=int(inst.get("port") or tls_port or 0))
        out.append(node)
    return out


def valkey_rolling_info(text):
    """INFO's text as {field: value} (strings); section headers skipped."""
    fields = {}
    for line in to_text(text).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields[key] = value
    return fields


def _replicas(info):
    """The replicas a primary's INFO lists: [{ip, port, state, offset}]."""
    out = []
    for key, value in info.items():
        if key.startswith("slave") and key[5:].isdigit():
            r = dict(kv.partition("=")[::2] for kv in value.split(","))
            out.append({"ip": r.get("ip", ""), "port": int(r.get("port") or 0), "state": r.get("state", ""),
                        "offset": int(r.get("offset") or 0)})
    return out


def valkey_rolling_plan(states, only=None):
    """The order of the roll. `states`: every node of the play (from
    valkey_rolling_nodes) with `info` (valkey_rolling_info of INFO
    replication, server, persistence). `only`: the labels to roll (empty or
    none: every node).

    Standalone nodes first, then each group's replicas, then its primary: a
    primary is rolled after the replicas one of which takes its role. Refused
    (problem set, plan empty): an unknown label in `only`; a primary to roll
    with no replica in the play whose link to it is up; a group with more
    than one primary."""
    states = [s for s in states or [] if s]
    labels = [s["label"] for s in states]
    only = [to_text(x) for x in (only or [])]
    unknown = [x for x in only if x not in labels]
    if unknown:
        return {"plan": [], "problem": "valkey_rolling_only names %s, not an instance of this play (known: %s); nothing was changed"
                % (", ".join(unknown), ", ".join(sorted(labels)))}
    by_addr = dict(((s["address"], int(s["port"])), s) for s in states)
    nodes = []
    for s in states:
        info = s.get("info") or {}
        node = dict((k, v) for k, v in s.items() if k != "info")
        node["run_id"] = info.get("run_id", "")
        if info.get("role") == "slave":
            primary = by_addr.get((to_text(info.get("master_host")), int(info.get("master_port") or 0)))
            node.update(role="replica", primary=primary["label"] if primary else "%s:%s" % (info.get("master_host"), info.get("master_port")),
                        link=info.get("master_link_status") == "up")
        else:
            node.update(role="primary", primary=None, link=False)
        nodes.append(node)
    problems = []
    groups = {}
    for n in nodes:
        if n["topology"] != "standalone":
            groups.setdefault(n["group"], []).append(n)
    for name, members in sorted(groups.items()):
        primaries = [n for n in members if n["role"] == "primary"]
        if members[0]["topology"] == "replication" and len(primaries) > 1:
            problems.append("replication group %s has %d primaries (%s); move it to one primary with playbooks/switchover.yml"
                            % (name, len(primaries), ", ".join(sorted(p["label"] for p in primaries))))
            continue
        for p in primaries:
            if only and p["label"] not in only:
                continue
            healthy = [n["label"] for n in members if n["primary"] == p["label"] and n["link"]]
            if not healthy:
                problems.append("%s is the primary of %s %s and has no replica in this play with its link up to take its role; "
                                "rolling it would stop the writes" % (p["label"], "replication group" if p["topology"] == "replication"
                                                                      else "the", name))
    if problems:
        return {"plan": [], "problem": "; ".join(problems) + "; nothing was changed"}
    chosen = [n for n in nodes if not only or n["label"] in only]

    def order(n):
        if n["topology"] == "standalone":
            return (0, "", n["label"])
        return (1 if n["role"] == "replica" else 2, n["group"], n["label"])
    return {"plan": sorted(chosen, key=order), "problem": ""}


def _judge(ok, gate, saw):
    return {"ok": bool(ok), "gate": gate, "saw": saw}


def valkey_rolling_gate(info, node, phase, expect_version=""):
    """One reading of the node's INFO (`info`, a dict) against the gate of
    `phase` (before | after). Returns {ok, gate, saw}: the first gate not
    passed and what it saw, or ok with the last gate."""
    if not info:
        return _judge(False, "answers", "the node did not answer INFO")
    if info.get("loading") != "0":
        return _judge(False, "loaded", "loading is %s" % info.get("loading", "(missing)"))
    if phase == "after" and expect_version and info.get("valkey_version") != expect_version:
        return _judge(False, "version", "valkey_version is %s, expected %s" % (info.get("valkey_version"), expect_version))
    if phase == "after" and node.get("run_id") and info.get("run_id") == node["run_id"]:
        return _judge(False, "restarted", "run_id is still %s" % node["run_id"])
    if node.get("topology") == "standalone":
        return _judge(True, "loaded", "")
    if info.get("role") == "slave":
        if info.get("master_link_status") != "up":
            return _judge(False, "replica-link", "master_link_status is %s" % info.get("master_link_status", "(missing)"))
        if info.get("master_sync_in_progress") != "0":
            return _judge(False, "replica-sync", "master_sync_in_progress is %s" % info.get("master_sync_in_progress", "(missing)"))
        return _judge(True, "replica-sync", "")
    if info.get("role") == "master":
        behind = [r for r in _replicas(info) if r["state"] != "online"]
        if behind:
            return _judge(False, "primary-replicas", "replica %s:%s is %s" % (behind[0]["ip"], behind[0]["port"], behind[0]["state"]))
        return _judge(True, "primary-replicas", "")
    return _judge(False, "answers", "role is %s" % info.get("role", "(missing)"))


def valkey_rolling_caught_up(info):
    """A primary's INFO: {ok, offset, behind}: every replica's acknowledged
    offset equals master_repl_offset (writes paused, nothing left in flight)."""
    offset = int(info.get("master_repl_offset") or 0)
    replicas = _replicas(info)
    behind = ["%s:%d at %d" % (r["ip"], r["port"], r["offset"]) for r in replicas if r["offset"] != offset or r["state"] != "online"]
    return {"ok": bool(replicas) and not behind, "offset": offset, "behind": behind}


def _sentinel_replies(text):
    """valkey-cli --json prints one JSON document a line."""
    out = []
    for line in to_text(text).splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append(line)
    return out


def valkey_rolling_sentinel_gate(text, node, primary):
    """One Sentinel's reading: the output of `SENTINEL MASTER <group>` then
    `SENTINEL REPLICAS <group>` (valkey-cli --json). Passed when it names
    `primary` ("address:port") as the group's primary, no failover is in
    progress, and it sees the node as neither s_down nor o_down."""
    replies = _sentinel_replies(text)
    if len(replies) < 2 or not isinstance(replies[0], dict) or not isinstance(replies[1], list):
        return _judge(False, "sentinel-agrees", "the Sentinel answered %s" % (replies[0] if replies else "nothing"))
    master, replicas = replies[0], replies[1]
    seen = "%s:%s" % (master.get("ip"), master.get("port"))
    if seen != primary:
        return _judge(False, "sentinel-agrees", "the Sentinel names %s as the primary, the nodes %s" % (seen, primary))
    flags = to_text(master.get("flags", "")).split(",")
    if "failover_in_progress" in flags or master.get("failover-state", "none") not in ("none", ""):
        return _judge(False, "sentinel-agrees", "a failover is in progress")
    me = "%s:%s" % (node["address"], node["port"])
    if me == primary:
        mine = flags
    else:
        entry = [r for r in replicas if isinstance(r, dict) and "%s:%s" % (r.get("ip"), r.get("port")) == me]
        if not entry:
            return _judge(False, "sentinel-sees-node", "the Sentinel does not list %s (%s) as a replica" % (node["label"], me))
        mine = to_text(entry[0].get("flags", "")).split(",")
    down = [f for f in mine if f in ("s_down", "o_down", "disconnected")]
    if down:
        return _judge(False, "sentinel-sees-node", "the Sentinel flags %s %s" % (node["label"], ",".join(down)))
    return _judge(True, "sentinel-sees-node", "")


def valkey_rolling_sentinel_state(text):
    """A Sentinel's reading: the output of `INFO server`, `SENTINEL MASTERS`,
    then `SENTINEL CKQUORUM <name>` for each monitor (valkey-cli --json).
    Returns {run_id, version, monitors: {name: {primary, others, replicas,
    down, failover}}, quorum: [CKQUORUM replies as text]}, or {} when the
    Sentinel did not answer with those."""
    # valkey-cli --json prints a bulk string (INFO) as it is, over many lines,
    # and every other reply as one JSON document a line.
    info_lines, replies = [], []
    for line in to_text(text).splitlines():
        try:
            replies.append(json.loads(line))
        except ValueError:
            if replies:
                # An error reply after the INFO text: error:"NOQUORUM ..."
                err = line.strip()
                try:
                    replies.append(json.loads(err[len("error:"):]) if err.startswith("error:") else err)
                except ValueError:
                    replies.append(err)
            else:
                info_lines.append(line)
    info = valkey_rolling_info("\n".join(info_lines))
    if "run_id" not in info or not replies or not isinstance(replies[0], list):
        return {}
    monitors = {}
    for m in replies[0]:
        if not isinstance(m, dict) or "name" not in m:
            return {}
        flags = to_text(m.get("flags", "")).split(",")
        monitors[to_text(m["name"])] = {
            "primary": "%s:%s" % (m.get("ip"), m.get("port")),
            "others": int(m.get("num-other-sentinels") or 0),
            "replicas": int(m.get("num-slaves") or 0),
            "down": [f for f in flags if f in ("s_down", "o_down", "disconnected")],
            "failover": "failover_in_progress" in flags or m.get("failover-state", "none") not in ("none", ""),
        }
    return {"run_id": info["run_id"], "version": info.get("valkey_version", ""), "monitors": monitors,
            "quorum": [to_text(r) for r in replies[1:]]}


def valkey_rolling_sentinel_judge(state, before=None, expect_version=""):
    """A Sentinel's state (valkey_rolling_sentinel_state) against its gate:
    before its restart (`before` None) every monitor's primary up, no
    failover in progress and CKQUORUM OK; after it, also a new process
    (another run id), the version expected when given, and every monitor of
    `before` with the same primary, as many other Sentinels and replicas
    as it knew. Returns {ok, gate, saw}."""
    if not state:
        return _judge(False, "sentinel-answers", "the Sentinel did not answer INFO and SENTINEL MASTERS")
    if before:
        if state["run_id"] == before["run_id"]:
            return _judge(False, "sentinel-restarted", "the same process still runs (run id unchanged)")
        if expect_version and state["version"] != expect_version:
            return _judge(False, "sentinel-version", "it runs %s, not %s" % (state["version"] or "an unknown version", expect_version))
    for name, was in sorted((before or {}).get("monitors", {}).items()):
        now = state["monitors"].get(name)
        if now is None:
            return _judge(False, "sentinel-monitors", "it no longer monitors %s" % name)
        if now["primary"] != was["primary"]:
            return _judge(False, "sentinel-monitors", "it names %s as %s's primary, %s before" % (now["primary"], name, was["primary"]))
        if now["others"] < was["others"] or now["replicas"] < was["replicas"]:
            return _judge(False, "sentinel-monitors", "it knows %d other Sentinels and %d replicas of %s, %d and %d before"
                          % (now["others"], now["replicas"], name, was["others"], was["replicas"]))
    for name, now in sorted(state["monitors"].items()):
        if now["failover"]:
            return _judge(False, "sentinel-monitors", "%s: a failover is in progress" % name)
        if now["down"]:
            return _judge(False, "sentinel-monitors", "%s: its primary is flagged %s" % (name, ",".join(now["down"])))
    bad = [q for q in state["quorum"] if not q.startswith("OK")]
    if bad or len(state["quorum"]) < len(state["monitors"]):
        return _judge(False, "sentinel-quorum", bad[0] if bad else "CKQUORUM was not answered for every monitor")
    return _judge(True, "sentinel-quorum", "")


class FilterModule(object):
    def filters(self):
        return {
            "valkey_rolling_nodes": valkey_rolling_nodes,
            "valkey_rolling_info": valkey_rolling_info,
            "valkey_rolling_plan": valkey_rolling_plan,
            "valkey_rolling_gate": valkey_rolling_gate,
            "valkey_rolling_caught_up": valkey_rolling_caught_up,
            "valkey_rolling_sentinel_gate": valkey_rolling_sentinel_gate,
            "valkey_rolling_sentinel_state": valkey_rolling_sentinel_state,
            "valkey_rolling_sentinel_judge": valkey_rolling_sentinel_judge,
        }
