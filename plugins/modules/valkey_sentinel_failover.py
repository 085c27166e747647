# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Documentation only: the module is the Go binary `valkeyops module valkey_sentinel_failover`,
# run by the action plugin of the same name. The argument spec is the binary's
# (valkeyops_spec.json); a parity test keeps DOCUMENTATION in agreement with it.

from __future__ import absolute_import, division, print_function

# The module boilerplate ansible-test 2.16 requires (even of a doc-only file).
__metaclass__ = type

DOCUMENTATION = r"""
module: valkey_sentinel_failover
short_description: Move a replication group's primary through its Sentinel with no acknowledged write lost
version_added: 0.2.0
description:
  - Runs on the current primary's host and moves the primary role to one of its replicas through a Sentinel, in
    one process, so that the writes are paused for as long as Valkey takes and not for a sequence of tasks.
  - "The steps: C(CLIENT PAUSE WRITE) on the primary (for at most O(timeout) ms: the pause ends by itself if the
    module dies); wait until every replica's acknowledged offset (C(INFO replication)) equals the primary's;
    C(SENTINEL FAILOVER); wait until the replica the Sentinel chose (flag C(promoted)) has left the primary,
    which it does when it runs C(REPLICAOF NO ONE); C(REPLICAOF) on the old primary toward it; C(CLIENT UNPAUSE),
    also on every error path. Each wait polls every few milliseconds and ends before the pause would. Then,
    writes no longer paused, the module waits until the Sentinel names the new primary (it does so after
    reading C(role:master) from it)."
  - Before anything changes the module checks that the server is the primary the Sentinel names for O(group)
    (by run id), that no failover is in progress, and that O(to), when given, is one of its replicas with its
    link up that the Sentinel knows. Otherwise it fails with one sentence and nothing changed.
  - A write a client sent during the pause runs after it on the old primary, now a replica, and is refused
    (C(READONLY)); it was never acknowledged, so it is not lost, and the client retries on the new primary.
  - The old primary is pointed only at a replica it listed itself before the move, whatever the Sentinel says.
  - Always reports a change (a switchover is an action, not a state); check mode reports what would be done and
    pauses nothing.
  - Making O(to) the only candidate (C(replica-priority 0) on the other replicas) and waiting until every
    Sentinel agrees are the caller's part (role C(valkeyops.secure.valkey_replication) does both).
author:
  - valkeyops.secure contributors (@valkeyops)
extends_documentation_fragment:
  - valkeyops.secure.connection
  - valkeyops.secure.journal
attributes:
  check_mode:
    support: full
    description: Connects, runs every check, and reports the plan and the candidates; writes are not paused.
  diff_mode:
    support: full
    description: Shows the group's primary before and after.
  platform:
    support: full
    platforms: posix
    description: Runs on Linux targets (amd64, arm64) as a static Go binary; the target needs a POSIX shell and no Python.
options:
  group:
    description:
      - The Sentinel monitor's name (the replication group).
    type: str
    required: true
  to:
    description:
      - The replica to promote, C(host:port) as the primary lists it in C(INFO replication).
      - Without it the Sentinel chooses among the primary's replicas.
      - When the Sentinel promotes another replica the move is still completed (the old primary follows it) and
        the task fails, naming both.
    type: str
  timeout:
    description:
      - The longest time writes stay paused, in milliseconds (V(500) to V(300000)). The pause is set for that long,
        so it ends by itself if the module dies; every wait ends sooner (at four fifths of it).
    type: int
    default: 10000
  sentinel_unix_socket:
    description:
      - Unix socket of a Sentinel on this host; takes precedence over O(sentinel_host) and O(sentinel_port).
    type: path
  sentinel_host:
    description:
      - Address of the Sentinel that runs the failover.
      - A password goes to a Sentinel on another host only over TLS with a verified certificate (O(sentinel_tls)).
    type: str
    default: 127.0.0.1
  sentinel_port:
    description:
      - TCP port of the Sentinel; its TLS port with O(sentinel_tls=true).
    type: int
    default: 26379
  sentinel_user:
    description:
      - The ACL user to log in to the Sentinel with.
    type: str
  sentinel_password:
    description:
      - The password of O(sentinel_user).
      - Never shown in any output; masked in results, diffs, warnings and errors.
    type: str
  sentinel_tls:
    description:
      - Connect to the Sentinel with TLS. Its certificate is always verified.
    type: bool
    default: false
  sentinel_tls_ca_cert:
    description:
      - CA bundle to verify the Sentinel's certificate with (default the system roots).
    type: path
  sentinel_tls_cert:
    description:
      - Client certificate for a Sentinel with C(tls-auth-clients). Needs O(sentinel_tls_key).
    type: path
  sentinel_tls_key:
    description:
      - Key of O(sentinel_tls_cert).
    type: path
  sentinel_tls_server_name:
    description:
      - Name to verify the Sentinel's certificate against (default O(sentinel_host)).
    type: str
seealso:
  - module: valkeyops.secure.valkey_sentinel
  - name: Valkey Sentinel
    description: High availability with Valkey Sentinel.
    link: https://valkey.io/topics/sentinel/
  - name: CLIENT PAUSE
    description: Pausing the writes of clients.
    link: https://valkey.io/commands/client-pause/
"""

EXAMPLES = r"""
- name: Move the primary of group cache to 10.0.0.12, on the current primary's host
  valkeyops.secure.valkey_sentinel_failover:
    login_unix_socket: /run/valkey/valkey-server.sock
    login_user: admin
    login_password: "{{ valkey_admin_password }}"
    group: cache
    to: 10.0.0.12:6379
    sentinel_unix_socket: /run/valkey-sentinel/valkey-sentinel.sock
    sentinel_user: sentinel-admin
    sentinel_password: "{{ sentinel_admin_password }}"
    timeout: 10000
  register: move

- name: Show how long the writes were paused
  ansible.builtin.debug:
    msg: "{{ move.old_primary }} -> {{ move.new_primary }}: writes paused {{ move.pause_ms }} ms"
"""

RETURN = r"""
group:
  description: The Sentinel monitor's name.
  returned: always
  type: str
  sample: cache
sentinel:
  description: Where the module reached the Sentinel that ran the failover.
  returned: when the Sentinel was reached
  type: str
  sample: unix:/run/valkey-sentinel/valkey-sentinel.sock
old_primary:
  description: The primary before the move, as the Sentinel named it.
  returned: when the Sentinel was reached
  type: str
  sample: 10.0.0.11:6379
new_primary:
  description: The replica the Sentinel promoted; empty in check mode and when the move did not happen.
  returned: always
  type: str
  sample: 10.0.0.12:6379
candidates:
  description: The primary's replicas with their link up before the move.
  returned: always
  type: list
  elements: str
  sample: ["10.0.0.12:6379", "10.0.0.13:6379"]
pause_ms:
  description: How long writes were paused, measured by the module from before C(CLIENT PAUSE) to the reply of C(CLIENT UNPAUSE); 0 when no pause began.
  returned: always
  type: float
  sample: 1210.4
steps:
  description:
    - The steps that ran and how long each took, in order
      (V(pause), V(replicas_caught_up), V(sentinel_failover), V(promoted), V(old_primary_follows), V(unpause),
      V(sentinel_names_it), the last after the pause).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: pause, ms: 0.3}
    - {name: replicas_caught_up, ms: 512.0}
    - {name: sentinel_failover, ms: 0.2}
    - {name: promoted, ms: 690.1}
    - {name: old_primary_follows, ms: 0.3}
    - {name: unpause, ms: 0.1}
    - {name: sentinel_names_it, ms: 802.5}
"""
