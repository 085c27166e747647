# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Documentation only: the module is the Go binary `valkeyops module valkey_acl`,
# run by the action plugin of the same name. The argument spec is derived from
# DOCUMENTATION below, so what ansible-doc shows is exactly what is validated.

from __future__ import absolute_import, division, print_function

# The module boilerplate ansible-test 2.16 requires (even of a doc-only file).
__metaclass__ = type

DOCUMENTATION = r"""
module: valkey_acl
short_description: Manage Valkey ACL users as code
version_added: 0.1.0
description:
  - Creates, updates and deletes Valkey ACL users so that each listed user has exactly the flags,
    passwords, key patterns, channels, command rules and selectors given, and nothing else.
  - Compares by meaning, not spelling, so a second run reports no change. C(allkeys) is C(~*),
    C(allcommands) is C(+@all), C(%RW~) is C(~), command rules are compared in the order and case the
    server normalises them to, key and channel patterns and selectors in any order, passwords by their
    SHA-256 hash.
  - Each changed user is converged with one atomic C(ACL SETUSER name reset ...), so a user never holds
    partial rights. All reads take one pipelined round trip, all writes one more, then one save.
  - Passwords are hashed on the target; only the hashes are sent to the server.
  - Changes to the user the module is logged in as are applied last, so the open connection stays
    authenticated. A task whose result would leave no enabled user that can log in and run
    C(ACL SETUSER) is refused, with nothing changed, unless O(allow_lockout=true).
  - If saving fails (C(ACL SAVE) error, read-only aclfile), every user is restored to its state before
    the task and the task fails naming the file.
  - Bad input (an invalid rule, an unknown command or category, a malformed hash, duplicate names,
    O(users[].state=absent) with other fields) fails before anything is applied, naming the user and the rule.
  - Passwords and hashes never appear in a result, a diff, a warning or an error; the diff shows the
    number of passwords only.
  - Runs on the target as a static Go binary; the target needs a POSIX shell and no Python.
author:
  - valkeyops.secure contributors (@valkeyops)
extends_documentation_fragment:
  - valkeyops.secure.connection
  - valkeyops.secure.journal
options:
  users:
    description:
      - The users to manage, each a dictionary with the fields below.
      - Give either O(users) or a single user at the top level with O(name) and the same fields.
      - A user's entry describes it completely. A field that is not given grants nothing (no keys, no
        channels, no commands).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - The user name. No spaces or control characters.
        type: str
        required: true
      state:
        description:
          - V(present) creates or updates the user; V(absent) deletes it and takes no other field.
          - The C(default) user cannot be deleted; disable it with O(users[].enabled=false).
        type: str
        choices: [present, absent]
        default: present
      enabled:
        description:
          - Whether the user may log in (C(on)/C(off)). Connections already logged in stay open.
        type: bool
        default: true
      passwords:
        description:
          - Passwords in plain text. Hashed (SHA-256) on the target; the server only receives the hashes.
          - The user's passwords become exactly these plus O(users[].password_hashes).
          - Never shown in any output, nor their hashes.
        type: list
        elements: str
      password_hashes:
        description:
          - Password hashes, as SHA-256 hexadecimal digests (64 characters).
          - Never shown in any output.
        type: list
        elements: str
      nopass:
        description:
          - Let anyone log in as this user without a password. Allowed, but the module warns on every run.
          - Excludes O(users[].passwords) and O(users[].password_hashes).
        type: bool
        default: false
      keys:
        description:
          - Key patterns. A plain pattern (V(app:*)) or V(~app:*) grants read and write.
          - V(%R~pattern) grants read only, V(%W~pattern) write only, V(%RW~pattern) both.
          - V(allkeys) (the same as V(~*)) grants every key.
        type: list
        elements: str
      channels:
        description:
          - Pub/Sub channel patterns, plain (V(news.*)) or with V(&) (V(&news.*)); V(allchannels) grants every channel.
        type: list
        elements: str
      commands:
        description:
          - Command rules in order, as ACL SETUSER takes them. V(+@read), V(-@dangerous), V(+get),
            V(-flushall), V(+client|setname), V(allcommands), V(nocommands).
          - Commands, subcommands and categories are checked against the server before anything changes.
        type: list
        elements: str
      selectors:
        description:
          - Additional selectors. A command is allowed when the user's own rules or any selector allows it
            (with that selector's keys and channels).
        type: list
        elements: dict
        suboptions:
          keys:
            description: Key patterns of the selector, as in O(users[].keys).
            type: list
            elements: str
          channels:
            description: Channel patterns of the selector, as in O(users[].channels).
            type: list
            elements: str
          commands:
            description: Command rules of the selector, as in O(users[].commands).
            type: list
            elements: str
      update_password:
        description:
          - V(always) makes the passwords exactly the ones given.
          - V(on_create) sets them only when the user is created; an existing user keeps its passwords
            (the other fields are still converged).
        type: str
        choices: [always, on_create]
        default: always
  name:
    description:
      - One user at the top level (for loops and readability); the same fields as O(users) apply at the
        top level. Exclusive with O(users).
    type: str
  state:
    description:
      - As O(users[].state), for the top-level user.
    type: str
    choices: [present, absent]
    default: present
  enabled:
    description:
      - As O(users[].enabled), for the top-level user.
    type: bool
    default: true
  passwords:
    description:
      - As O(users[].passwords), for the top-level user.
      - Never shown in any output, nor their hashes.
    type: list
    elements: str
  password_hashes:
    description:
      - As O(users[].password_hashes), for the top-level user.
      - Never shown in any output.
    type: list
    elements: str
  nopass:
    description:
      - As O(users[].nopass), for the top-level user.
    type: bool
    default: false
  keys:
    description:
      - As O(users[].keys), for the top-level user.
    type: list
    elements: str
  channels:
    description:
      - As O(users[].channels), for the top-level user.
    type: list
    elements: str
  commands:
    description:
      - As O(users[].commands), for the top-level user.
    type: list
    elements: str
  selectors:
    description:
      - As O(users[].selectors), for the top-level user.
    type: list
    elements: dict
    suboptions:
      keys:
        description: Key patterns of the selector.
        type: list
        elements: str
      channels:
        description: Channel patterns of the selector.
        type: list
        elements: str
      commands:
        description: Command rules of the selector.
        type: list
        elements: str
  update_password:
    description:
      - As O(users[].update_password), for the top-level user.
    type: str
    choices: [always, on_create]
    default: always
  exclusive:
    description:
      - Delete every user on the server that is not listed.
      - The C(default) user is managed like any other when listed, and left alone when not.
    type: bool
    default: false
  allow_lockout:
    description:
      - Apply a task even when afterwards no enabled user that can log in (with a password, or C(nopass))
        may run C(ACL SETUSER).
    type: bool
    default: false
  persist:
    description:
      - Where changes are saved.
      - V(auto) runs C(ACL SAVE) when the server has an aclfile, else C(CONFIG REWRITE) when it has a config
        file, else warns that the change lives only in memory.
      - V(aclfile) runs C(ACL SAVE) and fails, with nothing changed, when there is no aclfile.
      - V(config) runs C(CONFIG REWRITE) (C(user) lines in the config file; it also writes any other runtime
        configuration change to that file) and fails when the server uses an aclfile.
      - V(none) saves nothing.
      - Nothing is saved when nothing changed.
    type: str
    choices: [auto, aclfile, config, none]
    default: auto
attributes:
  check_mode:
    support: full
    description: Reads the server, plans, and reports the same C(changed), lists and diff as a real run without changing anything.
  diff_mode:
    support: full
    description: Shows each changed user before and after (flags, password count, keys, channels, commands, selectors); never a password or hash.
  platform:
    support: full
    platforms: posix
    description: Runs on Linux targets (amd64, arm64) as a static Go binary; the target needs a POSIX shell and no Python.
notes:
  - The login user needs the rights to run C(ACL LIST), C(ACL CAT), C(ACL WHOAMI), C(COMMAND LIST),
    C(COMMAND INFO), C(CONFIG GET), C(INFO), C(ACL SETUSER), C(ACL DELUSER) and the save command.
  - When the task takes from the login user the right to save, the run is finished (saved, and restored if
    saving fails) over a second connection as a user of the task that keeps the right and whose password is
    given in O(users[].passwords). This is how one task can create an admin and disable C(default).
  - Users that are not listed are left alone unless O(exclusive=true).
seealso:
  - name: ACL
    description: Valkey's access control lists, rules and selectors.
    link: https://valkey.io/topics/acl/
  - name: ACL SETUSER
    description: The rules this module takes.
    link: https://valkey.io/commands/acl-setuser/
  - module: valkeyops.secure.valkey_config
"""

EXAMPLES = r"""
- name: An application user, read and write on its own keys, no dangerous commands
  valkeyops.secure.valkey_acl:
    login_user: admin
    login_password: "{{ vault_valkey_admin_password }}"
    name: app
    passwords:
      - "{{ vault_valkey_app_password }}"
    keys:
      - "app:*"
      - "%R~shared:*"
    channels:
      - "app-events"
    commands:
      - "+@read"
      - "+@write"
      - "-@dangerous"
      - "+client|setname"

- name: A read-only user for reports (its password is set once, then left to rotation)
  valkeyops.secure.valkey_acl:
    login_user: admin
    login_password: "{{ vault_valkey_admin_password }}"
    name: reports
    passwords:
      - "{{ vault_valkey_reports_password }}"
    update_password: on_create
    keys:
      - "%R~*"
    commands:
      - "+@read"
      - "-keys"
      - "-scan"

- name: A replication user, as replicas authenticate with primaryuser/primaryauth
  valkeyops.secure.valkey_acl:
    login_user: admin
    login_password: "{{ vault_valkey_admin_password }}"
    name: replica
    password_hashes:
      - "{{ vault_valkey_replica_password | hash('sha256') }}"
    commands:
      - "+psync"
      - "+replconf"
      - "+ping"

- name: Bootstrap, logged in as the stock default user - create an admin, lock down default, drop the rest
  valkeyops.secure.valkey_acl:
    exclusive: true
    users:
      - name: admin
        passwords:
          - "{{ vault_valkey_admin_password }}"
        keys: [allkeys]
        channels: [allchannels]
        commands: [allcommands]
      - name: default
        enabled: false

- name: Later runs log in as the admin (set once for every valkeyops.secure module)
  module_defaults:
    group/valkeyops.secure.valkey:
      login_user: admin
      login_password: "{{ vault_valkey_admin_password }}"
  block:
    - name: Many users in one task, one round trip of writes
      valkeyops.secure.valkey_acl:
        users:
          - name: worker
            passwords: ["{{ vault_valkey_worker_password }}"]
            keys: ["jobs:*"]
            commands: ["+@list", "+@connection"]
            selectors:
              - keys: ["%R~config:*"]
                commands: ["+get"]
          - name: retired
            state: absent
"""

RETURN = r"""
created:
  description: Users created (in check mode, users that would be created).
  returned: always
  type: list
  elements: str
  sample: [app]
updated:
  description: Users whose flags, passwords or rules were changed.
  returned: always
  type: list
  elements: str
  sample: [default]
deleted:
  description: Users deleted (O(users[].state=absent), or not listed with O(exclusive=true)).
  returned: always
  type: list
  elements: str
  sample: [intruder]
persisted_to:
  description:
    - The aclfile (C(ACL SAVE)) or config file (C(CONFIG REWRITE)) the changes were saved to; empty when nothing
      was saved (no change, O(persist=none), or a server with neither file).
  returned: always
  type: str
  sample: /etc/valkey/users.acl
"""
