"""The action plugin bridge: ssh and local connections, become (sudo to root
and to an unprivileged user; su refused), the binary cache and its integrity,
delegate_to, an unsupported platform, and the Galaxy tarball itself."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import subprocess
import tarfile
import tempfile
import time
import types
from pathlib import Path
from platform import machine as platform_machine

import pytest

from conftest import controller_python, labhosts, recap

TEST_USER = "vkotest"


@pytest.fixture(scope="session")
def sshd(request):
    """A lab host (scripts/lab/lab.py) with its own /etc, where TEST_USER and its
    sudoers entry live: the machine's /etc is never written. `user.pw_dir` is the
    machine-side path of the user's home on the host. The local-connection tests
    run ansible-playbook inside it, so it sees the venv's Python too."""
    if os.geteuid() != 0:
        pytest.skip("needs root for a lab host")
    (host,) = labhosts.acquire(1, [TEST_USER], shared=controller_python(request.config.getoption("--venv")))
    try:
        line = next(x for x in host.path("/etc/passwd").read_text().splitlines() if x.startswith(TEST_USER + ":"))
        _, _, uid, gid, _, home, _ = line.split(":")
        user = types.SimpleNamespace(pw_name=TEST_USER, pw_uid=int(uid), pw_gid=int(gid), pw_dir=str(host.path(home)))
        d = Path(tempfile.mkdtemp(prefix="valkeyops-bridge-"))
        inventory = d / "inventory.ini"
        inventory.write_text(
            "[targets]\n"
            "sshhost ansible_host=%s ansible_port=%d ansible_user=%s ansible_connection=ssh "
            "ansible_ssh_private_key_file=%s ansible_ssh_common_args='%s' "
            "ansible_python_interpreter=/nonexistent/python3\n"
            % (host.address, labhosts.SSH_PORT, TEST_USER, labhosts.client_key(), " ".join(labhosts.ssh_options()))
        )
        yield {"inventory": inventory, "user": user, "port": labhosts.SSH_PORT, "host": host}
        shutil.rmtree(d, ignore_errors=True)
    finally:
        labhosts.down([host])


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
def test_local_become_unprivileged(ansible, valkey, write_playbook, sshd, user):
    # Run inside the lab host, where TEST_USER exists (its localhost is the lab host).
    vk = valkey()
    task = {"login_port": vk.port, "persist": "runtime", "journal": False, "settings": {"timeout": 77}}
    pb = _play(write_playbook, "localhost", [task, task], become=True, become_user=user)
    start = time.time()
    out = ansible.playbook(pb, within=sshd["host"])
    assert recap(out.stdout)["changed"] == 1
    assert vk.get("timeout") == "77"
    # Nothing left in the shared temp dirs by the fallbacks (nobody has no
    # home: each task runs a private, verified copy from /tmp and removes it).
    assert _new_files(start, Path("/tmp"), "ansible-*") == [] and _new_files(start, Path("/tmp"), "valkeyops.*") == []


def test_su_is_refused_before_anything_is_sent(ansible, valkey, write_playbook, sshd):
    """0.1.0 wrote the arguments, login_password included, to args.json on
    the target for su (which cannot pass stdin): now refused, nothing sent.
    Run inside the lab host, where TEST_USER exists."""
    vk = valkey()
    vk.cli("CONFIG", "SET", "requirepass", "su-secret-0123")
    vk.password = "su-secret-0123"
    before = vk.snapshot()
    task = {"login_port": vk.port, "login_password": "su-secret-0123", "persist": "runtime", "journal": False, "settings": {"timeout": 78}}
    pb = _play(write_playbook, "localhost", [task], become=True, become_method="su", become_user=TEST_USER)
    start = time.time()
    out = ansible.playbook(pb, "-vvv", env={"ANSIBLE_BECOME_EXE": "su"}, check=False, within=sshd["host"])
    assert out.returncode != 0
    assert (
        "valkeyops.secure.valkey_config: become_method su cannot pass the module's arguments on stdin, and this collection never "
        "writes them to the target; use become_method sudo (or another become method that supports pipelining); nothing was changed"
    ) in out.stdout
    assert "su-secret-0123" not in out.stdout + out.stderr
    assert vk.snapshot() == before
    # No remote temp dir was even made (-vvv logs every command), and none appeared.
    assert "ansible-tmp-" not in out.stdout and "args.json" not in out.stdout
    home = Path(sshd["user"].pw_dir)
    host = sshd["host"]
    temp_dirs = ((Path("/tmp"), "ansible-*"), (host.path("/var/tmp"), "ansible-*"), (ansible.home / ".ansible" / "tmp", "*"), (home / ".ansible" / "tmp", "*"))
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


def _elf_facts(data):
    """(has a PT_INTERP program header, section names) of a 64-bit little-endian ELF file:
    a static binary has no interpreter, a stripped one no .symtab."""
    import struct
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not a 64-bit little-endian ELF file"
    phoff, shoff = struct.unpack_from("<QQ", data, 0x20)
    phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from("<HHHHH", data, 0x36)
    interp = any(struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 3 for i in range(phnum))
    def section(i):
        name, _, _, _, offset, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, offset, size
    _, str_off, _ = section(shstrndx)
    names = set()
    for i in range(shnum):
        name = section(i)[0]
        names.add(data[str_off + name:data.index(b"\0", str_off + name)].decode())
    return interp, names


def test_binaries_are_static_and_stripped(tarball, tmp_path):
    with tarfile.open(tarball) as tf:
        tf.extract("files/bin/valkeyops_linux_amd64", tmp_path)
    b = tmp_path / "files" / "bin" / "valkeyops_linux_amd64"
    interp, sections = _elf_facts(b.read_bytes())
    assert not interp, "dynamically linked: the binary names an ELF interpreter"
    assert ".symtab" not in sections and ".debug_info" not in sections, sections
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
    cached = sshd["host"].path("/root") / ".ansible" / "valkeyops" / key / "valkeyops_linux_amd64"
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


def test_failed_transfer_leaves_nothing_behind(ansible, valkey, write_playbook, sshd):
    """0.1.0 left the partial binary of every failed transfer in the cache
    (they filled a disk); now the task fails saying so and removes it. The
    disk fills after 1 MiB: a tmpfs over the user's cache, mounted in the lab
    host's own mount namespace (the machine never sees it)."""
    vk = valkey()
    before = vk.snapshot()
    user, host = sshd["user"], sshd["host"]
    home = Path(user.pw_dir)
    shutil.rmtree(home / ".ansible" / "valkeyops", ignore_errors=True)
    (home / ".ansible" / "valkeyops").mkdir(parents=True)
    for p in (home / ".ansible", home / ".ansible" / "valkeyops"):
        os.chown(p, user.pw_uid, user.pw_gid)
    inside = "/home/%s/.ansible/valkeyops" % TEST_USER
    opts = "size=1m,mode=0700,uid=%d,gid=%d" % (user.pw_uid, user.pw_gid)
    subprocess.run(host.exec_argv(["mount", "-t", "tmpfs", "-o", opts, "valkeyops-full", inside]), check=True)
    try:
        key, _, _ = _shipped(ansible)
        task = {"login_port": vk.port, "persist": "runtime", "journal": False, "settings": {"timeout": 93}}
        pb = _play(write_playbook, "sshhost", [task])
        start = time.time()
        out = ansible.playbook(pb, inventory=str(sshd["inventory"]), check=False)
        left = subprocess.run(host.exec_argv(["ls", "-A", inside + "/" + key]), capture_output=True, text=True).stdout.split()
    finally:
        subprocess.run(host.exec_argv(["umount", inside]), check=True)
    assert out.returncode != 0
    assert "valkeyops.secure.valkey_config: failed to transfer the valkeyops binary to the target: " in out.stdout
    assert "; nothing was changed" in out.stdout
    assert left == []
    assert _new_files(start, home / ".ansible" / "tmp", "*") == []
    assert vk.snapshot() == before


def test_a_cache_others_can_write_is_never_trusted(ansible, valkey, write_playbook, sshd):
    """The become user's home is group-writable, so a group member can swap
    its ~/.ansible for a tree of their own holding a binary of the right size:
    0.1.0 ran it. Now nothing is installed into (or run from) a cache that is
    not private; each task runs a verified copy from a private /tmp dir."""
    if platform_machine() != "x86_64":
        pytest.skip("plants the amd64 binary's path")
    user = sshd["user"]
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
        out = ansible.playbook(pb, "-vvv", within=sshd["host"])
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
