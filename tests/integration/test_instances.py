"""Several Valkey instances per host (issue 14), on lab hosts: a bad instance
list fails before anything changes, with one sentence per problem; a host
converged with 0.1.0's single-instance role converges with this one without a
restart and without changing the server's settings."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import Ansible, _install, fixed_lab_hosts, labhosts, recap

ADMIN = "instances-admin-password-5c2e9a71"
# The 0.1.0 collection (commit eee2739 of main), built by `make ansible-test` from
# this clone's history (the Makefile's OLD_TARBALL); VALKEYOPS_OLD_TARBALL names another.
OLD_TARBALL = Path(os.environ.get("VALKEYOPS_OLD_TARBALL", str(Path(__file__).resolve().parents[2] / ".cache/valkeyops-0.1.0/dist/valkeyops-secure-0.1.0.tar.gz")))


# The instances tests' lab host: lab15, in the lane of the other lab13-15 files
# (pytest_lanes runs files whose hosts overlap one after the other), which has the
# most room; the lab7-9 lane was the ansible-test stage's longest.
OUR_HOSTS = (15,)


@pytest.fixture
def lab_host(tmp_path):
    """OUR_HOSTS started (skipped only when another run holds them), ended after the test."""
    lab = fixed_lab_hosts(OUR_HOSTS, tmp_path / "lab-inventory.ini")
    yield lab
    labhosts.down(list(lab))


def _play(host, role_vars: dict, post_tasks=None) -> list:
    """A play of the valkey_server role on a lab host, as Python data (JSON is YAML)."""
    play = {
        "hosts": "lab",
        "become": True,
        "gather_facts": False,
        "vars": {
            "valkey_server_install": False,
            "valkey_server_bind": host.address,
            "valkey_server_admin_password": ADMIN,
            **role_vars,
        },
        "roles": ["valkeyops.secure.valkey_server"],
    }
    if post_tasks:
        play["post_tasks"] = post_tasks
    return [play]


def _write(tmp_path: Path, plays: list, name: str = "play.yml") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(plays, indent=1))
    return path


def _tree(host, *dirs: str) -> dict:
    """Every path under the host's dirs with its mode, owner and content digest."""
    out = {}
    for inside in dirs:
        top = host.path(inside)
        for p in sorted(top.rglob("*")) if top.exists() else []:
            st = p.lstat()
            out[str(p.relative_to(top.parent))] = (st.st_mode, st.st_uid, p.read_bytes() if p.is_file() else None)
    return out


BAD_LISTS = [
    (
        "same name",
        [{"name": "cache", "port": 7001}, {"name": "cache", "port": 7002}],
        "valkey_server_instances[1] (cache): the name cache is used twice; each instance needs a name of its own",
    ),
    (
        "same port",
        [{"name": "cache", "port": 7001}, {"name": "store", "port": 7002, "tls_port": 7001}],
        "instances cache and store use the same port 7001; each instance needs its own",
    ),
    (
        "same socket",
        [{"name": "cache", "port": 7001, "unixsocket": "/run/valkey/shared.sock"},
         {"name": "store", "port": 7002, "unixsocket": "/run/valkey/shared.sock"}],
        "instances cache and store have the same unix socket /run/valkey/shared.sock; each instance needs its own",
    ),
    (
        "same data dir",
        [{"name": "default"}, {"name": "store", "port": 7002, "data_dir": "/var/lib/valkey"}],
        "instances default and store have the same data dir /var/lib/valkey; each instance needs its own",
    ),
    (
        "unsafe name",
        [{"name": "../../etc/cron.d/x", "port": 7001}],
        "valkey_server_instances[0]: name '../../etc/cron.d/x' is not a safe file name: use 1 to 32 lowercase letters, "
        "digits, '-' or '_', starting with a letter or digit",
    ),
    (
        "no port",
        [{"name": "cache"}],
        "valkey_server_instances[0] (cache): port is required for an instance other than 'default' (0 for none: TLS or socket only)",
    ),
]


def test_a_bad_instance_list_fails_before_anything_changes(ansible, lab_host, tmp_path):
    lab = lab_host
    host = lab[0]
    watched = ("/etc", "/var/lib/valkey", "/var/log")
    before = _tree(host, *watched)
    procs = sorted(host.processes())
    for case, instances, message in BAD_LISTS:
        pb = _write(tmp_path, _play(host, {"valkey_server_instances": instances}), "bad.yml")
        out = ansible.playbook(pb, inventory=str(lab.inventory), check=False)
        assert out.returncode == 2, case
        assert recap(out.stdout, host.name) == {"ok": 4, "changed": 0, "unreachable": 0, "failed": 1}, case
        assert '"msg": %s' % json.dumps(message + "; nothing was changed") in out.stdout, (case, out.stdout[-2000:])
        assert "Traceback" not in out.stdout + out.stderr, case
    assert _tree(host, *watched) == before
    assert sorted(host.processes()) == procs


def _run_id(host, socket="/run/valkey/valkey.sock") -> str:
    cli = ["env", "REDISCLI_AUTH=" + ADMIN, "valkey-cli", "-s", socket, "--user", "valkeyops-admin", "--no-auth-warning", "INFO", "server"]
    out = subprocess.run(host.exec_argv(cli), capture_output=True, text=True, check=True, timeout=60).stdout
    return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("run_id:"))


def _alive(pid: int) -> bool:
    """Running and not a zombie (a killed process may linger as one until reaped)."""
    try:
        return Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _changed_tasks(stdout: str) -> list[str]:
    tasks, current = [], None
    for line in stdout.splitlines():
        if line.startswith("TASK ["):
            current = line[len("TASK ["):line.rindex("]")]
        elif line.startswith("changed: ") and current:
            tasks.append(current)
    return tasks


def test_a_010_host_upgrades_without_a_restart_or_a_changed_setting(ansible, lab_host, tmp_path):
    """Issue 14's upgrade test: the single-instance layout of 0.1.0 (eee2739) is this
    version's default instance; the new role adds its new files (the sysctl.d file)
    and changes nothing else: same process (run_id), valkey_config changed=false.
    The settings new in 0.2's initial config (maxmemory-clients, sanitize-dump-payload:
    audit rules VK-064, VK-071) are not forced on an existing host: the audit reports
    them and the operator adopts them with valkey_server_extra_settings."""
    if not OLD_TARBALL.exists():
        if "VALKEYOPS_OLD_TARBALL" in os.environ:  # make ansible-test builds it: a missing one is a failure
            pytest.fail("the 0.1.0 collection is missing at %s" % OLD_TARBALL)
        pytest.skip("no 0.1.0 collection at %s (make ansible-test builds it)" % OLD_TARBALL)
    old = Ansible(ansible.venv, _install(ansible.venv, OLD_TARBALL, tmp_path / "collections-010"), ansible.home)
    lab = lab_host
    host = lab[0]
    check = [{"name": "The server's settings did not change", "ansible.builtin.assert": {"that": "valkey_server_config is not changed"}}]
    pb = _write(tmp_path, _play(host, {}, check))
    out = old.playbook(pb, inventory=str(lab.inventory))
    assert recap(out.stdout, host.name)["failed"] == 0
    run_id = _run_id(host)
    conf = host.path("/etc/valkey/valkey.conf").read_bytes()

    out = ansible.playbook(pb, inventory=str(lab.inventory))
    assert recap(out.stdout, host.name)["failed"] == 0
    assert _changed_tasks(out.stdout) == ["valkeyops.secure.valkey_server : Write the values for the next boot (/etc/sysctl.d/60-valkeyops.conf)"]
    assert _run_id(host) == run_id
    assert host.path("/etc/valkey/valkey.conf").read_bytes() == conf
    # And it stays so.
    out = ansible.playbook(pb, inventory=str(lab.inventory))
    assert recap(out.stdout, host.name)["changed"] == 0
    assert _run_id(host) == run_id


def test_a_pid_file_the_server_user_rewrote_gets_no_process_killed(ansible, lab_host, tmp_path):
    """The pid file lies in the server user's runtime dir: that user can point it at
    any process. Removing the instance (state absent) must signal only a
    valkey-server of the server's user, never what the file names."""
    lab = lab_host
    host = lab[0]
    instances = [{"name": "cache", "port": 7001}]
    pb = _write(tmp_path, _play(host, {"valkey_server_instances": instances}))
    ansible.playbook(pb, inventory=str(lab.inventory))
    # A root process of the host, and the server's own user writing its pid into the file.
    victim = subprocess.run(host.exec_argv(["sh", "-c", "sleep 600 >/dev/null 2>&1 & echo $!"]), capture_output=True, text=True,
                            check=True, timeout=60).stdout.strip()
    real = subprocess.run(host.exec_argv(["cat", "/run/valkey-cache/valkey-server.pid"]), capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()
    subprocess.run(host.exec_argv(["runuser", "-u", "valkey", "--", "sh", "-c", "echo %s > /run/valkey-cache/valkey-server.pid" % victim]),
                   check=True, timeout=60)
    pb = _write(tmp_path, _play(host, {"valkey_server_instances": [{"name": "cache", "state": "absent"}]}), "absent.yml")
    out = ansible.playbook(pb, inventory=str(lab.inventory))
    assert recap(out.stdout, host.name)["failed"] == 0
    assert _alive(int(victim)), "the role killed the process the pid file named"
    # The server itself was not signalled either (the file no longer names it), and its files are gone.
    assert _alive(int(real))
    assert not host.path("/etc/valkey/valkey-cache.conf").exists()
    subprocess.run(host.exec_argv(["kill", real, victim]), check=True, timeout=60)


ROTATE_BAD = [
    (
        "a user no instance has",
        [{"name": "ghost", "new_password": "a-long-enough-new-password-1"}],
        "valkey_acl_rotate: user ghost must be a user of one of the instances rotated here (cache, store) or the admin user "
        "valkeyops-admin, and its new password must have at least 16 characters and not be a well-known default; nothing was changed",
    ),
    (
        "a short new password",
        [{"name": "shop", "new_password": "short-pw-9"}],
        "valkey_acl_rotate: user shop must be a user of one of the instances rotated here (cache, store) or the admin user "
        "valkeyops-admin, and its new password must have at least 16 characters and not be a well-known default; nothing was changed",
    ),
]


@pytest.mark.parametrize("case,users,message", ROTATE_BAD, ids=[c[0] for c in ROTATE_BAD])
def test_rotate_credentials_refuses_before_anything_changes(ansible, tmp_path, case, users, message):
    """rotate_credentials.yml checks every listed user against the instances it rotates
    (the instance's acl_users, else valkey_acl_users) before it connects to any: the
    play stops at the check, with no server to reach and no password in the output."""
    instances = [{"name": "cache", "port": 7001},
                 {"name": "store", "port": 7002, "acl_users": [{"name": "shop", "passwords": ["x" * 20]}]}]
    pb = _write(tmp_path, [{"import_playbook": "valkeyops.secure.rotate_credentials"}], "rotate.yml")
    extra = {"valkey_hosts": "localhost", "valkey_server_instances": instances, "valkey_rotate_users": users,
             "valkey_acl_users": [], "valkey_server_admin_password": ADMIN}
    out = ansible.playbook(pb, "-e", json.dumps(extra), check=False)
    assert out.returncode == 2, out.stdout[-3000:]
    assert recap(out.stdout)["changed"] == 0
    assert '"msg": %s' % json.dumps(message) in out.stdout, out.stdout[-3000:]
    assert users[0]["new_password"] not in out.stdout + out.stderr
    assert "Add the new passwords" not in out.stdout
