"""The action plugin bridge: ssh and local connections, become (sudo to root
and to an unprivileged user; su refused), the binary cache and its integrity,
delegate_to, an unsupported platform, and the Galaxy tarball itself."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import resource
import shutil
import subprocess
import tarfile
import tempfile
import time
from platform import machine as platform_machine
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


def _start_sshd(preexec_fn=None):
    """A real sshd on 127.0.0.1 with throwaway keys; logins as TEST_USER.
    Yields what the tests need; stops it and removes its files after."""
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
    proc = subprocess.Popen(
        [sshd_bin, "-D", "-e", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=open(d / "sshd.log", "w"), preexec_fn=preexec_fn
    )
    deadline = time.time() + 10
    import socket

    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
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


@pytest.fixture(scope="session")
def sshd():
    yield from _start_sshd()


def _play(write_playbook, hosts, tasks, **play):
    """A playbook of valkey_config tasks, built as data (JSON is YAML)."""
    steps = [{"valkeyops.secure.valkey_config": t} for t in tasks]
    return write_playbook(json.dumps([dict({"hosts": hosts, "gather_facts": False, "tasks": steps}, **play)]))


def _new_files(since, where, pattern):
    """Entries matching pattern in where changed after since (other runs on the machine may leave older ones)."""
    if not where.exists():
        return []
    return sorted(str(p) for p in where.glob(pattern) if p.lstat().st_mtime >= since - 1)


def _shipped(ansible):
    """(cache key, sha256 and size of the amd64 binary) of the installed collection, as the action plugin computes them."""
    bindir = ansible.collections / "ansible_collections" / "valkeyops" / "secure" / "files" / "bin"
    binary = bindir / "valkeyops_linux_amd64"
    return hashlib.sha256((bindir / "SHA256SUMS").read_bytes()).hexdigest()[:16], hashlib.sha256(binary.read_bytes()).hexdigest(), binary.stat().st_size


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


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


@pytest.mark.parametrize("user", [TEST_USER, "nobody"], ids=["sudo-to-unprivileged", "sudo-to-user-without-home"])
def test_local_become_unprivileged(ansible, valkey, write_playbook, user):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    _ensure_user()
    vk = valkey()
    task = {"login_port": vk.port, "persist": "runtime", "journal": False, "settings": {"timeout": 77}}
    pb = _play(write_playbook, "localhost", [task, task], become=True, become_user=user)
    start = time.time()
    out = ansible.playbook(pb)
    assert recap(out.stdout)["changed"] == 1
    assert vk.get("timeout") == "77"
    # Nothing left in the shared temp dirs by the fallbacks (nobody has no
    # home: each task runs a private, verified copy from /tmp and removes it).
    assert _new_files(start, Path("/tmp"), "ansible-*") == [] and _new_files(start, Path("/tmp"), "valkeyops.*") == []


def test_su_is_refused_before_anything_is_sent(ansible, valkey, write_playbook):
    """0.1.0 wrote the arguments, login_password included, to args.json on
    the target for su (which cannot pass stdin): now refused, nothing sent."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    _ensure_user()
    vk = valkey()
    vk.cli("CONFIG", "SET", "requirepass", "su-secret-0123")
    vk.password = "su-secret-0123"
    before = vk.snapshot()
    task = {"login_port": vk.port, "login_password": "su-secret-0123", "persist": "runtime", "journal": False, "settings": {"timeout": 78}}
    pb = _play(write_playbook, "localhost", [task], become=True, become_method="su", become_user=TEST_USER)
    start = time.time()
    out = ansible.playbook(pb, "-vvv", env={"ANSIBLE_BECOME_EXE": "su"}, check=False)
    assert out.returncode != 0
    assert (
        "valkeyops.secure.valkey_config: become_method su cannot pass the module's arguments on stdin, and this collection never "
        "writes them to the target; use become_method sudo (or another become method that supports pipelining); nothing was changed"
    ) in out.stdout
    assert "su-secret-0123" not in out.stdout + out.stderr
    assert vk.snapshot() == before
    # No remote temp dir was even made (-vvv logs every command), and none appeared.
    assert "ansible-tmp-" not in out.stdout and "args.json" not in out.stdout
    home = Path(pwd.getpwnam(TEST_USER).pw_dir)
    temp_dirs = ((Path("/tmp"), "ansible-*"), (Path("/var/tmp"), "ansible-*"), (ansible.home / ".ansible" / "tmp", "*"), (home / ".ansible" / "tmp", "*"))
    for where, pattern in temp_dirs:
        assert _new_files(start, where, pattern) == [], where


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
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a private mount namespace")
    vk = valkey()
    before = vk.snapshot()
    # Fault injection: a RISC-V target (a real one is not at hand). The script
    # reads /proc/sys/kernel/arch (Linux 6.1+), else runs `uname` with the
    # system directories first in PATH, so both are faked by bind mounts, in a
    # mount namespace of the play's own (the machine's are untouched).
    fake_uname = tmp_path / "uname"
    fake_uname.write_text("#!/bin/sh\necho 'Linux riscv64'\n")
    fake_uname.chmod(0o755)
    fake_arch = tmp_path / "arch"
    fake_arch.write_text("riscv64\n")
    pb = _play(write_playbook, "localhost", [{"login_port": vk.port, "settings": {"timeout": 5}}])
    cmd = [str(ansible.venv / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(pb)]
    mounts = 'mount --bind "$1" "$2" && { [ ! -e /proc/sys/kernel/arch ] || mount --bind "$3" /proc/sys/kernel/arch; } && shift 3 && exec "$@"'
    out = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", mounts, "sh", str(fake_uname), os.path.realpath(shutil.which("uname")), str(fake_arch)]
        + cmd,
        capture_output=True,
        text=True,
        env=ansible.env(),
        cwd=str(tmp_path),
        timeout=300,
    )
    assert out.returncode != 0
    assert "the target reports platform 'Linux riscv64', for which this collection ships no binary; shipped platforms: linux_amd64, linux_arm64" in out.stdout
    assert vk.snapshot() == before


def test_tarball_ships_binaries_and_no_sources(tarball):
    with tarfile.open(tarball) as tf:
        names = set(tf.getnames())
    assert {"files/bin/valkeyops_linux_amd64", "files/bin/valkeyops_linux_arm64", "files/bin/SHA256SUMS"} <= names
    assert {"plugins/modules/valkey_config.py", "plugins/action/valkey_config.py", "meta/runtime.yml"} <= names
    # ansible-test reads every file under a top-level bin/ as Python (compile and pep8 crashed on the binaries).
    assert not [n for n in names if n == "bin" or n.startswith("bin/")]
    assert not [n for n in names if n.endswith(".go") or n.startswith(("tests/", "bench/", ".venv", "internal/", "molecule/", ".pytest_cache", "dist/"))]


def test_binaries_are_static_and_stripped(tarball, tmp_path):
    with tarfile.open(tarball) as tf:
        tf.extract("files/bin/valkeyops_linux_amd64", tmp_path)
    b = tmp_path / "files" / "bin" / "valkeyops_linux_amd64"
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


def test_become_E_never_runs_a_binary_the_login_user_planted(ansible, valkey, write_playbook, sshd, tmp_path):
    """With `become_flags: -E` sudo keeps the login user's HOME: 0.1.0 ran,
    as root, the binary that user planted at $HOME/.ansible/valkeyops/<key>/
    and gave it every secret on stdin. Root's cache comes from root's passwd
    entry now, so the planted binary never runs."""
    if platform_machine() != "x86_64":
        pytest.skip("plants the amd64 binary's path")
    vk = valkey()
    user = sshd["user"]
    key, digest, size = _shipped(ansible)
    marker = tmp_path / "planted-binary-ran"
    planted = Path(user.pw_dir) / ".ansible" / "valkeyops" / key / "valkeyops_linux_amd64"
    shutil.rmtree(Path(user.pw_dir) / ".ansible" / "valkeyops", ignore_errors=True)
    planted.parent.mkdir(parents=True)
    # As big as the real one, so no size check could tell them apart.
    planted.write_bytes((b"#!/bin/sh\ncat > %s\necho '{\"changed\": false}'\n" % str(marker).encode()).ljust(size, b"#"))
    for p in (planted.parents[2], planted.parents[1], planted.parent, planted):
        os.chown(p, user.pw_uid, user.pw_gid)
    planted.chmod(0o755)
    task = {"login_port": vk.port, "persist": "runtime", "journal": False, "settings": {"timeout": 91}}
    pb = _play(write_playbook, "sshhost", [task], become=True, become_flags="-E")
    out = ansible.playbook(pb, inventory=str(sshd["inventory"]))
    assert not marker.exists(), "root ran the binary the login user planted"
    assert recap(out.stdout, "sshhost")["changed"] == 1
    assert vk.get("timeout") == "91"
    cached = Path(pwd.getpwuid(0).pw_dir) / ".ansible" / "valkeyops" / key / "valkeyops_linux_amd64"
    st = cached.stat()
    assert (st.st_uid, oct(st.st_mode & 0o777), _sha256(cached)) == (0, "0o755", digest)


def test_truncated_cached_binary_is_repaired(ansible, valkey, write_playbook, sshd):
    """0.1.0 ran a truncated cached binary and failed forever ("Segmentation
    fault"); its size no longer matches, so it is reinstalled and verified."""
    vk = valkey()
    home = Path(sshd["user"].pw_dir)
    key, digest, size = _shipped(ansible)
    task = {"login_port": vk.port, "persist": "runtime", "journal": False, "settings": {"timeout": 92}}
    pb = _play(write_playbook, "sshhost", [task])
    ansible.playbook(pb, inventory=str(sshd["inventory"]))
    cached = home / ".ansible" / "valkeyops" / key / "valkeyops_linux_amd64"
    with open(cached, "r+b") as f:
        f.truncate(size // 2)
    vk.cli("CONFIG", "SET", "timeout", "0")
    out = ansible.playbook(pb, "-vvv", inventory=str(sshd["inventory"]))
    assert recap(out.stdout, "sshhost")["changed"] == 1
    assert vk.get("timeout") == "92"
    assert out.stdout.count("caching valkeyops_linux_amd64") == 1
    assert (cached.stat().st_size, _sha256(cached)) == (size, digest)


@pytest.fixture
def sshd_small_files():
    """An sshd whose sessions cannot write a file over 1 MiB (RLIMIT_FSIZE):
    a transfer of the binary fails half way, as on a full disk."""
    yield from _start_sshd(preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20)))


def test_failed_transfer_leaves_nothing_behind(ansible, valkey, write_playbook, sshd_small_files):
    """0.1.0 left the partial binary of every failed transfer in the cache
    (they filled a disk); now the task fails saying so and removes it."""
    vk = valkey()
    before = vk.snapshot()
    home = Path(sshd_small_files["user"].pw_dir)
    shutil.rmtree(home / ".ansible" / "valkeyops", ignore_errors=True)
    key, _, _ = _shipped(ansible)
    task = {"login_port": vk.port, "persist": "runtime", "journal": False, "settings": {"timeout": 93}}
    pb = _play(write_playbook, "sshhost", [task])
    start = time.time()
    out = ansible.playbook(pb, inventory=str(sshd_small_files["inventory"]), check=False)
    assert out.returncode != 0
    assert "valkeyops.secure.valkey_config: failed to transfer the valkeyops binary to the target: " in out.stdout
    assert "; nothing was changed" in out.stdout
    cache = home / ".ansible" / "valkeyops" / key
    assert sorted(p.name for p in cache.iterdir()) == []
    assert _new_files(start, home / ".ansible" / "tmp", "*") == []
    assert vk.snapshot() == before


def test_a_cache_others_can_write_is_never_trusted(ansible, valkey, write_playbook, tmp_path):
    """The become user's home is group-writable, so a group member can swap
    its ~/.ansible for a tree of their own holding a binary of the right size:
    0.1.0 ran it. Now nothing is installed into (or run from) a cache that is
    not private; each task runs a verified copy from a private /tmp dir."""
    if os.geteuid() != 0 or platform_machine() != "x86_64":
        pytest.skip("needs root; plants the amd64 binary's path")
    user = _ensure_user()
    vk = valkey()
    key, _, size = _shipped(ansible)
    home = Path(user.pw_dir)
    intruder = pwd.getpwnam("nobody")
    # Where the planted binary, running as the become user, can leave its mark.
    markers = Path(tempfile.mkdtemp(prefix="valkeyops-marker-"))
    markers.chmod(0o777)
    marker = markers / "planted-binary-ran"
    shutil.rmtree(home / ".ansible", ignore_errors=True)
    planted = home / ".ansible" / "valkeyops" / key / "valkeyops_linux_amd64"
    planted.parent.mkdir(parents=True)
    planted.write_bytes((b"#!/bin/sh\ntouch %s\necho '{\"changed\": false}'\n" % str(marker).encode()).ljust(size, b"#"))
    for p in (home / ".ansible", planted.parents[1], planted.parent, planted):
        os.chown(p, intruder.pw_uid, intruder.pw_gid)
        p.chmod(0o755)
    mode = home.stat().st_mode & 0o777
    home.chmod(0o775)
    try:
        task = {"login_port": vk.port, "persist": "runtime", "journal": False, "settings": {"timeout": 94}}
        pb = _play(write_playbook, "localhost", [task, task], become=True, become_user=TEST_USER)
        start = time.time()
        out = ansible.playbook(pb, "-vvv")
        ran = marker.exists()
        left = sorted(p.name for p in planted.parent.iterdir())
        planted_uid = planted.stat().st_uid
    finally:
        home.chmod(mode)
        shutil.rmtree(markers)
        shutil.rmtree(home / ".ansible", ignore_errors=True)  # the intruder's tree would spoil the other tests' cache
    assert not ran, "a binary another user planted ran"
    assert recap(out.stdout)["changed"] == 1
    assert vk.get("timeout") == "94"
    assert out.stdout.count("caching valkeyops_linux_amd64") == 2, "not private: a verified copy for each task"
    assert left == ["valkeyops_linux_amd64"] and planted_uid == intruder.pw_uid
    assert _new_files(start, Path("/tmp"), "valkeyops.*") == []
