"""valkey_config through ansible-playbook: idempotence, check mode, diff,
immutable directives, rollback, bad input, secrets, a target without Python,
the stock Debian valkey.conf."""

from __future__ import annotations

import difflib
import json
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import recap

HARDEN = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Harden
      valkeyops.secure.valkey_config:
        login_port: {port}
        settings:
          maxmemory: 1gb
          maxmemory-policy: ALLKEYS-LRU
          timeout: 300
          protected-mode: true
          save: ["3600 1", "300  100"]
          bind: "127.0.0.1"
      register: harden
    - name: Keep the result
      ansible.builtin.copy:
        content: "{{{{ harden | to_json }}}}"
        dest: "{{{{ playbook_dir }}}}/result.json"
        mode: "0600"
      check_mode: false
      changed_when: false
"""


def _result(pb: Path):
    return json.loads((pb.parent / "result.json").read_text())


def test_check_then_apply_then_idempotent(ansible, valkey, write_playbook):
    vk = valkey()
    pb = write_playbook(HARDEN.format(port=vk.port))
    before = vk.snapshot()

    # Check mode with diff: reports the change, changes nothing.
    out = ansible.playbook(pb, "--check", "--diff")
    assert recap(out.stdout)["changed"] == 1
    assert vk.snapshot() == before, "check mode changed the server or the file"
    planned = _result(pb)
    assert "+maxmemory 1gb" in out.stdout
    assert "-maxmemory 100mb" in out.stdout  # the file's line as written
    assert "-maxmemory 104857600" in out.stdout  # the runtime value

    # The real run: same plan, now applied.
    out = ansible.playbook(pb, "--diff")
    assert recap(out.stdout)["changed"] == 1
    applied = _result(pb)
    for key in ("runtime_changed", "file_changed", "changed"):
        assert planned[key] == applied[key], key
    assert applied["runtime_changed"] == ["maxmemory", "maxmemory-policy", "save", "timeout"]
    assert applied["file_changed"] == ["maxmemory", "maxmemory-policy", "protected-mode", "save", "timeout"]
    assert vk.get("maxmemory") == "1073741824"
    assert vk.get("maxmemory-policy") == "allkeys-lru"
    assert vk.get("save") == "3600 1 300 100"
    assert vk.get("timeout") == "300"
    conf = vk.conf.read_text().splitlines()
    assert "maxmemory 1gb" in conf and "maxmemory 100mb" not in conf
    assert "timeout 300" in conf and "timeout 0" not in conf
    assert "save 3600 1 300 100" in conf and 'save ""' not in conf
    assert conf[0] == "# valkeyops test server", "comment lost"
    assert oct(vk.conf.stat().st_mode & 0o777) == "0o640", "file mode not kept"
    assert applied["values"]["maxmemory"] == "1073741824"
    assert applied["server"]["name"] == "valkey" and applied["server"]["version"].startswith("8.")

    # Second run: nothing to do, by value.
    out = ansible.playbook(pb)
    assert recap(out.stdout)["changed"] == 0
    again = _result(pb)
    assert again["runtime_changed"] == [] and again["file_changed"] == []


def test_same_value_other_spelling_is_no_change(ansible, valkey, write_playbook):
    vk = valkey("maxmemory-policy allkeys-lru\nappendonly no\nsave 3600 1 300 100\n")
    vk.cli("CONFIG", "SET", "maxmemory", "1073741824")
    before = vk.snapshot()
    pb = write_playbook(
        f"""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - valkeyops.secure.valkey_config:
                login_port: {vk.port}
                persist: runtime
                settings:
                  maxmemory: 1gb
                  maxmemory-policy: AllKeys-LRU
                  appendonly: false
                  save: "3600   1  300 100"
                  masterauth: ""
        """
    )
    out = ansible.playbook(pb)
    assert recap(out.stdout)["changed"] == 0
    assert vk.snapshot() == before


def test_immutable_directive_needs_restart(ansible, valkey, write_playbook):
    vk = valkey("enable-debug-command yes\n")
    pb = write_playbook(
        f"""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - valkeyops.secure.valkey_config:
                login_port: {vk.port}
                settings:
                  enable-debug-command: "no"
                  timeout: 120
              register: r
            - ansible.builtin.copy:
                content: "{{{{ r | to_json }}}}"
                dest: "{{{{ playbook_dir }}}}/result.json"
                mode: "0600"
              check_mode: false
              changed_when: false
        """
    )
    out = ansible.playbook(pb)
    res = _result(pb)
    assert res["changed"] is True
    assert res["restart_required"] is True
    assert res["restart_required_directives"] == ["enable-debug-command"]
    assert res["runtime_changed"] == ["timeout"]
    assert "enable-debug-command no" in vk.conf.read_text().splitlines()
    assert vk.get("enable-debug-command") == "yes"  # still the running value
    assert "restart the server to apply enable-debug-command" in out.stdout + out.stderr

    out = ansible.playbook(pb)
    assert recap(out.stdout)["changed"] == 0
    res = _result(pb)
    assert res["restart_required"] is True, "a pending restart must still be reported"


def test_strict_refuses_restart_and_changes_nothing(ansible, valkey, write_playbook):
    vk = valkey("enable-debug-command yes\n")
    before = vk.snapshot()
    pb = write_playbook(
        f"""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - valkeyops.secure.valkey_config:
                login_port: {vk.port}
                strict: true
                settings:
                  enable-debug-command: "no"
                  timeout: 120
        """
    )
    out = ansible.playbook(pb, check=False)
    assert out.returncode != 0
    assert 'directive "enable-debug-command" needs a server restart to change' in out.stdout
    assert "nothing was changed" in out.stdout
    assert vk.snapshot() == before


def test_rollback_when_the_config_directory_is_read_only(ansible, valkey, write_playbook, tmp_path):
    conf_dir = tmp_path / "ro"
    conf_dir.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(conf_dir)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        vk = valkey(conf_dir=conf_dir)
        subprocess.run(["mount", "-o", "remount,ro", str(conf_dir)], check=True)
        before = vk.snapshot()
        pb = write_playbook(
            f"""\
            - hosts: localhost
              gather_facts: false
              tasks:
                - valkeyops.secure.valkey_config:
                    login_port: {vk.port}
                    settings:
                      maxmemory: 2gb
                      timeout: 60
            """
        )
        out = ansible.playbook(pb, check=False)
        assert out.returncode != 0
        assert f"failed to write {vk.conf}" in out.stdout
        assert "the runtime change of maxmemory, timeout was rolled back; nothing was changed" in out.stdout
        assert vk.get("maxmemory") == "104857600"
        assert vk.get("timeout") == "0"
        assert vk.snapshot() == before
    finally:
        subprocess.run(["umount", "-l", str(conf_dir)])


BAD_INPUTS = [
    # (name, task arguments, expected message fragment)
    ("unknown option", {"settingz": {"timeout": 1}, "settings": {}}, "unsupported option for valkey_config: settingz; valid options: backup, config_file"),
    ("settings missing", {}, 'option "settings" is required; nothing was changed'),
    ("settings not a dict", {"settings": "timeout 5"}, 'option "settings": expected a dictionary; nothing was changed'),
    ("persist invalid", {"settings": {"timeout": 5}, "persist": "disk"}, 'option "persist": "disk" is not one of runtime, file, both; nothing was changed'),
    ("login_port not an int", {"settings": {"timeout": 5}, "login_port": "abc"}, 'option "login_port": expected an integer; nothing was changed'),
    ("login_port infinite", {"settings": {"timeout": 5}, "login_port": "{{ 'inf' | float }}"}, 'option "login_port": expected an integer; nothing was changed'),
    ("password as a dict", {"settings": {"timeout": 5}, "login_password": {"a": "b"}}, 'option "login_password": expected a string; nothing was changed'),
    ("unknown directive", {"settings": {"maxmemroy": "1gb"}}, 'unknown directive "maxmemroy"'),
    ("bad memory unit", {"settings": {"maxmemory": "1zb"}}, 'directive "maxmemory"'),
    ("int not a number", {"settings": {"timeout": "abc"}}, 'directive "timeout"'),
    ("bool not a bool", {"settings": {"protected-mode": "maybe"}}, 'directive "protected-mode"'),
    ("enum not a choice", {"settings": {"maxmemory-policy": "sometimes"}}, 'directive "maxmemory-policy"'),
    ("list for a scalar", {"settings": {"timeout": [1, 2]}}, 'directive "timeout"'),
    ("octal as a number", {"settings": {"unixsocketperm": 448}}, "quoted octal string"),
    ("include refused", {"settings": {"include": "/etc/passwd"}}, 'directive "include" is not managed by valkey_config'),
    ("rename-command refused", {"settings": {"rename-command": "FLUSHALL x"}}, 'directive "rename-command" is not managed by valkey_config'),
    ("alias given twice", {"settings": {"masterauth": "alpha-one", "primaryauth": "bravo-two"}}, "are the same directive"),
    ("odd save arguments", {"settings": {"save": "3600"}}, 'directive "save"'),
    ("tls_cert without tls_key", {"settings": {"timeout": 5}, "tls": True, "tls_cert": "/nonexistent.pem"}, "tls_cert"),
    ("one bad among good", {"settings": {"timeout": 77, "maxmemory": "lots"}}, 'directive "maxmemory"'),
    ("value rejected by the server", {"settings": {"maxmemory-clients": "200%"}}, "maxmemory-clients"),
    # Valkey's exact semantics (issue 12 part 3, issue 11 low lines): each was accepted by 0.1.0.
    ("bound from config.c", {"settings": {"io-threads": 129}}, 'directive "io-threads": 129 is out of range; expected an integer between 1 and 128'),
    ("value of a newer release", {"settings": {"repl-diskless-load": "flush-before-load"}}, '"flush-before-load" needs Valkey 9.0 or newer'),
    ("dotted capital I", {"settings": {"T\u0130MEOUT": 5}}, 'unknown directive "T\\u0130MEOUT"'),
    ("NUL in a list item", {"settings": {"bind": ["127.0.0.1", "::1\u0000"]}}, "contains a line break or NUL character"),
    ("long restart-only value", {"settings": {"logfile": "/var/log/" + "l" * 5000}}, "expected at most 4095 bytes"),
]


@pytest.mark.parametrize("venv_fixture", ["ansible", "ansible_oldest"])
def test_bad_input_fails_clearly_and_changes_nothing(request, venv_fixture, valkey, write_playbook):
    runner = request.getfixturevalue(venv_fixture)
    vk = valkey()
    before = vk.snapshot()
    tasks = []
    for i, (name, args, _) in enumerate(BAD_INPUTS):
        args = dict(args)
        args.setdefault("login_port", vk.port) if "login_port" not in args else None
        tasks.append(
            {
                "name": name,
                "valkeyops.secure.valkey_config": args,
                "register": "r%d" % i,
                "ignore_errors": True,
            }
        )
    collect = "{" + ", ".join('"r%d": r%d' % (i, i) for i in range(len(BAD_INPUTS))) + "}"
    tasks.append(
        {
            "ansible.builtin.copy": {"content": "{{ %s | to_json }}" % collect, "dest": "{{ playbook_dir }}/result.json", "mode": "0600"},
            "changed_when": False,
        }
    )
    pb = write_playbook(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    runner.playbook(pb)
    results = _result(pb)
    assert vk.snapshot() == before, "a bad input changed the server or the file"
    for i, (name, _, fragment) in enumerate(BAD_INPUTS):
        r = results["r%d" % i]
        assert r.get("failed") is True, name
        assert fragment in r["msg"], "%s: %r lacks %r" % (name, r["msg"], fragment)
        assert "Traceback" not in r["msg"], name
        assert r.get("changed") is False, name


def test_secrets_never_shown_nor_left_on_disk(ansible, valkey, write_playbook, tmp_path):
    vk = valkey()
    first = "pw-" + secrets.token_hex(12)
    second = "pw-" + secrets.token_hex(12)
    primary = "pa-" + secrets.token_hex(12)
    # Secrets come from a vars file, as they would from Ansible Vault (a
    # literal in the playbook would be shown by Ansible's own error context).
    controller = tmp_path / "controller"
    controller.mkdir()
    vars_file = controller / "secrets.json"
    vars_file.write_text(json.dumps({"first": first, "second": second, "primary": primary}))
    pb = write_playbook(
        f"""\
        - hosts: localhost
          gather_facts: false
          module_defaults:
            group/valkeyops.secure.valkey:
              login_port: {vk.port}
          tasks:
            - name: Set a password (server has none yet)
              valkeyops.secure.valkey_config:
                settings:
                  requirepass: "{{{{ first }}}}"
                  primaryauth: "{{{{ primary }}}}"
            - name: Same again, logged in with it (no change)
              valkeyops.secure.valkey_config:
                login_password: "{{{{ first }}}}"
                settings:
                  requirepass: "{{{{ first }}}}"
            - name: Rotate it, in check mode first
              valkeyops.secure.valkey_config:
                login_password: "{{{{ first }}}}"
                settings:
                  requirepass: "{{{{ second }}}}"
              check_mode: true
            - name: Rotate it
              valkeyops.secure.valkey_config:
                login_password: "{{{{ first }}}}"
                settings:
                  requirepass: "{{{{ second }}}}"
            - name: A failing task with the password in play
              valkeyops.secure.valkey_config:
                login_password: "{{{{ second }}}}"
                settings:
                  requirepass: "{{{{ second }}}}"
                  maxmemory: "not-a-size"
              ignore_errors: true
            - name: Wrong password
              valkeyops.secure.valkey_config:
                login_password: "{{{{ first }}}}"
                settings:
                  requirepass: "{{{{ first }}}}"
              ignore_errors: true
        """
    )
    out = ansible.playbook(pb, "-vvvv", "--diff", "-e", "@" + str(vars_file))
    text = out.stdout + out.stderr
    for secret in (first, second, primary):
        assert secret not in text, "a secret leaked into the output"
    assert "requirepass ******** (new value hidden)" in text
    assert "authentication failed" in text
    assert recap(out.stdout)["changed"] == 3  # set, rotate in check mode, rotate
    vk.password = second
    assert vk.get("requirepass") == second
    # Nothing left on the target's disk but the config file itself.
    for path in tmp_path.rglob("*"):
        if not path.is_file() or path.is_symlink() or path == vk.conf or controller in path.parents:
            continue
        data = path.read_bytes()
        for secret in (first, second, primary):
            assert secret.encode() not in data, "secret found in %s" % path


def test_target_without_python(ansible, valkey, write_playbook):
    vk = valkey()
    pb = write_playbook(
        f"""\
        - hosts: localhost
          gather_facts: false
          vars:
            ansible_python_interpreter: /nonexistent/bin/python3
          tasks:
            - valkeyops.secure.valkey_config:
                login_port: {vk.port}
                settings:
                  timeout: 42
        """
    )
    out = ansible.playbook(pb)
    assert recap(out.stdout)["changed"] == 1
    assert vk.get("timeout") == "42"
    out = ansible.playbook(pb)
    assert recap(out.stdout)["changed"] == 0


def test_stock_debian_config_changes_exactly_those_lines(ansible, write_playbook, tmp_path):
    # Debian's stock file, as the package ships it (a copy: /etc/valkey/valkey.conf
    # on this machine may have been hardened by the roles' molecule scenarios).
    stock = Path(__file__).resolve().parents[2] / "internal" / "conffile" / "testdata" / "debian-valkey.conf"
    conf = tmp_path / "valkey.conf"
    shutil.copyfile(stock, conf)
    original = conf.read_text().splitlines()
    pb = write_playbook(
        f"""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - valkeyops.secure.valkey_config:
                config_file: {conf}
                persist: file
                login_port: 1
                connect_timeout: 1
                settings:
                  timeout: 300
                  tcp-keepalive: 60
                  maxmemory: 2gb
                  loglevel: warning
                  databases: 4
        """
    )
    out = ansible.playbook(pb)
    assert recap(out.stdout)["changed"] == 1
    edited = conf.read_text().splitlines()
    changes = [
        line
        for line in difflib.unified_diff(original, edited, lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert sorted(changes) == sorted(
        [
            "-timeout 0",
            "+timeout 300",
            "-tcp-keepalive 300",
            "+tcp-keepalive 60",
            "-loglevel notice",
            "+loglevel warning",
            "-databases 16",
            "+databases 4",
            "+maxmemory 2gb",
        ]
    ), changes
    assert len(edited) == len(original) + 1
    out = ansible.playbook(pb)
    assert recap(out.stdout)["changed"] == 0


def test_oldest_ansible_core_idempotence_and_check(ansible_oldest, valkey, write_playbook):
    assert "2.16" in ansible_oldest.version()
    vk = valkey()
    pb = write_playbook(HARDEN.format(port=vk.port))
    before = vk.snapshot()
    out = ansible_oldest.playbook(pb, "--check", "--diff")
    assert recap(out.stdout)["changed"] == 1
    assert vk.snapshot() == before
    out = ansible_oldest.playbook(pb)
    assert recap(out.stdout)["changed"] == 1
    assert vk.get("maxmemory") == "1073741824"
    out = ansible_oldest.playbook(pb)
    assert recap(out.stdout)["changed"] == 0
