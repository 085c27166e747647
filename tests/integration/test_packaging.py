"""Packaging: what the Galaxy tarball ships (and must not), the license the
headers point at, and the machine setup script that must not touch a Valkey it
did not start."""

from __future__ import annotations

import re
import subprocess
import tarfile

from conftest import ROOT

HEADER = re.compile(r"^# GNU General Public License v3\.0\+ \(see (\S+) or https://www\.gnu\.org/licenses/gpl-3\.0\.txt\)$", re.M)


def _members(tarball):
    with tarfile.open(tarball) as tf:
        return set(tf.getnames())


def _tracked_files():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / p for p in out.decode().split("\0") if p]


def test_tarball_ships_no_password_file(tarball):
    names = _members(tarball)
    assert "examples/inventory/hosts.yml" in names, "the example inventory should still ship"
    assert not [n for n in names if "password" in n.rsplit("/", 1)[-1].lower() and not n.endswith((".py", ".yml"))], names
    assert "examples/inventory/vault-password.txt" not in names


def test_every_license_header_points_at_the_shipped_license(tarball):
    names = _members(tarball)
    pointed = {}
    for path in _tracked_files():
        if path.suffix not in (".py", ".sh", ".yml", ".yaml", ".go") or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if not re.search(r"^# GNU General Public License", text[:2000], re.M):
            continue
        m = HEADER.search(text[:2000])
        assert m, "%s: a license header that does not name the license file" % path.relative_to(ROOT)
        pointed.setdefault(m.group(1), []).append(str(path.relative_to(ROOT)))
    assert pointed, "no license header found"
    for license_file, files in pointed.items():
        assert (ROOT / license_file).is_file(), "%s point at %s, which does not exist" % (files, license_file)
        assert license_file in names, "%s is not in the tarball" % license_file
        assert "GNU GENERAL PUBLIC LICENSE" in (ROOT / license_file).read_text()[:200]
    assert "GPL-3.0-or-later" in (ROOT / "galaxy.yml").read_text()


def test_tarball_ships_the_changelog(tarball):
    names = _members(tarball)
    assert {"CHANGELOG.md", "changelogs/changelog.yaml", "changelogs/config.yaml"} <= names


def test_install_system_deps_ends_no_process_it_did_not_start():
    """It used to `pkill -x valkey-server` after installing (every Valkey on the
    machine, a user's own included). Now no service starts during the install."""
    script = (ROOT / "scripts" / "install-system-deps.sh").read_text()
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"\b(pkill|killall|kill|systemctl\s+stop|service\s+\S+\s+stop)\b", code), "the setup script stops processes"
    assert "policy-rc.d" in code and "exit 101" in code
    assert code.index("policy-rc.d") < code.index("apt-get install"), "the policy must be in place before the install"
