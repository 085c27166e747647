# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Documentation only: the module is the Go binary `valkeyops module valkey_cluster`,
# run by the action plugin of the same name. The argument spec is derived from
# DOCUMENTATION below, so what ansible-doc shows is exactly what is validated.

from __future__ import absolute_import, division, print_function

# The module boilerplate ansible-test 2.16 requires (even of a doc-only file).
__metaclass__ = type

DOCUMENTATION = r"""
module: valkey_cluster
short_description: Create, grow and shrink a Valkey Cluster
version_added: 0.2.0
description:
  - Declares a Valkey Cluster as its nodes and the replicas each primary has. Run it once per cluster (for
    example with C(run_once) on the first node); it reaches every node from the target it runs on.
  - From bare nodes started with C(cluster-enabled yes) it assigns all 16384 slots evenly to the primaries,
    meets the nodes, attaches each replica to a primary on another host, and waits until every node
    reports C(cluster_state:ok) and agrees on who serves which slot.
  - Idempotent. A formed cluster that matches is left alone (C(changed=false), only reads are sent). Roles
    are never forced back; after a failover the promoted replica stays primary (O(nodes[].initial_role)
    applies when a node is first placed only).
  - Grows the cluster. A listed node that is not in the cluster yet joins as a replica of a primary on
    another host that has fewer than O(replicas) replicas, else as a primary that then receives its share
    of the slots.
  - Shrinks the cluster with O(remove_unlisted=true). The slots of a cluster node that O(nodes) does not list
    are moved to the other primaries, replicas of it that stay are attached to another primary, every node
    forgets it, and it is reset (see O(reset_removed)). Without O(remove_unlisted) such nodes are reported
    and left alone.
  - Slots move with Valkey's own cluster manager (C(valkey-cli --cluster rebalance), which must be installed
    on the target). Keys move with C(MIGRATE) while clients are redirected with C(ASK), so no key is lost
    under live traffic. The password reaches C(valkey-cli) in its environment (C(REDISCLI_AUTH)), never on
    its command line.
  - Refuses, with nothing changed, nodes of another cluster, a node holding keys when creating or joining,
    a replica that could only go on its primary's host, fewer than 3 primaries, a node listed twice, and a
    node without C(cluster-enabled yes).
  - The connection options are used for every node. The password goes to a node on another host only over
    TLS whose certificate is verified (O(tls=true), O(validate_certs=true)); C(valkey-cli) then verifies
    the nodes with O(tls_ca_cert).
author:
  - valkeyops.secure contributors (@valkeyops)
extends_documentation_fragment:
  - valkeyops.secure.connection
  - valkeyops.secure.journal
options:
  nodes:
    description:
      - Every node of the cluster.
      - O(login_host), O(login_port) and O(login_unix_socket) are not used by this module; each node is
        reached at its O(nodes[].host) and O(nodes[].port).
    type: list
    elements: dict
    required: true
    suboptions:
      host:
        description:
          - The node's address as the target reaches it (resolved on the target; other nodes meet it at
            that address).
          - Also the host the node counts as when replicas are placed. A replica never goes on its
            primary's host.
        type: str
        required: true
      port:
        description:
          - The node's client port (the TLS port with O(tls=true)). Its cluster bus port is read from the node.
        type: int
        default: 6379
      initial_role:
        description:
          - The role the node starts with when the cluster is created or the node joins. Ignored afterwards.
          - When any node says V(primary), exactly those nodes are the primaries at creation. Otherwise the
            module picks O(nodes) / (O(replicas) + 1) primaries, spread over the hosts in the order listed.
        type: str
        choices: [primary, replica]
  replicas:
    description:
      - Replicas per primary, used when creating the cluster and when a node joins.
    type: int
    default: 1
  remove_unlisted:
    description:
      - Remove cluster nodes that O(nodes) does not list. Their slots are moved away first, then every node
        forgets them.
      - With V(false) they are reported in RV(unlisted_nodes) and a warning, and not touched.
    type: bool
    default: false
  reset_removed:
    description:
      - With O(remove_unlisted), reset each removed node that still answers (C(CLUSTER RESET SOFT), as
        C(valkey-cli --cluster del-node) does) once every staying node forgot it.
      - Set V(false) when the removed nodes are stopped right after, as C(playbooks/cluster.yml) does. A
        reset node that still runs answers every client with C(CLUSTERDOWN) and a slot map without slots,
        which a client that still knows it may take for the whole cluster until the node stops. A removed
        node that is not reset keeps the cluster's slot map and redirects such a client (C(MOVED)) to the
        slots' owners; the staying nodes ignore it. Stop it, or it keeps running (a replica keeps
        replicating its primary).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait, at each step, for the nodes to agree (nodes met, slots served, C(cluster_state:ok)).
      - Slot moves themselves are not cut short by it.
    type: int
    default: 60
attributes:
  check_mode:
    support: full
    description:
      - Reads every node and reports the plan (nodes to meet, replicas to attach, slots to move per node, nodes
        to forget) in RV(plan) and RV(actions), with the same C(changed) as a real run, and changes nothing.
  diff_mode:
    support: full
    description:
      - Shows the layout before and after, one line per node (its slot ranges, or the primary it replicates).
        Slot counts after a move are estimates (V(~)).
  platform:
    support: full
    platforms: posix
    description: Runs on Linux targets (amd64, arm64) as a static Go binary; the target needs a POSIX shell and no Python.
notes:
  - The nodes must already run with C(cluster-enabled yes) (the M(valkeyops.secure.valkey_config) settings
    or the valkeyops.secure.valkey_server role); the cluster bus port and C(tls-cluster) are theirs.
  - ACL users are not propagated by a cluster; converge them on every node with M(valkeyops.secure.valkey_acl).
  - The login user must be allowed the C(cluster), C(info), C(dbsize), C(ping) commands and C(MIGRATE)
    (for slot moves); application users should not be.
seealso:
  - module: valkeyops.secure.valkey_config
  - module: valkeyops.secure.valkey_audit
  - name: Valkey Cluster specification
    description: Slots, gossip, failover.
    link: https://valkey.io/topics/cluster-spec/
  - name: Scaling with Valkey Cluster
    description: Adding and removing nodes with valkey-cli.
    link: https://valkey.io/topics/cluster-tutorial/
"""

EXAMPLES = r"""
- name: Create a cluster of 6 nodes on 3 hosts (3 primaries, one replica each, never on its primary's host)
  valkeyops.secure.valkey_cluster:
    login_user: admin
    login_password: "{{ vault_valkey_admin_password }}"
    tls: true
    tls_ca_cert: /etc/valkey/tls/ca.crt
    nodes:
      - {host: 10.0.0.1, port: 6380, initial_role: primary}
      - {host: 10.0.0.2, port: 6380, initial_role: primary}
      - {host: 10.0.0.3, port: 6380, initial_role: primary}
      - {host: 10.0.0.1, port: 6381}
      - {host: 10.0.0.2, port: 6381}
      - {host: 10.0.0.3, port: 6381}
  run_once: true
  register: cluster

- name: Report the cluster
  ansible.builtin.debug:
    msg: "{{ cluster.state }}: {{ cluster.nodes | length }} nodes, uncovered {{ cluster.uncovered_slots }}"

- name: Shrink - nodes no longer listed give their slots away and are forgotten
  valkeyops.secure.valkey_cluster:
    login_user: admin
    login_password: "{{ vault_valkey_admin_password }}"
    tls: true
    tls_ca_cert: /etc/valkey/tls/ca.crt
    nodes: "{{ valkey_cluster_nodes }}"
    remove_unlisted: true
  run_once: true
"""

RETURN = r"""
state:
  description: C(cluster_state) as the nodes report it (V(ok) or V(fail)), or V(none) before the cluster exists.
  returned: when the nodes were read
  type: str
  sample: ok
nodes:
  description: Every node of the cluster (after the change; in check mode, before it).
  returned: when the nodes were read
  type: list
  elements: dict
  contains:
    id:
      description: The node id.
      type: str
      sample: 07c37dfeb235213a872192d90877d0cd55635b91
    address:
      description: V(host:port) as listed in O(nodes), else as the cluster knows it.
      type: str
      sample: 10.0.0.1:6380
    host:
      description: The host the node counts as.
      type: str
      sample: 10.0.0.1
    role:
      description: V(primary) or V(replica).
      type: str
      sample: primary
    primary_id:
      description: The id of the primary a replica replicates (empty for a primary).
      type: str
      sample: ""
    slots:
      description: Slot ranges the node serves.
      type: list
      elements: str
      sample: ["0-5461"]
    slot_count:
      description: Number of slots the node serves.
      type: int
      sample: 5462
    flags:
      description: The node's flags in C(CLUSTER NODES).
      type: list
      elements: str
      sample: [master]
    link_state:
      description: V(connected) or V(disconnected).
      type: str
      sample: connected
    listed:
      description: Whether O(nodes) lists the node.
      type: bool
      sample: true
failed_nodes:
  description: Nodes the cluster holds as failing (C(fail) or C(fail?)).
  returned: when the nodes were read
  type: list
  elements: str
  sample: []
uncovered_slots:
  description: Slot ranges no node serves.
  returned: when the nodes were read
  type: list
  elements: dict
  sample: []
shards_without_replica:
  description: Primaries serving slots without a replica that is not failing.
  returned: when the nodes were read
  type: list
  elements: str
  sample: []
primary_replica_same_host:
  description: Primaries with a replica on their own host (C(primary), C(replica), C(host)).
  returned: when the nodes were read
  type: list
  elements: dict
  sample: []
unlisted_nodes:
  description: Cluster nodes that O(nodes) does not list.
  returned: when the nodes were read
  type: list
  elements: str
  sample: []
plan:
  description: What the task does (in check mode, would do).
  returned: when the nodes were read
  type: dict
  contains:
    create:
      description: Whether the cluster is created.
      type: bool
    meet:
      description: Nodes that join the cluster.
      type: list
      elements: str
    new_primaries:
      description: Nodes that join as primaries.
      type: list
      elements: str
    replicate:
      description: Replicas to attach (C(replica), C(primary)).
      type: list
      elements: dict
    slots_to_move:
      description: Slots each primary gains (positive) or gives away (negative), estimated for an even spread.
      type: dict
    forget:
      description: Nodes every other node forgets.
      type: list
      elements: str
    close_open_slots:
      description:
        - Slots an interrupted move left migrating or importing (V(slot@node)), closed first with
          C(valkey-cli --cluster fix). Refused when slots are also unserved (a decision for a person).
      type: list
      elements: str
  sample: {"create": false, "meet": ["10.0.0.4:6380"], "new_primaries": ["10.0.0.4:6380"], "replicate": [],
           "slots_to_move": {"10.0.0.4:6380": 4096}, "forget": [], "close_open_slots": []}
actions:
  description: The plan in sentences, in order.
  returned: when the nodes were read
  type: list
  elements: str
  sample: ["meet 10.0.0.4:6380", "move slots (10.0.0.1:6380 -1366, 10.0.0.4:6380 +4096)"]
"""
