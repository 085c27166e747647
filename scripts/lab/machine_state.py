#!/usr/bin/env python3
"""Tests never harm the machine: snapshot what `make test` may not change, and
compare two snapshots (.ci/run takes one before and one after).

    machine_state.py snapshot OUT.json [--site-inventory DIR]
    machine_state.py compare BEFORE.json AFTER.json

What is recorded:
  valkey    every valkey-server running in this mount namespace (lab hosts' servers
            live in their own and are not the machine's): pid, executable, the config
            file's and aclfile's bytes (sha256), owner and mode, and, logged in as the
            site's admin user over its unix socket, `ACL LIST` and `CONFIG GET *`
  sysctl    every writable setting under /proc/sys (read-only entries are counters)
  etc       /etc as a listing: type, owner, mode, sha256 or link target, per path
  journal   the same listing of /var/log/valkeyops (the change journal the audit reads)
  packages  dpkg's list: package, version, status

Values are stored as sha256 digests, never as text: CONFIG GET * and ACL LIST hold
secrets (requirepass, password hashes), and a snapshot is a file in a temp dir. A
difference is reported by name (directive, user, path, package), never by value.

The site's admin password comes from $VALKEYOPS_SITE_ADMIN_PASSWORD, else from the
vault of --site-inventory (default examples/inventory, what `make site` uses) opened
with the venv's ansible-vault; without either, the runtime part is recorded as
"not readable" and only pid, executable and files are compared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Writable sysctls the kernel changes on its own (not settings anyone made):
# the last pid handed out, and the random pool's per-read values.
SYSCTL_VOLATILE = {"kernel/ns_last_pid", "kernel/random/urandom_min_reseed_secs"}
SYSCTL_VOLATILE_PREFIXES = ("fs/binfmt_misc/",)
# /etc entries the OS itself rewrites while the machine runs, whoever runs tests:
# the mount table (a link to /proc), the resolver file the VM's network agent
# writes, the dynamic linker's cache (rebuilt by ldconfig when anything triggers it),
# and the clock-drift file.
ETC_VOLATILE = {"/etc/mtab", "/etc/resolv.conf", "/etc/ld.so.cache", "/etc/adjtime"}
# The machine's change journal: its own audit reads it for out-of-band changes, so an
# entry a test wrote there (about a test server) would mislead it.
JOURNAL_DIR = "/var/log/valkeyops"


def digest(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()[:16]


# ---- valkey -------------------------------------------------------------------

def valkey_servers() -> dict:
    """Every valkey-server in this mount namespace, by its process title (Valkey
    rewrites argv to "valkey-server ADDRESS:PORT"): pid and executable."""
    mine = os.readlink("/proc/self/ns/mnt")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "valkey-server" or os.readlink(entry / "ns/mnt") != mine:
                continue
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            found[title] = {"pid": int(entry.name), "exe": os.readlink(entry / "exe")}
        except OSError:
            continue
    return found


def directives(conf: str) -> dict:
    """The last value of each directive of a valkey.conf (good enough to find the socket)."""
    out = {}
    try:
        for line in Path(conf).read_text(errors="replace").splitlines():
            parts = line.split(None, 1)
            if parts and not parts[0].startswith("#"):
                out[parts[0].lower()] = parts[1].strip().strip('"') if len(parts) > 1 else ""
    except OSError:
        pass
    return out


def file_state(path: str) -> dict:
    try:
        st = os.lstat(path)
        data = Path(path).read_bytes()
    except OSError as e:
        return {"error": e.strerror}
    return {"sha256": digest(data), "mode": oct(stat.S_IMODE(st.st_mode)), "uid": st.st_uid, "gid": st.st_gid}


def site_password(inventory: Path) -> tuple[str, str] | None:
    user = os.environ.get("VALKEYOPS_SITE_ADMIN_USER", "valkeyops-admin")
    if os.environ.get("VALKEYOPS_SITE_ADMIN_PASSWORD"):
        return user, os.environ["VALKEYOPS_SITE_ADMIN_PASSWORD"]
    vault = inventory / "group_vars" / "valkey" / "vault.yml"
    tool = ROOT / ".venv" / "bin" / "ansible-vault"
    if not (vault.exists() and tool.exists() and (inventory / "vault-password.txt").exists()):
        return None
    out = subprocess.run([str(tool), "view", "--vault-password-file", str(inventory / "vault-password.txt"), str(vault)],
                         capture_output=True, text=True)
    for line in out.stdout.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "vault_valkey_admin_password":
            return user, value.strip().strip("\"'")
    return None


def cli(socket_path: str, login: tuple[str, str], *args: str) -> list[str] | None:
    env = dict(os.environ, REDISCLI_AUTH=login[1])
    out = subprocess.run(["valkey-cli", "-s", socket_path, "--user", login[0], "--no-auth-warning", *args],
                         capture_output=True, text=True, env=env, timeout=10)
    if out.returncode != 0 or out.stdout.startswith(("NOAUTH", "WRONGPASS", "NOPERM", "ERR")):
        return None
    return out.stdout.splitlines()


def valkey_state(inventory: Path, conf: str) -> dict:
    """The running servers, and the site server's files and, when its admin can log in
    over its socket, its runtime state (CONFIG GET *, ACL LIST)."""
    state = {"servers": valkey_servers(), "site": {"config_file": conf, "config": file_state(conf)}}
    d = directives(conf)
    if d.get("aclfile"):
        state["site"]["aclfile"] = file_state(d["aclfile"])
    login = site_password(inventory)
    runtime = "not readable (no running server with a unix socket, or no site admin password)"
    if d.get("unixsocket") and login and os.path.exists(d["unixsocket"]):
        cfg = cli(d["unixsocket"], login, "CONFIG", "GET", "*")
        acl = cli(d["unixsocket"], login, "ACL", "LIST")
        pid = cli(d["unixsocket"], login, "INFO", "server")
        if cfg is not None and acl is not None and pid is not None:
            runtime = {
                "process_id": next((x.split(":", 1)[1].strip() for x in pid if x.startswith("process_id:")), ""),
                "config": {cfg[i]: digest(cfg[i + 1]) for i in range(0, len(cfg) - 1, 2)},
                "users": {line.split()[1]: digest(line) for line in acl if line.startswith("user ")},
            }
    state["site"]["runtime"] = runtime
    return state


# ---- the rest of the machine --------------------------------------------------

def sysctls() -> dict:
    out = {}
    for root, _, files in os.walk("/proc/sys"):
        for f in files:
            p = os.path.join(root, f)
            rel = p[len("/proc/sys/"):]
            if rel in SYSCTL_VOLATILE or rel.startswith(SYSCTL_VOLATILE_PREFIXES):
                continue
            try:
                if not os.stat(p).st_mode & 0o200:
                    continue
                with open(p, "rb") as fh:
                    out[rel] = fh.read(65536).decode(errors="replace").strip()
            except OSError:
                continue  # write-only entries, and those the kernel refuses to show
    return out


def listing(top: str) -> dict:
    out = {}
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(root, name)
            if p in ETC_VOLATILE:  # (only /etc has any)
                continue
            try:
                st = os.lstat(p)
            except OSError:
                continue
            e = "%s %d:%d %o" % (stat.filemode(st.st_mode)[0], st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
            if stat.S_ISLNK(st.st_mode):
                e += " -> " + os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                try:
                    e += " " + digest(Path(p).read_bytes())
                except OSError as err:
                    e += " unreadable: " + err.strerror
            out[p] = e
    return out


def packages() -> dict:
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}:${Architecture} ${Version} ${Status}\n"],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if line)


def snapshot(inventory: Path, conf: str) -> dict:
    return {"valkey": valkey_state(inventory, conf), "sysctl": sysctls(), "etc": listing("/etc"),
            "journal": listing(JOURNAL_DIR), "packages": packages()}


def compare(before: dict, after: dict) -> list[str]:
    """One line per difference, naming what changed and never a value of valkey's."""
    lines = []
    for part in ("sysctl", "etc", "journal", "packages"):
        b, a = before[part], after[part]
        for k in sorted(set(b) | set(a)):
            if k not in a:
                lines.append("%s: %s was removed" % (part, k))
            elif k not in b:
                lines.append("%s: %s appeared (%s)" % (part, k, a[k]))
            elif b[k] != a[k]:
                lines.append("%s: %s changed (%s -> %s)" % (part, k, b[k], a[k]))
    b, a = before["valkey"]["servers"], after["valkey"]["servers"]
    for k in sorted(set(b) | set(a)):
        if k not in a:
            lines.append("valkey: %s (pid %d) stopped" % (k, b[k]["pid"]))
        elif k not in b:
            lines.append("valkey: %s (pid %d) started" % (k, a[k]["pid"]))
        elif b[k] != a[k]:
            lines.append("valkey: %s restarted (pid %d -> %d)" % (k, b[k]["pid"], a[k]["pid"]))
    b, a = before["valkey"]["site"], after["valkey"]["site"]
    for field in ("config_file", "config", "aclfile"):
        if b.get(field) != a.get(field):
            lines.append("valkey site server: %s %s changed" % (field, b.get("config_file")))
    rb, ra = b["runtime"], a["runtime"]
    if isinstance(rb, dict) and isinstance(ra, dict):
        if rb["process_id"] != ra["process_id"]:
            lines.append("valkey site server: process_id changed")
        for sub, what in (("config", "directive"), ("users", "ACL user")):
            for name in sorted(set(rb[sub]) | set(ra[sub])):
                if rb[sub].get(name) != ra[sub].get(name):
                    lines.append("valkey site server: %s %s changed" % (what, name))
    elif rb != ra:
        lines.append("valkey site server: runtime state was %s, is %s" % (rb, ra))
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="machine_state.py")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("snapshot")
    p.add_argument("out")
    p.add_argument("--site-inventory", default=str(ROOT / "examples" / "inventory"))
    p.add_argument("--site-config", default="/etc/valkey/valkey.conf")
    p = sub.add_parser("compare")
    p.add_argument("before")
    p.add_argument("after")
    args = parser.parse_args(argv)
    if args.cmd == "snapshot":
        state = snapshot(Path(args.site_inventory), args.site_config)
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(state, f, indent=1, sort_keys=True)
        v = state["valkey"]
        print("machine state: valkey %s; site server %s: runtime %s; %d sysctls, %d paths in /etc, %d packages" % (
            ", ".join("%s (pid %d)" % (k, s["pid"]) for k, s in v["servers"].items()) or "not running",
            v["site"]["config_file"], "read" if isinstance(v["site"]["runtime"], dict) else v["site"]["runtime"],
            len(state["sysctl"]), len(state["etc"]), len(state["packages"])))
        return 0
    diff = compare(json.loads(Path(args.before).read_text()), json.loads(Path(args.after).read_text()))
    if diff:
        print("the tests changed the machine:\n  " + "\n  ".join(diff), file=sys.stderr)
        return 1
    print("the machine is as it was: its Valkey, sysctls, /etc, the change journal and packages")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
