# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The valkey_server role's instance list: every instance resolved to its
files, socket, service and settings, and every problem in the list as one
sentence, so the role can refuse a bad list before it changes anything."""

from __future__ import annotations

DOCUMENTATION = r"""
name: valkey_instances
author: valkeyops.secure contributors (@valkeyops)
version_added: 0.1.0
short_description: Resolve the valkey_server role's instance list
description:
  - Resolves each entry of C(valkey_server_instances) to its files, socket, service and settings, and lists every
    problem in the list (a name that is not a safe file name, two instances sharing a name, port, socket, data dir,
    config file or aclfile) as one sentence each.
  - The role uses it to refuse a bad list before it changes anything.
positional: _input, role
options:
  _input:
    description: The instance list (C(valkey_server_instances)); empty means the one C(default) instance.
    type: list
    elements: dict
    required: true
  role:
    description: The role's variables without the C(valkey_server_) prefix (C(config_file), C(data_dir), C(run_dir), ...).
    type: dict
    required: true
"""

EXAMPLES = r"""
resolved: "{{ valkey_server_instances | valkeyops.secure.valkey_instances({'config_file': '/etc/valkey/valkey.conf', ...}) }}"
"""

RETURN = r"""
_value:
  description: C(instances), the resolved list, and C(problems), one sentence per problem (empty when the list is good).
  type: dict
"""

import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean

# The 0.1.0 layout (valkey.conf, valkey.sock, service valkey-server) is the
# instance of this name; every other name gets its own files next to those.
DEFAULT_NAME = "default"
# A name becomes part of file names, a directory and a systemd unit instance.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
# Valkey keeps this many descriptors besides its clients (CONFIG_MIN_RESERVED_FDS).
RESERVED_FDS = 32
DEFAULT_TCP_BACKLOG = 511

# Per-instance keys and the role variable each falls back to.
INHERITED = {
    "bind": "bind",
    "maxmemory": "maxmemory",
    "maxmemory_policy": "maxmemory_policy",
    "maxclients": "maxclients",
    "timeout": "timeout",
    "tcp_keepalive": "tcp_keepalive",
    "unixsocketperm": "unixsocketperm",
}
PATHS = ("config_file", "data_dir", "unixsocket", "aclfile")
# A cluster node's keys (issue 16): the bus port and what the node announces
# to its peers and clients; see _cluster below.
CLUSTER_KEYS = ("cluster", "cluster_port", "cluster_announce_ip", "cluster_announce_port", "cluster_announce_tls_port",
                "cluster_announce_bus_port", "cluster_initial_role")
KEYS = set(INHERITED) | set(PATHS) | set(CLUSTER_KEYS) | {
    "name", "state", "port", "tls_port", "extra_settings", "purge_data", "acl_users", "tls"}


def _layout(name, role):
    """The files of instance `name`, from the role's variables (role = the
    valkey_server_* values without the prefix)."""
    if name == DEFAULT_NAME:
        return {
            "service": "valkey-server",
            "config_file": role["config_file"],
            "data_dir": role["data_dir"],
            "run_dir": role["run_dir"],
            "unixsocket": role["unixsocket"],
            "logfile": role["log_dir"].rstrip("/") + "/valkey-server.log",
            "aclfile": role["aclfile"],
        }
    conf_dir = role["config_file"].rsplit("/", 1)[0]
    run_dir = role["run_dir"].rstrip("/") + "-" + name
    return {
        # Debian's template unit valkey-server@.service names these the same way.
        "service": "valkey-server@" + name,
        "config_file": "%s/valkey-%s.conf" % (conf_dir, name),
        "data_dir": role["data_dir"].rstrip("/") + "/" + name,
        "run_dir": run_dir,
        "unixsocket": run_dir + "/valkey.sock",
        "logfile": "%s/valkey-server-%s.log" % (role["log_dir"].rstrip("/"), name),
        "aclfile": "%s/users-%s.acl" % (role["acl_dir"].rstrip("/"), name),
    }


def _int(value, what, problems):
    try:
        return int(to_text(value))
    except (TypeError, ValueError):
        problems.append("%s must be an integer, got %r" % (what, to_text(value)))
        return None


def _cluster(entry, inst, where, problems):
    """A cluster node's settings (the directives valkey_config keeps, rendered
    into the first valkey.conf too: cluster-enabled, cluster-config-file and
    cluster-port are immutable) and the problems of its keys. Empty settings
    for an instance that is not a cluster node."""
    inst.update(cluster=False, cluster_port=None, cluster_initial_role=None, cluster_settings={})
    given = [key for key in CLUSTER_KEYS[1:] if entry.get(key) not in (None, "")]
    try:
        enabled = boolean(entry.get("cluster", False), strict=True)
    except TypeError:
        problems.append("%s: cluster must be true or false, got %r" % (where, to_text(entry["cluster"])))
        return
    inst["cluster"] = enabled
    if not enabled:
        if given:
            problems.append("%s: %s set but cluster is not true; set cluster: true or remove them" % (where, ", ".join(given)))
        return
    if inst["port"] in (None, 0) and inst["tls_port"] is None:
        problems.append("%s: a cluster node needs a TCP port for its clients (port or tls_port), not only a unix socket" % where)
    if entry.get("cluster_port") in (None, ""):
        problems.append("%s: cluster is true but cluster_port is not set; give the cluster bus a port of its own" % where)
        return
    ports = {}
    for key in ("cluster_port", "cluster_announce_port", "cluster_announce_tls_port", "cluster_announce_bus_port"):
        if entry.get(key) not in (None, ""):
            ports[key] = _int(entry[key], where + ": " + key, problems)
            if ports[key] is not None and not 1 <= ports[key] <= 65535:
                problems.append("%s: %s must be a TCP port (1 to 65535), got %s" % (where, key, ports[key]))
    # The address the node gives its peers and clients: the inventory's, else
    # the instance's one bind address. A wildcard or several addresses would
    # leave Valkey to guess from the bus connection, which NAT or a second
    # interface gets wrong.
    announce = to_text(entry.get("cluster_announce_ip") or "")
    if not announce:
        binds = [b.lstrip("-") for b in to_text(inst["bind"]).split()]
        announce = binds[0] if len(binds) == 1 else ""
    try:
        addr = ipaddress.ip_address(announce)
        if addr.is_unspecified:
            raise ValueError(announce)
    except ValueError:
        problems.append("%s: cluster_announce_ip must be the node's IP address as its peers reach it, got %r%s"
                        % (where, announce, "" if entry.get("cluster_announce_ip") else " (set it, or bind one address)"))
    role = to_text(entry.get("cluster_initial_role") or "")
    if role not in ("", "primary", "replica"):
        problems.append("%s: cluster_initial_role must be primary or replica, got %r" % (where, role))
    inst["cluster_port"] = ports["cluster_port"]
    inst["cluster_initial_role"] = role or None
    inst["cluster_announce_ip"] = announce
    inst["cluster_settings"] = {
        "cluster-enabled": True,
        # In the instance's own data dir, which only the server's user can write.
        "cluster-config-file": inst["data_dir"].rstrip("/") + "/nodes.conf",
        "cluster-port": ports["cluster_port"],
        "cluster-announce-ip": announce,
        "cluster-announce-port": ports.get("cluster_announce_port") or inst["port"] or 0,
        "cluster-announce-tls-port": ports.get("cluster_announce_tls_port") or inst["tls_port"] or 0,
        "cluster-announce-bus-port": ports.get("cluster_announce_bus_port") or ports["cluster_port"],
        # The server's default, written down as the choice (VK-045): a lost
        # shard stops the cluster rather than serve a part of the keys.
        # extra_settings can choose no.
        "cluster-require-full-coverage": True,
    }


def valkey_instances(instances, role):
    """Resolve valkey_server_instances. `role` holds the role's variables
    without the valkey_server_ prefix (config_file, data_dir, run_dir,
    log_dir, acl_dir, aclfile, unixsocket, port, bind, maxmemory, ...).

    Returns {"instances": [...], "problems": [...]}; the instances are
    complete only when problems is empty."""
    if not isinstance(role, dict):
        raise AnsibleFilterError("valkey_instances: the role's variables must be a dict")
    if instances is None or instances == []:
        instances = [{"name": DEFAULT_NAME}]
    problems = []
    if not isinstance(instances, list):
        return {"instances": [], "problems": ["valkey_server_instances must be a list of instances (each a dict with a name)"]}
    resolved = []
    for i, entry in enumerate(instances):
        where = "valkey_server_instances[%d]" % i
        if not isinstance(entry, dict):
            problems.append("%s must be a dict with a name, got %r" % (where, to_text(entry)))
            continue
        name = to_text(entry.get("name", ""))
        if not NAME_RE.match(name):
            problems.append(
                "%s: name %r is not a safe file name: use 1 to 32 lowercase letters, digits, '-' or '_', "
                "starting with a letter or digit" % (where, name)
            )
            continue
        where = "valkey_server_instances[%d] (%s)" % (i, name)
        if name in [r["name"] for r in resolved]:
            problems.append("%s: the name %s is used twice; each instance needs a name of its own" % (where, name))
            continue
        unknown = sorted(set(entry) - KEYS)
        if unknown:
            problems.append("%s: unknown key(s) %s; expected some of %s" % (where, ", ".join(unknown), ", ".join(sorted(KEYS))))
        state = to_text(entry.get("state", "present"))
        if state not in ("present", "absent"):
            problems.append("%s: state must be present or absent, got %r" % (where, state))
        inst = _layout(name, role)
        for key in PATHS:
            if entry.get(key):
                path = to_text(entry[key])
                if not path.startswith("/") or "/../" in path + "/" or "\n" in path:
                    problems.append("%s: %s must be an absolute path without '..', got %r" % (where, key, path))
                inst[key] = path
        inst.update(name=name, state=state, default=name == DEFAULT_NAME)
        inst["pidfile"] = inst["run_dir"] + "/valkey-server.pid"
        if "port" in entry:
            inst["port"] = _int(entry["port"], where + ": port", problems)
        elif name == DEFAULT_NAME:
            inst["port"] = _int(role["port"], "valkey_server_port", problems)
        else:
            inst["port"] = None
            if state == "present":
                problems.append("%s: port is required for an instance other than %r (0 for none: TLS or socket only)" % (where, DEFAULT_NAME))
        inst["tls_port"] = _int(entry["tls_port"], where + ": tls_port", problems) if entry.get("tls_port") not in (None, "") else None
        for port_key in ("port", "tls_port"):
            port = inst[port_key]
            if port is not None and not 0 <= port <= 65535 or port_key == "tls_port" and port == 0:
                problems.append("%s: %s must be a TCP port (1 to 65535%s), got %s" % (where, port_key, ", or 0 for none" if port_key == "port" else "", port))
        for key, var in INHERITED.items():
            inst[key] = entry[key] if key in entry else role[var]
        inst["maxclients"] = _int(inst["maxclients"], where + ": maxclients", problems)
        extra = entry.get("extra_settings", role.get("extra_settings") or {})
        if not isinstance(extra, dict):
            problems.append("%s: extra_settings must be a dict of directives" % where)
            extra = {}
        inst["extra_settings"] = extra
        inst["tcp_backlog"] = _int(extra.get("tcp-backlog", DEFAULT_TCP_BACKLOG), where + ": tcp-backlog", problems)
        inst["nofile"] = (inst["maxclients"] or 0) + RESERVED_FDS
        inst["purge_data"] = bool(entry.get("purge_data", False))
        inst["acl_users"] = entry.get("acl_users")
        inst["tls"] = entry.get("tls") or {}
        if not isinstance(inst["tls"], dict):
            problems.append("%s: tls must be a dict of valkey_tls_* settings without the prefix" % where)
            inst["tls"] = {}
        _cluster(entry, inst, where, problems)
        resolved.append(inst)

    # What two instances must never share; an absent instance still owns its
    # files and data until they are removed, so it counts.
    for what, key in (("config file", "config_file"), ("unix socket", "unixsocket"),
                      ("data dir", "data_dir"), ("aclfile", "aclfile"), ("runtime dir", "run_dir")):
        seen = {}
        for inst in resolved:
            if inst[key] in seen:
                problems.append("instances %s and %s have the same %s %s; each instance needs its own"
                                % (seen[inst[key]], inst["name"], what, inst[key]))
            else:
                seen[inst[key]] = inst["name"]
    ports = {}
    for inst in resolved:
        if inst["state"] != "present":
            continue
        for port in {inst["port"], inst["tls_port"], inst["cluster_port"]} - {None, 0}:
            if port in ports and ports[port] != inst["name"]:
                problems.append("instances %s and %s use the same port %s; each instance needs its own" % (ports[port], inst["name"], port))
            ports.setdefault(port, inst["name"])
        if inst["port"] is not None and inst["port"] == inst["tls_port"]:
            problems.append("instance %s uses port %s for both plain TCP and TLS; give tls_port a port of its own" % (inst["name"], inst["port"]))
        for key, what in (("port", "plain TCP"), ("tls_port", "TLS")):
            if inst["cluster_port"] is not None and inst["cluster_port"] == inst[key]:
                problems.append("instance %s uses port %s for both the cluster bus and %s; give cluster_port a port of its own"
                                % (inst["name"], inst["cluster_port"], what))
    return {"instances": resolved, "problems": problems}


class FilterModule(object):
    def filters(self):
        return {"valkey_instances": valkey_instances}
