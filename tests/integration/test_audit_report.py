"""The report of a whole audit run: playbooks/audit.yml under ansible-runner (the
engine AWX runs jobs with) against real servers, its set_stats in the runner's
artifacts, and the HTML page opened in a real headless chromium: it renders
without a console error, the counts it shows are the JSON result's, a known
failing cell shows as failing, markup planted in a user name stays text, and
no secret is in the HTML, JSON, JUnit or SARIF."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import free_port

PASSWORD = "report-requirepass-Pw-4c1d9e"
EVIL_USER = "<script>alert(1)</script>"
EVIL_PW = "report-evil-user-Pw-88e07a"
SECRETS = (PASSWORD, EVIL_PW)

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make system-deps)")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from check_report import Page, check, chromium  # noqa: E402  (the script molecule's verify runs too)


@needs_chromium
def test_the_console_check_sees_a_blocked_script(tmp_path):
    """The check below can fail: an inline script under the report's kind of
    CSP is blocked and said on the console."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\">"
                    "</head><body><script>console.log(1)</script></body></html>")
    _, console = chromium(page, "--dump-dom")
    assert len(console) == 1 and "Content Security Policy" in console[0], console


def _runner_dir(tmp_path: Path, hosts: dict, extravars: dict, envvars: dict) -> Path:
    pdd = tmp_path / "runner"
    (pdd / "project").mkdir(parents=True)
    (pdd / "inventory").mkdir()
    (pdd / "env").mkdir()
    # How an AWX project uses the collection's playbook.
    (pdd / "project" / "audit.yml").write_text("---\n- name: The collection's audit\n  ansible.builtin.import_playbook: valkeyops.secure.audit\n")
    (pdd / "inventory" / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"valkey": {"hosts": hosts}}}}))
    (pdd / "env" / "extravars").write_text(json.dumps(extravars))
    (pdd / "env" / "envvars").write_text(json.dumps(envvars))
    return pdd


def _stats_artifacts(pdd: Path) -> dict:
    """The set_stats data of the run, where AWX reads it: the playbook_on_stats event."""
    events = sorted((pdd / "artifacts").glob("*/job_events/*.json"))
    for path in events:
        event = json.loads(path.read_text())
        if event.get("event") == "playbook_on_stats":
            return event["event_data"].get("artifact_data", {})
    raise AssertionError("no playbook_on_stats event among %d events" % len(events))


@needs_chromium
def test_audit_run_report_under_ansible_runner_in_chromium(ansible, valkey, tmp_path):
    weak = valkey("enable-debug-command yes\n")  # fails VK-008
    weak.cli("ACL", "SETUSER", EVIL_USER, "on", ">" + EVIL_PW, "~*", "+@all")  # markup in a user name
    strong = valkey()
    for vk in (weak, strong):
        vk.cli("CONFIG", "SET", "requirepass", PASSWORD)
        vk.password = PASSWORD
    report = tmp_path / "reports" / "audit.html"
    hosts = {
        "weak": {"ansible_connection": "local", "valkey_audit_login_port": weak.port},
        "strong": {"ansible_connection": "local", "valkey_audit_login_port": strong.port},
        # No sshd there: unreachable, so never audited; the report says so.
        "gone": {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": free_port()},
    }
    extravars = {"valkey_audit_login_password": PASSWORD, "valkey_audit_fail_on": ["never"], "ansible_become": False,
                 "valkey_audit_desired": {"users": [{"name": "default"}]},  # so the planted user is drift
                 "valkey_audit_report_path": str(report)}
    env = ansible.env()
    envvars = {k: v for k, v in env.items() if k.startswith("ANSIBLE_")}
    pdd = _runner_dir(tmp_path, hosts, extravars, envvars)
    proc = subprocess.run([str(ansible.venv / "bin" / "ansible-runner"), "run", str(pdd), "-p", "audit.yml"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0  # the unreachable host
    assert "gone" in proc.stdout and "UNREACHABLE" in proc.stdout, proc.stdout[-4000:]

    stats = _stats_artifacts(pdd)["valkey_audit_report"]
    assert stats["path"] == str(report)
    run = json.loads(report.with_suffix(".json").read_text())
    assert stats["summary"] == run["summary"]
    assert stats["passed"] is False
    summary = run["summary"]
    assert (summary["instances"], summary["errors"]) == (3, 1)
    # The run's counts are the sums of the instances' own audit results.
    reports = [i["report"] for i in run["instances"] if "report" in i]
    assert len(reports) == 2
    for key in ("findings", "critical", "high", "medium", "low", "drifted_settings", "drifted_users"):
        assert summary[key] == sum(r["summary"][key] for r in reports), key
    for path in report.parent.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
        text = path.read_text()
        for secret in SECRETS:
            assert secret not in text, path
    assert {p.name for p in report.parent.iterdir()} == {"audit.html", "audit.json", "audit.junit.xml", "audit.sarif"}
    assert EVIL_USER not in report.read_text()

    dom, console = chromium(report, "--dump-dom")
    assert console == []
    page = Page(dom)
    # The counts shown are the JSON result's.
    assert page.counts == {k: summary[k] for k in page.counts} and len(page.counts) == 16
    weak_label = next(i["host"] + "/" + i["instance"] for i in run["instances"] if i["host"] == "weak")
    strong_label = next(i["host"] + "/" + i["instance"] for i in run["instances"] if i["host"] == "strong")
    assert page.cells[(weak_label, "VK-008")] == "fail"
    assert page.cells[(strong_label, "VK-008")] == "pass"
    assert page.cells[("gone", "VK-008")] == "unknown"
    # The planted name is text in the drift table, not an element.
    assert "script" not in page.tags
    assert EVIL_USER in page.drift_text
    for secret in SECRETS:
        assert secret not in dom

    # The check molecule's verify runs says the same, and sees a count that was tampered with.
    assert check(report, [(weak_label, "VK-008", "fail")], list(SECRETS)) == []
    high = summary["high"]
    run["summary"]["high"] = high + 1
    report.with_suffix(".json").write_text(json.dumps(run))
    # ("VK-008" plays a secret that is in every file.)
    assert check(report, [(weak_label, "VK-008", "pass")], [PASSWORD, "VK-008"]) == [
        "the page shows high %d, the JSON report %d" % (high, high + 1),
        "cell %s VK-008 is fail, expected pass" % weak_label,
    ] + ["secret #2 is in %s" % report.with_name("audit" + suffix) for suffix in (".html", ".json", ".junit.xml", ".sarif")]

    # Printed (the print style sheet): chromium makes a PDF of it, again without a console error.
    pdf = tmp_path / "audit.pdf"
    _, console = chromium(report, "--no-pdf-header-footer", "--print-to-pdf=%s" % pdf)
    assert console == []
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 10_000


def test_audit_report_with_the_oldest_ansible_core(ansible_oldest, valkey, installed_oldest, tmp_path):
    """The report's tasks (delegation, set_stats, the Jinja that gathers every host's results)
    on the oldest supported ansible-core, and a second run compares with the first."""
    vk = valkey("enable-debug-command yes\n")
    report = tmp_path / "reports" / "audit.html"
    pb = installed_oldest / "ansible_collections" / "valkeyops" / "secure" / "playbooks" / "audit.yml"
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({"valkey_hosts": "localhost", "ansible_become": False, "valkey_audit_login_port": vk.port,
                                 "valkey_audit_fail_on": ["never"], "valkey_audit_report_path": str(report)}))
    for run in (1, 2):
        out = ansible_oldest.playbook(pb, "-e", "@%s" % extra)
        assert "report of 1 instances: 0 passed, 1 with findings" in out.stdout, out.stdout[-3000:]
        page = report.read_text()
        assert '<td class="c fail" data-rule="VK-008" data-status="fail"' in page
        assert (report.stat().st_mode & 0o777, (run == 2) == ('<section id="since">' in page)) == (0o600, True)


def _fleet_result(instance: str, settings: dict) -> dict:
    """A valkey_audit result of a replication group member with its `fleet` part."""
    return {"host": instance.split("/")[0], "instance": instance.split("/")[1], "result": {
        "instance": instance.split("/")[1], "findings": [], "skipped_rules": [], "passed_rules": [], "certificates": [],
        "drift": {"settings": {}, "users": {}}, "summary": {"findings": 0}, "passed": True,
        "topology": {"role": "replica", "primary": "10.0.0.1:6379", "link_status": "up", "connected_replicas": 0,
                     "replicaof": {"runtime": "10.0.0.1 6379", "file": "10.0.0.1 6379"}},
        "fleet": {"group": "replication r1", "settings": settings, "users": {}}}}


@needs_chromium
def test_check_report_sees_the_cross_node_rule(installed, tmp_path):
    """check_report.py's --fails-only-on, --differs and --role (molecule's fleet_report.yml uses them)
    pass on a real report of a group with one odd node and fail on a wrong expectation."""
    results = tmp_path / "results.json"
    results.write_text(json.dumps([_fleet_result("h1/default", {"maxmemory": "1gb"}), _fleet_result("h2/default", {"maxmemory": "1gb"}),
                                   _fleet_result("h3/default", {"maxmemory": "2gb"})]))
    binary = installed / "ansible_collections" / "valkeyops" / "secure" / "files" / "bin" / "valkeyops_linux_amd64"
    for fmt, suffix in (("html", ".html"), ("json", ".json")):
        out = subprocess.run([str(binary), "report", "--results", str(results), "--format", fmt], capture_output=True, text=True, check=True)
        (tmp_path / ("run" + suffix)).write_text(out.stdout)
    page = tmp_path / "run.html"
    assert check(page, [], [], ["replica"], [("directive maxmemory", "h3")], [("VK-090", "h3")]) == []
    assert check(page, [], [], ["sentinel"], [("directive maxmemory", "h1")], [("VK-090", "h2")]) == [
        "topology: no instance is a sentinel (it shows ['replica'])",
        "across nodes: directive maxmemory does not name an instance of h1 as differing (it names ['h3/default'])",
        "VK-090 fails on ['h3/default'], expected one instance of h2",
    ]
