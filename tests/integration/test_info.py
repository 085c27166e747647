"""valkey_info through ansible-playbook, from the installed Galaxy tarball,
against a real primary and replica: the fields a playbook decides on, the
same answer in check mode, changed=0, the minimal monitoring user, and no
secret at -vvvv."""

from __future__ import annotations

import json

from conftest import recap, set_waited

PASSWORD = "info-requirepass-Pw-3c9d1a"
MONITOR_PW = "info-monitor-Pw-88e1f0"
DATA_NODE_RULE = "+info +cluster|info"  # modules/info DataNodeRule: the doc and the Go test use it too


def info_task(port, out, **extra):
    return [
        {"name": "Read", "valkeyops.secure.valkey_info": {"login_port": port, **extra}, "register": "r"},
        {"name": "Keep", "ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": str(out)}, "check_mode": False},
    ]


def play(tasks):
    return json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}])


def test_info_reports_the_replication_group(ansible, valkey, write_playbook, tmp_path):
    primary = valkey("repl-ping-replica-period 3600\nrepl-diskless-sync-delay 0\n")
    replica = valkey("replicaof 127.0.0.1 %d\n" % primary.port)
    assert set_waited(primary.port, "k", "v") == "1"
    for vk in (primary, replica):
        vk.cli("CONFIG", "SET", "requirepass", PASSWORD)
        vk.password = PASSWORD
        vk.cli("ACL", "SETUSER", "monitor", "on", ">" + MONITOR_PW, "resetchannels", "-@all", *DATA_NODE_RULE.split())
    p_out, r_out = tmp_path / "p.json", tmp_path / "r.json"
    pb = write_playbook(
        play(info_task(primary.port, p_out, login_user="monitor", login_password=MONITOR_PW) + info_task(replica.port, r_out, login_password=PASSWORD))
    )
    for mode in ([], ["--check"]):
        out = ansible.playbook(pb, "-vvvv", *mode)
        assert recap(out.stdout)["changed"] == 2 and recap(out.stdout)["failed"] == 0  # the two copies; valkey_info: below
        assert PASSWORD not in out.stdout + out.stderr and MONITOR_PW not in out.stdout + out.stderr
        p, r = json.loads(p_out.read_text()), json.loads(r_out.read_text())
        assert p["changed"] is False and r["changed"] is False
        pi, ri = p["info"], r["info"]
        assert (pi["role"], pi["mode"], pi["version"]) == ("primary", "standalone", "8.0.1")
        assert pi["instance"] == "default" and pi["config_file"] == str(primary.conf)
        assert pi["replication"]["connected_replicas"] == 1
        assert [(x["port"], x["state"]) for x in pi["replication"]["replicas"]] == [(replica.port, "online")]
        assert pi["persistence"] == {"loading": False, "bgsave_in_progress": False, "last_bgsave_status": "ok"}
        rr = ri["replication"]
        assert (ri["role"], rr["primary_host"], rr["primary_port"], rr["link_status"]) == ("replica", "127.0.0.1", primary.port, "up")
        assert rr["replica_repl_offset"] == pi["replication"]["primary_repl_offset"] > 0
        p_out.write_text("")  # the check run must write it again
        r_out.write_text("")


def test_a_user_without_the_rule_gets_one_sentence(ansible, valkey, write_playbook, tmp_path):
    vk = valkey()
    vk.cli("ACL", "SETUSER", "blind", "on", ">" + MONITOR_PW, "-@all", "+ping")
    pb = write_playbook(play(info_task(vk.port, tmp_path / "x.json", login_user="blind", login_password=MONITOR_PW)))
    out = ansible.playbook(pb, "-vvvv", check=False)
    assert recap(out.stdout)["failed"] == 1
    want = 'the login user \\"blind\\" may not run INFO server on 127.0.0.1:%d; valkey_info needs a user with the ACL rule \\"%s\\"; nothing was changed' % (
        vk.port,
        DATA_NODE_RULE,
    )
    assert want in out.stdout
    assert MONITOR_PW not in out.stdout + out.stderr


def test_audit_playbook_after_a_failover(ansible, valkey, installed, tmp_path):
    """playbooks/audit.yml on a replica that a failover moved (REPLICAOF + CONFIG REWRITE, as Sentinel
    does), with the inventory's initial primary as desired replicaof: no drift, the job passes, the
    summary says where the replica stands now."""
    p1 = valkey("repl-diskless-sync-delay 0\n")
    p2 = valkey("repl-diskless-sync-delay 0\n")
    replica = valkey("replicaof 127.0.0.1 %d\n" % p1.port)
    assert set_waited(p1.port, "k", "v") == "1"
    replica.cli("REPLICAOF", "NO", "ONE")
    replica.cli("REPLICAOF", "127.0.0.1", str(p2.port))
    replica.cli("CONFIG", "REWRITE")
    assert set_waited(p2.port, "k", "v") == "1"
    pb = installed / "ansible_collections" / "valkeyops" / "secure" / "playbooks" / "audit.yml"
    extra = tmp_path / "vars.json"
    extra.write_text(
        json.dumps(
            {
                "valkey_hosts": "localhost",
                "ansible_become": False,
                "valkey_audit_login_port": replica.port,
                "valkey_audit_fail_on": ["drift"],
                "valkey_audit_desired": {"settings": {"replicaof": "127.0.0.1 %d" % p1.port}},
            }
        )
    )
    out = ansible.playbook(pb, "-e", "@%s" % extra)
    assert recap(out.stdout)["failed"] == 0
    assert "TOPOLOGY replica of 127.0.0.1:%d, link up" % p2.port in out.stdout
    assert "DRIFT directive replicaof" not in out.stdout
