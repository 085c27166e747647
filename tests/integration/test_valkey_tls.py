"""valkey_tls through ansible-playbook against real valkey-server processes:
enable TLS without a restart, check mode, idempotence, the served
certificate, file modes, refused material with nothing changed, a TLS 1.1
client refused, and the key and passphrase absent from all output at
-vvvv --diff. Certificates are made here with openssl, never committed."""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import ssl
import subprocess
import warnings
from pathlib import Path

import pytest

from conftest import recap


def openssl(*args: str, env=None):
    subprocess.run(["openssl", *args], check=True, capture_output=True, env=env, timeout=60)


class PKI:
    """A CA and certificates signed by it, made with openssl in a temp dir."""

    def __init__(self, base: Path, name: str = "ca"):
        self.dir = base
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_key = self.dir / (name + ".key")
        self.ca = self.dir / (name + ".crt")
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(self.ca_key))
        openssl("req", "-x509", "-new", "-key", str(self.ca_key), "-sha256", "-days", "30",
                "-subj", "/CN=valkeyops pytest " + name, "-out", str(self.ca),
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def issue(self, name: str, sans=("DNS:localhost", "IP:127.0.0.1"), days: int = 90, rsa_bits: int = 0, digest: str = "sha256"):
        key = self.dir / (name + ".key")
        csr = self.dir / (name + ".csr")
        crt = self.dir / (name + ".crt")
        ext = self.dir / (name + ".ext")
        if rsa_bits:
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % rsa_bits, "-out", str(key))
        else:
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
        openssl("req", "-new", "-key", str(key), "-subj", "/CN=" + name, "-out", str(csr))
        ext.write_text("subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n" % ",".join(sans))
        openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(self.ca_key), "-CAcreateserial",
                "-days", str(days), "-" + digest, "-extfile", str(ext), "-out", str(crt))
        return crt, key


def fingerprint_pem(path: Path) -> str:
    der = ssl.PEM_cert_to_DER_cert(path.read_text())
    return fingerprint_der(der)


def fingerprint_der(der: bytes) -> str:
    h = hashlib.sha256(der).hexdigest().upper()
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def served(port: int, maximum=None, minimum=None) -> str:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if maximum:
        ctx.maximum_version = maximum
    if minimum:
        ctx.minimum_version = minimum
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with ctx.wrap_socket(sock) as tls:
            return fingerprint_der(tls.getpeercert(binary_form=True))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def key_body_lines(pem: str):
    return [line for line in pem.splitlines() if line and not line.startswith("-----") and ":" not in line]


def tls_state(vk, dest: Path):
    """What a refused task must leave unchanged: CONFIG GET tls-*, the config
    file, and every file in dest with its mode."""
    files = {}
    if dest.exists():
        for p in sorted(dest.iterdir()):
            files[p.name] = (oct(p.stat().st_mode & 0o777), p.read_bytes())
    return vk.cli("CONFIG", "GET", "tls-*"), vk.conf.read_bytes(), files


DEPLOY = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Deploy TLS from vars
      valkeyops.secure.valkey_tls:
        login_port: {port}
        cert: "{{{{ tls_cert }}}}"
        key: "{{{{ tls_key }}}}"
        key_passphrase: "{{{{ tls_pass }}}}"
        ca: "{{{{ tls_ca }}}}"
        dest_dir: {dest}
        port: {tls_port}
        auth_clients: {auth}
        server_names: [localhost, 127.0.0.1]
      register: tls
    - name: Keep the result
      ansible.builtin.copy:
        content: "{{{{ tls | to_json }}}}"
        dest: "{{{{ playbook_dir }}}}/result.json"
        mode: "0600"
      check_mode: false
      changed_when: false
"""


def _result(pb: Path):
    return json.loads((pb.parent / "result.json").read_text())


@pytest.fixture
def pki(tmp_path):
    return PKI(tmp_path / "pki")


def _vars(tmp_path: Path, crt: Path, key: Path, ca: Path, passphrase: str):
    """Vars file with the material; the key encrypted with passphrase."""
    enc = tmp_path / "pki" / "enc.key"
    openssl("pkey", "-in", str(key), "-aes256", "-passout", "env:VK_PASS", "-out", str(enc),
            env={"VK_PASS": passphrase, "PATH": "/usr/bin:/bin"})
    data = {"tls_cert": crt.read_text(), "tls_key": enc.read_text(), "tls_ca": ca.read_text(), "tls_pass": passphrase}
    vf = tmp_path / "controller" / "tls_vars.json"
    vf.parent.mkdir(exist_ok=True)
    vf.write_text(json.dumps(data))
    vf.chmod(0o600)
    return vf, data


def test_enable_rotate_idempotent_and_no_leak(ansible, valkey, write_playbook, tmp_path, pki):
    vk = valkey()
    dest = tmp_path / "tls"
    dest.mkdir()
    tls_port = free_port()
    crt, key = pki.issue("server1")
    passphrase = "pp-" + secrets.token_hex(12)
    vars_file, data = _vars(tmp_path, crt, key, pki.ca, passphrase)
    pb = write_playbook(DEPLOY.format(port=vk.port, dest=dest, tls_port=tls_port, auth="yes"))
    run_id = vk.cli("INFO", "server").split("run_id:")[1].split()[0]
    before = tls_state(vk, dest)

    def assert_clean(text):
        assert passphrase not in text, "the passphrase leaked"
        for line in key_body_lines(data["tls_key"]) + key_body_lines(key.read_text()):
            assert line not in text, "key material leaked"

    # Check mode with diff at -vvvv: the plan, nothing applied, nothing leaked.
    out = ansible.playbook(pb, "--check", "--diff", "-vvvv", "-e", "@" + str(vars_file))
    assert recap(out.stdout)["changed"] == 1
    assert_clean(out.stdout + out.stderr)
    assert tls_state(vk, dest) == before, "check mode changed something"
    planned = _result(pb)
    assert planned["reloaded"] is True

    # The real run enables TLS on the running server.
    out = ansible.playbook(pb, "--diff", "-vvvv", "-e", "@" + str(vars_file))
    assert recap(out.stdout)["changed"] == 1
    assert_clean(out.stdout + out.stderr)
    res = _result(pb)
    for k in ("runtime_changed", "file_changed", "material_changed", "reloaded"):
        assert res[k] == planned[k], k
    want = fingerprint_pem(crt)
    assert res["certificate"]["sha256_fingerprint"] == want
    assert res["served_fingerprint"] == want
    assert served(tls_port) == want
    assert res["certificate"]["key_type"] == "EC" and res["certificate"]["key_size"] == 256
    assert res["values"]["tls-key-file-pass"] == "********"
    assert "served 127.0.0.1:%d sha256 %s" % (tls_port, want) in out.stdout
    assert "(new content hidden)" in out.stdout
    assert vk.cli("INFO", "server").split("run_id:")[1].split()[0] == run_id, "the server restarted"
    assert oct((dest / "server.key").stat().st_mode & 0o777) == "0o600"
    assert oct((dest / "server.crt").stat().st_mode & 0o777) == "0o644"
    assert oct((dest / "ca.crt").stat().st_mode & 0o777) == "0o644"
    assert vk.get("tls-port") == str(tls_port)
    assert vk.get("tls-auth-clients") == "yes"
    assert vk.get("tls-protocols") == "TLSv1.2 TLSv1.3"
    assert "tls-port %d" % tls_port in vk.conf.read_text().splitlines()

    # Second run: nothing to do.
    out = ansible.playbook(pb, "-e", "@" + str(vars_file))
    assert recap(out.stdout)["changed"] == 0
    assert _result(pb)["reloaded"] is False

    # Rotation: a new certificate and key at the same paths.
    crt2, key2 = pki.issue("server2")
    vars2, data2 = _vars(tmp_path, crt2, key2, pki.ca, passphrase)
    out = ansible.playbook(pb, "--diff", "-vvvv", "-e", "@" + str(vars2))
    assert recap(out.stdout)["changed"] == 1
    text = out.stdout + out.stderr
    assert passphrase not in text
    for line in key_body_lines(data2["tls_key"]) + key_body_lines(key2.read_text()):
        assert line not in text
    res = _result(pb)
    assert res["reloaded"] is True
    assert res["served_fingerprint"] == fingerprint_pem(crt2) == served(tls_port)
    assert "served sha256 %s" % want in out.stdout
    out = ansible.playbook(pb, "-e", "@" + str(vars2))
    assert recap(out.stdout)["changed"] == 0


REFUSE = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Refused material
      valkeyops.secure.valkey_tls:
        login_port: {port}
        cert: "{{{{ lookup('ansible.builtin.file', '{crt}') }}}}"
        key: "{{{{ lookup('ansible.builtin.file', '{key}') }}}}"
        ca: "{{{{ lookup('ansible.builtin.file', '{ca}') }}}}"
        dest_dir: {dest}
        port: {tls_port}
        protocols: {protocols}
        server_names: {names}
"""


@pytest.mark.parametrize(
    "case, want",
    [
        ("key mismatch", 'TLS check "key match" failed for option key (for {dest}/server.key): the private key does not match the certificate in option cert (for {dest}/server.crt); nothing was changed'),
        ("other CA", 'TLS check "chain" failed for option cert (for {dest}/server.crt): the certificate does not verify to the CA in option ca (for {dest}/ca.crt) (signed by an unknown authority); nothing was changed'),
        ("RSA 1024", 'TLS check "key strength" failed for option cert (for {dest}/server.crt): the certificate has a 1024-bit RSA key; at least 2048 bits are required; nothing was changed'),
        ("SHA-1", 'TLS check "signature algorithm" failed for option cert (for {dest}/server.crt): the certificate is signed with ECDSA-SHA1; SHA-1 and MD5 signatures are refused, use SHA-256 or better; nothing was changed'),
        ("missing SAN", 'TLS check "server names" failed for option cert (for {dest}/server.crt): server name "valkey.example.com" is not covered by the certificate\'s SANs (localhost, 127.0.0.1); nothing was changed'),
        ("expiring", 'TLS check "min days valid" failed for option cert (for {dest}/server.crt): the certificate expires in '),
        ("TLSv1.1", 'option "protocols": TLSv1.1 is refused because it is deprecated and insecure (RFC 8996); use TLSv1.2 and TLSv1.3, or set allow_legacy_protocols: true; nothing was changed'),
    ],
)
def test_refused_material_changes_nothing(ansible, valkey, write_playbook, tmp_path, pki, case, want):
    vk = valkey()
    dest = tmp_path / "tls"
    dest.mkdir()
    tls_port = free_port()
    crt, key = pki.issue("good")
    ca = pki.ca
    protocols, names = "[TLSv1.2, TLSv1.3]", "[localhost]"
    if case == "key mismatch":
        _, key = pki.issue("other")
    elif case == "other CA":
        ca = PKI(tmp_path / "pki2", "other").ca
    elif case == "RSA 1024":
        crt, key = pki.issue("weak", rsa_bits=1024)
    elif case == "SHA-1":
        crt, key = pki.issue("sha1", digest="sha1")
    elif case == "missing SAN":
        names = "[localhost, valkey.example.com]"
    elif case == "expiring":
        crt, key = pki.issue("short", days=5)
    elif case == "TLSv1.1":
        protocols = "[TLSv1.1, TLSv1.2]"
    pb = write_playbook(REFUSE.format(port=vk.port, crt=crt, key=key, ca=ca, dest=dest, tls_port=tls_port, protocols=protocols, names=names))
    before = tls_state(vk, dest)
    out = ansible.playbook(pb, "-vvvv", "--diff", check=False)
    assert out.returncode != 0
    assert recap(out.stdout)["failed"] == 1
    want = want.format(dest=dest)
    assert want in out.stdout, out.stdout[-3000:]
    assert tls_state(vk, dest) == before, "a refused task changed something"
    for line in key_body_lines(key.read_text()):
        assert line not in out.stdout + out.stderr


def test_tls11_client_refused_and_lab_certificate(ansible, valkey, write_playbook, tmp_path):
    vk = valkey()
    dest = tmp_path / "lab"
    dest.mkdir()
    tls_port = free_port()
    pb = write_playbook(
        f"""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - name: Self-signed lab certificate, TLS only
              valkeyops.secure.valkey_tls:
                login_port: {vk.port}
                generate_self_signed: true
                dest_dir: {dest}
                port: {tls_port}
                auth_clients: no
                plaintext_port: 0
              register: tls
            - name: Keep the result
              ansible.builtin.copy:
                content: "{{{{ tls | to_json }}}}"
                dest: "{{{{ playbook_dir }}}}/result.json"
                mode: "0600"
              check_mode: false
              changed_when: false
        """
    )
    out = ansible.playbook(pb)
    assert recap(out.stdout)["changed"] == 1
    res = _result(pb)
    assert res["generated"] is True
    assert res["certificate"]["sans"] == ["localhost", "127.0.0.1"]
    assert served(tls_port) == res["served_fingerprint"] == fingerprint_pem(dest / "server.crt")
    # The plain port is now closed.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", vk.port), timeout=2).close()

    # A client verifying with the generated CA gets PONG over TLS 1.2 and 1.3.
    ctx = ssl.create_default_context(cafile=str(dest / "ca.crt"))
    with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            tls.sendall(b"PING\r\n")
            assert tls.recv(64) == b"+PONG\r\n"
    # A TLS 1.1 client is refused (by the server's tls-protocols, or by
    # OpenSSL itself: either way no TLS 1.1 session).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1_1 is deprecated: that is the point
        with pytest.raises((ssl.SSLError, OSError)):
            served(tls_port, maximum=ssl.TLSVersion.TLSv1_1, minimum=ssl.TLSVersion.TLSv1)

    # Idempotent over TLS: the next run logs in on the TLS port.
    pb2 = write_playbook(
        f"""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - valkeyops.secure.valkey_tls:
                login_port: {tls_port}
                tls: true
                tls_ca_cert: {dest}/ca.crt
                generate_self_signed: true
                dest_dir: {dest}
                auth_clients: "no"
                plaintext_port: 0
        """,
        name="again.yml",
    )
    out = ansible.playbook(pb2)
    assert recap(out.stdout)["changed"] == 0


def test_bad_options_fail_on_the_controller(ansible, valkey, write_playbook, tmp_path):
    vk = valkey()
    empty = tmp_path / "empty"
    empty.mkdir()
    before = tls_state(vk, empty)
    pb = write_playbook(
        f"""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - valkeyops.secure.valkey_tls:
                login_port: {vk.port}
                cert_path: /etc/valkey/tls/server.crt
                cert: "not really"
                key_path: /etc/valkey/tls/server.key
                ca_path: /etc/valkey/tls/ca.crt
        """
    )
    out = ansible.playbook(pb, check=False)
    assert out.returncode != 0
    assert 'options "cert" and "cert_path" are mutually exclusive: give one or the other; nothing was changed' in out.stdout
    assert tls_state(vk, empty) == before


def test_oldest_ansible_core_and_yaml_booleans(ansible_oldest, valkey, write_playbook, tmp_path):
    """The oldest supported ansible-core; `auth_clients: yes` unquoted (a
    YAML boolean) is understood as the choice "yes"."""
    vk = valkey()
    dest = tmp_path / "lab"
    dest.mkdir()
    tls_port = free_port()
    pb = write_playbook(
        f"""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - valkeyops.secure.valkey_tls:
                login_port: {vk.port}
                generate_self_signed: true
                dest_dir: {dest}
                port: {tls_port}
                auth_clients: yes
        """
    )
    out = ansible_oldest.playbook(pb)
    assert recap(out.stdout)["changed"] == 1
    assert vk.get("tls-auth-clients") == "yes"
    assert served(tls_port) == fingerprint_pem(dest / "server.crt")
    out = ansible_oldest.playbook(pb)
    assert recap(out.stdout)["changed"] == 0
