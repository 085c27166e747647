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

from conftest import ROOT, Lab, labhosts, recap

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
    """lab13-15, each converged with valkey_server from its own binary (lab13 with two
    instances), ended with every process after the module."""
    if os.geteuid() != 0:
        pytest.skip("lab hosts need root (mount namespaces, sshd)")
    hosts = [labhosts.Host(n) for n in OUR_HOSTS]
    try:
        labhosts.up(hosts)
    except labhosts.HostTaken as e:
        pytest.skip("this file's lab hosts are taken: %s" % e)
    tmp = tmp_path_factory.mktemp("lab")
    inventory = tmp / "inventory.ini"
    lines = ["[valkey]"] + [h.inventory_line() + " valkey_server_bind=%s" % h.address for h in hosts]
    lines += ["", "[valkey:vars]", "valkey_server_binary=" + labhosts.LAB_SERVER_BINARY]
    inventory.write_text("\n".join(lines) + "\n")
    (tmp / "host_vars").mkdir()  # lab13 runs two instances
    (tmp / "host_vars" / "lab13.yml").write_text(json.dumps({"valkey_server_instances": [{"name": "default"}, {"name": "cache", "port": 7001}]}))
    yield Lab(hosts, inventory, [labhosts.DEFAULT_USER])
    labhosts.down(hosts)


@pytest.fixture(scope="module")
def converged(lab, tmp_path_factory, request):
    from conftest import Ansible, _install

    venv = Path(request.config.getoption("--venv")).resolve()
    tmp = tmp_path_factory.mktemp("converge")
    (tmp / "home").mkdir()
    ansible = Ansible(venv, _install(venv, _tarball(request), tmp / "collections"), tmp / "home")
    play = {"hosts": "valkey", "become": True, "gather_facts": False,
            "vars": {"valkey_server_install": False, "valkey_server_admin_password": ADMIN},
            "roles": ["valkeyops.secure.valkey_server"]}
    _run(ansible, tmp, [play], lab)
    return lab


def _tarball(request) -> Path:
    path = request.config.getoption("--tarball")
    return Path(path).resolve() if path else sorted((ROOT / "dist").glob("valkeyops-secure-*.tar.gz"))[-1]


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
