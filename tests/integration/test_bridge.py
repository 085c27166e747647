"""The action plugin bridge: ssh and local connections, become (sudo to root
and to an unprivileged user, su without stdin), the binary cache, delegate_to,
an unsupported platform, and the Galaxy tarball itself."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from conftest import free_port, recap

TEST_USER = "vkotest"


def _ensure_user():
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", TEST_USER], check=True)
    # A new account is locked ("!"), and sshd without PAM refuses locked
    # accounts even for key logins: "*" means no password, not locked.
    subprocess.run(["usermod", "-p", "*", TEST_USER], check=True)
    sudoers = Path("/etc/sudoers.d/valkeyops-test")
    if not sudoers.exists():
        sudoers.write_text("%s ALL=(ALL) NOPASSWD: ALL\n" % TEST_USER)
        sudoers.chmod(0o440)
    return pwd.getpwnam(TEST_USER)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real sshd on 127.0.0.1 with throwaway keys; logins as TEST_USER."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create the test user and run sshd")
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd_bin).exists():
        pytest.fail("sshd is not installed: run `make system-deps`")
    user = _ensure_user()
    # Outside pytest's 0700 temp root: sshd reads authorized_keys as the user.
    d = Path(tempfile.mkdtemp(prefix="valkeyops-sshd-"))
    d.chmod(0o755)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client_key")], check=True)
    keys = d / "authorized_keys"
    keys.write_text((d / "client_key.pub").read_text())
    keys.chmod(0o644)
    port = free_port()
    cfg = d / "sshd_config"
    cfg.write_text(
        "\n".join(
            [
                "Port %d" % port,
                "ListenAddress 127.0.0.1",
                "HostKey %s" % (d / "host_key"),
                "PidFile %s" % (d / "sshd.pid"),
                "AuthorizedKeysFile %s" % keys,
                "StrictModes no",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin no",
                "AllowUsers %s" % TEST_USER,
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=open(d / "sshd.log", "w"))
    deadline = time.monotonic() + 60  # a guard against a hang; the event is the accepted connection
    import socket

    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("sshd did not listen on port %d: %s" % (port, (d / "sshd.log").read_text()))
            time.sleep(0.1)
    inventory = d / "inventory.ini"
    inventory.write_text(
        "[targets]\n"
        "sshhost ansible_host=127.0.0.1 ansible_port=%d ansible_user=%s ansible_connection=ssh "
        "ansible_ssh_private_key_file=%s "
        "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null' "
        "ansible_python_interpreter=/nonexistent/python3\n" % (port, TEST_USER, d / "client_key")
    )
    yield {"inventory": inventory, "user": user, "port": port}
    proc.terminate()
    proc.wait(5)
    shutil.rmtree(d, ignore_errors=True)


def _config_task(port, extra=""):
    return f"""\
        - valkeyops.secure.valkey_config:
            login_port: {port}
            persist: runtime
            settings:
              timeout: {{{{ 100 + idx }}}}{extra}
          loop: [0, 1]
          loop_control:
            loop_var: idx
"""


def test_ssh_caches_the_binary_once_per_host(ansible, valkey, write_playbook, sshd):
    vk = valkey()
    home = Path(sshd["user"].pw_dir)
    shutil.rmtree(home / ".ansible" / "valkeyops", ignore_errors=True)
    pb = write_playbook(
        f"""\
        - hosts: sshhost
          gather_facts: false
          tasks:
            - valkeyops.secure.valkey_config:
                login_port: {vk.port}
                persist: runtime
                journal: false  # an unprivileged user cannot write /var/log/valkeyops (test_journal.py)
                settings:
                  timeout: 103
              loop: [1, 2, 3]
        """
    )
    out = ansible.playbook(pb, "-vvv", inventory=str(sshd["inventory"]))
    assert recap(out.stdout, "sshhost")["changed"] == 1
    assert vk.get("timeout") == "103"
    assert out.stdout.count("caching valkeyops_linux_") == 1, "the binary must cross the wire once"
    cached = list((home / ".ansible" / "valkeyops").glob("*/valkeyops_linux_*"))
    assert len(cached) == 1 and os.stat(cached[0]).st_uid == sshd["user"].pw_uid
    assert oct(cached[0].stat().st_mode & 0o777) == "0o755"
    # A second playbook run: no transfer at all.
    out = ansible.playbook(pb, "-vvv", inventory=str(sshd["inventory"]))
    assert "caching valkeyops_linux_" not in out.stdout
    assert recap(out.stdout, "sshhost")["changed"] == 0
    # No remote temp dirs were left behind.
    assert not list((home / ".ansible" / "tmp").glob("ansible-tmp-*")) if (home / ".ansible" / "tmp").exists() else True


def test_ssh_become_root_edits_a_root_owned_file(ansible, valkey, write_playbook, sshd):
    vk = valkey()
    os.chown(vk.conf, 0, 0)
    vk.conf.chmod(0o640)
    pb = write_playbook(
        f"""\
        - hosts: sshhost
          gather_facts: false
          become: true
          tasks:
            - valkeyops.secure.valkey_config:
                login_port: {vk.port}
                settings:
                  maxmemory: 300mb
        """
    )
    out = ansible.playbook(pb, inventory=str(sshd["inventory"]))
    assert recap(out.stdout, "sshhost")["changed"] == 1
    assert "maxmemory 300mb" in vk.conf.read_text().splitlines()
    st = vk.conf.stat()
    assert (st.st_uid, st.st_gid, oct(st.st_mode & 0o777)) == (0, 0, "0o640")
    assert vk.get("maxmemory") == str(300 * 1024 * 1024)
    out = ansible.playbook(pb, inventory=str(sshd["inventory"]))
    assert recap(out.stdout, "sshhost")["changed"] == 0


def test_ssh_without_become_cannot_write_root_file_and_changes_nothing(ansible, valkey, write_playbook, sshd):
    vk = valkey()
    os.chown(vk.conf, 0, 0)
    vk.conf.chmod(0o644)
    vk.conf.parent.chmod(0o755)
    before = vk.snapshot()
    pb = write_playbook(
        f"""\
        - hosts: sshhost
          gather_facts: false
          tasks:
            - valkeyops.secure.valkey_config:
                login_port: {vk.port}
                settings:
                  maxmemory: 300mb
        """
    )
    out = ansible.playbook(pb, inventory=str(sshd["inventory"]), check=False)
    assert out.returncode != 0
    assert "failed to lock" in out.stdout or "failed to write" in out.stdout
    assert "nothing was changed" in out.stdout
    assert vk.snapshot() == before


@pytest.mark.parametrize(
    "method,user",
    [("sudo", TEST_USER), ("su", TEST_USER), ("sudo", "nobody")],
    ids=["sudo-to-unprivileged", "su-without-stdin", "sudo-to-user-without-home"],
)
def test_local_become_unprivileged(ansible, valkey, write_playbook, method, user):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    _ensure_user()
    vk = valkey()
    pb = write_playbook(
        f"""\
        - hosts: localhost
          gather_facts: false
          become: true
          become_method: {method}
          become_user: {user}
          vars:
            ansible_python_interpreter: /nonexistent/python3
          tasks:
            - valkeyops.secure.valkey_config:
                login_port: {vk.port}
                persist: runtime
                journal: false  # an unprivileged user cannot write /var/log/valkeyops (test_journal.py)
                settings:
                  timeout: 77
            - valkeyops.secure.valkey_config:
                login_port: {vk.port}
                persist: runtime
                journal: false  # an unprivileged user cannot write /var/log/valkeyops (test_journal.py)
                settings:
                  timeout: 77
        """
    )
    env = {"ANSIBLE_BECOME_EXE": "su"} if method == "su" else {}
    out = ansible.playbook(pb, env=env)
    assert recap(out.stdout)["changed"] == 1
    assert vk.get("timeout") == "77"
    # Nothing left in the shared temp dirs by the fallbacks.
    leftovers = [p for p in Path("/tmp").glob("ansible-moduletmp-*") if p.stat().st_mtime > time.time() - 60]
    assert leftovers == []


def test_delegate_to_runs_on_the_delegate(ansible, valkey, write_playbook, tmp_path):
    vk = valkey()
    inv = tmp_path / "inv.ini"
    inv.write_text("faraway ansible_host=127.0.0.1 ansible_port=1 ansible_connection=ssh\nlocalhost ansible_connection=local\n")
    pb = write_playbook(
        f"""\
        - hosts: faraway
          gather_facts: false
          tasks:
            - valkeyops.secure.valkey_config:
                login_port: {vk.port}
                persist: runtime
                settings:
                  timeout: 55
              delegate_to: localhost
        """
    )
    out = ansible.playbook(pb, inventory=str(inv))
    assert recap(out.stdout, "faraway")["changed"] == 1
    assert vk.get("timeout") == "55"


def test_unsupported_platform_is_a_clear_error(ansible, valkey, write_playbook, tmp_path):
    vk = valkey()
    before = vk.snapshot()
    # Fault injection: a target that says it is a Mac (a real one is not at hand).
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "uname").write_text("#!/bin/sh\necho 'Darwin arm64'\n")
    (fake / "uname").chmod(0o755)
    pb = write_playbook(
        f"""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - valkeyops.secure.valkey_config:
                login_port: {vk.port}
                settings:
                  timeout: 5
        """
    )
    out = ansible.playbook(pb, check=False, env={"PATH": "%s:%s" % (fake, os.environ["PATH"])})
    assert out.returncode != 0
    assert "the target reports platform 'Darwin arm64', for which this collection ships no binary; shipped platforms: linux_amd64, linux_arm64" in out.stdout
    assert vk.snapshot() == before


def test_tarball_ships_binaries_and_no_sources(tarball):
    with tarfile.open(tarball) as tf:
        names = set(tf.getnames())
    assert {"bin/valkeyops_linux_amd64", "bin/valkeyops_linux_arm64", "bin/SHA256SUMS"} <= names
    assert {"plugins/modules/valkey_config.py", "plugins/action/valkey_config.py", "meta/runtime.yml"} <= names
    assert not [n for n in names if n.endswith(".go") or n.startswith(("tests/", "bench/", ".venv", "internal/", "molecule/", ".pytest_cache", "dist/"))]


def test_binaries_are_static_and_stripped(tarball, tmp_path):
    with tarfile.open(tarball) as tf:
        tf.extract("bin/valkeyops_linux_amd64", tmp_path)
    b = tmp_path / "bin" / "valkeyops_linux_amd64"
    info = subprocess.run(["file", str(b)], capture_output=True, text=True).stdout if shutil.which("file") else ""
    if info:
        assert "statically linked" in info and "stripped" in info and "not stripped" not in info, info
    out = subprocess.run([str(b), "version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "valkeyops 0.1.0"


def test_ansible_doc_renders(ansible):
    out = subprocess.run(
        [str(ansible.venv / "bin" / "ansible-doc"), "valkeyops.secure.valkey_config"],
        capture_output=True,
        text=True,
        env=ansible.env(),
        check=True,
    )
    text = out.stdout
    for needle in ("settings", "persist", "login_password", "restart_required", "EXAMPLES", "Harden a running Valkey"):
        assert needle in text, needle
