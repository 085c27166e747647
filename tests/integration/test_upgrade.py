"""Upgrades (issue 17), on lab13-lab15: each lab host runs its own server binary
(/usr/local/sbin, see scripts/lab/lab.py), so valkey_server's upgrade (binary
method) replaces one host's binary and nothing on the machine or another host;
running servers keep their version until they restart; bad input and check mode
change nothing. The stand-in newer release (scripts/lab/standin_release.py) and
the package method's policy-rc.d guard, against a root directory of the test's
own (the package method itself is not run here: the lab shares the machine's
/usr and dpkg)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, Ansible, fixed_lab_hosts, labhosts, recap

ADMIN = "upgrade-admin-password-4e1b7c90"
OUR_HOSTS = (13, 14, 15)  # this file's lab hosts
GUARD = ROOT / "roles" / "valkey_server" / "files" / "policy-rc.d-guard.sh"
MARK = "# valkeyops.secure: refuse service actions while a Valkey package installs"

sys.path.insert(0, str(ROOT / "scripts" / "lab"))
import standin_release  # noqa: E402


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _machine_binary() -> str:
    return _sha(os.path.realpath(labhosts.MACHINE_SERVER_BINARY))


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    """The stand-in newer release, made once: {version, binary, sha256, debs, ...}."""
    out = tmp_path_factory.mktemp("standin")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts/lab/standin_release.py"), str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """lab13-15, each starting the server from its own binary (lab13 with two instances;
    `converged` runs them on lab13 and lab14), ended with every process after the module."""
    tmp = tmp_path_factory.mktemp("lab")

    def render(hosts):
        lines = ["[valkey]"] + [h.inventory_line() + " valkey_server_bind=%s" % h.address for h in hosts]
        return "\n".join(lines + ["", "[valkey:vars]", "valkey_server_binary=" + labhosts.LAB_SERVER_BINARY]) + "\n"

    lab = fixed_lab_hosts(OUR_HOSTS, tmp / "inventory.ini", render)
    (tmp / "host_vars").mkdir()  # lab13 runs two instances
    (tmp / "host_vars" / "lab13.yml").write_text(json.dumps({"valkey_server_instances": [{"name": "default"}, {"name": "cache", "port": 7001}]}))
    yield lab
    labhosts.down(list(lab))


@pytest.fixture(scope="module")
def converged(lab, installed, tmp_path_factory, request):
    tmp = tmp_path_factory.mktemp("converge")
    (tmp / "home").mkdir()
    ansible = Ansible(Path(request.config.getoption("--venv")).resolve(), installed, tmp / "home")
    play = {"hosts": "lab13:lab14", "become": True, "gather_facts": False,  # lab15 only meets bad input
            "vars": {"valkey_server_install": False, "valkey_server_admin_password": ADMIN},
            "roles": ["valkeyops.secure.valkey_server"]}
    _run(ansible, tmp, [play], lab)
    return lab


def _run(ansible, tmp: Path, plays, lab, *args, check=True):
    pb = tmp / "play.yml"
    pb.write_text(json.dumps(plays, indent=1))
    return ansible.playbook(pb, *args, inventory=str(lab.inventory), check=check)


def _upgrade(ansible, tmp: Path, lab, hosts: str, extra: dict, *args, check=True):
    pb = tmp / "upgrade.yml"
    pb.write_text(json.dumps([{"import_playbook": "valkeyops.secure.upgrade"}]))
    variables = {"valkey_hosts": hosts, "valkey_server_admin_password": ADMIN, "valkey_upgrade_roll": False, **extra}
    (tmp / "vars.json").write_text(json.dumps(variables))
    return ansible.playbook(pb, "-e", "@" + str(tmp / "vars.json"), *args, inventory=str(lab.inventory), check=check)


def _binaries(lab) -> dict:
    return {h.name: _sha(h.path(labhosts.LAB_SERVER_BINARY)) for h in lab} | {"machine": _machine_binary()}


def _running_version(host, port: int) -> str:
    out = subprocess.run(host.exec_argv(["valkey-cli", "-s", "/run/valkey/valkey.sock" if port == 6379 else "/run/valkey-cache/valkey.sock",
                                         "--user", "valkeyops-admin", "--askpass", "INFO", "server"]),
                         input=ADMIN, capture_output=True, text=True, timeout=30)
    for line in out.stdout.splitlines():
        if line.startswith("valkey_version:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("no valkey_version in %r %r" % (out.stdout[-500:], out.stderr[-500:]))


def _reports(output: str) -> dict:
    """The lines of upgrade_report.yml's debug task, by host (the last of each)."""
    found = {}
    for line in output.splitlines():
        line = line.strip()
        if line.startswith('"msg": "lab'):
            text = json.loads("{%s}" % line)["msg"]
            found[text.split(":", 1)[0]] = text
    return found


# ---- the lab: per-host binaries ---------------------------------------------------

def test_each_lab_host_runs_its_own_server_binary(lab, standin):
    """A binary replaced inside lab13 (a rename in its /usr/local/sbin, as the role does)
    is lab13's alone: lab14 and the machine keep theirs, byte for byte."""
    before = _binaries(lab)
    one = lab[0]
    staged = "/usr/local/sbin/.probe"
    subprocess.run(one.exec_argv(["sh", "-c", 'cp "$1" "$2" && mv -fT "$2" /usr/local/sbin/valkey-server', "sh", standin["binary"], staged]),
                   check=True, timeout=30)
    try:
        version = subprocess.run(one.exec_argv(["/usr/local/sbin/valkey-server", "--version"]), capture_output=True, text=True, check=True).stdout
        assert " v=%s " % standin["version"] in version
        after = _binaries(lab)
        assert after["lab13"] == standin["sha256"] != before["lab13"]
        assert {k: v for k, v in after.items() if k != "lab13"} == {k: v for k, v in before.items() if k != "lab13"}
        assert subprocess.run(lab[1].exec_argv(["/usr/local/sbin/valkey-server", "--version"]), capture_output=True, text=True).stdout.split()[2] \
            == "v=" + standin["old_version"]
    finally:
        shutil.copy2(os.path.realpath(labhosts.MACHINE_SERVER_BINARY), one.path(labhosts.LAB_SERVER_BINARY))
    assert _binaries(lab) == before


# ---- the binary method ---------------------------------------------------------

def test_the_binary_upgrades_one_host_and_its_servers_keep_their_version_until_restarted(ansible, converged, standin, tmp_path):
    lab = converged
    before = _binaries(lab)
    extra = {"valkey_server_upgrade_method": "binary", "valkey_server_upgrade_binary": standin["binary"],
             "valkey_server_upgrade_binary_sha256": standin["sha256"], "valkey_server_upgrade_version": standin["version"]}
    out = _upgrade(ansible, tmp_path, lab, "lab13", extra)
    assert recap(out.stdout, "lab13")["changed"] >= 1, out.stdout[-3000:]
    after = _binaries(lab)
    assert after["lab13"] == standin["sha256"]
    assert {k: v for k, v in after.items() if k != "lab13"} == {k: v for k, v in before.items() if k != "lab13"}
    assert not lab[0].path("/usr/local/sbin/.valkey-server.valkeyops-new").exists()
    mode = lab[0].path(labhosts.LAB_SERVER_BINARY).stat()
    assert (mode.st_mode & 0o7777, mode.st_uid, mode.st_gid) == (0o755, 0, 0)
    old, new = standin["old_version"], standin["version"]
    # Nothing restarted: both of lab13's servers still run the old version, and say so.
    assert _running_version(lab[0], 6379) == old and _running_version(lab[0], 7001) == old
    assert _reports(out.stdout)["lab13"] == "lab13: installed %s; default runs %s (restart needed); cache runs %s (restart needed)" % (new, old, old)
    # Again: nothing to do.
    again = _upgrade(ansible, tmp_path, lab, "lab13", extra)
    assert recap(again.stdout, "lab13")["changed"] == 0, again.stdout[-3000:]
    # lab13's default instance restarts (valkey_server's own restart tasks): it runs the
    # new version; its other instance and lab14 run the old one until they restart.
    restart = {"hosts": "lab13", "become": True, "gather_facts": False,
               "vars": {"valkey_server_admin_password": ADMIN},
               "tasks": [{"ansible.builtin.include_role": {"name": "valkeyops.secure.valkey_server", "tasks_from": "validate.yml"}},
                         {"ansible.builtin.include_role": {"name": "valkeyops.secure.valkey_server", "tasks_from": "service_manager.yml"}},
                         {"ansible.builtin.include_role": {"name": "valkeyops.secure.valkey_server", "tasks_from": "restart_direct.yml"},
                          "vars": {"valkey_server_instance": "{{ valkey_server_resolved.instances | selectattr('name', 'eq', 'default') | first }}"}},
                         {"ansible.builtin.include_role": {"name": "valkeyops.secure.valkey_server", "tasks_from": "upgrade_report.yml"}}]}
    out = _run(ansible, tmp_path, [restart], lab)
    assert _running_version(lab[0], 6379) == new
    assert _running_version(lab[0], 7001) == old and _running_version(lab[1], 6379) == old
    assert _reports(out.stdout)["lab13"] == "lab13: installed %s; default runs %s; cache runs %s (restart needed)" % (new, new, old)
    assert _binaries(lab)["machine"] == before["machine"]


def test_check_mode_changes_nothing(ansible, converged, standin, tmp_path):
    """--check --diff on lab14 says what would change and changes nothing: the binary,
    no copy left beside it, the servers untouched."""
    lab = converged
    before = _binaries(lab)
    extra = {"valkey_server_upgrade_method": "binary", "valkey_server_upgrade_binary": standin["binary"],
             "valkey_server_upgrade_binary_sha256": standin["sha256"]}
    out = _upgrade(ansible, tmp_path, lab, "lab14", extra, "--check", "--diff")
    assert recap(out.stdout, "lab14")["changed"] >= 1, out.stdout[-3000:]
    assert _binaries(lab) == before
    assert not lab[1].path("/usr/local/sbin/.valkey-server.valkeyops-new").exists()
    old = standin["old_version"]
    assert _reports(out.stdout)["lab14"] == "lab14: installed %s; default runs %s" % (old, old)
    assert _running_version(lab[1], 6379) == old


def _bad_cases(standin):
    other = _machine_binary()
    binary = {"valkey_server_upgrade_method": "binary", "valkey_server_upgrade_binary": standin["binary"],
              "valkey_server_upgrade_binary_sha256": standin["sha256"]}
    return [
        ("unknown method", {"valkey_server_upgrade_method": "yum"},
         "valkey_server_upgrade_method must be package or binary, not 'yum'; nothing was changed"),
        ("a version that is not one", {"valkey_server_upgrade_version": "8.0.9; rm -rf /"},
         "valkey_server_upgrade_version must be a version such as 8.0.2 or 8.0.2+dfsg1-1, or empty, not '8.0.9; rm -rf /'; nothing was changed"),
        ("binary method without a binary or its sha256", {"valkey_server_upgrade_method": "binary"},
         "valkey_server_upgrade_binary must name the new server binary (a file on the controller) for the binary method; "
         "valkey_server_upgrade_binary_sha256 must be the binary's sha256, 64 hex digits; nothing was changed"),
        ("a binary that is not the pinned one", {**binary, "valkey_server_upgrade_binary_sha256": other},
         "valkey_server_upgrade_binary %s has sha256 %s, not the pinned %s; nothing was changed" % (standin["binary"], standin["sha256"], other)),
        ("a binary that does not exist", {**binary, "valkey_server_upgrade_binary": "/nonexistent/valkey-server"},
         "valkey_server_upgrade_binary /nonexistent/valkey-server is not a file on the controller; nothing was changed"),
        ("a relative binary path", {**binary, "valkey_server_upgrade_binary": "valkey-server"},
         "valkey_server_upgrade_binary must be an absolute path on the controller, not 'valkey-server'; nothing was changed"),
        ("a relative server path", {**binary, "valkey_server_binary": "valkey-server"},
         "valkey_server_binary must be an absolute path, not 'valkey-server'; nothing was changed"),
        # An attacker who may write the directory could swap the file before the rename.
        ("a server path in a directory others may write", {**binary, "valkey_server_binary": "/tmp/valkey-server"},
         "the directory of valkey_server_binary (/tmp) must be root's and writable by nobody else; nothing was changed"),
        # Caught on the host, after the copy: the copy goes, the binary stays.
        ("a binary of another version than asked", {**binary, "valkey_server_upgrade_version": "8.0.8"},
         "the new binary reports '%s', not valkey_server_upgrade_version 8.0.8; the server binary was not changed"
         % subprocess.run([standin["binary"], "--version"], capture_output=True, text=True).stdout.strip()),
    ]


BAD_CASES = ["unknown method", "a version that is not one", "binary method without a binary or its sha256", "a binary that is not the pinned one",
             "a binary that does not exist", "a relative binary path", "a relative server path", "a server path in a directory others may write",
             "a binary of another version than asked"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_refused_before_anything_changes(ansible, converged, standin, tmp_path, case):
    """Each bad input: one sentence, every host's binary and the machine's unchanged,
    no copy left, no secret in the output."""
    lab = converged
    extra, message = {c[0]: c[1:] for c in _bad_cases(standin)}[case]
    before = _binaries(lab)
    out = _upgrade(ansible, tmp_path, lab, "lab15", extra, check=False)
    assert out.returncode != 0
    assert recap(out.stdout, "lab15")["failed"] == 1, out.stdout[-3000:]
    msgs = [json.loads(line.split("FAILED! => ", 1)[1]).get("msg") for line in out.stdout.splitlines() if "FAILED! => {" in line]
    assert message in msgs, (msgs, out.stdout[-3000:])
    assert _binaries(lab) == before
    assert not lab[2].path("/usr/local/sbin/.valkey-server.valkeyops-new").exists()
    assert ADMIN not in out.stdout + out.stderr


def test_every_bad_case_is_run(standin):
    assert sorted(BAD_CASES) == sorted(c[0] for c in _bad_cases(standin))


# ---- the package method's policy-rc.d guard, against a root of the test's own ----

def _guard(root: Path, action: str):
    return subprocess.run(["/bin/sh", str(GUARD), action, str(root)], capture_output=True, text=True, timeout=30)


def _sbin(tmp_path: Path) -> Path:
    sbin = tmp_path / "root" / "usr" / "sbin"
    sbin.mkdir(parents=True)
    return sbin


def _state(sbin: Path) -> dict:
    """Every entry of the directory: (mode, link target or content)."""
    return {p.name: (p.lstat().st_mode, os.readlink(p) if p.is_symlink() else p.read_bytes()) for p in sorted(sbin.iterdir())}


def _refuses(sbin: Path) -> bool:
    """What invoke-rc.d would hear: exit 101 (action forbidden) for a restart."""
    return subprocess.run([str(sbin / "policy-rc.d"), "valkey-server", "restart"], timeout=30).returncode == 101


def test_the_guard_refuses_restarts_and_leaves_nothing(tmp_path):
    sbin = _sbin(tmp_path)
    on = _guard(sbin.parent.parent, "on")
    assert (on.returncode, on.stdout) == (0, "changed\n"), on.stderr
    assert _refuses(sbin) and MARK in (sbin / "policy-rc.d").read_text()
    assert (sbin / "policy-rc.d").stat().st_mode & 0o7777 == 0o755
    assert _guard(sbin.parent.parent, "on").stdout == ""  # already on: nothing to do
    off = _guard(sbin.parent.parent, "off")
    assert (off.returncode, off.stdout) == (0, "changed\n")
    assert list(sbin.iterdir()) == []


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_the_guard_keeps_the_administrators_policy_and_puts_it_back(tmp_path, kind):
    """An existing policy-rc.d (a file of mode 0750, or a link, never followed) is renamed
    aside while ours refuses, then comes back byte for byte, mode and all."""
    sbin = _sbin(tmp_path)
    if kind == "file":
        (sbin / "policy-rc.d").write_text("#!/bin/sh\n# the administrator's\nexit 0\n")
        (sbin / "policy-rc.d").chmod(0o750)
    else:
        target = tmp_path / "elsewhere"
        target.write_text("#!/bin/sh\nexit 0\n")
        (sbin / "policy-rc.d").symlink_to(target)
    before = _state(sbin)
    assert _guard(sbin.parent.parent, "on").returncode == 0
    assert _refuses(sbin)
    assert _state(sbin)["policy-rc.d.valkeyops-saved"] == before["policy-rc.d"]
    # A run killed half-way leaves ours in place; the next run keeps the saved one.
    assert _guard(sbin.parent.parent, "on").returncode == 0
    assert _state(sbin)["policy-rc.d.valkeyops-saved"] == before["policy-rc.d"]
    assert _guard(sbin.parent.parent, "off").returncode == 0
    assert _state(sbin) == before
    if kind == "symlink":
        assert target.read_text() == "#!/bin/sh\nexit 0\n"


def test_the_guard_refuses_when_it_cannot_tell_whose_policy_is_whose(tmp_path):
    sbin = _sbin(tmp_path)
    (sbin / "policy-rc.d").write_text("#!/bin/sh\nexit 0\n")
    (sbin / "policy-rc.d.valkeyops-saved").write_text("#!/bin/sh\nexit 104\n")
    before = _state(sbin)
    on = _guard(sbin.parent.parent, "on")
    assert on.returncode == 1
    assert on.stderr == ("policy-rc.d guard: both %s/policy-rc.d and %s/policy-rc.d.valkeyops-saved exist and neither is ours; "
                         "nothing was changed\n" % (sbin, sbin))
    assert _state(sbin) == before


def test_the_guard_never_removes_a_policy_someone_put_there_during_the_upgrade(tmp_path):
    sbin = _sbin(tmp_path)
    (sbin / "policy-rc.d").write_text("#!/bin/sh\n# the administrator's\nexit 0\n")
    assert _guard(sbin.parent.parent, "on").returncode == 0
    (sbin / "policy-rc.d").write_text("#!/bin/sh\n# someone else's, meanwhile\nexit 0\n")
    during = _state(sbin)
    off = _guard(sbin.parent.parent, "off")
    assert off.returncode == 1
    assert "was replaced by someone else during the upgrade; kept it, and the saved one as" in off.stderr
    assert _state(sbin) == during


def test_the_package_method_installs_only_between_the_guard_and_its_release():
    """The shape users rely on: apt runs inside the block whose first step is the guard and
    whose `always` releases it (so a failed apt still puts the policy back)."""
    tasks = yaml.safe_load((ROOT / "roles/valkey_server/tasks/upgrade_package.yml").read_text())
    block = next(t for t in tasks if "block" in t)
    steps = [next(k for k in t if k.startswith("ansible.builtin.")) for t in block["block"]]
    assert steps == ["ansible.builtin.script", "ansible.builtin.apt"]
    assert block["block"][0]["ansible.builtin.script"]["cmd"] == "policy-rc.d-guard.sh on /"
    assert [t["ansible.builtin.script"]["cmd"] for t in block["always"]] == ["policy-rc.d-guard.sh off /"]
    assert "policy_rc_d" not in block["block"][1]["ansible.builtin.apt"]  # apt's own would move ours aside


# ---- the stand-in newer release --------------------------------------------------

def test_the_standin_release_reports_its_version_and_leaves_the_machine_alone(standin, tmp_path):
    machine = _machine_binary()
    new = standin["version"]
    assert standin["old_version"] != new and len(standin["old_version"]) == len(new)
    assert _sha(standin["binary"]) == standin["sha256"]
    # Run as a server: INFO server says the new version.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sock = tmp_path / "standin.sock"
    proc = subprocess.Popen([standin["binary"], "--port", str(port), "--bind", "127.0.0.1", "--unixsocket", str(sock), "--save", "",
                             "--dir", str(tmp_path), "--logfile", ""], stdout=subprocess.PIPE, text=True)
    try:
        # Its own log line says when it serves (EOF if it died); bounded by the server's start.
        for line in proc.stdout:
            if "Ready to accept connections" in line:
                break
        info = subprocess.run(["valkey-cli", "-s", str(sock), "INFO", "server"], capture_output=True, text=True, timeout=30).stdout
        assert "valkey_version:%s" % new in [x.strip() for x in info.splitlines()], info
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
    # The .debs: the new version, valkey-tools carrying the patched binary, no edited conffile.
    tools, server = standin["debs"]
    field = lambda deb, f: subprocess.run(["dpkg-deb", "-f", deb, f], capture_output=True, text=True, check=True).stdout.strip()  # noqa: E731
    assert field(tools, "Version") == field(server, "Version") == standin["deb_version"]
    assert field(server, "Depends") == "valkey-tools (= %s)" % standin["deb_version"]
    unpacked = tmp_path / "unpacked"
    subprocess.run(["dpkg-deb", "-x", tools, str(unpacked)], check=True)
    subprocess.run(["dpkg-deb", "-x", server, str(unpacked)], check=True)
    assert _sha(unpacked / "usr/bin/valkey-check-rdb") == standin["sha256"]
    assert os.readlink(unpacked / "usr/bin/valkey-server") == "valkey-check-rdb"
    assert not (unpacked / "etc/valkey/valkey.conf").exists()  # the machine's own config never leaves it
    assert _machine_binary() == machine


def test_the_patch_refuses_what_it_cannot_do_exactly():
    with pytest.raises(standin_release.StandInError, match="must have the length"):
        standin_release.patch(b"\x008.0.1\x00", "8.0.1", "8.0.10")
    with pytest.raises(standin_release.StandInError, match="holds 2 NUL-delimited"):
        standin_release.patch(b"\x008.0.1\x00\x008.0.1\x00", "8.0.1", "8.0.9")
    assert standin_release.patch(b"x\x008.0.1\x00valkey8.0.1", "8.0.1", "8.0.9") == b"x\x008.0.9\x00valkey8.0.1"
