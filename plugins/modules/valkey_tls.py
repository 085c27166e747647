# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Documentation only: the module is the Go binary `valkeyops module valkey_tls`,
# run by the action plugin of the same name. The argument spec is derived from
# DOCUMENTATION below, so what ansible-doc shows is exactly what is validated.

from __future__ import absolute_import, division, print_function

# The module boilerplate ansible-test 2.16 requires (even of a doc-only file).
__metaclass__ = type

DOCUMENTATION = r"""
module: valkey_tls
short_description: Validate, deploy and hot-reload TLS certificates of a Valkey server
version_added: 0.1.0
description:
  - Validates TLS material before anything is touched. The PEM parses, the key matches the certificate,
    the chain verifies to the CA, now is within the validity period, the certificate is valid for at
    least O(min_days_valid) days, keys are strong enough (RSA 2048 bits or more, EC P-256 or more), no
    certificate is signed with SHA-1 or MD5, every name of O(server_names) is covered by the SANs, and
    an encrypted key needs O(key_passphrase). Each failure is one message naming the check and the
    file, and nothing is changed.
  - Deploys certificate, key and CA given as content into O(dest_dir) atomically (temporary file,
    fsync, rename). The key is mode 0600 (0640 when O(group) is set, for the server's group), the
    certificate and the CA 0644. Or uses files already on the target (O(cert_path), O(key_path),
    O(ca_path)).
  - Sets the tls-* directives in the running server with one C(CONFIG SET) and in valkey.conf, with the
    engine of M(valkeyops.secure.valkey_config) (compared by value, rolled back together). Enabling TLS on
    a running server needs no restart.
  - "Rotation without a restart. When the files changed (or the server serves another certificate than
    the files hold), the server reloads them with C(CONFIG SET), which re-reads the tls-* files even
    for an unchanged path. Then a real TLS handshake with the TLS port must show the deployed
    certificate's sha256 fingerprint, or the task fails."
  - If applying the directives fails, the certificate files written by the task are restored.
  - The key and the passphrase never appear in a result, a diff, a warning or an error, at any
    verbosity. Diffs show paths, modes and sha256 fingerprints.
  - Works with Valkey 8 and 9 and Redis 7 built with TLS. A server built without TLS is reported as such.
  - Runs on the target as a static Go binary; the target needs a POSIX shell and no Python.
author:
  - valkeyops.secure contributors (@valkeyops)
extends_documentation_fragment:
  - valkeyops.secure.connection
  - valkeyops.secure.journal
options:
  cert:
    description:
      - The server certificate as PEM content, optionally followed by intermediate certificates.
      - Written to C(server.crt) in O(dest_dir). Mutually exclusive with O(cert_path).
    type: str
  key:
    description:
      - The certificate's private key as PEM content (PKCS#8, PKCS#1 or SEC1; may be encrypted, see
        O(key_passphrase)).
      - Written to C(server.key) in O(dest_dir). Never shown in any output. Mutually exclusive with O(key_path).
    type: str
  ca:
    description:
      - The CA certificate(s) as PEM content; the chain of O(cert) must verify to one of them.
      - Written to C(ca.crt) in O(dest_dir) and used as C(tls-ca-cert-file) (the CA that client and
        replica certificates are checked against). Mutually exclusive with O(ca_path).
    type: str
  cert_path:
    description:
      - A certificate file already on the target, used in place (read, validated, never written).
    type: path
  key_path:
    description:
      - A key file already on the target, used in place. A warning is shown when it is readable by every user.
    type: path
  ca_path:
    description:
      - A CA file already on the target, used in place.
    type: path
  dest_dir:
    description:
      - Directory on the target for O(cert), O(key) and O(ca) content (or generated material), as
        C(server.crt), C(server.key) and C(ca.crt). It must exist.
      - Required with content or O(generate_self_signed).
    type: path
  owner:
    description:
      - Owner (name or uid) of the files written to O(dest_dir). Default is the current owner of an
        existing file, or the user the module runs as.
    type: str
  group:
    description:
      - Group (name or gid) of the files written to O(dest_dir).
      - When set, the key is mode 0640 so that a server running with this group can read it;
        otherwise it is 0600.
    type: str
  key_passphrase:
    description:
      - Passphrase of an encrypted key; set as C(tls-key-file-pass). Never shown in any output.
    type: str
  port:
    description:
      - The TLS port (C(tls-port)).
      - Defaults to the server's current TLS port; required when TLS is not enabled yet.
    type: int
  plaintext_port:
    description:
      - The plain TCP port (C(port)). V(0) disables plain TCP, so that clients must use TLS.
      - Not managed when omitted. After disabling it, connect with O(tls=true) and O(login_port) set to the TLS port.
    type: int
  auth_clients:
    description:
      - C(tls-auth-clients). V(yes) requires a client certificate signed by the CA, V(optional)
        checks one when presented, V(no) does not ask for one.
      - Not managed when omitted (the server default is V(yes)).
      - Quote the value in YAML ("yes", "no") or use the booleans; both are understood.
    type: str
    choices: ["yes", "no", "optional"]
  protocols:
    description:
      - C(tls-protocols), the TLS versions the server accepts.
      - V(TLSv1) and V(TLSv1.1) are refused unless O(allow_legacy_protocols=true) (RFC 8996 deprecates them).
      - The order does not matter.
    type: list
    elements: str
    choices: [TLSv1, TLSv1.1, TLSv1.2, TLSv1.3]
    default: [TLSv1.2, TLSv1.3]
  allow_legacy_protocols:
    description:
      - Allow V(TLSv1) and V(TLSv1.1) in O(protocols). Insecure; for old clients only.
    type: bool
    default: false
  ciphers:
    description:
      - C(tls-ciphers), the TLSv1.2 cipher list in OpenSSL syntax. Not managed when omitted.
    type: str
  ciphersuites:
    description:
      - C(tls-ciphersuites), the TLSv1.3 cipher suites in OpenSSL syntax. Not managed when omitted.
    type: str
  prefer_server_ciphers:
    description:
      - C(tls-prefer-server-ciphers). Not managed when omitted.
    type: bool
  replication:
    description:
      - C(tls-replication), TLS for links to the primary. Not managed when omitted.
    type: bool
  cluster:
    description:
      - C(tls-cluster), TLS for the cluster bus. Not managed when omitted.
    type: bool
  session_caching:
    description:
      - C(tls-session-caching). Not managed when omitted.
    type: bool
  persist:
    description:
      - Where the tls-* directives go, as in M(valkeyops.secure.valkey_config).
      - V(both) changes the running server and the file and keeps them in agreement.
      - V(runtime) only the running server (lost at the next restart).
      - V(file) only the file (no reload, no handshake check); the server is then optional.
    type: str
    choices: [runtime, file, both]
    default: both
  config_file:
    description:
      - Path of the configuration file on the target. Defaults to the path the server reports.
    type: path
  backup:
    description:
      - Keep a timestamped copy of the configuration file before changing it.
    type: bool
    default: false
  strict:
    description:
      - Fail, with nothing changed, when a directive would need a server restart.
    type: bool
    default: false
  min_days_valid:
    description:
      - A certificate that expires in fewer days fails the task (or warns, see O(expiry_policy)).
      - V(0) turns the check off. An expired certificate always fails.
    type: int
    default: 30
  expiry_policy:
    description:
      - What a certificate expiring within O(min_days_valid) does. V(fail) refuses it with nothing
        changed, V(warn) deploys it with a warning.
    type: str
    choices: [fail, warn]
    default: fail
  generate_self_signed:
    description:
      - Create a CA and a server certificate (ECDSA P-256, SANs from O(server_names), valid 365 days)
        in O(dest_dir), for labs and tests. The CA key is not kept.
      - A later run keeps the generated files as long as they pass every check (names covered, valid
        for at least O(min_days_valid) days), so the task is idempotent.
      - Refused together with O(cert), O(key), O(ca), O(cert_path), O(key_path), O(ca_path) or O(key_passphrase).
    type: bool
    default: false
  server_names:
    description:
      - Host names and IP addresses clients use to reach the server; each must be covered by the
        certificate's SANs.
      - With O(generate_self_signed=true) they become the SANs (default V(localhost) and V(127.0.0.1)).
    type: list
    elements: str
attributes:
  check_mode:
    support: full
    description:
      - Validates, reads the server, files and served certificate, and reports the same C(changed), RV(reloaded) and diff
        as a real run without changing anything.
  diff_mode:
    support: full
    description:
      - Shows the tls-* directives before and after, and the files and served certificate as paths, modes and sha256
        fingerprints; key material is never shown.
  platform:
    support: full
    platforms: posix
    description: Runs on Linux targets (amd64, arm64) as a static Go binary; the target needs a POSIX shell and no Python.
notes:
  - The module talks to the server from the target host, by default on 127.0.0.1, and checks the
    served certificate on the TLS port of O(login_host) (127.0.0.1 with a unix socket).
  - Enabling TLS does not turn plain TCP off; set O(plaintext_port=0) for that.
  - A CA is always required; Valkey needs one to check client and replica certificates.
seealso:
  - module: valkeyops.secure.valkey_config
  - name: TLS support in Valkey
    description: The tls-* directives and how clients connect.
    link: https://valkey.io/topics/encryption/
  - name: RFC 8996
    description: Why TLS 1.0 and 1.1 are refused.
    link: https://www.rfc-editor.org/rfc/rfc8996
"""

EXAMPLES = r"""
- name: Deploy certificates from vars (vault) and enable TLS without a restart
  valkeyops.secure.valkey_tls:
    login_user: admin
    login_password: "{{ vault_valkey_admin_password }}"
    cert: "{{ valkey_tls_cert }}"
    key: "{{ vault_valkey_tls_key }}"
    ca: "{{ valkey_tls_ca }}"
    dest_dir: /etc/valkey/tls
    owner: root
    group: valkey
    port: 6380
    server_names: [valkey1.example.com]
  register: tls

- name: Show what the server now serves
  ansible.builtin.debug:
    msg: "{{ tls.certificate.subject }} until {{ tls.certificate.not_after }}, served {{ tls.served_fingerprint }}"

- name: Use certificates already on the host (managed by certbot or an internal PKI agent)
  valkeyops.secure.valkey_tls:
    cert_path: /etc/pki/valkey/fullchain.pem
    key_path: /etc/pki/valkey/privkey.pem
    ca_path: /etc/pki/valkey/ca.pem
    port: 6380
    min_days_valid: 14

- name: Lab or CI - a self-signed CA and server certificate, TLS only
  valkeyops.secure.valkey_tls:
    generate_self_signed: true
    dest_dir: /etc/valkey/tls
    server_names: [localhost, 127.0.0.1]
    port: 6380
    plaintext_port: 0
    auth_clients: "no"

- name: Rotate the certificate (same paths; reloaded and verified by a handshake, no restart)
  valkeyops.secure.valkey_tls:
    login_port: 6380
    tls: true
    tls_ca_cert: /etc/valkey/tls/ca.crt
    cert: "{{ lookup('ansible.builtin.file', 'pki/valkey1-2027.crt') }}"
    key: "{{ vault_valkey1_2027_key }}"
    ca: "{{ lookup('ansible.builtin.file', 'pki/ca.crt') }}"
    dest_dir: /etc/valkey/tls
    group: valkey
  register: rotated

- name: Report the rotation (the task has already failed if the server did not serve the new certificate)
  ansible.builtin.debug:
    msg: "Now serving {{ rotated.served_fingerprint }}, valid for {{ rotated.certificate.days_remaining }} days"
  when: rotated.reloaded

- name: Mutual TLS - clients and replicas must present a certificate signed by the CA
  valkeyops.secure.valkey_tls:
    cert_path: /etc/valkey/tls/server.crt
    key_path: /etc/valkey/tls/server.key
    key_passphrase: "{{ vault_valkey_key_passphrase }}"
    ca_path: /etc/valkey/tls/ca.crt
    port: 6380
    auth_clients: "yes"
    replication: true
    protocols: [TLSv1.3]
    ciphersuites: TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
"""

RETURN = r"""
certificate:
  description: The deployed server certificate.
  returned: when the material passed validation
  type: dict
  contains:
    subject:
      description: Subject distinguished name.
      type: str
      sample: CN=valkey1.example.com
    issuer:
      description: Issuer distinguished name.
      type: str
      sample: CN=Example Internal CA
    sans:
      description: DNS names and IP addresses of the certificate.
      type: list
      elements: str
      sample: [valkey1.example.com, 10.0.0.5]
    not_before:
      description: Start of validity (UTC, RFC 3339).
      type: str
      sample: "2026-11-01T00:00:00Z"
    not_after:
      description: End of validity (UTC, RFC 3339).
      type: str
      sample: "2027-11-01T00:00:00Z"
    days_remaining:
      description: Whole days until RV(certificate.not_after).
      type: int
      sample: 343
    sha256_fingerprint:
      description: SHA-256 fingerprint of the certificate, as C(openssl x509 -fingerprint -sha256) prints it.
      type: str
      sample: "62:8F:CC:E3:E9:9C:53:7E:ED:EF:EE:C5:E9:5B:16:3E:67:53:C7:7F:F3:CE:AD:7F:27:19:C5:1A:58:46:32:7B"
    key_type:
      description: V(RSA), V(EC) or V(Ed25519).
      type: str
      sample: EC
    key_size:
      description: Key size in bits.
      type: int
      sample: 256
served_fingerprint:
  description:
    - SHA-256 fingerprint of the certificate the server presents on its TLS port, read with a real
      handshake (after the run; in check mode, before it). Empty when TLS is not enabled.
  returned: when the material passed validation
  type: str
  sample: "62:8F:CC:E3:E9:9C:53:7E:ED:EF:EE:C5:E9:5B:16:3E:67:53:C7:7F:F3:CE:AD:7F:27:19:C5:1A:58:46:32:7B"
reloaded:
  description: Whether the server (re)loaded its TLS files in this run (in check mode, whether it would).
  returned: when the material passed validation
  type: bool
  sample: true
tls_port:
  description: The TLS port after the run.
  returned: when the material passed validation
  type: int
  sample: 6380
cert_file:
  description: Path of the certificate file the server uses.
  returned: when the material passed validation
  type: str
  sample: /etc/valkey/tls/server.crt
key_file:
  description: Path of the key file the server uses.
  returned: when the material passed validation
  type: str
  sample: /etc/valkey/tls/server.key
ca_file:
  description: Path of the CA file the server uses.
  returned: when the material passed validation
  type: str
  sample: /etc/valkey/tls/ca.crt
material_changed:
  description: Files written, or whose mode or owner was fixed, in O(dest_dir).
  returned: when the material passed validation
  type: list
  elements: str
  sample: [/etc/valkey/tls/server.crt, /etc/valkey/tls/server.key]
generated:
  description: Whether new self-signed material was generated in this run.
  returned: when the material passed validation
  type: bool
  sample: false
values:
  description: The tls-* directives (and C(port)) as the server reports them after the run; C(tls-key-file-pass) as C(********).
  returned: when the material passed validation
  type: dict
  sample: {"tls-port": "6380", "tls-protocols": "TLSv1.2 TLSv1.3", "tls-auth-clients": "yes"}
runtime_changed:
  description: Directives changed in the running server.
  returned: when the material passed validation
  type: list
  elements: str
  sample: [tls-cert-file, tls-port]
file_changed:
  description: Directives changed in the configuration file.
  returned: when the material passed validation
  type: list
  elements: str
  sample: [tls-cert-file, tls-port]
config_file:
  description: The configuration file read (and edited).
  returned: when a file is involved
  type: str
  sample: /etc/valkey/valkey.conf
restart_required:
  description: Whether a directive waits for a server restart (tls-* directives never do on Valkey 8).
  returned: when the material passed validation
  type: bool
  sample: false
"""
