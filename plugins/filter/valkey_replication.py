# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replication groups (valkey_replication_groups): the checks that refuse a bad
declaration before anything changes, each problem one sentence; which
instances of a host belong to which group; and the two ACL users every member
needs (replication, Sentinel), written once here so that valkey_acl,
valkey_audit and the rotation playbook build the same users."""

from __future__ import annotations

DOCUMENTATION = r"""
name: valkey_replication
author: valkeyops.secure contributors (@valkeyops)
version_added: 0.1.0
short_description: Check replication groups and derive each member's part
description:
  - C(valkey_replication_problems) lists every problem of C(valkey_replication_groups) as one sentence (a group with
    two initial primaries or none, a member listed twice, a replica of itself, a quorum larger than the number of
    Sentinels, a member host not in the inventory, an instance in two groups, a replication or Sentinel user also
    listed in C(valkey_acl_users)).
  - C(valkey_replication_memberships) returns the groups a host's instances belong to.
  - C(valkey_replication_acl_entries) returns the least-privilege users a member instance needs (valkey_acl's
    C(users) entries).
positional: _input
options:
  _input:
    description: C(valkey_replication_groups).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
problems: "{{ valkey_replication_groups | valkeyops.secure.valkey_replication_problems(groups['all'], valkey_acl_users) }}"
"""

RETURN = r"""
_value:
  description: A list of sentences (problems), of memberships, or of valkey_acl user entries.
  type: list
"""

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

DEFAULT_INSTANCE = "default"
# A group's name is its Sentinel monitor name too: Sentinel splits its config
# lines on spaces and names its pub/sub events with it.
GROUP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
GROUP_KEYS = {"name", "members", "sentinels", "quorum", "down_after_milliseconds", "failover_timeout", "parallel_syncs"}
MEMBER_KEYS = {"host", "instance", "initial_primary"}

# What a replica needs on its primary, per Valkey's ACL documentation ("ACL
# rules for Sentinel and Replicas"): PSYNC, REPLCONF and PING; no key, no
# channel. SYNC is the protocol before PSYNC, which no 7.x/8.x replica sends.
REPLICATION_COMMANDS = ["+psync", "+replconf", "+ping"]
# What Sentinel needs on every data node, per the same page; no key.
SENTINEL_COMMANDS = ["+multi", "+slaveof", "+ping", "+exec", "+subscribe", "+config|rewrite", "+role", "+publish",
                     "+info", "+client|setname", "+client|kill", "+script|kill"]


def _members(group):
    """The members of a group as {host, instance, initial_primary}; a plain
    string is a host's default instance."""
    out = []
    for m in group.get("members") or []:
        if isinstance(m, dict):
            out.append({"host": to_text(m.get("host", "")), "instance": to_text(m.get("instance") or DEFAULT_INSTANCE),
                        "initial_primary": bool(m.get("initial_primary", False)), "keys": set(m)})
        else:
            out.append({"host": to_text(m), "instance": DEFAULT_INSTANCE, "initial_primary": False, "keys": {"host"}})
    return out


def _label(m):
    return m["host"] if m["instance"] == DEFAULT_INSTANCE else "%s/%s" % (m["host"], m["instance"])


def valkey_replication_problems(groups, inventory_hosts, acl_users=None, replication_user="", sentinel_user=""):
    """Every problem of valkey_replication_groups, one sentence each."""
    if groups in (None, ""):
        return []
    if not isinstance(groups, list):
        return ["valkey_replication_groups must be a list of groups (each a dict with a name and members)"]
    problems = []
    names = set()
    owner = {}
    hosts = set(to_text(h) for h in inventory_hosts or [])
    for i, group in enumerate(groups):
        where = "valkey_replication_groups[%d]" % i
        if not isinstance(group, dict):
            problems.append("%s must be a dict with a name and members" % where)
            continue
        name = to_text(group.get("name", ""))
        if not GROUP_RE.match(name):
            problems.append("%s: name %r is not a name Sentinel can monitor: use 1 to 64 letters, digits, '.', '-' or '_', "
                            "starting with a letter or digit" % (where, name))
            continue
        where = "replication group %s" % name
        if name in names:
            problems.append("%s is declared twice; each group needs a name of its own" % where)
            continue
        names.add(name)
        unknown = sorted(set(group) - GROUP_KEYS)
        if unknown:
            problems.append("%s: unknown key(s) %s; expected some of %s" % (where, ", ".join(unknown), ", ".join(sorted(GROUP_KEYS))))
        members = _members(group)
        if len(members) < 2:
            problems.append("%s needs at least two members (a primary and a replica), got %d" % (where, len(members)))
        seen = set()
        for m in members:
            bad = sorted(m["keys"] - MEMBER_KEYS)
            if bad:
                problems.append("%s: member %s has unknown key(s) %s; expected some of %s"
                                % (where, _label(m), ", ".join(bad), ", ".join(sorted(MEMBER_KEYS))))
            if m["host"] not in hosts:
                problems.append("%s: member host %r is not in the inventory" % (where, m["host"]))
            key = (m["host"], m["instance"])
            if key in seen:
                problems.append("%s lists %s twice: a server cannot be a replica of itself" % (where, _label(m)))
            seen.add(key)
            if key in owner and owner[key] != name:
                problems.append("%s is a member of replication groups %s and %s; an instance replicates one primary"
                                % (_label(m), owner[key], name))
            owner.setdefault(key, name)
        primaries = [_label(m) for m in members if m["initial_primary"]]
        if len(primaries) != 1:
            problems.append("%s has %s; mark exactly one member with initial_primary: true"
                            % (where, "no initial primary" if not primaries else "%d initial primaries (%s)" % (len(primaries), ", ".join(primaries))))
        sentinels = group.get("sentinels") or []
        if not isinstance(sentinels, list):
            problems.append("%s: sentinels must be a list of inventory hosts" % where)
            sentinels = []
        for s in sentinels:
            if to_text(s) not in hosts:
                problems.append("%s: Sentinel host %r is not in the inventory" % (where, to_text(s)))
        if len(set(sentinels)) != len(sentinels):
            problems.append("%s lists a Sentinel host twice" % where)
        if sentinels:
            try:
                quorum = int(to_text(group.get("quorum", len(sentinels) // 2 + 1)))
            except ValueError:
                quorum = None
            if quorum is None or quorum < 1:
                problems.append("%s: quorum must be a positive integer, got %r" % (where, to_text(group.get("quorum"))))
            elif quorum > len(sentinels):
                problems.append("%s: quorum %d is larger than its %d Sentinel(s); no failover could ever be agreed"
                                % (where, quorum, len(sentinels)))
        elif "quorum" in group:
            problems.append("%s sets a quorum but no sentinels" % where)
    listed = set(to_text(u.get("name", "")) for u in acl_users or [] if isinstance(u, dict))
    if names:
        for what, user in (("replication user", replication_user), ("Sentinel user", sentinel_user)):
            if user and to_text(user) in listed:
                problems.append("the %s %s is also listed in valkey_acl_users; it is built with only the rights it needs, "
                                "so remove it from that list" % (what, user))
    return problems


def valkey_replication_memberships(groups, host):
    """[{group, instance, initial_primary, sentinels, members}] for the
    instances of `host` that belong to a group."""
    out = []
    for group in groups or []:
        members = _members(group)
        for m in members:
            if m["host"] == host:
                out.append({"group": group["name"], "instance": m["instance"], "initial_primary": m["initial_primary"],
                            "host": host, "label": _label(m),
                            "sentinels": list(group.get("sentinels") or []),
                            "members": [{"host": x["host"], "instance": x["instance"], "initial_primary": x["initial_primary"]}
                                        for x in members]})
    return out


def valkey_replication_acl_entries(groups, host, instance, creds, names_only=False):
    """The valkey_acl `users` entries a member instance needs: the replication
    user, and the Sentinel user when its group has Sentinels. `creds` holds
    replication_user, replication_passwords, sentinel_user, sentinel_passwords
    (lists: a rotation has two). `names_only`: [{name}] (valkey_audit's
    desired users)."""
    if not isinstance(creds, dict):
        raise AnsibleFilterError("valkey_replication_acl_entries: creds must be a dict")
    mine = [m for m in valkey_replication_memberships(groups, host) if m["instance"] == (instance or DEFAULT_INSTANCE)]
    if not mine:
        return []
    entries = [{"name": creds["replication_user"], "passwords": list(creds["replication_passwords"]),
                "commands": list(REPLICATION_COMMANDS)}]
    if any(m["sentinels"] for m in mine):
        entries.append({"name": creds["sentinel_user"], "passwords": list(creds["sentinel_passwords"]),
                        "channels": ["allchannels"], "commands": list(SENTINEL_COMMANDS)})
    if names_only:
        return [{"name": e["name"]} for e in entries]
    return entries


def valkey_replication_resolve(memberships, instances, host_vars):
    """Join a host's memberships with its resolved instances (valkey_server
    role): where each member listens for its peers (address, port, TLS), its
    socket and config file. `host_vars`: announce_ip, tls_enabled, tls_port,
    allow_plaintext. Returns {"members": [...], "problems": [...]}."""
    by_name = dict((i["name"], i) for i in instances or [] if i.get("state", "present") == "present")
    out, problems = [], []
    for m in memberships or []:
        where = "replication group %s: instance %s of this host" % (m["group"], m["instance"])
        inst = by_name.get(m["instance"])
        if inst is None:
            problems.append("%s is not a present instance in valkey_server_instances" % where)
            continue
        tls_port = inst.get("tls_port")
        if not tls_port and inst.get("default") and host_vars.get("tls_enabled"):
            tls_port = host_vars.get("tls_port")
        port = int(tls_port or inst.get("port") or 0)
        if not port:
            problems.append("%s has no TCP port (port 0 and no tls_port); replicas reach their primary over TCP" % where)
            continue
        if not tls_port and not host_vars.get("allow_plaintext"):
            problems.append("%s has no TLS port: the replication password would cross the network in clear text; "
                            "give it a tls_port (or set valkey_replication_allow_plaintext=true on a trusted network)" % where)
        address = to_text(host_vars.get("announce_ip") or "")
        if not address:
            words = [w.lstrip("-") for w in to_text(inst.get("bind") or "").split()]
            address = words[0] if words else ""
        if address in ("", "*", "0.0.0.0", "::", "::*"):
            problems.append("%s binds every address (%r); set valkey_replication_announce_ip to the address its peers reach"
                            % (where, to_text(inst.get("bind"))))
            continue
        member = dict(m)
        member.update(address=address, port=port, tls=bool(tls_port), unixsocket=inst["unixsocket"], config_file=inst["config_file"])
        out.append(member)
    return {"members": out, "problems": problems}


def _addr(x):
    return "%s:%d" % (x["address"], int(x["port"]))


def valkey_replication_primary(states, member, views=None, before_deploy=False):
    """The current primary of `member`'s group ({group, members}). With the
    group's Sentinels' views (`views`, see valkey_replication_sentinel_views),
    the primary the Sentinels name, cross-checked with the members' INFO
    replication (`states`: one dict per member in the play with group, host,
    instance, address, port, role, master_host, master_port,
    connected_slaves); without, the members' own word. Never the inventory's
    initial primary once the group has formed: a primary with replicas, or
    the live primary the replicas follow, is the one Sentinel or an operator
    chose. `before_deploy`: only the members that run already were read
    (site.yml's pre_tasks), so an initial primary not read may just not run
    yet.

    Returns {"primary": {address, port, label} or None, "why": sentence,
    "problem": sentence or ""}."""
    mine = [s for s in states or [] if s and s.get("group") == member["group"]]
    by_addr = dict(((s["address"], int(s["port"])), s) for s in mine)
    seen = [v for v in views or [] if v and v.get("group") == member["group"] and v.get("primary")]
    if seen:
        return _sentinels_primary(member["group"], mine, by_addr, seen)
    candidates = {}
    for s in mine:
        if s.get("role") == "master" and int(s.get("connected_slaves") or 0) > 0:
            candidates[(s["address"], int(s["port"]))] = s
    replicas = [s for s in mine if s.get("role") == "slave"]
    for s in replicas:
        target = by_addr.get((to_text(s.get("master_host")), int(s.get("master_port") or 0)))
        if target is not None and target.get("role") == "master":
            candidates[(target["address"], int(target["port"]))] = target
    if len(candidates) > 1:
        labels = sorted(_label(c) for c in candidates.values())
        return {"primary": None, "why": "", "problem": "replication group %s has %d primaries (%s); nothing was changed: "
                "move the group to one primary with playbooks/switchover.yml" % (member["group"], len(labels), ", ".join(labels))}
    if candidates:
        c = list(candidates.values())[0]
        return {"primary": {"address": c["address"], "port": int(c["port"]), "label": _label(c)}, "problem": "",
                "why": "the primary its replicas follow"}
    if replicas:
        return {"primary": None, "problem": "", "why": "the replicas follow a primary outside this play; nothing to bootstrap"}
    initial = [m for m in member["members"] if m["initial_primary"]][0]
    s = [x for x in mine if x["host"] == initial["host"] and x["instance"] == initial["instance"]]
    if not s and before_deploy:
        return {"primary": None, "why": "a group that has not formed yet and whose initial primary does not run yet", "problem": ""}
    if not s:
        return {"primary": None, "why": "", "problem": "replication group %s has not formed yet and its initial primary %s is not in "
                "this play; run the play on it too; nothing was changed" % (member["group"], _label(initial))}
    return {"primary": {"address": s[0]["address"], "port": int(s[0]["port"]), "label": _label(s[0])}, "problem": "",
            "why": "the initial primary of a group that has not formed yet"}


def _claims_primary(state, named, known):
    """Whether a member's state says it is a primary other than the one named: a master that
    the Sentinels know as a replica, or one with replicas of its own."""
    addr = (state["address"], int(state["port"]))
    if state.get("role") != "master" or addr == named:
        return False
    return addr in known or int(state.get("connected_slaves") or 0) > 0


def _sentinels_primary(group, mine, by_addr, views):
    """The primary the group's Sentinels name, if they all name the same one
    and no member contradicts them: a member that claims to be a primary
    (one the Sentinels know as a replica, or one with replicas of its own),
    or the named primary saying it is a replica. A member that is a primary
    unknown to the Sentinels, without replicas, has never replicated: it
    joins (bootstrap.yml)."""
    said = {}
    for v in views:
        said.setdefault((to_text(v["primary"]["address"]), int(v["primary"]["port"])), []).append(to_text(v["sentinel"]))
    where = "replication group %s" % group
    if len(said) > 1:
        parts = ["%s say%s %s:%d" % (", ".join(sorted(who)), "s" if len(who) == 1 else "", a, p) for (a, p), who in sorted(said.items())]
        return {"primary": None, "why": "", "problem": "%s: its Sentinels disagree on the primary (%s); nothing was changed: "
                "wait until the failover has finished, then run the play again" % (where, "; ".join(parts))}
    (address, port), who = list(said.items())[0]
    named = by_addr.get((address, port))
    label = _label(named) if named else "%s:%d" % (address, port)
    whom = "its %s (%s) %s the primary is %s" % ("Sentinel" if len(who) == 1 else "Sentinels", ", ".join(sorted(who)),
                                                 "says" if len(who) == 1 else "say", label if not named else "%s (%s:%d)" % (label, address, port))
    if named is not None and named.get("role") != "master":
        return {"primary": None, "why": "", "problem": "%s: %s, but %s says it is a replica of %s:%s; nothing was changed"
                % (where, whom, label, to_text(named.get("master_host")), to_text(named.get("master_port")))}
    known = set((to_text(r["address"]), int(r["port"])) for v in views for r in v.get("replicas") or [])
    claims = sorted(_label(s) for s in mine if _claims_primary(s, (address, port), known))
    if claims:
        return {"primary": None, "why": "", "problem": "%s: %s, but %s say%s %s a primary; nothing was changed: "
                "make %s a replica again (Sentinel does it by itself within seconds) or move the primary with playbooks/switchover.yml"
                % (where, whom, " and ".join(claims), "s" if len(claims) == 1 else "", "it is" if len(claims) == 1 else "they are",
                   "it" if len(claims) == 1 else "them")}
    return {"primary": {"address": address, "port": port, "label": label}, "problem": "", "why": "the primary its Sentinels name"}


# A Sentinel's flags for a peer it cannot count on (SENTINEL REPLICAS/SENTINELS).
UNHEALTHY = {"s_down", "o_down", "disconnected"}


def _flags(entry):
    f = entry.get("flags") or []
    return [to_text(x) for x in (f.split(",") if isinstance(f, str) else f)]


def valkey_replication_sentinel_views(info, host, groups):
    """What the Sentinel on `host` says about each group it watches, from
    valkey_info's `info`: [{group, sentinel, primary: {address, port},
    replicas: [{address, port, flags}], sentinels: [{address, port, flags}]}].
    A Sentinel that does not monitor a group (yet) says nothing about it."""
    monitors = dict((to_text(m.get("name")), m) for m in ((info or {}).get("sentinel") or {}).get("monitors") or [])
    out = []
    for g in groups or []:
        if host not in (g.get("sentinels") or []) or g.get("name") not in monitors:
            continue
        m = monitors[g["name"]]
        out.append({"group": g["name"], "sentinel": host,
                    "primary": {"address": to_text(m["primary"]["host"]), "port": int(m["primary"]["port"])},
                    "replicas": [{"address": to_text(r["host"]), "port": int(r["port"]), "flags": _flags(r)}
                                 for r in m.get("replicas") or []],
                    "sentinels": [{"address": to_text(s["host"]), "port": int(s["port"]), "flags": _flags(s)}
                                  for s in m.get("sentinels") or []]})
    return out


def valkey_replication_decisions(groups, host, states, views=None, before_deploy=False):
    """{group: decision (valkey_replication_primary)} for every group `host`
    takes part in, as a member or as a Sentinel: each host of a group
    reaches the same decision from the same reads, so all stop together."""
    out = {}
    for g in groups or []:
        members = _members(g)
        if host not in (g.get("sentinels") or []) and host not in [m["host"] for m in members]:
            continue
        out[g["name"]] = valkey_replication_primary(states, {"group": g["name"], "members": members}, views, before_deploy)
    return out


def valkey_replication_reset_plan(view, removed):
    """Before `SENTINEL RESET` on one Sentinel (playbooks/remove_replica.yml):
    whether its view of the group (a valkey_replication_sentinel_views entry,
    or None) still lists the removed member (`removed`: {address, port}), and
    what it must know again after the reset: its healthy replicas but the
    removed one, and its healthy Sentinels."""
    if not view:
        return {"reset": False, "replicas": [], "sentinels": []}
    gone = (to_text(removed["address"]), int(removed["port"]))
    listed = [(r["address"], int(r["port"])) for r in view["replicas"]]
    healthy = [r for r in view["replicas"] if not set(r["flags"]) & UNHEALTHY]
    return {"reset": gone in listed,
            "replicas": sorted(_addr(r) for r in healthy if (r["address"], int(r["port"])) != gone),
            "sentinels": sorted(_addr(s) for s in view["sentinels"] if not set(s["flags"]) & UNHEALTHY)}


def valkey_replication_reset_done(view, plan, removed):
    """After `SENTINEL RESET`: the Sentinel has forgotten the removed member
    and learned again every replica and Sentinel of `plan`."""
    if not view:
        return False
    replicas = set(_addr(r) for r in view["replicas"])
    relearned = set(plan["replicas"]) <= replicas and set(plan["sentinels"]) <= set(_addr(s) for s in view["sentinels"])
    return _addr(removed) not in replicas and relearned


def valkey_replication_monitors(groups, host, primaries, auth_user="", auth_pass=""):
    """The valkey_sentinel `monitors` of Sentinel host `host`: one per group it
    watches, named after the group. `primaries` maps a group to its current
    primary ({address, port}): used only to create a monitor (Sentinel follows
    failovers itself); a group without one gets auth only (an existing
    monitor's settings)."""
    out = []
    for g in groups or []:
        if host not in (g.get("sentinels") or []):
            continue
        m = {"name": g["name"]}
        primary = (primaries or {}).get(g["name"])
        if primary:
            m.update(primary_host=primary["address"], primary_port=int(primary["port"]),
                     quorum=int(g.get("quorum", len(g["sentinels"]) // 2 + 1)))
            for key in ("down_after_milliseconds", "failover_timeout", "parallel_syncs"):
                if g.get(key) is not None:
                    m[key] = int(g[key])
        if auth_pass:
            m.update(auth_user=auth_user, auth_pass=auth_pass)
        out.append(m)
    return out


def valkey_replication_labels(groups, name):
    """The members of group `name` as the group lists them: host, or host/instance."""
    return [_label(m) for g in groups or [] if g.get("name") == name for m in _members(g)]


def valkey_replication_state(info):
    """The fields of INFO replication the decision reads, from its text."""
    fields = {}
    for line in to_text(info).splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and key in ("role", "master_host", "master_port", "connected_slaves", "master_link_status"):
            fields[key] = value
    return fields


class FilterModule(object):
    def filters(self):
        return {
            "valkey_replication_problems": valkey_replication_problems,
            "valkey_replication_memberships": valkey_replication_memberships,
            "valkey_replication_acl_entries": valkey_replication_acl_entries,
            "valkey_replication_resolve": valkey_replication_resolve,
            "valkey_replication_primary": valkey_replication_primary,
            "valkey_replication_state": valkey_replication_state,
            "valkey_replication_labels": valkey_replication_labels,
            "valkey_replication_monitors": valkey_replication_monitors,
            "valkey_replication_sentinel_views": valkey_replication_sentinel_views,
            "valkey_replication_decisions": valkey_replication_decisions,
            "valkey_replication_reset_plan": valkey_replication_reset_plan,
            "valkey_replication_reset_done": valkey_replication_reset_done,
        }
