# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for valkeyops.secure.valkey_acl (runs the Go binary)."""

from __future__ import annotations

import hashlib

from ansible_collections.valkeyops.secure.plugins.plugin_utils.binary_module import BinaryModuleAction


class ActionModule(BinaryModuleAction):
    MODULE = "valkey_acl"

    def derived_secrets(self, params, found):
        """The SHA-256 the target computes from each password, and each hash
        in lowercase, anywhere in the result."""
        derived = set()
        for spec in [params] + list(params.get("users") or []):
            for pw in spec.get("passwords") or ():
                derived.add(hashlib.sha256(pw.encode("utf-8")).hexdigest())
            for h in spec.get("password_hashes") or ():
                derived.add(h.lower())
        return derived
