"""valkey_audit and playbooks/audit.yml through ansible-playbook, from the
installed Galaxy tarball, against real servers: a short summary per host,
fail_on, drift, and no secret at -vvvv."""

from __future__ import annotations

import json

from conftest import recap

PASSWORD = "audit-requirepass-Pw-6b3f0e"


def _audit_playbook(installed):
    return installed / "ansible_collections" / "valkeyops" / "secure" / "playbooks" / "audit.yml"


def _vars(tmp_path, **extra):
    p = tmp_path / "vars.json"
    report = str(tmp_path / "reports" / "audit.html")
    p.write_text(json.dumps({"valkey_hosts": "localhost", "ansible_become": False, "valkey_audit_report_path": report, **extra}))
    return "@%s" % p


def test_audit_playbook_prints_a_short_summary_and_fails_on_high(ansible, valkey, installed, tmp_path):
    vk = valkey("enable-debug-command yes\n")
    vk.cli("CONFIG", "SET", "requirepass", PASSWORD)  # after start: the fixture pings without a password
    vk.password = PASSWORD
    pb = _audit_playbook(installed)
    common = {"valkey_audit_login_port": vk.port, "valkey_audit_login_password": PASSWORD}

    # Report only: the job passes and shows one line plus the findings.
    out = ansible.playbook(pb, "-e", _vars(tmp_path, valkey_audit_fail_on=["never"], **common))
    # ok: start with no failed instance, make the run's compare key, include the one instance's
    # tasks, audit, summary, remember its result; the run's report (its directory, the report,
    # set_stats, where it is); the host's verdict over its instances. The report is the job's
    # output: still changed=0.
    assert recap(out.stdout) == {"ok": 11, "changed": 0, "unreachable": 0, "failed": 0}
    assert (tmp_path / "reports" / "audit.html").stat().st_mode & 0o777 == 0o600
    assert "valkey 8.0.1 at 127.0.0.1:%d: " % vk.port in out.stdout
    assert "HIGH VK-008 enable-debug-command is" in out.stdout

    # The default threshold (drift, high) fails the host, and still prints the summary.
    out = ansible.playbook(pb, "-vvvv", "-e", _vars(tmp_path, **common), check=False)
    assert out.returncode != 0
    assert recap(out.stdout)["failed"] == 1
    assert "fails the audit (fail_on: drift, high)" in out.stdout
    assert "VK-008" in out.stdout
    assert PASSWORD not in out.stdout + out.stderr


def test_audit_reports_drift_and_fails_on_drift(ansible, valkey, write_playbook, tmp_path):
    vk = valkey()
    vk.cli("CONFIG", "SET", "maxmemory", "200mb")  # runtime only: the file says 100mb
    vk.cli("ACL", "SETUSER", "intruder", "on", ">intruder-Pw-1", "~*", "+@all")
    pb = write_playbook(
        f"""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - name: Audit
              valkeyops.secure.valkey_audit:
                login_port: {vk.port}
                fail_on: drift
                desired:
                  settings:
                    maxmemory: 100mb
                    requirepass: "desired-secret-Pw-2"
                  users:
                    - name: default
              register: r
              ignore_errors: true
            - name: Keep the result
              ansible.builtin.copy:
                content: "{{{{ r | to_json }}}}"
                dest: "{{{{ playbook_dir }}}}/result.json"
                mode: "0600"
        """
    )
    out = ansible.playbook(pb, "-vvvv")
    res = json.loads((pb.parent / "result.json").read_text())
    assert res["failed"] is True and res["changed"] is False
    assert res["drift"]["settings"]["maxmemory"] == {
        "desired": "104857600", "runtime": "209715200", "file": "104857600", "differs": ["runtime"]}
    assert res["drift"]["users"]["intruder"]["differs"] == ["runtime"]
    assert "maxmemory" in res["msg"] and "intruder" in res["msg"]
    assert "desired-secret-Pw-2" not in out.stdout + out.stderr
    assert res["drift"]["settings"]["requirepass"]["desired"] == "********"


def test_audit_bad_policy_names_file_line_and_rule(ansible, valkey, write_playbook):
    vk = valkey()
    pb = write_playbook(
        f"""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - name: Audit with a broken policy
              valkeyops.secure.valkey_audit:
                login_port: {vk.port}
                policy: |
                  version: 1
                  rules:
                    - id: SITE-001
                      severity: urgent
        """
    )
    out = ansible.playbook(pb, check=False)
    assert out.returncode != 0
    assert 'invalid policy policy (option):4: rule SITE-001: severity \\"urgent\\" is not one of low, medium, high, critical' in out.stdout
