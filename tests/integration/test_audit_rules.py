"""The baseline's standalone and host rules (VK-050..VK-075) where a unit test cannot
show them: a plain-text server on an address of its own, on a lab host with a network
of its own, audited over ssh; and the role's own rendered config linted clean with
every new rule, as molecule default's verify does."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import free_port, labhosts, recap

# This branch's lab host (fixed hosts per helper; the lab_hosts fixture takes from lab19
# down and is not used here).
HOST = 19
PASSWORD = "netns-requirepass-Pw-5c1e7a"


def _start_inside(host, conf: Path, log: Path) -> subprocess.Popen:
    """valkey-server inside the host (its mount, UTS and network namespaces; nsenter
    execs it, so the pid is the server's), ready when its own log says so."""
    proc = subprocess.Popen(host.exec_argv(["valkey-server", str(conf)]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while "Ready to accept connections" not in (log.read_text() if log.exists() else ""):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("valkey-server did not start in %s: %s" % (host.name, log.read_text() if log.exists() else ""))
        time.sleep(0.02)
    assert Path("/proc/%d/comm" % proc.pid).read_text().strip() == "valkey-server"
    return proc


def _stop(proc: subprocess.Popen):
    proc.terminate()
    proc.wait(timeout=60)


def _audit(ansible, inventory: Path, tmp_path: Path, address: str, port: int, name: str) -> tuple[dict, str]:
    out_file = tmp_path / ("%s.json" % name)
    play = [{
        "hosts": "lab",
        "gather_facts": False,
        "become": True,
        "tasks": [
            {"name": "Audit", "valkeyops.secure.valkey_audit": {
                "login_host": address, "login_port": port, "login_password": PASSWORD, "fail_on": "never"},
             "register": "audit"},
            {"name": "Keep the result", "ansible.builtin.copy": {"content": "{{ audit | to_json }}", "dest": str(out_file), "mode": "0600"},
             "delegate_to": "localhost", "become": False},
        ],
    }]
    pb = tmp_path / ("%s.yml" % name)
    pb.write_text(yaml.safe_dump(play, sort_keys=False))
    out = ansible.playbook(pb, "-vvvv", inventory=str(inventory))
    assert recap(out.stdout, "lab19")["failed"] == 0
    assert PASSWORD not in out.stdout + out.stderr
    return json.loads(out_file.read_text()), out.stdout


def test_tls_beyond_loopback_fails_on_a_host_with_an_address_of_its_own(ansible, tmp_path):
    """VK-050 on a real host: a plain-text server bound to the host's own network address
    (10.200.19.2, a veth pair; not loopback) fails, naming the address; the same server
    bound to the host's loopback (its own 127.0.0.1, not the machine's) passes."""
    if os.geteuid() != 0:
        pytest.skip("lab hosts need root (namespaces, sshd)")
    host = labhosts.Host(HOST)
    labhosts.up([host], own_network=True)
    try:
        inventory = tmp_path / "inventory.ini"
        inventory.write_text("[lab]\n" + host.inventory_line() + "\n")
        port = free_port()
        data = tmp_path / "data"
        data.mkdir()
        log = tmp_path / "valkey.log"
        conf = tmp_path / "valkey.conf"
        base = "port %d\ndir %s\nlogfile %s\nrequirepass %s\nsave \"\"\ndaemonize no\n" % (port, data, log, PASSWORD)

        conf.write_text("bind %s\n" % host.net_address + base)
        conf.chmod(0o600)
        proc = _start_inside(host, conf, log)
        try:
            res, stdout = _audit(ansible, inventory, tmp_path, host.net_address, port, "lan")
        finally:
            _stop(proc)
        by_id = {f["id"]: f for f in res["findings"]}
        assert "VK-050" in by_id, res["findings"]
        assert by_id["VK-050"]["message"] == 'bind is "%s": %s is beyond loopback' % (host.net_address, host.net_address)
        assert by_id["VK-050"]["severity"] == "high"
        assert by_id["VK-050"]["source"] == "https://valkey.io/topics/encryption/"
        assert "VK-050" in stdout
        # The audit saw the server as this host's (its process and the host's kernel).
        assert "VK-024" in by_id, "the server runs as root in the lab: the process was inspected"

        log.unlink()
        conf.write_text("bind 127.0.0.1\n" + base)
        proc = _start_inside(host, conf, log)
        try:
            res, _ = _audit(ansible, inventory, tmp_path, "127.0.0.1", port, "loopback")
        finally:
            _stop(proc)
        assert "VK-050" not in {f["id"] for f in res["findings"]}
        assert "VK-050" not in {s["id"] for s in res["skipped_rules"]}, "it passed, it was not skipped"
        assert "VK-024" in {f["id"] for f in res["findings"]}, "the same server as above"
    finally:
        labhosts.down([host])
    assert subprocess.run(["ip", "link", "show", host.veth], capture_output=True).returncode != 0, "down removes the veth pair"


def test_the_roles_rendered_config_lints_clean(ansible, installed, tmp_path):
    """The valkey.conf and aclfile valkey_server renders for a fresh host pass every rule
    lint can check (molecule default's verify runs the same lint on a converged host);
    the role sets what the new rules ask (maxmemory-clients, sanitize-dump-payload)."""
    role = installed / "ansible_collections" / "valkeyops" / "secure" / "roles" / "valkey_server"
    out_dir = tmp_path / "rendered"
    out_dir.mkdir()
    play = [{
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {"valkey_server_admin_password": "render-admin-Pw-3f9d1c", "valkey_server_manager": "direct"},
        "tasks": [
            {"name": "Resolve the instances", "ansible.builtin.include_role": {
                "name": "valkeyops.secure.valkey_server", "tasks_from": "validate.yml", "public": True}},
            {"name": "The default instance", "ansible.builtin.set_fact": {"valkey_server_instance": "{{ valkey_server_resolved.instances[0] }}"}},
            {"name": "Render", "ansible.builtin.template": {"src": str(role / "templates" / "{{ item }}.j2"), "dest": str(out_dir / "{{ item }}"),
                                                            "mode": "0600"},
             "loop": ["valkey.conf", "users.acl"]},
        ],
    }]
    pb = tmp_path / "render.yml"
    pb.write_text(yaml.safe_dump(play, sort_keys=False))
    ansible.playbook(pb)
    conf = (out_dir / "valkey.conf").read_text()
    assert "maxmemory-clients 20%\n" in conf and "sanitize-dump-payload clients\n" in conf
    policy = tmp_path / "policy.yml"
    policy.write_text("version: 1\nadmins: [valkeyops-admin]\n")
    binary = installed / "ansible_collections" / "valkeyops" / "secure" / "files" / "bin" / "valkeyops_linux_amd64"
    lint = subprocess.run([str(binary), "lint", str(out_dir / "valkey.conf"), "--aclfile", str(out_dir / "users.acl"), "--policy", str(policy),
                           "--fail-on", "low", "--valkey-version", "8.0.1", "--format", "json"], capture_output=True, text=True, timeout=60)
    report = json.loads(lint.stdout)
    assert report["findings"] == [], report["findings"]
    assert lint.returncode == 0
    # Every rule lint can check ran: the new directive rules among them, none skipped for lack of a value.
    skipped = {s["id"] for s in report["skipped_rules"]}
    for rid in ("VK-050", "VK-060", "VK-061", "VK-062", "VK-063", "VK-064", "VK-065", "VK-066", "VK-067", "VK-068", "VK-069", "VK-070", "VK-071"):
        assert rid not in skipped, (rid, report["skipped_rules"])
