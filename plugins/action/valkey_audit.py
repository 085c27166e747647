# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for valkeyops.secure.valkey_audit (runs the Go binary)."""

from __future__ import annotations

from ansible_collections.valkeyops.secure.plugins.plugin_utils.binary_module import BinaryModuleAction

# Directives whose values are secrets (as in valkey_config's action plugin).
SECRET_DIRECTIVES = frozenset(
    ("requirepass", "primaryauth", "masterauth", "tls-key-file-pass", "tls-client-key-file-pass")
)


class ActionModule(BinaryModuleAction):
    MODULE = "valkey_audit"

    def extra_no_log_values(self, params):
        """Secrets inside desired: secret directives in settings, and any
        password or hash field of a user (the valkey_acl shape)."""
        found = set()
        desired = params.get("desired") or {}
        for key, value in (desired.get("settings") or {}).items():
            if str(key).strip().lower() in SECRET_DIRECTIVES and value not in (None, ""):
                found.add(str(value))
        for user in desired.get("users") or []:
            if not isinstance(user, dict):
                continue
            for key, value in user.items():
                if "password" in str(key) or "hash" in str(key):
                    for v in value if isinstance(value, list) else [value]:
                        if v not in (None, ""):
                            found.add(str(v))
        return found
