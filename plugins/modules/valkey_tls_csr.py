# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Documentation only: the module is the Go binary `valkeyops module valkey_tls_csr`,
# run by the action plugin of the same name.

from __future__ import absolute_import, division, print_function

# The module boilerplate ansible-test 2.16 requires (even of a doc-only file).
__metaclass__ = type

DOCUMENTATION = r"""
module: valkey_tls_csr
short_description: Make a Valkey node's private key on the node and a certificate signing request for the group CA
version_added: 0.2.0
description:
  - The node's half of the group CA flow. One CA issues every node of a replication group or cluster its own
    certificate, so every node verifies every other (C(tls-replication), C(tls-cluster), C(tls-auth-clients yes)).
  - Makes the node's private key (ECDSA P-256) as C(server.key) in O(dest_dir) when there is none, or when the one
    there does not parse, is encrypted or is too weak, or with O(rotate_key). The key never leaves the node; it is
    never in a result, a diff or the journal.
  - Decides whether the node needs a new certificate. The current C(server.crt) in O(dest_dir) is kept when it is issued
    by the group CA O(ca), names exactly O(server_names), is for the node's key, is for server and client
    authentication and stays valid for O(min_days_valid) days. Then RV(cert) returns it and RV(csr) is empty.
  - Otherwise RV(csr) is a certificate signing request (public) for M(valkeyops.secure.valkey_tls_sign) on the
    controller; the signed certificate is then installed with M(valkeyops.secure.valkey_tls) (O(valkeyops.secure.valkey_tls#module:key_path)
    pointing at this key).
author:
  - valkeyops.secure contributors (@valkeyops)
extends_documentation_fragment:
  - valkeyops.secure.journal
options:
  dest_dir:
    description:
      - The directory of the node's TLS files (M(valkeyops.secure.valkey_tls)'s O(valkeyops.secure.valkey_tls#module:dest_dir)).
        It must exist and be root's, writable by nobody else.
    type: path
    required: true
  ca:
    description:
      - The group CA certificate (PEM). The current certificate must verify to it to be kept.
    type: str
    required: true
  server_names:
    description:
      - The names the node's certificate must hold, exactly (inventory hostname, address, announce names).
    type: list
    elements: str
    required: true
  min_days_valid:
    description:
      - A certificate expiring within this many days is renewed. C(0) renews only expired ones.
    type: int
    default: 30
  owner:
    description:
      - Owner of the key. Default is unchanged for an existing key, the module's user for a new one.
    type: str
  group:
    description:
      - Group of the key; the key is then 0640 (else 0600) so the server's group can read it.
    type: str
  rotate_key:
    description:
      - Make a new key, and so ask for a new certificate, on this run.
    type: bool
    default: false
  instance:
    description:
      - The instance's name, for the change journal.
    type: str
attributes:
  check_mode:
    support: full
    description:
      - Reports whether a key would be made and a certificate renewed. A key that does not exist yet is not made, so
        RV(csr) is empty then.
  diff_mode:
    support: full
    description:
      - Shows the key's path, mode and owner before and after; never its content.
  platform:
    support: full
    platforms: posix
    description: Runs on Linux targets (amd64, arm64) as a static Go binary; the target needs a POSIX shell and no Python.
seealso:
  - module: valkeyops.secure.valkey_tls_sign
  - module: valkeyops.secure.valkey_tls
"""

EXAMPLES = r"""
- name: Make the node's key and, when needed, a CSR
  valkeyops.secure.valkey_tls_csr:
    dest_dir: /etc/valkey/tls
    ca: "{{ lookup('ansible.builtin.file', 'pki/group-ca.crt') }}"
    server_names: ["{{ inventory_hostname }}", "{{ ansible_host }}"]
    group: valkey
  register: node_csr

- name: Sign it on the controller
  valkeyops.secure.valkey_tls_sign:
    ca_cert: "{{ lookup('ansible.builtin.file', 'pki/group-ca.crt') }}"
    ca_key: "{{ vault_group_ca_key }}"
    csr: "{{ node_csr.csr }}"
    names: ["{{ inventory_hostname }}", "{{ ansible_host }}"]
  delegate_to: localhost
  become: false
  when: node_csr.csr | length > 0
  register: node_cert
"""

RETURN = r"""
renew:
  description: Whether the node needs a new certificate.
  returned: success
  type: bool
  sample: true
reason:
  description: Why (empty when the current certificate is kept).
  returned: success
  type: str
  sample: no certificate yet
csr:
  description: The certificate signing request (PEM) when a certificate is needed, else empty.
  returned: success
  type: str
cert:
  description: The current certificate (PEM) when it is kept, else empty.
  returned: success
  type: str
key_file:
  description: The node's key file.
  returned: success
  type: str
  sample: /etc/valkey/tls/server.key
key_created:
  description: Whether a new key was (in check mode, would be) made.
  returned: success
  type: bool
certificate:
  description: The current certificate's subject, issuer, SANs, validity and fingerprint, when there is one.
  returned: when dest_dir holds a certificate
  type: dict
"""
