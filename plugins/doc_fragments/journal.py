# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The change journal options of every valkeyops.secure module that changes something."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  journal:
    description:
      - Record every applied change in the change journal on the target, one JSON line per task that
        changed something (see O(journal_path)).
      - A line holds the time (UTC), the module, the target's host name, the server, the directive (or
        user, or certificate) names with their values before and after, the controller user, the
        playbook path and the Git commit of the playbook's repository with a dirty flag.
      - Values of secret directives (C(requirepass), C(primaryauth), ...) are never recorded, only their
        names; nor are passwords, password hashes or key material.
      - Check mode and runs that change nothing record nothing.
      - V(false) turns the journal off, O(journal_syslog) included.
    type: bool
    default: true
  journal_path:
    description:
      - The journal file on the target, an absolute path. Appended to, never rewritten.
      - Created with mode 0640 (and its directory with mode 0750) when missing.
      - The file is opened for every entry, so C(logrotate) can rotate it between tasks without a
        C(copytruncate).
      - Read it with C(valkeyops journal) on the target.
    type: path
    default: /var/log/valkeyops/changes.jsonl
  journal_required:
    description:
      - A change that cannot be recorded is not made. When the journal (or, with O(journal_syslog), the
        local syslog) cannot be written, the task fails before it changes anything.
      - V(false) warns and applies the change without a record.
    type: bool
    default: true
  journal_syslog:
    description:
      - Also send each journal entry to the local syslog (facility C(auth), severity C(notice), tag
        C(valkeyops)), for shipping to a SIEM.
      - With O(journal_required=true), a syslog that cannot be reached fails the task before it changes
        anything.
    type: bool
    default: false
notes:
  - The controller user, the playbook path and the Git commit are read on the controller by the action
    plugin (C(git) in the playbook's directory); the target needs no Git. A playbook outside a Git
    repository is recorded without a commit.
"""
