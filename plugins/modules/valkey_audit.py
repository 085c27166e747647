# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Documentation only: the module is the Go binary `valkeyops module valkey_audit`,
# run by the action plugin of the same name. The argument spec is derived from
# DOCUMENTATION below, so what ansible-doc shows is exactly what is validated.

from __future__ import absolute_import, division, print_function

# The module boilerplate ansible-test 2.16 requires (even of a doc-only file).
__metaclass__ = type

DOCUMENTATION = r"""
module: valkey_audit
short_description: Check a Valkey server against the secure baseline and report drift
version_added: 0.1.0
description:
  - Evaluates a security policy against the running server (C(CONFIG GET), C(ACL LIST), C(INFO server),
    C(INFO persistence), the certificate it serves), its configuration file and aclfile, and the host (file
    modes and owners, the user the server runs as, certificates, kernel settings from C(/proc/sys) and
    C(/sys), the systemd sandbox drop-in) when the server is this host's (a unix socket, loopback, or an
    address of one of its interfaces).
  - The policy is the secure baseline shipped with the collection (C(files/policy/baseline.yml), also
    built into the module) plus your own rules, which add rules or override baseline rules by id. A
    malformed policy fails the task with the file, the line and the rule id, before the server is touched.
  - With O(desired) it also reports drift, per directive and per user, between the desired state, the
    running server and the file. Directives whose running value differs from the file are reported even
    without O(desired).
  - Reads only. It never changes the server or a file, so C(changed) is always false.
  - Secrets (C(requirepass), passwords, password hashes) are compared but never shown.
  - O(fail_on) makes the task fail, with a one-line reason, for scheduled compliance runs (AWX).
author:
  - valkeyops.secure contributors (@valkeyops)
extends_documentation_fragment:
  - valkeyops.secure.connection
  - valkeyops.secure.journal
options:
  config_file:
    description:
      - Path of the configuration file on the target.
      - Defaults to the path the server reports in C(INFO server) (C(config_file)).
    type: path
  aclfile:
    description:
      - Path of the aclfile on the target. Defaults to the server's C(aclfile) directive.
    type: path
  policy:
    description:
      - Policy rules as YAML text (the format of C(files/policy/baseline.yml)), applied after O(policy_file).
      - Typically V({{ lookup('ansible.builtin.file', 'policy.yml') }}). Errors name it C(policy (option)).
    type: str
  policy_file:
    description:
      - Path of a policy file on the target, applied after the baseline.
    type: path
  baseline:
    description:
      - Use the shipped secure baseline. With V(false) only O(policy_file) and O(policy) are evaluated.
    type: bool
    default: true
  skip_rules:
    description:
      - Rule ids not to evaluate (for example V(VK-021)).
    type: list
    elements: str
    default: []
  desired:
    description:
      - The desired state to compare with, in the shape M(valkeyops.secure.valkey_config) and
        M(valkeyops.secure.valkey_acl) take.
    type: dict
    suboptions:
      settings:
        description:
          - Directives and their desired values, compared by meaning (C(1gb) equals C(1073741824)).
          - A directive the file does not set is file drift, unless the desired value is empty.
        type: dict
      users:
        description:
          - ACL users, each a dictionary with C(name) and optionally C(state) (V(present) or V(absent))
            and C(enabled) (a boolean). Other keys (passwords, rules) are accepted and ignored, and any
            password or hash is masked.
          - When given, a user on the server or in the aclfile that is not listed (other than C(default))
            is drift, for example a user added by hand.
        type: list
        elements: dict
  fail_on:
    description:
      - When the task fails. V(never) reports only.
      - A severity (V(low), V(medium), V(high), V(critical)) fails on a finding of that severity or above.
      - V(drift) fails when anything drifted.
      - Give a list to combine them, for example V([drift, high]).
    type: list
    elements: str
    choices: [never, drift, low, medium, high, critical]
    default: [never]
  compare_key:
    description:
      - The run's key for the cross-node comparison (rule VK-090 in M(valkeyops.secure.valkey_report)).
      - With it the result carries RV(fleet), the node's group, settings, ACL users and CA expiry; secret values and users as
        HMAC-SHA256 digests under this key, so nobody can test a guessed password against them once the key is gone.
      - Give every host of one run the same random key and keep it nowhere (P(valkeyops.secure.valkey_audit#role) makes one per run).
      - Never shown in any output.
    type: str
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs it the same way.
  diff_mode:
    support: none
    description: The module changes nothing, so it has no diff; drift is reported in its results.
  platform:
    support: full
    platforms: posix
    description: Runs on Linux targets (amd64, arm64) as a static Go binary; the target needs a POSIX shell and no Python.
notes:
  - The audit changes nothing and writes no journal entry. It reads the change journal (O(journal_path))
    to tell a drifted value that a recorded change set from one changed outside Ansible, and reports
    the latter in RV(out_of_band) with a warning. O(journal=false) skips that check.
  - A journal that cannot be read fails the audit when O(journal_required=true) (the default), since the
    out-of-band check cannot be made; O(journal_required=false) audits on with a warning.
    O(journal_syslog) is accepted so that C(module_defaults) for the C(valkeyops.secure.valkey) group
    apply to every module, and has no effect here (the audit records nothing).
  - Runs on the target and reaches the server there, by default on 127.0.0.1. File modes, owners and
    the server process are only checked when the server is local (loopback or a unix socket).
  - The login user needs C(CONFIG GET), C(INFO) and C(ACL LIST); without C(ACL LIST) the ACL rules are
    checked from the aclfile, with a warning.
  - The same checks run without a server in CI with C(valkeyops lint valkey.conf), and across a fleet
    without Ansible with C(valkeyops drift --targets targets.yml).
seealso:
  - name: Valkey security
    description: The guidance the baseline follows.
    link: https://valkey.io/topics/security/
  - name: ACL
    description: Users, passwords and command categories.
    link: https://valkey.io/topics/acl/
"""

EXAMPLES = r"""
- name: Audit against the secure baseline and fail on high findings or drift
  valkeyops.secure.valkey_audit:
    login_user: admin
    login_password: "{{ vault_valkey_admin_password }}"
    fail_on: [drift, high]
    desired:
      settings:
        maxmemory: 1gb
        protected-mode: true
      users:
        - name: default
          enabled: false
        - name: admin
        - name: app
  register: audit

- name: Show a one-line summary
  ansible.builtin.debug:
    msg: "{{ audit.msg }}"

- name: Add a site rule and lower a baseline rule
  valkeyops.secure.valkey_audit:
    login_unix_socket: /run/valkey/valkey.sock
    skip_rules: [VK-021]
    policy: |
      version: 1
      rules:
        - id: VK-020
          severity: low
        - id: SITE-001
          title: Keyspace notifications are off
          severity: low
          remediation: Set notify-keyspace-events to an empty string.
          check:
            directive: notify-keyspace-events
            empty: true
"""

RETURN = r"""
out_of_band:
  description:
    - Drifted directives whose running value no change recorded in the journal set, i.e. changed
      outside Ansible, with the last recorded value, when and by whom. Secret directives are never
      listed (the journal holds no secret values).
  returned: always
  type: list
  elements: dict
  sample: [{"directive": "hz", "runtime": "20", "last_recorded": "10", "recorded_at": "2026-11-22T10:15:02Z", "recorded_by": "alice"}]
server:
  description: The server audited.
  returned: always
  type: dict
  sample: {"name": "valkey", "version": "8.0.1"}
config_file:
  description: The configuration file read.
  returned: when the file was read
  type: str
  sample: /etc/valkey/valkey.conf
instance:
  description:
    - The instance's name on its host, from its configuration file as the valkey_server role lays instances out
      (C(valkey.conf) is C(default), C(valkey-NAME.conf) is C(NAME)); every finding carries it too.
  returned: when the file was read
  type: str
  sample: default
topology:
  description:
    - The server's place in its replication group, from C(INFO replication) - reported, never drift. After a failover
      the group's choice stands, so C(replicaof) is never compared with O(desired) (the inventory's initial primary) nor
      with the file; a replica whose link is down is finding VK-030, a file a restart would act on differently is VK-031.
    - C(role) (V(primary) or V(replica)), C(primary) (host:port) and C(link_status) (V(up) or V(down)) on a replica,
      C(connected_replicas), and C(replicaof) with its C(runtime) and C(file) values (empty for no one).
  returned: when INFO replication was read
  type: dict
  sample: {"role": "replica", "primary": "10.0.0.2:6379", "link_status": "up", "connected_replicas": 0,
           "replicaof": {"runtime": "10.0.0.2 6379", "file": "10.0.0.2 6379"}}
aclfile:
  description: The aclfile read.
  returned: when the server uses one
  type: str
  sample: /etc/valkey/users.acl
findings:
  description: Failed rules, most severe first.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Rule id.
      type: str
      sample: VK-003
    title:
      description: What the rule wants.
      type: str
      sample: The default user needs a password or is disabled
    severity:
      description: low, medium, high or critical.
      type: str
      sample: critical
    message:
      description: What was found (never a secret value).
      type: str
      sample: enabled ACL user "default" has no password (nopass) (from ACL LIST)
    remediation:
      description: How to fix it.
      type: str
      sample: Disable it ("user default off") and give each client its own user.
    source:
      description: Where the rule's advice comes from (a Valkey doc or a public hardening guide), when the rule names one.
      type: str
      sample: https://valkey.io/topics/encryption/
    instance:
      description: The instance the finding is about (as RV(instance)).
      type: str
      sample: cache
passed_rules:
  description: The ids of the rules that held.
  returned: always
  type: list
  elements: str
  sample: ["VK-001", "VK-002"]
certificates:
  description:
    - The certificate files the server uses, with their subject and expiry (RFC 3339, UTC), or why one could not be read.
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/etc/valkey/tls/valkey.crt", "subject": "CN=valkey1", "not_after": "2027-11-25T12:00:00Z"}]
fleet:
  description:
    - What M(valkeyops.secure.valkey_report) compares across the nodes of one group (rule VK-090), with O(compare_key) only.
    - V(group) is C(replication REPLID), C(cluster NODEID) (the lowest node id) or C(sentinel MONITORS); a node in no group has none.
    - V(settings) are the running settings but those per node by nature; secret values are C(digest:HEX).
      V(users) hold keyed digests of each ACL user's rules and passwords; V(ca) is the CA's subject and expiry.
  returned: with compare_key, on a node of a replication group, a cluster or a Sentinel with monitors
  type: dict
  sample: {"group": "replication 5d4c0b3e9a1f", "settings": {"maxmemory": "1073741824", "primaryauth": "digest:3fa9c2d1e0b4a5f6"},
           "users": {"app": {"rules": "9c1e...", "passwords": "77ab..."}}, "ca": "CN=valkeyops group CA until 2036-11-20T10:00:00Z"}
skipped_rules:
  description: Rules that did not apply or lacked the facts they need, with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "VK-011", "reason": "not applicable: tls-port is \"0\""}]
drift:
  description:
    - C(settings) maps a directive to its C(desired), C(runtime) and C(file) values and C(differs)
      (V(runtime) and/or V(file)); C(users) maps a user to its C(desired), C(runtime) and C(file) state.
    - Secret values show as C(********).
  returned: always
  type: dict
  sample:
    settings: {"maxmemory": {"desired": "1073741824", "runtime": "2147483648", "file": "1073741824", "differs": ["runtime"]}}
    users: {"intruder": {"desired": "not listed", "runtime": "enabled", "file": "absent", "differs": ["runtime"]}}
summary:
  description: Counts of findings by severity, rules passed and skipped, drifted directives and users.
  returned: always
  type: dict
  sample: {"critical": 0, "high": 1, "medium": 0, "low": 2, "findings": 3, "rules_passed": 20, "rules_skipped": 6,
           "drifted_settings": 1, "drifted_users": 0}
passed:
  description: True when there is no finding and no drift.
  returned: always
  type: bool
  sample: false
msg:
  description: A one-line summary, for a job log.
  returned: always
  type: str
  sample: "valkey 8.0.1 at 127.0.0.1:6379: 3 findings (1 high, 2 low): VK-006 VK-019 VK-021; no drift"
"""
