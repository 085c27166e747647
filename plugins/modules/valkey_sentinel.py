# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Documentation only: the module is the Go binary `valkeyops module valkey_sentinel`,
# run by the action plugin of the same name. The argument spec is the binary's
# (valkeyops_spec.json); a parity test keeps DOCUMENTATION in agreement with it.

from __future__ import absolute_import, division, print_function

# The module boilerplate ansible-test 2.16 requires (even of a doc-only file).
__metaclass__ = type

DOCUMENTATION = r"""
module: valkey_sentinel
short_description: Manage a Valkey Sentinel's monitors and settings without touching Sentinel's own state
version_added: 0.2.0
description:
  - Converges the primaries a Sentinel monitors and its global settings at runtime, with C(SENTINEL MONITOR),
    C(SENTINEL SET), C(SENTINEL REMOVE) and C(SENTINEL CONFIG SET). Sentinel rewrites its own config file after
    each of these commands, so the module never writes C(sentinel.conf); the lines of Sentinel's own state
    (C(myid), C(current-epoch), C(config-epoch), C(leader-epoch), C(known-replica), C(known-sentinel), and the
    primary address a failover wrote) stay exactly as Sentinel wrote them, whatever the task says.
  - After a change the module re-reads the config file and fails if Sentinel did not persist it.
  - By value and idempotent; C(auth-pass) is not reported by Sentinel at runtime, so it is compared with the
    config file (the file must be readable on the target; it is by default, the path Sentinel reports).
  - An existing monitor whose primary moved (a failover) is never removed and re-added; the current primary is
    reported in RV(monitors[].current_primary) and the difference in RV(disagreements), with C(changed=false).
  - Connects to the Sentinel, not to a data node; O(login_port) defaults to Sentinel's port V(26379). Note that
    C(module_defaults) for the C(group/valkeyops.secure.valkey) action group also apply here, so set
    O(login_port) on this module when the group sets another port.
  - Secrets (O(monitors[].auth_pass), O(sentinel_pass), O(login_password)) are compared but never shown; the
    diff says V((changed)) in their place.
author:
  - valkeyops.secure contributors (@valkeyops)
extends_documentation_fragment:
  - valkeyops.secure.connection
  - valkeyops.secure.journal
attributes:
  check_mode:
    support: full
    description: Reads the Sentinel and its file, plans, and reports the same C(changed) and diff as a real run without sending a change.
  diff_mode:
    support: full
    description:
      - Shows each monitor's settings and the Sentinel-wide settings before and after.
      - C(auth-pass) and C(sentinel-pass) only as changed, never their values.
  platform:
    support: full
    platforms: posix
    description: Runs on Linux targets (amd64, arm64) as a static Go binary; the target needs a POSIX shell and no Python.
options:
  login_port:
    description:
      - TCP port of the Sentinel; the TLS port when O(tls=true).
      - Sentinel's port, not the data nodes' V(6379).
    type: int
    default: 26379
  config_file:
    description:
      - Path of the Sentinel's config file on the target. Read only (to compare C(auth-pass) and C(auth-user),
        which Sentinel does not report, and to check that a change was persisted).
      - Defaults to the path the Sentinel reports in C(INFO server); when both exist they must agree.
    type: path
  monitors:
    description:
      - The primaries this Sentinel monitors. A setting left out keeps what Sentinel has.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - The monitor's name. Sentinel writes it into its config file unquoted, so whitespace, quotes and control
            characters are refused.
        type: str
        required: true
      primary_host:
        description:
          - Address of the initial primary. Used only when the monitor is created (required then).
        type: str
      primary_port:
        description:
          - Port of the initial primary. Used only when the monitor is created.
        type: int
        default: 6379
      quorum:
        description:
          - Number of Sentinels that must agree the primary is down. At least 1; required to create a monitor.
        type: int
      down_after_milliseconds:
        description:
          - C(down-after-milliseconds). At least 1.
        type: int
      failover_timeout:
        description:
          - C(failover-timeout) in milliseconds. At least 1.
        type: int
      parallel_syncs:
        description:
          - C(parallel-syncs). At least 1.
        type: int
      auth_user:
        description:
          - The ACL user Sentinel logs in with on the data nodes (C(auth-user)). Needs O(monitors[].auth_pass).
        type: str
      auth_pass:
        description:
          - The password of O(monitors[].auth_user) (C(auth-pass)).
          - Never shown in any output; masked in results, diffs, warnings and errors.
        type: str
      state:
        description:
          - V(absent) removes the monitor (C(SENTINEL REMOVE)).
        type: str
        choices: [present, absent]
        default: present
  exclusive:
    description:
      - Remove every monitor that O(monitors) does not list.
    type: bool
    default: false
  reset:
    description:
      - Monitors to C(SENTINEL RESET) (forget their replicas and Sentinels, for example after removing a replica).
      - An explicit operation, always reported as a change and named in RV(reset); never a side effect.
      - Exactly the named monitor is reset (C(RESET) takes a pattern; the name is escaped).
    type: list
    elements: str
    default: []
  sentinel_user:
    description:
      - The ACL user this Sentinel logs in with on the other Sentinels (C(sentinel-user)).
    type: str
  sentinel_pass:
    description:
      - The password of O(sentinel_user) (C(sentinel-pass)). Needs O(sentinel_user).
      - Never shown in any output; masked in results, diffs, warnings and errors.
    type: str
  resolve_hostnames:
    description:
      - C(resolve-hostnames). Left as it is when not given.
    type: bool
  announce_hostnames:
    description:
      - C(announce-hostnames). Left as it is when not given.
    type: bool
  announce_ip:
    description:
      - This Sentinel's announced address (C(announce-ip); per node). V("") clears it.
    type: str
  announce_port:
    description:
      - This Sentinel's announced port (C(announce-port); per node). V(0) clears it.
    type: int
  deny_scripts_reconfig:
    description:
      - Must be V(true). Sentinel cannot change C(deny-scripts-reconfig) at runtime; V(false) is refused because
        scripts reconfigured at runtime run commands on the host as Sentinel's user.
      - When the config file says C(sentinel deny-scripts-reconfig no), the task warns.
    type: bool
    default: true
seealso:
  - module: valkeyops.secure.valkey_acl
  - name: Valkey Sentinel
    description: High availability with Valkey Sentinel.
    link: https://valkey.io/topics/sentinel/
"""

EXAMPLES = r"""
- name: Monitor the group's primary with a least-privilege data-node user
  valkeyops.secure.valkey_sentinel:
    login_user: sentinel-admin
    login_password: "{{ sentinel_admin_password }}"
    monitors:
      - name: cache
        primary_host: 10.0.0.11
        primary_port: 6379
        quorum: 2
        down_after_milliseconds: 5000
        auth_user: sentinel
        auth_pass: "{{ sentinel_data_password }}"
    sentinel_user: sentinel-peer
    sentinel_pass: "{{ sentinel_peer_password }}"

- name: Forget a removed replica
  valkeyops.secure.valkey_sentinel:
    reset: [cache]
"""

RETURN = r"""
config_file:
  description: The Sentinel's config file (read, never written by the module).
  returned: success
  type: str
  sample: /etc/valkey/sentinel.conf
monitors:
  description: Every monitor the Sentinel has after the task (before it, in check mode).
  returned: success
  type: list
  elements: dict
  sample:
    - name: cache
      current_primary: 10.0.0.12:6379
      quorum: 2
      down_after_milliseconds: 5000
      failover_timeout: 180000
      parallel_syncs: 1
      auth_user: sentinel
      auth_pass_set: true
      flags: [master]
      config_epoch: 1
      leader_epoch: 1
      replicas: {count: 2, addresses: ["10.0.0.11:6379", "10.0.0.13:6379"]}
      sentinels: {count: 2, addresses: ["10.0.0.12:26379", "10.0.0.13:26379"]}
      ckquorum: {ok: true, message: "OK 3 usable Sentinels. Quorum and failover authorization can be reached"}
  contains:
    name:
      description: The monitor's name.
      type: str
    current_primary:
      description: The primary Sentinel watches now, C(host:port) (after a failover, the promoted replica).
      type: str
    quorum:
      description: Sentinels that must agree a primary is down.
      type: int
    auth_pass_set:
      description: Whether the monitor has an C(auth-pass); the value is never returned.
      type: bool
    flags:
      description: Sentinel's flags for the primary (C(master), C(s_down), C(o_down), ...).
      type: list
      elements: str
    replicas:
      description: Known replicas, as Sentinel found them (C(count), C(addresses)).
      type: dict
    sentinels:
      description: Other Sentinels watching this primary (C(count), C(addresses)).
      type: dict
    ckquorum:
      description: The result of C(SENTINEL CKQUORUM) (C(ok), C(message)).
      type: dict
created:
  description: Monitors the task created.
  returned: success
  type: list
  elements: str
updated:
  description: Monitors whose settings the task changed.
  returned: success
  type: list
  elements: str
removed:
  description: Monitors the task removed.
  returned: success
  type: list
  elements: str
reset:
  description: Monitors the task reset (C(SENTINEL RESET)).
  returned: success
  type: list
  elements: str
settings:
  description: Sentinel-global settings the task changed, by name.
  returned: success
  type: list
  elements: str
  sample: [sentinel-user, sentinel-pass]
disagreements:
  description: One sentence per monitor whose current primary differs from the task's; the module leaves it so.
  returned: success
  type: list
  elements: str
current_epoch:
  description: The config file's C(sentinel current-epoch) (-1 when unknown).
  returned: success
  type: int
deny_scripts_reconfig:
  description: False when the config file says C(sentinel deny-scripts-reconfig no).
  returned: success
  type: bool
"""
