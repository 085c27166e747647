"""valkey_tls group CA mode on lab16 and lab17: one lab CA generated once on the
controller issues each node its own certificate (the node's key made on the node),
the nodes replicate over TLS with mutual authentication (tls-auth-clients yes), a
client certificate from another CA is refused by both, the CA key is in no file of
either node, and nothing secret shows at -vvvv --diff."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import fixed_lab_hosts, labhosts, recap

ADMIN = "groupca-admin-password-8d1f3b6e"
# This helper's lab hosts (fixed; the shared lab_hosts fixture takes hosts from lab19 down).
OUR_HOSTS = (16, 17)
PRIVATE = ("/etc", "/home", "/root", "/var/log", "/var/lib/valkey", "/var/tmp")


@pytest.fixture
def lab_pair(tmp_path):
    lab = fixed_lab_hosts(OUR_HOSTS, tmp_path / "lab-inventory.ini")
    yield lab
    labhosts.down(list(lab))


def _play(ca_dir: Path) -> list:
    return [{
        "hosts": "lab",
        "become": True,
        "gather_facts": False,
        "vars": {
            "valkey_server_install": False,
            "valkey_server_bind": "{{ ansible_host }}",
            "valkey_server_admin_password": ADMIN,
            "valkey_tls_group_ca_dir": str(ca_dir),
            "valkey_tls_generate_group_ca": True,
            "valkey_tls_group_name": "groupca-test",
            "valkey_tls_auth_clients": "yes",
        },
        "roles": ["valkeyops.secure.valkey_server", "valkeyops.secure.valkey_tls"],
    }]


def _cli(host, *args: str, stdin: str | None = None, check: bool = True) -> str:
    """valkey-cli inside the host over its unix socket as the admin (password in the environment)."""
    argv = ["env", "REDISCLI_AUTH=" + ADMIN, "valkey-cli", "-s", "/run/valkey/valkey.sock", "--user", "valkeyops-admin",
            "--no-auth-warning", *args]
    out = subprocess.run(host.exec_argv(argv), input=stdin, capture_output=True, text=True, timeout=60)
    if check and out.returncode != 0:
        raise AssertionError("valkey-cli %s on %s: %s %s" % (args, host.name, out.stdout, out.stderr))
    return out.stdout.strip()


def _set_waited(primary, key: str, value: str) -> str:
    """SET, then WAIT 1 on the same connection (one valkey-cli, commands on stdin): WAIT counts the
    replicas that acknowledged its connection's own writes, so on another connection it answers at
    once. Returns WAIT's answer: "1" once the replica has the write (its event), "0" after 30 s."""
    return _cli(primary, stdin="SET %s %s\nWAIT 1 30000\n" % (key, value)).split()[-1]


def _info(host, section: str, field: str) -> str:
    out = _cli(host, "INFO", section)
    return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith(field + ":"))


def _tls_ping(address: str, cert: Path, key: Path, ca: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["valkey-cli", "--tls", "--cert", str(cert), "--key", str(key), "--cacert", str(ca),
                           "-h", address, "-p", "6380", "PING"], capture_output=True, text=True, timeout=60)


def _key_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if len(line) >= 16 and not line.startswith("-----")]


def _files_holding(host, needles: list[str]) -> list[str]:
    """Every file in the host's private dirs that holds one of needles."""
    found = []
    for inside in PRIVATE:
        top = host.path(inside)
        for p in top.rglob("*") if top.exists() else []:
            try:
                if p.is_file() and not p.is_symlink() and p.stat().st_size < 16 << 20:
                    data = p.read_bytes()
                    if any(n.encode() in data for n in needles):
                        found.append(str(p))
            except OSError:
                continue
    return found


def test_group_ca_replication_over_mutual_tls(ansible, lab_pair, tmp_path):
    lab = lab_pair
    primary, replica = lab
    ca_dir = tmp_path / "group-ca"
    pb = tmp_path / "play.yml"
    pb.write_text(json.dumps(_play(ca_dir), indent=1))

    out = ansible.playbook(pb, inventory=str(lab.inventory))
    for h in lab:
        assert recap(out.stdout, h.name)["failed"] == 0
    # The lab CA was made once, in a 0700 directory, its key 0600.
    assert sorted(p.name for p in ca_dir.iterdir()) == ["ca.crt", "ca.key"]
    assert ca_dir.stat().st_mode & 0o777 == 0o700
    assert (ca_dir / "ca.key").stat().st_mode & 0o777 == 0o600
    ca_pem = (ca_dir / "ca.crt").read_text()
    ca_key_lines = _key_lines((ca_dir / "ca.key").read_text())

    # Each node: its own key (made there), a certificate of the group CA with its names.
    node_keys = {}
    for h in lab:
        tls_dir = h.path("/etc/valkey/tls")
        assert (tls_dir / "ca.crt").read_text() == ca_pem
        cert = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-issuer", "-in", str(tls_dir / "server.crt")],
                              capture_output=True, text=True, check=True).stdout
        assert "DNS:%s" % h.name in cert and "IP Address:%s" % h.address in cert, cert
        assert "groupca-test" in cert
        node_keys[h.name] = _key_lines((tls_dir / "server.key").read_text())
    assert node_keys[primary.name] != node_keys[replica.name]

    # The second run changes nothing, and shows no secret at -vvvv --diff.
    out = ansible.playbook(pb, "-vvvv", "--diff", inventory=str(lab.inventory))
    for h in lab:
        assert recap(out.stdout, h.name)["changed"] == 0, out.stdout[-4000:]
    shown = out.stdout + out.stderr
    for secret in [ADMIN, *ca_key_lines, *node_keys[primary.name], *node_keys[replica.name]]:
        assert secret not in shown
    assert sorted(p.name for p in ca_dir.iterdir()) == ["ca.crt", "ca.key"]
    assert _key_lines((ca_dir / "ca.key").read_text()) == ca_key_lines, "the CA was generated again"

    # Check mode on the converged group: nothing to do either.
    out = ansible.playbook(pb, "--check", inventory=str(lab.inventory))
    for h in lab:
        assert recap(out.stdout, h.name)["changed"] == 0, out.stdout[-4000:]

    # A group CA given by halves is refused before anything changes, in one sentence.
    before = {h.name: sorted((p.name, p.read_bytes()) for p in h.path("/etc/valkey/tls").iterdir()) for h in lab}
    bad = json.dumps({"valkey_tls_group_ca_cert": ca_pem, "valkey_tls_group_ca_dir": ""})
    out = ansible.playbook(pb, "-e", bad, inventory=str(lab.inventory), check=False)
    assert out.returncode == 2
    assert ("Group CA mode takes the CA as valkey_tls_group_ca_cert with valkey_tls_group_ca_key, or valkey_tls_group_ca_dir on the "
            "controller (valkey_tls_generate_group_ca=true needs it), and no other certificate source; nothing was changed") in out.stdout
    for h in lab:
        assert recap(out.stdout, h.name)["changed"] == 0
        assert sorted((p.name, p.read_bytes()) for p in h.path("/etc/valkey/tls").iterdir()) == before[h.name]

    # lab17 replicates from lab16 over TLS, authenticating with its group certificate.
    _cli(replica, stdin="CONFIG SET primaryuser valkeyops-admin primaryauth %s tls-replication yes\nREPLICAOF %s 6380\n"
         % (ADMIN, primary.address))
    # The replica has the write once WAIT says so (the server's event): no sleep.
    assert _set_waited(primary, "groupca:key", "written-on-lab16") == "1"
    assert _cli(replica, "GET", "groupca:key") == "written-on-lab16"
    assert _info(replica, "replication", "master_link_status") == "up"

    # A client certificate from another CA is refused by both; a group one gets through TLS.
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                    "-subj", "/CN=intruder", "-keyout", str(other / "c.key"), "-out", str(other / "c.crt")],
                   capture_output=True, check=True)
    (tmp_path / "group-ca.crt").write_text(ca_pem)
    tls_dir = primary.path("/etc/valkey/tls")
    for h in lab:
        refused = _tls_ping(h.address, other / "c.crt", other / "c.key", tmp_path / "group-ca.crt")
        assert "PONG" not in refused.stdout and "NOAUTH" not in refused.stdout, (h.name, refused.stdout)
        assert refused.returncode != 0 or "error" in (refused.stdout + refused.stderr).lower(), (h.name, refused)
        admitted = _tls_ping(h.address, tls_dir / "server.crt", tls_dir / "server.key", tmp_path / "group-ca.crt")
        assert "NOAUTH" in admitted.stdout + admitted.stderr or "PONG" in admitted.stdout, (h.name, admitted)

    # A name added in the inventory: each node gets a new certificate for the same key, loaded
    # without a restart, and replication goes on over the new certificates.
    run_ids = {h.name: _info(h, "server", "run_id") for h in lab}
    names = json.dumps({"valkey_tls_group_names": ["{{ inventory_hostname }}", "{{ ansible_host }}", "{{ inventory_hostname }}.group.test"]})
    out = ansible.playbook(pb, "-e", names, inventory=str(lab.inventory))
    for h in lab:
        assert recap(out.stdout, h.name)["changed"] > 0
        tls_dir = h.path("/etc/valkey/tls")
        cert = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(tls_dir / "server.crt")],
                              capture_output=True, text=True, check=True).stdout
        assert "DNS:%s.group.test" % h.name in cert, cert
        assert _key_lines((tls_dir / "server.key").read_text()) == node_keys[h.name], "the key was replaced for a name change"
        assert _info(h, "server", "run_id") == run_ids[h.name], "%s restarted" % h.name
    assert _set_waited(primary, "groupca:key2", "after-renewal") == "1"
    assert _cli(replica, "GET", "groupca:key2") == "after-renewal"

    # playbooks/rotate_tls.yml in group mode: a new key made on each node and a certificate
    # of the group CA for it, loaded without a restart; replication goes on.
    role_vars = tmp_path / "vars.json"
    role_vars.write_text(json.dumps({**_play(ca_dir)[0]["vars"], "valkey_hosts": "lab"}))
    rotate = tmp_path / "rotate_tls.yml"
    rotate.write_text((ansible.collections / "ansible_collections/valkeyops/secure/playbooks/rotate_tls.yml").read_text())
    out = ansible.playbook(rotate, "-e", "@%s" % role_vars, "-e", names, inventory=str(lab.inventory))
    for h in lab:
        assert recap(out.stdout, h.name)["failed"] == 0
        key = _key_lines(h.path("/etc/valkey/tls/server.key").read_text())
        assert key != node_keys[h.name], "%s kept its key through a rotation" % h.name
        assert _info(h, "server", "run_id") == run_ids[h.name], "%s restarted" % h.name
    assert _set_waited(primary, "groupca:key3", "after-rotation") == "1"
    assert _cli(replica, "GET", "groupca:key3") == "after-rotation"

    # The CA key is in no file of either node.
    for h in lab:
        assert _files_holding(h, ca_key_lines) == [], h.name
