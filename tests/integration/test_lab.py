"""The lab (scripts/lab/lab.py) and the playbook tests that need real hosts:
a lab host is a host of its own (name, users, files, processes) and cannot
reach the machine's settings; the valkey_server role on a lab host."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from conftest import ROOT, labhosts, recap


def _ssh(host, lab, command: str, check=True):
    argv = ["ssh", "-i", str(labhosts.client_key()), "-p", str(labhosts.SSH_PORT)]
    for opt in labhosts.ssh_options():
        argv += opt.split(" ", 1)
    argv += ["%s@%s" % (lab.user, host.address), command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=check)


def _running(pid: int) -> bool:
    """Alive and not a zombie (the machine's init reaps orphans in its own time)."""
    try:
        return Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_lab_host_is_a_host_of_its_own(lab_hosts):
    machine = {
        "passwd": Path("/etc/passwd").read_bytes(),
        "sudoers.d": sorted(os.listdir("/etc/sudoers.d")),
        "hostname": socket.gethostname(),
        "overcommit": Path("/proc/sys/vm/overcommit_memory").read_text(),
    }
    lab = lab_hosts(2)
    one, two = lab
    out = _ssh(
        one,
        lab,
        "set -x; hostname; id -un; sudo -n sh -c '"
        "useradd --system lab-intruder && grep -c lab-intruder /etc/passwd; "
        "echo 2 > /proc/sys/vm/overcommit_memory || echo sysctl-refused; "
        "touch /usr/lab-was-here || echo usr-refused; "
        "valkey-server --bind %s --port 6379 --daemonize yes --save \"\" --dir /var/lib/valkey "
        "--pidfile /run/lab-test.pid --logfile /var/log/lab-test.log; "
        "while ! valkey-cli -h %s ping >/dev/null 2>&1; do :; done; cat /run/lab-test.pid'" % (one.address, one.address),
    )
    lines = out.stdout.split()
    assert lines[:3] == [one.name, lab.user, "1"], out
    assert "sysctl-refused" in lines and "usr-refused" in lines, out
    server_pid = int(lines[-1])
    # The server listens on the host's own address; the other host reaches it there.
    assert _ssh(two, lab, "hostname; valkey-cli -h %s -p 6379 ping" % one.address).stdout.split() == [two.name, "PONG"]
    # Nothing reached the machine.
    assert not Path("/usr/lab-was-here").exists()
    assert machine == {
        "passwd": Path("/etc/passwd").read_bytes(),
        "sudoers.d": sorted(os.listdir("/etc/sudoers.d")),
        "hostname": socket.gethostname(),
        "overcommit": Path("/proc/sys/vm/overcommit_memory").read_text(),
    }
    # down ends every process of the host (the daemonized server too) and its files.
    assert server_pid in one.processes()
    labhosts.down([one])
    assert not _running(server_pid)
    assert not one.dir.exists()
    assert two.is_up()


def test_valkey_server_role_never_shows_existing_secrets_with_diff(ansible, lab_hosts, write_playbook):
    """Issue 11 item 6: a valkey.conf another tool left (with requirepass and
    masterauth) is replaced by the role's; --diff -vvvv must not print it."""
    lab = lab_hosts(1)
    host = lab[0]
    requirepass, masterauth = "old-requirepass-7f3a9c1e5b", "old-masterauth-2d8e6b4f0a"
    conf = host.path("/etc/valkey/valkey.conf")
    conf.write_text("bind %s\nport 6379\nrequirepass %s\nmasterauth %s\n" % (host.address, requirepass, masterauth))
    conf.chmod(0o644)  # as another tool may leave it
    admin = "lab-admin-password-0123456789"
    pb = write_playbook(
        f"""\
        - hosts: lab
          become: true
          gather_facts: false
          vars:
            valkey_server_install: false
            valkey_server_bind: "{host.address}"
            valkey_server_admin_password: "{admin}"
          roles:
            - valkeyops.secure.valkey_server
        """
    )
    out = ansible.playbook(pb, "--diff", "-vvvv", inventory=str(lab.inventory))
    assert recap(out.stdout, host.name)["failed"] == 0
    for secret in (requirepass, masterauth, admin):
        assert secret not in out.stdout + out.stderr
    # The role's file replaced it (the old one kept as a root-only backup).
    assert conf.read_text().startswith("# Managed by valkeyops.secure")
    assert "requirepass" not in conf.read_text()
    (backup,) = conf.parent.glob("valkey.conf.*~")
    assert requirepass in backup.read_text() and oct(backup.stat().st_mode & 0o777) == "0o600"
    out = ansible.playbook(pb, "--diff", inventory=str(lab.inventory))
    assert recap(out.stdout, host.name)["changed"] == 0


def test_machine_state_names_what_the_tests_changed(lab_hosts, tmp_path):
    """scripts/lab/machine_state.py (.ci/run's before/after check), run inside a lab
    host whose "site" server the test changes: every change is named, no secret is
    written to the snapshot."""
    lab = lab_hosts(1)
    host = lab[0]
    admin = "site-admin-password-4b1f9e7c"
    conf = host.path("/etc/valkey/valkey.conf")
    acl = host.path("/etc/valkey/users.acl")
    acl.write_text("user default off\nuser valkeyops-admin on >%s ~* &* +@all\nuser app on >app-password-1234 ~app:* +@read\n" % admin)
    conf.write_text(
        "bind %s\nport 6379\ndaemonize yes\nunixsocket /run/valkey.sock\naclfile /etc/valkey/users.acl\n"
        "dir /var/lib/valkey\nsave \"\"\npidfile /run/valkey-site.pid\n" % host.address
    )
    env = ["env", "VALKEYOPS_SITE_ADMIN_PASSWORD=" + admin]
    tool = [str(ROOT / "scripts" / "lab" / "machine_state.py")]

    def inside(*argv, check=True):
        return subprocess.run(host.exec_argv(list(argv)), capture_output=True, text=True, timeout=120, check=check)

    inside("sh", "-c", "valkey-server /etc/valkey/valkey.conf && while [ ! -S /run/valkey.sock ]; do :; done")
    snaps = [tmp_path / ("snap%d.json" % i) for i in range(3)]
    inside(*env, "/usr/bin/python3", *tool, "snapshot", str(snaps[0]))
    inside(*env, "/usr/bin/python3", *tool, "snapshot", str(snaps[1]))
    same = inside("/usr/bin/python3", *tool, "compare", str(snaps[0]), str(snaps[1]))
    assert same.stdout.startswith("the machine is as it was")
    cli = ["env", "REDISCLI_AUTH=" + admin, "valkey-cli", "-s", "/run/valkey.sock", "--user", "valkeyops-admin", "--no-auth-warning"]
    inside(*cli, "CONFIG", "SET", "maxclients", "123")
    inside(*cli, "ACL", "SETUSER", "app", "off")
    with open(conf, "a") as f:
        f.write("# edited\n")
    inside(*env, "/usr/bin/python3", *tool, "snapshot", str(snaps[2]))
    changed = inside("/usr/bin/python3", *tool, "compare", str(snaps[0]), str(snaps[2]), check=False)
    assert changed.returncode == 1
    lines = changed.stderr.splitlines()
    assert lines[0] == "the tests changed the machine:" and lines[1].startswith("  etc: /etc/valkey/valkey.conf changed (")
    assert lines[2:] == [
        "  valkey site server: config /etc/valkey/valkey.conf changed",
        "  valkey site server: directive maxclients changed",
        "  valkey site server: ACL user app changed",
    ]
    for snap in snaps:
        assert admin not in snap.read_text() and "app-password-1234" not in snap.read_text()
        assert oct(snap.stat().st_mode & 0o777) == "0o600"
