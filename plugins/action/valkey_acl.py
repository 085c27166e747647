# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for valkeyops.secure.valkey_acl (runs the Go binary)."""

from __future__ import annotations

import hashlib

from ansible_collections.valkeyops.secure.plugins.plugin_utils.binary_module import BinaryModuleAction


class ActionModule(BinaryModuleAction):
    MODULE = "valkey_acl"
    NO_LOG = ("passwords", "password_hashes")

    def extra_no_log_values(self, params):
        """Passwords and hashes live inside each item of users (and at the top
        level); mask them, and the SHA-256 the target computes from each
        password, anywhere in the result."""
        found = set()
        for spec in [params] + list(params.get("users") or []):
            if not isinstance(spec, dict):
                continue
            for pw in spec.get("passwords") or []:
                if pw not in (None, ""):
                    found.add(str(pw))
                    found.add(hashlib.sha256(str(pw).encode("utf-8")).hexdigest())
            for h in spec.get("password_hashes") or []:
                if h not in (None, ""):
                    found.add(str(h))
                    found.add(str(h).lower())
        return found
