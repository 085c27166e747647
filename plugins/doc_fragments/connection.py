# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The connection options every valkeyops.secure module shares."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Address of the Valkey server, as seen from the target host (the module runs there).
      - Ignored when O(login_unix_socket) is set.
    type: str
    default: 127.0.0.1
  login_port:
    description:
      - TCP port of the server; the TLS port when O(tls=true).
    type: int
    default: 6379
  login_unix_socket:
    description:
      - Path of the server's unix socket on the target. Takes precedence over O(login_host) and O(login_port).
    type: path
  login_user:
    description:
      - ACL user to log in as. Without it the server's C(default) user is used.
    type: str
  login_password:
    description:
      - Password of O(login_user) (or of the C(default) user).
      - Never shown in any output; masked in results, diffs, warnings and errors.
      - Sent to the module on standard input, never on the command line or to a file.
    type: str
  tls:
    description:
      - Connect with TLS.
      - Off by default because modules run on the target itself and usually reach the server over
        loopback or a unix socket; turn it on when the server only accepts TLS.
    type: bool
    default: false
  tls_ca_cert:
    description:
      - CA bundle (PEM file on the target) to verify the server's certificate. Defaults to the system roots.
    type: path
  tls_cert:
    description:
      - Client certificate (PEM file on the target), for servers with C(tls-auth-clients yes). Needs O(tls_key).
    type: path
  tls_key:
    description:
      - Private key of O(tls_cert) (PEM file on the target).
    type: path
  validate_certs:
    description:
      - Verify the server's certificate and name. Turn off only for tests.
    type: bool
    default: true
  tls_server_name:
    description:
      - Name to verify the server certificate against (SNI). Defaults to O(login_host).
    type: str
  connect_timeout:
    description:
      - Seconds to wait for the connection and the login.
    type: int
    default: 5
notes:
  - The connection options can be set once per play with C(module_defaults) and the action group
    C(group/valkeyops.secure.valkey).
  - The target needs a POSIX shell and nothing else; no Python is used on it.
  - Options of type C(path) are paths on the target and reach it as written; C(~) and C($VAR) are not
    expanded on the controller.
"""
