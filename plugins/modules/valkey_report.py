# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Documentation only: the module is the Go binary `valkeyops module valkey_report`,
# run by the action plugin of the same name. The argument spec is derived from
# DOCUMENTATION below, so what ansible-doc shows is exactly what is validated.

from __future__ import absolute_import, division, print_function

# The module boilerplate ansible-test 2.16 requires (even of a doc-only file).
__metaclass__ = type

DOCUMENTATION = r"""
module: valkey_report
short_description: Write one HTML, JSON, JUnit and SARIF report of a whole Valkey audit run
version_added: 0.2.0
description:
  - Takes the results of M(valkeyops.secure.valkey_audit) gathered from every host and instance of a run and
    writes one self-contained HTML page, findings by severity, a matrix of instance and rule (pass, fail,
    accepted risk, not applicable), drift (desired, runtime, file), certificate expiry on a timeline,
    out-of-band changes from the change journal, and what changed since a previous run.
  - The page loads nothing (no script, font, image or request; a strict Content-Security-Policy) and prints
    readably. Every value in it is escaped; secrets are never in it, since the audit never returns one.
  - The nodes of each replication group, cluster and set of Sentinels are compared (rule VK-090) when the audits
    were run with one O(valkeyops.secure.valkey_audit#module:compare_key); a node whose settings (but those per node
    by nature), ACL users or CA differ from the others' gets a VK-090 finding naming the directive or user, a secret
    only as differing. The page shows each instance's role and group, and each group's differences.
  - The other O(formats) are written beside the page with the same name, for CI and code-scanning tools.
  - Run it where the report is wanted, usually the controller (task keywords C(delegate_to) V(localhost),
    C(run_once) V(true), C(become) V(false)). It changes no Valkey server and writes no journal entry.
  - Files are replaced atomically with mode 0600, never through a link another user made, and only in
    directories that root or the user running the task own and no one else may write (a sticky
    directory such as C(/tmp) is accepted).
author:
  - valkeyops.secure contributors (@valkeyops)
options:
  results:
    description:
      - The audit results, one per instance.
    type: list
    elements: dict
    required: true
    suboptions:
      host:
        description:
          - The inventory host.
        type: str
        required: true
      instance:
        description:
          - The instance's name on its host. Defaults to the name the audit result gives.
        type: str
      result:
        description:
          - The registered result of M(valkeyops.secure.valkey_audit). A result without a report (the audit
            did not run) shows the instance as not audited, with the task's message.
        type: dict
  hosts:
    description:
      - Every host of the run, typically V({{ ansible_play_hosts_all }}). A host without a result in O(results) is
        shown as not audited (unreachable, or failed before its audit).
    type: list
    elements: str
    default: []
  path:
    description:
      - Absolute path of the HTML report. The other formats go beside it, C(.html) replaced by C(.json),
        C(.junit.xml) and C(.sarif).
    type: path
    required: true
  formats:
    description:
      - The files to write. V(json) is the input of the next run's O(previous).
    type: list
    elements: str
    choices: [html, json, junit, sarif]
    default: [html, json]
  previous:
    description:
      - A previous run's JSON report to compare with (new and resolved findings and drift, new and gone instances).
      - A file that does not exist is a warning (the first run has none); one that is not a report fails the task.
    type: path
  title:
    description:
      - The report's title.
    type: str
    default: Valkey audit
attributes:
  check_mode:
    support: full
    description: Renders the report and checks the paths, and writes nothing.
  diff_mode:
    support: full
    description: Names each file written and the run's summary (not the page's content).
  platform:
    support: full
    platforms: posix
    description: Runs as a static Go binary on Linux (amd64, arm64), usually the controller.
notes:
  - C(changed) is always true outside a failure, since each report says when it was made.
  - Not in the C(valkeyops.secure.valkey) action group on purpose. The group's C(module_defaults) hold
    connection and journal options for the modules that reach a server, and this module takes none.
seealso:
  - module: valkeyops.secure.valkey_audit
"""

EXAMPLES = r"""
- name: Audit the server
  valkeyops.secure.valkey_audit:
    login_unix_socket: /run/valkey/valkey.sock
  register: audit
  ignore_errors: true

- name: Remember this host's result for the report
  ansible.builtin.set_fact:
    audit_entry:
      host: "{{ inventory_hostname }}"
      result: "{{ audit }}"

- name: Write the run's report on the controller
  valkeyops.secure.valkey_report:
    path: /var/lib/valkey-audit/report.html
    previous: /var/lib/valkey-audit/report.json
    formats: [html, json, sarif]
    hosts: "{{ ansible_play_hosts_all }}"
    results: "{{ ansible_play_hosts_all | map('extract', hostvars) | selectattr('audit_entry', 'defined')
                 | map(attribute='audit_entry') | list }}"
  delegate_to: localhost
  run_once: true
  become: false
  register: report

- name: Publish the report for AWX
  ansible.builtin.set_stats:
    data:
      valkey_audit_report: "{{ report.files.html }}"
      valkey_audit_summary: "{{ report.summary }}"
  run_once: true
"""

RETURN = r"""
files:
  description: The files written, by format.
  returned: success
  type: dict
  sample: {"html": "/var/lib/valkey-audit/report.html", "json": "/var/lib/valkey-audit/report.json"}
summary:
  description:
    - The run's counts. The severity counts are the sums of the instances' audit summaries (an accepted
      risk counts at the severity it was reported with, and in C(accepted_risks)).
  returned: success
  type: dict
  sample: {"instances": 3, "passed": 1, "with_findings": 1, "drifted": 0, "errors": 1, "findings": 4, "critical": 0,
           "high": 2, "medium": 1, "low": 1, "accepted_risks": 1, "drifted_settings": 0, "drifted_users": 0,
           "out_of_band": 0, "certificates_expired": 0, "certificates_expiring": 1}
summary_line:
  description: The summary in one line.
  returned: success
  type: str
  sample: "3 instances: 1 passed, 1 with findings, 0 drifted, 1 not audited; 4 findings (0 critical, 2 high, 1 medium, 1 low, 1 accepted); ..."
passed:
  description: Every instance was audited and had no finding and no drift.
  returned: success
  type: bool
"""
