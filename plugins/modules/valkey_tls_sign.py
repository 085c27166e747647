# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Documentation only: the module is the Go binary `valkeyops module valkey_tls_sign`,
# run by the action plugin of the same name.

from __future__ import absolute_import, division, print_function

# The module boilerplate ansible-test 2.16 requires (even of a doc-only file).
__metaclass__ = type

DOCUMENTATION = r"""
module: valkey_tls_sign
short_description: Sign a Valkey node's certificate request with the group CA, on the controller
version_added: 0.2.0
description:
  - The controller's half of the group CA flow; run it with C(delegate_to=localhost) and C(become=false) so the CA key
    never reaches a node. The node's key never reaches the controller either; only the CSR and the certificate travel.
  - Loads the group CA, given as content (O(ca_cert) and O(ca_key), e.g. from Ansible Vault) or kept in O(ca_dir)
    as C(ca.crt) and C(ca.key). O(ca_dir) must be the play user's, mode 0700, not a symbolic link, under directories
    nobody else can write. C(ca.key) must be 0600.
  - For labs only, O(generate_ca=true) creates the CA (ECDSA P-384, 10 years) in O(ca_dir) when it holds none. It is
    done once, under the directory's lock, so concurrent hosts wait and reuse it. A directory holding only one of
    the two files is an error, never a second CA.
  - Signs O(csr), which came from the node and is treated as hostile. It is bounded to 16 KiB and must be one PEM
    block. Its signature must verify, and its key must be RSA 2048 to 8192 bits, EC P-256 or larger, or Ed25519.
    Only its public key is used. The certificate holds exactly O(names), the first as the CN, never a name or
    extension from the CSR. It is for TLS server and client authentication and is valid for O(days), within the CA's own validity.
author:
  - valkeyops.secure contributors (@valkeyops)
options:
  ca_cert:
    description:
      - The group CA certificate as PEM content. Requires O(ca_key); mutually exclusive with O(ca_dir).
    type: str
  ca_key:
    description:
      - The group CA's private key as PEM content (unencrypted; keep it in Ansible Vault). Never shown in any output.
    type: str
  ca_dir:
    description:
      - A directory on the controller holding C(ca.crt) and C(ca.key).
    type: path
  generate_ca:
    description:
      - Labs only. Create the CA in O(ca_dir) when it holds none (and O(ca_dir) itself, 0700, when it does not exist).
    type: bool
    default: false
  group_name:
    description:
      - Names a generated CA (C(valkeyops group CA NAME)).
    type: str
    default: valkey
  csr:
    description:
      - The node's certificate signing request, M(valkeyops.secure.valkey_tls_csr)'s RV(valkeyops.secure.valkey_tls_csr#module:csr).
        Without it, the task only loads (or generates) the CA and returns RV(ca_cert).
    type: str
  names:
    description:
      - The certificate's names, the inventory's for this node (host names and IP addresses). Required with O(csr).
    type: list
    elements: str
  days:
    description:
      - Validity of the certificate in days (1 to 825), cut at the CA's own expiry.
    type: int
    default: 365
attributes:
  check_mode:
    support: full
    description:
      - Signs (no side effect) when the CA exists; a CA that would be generated is not, and nothing is signed then.
  diff_mode:
    support: none
    description:
      - Nothing on a Valkey host changes here.
  platform:
    support: full
    platforms: posix
    description: Runs on the controller (Linux amd64, arm64) as a static Go binary.
seealso:
  - module: valkeyops.secure.valkey_tls_csr
  - module: valkeyops.secure.valkey_tls
"""

EXAMPLES = r"""
- name: Make the lab group CA once (run once, on the controller)
  valkeyops.secure.valkey_tls_sign:
    ca_dir: "{{ playbook_dir }}/group-ca"
    generate_ca: true
  delegate_to: localhost
  become: false
  run_once: true
  register: group_ca
"""

RETURN = r"""
cert:
  description: The signed certificate (PEM), when O(csr) was given.
  returned: success
  type: str
ca_cert:
  description: The group CA certificate (PEM); empty in check mode when the CA would be generated.
  returned: success
  type: str
ca_generated:
  description: Whether the CA was (in check mode, would be) generated.
  returned: success
  type: bool
certificate:
  description: The signed certificate's subject, issuer, SANs, validity and fingerprint.
  returned: when O(csr) was given
  type: dict
"""
