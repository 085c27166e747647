"""Replication groups (issue 15), without a server: a bad group declaration is
refused by site.yml's pre_tasks before anything changes, each problem one
exact sentence and no secret in the output; and the decision of who the
current primary is, which never points a formed group back at the
inventory's initial primary. The group itself runs in molecule's
`replication` scenario (lab4-lab6)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import recap

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "filter"))
import valkey_replication as vr  # noqa: E402

ADMIN = "replication-admin-password-8d1f3b"
REPLICATION = "replication-password-3f9a6c21d"
SENTINEL = "sentinel-auth-password-7c2e91b0"


def _group(**over):
    group = {"name": "main", "members": [{"host": "lab4", "initial_primary": True}, "lab5", "lab6"],
             "sentinels": ["lab4", "lab5", "lab6"], "quorum": 2}
    group.update(over)
    return group


NOTLS = ("replication group main: instance default of this host has no TLS port: the replication password would cross the "
         "network in clear text; give it a tls_port (or set valkey_replication_allow_plaintext=true on a trusted network)")

BAD = [
    ("two initial primaries",
     {"valkey_replication_groups": [_group(members=[{"host": "lab4", "initial_primary": True}, {"host": "lab5", "initial_primary": True}, "lab6"])]},
     "replication group main has 2 initial primaries (lab4, lab5); mark exactly one member with initial_primary: true"),
    ("no initial primary",
     {"valkey_replication_groups": [_group(members=["lab4", "lab5", "lab6"])]},
     "replication group main has no initial primary; mark exactly one member with initial_primary: true"),
    ("a replica of itself",
     {"valkey_replication_groups": [_group(members=[{"host": "lab4", "initial_primary": True}, "lab5", "lab4"])]},
     "replication group main lists lab4 twice: a server cannot be a replica of itself"),
    ("quorum larger than the Sentinels",
     {"valkey_replication_groups": [_group(sentinels=["lab4", "lab5"], quorum=3)]},
     "replication group main: quorum 3 is larger than its 2 Sentinel(s); no failover could ever be agreed"),
    ("a monitor name Sentinel cannot hold",
     {"valkey_replication_groups": [_group(name="main group")]},
     "valkey_replication_groups[0]: name 'main group' is not a name Sentinel can monitor: use 1 to 64 letters, digits, "
     "'.', '-' or '_', starting with a letter or digit"),
    ("a replication user with more rights",
     {"valkey_replication_groups": [_group()],
      "valkey_acl_users": [{"name": "valkeyops-replication", "passwords": [REPLICATION], "commands": ["+@all"], "keys": ["*"]}]},
     "the replication user valkeyops-replication is also listed in valkey_acl_users; it is built with only the rights it "
     "needs, so remove it from that list"),
    ("a member host not in the inventory",
     {"valkey_replication_groups": [_group(members=[{"host": "lab4", "initial_primary": True}, "lab5", "lab9"])]},
     "replication group main: member host 'lab9' is not in the inventory"),
    ("replication without TLS", {"valkey_replication_groups": [_group()], "valkey_tls_enabled": False}, NOTLS),
]


def _run(ansible, tmp_path, extra):
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[valkey]\n" + "\n".join("lab%d ansible_connection=local" % n for n in (4, 5, 6)) + "\n")
    pb = tmp_path / "site.yml"
    pb.write_text(json.dumps([{"import_playbook": "valkeyops.secure.site"}]))
    variables = {"valkey_hosts": "lab4", "valkey_server_admin_password": ADMIN, "valkey_server_install": False,
                 "valkey_tls_enabled": True, "valkey_tls_generate_self_signed": True,
                 "valkey_replication_password": REPLICATION, "valkey_sentinel_auth_password": SENTINEL, "valkey_acl_users": []}
    variables.update(extra)
    return ansible.playbook(pb, "-e", json.dumps(variables), inventory=str(inventory), check=False)


@pytest.mark.parametrize("case,extra,message", BAD, ids=[c[0] for c in BAD])
def test_a_bad_group_is_refused_before_anything_changes(ansible, tmp_path, case, extra, message):
    """site.yml's pre_tasks stop the play with the sentence; no role task ran, and no
    password of the group shows."""
    out = _run(ansible, tmp_path, extra)
    assert out.returncode == 2, out.stdout[-3000:]
    assert recap(out.stdout, "lab4")["changed"] == 0
    assert '"msg": %s' % json.dumps(message + "; nothing was changed") in out.stdout, out.stdout[-3000:]
    assert "valkey_server : " not in out.stdout.split("Refuse a bad replication group")[-1]
    for secret in (ADMIN, REPLICATION, SENTINEL):
        assert secret not in out.stdout + out.stderr


@pytest.mark.parametrize("which,password", [("valkey_replication_password", "changeme"), ("valkey_sentinel_auth_password", "tooShort-7731")])
def test_a_weak_group_password_is_refused(ansible, tmp_path, which, password):
    out = _run(ansible, tmp_path, {"valkey_replication_groups": [_group()], which: password})
    assert out.returncode == 2, out.stdout[-3000:]
    assert recap(out.stdout, "lab4")["changed"] == 0
    assert ("%s must be set, from Ansible Vault, to at least 16 characters and must not be a well-known default "
            "(this host has a member of a replication group); nothing was changed" % which) in out.stdout
    assert password not in out.stdout + out.stderr


# --- the decision: who is the primary now -------------------------------------------------

MEMBERS = [{"host": "lab4", "instance": "default", "initial_primary": True},
           {"host": "lab5", "instance": "default", "initial_primary": False},
           {"host": "lab6", "instance": "default", "initial_primary": False}]
ADDR = {"lab4": "10.0.0.4", "lab5": "10.0.0.5", "lab6": "10.0.0.6"}


def _state(host, role, follows=None, replicas=0, link="up"):
    s = {"group": "main", "host": host, "instance": "default", "address": ADDR[host], "port": 6380, "role": role,
         "connected_slaves": str(replicas), "initial_primary": host == "lab4"}
    if follows:
        s.update(master_host=ADDR[follows], master_port="6380", master_link_status=link)
    return s


MEMBER = {"group": "main", "members": MEMBERS}

DECISIONS = [
    ("a new group: the initial primary", [_state("lab4", "master"), _state("lab5", "master"), _state("lab6", "master")], "lab4", ""),
    ("formed", [_state("lab4", "master", replicas=2), _state("lab5", "slave", "lab4"), _state("lab6", "slave", "lab4")], "lab4", ""),
    # lab4 died, Sentinel promoted lab5: lab4 is not in the play, nothing points back at it.
    ("after a failover", [_state("lab5", "master", replicas=1), _state("lab6", "slave", "lab5")], "lab5", ""),
    # lab4 back before Sentinel converted it: a primary without replicas, not the group's.
    ("the old primary back", [_state("lab4", "master"), _state("lab5", "master", replicas=1), _state("lab6", "slave", "lab5")], "lab5", ""),
    # The replicas lost their primary for a moment (link down): still the one they follow.
    ("links down", [_state("lab4", "master"), _state("lab5", "slave", "lab4", link="down"), _state("lab6", "slave", "lab4", link="down")],
     "lab4", ""),
    ("replicas of a primary outside the play", [_state("lab5", "slave", "lab4"), _state("lab6", "slave", "lab4")], None, ""),
    ("split", [_state("lab4", "master", replicas=1), _state("lab5", "slave", "lab4"), _state("lab6", "master", replicas=1)], None,
     "replication group main has 2 primaries (lab4, lab6); nothing was changed: move the group to one primary with playbooks/switchover.yml"),
    ("a new group without its initial primary", [_state("lab5", "master"), _state("lab6", "master")], None,
     "replication group main has not formed yet and its initial primary lab4 is not in this play; run the play on it too; nothing was changed"),
]


@pytest.mark.parametrize("case,states,primary,problem", DECISIONS, ids=[c[0] for c in DECISIONS])
def test_the_current_primary_is_discovered_never_the_inventorys(case, states, primary, problem):
    got = vr.valkey_replication_primary(states, MEMBER)
    assert got["problem"] == problem
    assert (got["primary"] or {}).get("label") == primary


def test_the_users_a_member_gets_are_least_privilege():
    creds = {"replication_user": "r", "replication_passwords": ["p" * 16], "sentinel_user": "s", "sentinel_passwords": ["q" * 16]}
    entries = vr.valkey_replication_acl_entries([_group()], "lab5", "default", creds)
    assert entries[0] == {"name": "r", "passwords": ["p" * 16], "commands": ["+psync", "+replconf", "+ping"]}
    assert entries[1]["name"] == "s" and entries[1]["channels"] == ["allchannels"] and "keys" not in entries[1]
    assert vr.valkey_replication_acl_entries([_group(sentinels=[], quorum=None)], "lab5", "default", creds)[1:] == []
    assert vr.valkey_replication_acl_entries([_group()], "lab5", "store", creds) == []


def test_the_group_user_names_agree_everywhere():
    """The replication and Sentinel user names are read where the role's defaults are not
    loaded (valkey_acl, valkey_audit, rotate_credentials.yml), with a fallback there: every
    fallback must be the owning role's default."""
    import re

    import yaml

    root = Path(__file__).resolve().parents[2]
    replication = yaml.safe_load((root / "roles/valkey_replication/defaults/main.yml").read_text())["valkey_replication_user"]
    sentinel = yaml.safe_load((root / "roles/valkey_sentinel/defaults/main.yml").read_text())["valkey_sentinel_auth_user"]
    files = ["roles/valkey_acl/tasks/converge.yml", "roles/valkey_audit/tasks/audit_instance.yml",
             "playbooks/rotate_credentials.yml", "roles/valkey_replication/vars/main.yml"]
    seen = 0
    for f in files:
        text = (root / f).read_text()
        for var, want in (("valkey_replication_user", replication), ("valkey_sentinel_auth_user", sentinel)):
            for got in re.findall(r"%s \| default\('([^']*)'\)" % var, text):
                assert got == want, "%s: %s falls back to %r, the role's default is %r" % (f, var, got, want)
                seen += 1
    assert seen >= 6


# --- the decision with the group's Sentinels ---------------------------------------------

def _view(sentinel, primary, replicas=("lab5", "lab6")):
    return {"group": "main", "sentinel": sentinel, "primary": {"address": ADDR[primary], "port": 6380},
            "replicas": [{"address": ADDR[r], "port": 6380, "flags": ["slave"]} for r in replicas],
            "sentinels": []}


FORMED = [_state("lab4", "master", replicas=2), _state("lab5", "slave", "lab4"), _state("lab6", "slave", "lab4")]
SENTINEL_DECISIONS = [
    ("the Sentinels agree with the members", FORMED, [_view(s, "lab4") for s in ("lab4", "lab5", "lab6")], "lab4", ""),
    # lab6 is new: a primary of nothing that no Sentinel knows; it joins the Sentinels' primary.
    ("a new member", FORMED[:2] + [_state("lab6", "master")], [_view(s, "lab4", ["lab5"]) for s in ("lab4", "lab5")], "lab4", ""),
    # After a failover the Sentinels name lab5, whatever lab4 (back, not converted yet) says of itself.
    ("a Sentinel split", FORMED, [_view("lab4", "lab4"), _view("lab5", "lab5"), _view("lab6", "lab5")], None,
     "replication group main: its Sentinels disagree on the primary (lab4 says 10.0.0.4:6380; lab5, lab6 say 10.0.0.5:6380); "
     "nothing was changed: wait until the failover has finished, then run the play again"),
    ("a replica that claims the primary", [FORMED[0], FORMED[1], _state("lab6", "master")], [_view(s, "lab4") for s in ("lab4", "lab5")], None,
     "replication group main: its Sentinels (lab4, lab5) say the primary is lab4 (10.0.0.4:6380), but lab6 says it is a primary; "
     "nothing was changed: make it a replica again (Sentinel does it by itself within seconds) or move the primary with "
     "playbooks/switchover.yml"),
    ("the old primary back, not converted yet", [_state("lab4", "master"), _state("lab5", "master", replicas=1), _state("lab6", "slave", "lab5")],
     [_view("lab5", "lab5", ["lab4", "lab6"])], None,
     "replication group main: its Sentinel (lab5) says the primary is lab5 (10.0.0.5:6380), but lab4 says it is a primary; nothing "
     "was changed: make it a replica again (Sentinel does it by itself within seconds) or move the primary with playbooks/switchover.yml"),
    ("the named primary is a replica", [_state("lab4", "slave", "lab5"), _state("lab5", "master", replicas=1), _state("lab6", "slave", "lab5")],
     [_view("lab5", "lab4")], None,
     "replication group main: its Sentinel (lab5) says the primary is lab4 (10.0.0.4:6380), but lab4 says it is a replica of "
     "10.0.0.5:6380; nothing was changed"),
    ("a primary outside the play", [_state("lab5", "slave", "lab4"), _state("lab6", "slave", "lab4")], [_view("lab5", "lab4")],
     "10.0.0.4:6380", ""),
]


@pytest.mark.parametrize("case,states,views,primary,problem", SENTINEL_DECISIONS, ids=[c[0] for c in SENTINEL_DECISIONS])
def test_the_current_primary_comes_from_the_sentinels_cross_checked(case, states, views, primary, problem):
    got = vr.valkey_replication_primary(states, MEMBER, views)
    assert got["problem"] == problem
    assert (got["primary"] or {}).get("label") == primary


def test_every_host_of_a_group_decides_and_a_sentinel_view_is_read_from_valkey_info():
    info = {"sentinel": {"monitors": [{"name": "main", "primary": {"host": ADDR["lab4"], "port": 6380},
                                       "replicas": [{"host": ADDR["lab5"], "port": 6380, "flags": ["slave"]}],
                                       "sentinels": [{"host": "10.0.0.6", "port": 26379, "flags": ["sentinel"]}]},
                                      {"name": "other", "primary": {"host": "10.9.9.9", "port": 6379}, "replicas": [], "sentinels": []}]}}
    views = vr.valkey_replication_sentinel_views(info, "lab5", [_group()])
    assert views == [{"group": "main", "sentinel": "lab5", "primary": {"address": ADDR["lab4"], "port": 6380},
                      "replicas": [{"address": ADDR["lab5"], "port": 6380, "flags": ["slave"]}],
                      "sentinels": [{"address": "10.0.0.6", "port": 26379, "flags": ["sentinel"]}]}]
    assert vr.valkey_replication_sentinel_views(info, "lab9", [_group()]) == []
    assert vr.valkey_replication_sentinel_views({}, "lab5", [_group()]) == []
    # A Sentinel-only host reaches the members' decision: the whole group stops together.
    group = _group(members=[{"host": "lab4", "initial_primary": True}, "lab5"], sentinels=["lab4", "lab5", "lab7"])
    split = [dict(_view("lab4", "lab4"), sentinel="lab4"), dict(_view("lab5", "lab5"), sentinel="lab7")]
    decisions = {h: vr.valkey_replication_decisions([group], h, FORMED[:2], split) for h in ("lab4", "lab5", "lab7")}
    assert len({json.dumps(d, sort_keys=True) for d in decisions.values()}) == 1
    assert decisions["lab7"]["main"]["problem"].startswith("replication group main: its Sentinels disagree on the primary")
    assert vr.valkey_replication_decisions([group], "lab9", FORMED, split) == {}


def test_a_sentinel_is_reset_only_while_it_lists_the_removed_replica():
    removed = {"address": ADDR["lab6"], "port": 6380}
    view = _view("lab4", "lab4", ["lab5", "lab6"])
    view["replicas"].append({"address": "10.0.0.8", "port": 6380, "flags": ["s_down", "slave"]})
    view["sentinels"] = [{"address": "10.0.0.5", "port": 26379, "flags": ["sentinel"]},
                         {"address": "10.0.0.7", "port": 26379, "flags": ["s_down", "sentinel"]}]
    plan = vr.valkey_replication_reset_plan(view, removed)
    # What it must learn again: the healthy ones, not the removed replica nor what is down.
    assert plan == {"reset": True, "replicas": ["10.0.0.5:6380"], "sentinels": ["10.0.0.5:26379"]}
    assert vr.valkey_replication_reset_plan(_view("lab4", "lab4", ["lab5"]), removed)["reset"] is False
    assert vr.valkey_replication_reset_plan(None, removed)["reset"] is False
    # Done when the removed one is gone and the rest are back.
    after = _view("lab4", "lab4", ["lab5"])
    assert not vr.valkey_replication_reset_done(after, plan, removed)  # the Sentinels not yet
    after["sentinels"] = [{"address": "10.0.0.5", "port": 26379, "flags": ["sentinel"]}]
    assert vr.valkey_replication_reset_done(after, plan, removed)
    assert not vr.valkey_replication_reset_done(dict(after, replicas=view["replicas"]), plan, removed)  # still lists lab6
    assert not vr.valkey_replication_reset_done(None, plan, removed)
