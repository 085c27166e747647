"""The change journal through ansible-playbook: a real server, the real
collection, and a throwaway Git repository holding the playbook, so the
journal's commit is checked against `git rev-parse HEAD`."""

from __future__ import annotations

import getpass
import json
import platform
import secrets
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import recap

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}

PLAY = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Configure
      valkeyops.secure.valkey_config:
        login_port: {port}
        journal_path: {journal}
{extra}        settings:
{settings}
"""


def _git(repo: Path, *args: str) -> str:
    import os

    env = dict(os.environ, **GIT_ENV)
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A throwaway Git repository; write(name, text) commits a playbook."""
    d = tmp_path / "config-repo"
    d.mkdir()
    _git(d, "init", "-q")

    class Repo:
        path = d

        def write(self, text: str, name: str = "site.yml", commit: bool = True) -> Path:
            p = d / name
            p.write_text(text)
            if commit:
                _git(d, "add", name)
                _git(d, "commit", "-q", "-m", "update " + name)
            return p

        def head(self) -> str:
            return _git(d, "rev-parse", "HEAD")

    return Repo()


def _play(port, journal, settings: dict, extra: str = "") -> str:
    lines = "".join("          %s: %s\n" % (k, json.dumps(v)) for k, v in settings.items())
    return PLAY.format(port=port, journal=journal, settings=lines, extra=extra)


def _entries(path: Path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _binary(installed: Path) -> Path:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]
    return installed / "ansible_collections" / "valkeyops" / "secure" / "files" / "bin" / ("valkeyops_linux_" + arch)


def test_one_line_per_change_with_the_commit(ansible, valkey, repo, tmp_path, installed):
    vk = valkey()
    journal = tmp_path / "log" / "changes.jsonl"
    pb = repo.write(_play(vk.port, journal, {"maxmemory": "200mb", "timeout": 30}))

    # Check mode: nothing recorded, not even a file.
    out = ansible.playbook(pb, "--check", "--diff")
    assert recap(out.stdout)["changed"] == 1
    assert not journal.exists()

    # The change: exactly one line, with the repository's commit.
    out = ansible.playbook(pb)
    assert recap(out.stdout)["changed"] == 1
    entries = _entries(journal)
    assert len(entries) == 1
    e = entries[0]
    assert e["module"] == "valkey_config"
    assert e["host"] == socket.gethostname()
    assert e["server"] == "127.0.0.1:%d" % vk.port and e["port"] == vk.port
    assert e["time"].endswith("Z")
    ctl = e["controller"]
    assert ctl["git_commit"] == repo.head() and len(ctl["git_commit"]) == 40
    assert ctl["git_dirty"] is False
    assert ctl["playbook"] == str(pb)
    assert ctl["task"].startswith(str(pb) + ":")
    assert ctl["user"] == getpass.getuser()
    changes = {c["name"]: c for c in e["changes"]}
    assert set(changes) == {"maxmemory", "timeout"}
    assert changes["maxmemory"]["before"] == "104857600" and changes["maxmemory"]["after"] == "209715200"
    assert changes["maxmemory"]["where"] == ["runtime", "file"]
    assert oct(journal.stat().st_mode & 0o777) == "0o640"
    assert oct(journal.parent.stat().st_mode & 0o777) == "0o750"

    # A no-op run: nothing more.
    out = ansible.playbook(pb)
    assert recap(out.stdout)["changed"] == 0
    assert len(_entries(journal)) == 1

    # An uncommitted edit of the playbook: recorded as dirty, same commit.
    head = repo.head()
    repo.write(_play(vk.port, journal, {"maxmemory": "300mb", "timeout": 30}), commit=False)
    ansible.playbook(pb)
    entries = _entries(journal)
    assert len(entries) == 2
    assert entries[1]["controller"]["git_commit"] == head
    assert entries[1]["controller"]["git_dirty"] is True
    assert [c["name"] for c in entries[1]["changes"]] == ["maxmemory"]

    # `valkeyops journal` on the target reads it back.
    proc = subprocess.run(
        [str(_binary(installed)), "journal", "--path", str(journal), "--directive", "maxmemory"],
        capture_output=True, text=True, check=True,
    )
    rows = proc.stdout.strip().splitlines()
    assert len(rows) == 3, proc.stdout
    assert "209715200" in rows[1] and head[:12] in rows[1]
    assert rows[2].split()[-1] == head[:12] + "+dirty"


def test_playbook_outside_git_records_no_commit(ansible, valkey, write_playbook, tmp_path):
    vk = valkey()
    journal = tmp_path / "changes.jsonl"
    pb = write_playbook(_play(vk.port, journal, {"timeout": 40}))
    ansible.playbook(pb)
    (e,) = _entries(journal)
    assert e["controller"]["git_commit"] == ""
    assert e["controller"]["git_dirty"] is None
    assert e["controller"]["playbook"] == str(pb)


def test_secret_directive_name_only(ansible, valkey, repo, tmp_path):
    vk = valkey()
    journal = tmp_path / "changes.jsonl"
    secret = "jr-" + secrets.token_hex(16)
    pb = repo.write(_play(vk.port, journal, {"requirepass": secret, "hz": 12}))
    out = ansible.playbook(pb, "-vvvv", "--diff")
    vk.password = secret
    assert recap(out.stdout)["changed"] == 1
    text = journal.read_text()
    (e,) = _entries(journal)
    changes = {c["name"]: c for c in e["changes"]}
    assert changes["requirepass"] == {"kind": "directive", "name": "requirepass", "secret": True, "where": ["runtime", "file"]}
    assert changes["hz"]["after"] == "12"
    for where, blob in (("journal", text), ("stdout", out.stdout), ("stderr", out.stderr)):
        assert secret not in blob, "the secret leaked into " + where
    assert vk.get("requirepass") == secret


@pytest.fixture
def readonly_dir(tmp_path):
    """A read-only tmpfs mount (root only); skips where mounting is not permitted."""
    d = tmp_path / "ro-log"
    d.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m,mode=0755", "tmpfs", str(d)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here: %s" % (proc.stderr.strip() or proc.returncode))
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=False)


def test_unwritable_journal_fails_and_changes_nothing(ansible, valkey, repo, readonly_dir):
    vk = valkey()
    journal = readonly_dir / "changes.jsonl"
    pb = repo.write(_play(vk.port, journal, {"maxmemory": "200mb"}))
    before = vk.snapshot()
    out = ansible.playbook(pb, check=False)
    assert out.returncode != 0
    assert recap(out.stdout)["failed"] == 1
    assert "cannot record the change: failed to write the change journal %s: read-only file system" % journal in out.stdout
    assert "nothing was changed" in out.stdout
    assert vk.snapshot() == before, "the server or its config file changed"

    # Check mode does not need the journal.
    out = ansible.playbook(pb, "--check")
    assert recap(out.stdout)["changed"] == 1

    # journal_required: false warns and applies.
    pb = repo.write(_play(vk.port, journal, {"maxmemory": "200mb"}, extra="        journal_required: false\n"))
    out = ansible.playbook(pb)
    assert recap(out.stdout)["changed"] == 1
    warnings = out.stdout + out.stderr
    assert "journal_required is false, so the change is applied without a record" in warnings
    assert warnings.count("journal_required is false") == 1, "one warning"
    assert vk.get("maxmemory") == str(200 * 1024 * 1024)
    assert "maxmemory 200mb" in vk.conf.read_text().splitlines()


def test_journal_off_and_bad_path(ansible, valkey, write_playbook, tmp_path):
    vk = valkey()
    journal = tmp_path / "changes.jsonl"
    pb = write_playbook(_play(vk.port, journal, {"timeout": 50}, extra="        journal: false\n"))
    out = ansible.playbook(pb)
    assert recap(out.stdout)["changed"] == 1
    assert not journal.exists()

    pb = write_playbook(_play(vk.port, "relative/changes.jsonl", {"timeout": 51}))
    out = ansible.playbook(pb, check=False)
    assert out.returncode != 0
    assert "is not an absolute path" in out.stdout
    assert vk.get("timeout") == "50"
