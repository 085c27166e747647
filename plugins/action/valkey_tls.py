# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for valkeyops.secure.valkey_tls (runs the Go binary)."""

from __future__ import annotations

from ansible_collections.valkeyops.secure.plugins.plugin_utils.binary_module import BinaryModuleAction


class ActionModule(BinaryModuleAction):
    MODULE = "valkey_tls"

    def derived_secrets(self, params, found):
        # Every base64 line of the key too, so that not even a fragment of it
        # could be shown (the Go side does the same).
        lines = set()
        key = params.get("key")
        if isinstance(key, str):
            for line in key.splitlines():
                line = line.strip()
                if len(line) >= 16 and not line.startswith("-----") and ":" not in line:
                    lines.add(line)
        return lines
