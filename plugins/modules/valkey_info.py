# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Documentation only: the module is the Go binary `valkeyops module valkey_info`,
# run by the action plugin of the same name. The argument spec is derived from
# DOCUMENTATION below, so what ansible-doc shows is exactly what is validated.

from __future__ import absolute_import, division, print_function

# The module boilerplate ansible-test 2.16 requires (even of a doc-only file).
__metaclass__ = type

DOCUMENTATION = r"""
module: valkey_info
short_description: Read a Valkey server's or Sentinel's role, replication state, Sentinel view and cluster health
version_added: 0.2.0
description:
  - Returns what the server says about itself and its place in the topology, in RV(info) - version, run id,
    mode, role, replication (offsets, link status, connected replicas), persistence (loading, background save),
    and on a Sentinel the primaries it monitors with their replicas and the other Sentinels; on a cluster node
    the health from C(CLUSTER INFO).
  - Playbooks use it to decide where to act, for example to find the current primary after a failover
    instead of pointing the inventory's initial primary back.
  - Results use the modern names (V(primary), V(replica)) where the server says C(master) and C(slave).
  - Reads only. It never changes the server, so C(changed) is always false, in check mode too.
  - Every reply is parsed strictly and bounded; a malformed reply fails the task with one sentence that names it.
author:
  - valkeyops.secure contributors (@valkeyops)
extends_documentation_fragment:
  - valkeyops.secure.connection
  - valkeyops.secure.journal
options:
  config_file:
    description:
      - Path of the instance's configuration file, used only to name the instance in RV(info.instance).
      - Defaults to the path the server reports in C(INFO server) (C(config_file)). The file is not read.
    type: path
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs it the same way.
  diff_mode:
    support: none
    description: The module changes nothing, so it has no diff.
  platform:
    support: full
    platforms: posix
    description: Runs on Linux targets (amd64, arm64) as a static Go binary; the target needs a POSIX shell and no Python.
notes:
  - "Minimal rights. On a data node the login user needs the ACL rule C(+info +cluster|info)
    (C(+cluster|info) only matters on a cluster node). On a Sentinel it needs
    C(+info +role +sentinel|primaries +sentinel|replicas +sentinel|sentinels). A user without them gets
    one sentence naming the command it may not run and the rule it needs; a monitoring user needs no
    other right, for example C(ACL SETUSER monitor on >PASSWORD resetchannels -@all +info +cluster|info)."
  - The journal options are accepted so that C(module_defaults) for the C(valkeyops.secure.valkey) group
    apply to every module; this module changes nothing and records nothing.
seealso:
  - module: valkeyops.secure.valkey_audit
  - name: Replication
    description: Valkey's replication, INFO replication and ROLE.
    link: https://valkey.io/topics/replication/
  - name: Sentinel
    description: High availability with Valkey Sentinel.
    link: https://valkey.io/topics/sentinel/
"""

EXAMPLES = r"""
- name: Read the server's role and replication state
  valkeyops.secure.valkey_info:
    login_user: monitor
    login_password: "{{ vault_valkey_monitor_password }}"
  register: node

- name: Ask a Sentinel which node is the primary now
  valkeyops.secure.valkey_info:
    login_port: 26379
  register: sentinel

- name: Show the current primary of mymaster
  ansible.builtin.debug:
    msg: "{{ (sentinel.info.sentinel.monitors | selectattr('name', 'equalto', 'mymaster') | first).primary }}"
"""

RETURN = r"""
info:
  description: What the server says about itself.
  returned: success
  type: dict
  contains:
    name:
      description: The server's name, V(valkey) (or V(redis) for a server that is not Valkey).
      type: str
      sample: valkey
    version:
      description: The server's version.
      type: str
      sample: 8.0.1
    run_id:
      description: The server process's run id (changes at every restart).
      type: str
      sample: 9dfc83b1b4c6158c7db891240d758756b3047153
    config_file:
      description: The configuration file (O(config_file), else the one the server reports; empty when none).
      type: str
      sample: /etc/valkey/valkey.conf
    instance:
      description: The instance's name on its host, from its configuration file (C(valkey.conf) is C(default), C(valkey-NAME.conf) is C(NAME)).
      type: str
      sample: default
    mode:
      description: How the server runs.
      type: str
      choices: [standalone, sentinel, cluster]
    role:
      description: The server's role.
      type: str
      choices: [primary, replica, sentinel]
    replication:
      description: C(INFO replication), on a data node.
      returned: when the server is not a Sentinel
      type: dict
      contains:
        role:
          description: V(primary) or V(replica).
          type: str
        primary_host:
          description: The primary a replica replicates from.
          returned: on a replica
          type: str
        primary_port:
          description: Its port.
          returned: on a replica
          type: int
        link_status:
          description: The replica's link to its primary, V(up) or V(down).
          returned: on a replica
          type: str
        sync_in_progress:
          description: A replica is receiving a full copy from its primary.
          type: bool
        primary_repl_offset:
          description: The server's replication offset (C(master_repl_offset)).
          type: int
        replica_repl_offset:
          description: The offset a replica has processed (C(slave_repl_offset)).
          returned: on a replica
          type: int
        connected_replicas:
          description: How many replicas are connected to this server.
          type: int
        replicas:
          description: The connected replicas with their state (V(online), V(wait_bgsave), ...), acknowledged offset and lag in seconds.
          type: list
          elements: dict
          sample: [{"ip": "10.0.0.2", "port": 6379, "state": "online", "offset": 1234, "lag": 0}]
    persistence:
      description: C(INFO persistence), on a data node.
      returned: when the server is not a Sentinel
      type: dict
      sample: {"loading": false, "bgsave_in_progress": false, "last_bgsave_status": "ok"}
    sentinel:
      description: A Sentinel's view of the primaries it monitors.
      returned: when the server is a Sentinel
      type: dict
      contains:
        monitors:
          description:
            - One per monitored primary - C(name), C(primary) (C(host), C(port)), C(quorum), C(flags), C(num_replicas),
              C(num_other_sentinels), C(replicas) (each C(host), C(port), C(flags), C(link_status) V(ok) or V(err),
              C(offset)) and C(sentinels) (each C(host), C(port), C(id) - the Sentinel's C(SENTINEL MYID) - and C(flags)).
          type: list
          elements: dict
    cluster:
      description: C(CLUSTER INFO), on a cluster node.
      returned: when the server runs in cluster mode
      type: dict
      sample: {"state": "ok", "slots_assigned": 16384, "slots_ok": 16384, "slots_pfail": 0, "slots_fail": 0, "known_nodes": 6, "size": 3, "my_epoch": 2}
"""
