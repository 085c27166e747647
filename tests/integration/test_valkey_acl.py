"""valkey_acl through ansible-playbook against real servers (with an aclfile,
and with only a config file): create, change, idempotence, check mode, what
each created user can and cannot do, exclusive, bootstrap and the lockout
guard, update_password, selectors, rollback on a read-only aclfile, bad
input, and a random password searched for everywhere."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from conftest import recap


def acl_server(valkey, tmp_path, name="acl"):
    d = tmp_path / name
    d.mkdir()
    f = d / "users.acl"
    f.write_text("")
    return valkey("aclfile %s\n" % f), f


def as_user(vk, user, password, *args):
    """Run one command as user; return its output (NOPERM... when denied)."""
    env = dict(os.environ, REDISCLI_AUTH=password)
    out = subprocess.run(
        ["valkey-cli", "-h", "127.0.0.1", "-p", str(vk.port), "--user", user, "--no-auth-warning", *args],
        capture_output=True, text=True, env=env, timeout=10,
    )
    return (out.stdout + out.stderr).strip()


def allowed(vk, user, password, *args):
    out = as_user(vk, user, password, *args)
    assert "WRONGPASS" not in out, "cannot log in as %s" % user
    return not out.startswith("NOPERM")


def acl_list(vk):
    return vk.cli("ACL", "LIST")


def playbook(port, tasks, extra_vars_file=None):
    return json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}])


def keep(name):
    return {
        "ansible.builtin.copy": {"content": "{{ %s | to_json }}" % name, "dest": "{{ playbook_dir }}/%s.json" % name, "mode": "0600"},
        "check_mode": False,
        "changed_when": False,
    }


def users_task(port, users, **extra):
    args = {"login_port": port, "users": users}
    args.update(extra)
    return {"name": "ACL users", "valkeyops.secure.valkey_acl": args, "register": "acl"}


def app_users(app_pw, ro_pw):
    return [
        {
            "name": "app",
            "passwords": [app_pw],
            "keys": ["app:*", "%R~shared:*"],
            "channels": ["app-events"],
            "commands": ["+@read", "+@write", "-@dangerous", "+client|setname", "+publish"],
            "selectors": [{"keys": ["%R~report:*"], "commands": ["+hgetall"]}],
        },
        {"name": "reader", "passwords": [ro_pw], "keys": ["allkeys"], "commands": ["+@read", "-keys"]},
    ]


@pytest.mark.parametrize("where", ["aclfile", "config"])
def test_create_check_idempotent_and_rights(ansible, valkey, write_playbook, tmp_path, where):
    if where == "aclfile":
        vk, saved = acl_server(valkey, tmp_path)
    else:
        vk = valkey()
        saved = vk.conf
    app_pw, ro_pw = "app-" + secrets.token_hex(8), "ro-" + secrets.token_hex(8)
    pb = write_playbook(playbook(vk.port, [users_task(vk.port, app_users(app_pw, ro_pw)), keep("acl")]))
    before = (acl_list(vk), saved.read_bytes())

    out = ansible.playbook(pb, "--check", "--diff")
    assert recap(out.stdout)["changed"] == 1
    assert (acl_list(vk), saved.read_bytes()) == before, "check mode changed the server or the file"
    planned = json.loads((pb.parent / "acl.json").read_text())
    assert "passwords: 1" in out.stdout and "+user app" not in out.stdout

    out = ansible.playbook(pb, "--diff")
    assert recap(out.stdout)["changed"] == 1
    res = json.loads((pb.parent / "acl.json").read_text())
    for key in ("created", "updated", "deleted", "changed"):
        assert planned[key] == res[key], key
    assert res["created"] == ["app", "reader"]
    assert res["persisted_to"] == str(saved)
    text = saved.read_text()
    assert "user app on sanitize-payload #" + hashlib.sha256(app_pw.encode()).hexdigest() in text
    assert app_pw not in text

    # Each user can do exactly what its rules say.
    assert allowed(vk, "app", app_pw, "SET", "app:1", "v")
    assert allowed(vk, "app", app_pw, "GET", "shared:1")
    assert not allowed(vk, "app", app_pw, "SET", "shared:1", "v")
    assert not allowed(vk, "app", app_pw, "GET", "other:1")
    assert not allowed(vk, "app", app_pw, "FLUSHALL")
    assert not allowed(vk, "app", app_pw, "CONFIG", "GET", "maxmemory")
    assert allowed(vk, "app", app_pw, "CLIENT", "SETNAME", "x")
    assert not allowed(vk, "app", app_pw, "CLIENT", "LIST")
    assert allowed(vk, "app", app_pw, "PUBLISH", "app-events", "x")
    assert not allowed(vk, "app", app_pw, "PUBLISH", "other", "x")
    assert allowed(vk, "app", app_pw, "HGETALL", "report:1"), "through the selector"
    assert not allowed(vk, "app", app_pw, "HSET", "report:1", "f", "v")
    assert allowed(vk, "reader", ro_pw, "GET", "anything")
    assert not allowed(vk, "reader", ro_pw, "SET", "anything", "v")
    assert not allowed(vk, "reader", ro_pw, "KEYS", "*")
    assert "WRONGPASS" in as_user(vk, "app", ro_pw, "PING")

    # Second run: nothing to do, nothing saved.
    after = saved.read_bytes()
    out = ansible.playbook(pb)
    assert recap(out.stdout)["changed"] == 0
    assert saved.read_bytes() == after
    res = json.loads((pb.parent / "acl.json").read_text())
    assert res["created"] == [] and res["updated"] == [] and res["persisted_to"] == ""

    # A change: reader may now write.
    users = app_users(app_pw, ro_pw)
    users[1]["commands"] = ["+@read", "+set"]
    pb2 = write_playbook(playbook(vk.port, [users_task(vk.port, users), keep("acl")]), "change.yml")
    out = ansible.playbook(pb2)
    assert recap(out.stdout)["changed"] == 1
    assert json.loads((pb.parent / "acl.json").read_text())["updated"] == ["reader"]
    assert allowed(vk, "reader", ro_pw, "SET", "anything", "v")


def test_exclusive_purges_unknown_users(ansible, valkey, write_playbook, tmp_path):
    vk, saved = acl_server(valkey, tmp_path)
    vk.cli("ACL", "SETUSER", "intruder", "on", ">intruder-pass", "+@all", "~*")
    pb = write_playbook(
        playbook(vk.port, [users_task(vk.port, [{"name": "app", "nopass": True, "commands": ["+ping"]}], exclusive=True), keep("acl")])
    )
    out = ansible.playbook(pb)
    assert recap(out.stdout)["changed"] == 1
    res = json.loads((pb.parent / "acl.json").read_text())
    assert res["deleted"] == ["intruder"] and res["created"] == ["app"]
    assert "nopass: anyone can log in" in out.stdout + out.stderr
    assert "intruder" not in acl_list(vk) and "intruder" not in saved.read_text()
    assert "user default on nopass" in acl_list(vk), "default is left alone when not listed"
    assert recap(ansible.playbook(pb).stdout)["changed"] == 0


def test_bootstrap_in_one_task_then_lockout_refused(ansible, valkey, write_playbook, tmp_path):
    vk, saved = acl_server(valkey, tmp_path)
    admin_pw = "adm-" + secrets.token_hex(8)
    users = [
        {"name": "admin", "passwords": [admin_pw], "keys": ["allkeys"], "channels": ["allchannels"], "commands": ["allcommands"]},
        {"name": "default", "enabled": False},
    ]
    pb = write_playbook(playbook(vk.port, [users_task(vk.port, users)]))
    out = ansible.playbook(pb)
    assert recap(out.stdout)["changed"] == 1
    assert "user default off sanitize-payload resetchannels -@all" in saved.read_text()
    vk.password = None
    assert "NOAUTH" in subprocess.run(["valkey-cli", "-p", str(vk.port), "PING"], capture_output=True, text=True).stdout

    # The next run logs in as the admin and reports no change.
    as_admin = users_task(vk.port, users, login_user="admin", login_password=admin_pw)
    pb = write_playbook(playbook(vk.port, [as_admin]), "second.yml")
    assert recap(ansible.playbook(pb).stdout)["changed"] == 0

    # Taking the admin's own rights away is refused, with nothing changed.
    before = (as_user(vk, "admin", admin_pw, "ACL", "LIST"), saved.read_bytes())
    lock = users_task(vk.port, [{"name": "admin", "passwords": [admin_pw], "commands": ["+@read"]}], login_user="admin", login_password=admin_pw)
    pb = write_playbook(playbook(vk.port, [lock]), "lock.yml")
    out = ansible.playbook(pb, check=False)
    assert out.returncode != 0
    assert "refusing the change: afterwards no enabled user that can log in (with a password, or nopass) could run ACL SETUSER" in out.stdout
    assert (as_user(vk, "admin", admin_pw, "ACL", "LIST"), saved.read_bytes()) == before


def test_update_password_on_create(ansible, valkey, write_playbook, tmp_path):
    vk, _ = acl_server(valkey, tmp_path)
    first, second = "one-" + secrets.token_hex(8), "two-" + secrets.token_hex(8)
    task = {
        "name": "svc",
        "valkeyops.secure.valkey_acl": {"login_port": vk.port, "name": "svc", "passwords": ["{{ pw }}"], "update_password": "on_create", "commands": ["+ping"]},
    }
    pb = write_playbook(playbook(vk.port, [task]))
    assert recap(ansible.playbook(pb, "-e", "pw=" + first).stdout)["changed"] == 1
    assert recap(ansible.playbook(pb, "-e", "pw=" + second).stdout)["changed"] == 0
    assert allowed(vk, "svc", first, "PING")
    assert "WRONGPASS" in as_user(vk, "svc", second, "PING")


def test_rollback_when_the_aclfile_is_read_only(ansible, valkey, write_playbook, tmp_path):
    acl_dir = tmp_path / "ro"
    acl_dir.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(acl_dir)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        aclfile = acl_dir / "users.acl"
        aclfile.write_text("user keep on nopass ~k:* resetchannels -@all +get\n")
        vk = valkey("aclfile %s\n" % aclfile)
        vk.cli("ACL", "SETUSER", "stray", "on", "nopass", "+ping")
        subprocess.run(["mount", "-o", "remount,ro", str(acl_dir)], check=True)
        before = (acl_list(vk), aclfile.read_bytes())
        users = [{"name": "keep", "nopass": True, "keys": ["k:*"], "commands": ["+get", "+set"]}, {"name": "new", "nopass": True, "commands": ["+ping"]}]
        pb = write_playbook(playbook(vk.port, [users_task(vk.port, users, exclusive=True)]))
        out = ansible.playbook(pb, check=False)
        assert out.returncode != 0
        assert "failed to save the users to %s (ACL SAVE: " % aclfile in out.stdout
        assert "the users were restored to their state before the task; nothing was changed" in out.stdout
        assert (acl_list(vk), aclfile.read_bytes()) == before
    finally:
        subprocess.run(["umount", "-l", str(acl_dir)])


CATS = "admin, bitmap, blocking, connection, dangerous, fast, geo, hash, hyperloglog, keyspace, list, pubsub, read, scripting, set, slow, sortedset, stream, string, transaction, write"
BAD_INPUTS = [
    ("unknown command", {"name": "app", "commands": ["+gett"]}, 'user "app": command rule "+gett": unknown command "gett"; nothing was changed'),
    ("unknown category", {"name": "app", "commands": ["+@reed"]}, 'user "app": command rule "+@reed": unknown category "reed" (the server knows %s); nothing was changed' % CATS),
    ("unknown subcommand", {"name": "app", "commands": ["+client|nosuch"]}, 'user "app": command rule "+client|nosuch": unknown subcommand "nosuch" of command "client"; nothing was changed'),
    ("rule without sign", {"name": "app", "commands": ["get"]}, 'user "app": command rule "get": a command rule starts with + or -'),
    ("key pattern in commands", {"name": "app", "commands": ["~*"]}, "key patterns go in keys; nothing was changed"),
    ("bad key permission", {"name": "app", "keys": ["%X~a"]}, 'user "app": key pattern "%X~a": not a valid rule'),
    ("key with a space", {"name": "app", "keys": ["a b"]}, 'user "app": key pattern "a b": patterns cannot contain spaces or control characters; nothing was changed'),
    ("key after allkeys", {"name": "app", "keys": ["allkeys", "a:*"]}, 'user "app": key pattern "a:*": comes after the pattern that already allows everything'),
    ("selector rule", {"name": "app", "selectors": [{"commands": ["+nosuch"]}]}, 'user "app": selector 1: command rule "+nosuch": unknown command "nosuch"; nothing was changed'),
    ("malformed hash", {"name": "app", "password_hashes": ["abc123"]}, 'user "app": password_hashes item 1 is not a SHA-256 hash (64 hexadecimal characters); nothing was changed'),
    ("duplicate names", {"users": [{"name": "dup"}, {"name": "dup"}]}, 'user "dup" is listed twice; give each user once; nothing was changed'),
    ("absent with fields", {"users": [{"name": "gone", "state": "absent", "commands": ["+get"]}]}, 'user "gone": state absent takes no other field, but commands is given; nothing was changed'),
    ("delete default", {"name": "default", "state": "absent"}, 'user "default": the default user cannot be deleted; use enabled: false to disable it; nothing was changed'),
    ("nopass with passwords", {"name": "app", "nopass": True, "passwords": ["x-pass-1"]}, 'user "app": nopass and passwords/password_hashes exclude each other; nothing was changed'),
    ("name and users", {"name": "x", "users": [{"name": "y"}]}, "give either name (one user) or users (a list of users), not both; nothing was changed"),
    ("neither name nor users", {"keys": ["a"]}, 'option "keys" needs name (or use users, a list of users); nothing was changed'),
    ("one bad among good", {"users": [{"name": "good", "commands": ["+get"]}, {"name": "bad", "commands": ["+@nope"]}]}, 'user "bad": command rule "+@nope": unknown category "nope"'),
    ("unknown option", {"name": "app", "passwrd": ["x"]}, "unsupported option for valkey_acl: passwrd; valid options: allow_lockout, channels, commands"),
    ("unknown suboption", {"users": [{"name": "app", "key": ["a"]}]}, "unsupported option for valkey_acl: users[0].key; valid options in users[0]: channels, commands"),
    ("bad state", {"name": "app", "state": "gone"}, 'option "state": "gone" is not one of present, absent; nothing was changed'),
    ("bad persist", {"name": "app", "persist": "disk"}, 'option "persist": "disk" is not one of auto, aclfile, config, none; nothing was changed'),
    ("persist config with an aclfile", {"name": "app", "persist": "config"}, "persist: config, but the server keeps its users in the aclfile"),
]


def test_bad_input_fails_clearly_and_changes_nothing(ansible, valkey, write_playbook, tmp_path):
    vk, saved = acl_server(valkey, tmp_path)
    vk.cli("ACL", "SETUSER", "gone", "on", "nopass")
    before = (acl_list(vk), saved.read_bytes())
    tasks = []
    for i, (name, args, _) in enumerate(BAD_INPUTS):
        args = dict(args, login_port=vk.port)
        tasks.append({"name": name, "valkeyops.secure.valkey_acl": args, "register": "r%d" % i, "ignore_errors": True})
    collect = "{" + ", ".join('"r%d": r%d' % (i, i) for i in range(len(BAD_INPUTS))) + "}"
    tasks.append({"ansible.builtin.copy": {"content": "{{ %s | to_json }}" % collect, "dest": "{{ playbook_dir }}/result.json", "mode": "0600"}, "changed_when": False})
    pb = write_playbook(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    ansible.playbook(pb)
    results = json.loads((pb.parent / "result.json").read_text())
    assert (acl_list(vk), saved.read_bytes()) == before, "a bad input changed the server or the aclfile"
    for i, (name, _, fragment) in enumerate(BAD_INPUTS):
        r = results["r%d" % i]
        assert r.get("failed") is True, name
        assert fragment in r["msg"], "%s: %r lacks %r" % (name, r["msg"], fragment)
        assert "Traceback" not in r["msg"], name
        assert r.get("changed") is False, name
        assert "x-pass-1" not in r["msg"]


def test_random_password_never_shown_nor_left_anywhere(ansible, valkey, write_playbook, tmp_path):
    vk, saved = acl_server(valkey, tmp_path)
    vk.cli("CONFIG", "SET", "loglevel", "debug")
    pw = "pw-" + secrets.token_hex(16)
    digest = hashlib.sha256(pw.encode()).hexdigest()
    other = hashlib.sha256(secrets.token_bytes(16)).hexdigest()
    controller = tmp_path / "controller"
    controller.mkdir()
    vars_file = controller / "secrets.json"
    vars_file.write_text(json.dumps({"pw": pw, "other": other}))
    user = {"name": "app", "passwords": ["{{ pw }}"], "password_hashes": ["{{ other }}"], "commands": ["+ping"]}
    tasks = [
        dict(users_task(vk.port, [user]), check_mode=True),
        users_task(vk.port, [user]),
        users_task(vk.port, [user]),
        {"name": "top level", "valkeyops.secure.valkey_acl": {"login_port": vk.port, "name": "app2", "passwords": ["{{ pw }}"], "commands": ["+ping"]}},
        dict(users_task(vk.port, [dict(user, commands=["+ping", "+nosuch"])]), ignore_errors=True),
        dict(users_task(vk.port, [dict(user, password_hashes=["{{ pw }}"])]), ignore_errors=True),
    ]
    pb = write_playbook(playbook(vk.port, tasks))
    out = ansible.playbook(pb, "-vvvv", "--diff", "-e", "@" + str(vars_file))
    text = out.stdout + out.stderr
    for s in (pw, digest, other):
        assert s not in text, "a secret leaked into the output"
    assert "passwords: 2" in text
    assert recap(out.stdout)["changed"] == 3  # check mode, real run, app2
    assert allowed(vk, "app", pw, "PING")
    for path in tmp_path.rglob("*"):
        if not path.is_file() or path.is_symlink() or controller in path.parents or path == saved:
            continue
        data = path.read_bytes()
        for s in (pw,):
            assert s.encode() not in data, "the password was found in %s" % path
    assert pw not in vk.log.read_text()
