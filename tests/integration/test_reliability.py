"""Reliability: faults end in one clear failure and no drift between the
running server and its file; concurrent runs all land; secrets stay out of
argv and the server log."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ArgvWatcher, free_port, recap


def _task_playbook(write_playbook, port, settings, name="play.yml", extra=""):
    body = json.dumps(
        [
            {
                "hosts": "localhost",
                "gather_facts": False,
                "tasks": [
                    dict(
                        {
                            "name": "Configure",
                            "valkeyops.secure.valkey_config": dict({"login_port": port, "settings": settings}, **json.loads(extra or "{}")),
                        }
                    )
                ],
            }
        ]
    )
    return write_playbook(body, name)


def test_server_down_fails_clearly_and_leaves_the_file(ansible, valkey, write_playbook):
    vk = valkey()
    before = vk.conf.read_bytes()
    port = vk.port
    vk.stop()
    pb = _task_playbook(write_playbook, port, {"timeout": 9})
    out = ansible.playbook(pb, check=False)
    assert out.returncode != 0
    assert f"cannot connect to 127.0.0.1:{port}" in out.stdout
    assert "connection refused" in out.stdout
    assert "nothing was changed" in out.stdout
    assert vk.conf.read_bytes() == before


def test_wrong_password_fails_clearly(ansible, valkey, write_playbook, tmp_path):
    vk = valkey()
    vk.cli("CONFIG", "SET", "requirepass", "right-password-123")
    vk.password = "right-password-123"
    before = vk.snapshot()
    wrong = "wrong-" + secrets.token_hex(8)
    (tmp_path / "vars.json").write_text(json.dumps({"pw": wrong}))
    pb = _task_playbook(write_playbook, vk.port, {"timeout": 9}, extra=json.dumps({"login_password": "{{ pw }}"}))
    out = ansible.playbook(pb, "-vvvv", "-e", "@%s" % (tmp_path / "vars.json"), check=False)
    assert out.returncode != 0
    assert "authentication failed (wrong user name or password, or the user is disabled)" in out.stdout
    assert wrong not in out.stdout + out.stderr
    assert vk.snapshot() == before


def test_tls_required_but_not_offered(ansible, valkey, write_playbook):
    vk = valkey()
    before = vk.snapshot()
    pb = _task_playbook(write_playbook, vk.port, {"timeout": 9}, extra=json.dumps({"tls": True, "connect_timeout": 2}))
    out = ansible.playbook(pb, check=False)
    assert out.returncode != 0
    assert f"cannot connect to 127.0.0.1:{vk.port}" in out.stdout
    assert "nothing was changed" in out.stdout
    assert vk.snapshot() == before


def test_disk_full_rolls_back_the_runtime_change(ansible, valkey, write_playbook, tmp_path):
    conf_dir = tmp_path / "full"
    conf_dir.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k,mode=0755", "tmpfs", str(conf_dir)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        vk = valkey(conf_dir=conf_dir)
        # Fill the filesystem so the rewritten config cannot be written.
        filler = conf_dir / "filler"
        subprocess.run(["dd", "if=/dev/zero", "of=%s" % filler, "bs=1k", "count=64"], capture_output=True)
        before = vk.snapshot()
        pb = _task_playbook(write_playbook, vk.port, {"maxmemory": "3gb", "timeout": 61, "notify-keyspace-events": "KEA" * 500})
        out = ansible.playbook(pb, check=False)
        assert out.returncode != 0
        assert f"failed to write {vk.conf}" in out.stdout
        assert "no space left on device" in out.stdout
        assert "was rolled back; nothing was changed" in out.stdout
        assert vk.snapshot() == before, "runtime and file must both be as before"
        assert [p.name for p in conf_dir.iterdir() if p.name.startswith(".valkey.conf")] == [], "temp file left behind"
    finally:
        subprocess.run(["umount", "-l", str(conf_dir)])


def test_aclfile_deleted_under_the_server(ansible, valkey, write_playbook, tmp_path):
    acl = tmp_path / "users.acl"
    acl.write_text("user default on nopass ~* &* +@all\n")
    vk = valkey("aclfile %s\n" % acl)
    acl.unlink()
    pb = _task_playbook(write_playbook, vk.port, {"timeout": 33})
    out = ansible.playbook(pb)
    assert recap(out.stdout)["changed"] == 1
    assert vk.get("timeout") == "33"
    assert "timeout 33" in vk.conf.read_text().splitlines()


def test_eight_parallel_runs_all_land(ansible, valkey, write_playbook):
    vk = valkey()
    directives = {
        "timeout": 101,
        "tcp-keepalive": 102,
        "hz": 13,
        "maxclients": 1004,
        "maxmemory": "105mb",
        "slowlog-max-len": 106,
        "latency-monitor-threshold": 107,
        "set-max-intset-entries": 1008,
    }
    books = [
        _task_playbook(write_playbook, vk.port, {name: value}, name="p%d.yml" % i)
        for i, (name, value) in enumerate(directives.items())
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        outs = list(pool.map(lambda pb: ansible.playbook(pb, check=False), books))
    for out in outs:
        assert out.returncode == 0, out.stdout[-2000:]
    text = vk.conf.read_text()
    lines = text.splitlines()
    for name, value in directives.items():
        assert vk.get(name) == (
            str(105 * 1024 * 1024) if name == "maxmemory" else str(value)
        ), name
        written = [l for l in lines if l.split(" ", 1)[0] == name]
        assert written == ["%s %s" % (name, value)], (name, written)
    assert lines[0] == "# valkeyops test server", "file damaged"
    # The file still loads: a second server starts from it.
    port = free_port()
    proc = subprocess.Popen(["valkey-server", str(vk.conf), "--port", str(port), "--logfile", ""], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60  # a guard against a hang; the event is the PONG
        answered = False
        while not answered and time.monotonic() < deadline and proc.poll() is None:
            ping = subprocess.run(["valkey-cli", "-p", str(port), "ping"], capture_output=True, text=True)
            answered = ping.stdout.strip() == "PONG"
            if not answered:
                time.sleep(0.1)
        assert proc.poll() is None, "valkey-server refused the edited file: %s" % proc.stdout.read()
        assert answered, "the server started from the edited file never answered PING"
    finally:
        proc.kill()
        proc.wait()


def test_secrets_never_in_argv_or_server_log(ansible, valkey, write_playbook, tmp_path):
    vk = valkey()
    secret = "argv-" + secrets.token_hex(16)
    (tmp_path / "vars.json").write_text(json.dumps({"pw": secret}))
    pb = write_playbook(
        f"""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - valkeyops.secure.valkey_config:
                login_port: {vk.port}
                settings:
                  requirepass: "{{{{ pw }}}}"
            - valkeyops.secure.valkey_config:
                login_port: {vk.port}
                login_password: "{{{{ pw }}}}"
                settings:
                  timeout: 77
              loop: "{{{{ range(20) | list }}}}"
        """
    )
    with ArgvWatcher() as argv:
        out = ansible.playbook(pb, "-vvvv", "-e", "@%s" % (tmp_path / "vars.json"))
    assert recap(out.stdout)["changed"] == 2
    assert argv.saw("module valkey_config"), "the watcher never saw the module run"
    assert not argv.saw(secret), "a secret showed in a process's argv"
    assert secret not in vk.log.read_text()
    assert secret not in out.stdout + out.stderr


def test_server_killed_mid_task(ansible, valkey, write_playbook):
    """The module waits for the config directory's lock (held here, as a
    concurrent run would: /proc/locks shows it blocked); the server is
    killed; the lock is released. The module reads the server again under
    the lock, so the task must fail clearly, saying nothing was changed, and
    leave the file as it was: a restarted server runs exactly what it ran
    before."""
    import fcntl
    import signal

    vk = valkey()
    before_file = vk.conf.read_bytes()
    before_runtime = vk.cli("CONFIG", "GET", "*")
    pb = _task_playbook(write_playbook, vk.port, {"maxmemory": "2gb", "timeout": 45})
    fd = os.open(str(vk.conf.parent), os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        proc = subprocess.Popen(
            [str(ansible.venv / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(pb)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ansible.env(), cwd=str(pb.parent),
        )
        # Wait for the event: the module blocked on the lock ("->" in /proc/locks).
        st = os.stat(vk.conf.parent)
        inode = "%02x:%02x:%d" % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
        deadline = time.time() + 60
        while not any(f[1:3] == ["->", "FLOCK"] and f[6] == inode
                      for f in (line.split() for line in Path("/proc/locks").read_text().splitlines()) if len(f) >= 7):
            assert time.time() < deadline and proc.poll() is None, "the module never waited for the lock"
            time.sleep(0.001)  # poll the kernel's state, not a timing assumption
        vk.proc.send_signal(signal.SIGKILL)
        vk.proc.wait(5)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, out
    assert "failed to read INFO server" in out
    assert "; nothing was changed" in out
    assert vk.conf.read_bytes() == before_file
    # Restarted from its file, the server runs what it ran before.
    vk.start()

    def pairs(text):
        lines = text.split("\n")
        return dict(zip(lines[0::2], lines[1::2]))

    assert pairs(vk.cli("CONFIG", "GET", "*")) == pairs(before_runtime)
