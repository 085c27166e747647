#!/usr/bin/env python3
"""A stand-in newer Valkey release, made from the installed one (no newer package exists
here, and the lab hosts share the machine's /usr and dpkg).

    standin_release.py OUT_DIR [--version 8.0.9]

writes into OUT_DIR:
    valkey-server                      the installed server binary with its version string
                                       (VALKEY_VERSION: `--version`, INFO server valkey_version)
                                       patched, byte for byte the same length
    valkey-tools_VER_ARCH.deb          the installed packages repacked (dpkg-deb) at the new
    valkey-server_VER_ARCH.deb         version, valkey-tools carrying the patched binary
and prints a JSON summary (version, binary, sha256, debs). It reads the machine and never
changes it: NEVER install those .debs on this machine (its own Valkey runs from them).

The default new version keeps the length and raises the last digit to 9 (8.0.1 -> 8.0.9).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SERVER = "/usr/bin/valkey-server"
PACKAGES = ("valkey-tools", "valkey-server")  # valkey-tools ships the binary, valkey-server the link
DPKG_INFO = Path("/var/lib/dpkg/info")
MAINTAINER_SCRIPTS = ("preinst", "postinst", "prerm", "postrm")


class StandInError(Exception):
    pass


def server_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True, timeout=30).stdout
    m = re.search(r"\bv=(\S+)", out)
    if not m:
        raise StandInError("%s --version printed no v=VERSION: %r" % (binary, out[:200]))
    return m.group(1)


def default_version(old: str) -> str:
    if not re.fullmatch(r"\d+\.\d+\.\d", old) or old.endswith("9"):
        raise StandInError("no same-length higher version for %s; give --version" % old)
    return old[:-1] + "9"


def patch(data: bytes, old: str, new: str) -> bytes:
    """The one NUL-delimited `old` (the VALKEY_VERSION literal) replaced by `new`."""
    if len(new) != len(old):
        raise StandInError("the new version %r must have the length of %r (a byte patch)" % (new, old))
    needle = b"\0" + old.encode() + b"\0"
    if data.count(needle) != 1:
        raise StandInError("the binary holds %d NUL-delimited %r strings, not exactly one" % (data.count(needle), old))
    return data.replace(needle, b"\0" + new.encode() + b"\0")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dpkg_field(package: str, field: str) -> str:
    return subprocess.run(["dpkg-query", "-W", "-f", "${%s}" % field, package], capture_output=True, text=True, check=True).stdout


def pristine_conffiles(package: str) -> dict[str, bool]:
    """Each conffile of the package: whether it is as the package shipped it."""
    found = {}
    for line in dpkg_field(package, "Conffiles").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            path = Path(parts[0])
            found[parts[0]] = path.is_file() and hashlib.md5(path.read_bytes()).hexdigest() == parts[1]
    return found


def repack(package: str, old_deb_version: str, new_deb_version: str, replace: dict[str, bytes], out: Path) -> Path:
    """The installed `package` as a .deb at `new_deb_version`: its files from the machine
    (those in `replace` swapped), its control file and maintainer scripts from dpkg's records."""
    # A conffile the machine's administrator edited (valkey.conf: this machine's own server,
    # its passwords perhaps) is left out; only the pristine ones (dpkg's md5 agrees) go in.
    conffiles = pristine_conffiles(package)
    with tempfile.TemporaryDirectory(prefix="standin-") as tmp:
        root = Path(tmp) / "pkg"
        (root / "DEBIAN").mkdir(parents=True)
        for line in subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True, check=True).stdout.splitlines():
            src = Path(line)
            if line in ("", "/.") or src.is_dir():  # directories (and merged-usr links to them) come with their files
                continue
            if line in conffiles and not conffiles[line]:
                continue
            dest = root / line.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src.is_symlink():
                os.symlink(os.readlink(src), dest)
            elif line in replace:
                dest.write_bytes(replace[line])
                dest.chmod(src.stat().st_mode & 0o7777)
            else:
                shutil.copy2(src, dest)
        status = subprocess.run(["dpkg-query", "-s", package], capture_output=True, text=True, check=True).stdout
        control = []
        for para_line in status.splitlines():
            key = para_line.split(":", 1)[0]
            if key in ("Status", "Conffiles") or para_line.startswith(" /"):
                continue
            control.append(para_line.replace(old_deb_version, new_deb_version))
        (root / "DEBIAN" / "control").write_text("\n".join(control) + "\n")
        for script in MAINTAINER_SCRIPTS:
            src = DPKG_INFO / ("%s.%s" % (package, script))
            if src.exists():
                shutil.copy2(src, root / "DEBIAN" / script)
        kept = [f for f, pristine in conffiles.items() if pristine]
        if kept:
            (root / "DEBIAN" / "conffiles").write_text("".join(f + "\n" for f in kept))
        arch = dpkg_field(package, "Architecture")
        deb = out / ("%s_%s_%s.deb" % (package, new_deb_version.replace(":", "%3a"), arch))
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)], check=True, capture_output=True)
    return deb


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="standin_release.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--version", help="the new version, as long as the installed one (default: last digit 9)")
    args = parser.parse_args(argv)
    try:
        old = server_version(SERVER)
        new = args.version or default_version(old)
        real = os.path.realpath(SERVER)
        patched = patch(Path(real).read_bytes(), old, new)
        args.out.mkdir(parents=True, exist_ok=True)
        binary = args.out / "valkey-server"
        tmp = args.out / ".valkey-server.tmp"
        tmp.write_bytes(patched)
        tmp.chmod(0o755)
        tmp.replace(binary)
        if server_version(str(binary)) != new:
            raise StandInError("the patched binary does not report %s" % new)
        old_deb = dpkg_field("valkey-server", "Version")
        if not old_deb.startswith(old):
            raise StandInError("the valkey-server package is %s, not a %s build" % (old_deb, old))
        new_deb = new + old_deb[len(old):] + "+valkeyops.standin"
        # Every file of the packages identical to the server binary (valkey-check-aof too).
        original = Path(real).read_bytes()
        debs = []
        for package in PACKAGES:
            files = subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True, check=True).stdout.splitlines()
            replace = {f: patched for f in files if Path(f).is_file() and not Path(f).is_symlink() and Path(f).read_bytes() == original}
            debs.append(str(repack(package, old_deb, new_deb, replace, args.out)))
    except (StandInError, subprocess.CalledProcessError, OSError) as e:
        print("standin_release: %s" % e, file=sys.stderr)
        return 1
    print(json.dumps({"old_version": old, "version": new, "deb_version": new_deb, "binary": str(binary), "sha256": sha256(binary), "debs": debs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
