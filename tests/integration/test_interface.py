"""One interface per module, defined by the Go binary (`valkeyops spec`):

- DOCUMENTATION (with its doc fragments, as ansible-doc shows it) agrees
  with the binary's spec on every name, type, default, choice, elements,
  suboption, required and no_log, and the comparison reports a difference
  when one side changes alone;
- the controller's validator says, for each rule, word for word what the
  binary says for the same bad input;
- target paths reach the target as written (`~`, `$HOME` unexpanded).
"""

from __future__ import annotations

import copy
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
# Every module the binary defines (its spec, written by `make build`): the one
# list; test_every_module_is_the_binarys checks plugins/modules against it.
MODULES = tuple(sorted(json.loads((ROOT / "plugins" / "plugin_utils" / "valkeyops_spec.json").read_text())["modules"]))

# DOCUMENTATION cannot carry no_log (the docs schema has no such key): a
# secret option says so in its description with this phrase.
NO_LOG_PHRASE = "Never shown in any output"


@pytest.fixture(scope="session")
def collection(installed):
    """The installed collection's root (ansible_collections/valkeyops/secure)."""
    return installed / "ansible_collections" / "valkeyops" / "secure"


@pytest.fixture(scope="session")
def plugin(installed):
    """The installed collection's binary_module and action plugins, imported
    as Ansible imports them."""
    sys.path.insert(0, str(installed))
    try:
        bm = importlib.import_module("ansible_collections.valkeyops.secure.plugins.plugin_utils.binary_module")
        actions = {m: importlib.import_module("ansible_collections.valkeyops.secure.plugins.action." + m).ActionModule for m in MODULES}
    finally:
        sys.path.remove(str(installed))
    return bm, actions


@pytest.fixture(scope="session")
def binary(collection):
    """The binary the collection ships for this machine."""
    found = sorted(p for p in collection.rglob("valkeyops_linux_amd64") if p.is_file())
    assert found, "no valkeyops_linux_amd64 in the installed collection"
    return found[0]


@pytest.fixture(scope="session")
def spec(plugin):
    return plugin[0].load_spec()


@pytest.fixture(scope="session")
def docs(request, installed):
    venv = request.config.getoption("--venv")
    out = subprocess.run(
        [venv + "/bin/ansible-doc", "--json", "-t", "module"] + ["valkeyops.secure." + m for m in MODULES],
        capture_output=True,
        text=True,
        check=True,
        env={"ANSIBLE_COLLECTIONS_PATH": str(installed), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false", "PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )
    data = json.loads(out.stdout)
    return {m: data["valkeyops.secure." + m]["doc"]["options"] for m in MODULES}


def compare(doc_options, spec_options, where=""):
    """Every disagreement between documented options and spec options, one
    line each; empty when they agree."""
    diffs = []
    for name in sorted(set(doc_options) | set(spec_options)):
        path = where + name
        if name not in spec_options:
            diffs.append("%s: documented, not in the binary's spec" % path)
            continue
        if name not in doc_options:
            diffs.append("%s: in the binary's spec, not documented" % path)
            continue
        d, s = doc_options[name], spec_options[name]
        doc_type = d.get("type", "str")
        pairs = [
            ("type", doc_type, s["type"]),
            ("elements", d.get("elements"), s.get("elements")),
            ("required", bool(d.get("required")), bool(s.get("required"))),
            ("default", d.get("default"), s.get("default")),
            ("choices", d.get("choices"), s.get("choices")),
        ]
        description = " ".join(d.get("description") or ()) if isinstance(d.get("description"), list) else str(d.get("description") or "")
        pairs.append(("no_log", NO_LOG_PHRASE in description, bool(s.get("no_log"))))
        for key, dv, sv in pairs:
            if dv != sv:
                diffs.append("%s: %s is %r in DOCUMENTATION, %r in the binary's spec" % (path, key, dv, sv))
        diffs += compare(d.get("suboptions") or {}, s.get("options") or {}, path + ".")
    return diffs


def test_every_module_is_the_binarys():
    """plugins/modules and plugins/action hold exactly the binary's modules, and the
    `valkey` action group exactly those that log in to a server (module_defaults
    of the group carry login_* options; a module without them would refuse them)."""
    documented = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
    actions = sorted(p.stem for p in (ROOT / "plugins" / "action").glob("valkey_*.py"))
    assert documented == list(MODULES)
    assert actions == list(MODULES)
    spec = json.loads((ROOT / "plugins" / "plugin_utils" / "valkeyops_spec.json").read_text())["modules"]
    logs_in = sorted(m for m in MODULES if "login_host" in spec[m]["options"])
    group = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["action_groups"]["valkey"]
    assert sorted(group) == logs_in


@pytest.mark.parametrize("module", MODULES)
def test_documentation_agrees_with_the_binary(module, docs, spec):
    assert compare(docs[module], spec["modules"][module]["options"]) == []


def test_shipped_spec_is_the_binarys(binary, spec):
    """The spec file the controller loads is what the shipped binary prints."""
    out = subprocess.run([str(binary), "spec"], capture_output=True, check=True)
    assert json.loads(out.stdout) == spec


MUTATIONS = [
    # (what changes, path to the option in the spec, key, new value, expected report)
    ("a type", ("valkey_config", "backup"), "type", "str", "backup: type is 'bool' in DOCUMENTATION, 'str' in the binary's spec"),
    ("a default", ("valkey_config", "login_port"), "default", 6380, "login_port: default is 6379 in DOCUMENTATION, 6380 in the binary's spec"),
    ("a choice", ("valkey_config", "persist"), "choices", ["runtime", "file"],
     "persist: choices is ['runtime', 'file', 'both'] in DOCUMENTATION, ['runtime', 'file'] in the binary's spec"),
    ("elements", ("valkey_tls", "server_names"), "elements", "int", "server_names: elements is 'str' in DOCUMENTATION, 'int' in the binary's spec"),
    ("required", ("valkey_config", "settings"), "required", False, "settings: required is True in DOCUMENTATION, False in the binary's spec"),
    ("no_log", ("valkey_tls", "key_passphrase"), "no_log", False, "key_passphrase: no_log is True in DOCUMENTATION, False in the binary's spec"),
    ("a suboption's default", ("valkey_acl", "users", "state"), "default", "absent",
     "users.state: default is 'present' in DOCUMENTATION, 'absent' in the binary's spec"),
    ("a nested no_log", ("valkey_acl", "users", "passwords"), "no_log", False, "users.passwords: no_log is True in DOCUMENTATION, False in the binary's spec"),
]


@pytest.mark.parametrize("what,path,key,value,report", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_parity_fails_when_one_side_changes(what, path, key, value, report, docs, spec):
    module, names = path[0], path[1:]
    # The binary's side changes alone.
    changed = copy.deepcopy(spec["modules"][module]["options"])
    option = changed[names[0]]
    for n in names[1:]:
        option = option["options"][n]
    option[key] = value
    assert compare(docs[module], changed) == [report]
    # The documentation changes alone: the same attribute...
    doc = copy.deepcopy(docs[module])
    option = doc[names[0]]
    for n in names[1:]:
        option = option["suboptions"][n]
    if key == "no_log":
        option["description"] = [line.replace(NO_LOG_PHRASE, "Shown") for line in option["description"]]
    else:
        option[key] = value
    reports = compare(doc, spec["modules"][module]["options"])
    assert len(reports) == 1 and reports[0].startswith(".".join(names) + ": " + key + " is "), reports
    # ... an option added, and one removed.
    doc = copy.deepcopy(docs[module])
    doc["extra_option"] = {"description": ["x"], "type": "str"}
    del doc[names[0]]
    assert sorted(compare(doc, spec["modules"][module]["options"])) == sorted([
        "extra_option: documented, not in the binary's spec",
        "%s: in the binary's spec, not documented" % names[0],
    ])


# One bad input per rule, through the controller's validator and the real
# binary: the two messages must be the same text.
BAD = [
    ("unknown option", "valkey_config", {"settings": {}, "settingz": {}}),
    ("unknown options", "valkey_config", {"settings": {}, "zz": 1, "aa": 2}),
    ("unknown suboption", "valkey_acl", {"users": [{"name": "a"}, {"name": "b", "key": ["x"]}]}),
    ("unknown sub-suboption", "valkey_acl", {"users": [{"name": "a", "selectors": [{"key": ["x"]}]}]}),
    ("unknown key in desired", "valkey_audit", {"desired": {"setings": {}}}),
    ("required", "valkey_config", {}),
    ("required suboption", "valkey_acl", {"users": [{"keys": ["a"]}]}),
    ("dict for a password", "valkey_config", {"settings": {}, "login_password": {"oops": "Sup3r-s3cret"}}),
    ("list for a string", "valkey_config", {"settings": {}, "login_host": ["a", "b"]}),
    ("bool for an int", "valkey_config", {"settings": {}, "login_port": True}),
    ("fraction for an int", "valkey_config", {"settings": {}, "login_port": 5.5}),
    ("word for an int", "valkey_config", {"settings": {}, "connect_timeout": "soon"}),
    ("maybe for a bool", "valkey_config", {"settings": {}, "backup": "maybe"}),
    ("dict for a list", "valkey_acl", {"name": "a", "keys": {"a": 1}}),
    ("dict in a list", "valkey_acl", {"name": "a", "passwords": ["ok", {"x": "Sup3r-s3cret"}]}),
    ("string for a dict", "valkey_config", {"settings": "timeout 5"}),
    ("string for a list of dicts", "valkey_acl", {"users": "alice"}),
    ("choice", "valkey_config", {"settings": {}, "persist": "disk"}),
    ("choice of an element", "valkey_tls", {"generate_self_signed": True, "dest_dir": "/tmp", "protocols": ["TLSv1.2", "SSLv3"]}),
    ("choice of a suboption", "valkey_acl", {"users": [{"name": "a", "state": "gone"}]}),
    ("choice of a list", "valkey_audit", {"fail_on": ["drift", "sometimes"]}),
    ("NUL in a string", "valkey_config", {"settings": {}, "login_password": "Sup3r\u0000s3cret"}),
    ("NUL in a list item", "valkey_acl", {"name": "a", "keys": ["app:*", "x\u0000y"]}),
    ("NUL in a free-form value", "valkey_audit", {"desired": {"users": [{"name": "a", "note": "x\u0000y"}]}}),
    ("mutually exclusive", "valkey_tls", {"cert": "x", "cert_path": "/c", "key_path": "/k", "ca_path": "/a"}),
    ("required together", "valkey_config", {"settings": {}, "tls": True, "tls_cert": "/c"}),
]


def run_binary(binary, module, args):
    out = subprocess.run([str(binary), "module", module], input=json.dumps(args).encode(), capture_output=True, timeout=30)
    result = json.loads(out.stdout)
    assert result["failed"] is True and result["changed"] is False, result
    return result["msg"]


def controller_message(plugin, spec, module, args):
    """The message the action plugin returns (its validate, without a task)."""
    bm, actions = plugin
    action = actions[module].__new__(actions[module])
    with pytest.raises(bm.OptionError) as e:
        action.validate(args)
    return "%s; %s" % (e.value, action.REFUSED)


@pytest.mark.parametrize("name,module,args", BAD, ids=[b[0] for b in BAD])
def test_one_rule_one_message(name, module, args, plugin, spec, binary):
    mine = controller_message(plugin, spec, module, args)
    assert mine == run_binary(binary, module, args)
    assert "Sup3r" not in mine and "s3cret" not in mine


def test_infinity_for_an_integer_names_the_option(plugin, spec, binary):
    """YAML .inf cannot travel as JSON; the controller refuses it with the
    sentence the binary says for any non-integer."""
    mine = controller_message(plugin, spec, "valkey_config", {"settings": {}, "login_port": float("inf")})
    assert mine == run_binary(binary, "valkey_config", {"settings": {}, "login_port": "inf"})
    assert mine == 'option "login_port": expected an integer; nothing was changed'
    assert controller_message(plugin, spec, "valkey_config", {"settings": {}, "login_port": float("nan")}) == mine


def test_coercion_as_ansible_users_expect(plugin, spec):
    bm = plugin[0]
    params = bm.check_options(
        "valkey_tls",
        spec["modules"]["valkey_tls"],
        {"auth_clients": True, "port": "6380", "backup": "yes", "server_names": "a,b", "min_days_valid": 7.0, "owner": 0, "cluster": None},
    )
    assert params == {"auth_clients": "yes", "port": 6380, "backup": True, "server_names": ["a", "b"], "min_days_valid": 7, "owner": "0"}


def test_paths_are_not_expanded(plugin, spec, monkeypatch):
    monkeypatch.setenv("HOME", "/controller-home")
    bm = plugin[0]
    args = {"settings": {}, "config_file": "~/x/valkey.conf", "journal_path": "$HOME/changes.jsonl", "login_unix_socket": "~/s.sock"}
    assert bm.check_options("valkey_config", spec["modules"]["valkey_config"], args) == args


def test_secret_directives_come_from_the_binary(plugin, spec):
    bm = plugin[0]
    directives = frozenset(spec["secret_directives"])
    assert {"primaryuser", "masteruser", "primaryauth", "masterauth", "requirepass"} <= directives
    found = bm.spec_secrets(
        spec["modules"]["valkey_config"]["options"],
        {"settings": {" PrimaryUser ": "repl-user-1", "masterauth": "repl-pass-2", "timeout": "5"}, "login_password": "login-pw-3"},
        directives,
    )
    assert found == {"repl-user-1", "repl-pass-2", "login-pw-3"}


def test_mask_keeps_its_guarantees(plugin):
    mask = plugin[0].mask
    secrets = ["abc", "s3cret-one", "s3cret-one-longer", "zz"]
    result = {"msg": "user s3cret-one-longer and s3cret-one", "list": ["abc", "abcd", {"nested": "x s3cret-one y"}], "n": 5, "k": "zz"}
    assert mask(result, secrets) == {
        "msg": "user ******** and ********",
        "list": ["********", "abcd", {"nested": "x ******** y"}],
        "n": 5,
        "k": "********",
    }


def test_mask_scales(plugin):
    """10,000 users' passwords and their hashes against a result of 10,000
    names: well under a second (the old loop took strings x secrets)."""
    import hashlib
    import time

    mask = plugin[0].mask
    secrets = set()
    for i in range(10000):
        pw = "pw-%08d-%s" % (i, "x" * (i % 40))
        secrets.add(pw)
        secrets.add(hashlib.sha256(pw.encode()).hexdigest())
    result = {"created": ["user%05d" % i for i in range(10000)], "msg": "created pw-00000042-%s" % ("x" * 2)}
    start = time.process_time()
    masked = mask(result, secrets)
    spent = time.process_time() - start
    assert masked["msg"] == "created ********"
    assert masked["created"][:2] == ["user00000", "user00001"]
    assert spent < 1.0, "masking took %.2f s of CPU" % spent


def test_target_paths_reach_the_target_as_written(ansible, write_playbook, tmp_path):
    """`~` and `$HOME` are the target's business: the controller passes them
    on untouched. A literal `$HOME` directory receives the file and the
    journal; a path starting with `~` is refused by the binary, quoting it
    as written (the controller's expansion would have made it absolute)."""
    literal = tmp_path / "$HOME"
    literal.mkdir()
    port = free_port()  # nothing listens: persist file needs no server
    common = {"login_port": port, "persist": "file", "settings": {"timeout": 7}}
    tasks = [
        {
            "name": "tilde",
            "valkeyops.secure.valkey_config": dict(common, config_file="~/x/valkey.conf", journal=False),
            "register": "tilde",
            "ignore_errors": True,
        },
        {
            "name": "literal $HOME",
            "valkeyops.secure.valkey_config": dict(common, config_file=str(literal) + "/valkey.conf", journal_path="%s/$HOME/changes.jsonl" % tmp_path),
            "register": "dollar",
        },
        {"ansible.builtin.copy": {"content": "{{ {'tilde': tilde, 'dollar': dollar} | to_json }}", "dest": str(tmp_path / "out.json"), "mode": "0600"}},
    ]
    pb = write_playbook(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    ansible.playbook(pb)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["tilde"]["msg"] == 'option "config_file": "~/x/valkey.conf" is not an absolute path; nothing was changed'
    assert out["dollar"]["changed"] is True
    assert out["dollar"]["config_file"] == str(literal) + "/valkey.conf"
    assert "timeout 7" in (literal / "valkey.conf").read_text().splitlines()
    assert json.loads((literal / "changes.jsonl").read_text())["module"] == "valkey_config"
    assert not (ansible.home / "x").exists()


@pytest.mark.parametrize("venv_fixture", ["ansible", "ansible_oldest"])
def test_inline_vault_password(request, venv_fixture, valkey, write_playbook, tmp_path):
    """A `!vault` value written in the task itself reaches the module as its
    plain text (an object, not a str, in ansible-core's hands), and is never
    shown."""
    import secrets as _secrets

    ansible = request.getfixturevalue(venv_fixture)
    password = "vault-" + _secrets.token_hex(12)
    vk = valkey()
    vk.cli("CONFIG", "SET", "requirepass", password)
    vk.password = password
    vault_pw = tmp_path / "vault-pw"
    vault_pw.write_text("test-vault-password\n")
    enc = subprocess.run(
        [str(ansible.venv / "bin" / "ansible-vault"), "encrypt_string", "--vault-password-file", str(vault_pw), password, "--name", "login_password"],
        capture_output=True, text=True, check=True, env=ansible.env(),
    ).stdout
    body = "\n".join("        " + line for line in enc.strip().splitlines())
    pb = write_playbook(
        "- hosts: localhost\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - valkeyops.secure.valkey_config:\n"
        "        login_port: %d\n"
        "        settings: {timeout: 42}\n"
        "        journal: false\n"
        "%s\n" % (vk.port, body)
    )
    out = ansible.playbook(pb, "--vault-password-file", str(vault_pw), "-vvv")
    assert vk.get("timeout") == "42"
    assert password not in out.stdout + out.stderr
