# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Documentation only: the module is the Go binary `valkeyops module valkey_config`,
# run by the action plugin of the same name. The argument spec is derived from
# DOCUMENTATION below, so what ansible-doc shows is exactly what is validated.

from __future__ import absolute_import, division, print_function

# The module boilerplate ansible-test 2.16 requires (even of a doc-only file).
__metaclass__ = type

DOCUMENTATION = r"""
module: valkey_config
short_description: Manage Valkey directives in the running server and in valkey.conf together
version_added: 0.1.0
description:
  - Sets Valkey configuration directives in the running server (one atomic C(CONFIG SET)) and in
    its configuration file, and keeps the two in agreement.
  - Compares values by meaning, not spelling, so a second run reports no change. Memory units
    (C(1gb) is 1073741824 bytes, C(1g) is 10^9), booleans (C(true), C(yes)), enum case, whitespace
    in multi-value directives (C(save), C(bind)), C(unixsocketperm) octal strings, and old and new
    names (C(masterauth)/C(primaryauth), C(slaveof)/C(replicaof), C(slave-*)/C(replica-*)) all
    compare equal when the server would treat them as equal.
  - The file is edited in place, not regenerated. Comments, order, includes and every other line stay
    byte-identical. The last occurrence of a directive is edited, because that is the one the server
    reads; a directive that is not set yet, or whose effective line lives in an C(include)d file, is
    appended to the end of the main file so that it takes effect.
  - The file is written atomically (temporary file in the same directory, fsync, rename); owner, group
    and mode are kept; concurrent runs on one host wait for each other (a lock on the directory).
  - If the runtime change succeeds and the file cannot be written, the runtime change is rolled back,
    so the server and its file never disagree because of this module.
  - Directives that cannot change at runtime (C(aclfile), C(unixsocket), C(databases),
    C(enable-debug-command), ...; known per server version and also recognised from the server's
    refusal) are written to the file and reported in RV(restart_required) and
    RV(restart_required_directives).
  - The values of C(requirepass), C(primaryauth)/C(masterauth), C(tls-key-file-pass) and
    C(tls-client-key-file-pass) are compared but never shown, in any output, at any verbosity.
  - Bad input (an unknown directive, a wrong type, an invalid value) fails before anything is applied,
    naming the directive.
  - Runs on the target as a static Go binary; the target needs a POSIX shell and no Python.
author:
  - valkeyops.secure contributors (@valkeyops)
extends_documentation_fragment:
  - valkeyops.secure.connection
  - valkeyops.secure.journal
options:
  settings:
    description:
      - Directives and their desired values, as a dictionary that maps each directive name to its value.
      - A value is a string, a number, a boolean or a list (for multi-value directives such as
        C(save) or C(bind); a space-separated string works as well).
      - Give C(unixsocketperm) as a quoted octal string (V('0700')); YAML reads an unquoted C(0700) as the number 448.
      - C(include), C(rename-command), C(user), C(loadmodule) and C(sentinel) are refused (use ACLs and
        M(valkeyops.secure.valkey_acl) instead of renamed commands).
    type: dict
    required: true
  persist:
    description:
      - Where changes go.
      - V(both) changes the running server and the file and keeps them in agreement.
      - V(runtime) only changes the running server (lost at the next restart).
      - V(file) only changes the file (applied at the next restart); the server is then optional.
    type: str
    choices: [runtime, file, both]
    default: both
  config_file:
    description:
      - Path of the configuration file on the target.
      - Defaults to the path the server reports in C(INFO server) (C(config_file)).
      - Required when O(persist=file) and the server is not reachable.
      - A file that does not exist yet is created (mode 0640) when its directory exists.
    type: path
  backup:
    description:
      - Keep a timestamped copy of the file (same owner and mode) before changing it.
    type: bool
    default: false
  strict:
    description:
      - Fail, with nothing changed, when a directive would need a server restart, instead of writing
        it to the file with a warning.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reads the server and the file, plans, and reports the same C(changed) and diff as a real run without changing anything.
  diff_mode:
    support: full
    description: Shows C(directive value) lines before and after, for the runtime and for the file; secret values are hidden.
  platform:
    support: full
    platforms: posix
    description: Runs on Linux targets (amd64, arm64) as a static Go binary; the target needs a POSIX shell and no Python.
notes:
  - The module talks to the server from the target host, by default on 127.0.0.1.
  - RV(drift) lists directives whose running value and file value disagreed before the run; a directive
    the file does not set is not drift (the server default applies).
  - Every applied change is recorded in the change journal (O(journal_path)) with the directives'
    values before and after, except for secret directives, recorded by name only. The journal is checked
    before anything is applied; with O(journal_required=true) (the default) a journal that cannot be
    written fails the task and nothing is changed.
seealso:
  - name: Valkey configuration
    description: The directives and their meaning.
    link: https://valkey.io/topics/valkey.conf/
  - name: CONFIG SET
    description: How the server applies several parameters at once, all or nothing.
    link: https://valkey.io/commands/config-set/
"""

EXAMPLES = r"""
- name: Harden a running Valkey and its valkey.conf
  valkeyops.secure.valkey_config:
    login_user: admin
    login_password: "{{ vault_valkey_admin_password }}"
    settings:
      protected-mode: true
      maxmemory: 1gb
      maxmemory-policy: allkeys-lru
      timeout: 300
      tcp-keepalive: 60
      save: ["3600 1", "300 100"]

- name: Set connection options once for every valkeyops.secure module
  module_defaults:
    group/valkeyops.secure.valkey:
      login_unix_socket: /run/valkey/valkey.sock
      login_user: admin
      login_password: "{{ vault_valkey_admin_password }}"
  block:
    - name: Disable the DEBUG command (needs a restart; the file is updated now)
      valkeyops.secure.valkey_config:
        settings:
          enable-debug-command: "no"
      register: debug_off

    - name: Tell the operator a restart is pending
      ansible.builtin.debug:
        msg: "Restart needed for {{ debug_off.restart_required_directives | join(', ') }}"
      when: debug_off.restart_required

- name: Edit only the file of a server that is not running
  valkeyops.secure.valkey_config:
    config_file: /etc/valkey/valkey.conf
    persist: file
    backup: true
    settings:
      bind: 127.0.0.1 -::1
      unixsocketperm: "0700"

- name: Record changes in a journal of its own and send them to syslog too
  valkeyops.secure.valkey_config:
    journal_path: /var/log/valkey/valkeyops-changes.jsonl
    journal_syslog: true
    settings:
      maxmemory-policy: allkeys-lru

- name: Fail instead of warning when a change needs a restart
  valkeyops.secure.valkey_config:
    strict: true
    settings:
      maxclients: 2000
"""

RETURN = r"""
server:
  description: The server the module talked to.
  returned: when the server was reached
  type: dict
  contains:
    name:
      description: C(valkey) or C(redis).
      type: str
      sample: valkey
    version:
      description: The server version.
      type: str
      sample: 8.0.1
config_file:
  description: The configuration file read (and edited).
  returned: when a file is involved
  type: str
  sample: /etc/valkey/valkey.conf
values:
  description:
    - For each directive in O(settings), the value the running server reports after the run (re-read
      after applying; in check mode, the value a real run would set). Secrets show as C(********).
  returned: always
  type: dict
  sample: {"maxmemory": "1073741824", "protected-mode": "yes", "requirepass": "********"}
runtime_changed:
  description: Directives changed in the running server.
  returned: always
  type: list
  elements: str
  sample: [maxmemory]
file_changed:
  description: Directives changed in the configuration file.
  returned: always
  type: list
  elements: str
  sample: [maxmemory, enable-debug-command]
restart_required:
  description: Whether a directive was written to the file but cannot take effect until the server restarts.
  returned: always
  type: bool
  sample: true
restart_required_directives:
  description: The directives that need a restart.
  returned: always
  type: list
  elements: str
  sample: [enable-debug-command]
drift:
  description:
    - Directives of O(settings) whose running value and file value differed before the run, with both
      values (secrets as C(********)).
  returned: always
  type: dict
  sample: {"maxmemory": {"runtime": "2147483648", "file": "1073741824"}}
backup_file:
  description: Path of the backup copy.
  returned: when O(backup=true) and the file changed
  type: str
  sample: /etc/valkey/valkey.conf.4711.2026-11-22@10:15:02~
"""
