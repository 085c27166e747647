"""Secret leak hunt: random secrets for every no_log option of every module,
each module run changed, unchanged, failing and in check mode, at -vvvv
--diff, with the default and the JSON result format. No secret may appear in
any output, in any file left under the target's home or temp dirs, in any
process's argv while the play runs, or in the server's log."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

import pytest

from conftest import ArgvWatcher, free_port, recap
from test_valkey_tls import PKI, key_body_lines, openssl


def _hunt(ansible, pb: Path, vars_file: Path, hidden: list[str], extra_dirs=(), result_format="text"):
    env = {"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"} if result_format == "json" else {}
    with ArgvWatcher() as argv:
        out = ansible.playbook(pb, "-vvvv", "--diff", "-e", "@%s" % vars_file, env=env, check=False)
    text = out.stdout + out.stderr
    for s in hidden:
        assert s not in text, "secret in the output (%s format)" % result_format
        assert not argv.saw(s), "secret in a process's argv"
    for root in [ansible.home, *extra_dirs]:
        for path in Path(root).rglob("*"):
            if path.is_file() and not path.is_symlink() and vars_file != path and path.suffix != ".conf":
                data = path.read_bytes()
                for s in hidden:
                    assert s.encode() not in data, "secret left in %s" % path
    return out


@pytest.mark.parametrize("result_format", ["text", "json"])
def test_valkey_config_and_acl_secrets(ansible, valkey, write_playbook, tmp_path, result_format):
    vk = valkey()
    s = {k: "%s-%s" % (k, secrets.token_hex(12)) for k in ("requirepass", "primaryauth", "keypass", "app", "hash_src")}
    s["hash"] = hashlib.sha256(s["hash_src"].encode()).hexdigest()
    vars_file = tmp_path / "controller-vars.json"
    vars_file.write_text(json.dumps(s))
    journal = tmp_path / "journal.jsonl"
    pb = write_playbook(
        f"""\
        - hosts: localhost
          gather_facts: false
          module_defaults:
            group/valkeyops.secure.valkey:
              login_port: {vk.port}
              journal_path: {journal}
          tasks:
            - name: config, changed
              valkeyops.secure.valkey_config:
                settings: {{requirepass: "{{{{ requirepass }}}}", primaryauth: "{{{{ primaryauth }}}}", tls-key-file-pass: "{{{{ keypass }}}}"}}
            - name: config, unchanged
              valkeyops.secure.valkey_config:
                login_password: "{{{{ requirepass }}}}"
                settings: {{requirepass: "{{{{ requirepass }}}}", primaryauth: "{{{{ primaryauth }}}}"}}
            - name: config, check mode
              valkeyops.secure.valkey_config:
                login_password: "{{{{ requirepass }}}}"
                settings: {{primaryauth: "x{{{{ primaryauth }}}}"}}
              check_mode: true
            - name: config, failing
              valkeyops.secure.valkey_config:
                login_password: "{{{{ requirepass }}}}"
                settings: {{requirepass: "{{{{ requirepass }}}}", maxmemory: nonsense}}
              ignore_errors: true
            - name: acl, changed
              valkeyops.secure.valkey_acl:
                login_password: "{{{{ requirepass }}}}"
                users:
                  - {{name: app, passwords: ["{{{{ app }}}}"], keys: ["app:*"], commands: ["+@read"]}}
                  - {{name: hashed, password_hashes: ["{{{{ hash }}}}"], keys: ["h:*"], commands: ["+@read"]}}
            - name: acl, unchanged, check mode
              valkeyops.secure.valkey_acl:
                login_password: "{{{{ requirepass }}}}"
                users:
                  - {{name: app, passwords: ["{{{{ app }}}}"], keys: ["app:*"], commands: ["+@read"]}}
              check_mode: true
            - name: acl, failing
              valkeyops.secure.valkey_acl:
                login_password: "{{{{ requirepass }}}}"
                users:
                  - {{name: app, passwords: ["{{{{ app }}}}"], commands: ["+nosuchcommand"]}}
              ignore_errors: true
            - name: audit
              valkeyops.secure.valkey_audit:
                login_password: "{{{{ requirepass }}}}"
                fail_on: never
        """
    )
    out = _hunt(ansible, pb, vars_file, list(s.values()), extra_dirs=[tmp_path], result_format=result_format)
    assert recap(out.stdout)["failed"] == 0  # failures were ignored, not fatal
    vk.password = s["requirepass"]
    assert vk.get("requirepass") == s["requirepass"], "the secret did reach the server"
    log = vk.log.read_text()
    for v in s.values():
        assert v not in log, "secret in the server log"
    assert journal.exists() and all(v not in journal.read_text() for v in s.values())


def test_valkey_tls_key_material(ansible, valkey, write_playbook, tmp_path):
    vk = valkey()
    pki = PKI(tmp_path / "pki")
    crt, key = pki.issue("server")
    passphrase = "pp-" + secrets.token_hex(12)
    enc = tmp_path / "pki" / "server-enc.key"
    openssl("pkey", "-in", str(key), "-aes256", "-passout", "env:VK_PASS", "-out", str(enc), env={**os.environ, "VK_PASS": passphrase})
    key_pem = enc.read_text()
    vars_file = tmp_path / "controller-vars.json"
    vars_file.write_text(json.dumps({"cert_pem": crt.read_text(), "key_pem": key_pem, "ca_pem": pki.ca.read_text(), "pp": passphrase}))
    dest = tmp_path / "tls"
    dest.mkdir()
    tls_port = free_port()
    pb = write_playbook(
        f"""\
        - hosts: localhost
          gather_facts: false
          module_defaults:
            group/valkeyops.secure.valkey:
              login_port: {vk.port}
              journal: false
          tasks:
            - name: tls, changed
              valkeyops.secure.valkey_tls:
                cert: "{{{{ cert_pem }}}}"
                key: "{{{{ key_pem }}}}"
                key_passphrase: "{{{{ pp }}}}"
                ca: "{{{{ ca_pem }}}}"
                dest_dir: {dest}
                port: {tls_port}
            - name: tls, failing (wrong passphrase)
              valkeyops.secure.valkey_tls:
                cert: "{{{{ cert_pem }}}}"
                key: "{{{{ key_pem }}}}"
                key_passphrase: "wrong-{{{{ pp }}}}"
                ca: "{{{{ ca_pem }}}}"
                dest_dir: {dest}
              ignore_errors: true
            - name: tls, check mode
              valkeyops.secure.valkey_tls:
                cert: "{{{{ cert_pem }}}}"
                key: "{{{{ key_pem }}}}"
                key_passphrase: "{{{{ pp }}}}"
                ca: "{{{{ ca_pem }}}}"
                dest_dir: {dest}
              check_mode: true
        """
    )
    hidden = [passphrase] + key_body_lines(key_pem) + key_body_lines(key.read_text())
    out = _hunt(ansible, pb, vars_file, hidden, extra_dirs=[])
    assert "wrong" in out.stdout or "passphrase" in out.stdout


def test_secrets_in_malformed_arguments_are_masked(ansible, valkey, write_playbook, tmp_path):
    """Arguments that fail validation on the controller may hold a secret
    where the spec does not expect it; the error must not show it.
    (the controller's validator never quotes a secret option's value; the
    plugin masks every string under a secret option anyway, and this guards
    both.)"""
    vk = valkey()
    s = {"a": "malformed-" + secrets.token_hex(12), "b": "login-" + secrets.token_hex(12)}
    vars_file = tmp_path / "controller-vars.json"
    vars_file.write_text(json.dumps(s))
    pb = write_playbook(
        f"""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - name: passwords given as a dict, plus an unknown option
              valkeyops.secure.valkey_acl:
                login_port: {vk.port}
                login_password: "{{{{ b }}}}"
                users:
                  - {{name: app, passwords: {{oops: "{{{{ a }}}}"}}, bogus: 1}}
              ignore_errors: true
            - name: login_password of the wrong type
              valkeyops.secure.valkey_config:
                login_port: {vk.port}
                login_password: ["{{{{ b }}}}", "{{{{ a }}}}"]
                settings: {{timeout: 5}}
              ignore_errors: true
        """
    )
    out = _hunt(ansible, pb, vars_file, list(s.values()))
    assert "unsupported option for valkey_acl: users[0].bogus" in out.stdout
    assert "expected a string; nothing was changed" in out.stdout


def test_group_ca_keys(ansible, write_playbook, tmp_path):
    """The group CA flow: the CA key (given as content, as from Vault) and the node's key
    made by valkey_tls_csr, signed, checked, refused (a bad CSR, a CA key of another CA)."""
    pki = PKI(tmp_path / "pki")
    other = PKI(tmp_path / "other", "other")
    vars_file = tmp_path / "controller-vars.json"
    vars_file.write_text(json.dumps({"ca_pem": pki.ca.read_text(), "ca_key_pem": pki.ca_key.read_text(),
                                     "other_key_pem": other.ca_key.read_text()}))
    dest = tmp_path / "tls"
    dest.mkdir(mode=0o750)
    journal = tmp_path / "journal.jsonl"
    sign = {"ca_cert": "{{ ca_pem }}", "ca_key": "{{ ca_key_pem }}", "csr": "{{ node.csr }}", "names": ["localhost", "127.0.0.1"]}
    tasks = [
        {"name": "csr, key made", "valkeyops.secure.valkey_tls_csr": {"dest_dir": str(dest), "ca": "{{ ca_pem }}",
                                                                        "server_names": ["localhost", "127.0.0.1"], "journal_path": str(journal)},
         "register": "node"},
        {"name": "csr, check mode", "valkeyops.secure.valkey_tls_csr": {"dest_dir": str(dest), "ca": "{{ ca_pem }}", "rotate_key": True,
                                                                          "server_names": ["localhost"], "journal_path": str(journal)},
         "check_mode": True},
        {"name": "sign, changed", "valkeyops.secure.valkey_tls_sign": sign},
        {"name": "sign, check mode", "valkeyops.secure.valkey_tls_sign": sign, "check_mode": True},
        {"name": "sign, failing (a bad CSR)", "valkeyops.secure.valkey_tls_sign": {**sign, "csr": "not a CSR"}, "ignore_errors": True},
        {"name": "sign, failing (the key of another CA)", "valkeyops.secure.valkey_tls_sign": {**sign, "ca_key": "{{ other_key_pem }}"},
         "ignore_errors": True},
    ]
    pb = write_playbook(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    hidden = [line for line in key_body_lines(pki.ca_key.read_text() + other.ca_key.read_text()) if len(line) >= 16]
    out = _hunt(ansible, pb, vars_file, hidden)
    assert recap(out.stdout)["failed"] == 0 and out.stdout.count("...ignoring") == 2, out.stdout[-3000:]
    assert "does not match the CA certificate" in out.stdout
    node_key = (dest / "server.key").read_text()
    for line in key_body_lines(node_key):
        assert len(line) < 16 or line not in out.stdout + out.stderr
