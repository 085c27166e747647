# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for valkeyops.secure.valkey_config (runs the Go binary)."""

from __future__ import annotations

from ansible_collections.valkeyops.secure.plugins.plugin_utils.binary_module import BinaryModuleAction

# Directives whose values are secrets. The Go module never prints them; the
# controller masks them too (defense in depth), under every spelling.
SECRET_DIRECTIVES = frozenset(
    ("requirepass", "primaryauth", "masterauth", "tls-key-file-pass", "tls-client-key-file-pass")
)


class ActionModule(BinaryModuleAction):
    MODULE = "valkey_config"

    def extra_no_log_values(self, params):
        found = set()
        for key, value in (params.get("settings") or {}).items():
            if str(key).strip().lower() in SECRET_DIRECTIVES and value not in (None, ""):
                found.add(str(value))
        return found
