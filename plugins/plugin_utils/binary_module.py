# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bridge between an Ansible task and the valkeyops Go binary.

Every module of this collection is a subcommand of one static Go binary,
``valkeyops``, shipped in the collection's ``files/bin/`` directory for each
platform (not a top-level ``bin/``: ansible-test reads every file there as a
Python script). This action plugin base runs it on the target.

Where we differ from Ansible's stock binary-module path on purpose (and from
sivel/toiletwater, which hands its binary to that path): the stock path sends
the whole binary and an arguments file to a fresh remote temp dir on every
task (measured at 8.4x the cost of one ``raw`` command per task over SSH).
Here the binary is cached on the target under a key made of its sha256, so it
crosses the wire once per host, version and effective user, and each task is
ONE low-level command: a short POSIX sh script that picks the cached binary
by platform (``uname -sm``), checks what costs nothing (owner, mode, size)
and execs it with the arguments as JSON on stdin. No remote temp dir, no Python on the target,
no argument on disk or in argv, ever: a become method or connection that
cannot pass stdin (``su``) is refused before anything is sent. The transfer
happens only when that command reports the binary missing or not trusted.

The cache is trusted because of where it is (see remote_script): in the
effective user's home from its passwd entry (never ``$HOME``, which ``sudo -E``
keeps from the login user), every directory up to ``/`` owned by that user or
root and writable by no one else. The sha256 is checked when a binary is
installed there; a cache that is not private gets a fresh, verified copy in a
private temp dir for each task instead.

On the controller, the task's arguments are validated against a spec derived
from the module's DOCUMENTATION (so ``ansible-doc`` and validation can never
disagree), and every ``no_log`` value is masked in the result, as defense in
depth: the Go side never echoes a secret either.

The controller also tells the module who runs the task and from which Git
commit (the internal key ``_valkeyops_controller``), for the change journal
the module writes on the target: the target needs no Git.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import pwd
import re
import secrets
import shlex
import subprocess

from ansible import constants as C
from ansible import context
from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.errors import UnsupportedError
from ansible.module_utils.json_utils import _filter_non_json_lines
from ansible.plugins.action import ActionBase
from ansible.plugins.loader import fragment_loader
from ansible.utils.collection_loader import resource_from_fqcr
from ansible.utils.display import Display
from ansible.utils.plugin_docs import get_docstring

display = Display()

COLLECTION = "valkeyops.secure"
# The collection root: plugins/plugin_utils/binary_module.py -> ../../
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.path.join(_ROOT, "files", "bin")
MODULES_DIR = os.path.join(_ROOT, "plugins", "modules")

# What `uname -sm` prints -> the binary we ship for it.
PLATFORMS = {
    "Linux x86_64": "linux_amd64",
    "Linux amd64": "linux_amd64",
    "Linux aarch64": "linux_arm64",
    "Linux arm64": "linux_arm64",
}
SHIPPED = sorted(set(PLATFORMS.values()))

MASK = "********"
MISSING = "__VALKEYOPS_MISSING__"
UNSUPPORTED = "__VALKEYOPS_UNSUPPORTED__"
INSTALL_FAILED = "__VALKEYOPS_INSTALL_FAILED__"

# Options every module shares (doc fragment `connection`) that are no_log.
CONNECTION_NO_LOG = ("login_password",)

# The internal argument that carries the controller's metadata to the module
# (internal/ansible.ControllerKey); never an option.
CONTROLLER_KEY = "_valkeyops_controller"
# Bound on the one `git status` per playbook directory and run.
GIT_TIMEOUT = 3


def shipped_binaries():
    """Return (key, {platform: (sha256, size)}) of the shipped binaries.

    ``make build`` writes files/bin/SHA256SUMS; its own hash names the cache
    dir, so a new build never reuses an old binary. Reading one small file
    and two stats keeps this off the per-task hot path (hashing the binaries
    takes longer); the target checks each sha256 when it installs a binary.
    """
    sums = os.path.join(BIN_DIR, "SHA256SUMS")
    try:
        with open(sums, "rb") as f:
            data = f.read()
        shipped = {}
        for line in to_text(data).splitlines():
            digest, name = line.split()
            shipped[name[len("valkeyops_"):]] = (digest, os.stat(os.path.join(BIN_DIR, name)).st_size)
    except OSError as e:
        raise AnsibleError(
            "%s: the valkeyops binaries are missing from %s (%s); "
            "build them with `make build` or install the collection from its Galaxy tarball" % (COLLECTION, BIN_DIR, e.strerror)
        )
    except ValueError:
        raise AnsibleError("%s: %s is not a list of sha256 sums; rebuild it with `make build`" % (COLLECTION, sums))
    return hashlib.sha256(data).hexdigest()[:16], shipped


def git_state(directory):
    """Return (commit, dirty) of the Git repository holding ``directory``, or
    ("", None) when it is not in one, git is missing or too slow.

    One ``git status`` gives both: the ``# branch.oid`` header is HEAD, and
    any other line is a change to a tracked file (untracked files do not make
    the tree dirty, as with ``git describe --dirty``). GIT_OPTIONAL_LOCKS=0
    keeps concurrent forks from fighting over the index lock.
    """
    try:
        proc = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            timeout=GIT_TIMEOUT,
            env=dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C"),
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as e:
        display.vvvv("%s: no Git commit for the change journal (%s)" % (COLLECTION, e))
        return "", None
    if proc.returncode != 0:
        return "", None
    commit, dirty = "", False
    for line in to_text(proc.stdout, errors="surrogate_or_replace").splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split()[2]
            commit = "" if oid == "(initial)" else oid
        elif line and not line.startswith("#"):
            dirty = True
    if not commit:
        return "", None
    return commit, dirty


def cached_git_state(directory):
    """git_state, once per playbook directory and ansible-playbook run.

    Each task runs in a fresh worker process, so the result is kept in a small
    file in the run's own local temp dir (removed when the run ends).
    """
    directory = os.path.realpath(directory)
    cache = None
    try:
        tmp = C.DEFAULT_LOCAL_TMP
        if tmp and os.path.isdir(tmp):
            cache = os.path.join(tmp, "valkeyops-git-%s.json" % hashlib.sha256(directory.encode("utf-8", "surrogateescape")).hexdigest()[:16])
            with open(cache) as f:
                data = json.load(f)
            return data["commit"], data["dirty"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    commit, dirty = git_state(directory)
    if cache:
        try:
            part = "%s.%s" % (cache, secrets.token_hex(4))
            with open(part, "w") as f:
                json.dump({"commit": commit, "dirty": dirty}, f)
            os.replace(part, cache)
        except OSError:
            pass
    return commit, dirty


def controller_user():
    try:
        return getpass.getuser()
    except (KeyError, OSError, ImportError):
        return str(os.getuid())


def playbook_path(playbook_dir):
    """The playbook being run: the command line's playbook that lives in
    playbook_dir (the first one when several do), else playbook_dir."""
    try:
        args = list(context.CLIARGS.get("args") or ())
    except (AttributeError, TypeError):
        args = []
    paths = [os.path.abspath(a) for a in args if isinstance(a, str)]
    if playbook_dir:
        here = [p for p in paths if os.path.dirname(p) == os.path.abspath(playbook_dir)]
        if here:
            return here[0]
        if not paths:
            return os.path.abspath(playbook_dir)
    return paths[0] if paths else ""


def options_to_spec(options, no_log):
    """Turn DOCUMENTATION options into an argument spec."""
    spec = {}
    for name, doc in (options or {}).items():
        entry = {"type": doc.get("type", "str")}
        for key in ("required", "default", "choices", "aliases", "elements"):
            if key in doc:
                entry[key] = doc[key]
        if name in no_log:
            entry["no_log"] = True
        elif entry["type"] in ("str", "raw") and "password" in name:
            entry["no_log"] = False  # documented as not secret (e.g. update_password)
        if "suboptions" in doc:
            entry["options"] = options_to_spec(doc["suboptions"], no_log)
        spec[name] = entry
    return spec


# A user name that can be written after `~` in a script (tilde expansion
# looks it up in passwd; no quoting is possible there).
_TILDE_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._@-]*$")

# Every script starts here: system directories first in PATH (sudo -E without
# secure_path keeps the login user's PATH, and root would run its `uname`),
# the effective user's home from passwd into $h (empty if none), the cache dir
# $d, the platform $p with its binary's size $n and sha256 $c, the binary $b.
# The platform is what `uname -sm` prints; Linux 6.1+ tells the machine in
# /proc/sys/kernel/arch, which a builtin reads without starting a process.
_LOCATE = """\
PATH=/usr/bin:/bin:/usr/sbin:/sbin${PATH:+:$PATH}
umask 077
unset BLOCK_SIZE LS_BLOCK_SIZE
%(home)s
case $h in /?*) ;; *) h= ;; esac
d="$h/.ansible/valkeyops/%(key)s"
if { read -r m </proc/sys/kernel/arch; } 2>/dev/null; then m="Linux $m"; else m=$(uname -sm); fi
case $m in
%(cases)s
  *) echo "%(unsupported)s $m"; exit 0 ;;
esac
b="$d/valkeyops_$p"
"""

# The hot path: run the cached binary if what costs nothing holds (no
# process but one `ls`; `uname` too before Linux 6.1): a regular file, not a link, owned by the effective
# user like its directory, mode 0755 (`.`/`+`: SELinux label, ACL), the
# shipped size (a truncated copy is reinstalled, not run). Its content was
# verified when it was installed into a cache that only this user (or root)
# can write, so what passes here is what was verified.
_RUN_CACHED = """\
if [ -f "$b" ] && [ ! -h "$b" ] && [ -O "$b" ] && [ -O "$d" ]; then
  set -f; set -- $(ls -ln "$b"); set +f
  case "$1:$5" in "-rwxr-xr-x:$n"|"-rwxr-xr-x.:$n"|"-rwxr-xr-x+:$n") exec "$b" module %(module)s ;; esac
fi
"""

# private DIR: DIR and every directory above it (as written and as resolved)
# is owned by the effective user or root and writable by no one else (group
# and other write bits off; with an ACL they show its mask): the OpenSSH
# StrictModes rule. A symlink is judged by the directory holding it.
_PRIVATE = """\
private() {
  uid=$(id -u) && [ -d "$1" ] && [ ! -h "$1" ] && [ -O "$1" ] || return 1
  for q in "$1" "$(cd -P -- "$1" && pwd -P)"; do
    case $q in /*) ;; *) return 1 ;; esac
    while :; do
      if [ ! -h "$q" ]; then
        set -f; set -- $(ls -lnd -- "$q"); set +f
        case $1 in d????-??-*) ;; *) return 1 ;; esac
        [ "$3" = 0 ] || [ "$3" = "$uid" ] || return 1
      fi
      [ "$q" = / ] && break
      q=${q%/*}; q=${q:-/}
    done
  done
}
"""

# The binary is not cached (or not trusted): make the cache dir if the home
# exists and report the platform, whether the cache is private, and its path.
_REPORT_MISSING = """\
if [ -n "$h" ] && [ -d "$h" ] && mkdir -p "$d" 2>/dev/null && private "$d"; then t=1; else t=0; fi
echo "%(missing)s $p $t $d"
exit 0
"""

# After a transfer to $s: copy into the cache (or, if it is not private, into
# a new private dir under the sticky /tmp), check the sha256 of the copy
# where no one else can change it, chmod, rename into place, run. Every
# failure removes what it made and reports one line. $o: the transferred file
# itself, when it sits in the cache dir (removed on failure).
_INSTALL = """\
s=%(staged)s o=%(own)s t=
fail() { [ -n "$t" ] && rm -rf -- "$t"; [ -n "$o" ] && rm -f -- "$o"; echo "%(failed)s $*"; exit 0; }
put() {
  if [ "$1" != "$2" ] && ! cp -- "$1" "$2"; then rm -f -- "$2"; fail "could not copy the binary to $2"; fi
  command -v sha256sum >/dev/null 2>&1 || { rm -f -- "$2"; fail "the target has no sha256sum to verify the binary"; }
  set -f; set -- "$2" $(sha256sum -- "$2"); set +f
  [ "$2" = "$c" ] || { rm -f -- "$1"; fail "the binary copied to $1 does not match its sha256 in SHA256SUMS"; }
  chmod 0755 "$1" || { rm -f -- "$1"; fail "could not make $1 executable"; }
}
if [ -n "$h" ] && private "$d"; then
  find "$d" -maxdepth 1 -name '.valkeyops_*' -mmin +60 -exec rm -f -- {} + 2>/dev/null
  f="$d/.valkeyops_$p.%(tag)s"
  [ -n "$o" ] && f=$o
  put "$s" "$f"
  mv -f -- "$f" "$b" || { rm -f -- "$f"; fail "could not rename $f to $b"; }
  exec "$b" module %(module)s
fi
set -f; set -- $(ls -lnd /tmp); set +f
case "$1:$3" in d????????[tT]*:0) ;; *) fail "no private cache in $h and /tmp is not a sticky root-owned directory" ;; esac
t=$(mktemp -d /tmp/valkeyops.XXXXXXXXXX) || fail "could not create a private directory in /tmp"
put "$s" "$t/valkeyops_$p"
[ -n "$o" ] && rm -f -- "$o"
"$t/valkeyops_$p" module %(module)s
r=$?
rm -rf -- "$t"
exit $r
"""


def remote_script(key, shipped, module, user=None, staged=None, own=False):
    """The one shell command a task costs on the target.

    It locates the effective user's cache (``user``: that user's name when
    the controller knows it, so the shell looks up its home from passwd with
    no extra process; else ``id -un``), picks the binary by platform and
    execs it if it is trusted, else reports MISSING (or UNSUPPORTED) on
    stdout. With ``staged`` (a binary just transferred there) it installs
    that binary first, as _INSTALL says; ``own``: ``staged`` is in the cache
    dir itself.
    """
    if user and _TILDE_USER.match(user):
        home = "h=~%s" % user
    else:
        home = "u=$(id -un 2>/dev/null); case $u in ''|[.@-]*|*[!A-Za-z0-9._@-]*) h= ;; *) eval \"h=~$u\" ;; esac"
    cases = []
    for plat in SHIPPED:
        unames = "|".join('"%s"' % u for u, p in sorted(PLATFORMS.items()) if p == plat)
        digest, size = shipped[plat]
        cases.append("  %s) p=%s n=%d c=%s ;;" % (unames, plat, size, digest))
    script = _LOCATE % {"home": home, "key": key, "cases": "\n".join(cases), "unsupported": UNSUPPORTED}
    fields = {"module": shlex.quote(module), "missing": MISSING, "failed": INSTALL_FAILED}
    if staged:
        fields.update(staged=shlex.quote(staged), own=shlex.quote(staged) if own else "''", tag=secrets.token_hex(6))
        return script + _PRIVATE + _INSTALL % fields
    return script + _RUN_CACHED % fields + _PRIVATE + _REPORT_MISSING % fields


class BinaryModuleAction(ActionBase):
    """Run one valkeyops module. Subclasses set MODULE and, when the module
    has secret options beyond the connection's, NO_LOG."""

    TRANSFERS_FILES = False  # True would cost a remote temp dir on every task
    _requires_connection = True

    MODULE = None
    NO_LOG = ()
    MUTUALLY_EXCLUSIVE = ()
    REQUIRED_TOGETHER = ()

    # -- controller side ---------------------------------------------------

    def argument_spec(self):
        """Derive the argument spec from the module's DOCUMENTATION."""
        path = os.path.join(MODULES_DIR, self.MODULE + ".py")
        doc = get_docstring(path, fragment_loader, collection_name=COLLECTION, is_module=True)[0]
        if not doc or "options" not in doc:
            raise AnsibleError("%s.%s: no DOCUMENTATION options in %s" % (COLLECTION, self.MODULE, path))
        return options_to_spec(doc["options"], set(CONNECTION_NO_LOG) | set(self.NO_LOG))

    def extra_no_log_values(self, params):
        """Secrets that live inside other options (see valkey_config's settings)."""
        return set()

    def validate(self, args):
        validator = ArgumentSpecValidator(
            self.argument_spec(),
            mutually_exclusive=list(self.MUTUALLY_EXCLUSIVE) or None,
            required_together=list(self.REQUIRED_TOGETHER) or None,
        )
        result = validator.validate(args)
        no_log = set(result._no_log_values)
        return result, no_log

    # -- target side -------------------------------------------------------

    def _becomes(self):
        """Whether the task's command runs through become (ActionBase's own
        test in _low_level_execute_command: become to the login user itself is
        skipped unless become_allow_same_user)."""
        if not self._connection.become or resource_from_fqcr(self._connection.transport) == "network_cli":
            return False
        ruser = self._get_remote_user()
        buser = self.get_become_option("become_user")
        return bool(C.BECOME_ALLOW_SAME_USER or buser != ruser or not any((ruser, buser)))

    def _target_user(self, becomes):
        """The name of the user the module runs as, when the controller knows
        it (become_user, the local user, remote_user), else None: the script
        then asks `id -un`. A wrong name costs speed, never trust: the script
        runs only a binary the effective user owns."""
        if becomes:
            return self.get_become_option("become_user") or "root"
        if self._connection.transport == "local":
            try:
                return pwd.getpwuid(os.geteuid()).pw_name
            except KeyError:
                return None
        return self._get_remote_user()

    def _stdin_refusal(self, becomes):
        """Why the arguments cannot go on stdin here, as the task's message,
        or None. The collection never writes them to the target instead."""
        conn = self._connection
        if not conn.has_pipelining:
            return (
                "%s.%s: the %s connection cannot pass the module's arguments on stdin, and this collection never writes them to the target; "
                "use a connection that supports pipelining, such as ssh or local; nothing was changed"
                % (COLLECTION, self.MODULE, getattr(conn, "_load_name", None) or conn.transport)
            )
        # ansible-core 2.17+ says so per become plugin; 2.16 knew one exception, su.
        if becomes and not getattr(conn.become, "pipelining", conn.become.name != "su"):
            return (
                "%s.%s: become_method %s cannot pass the module's arguments on stdin, and this collection never writes them to the target; "
                "use become_method sudo (or another become method that supports pipelining); nothing was changed" % (COLLECTION, self.MODULE, conn.become.name)
            )
        return None

    def _exec(self, script, payload):
        res = self._low_level_execute_command(script, sudoable=True, in_data=payload)
        return res.get("rc"), to_text(res.get("stdout", "")), to_text(res.get("stderr", ""))

    def _run_binary(self, payload):
        """Run the module on the target; return (rc, stdout, stderr)."""
        becomes = self._becomes()
        refusal = self._stdin_refusal(becomes)
        if refusal:
            raise AnsibleError(refusal)
        key, shipped = shipped_binaries()
        user = self._target_user(becomes)
        rc, out, err = self._exec(remote_script(key, shipped, self.MODULE, user), payload)
        first = _first_line(out)
        if first.startswith(UNSUPPORTED):
            platform = first[len(UNSUPPORTED):].strip() or "unknown"
            raise AnsibleError(
                "%s.%s: the target reports platform %r, for which this collection ships no binary; "
                "shipped platforms: %s" % (COLLECTION, self.MODULE, platform, ", ".join(SHIPPED))
            )
        if not first.startswith(MISSING):
            return rc, out, err
        fields = first.split(" ", 3)
        if len(fields) != 4 or fields[1] not in shipped:
            raise AnsibleError("%s.%s: unexpected answer from the target while looking for the binary: %r" % (COLLECTION, self.MODULE, first[:200]))
        plat, private, cache_dir = fields[1], fields[2] == "1", fields[3]
        return self._install_and_run(key, shipped, user, plat, cache_dir if private and not becomes else None, payload)

    def _install_and_run(self, key, shipped, user, plat, cache_dir, payload):
        """Transfer the binary, install it and run the module.

        ``cache_dir``: the login user's own private cache, where the binary
        goes straight (under a temp name). Otherwise (become, or no private
        cache) it is staged in an Ansible temp dir that the effective user can
        read, and the script copies it. Either way the script verifies the
        copy's sha256 where only the effective user can change it, and nothing
        partial is left behind when a transfer or an install fails.
        """
        local = os.path.join(BIN_DIR, "valkeyops_" + plat)
        display.vvv("%s: caching %s on the target in %s" % (COLLECTION, os.path.basename(local), cache_dir or "the effective user's cache"))
        if cache_dir:
            staged = self._connection._shell.join_path(cache_dir, ".valkeyops_%s.%s" % (plat, secrets.token_hex(6)))
            try:
                self._connection.put_file(local, staged)
            except AnsibleError as e:
                self._remove_partial(staged)
                reason = " ".join(str(e).split())
                raise AnsibleError("%s.%s: failed to transfer the valkeyops binary to the target: %s; nothing was changed" % (COLLECTION, self.MODULE, reason))
            return self._installed(self._exec(remote_script(key, shipped, self.MODULE, user, staged, own=True), payload))
        tmp = self._make_tmp_path()
        try:
            staged = self._connection._shell.join_path(tmp, "valkeyops_" + plat)
            self._transfer_file(local, staged)
            self._fixup_perms2([tmp, staged], execute=False)
            return self._installed(self._exec(remote_script(key, shipped, self.MODULE, user, staged), payload))
        finally:
            self._remove_tmp_path(tmp, force=True)

    def _remove_partial(self, path):
        """After a failed transfer: remove what it wrote (partial binaries
        once filled a disk). The connection may be gone too; then say so."""
        try:
            rc, dummy, err = self._exec("rm -f -- %s" % shlex.quote(path), None)
        except AnsibleError as e:
            rc, err = None, str(e)
        if rc != 0:
            display.warning("%s: could not remove the partial file %s on the target: %s" % (COLLECTION, path, err.strip()[:300]))

    def _installed(self, result):
        """The module's (rc, stdout, stderr), or the install's failure."""
        rc, out, err = result
        first = _first_line(out)
        if first.startswith(INSTALL_FAILED):
            detail = err.strip().splitlines()
            raise AnsibleError(
                "%s.%s: could not install the valkeyops binary on the target: %s%s; nothing was changed"
                % (COLLECTION, self.MODULE, first[len(INSTALL_FAILED):].strip(), (" (%s)" % detail[-1][:300]) if detail else "")
            )
        return result

    # -- the task ------------------------------------------------------------

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        fqcn = "%s.%s" % (COLLECTION, self.MODULE)
        args = dict(self._task.args)

        validation, no_log = self.validate(args)
        if validation.error_messages:
            msgs = "; ".join(
                ("unsupported parameters: %s" % e.msg) if isinstance(e, UnsupportedError) else e.msg
                for e in validation.errors
            )
            # The arguments failed validation, so secrets may sit where the
            # spec does not expect them (a password list given as a dict):
            # mask every string the secret options hold, whatever their shape.
            hidden = no_log | _strings(args, CONNECTION_NO_LOG + tuple(self.NO_LOG))
            try:
                hidden |= self.extra_no_log_values(args)
            except (AttributeError, TypeError, KeyError, ValueError):
                pass  # malformed beyond what the subclass can read; masked below by option
            return mask(
                {"failed": True, "changed": False, "msg": "%s: invalid arguments: %s; nothing was changed" % (fqcn, msgs)},
                hidden,
            )
        params = validation.validated_parameters
        no_log |= self.extra_no_log_values(params)

        params["_ansible_check_mode"] = bool(self._task.check_mode)
        params["_ansible_diff"] = bool(self._task.diff)
        params["_ansible_verbosity"] = display.verbosity
        params[CONTROLLER_KEY] = self.controller_metadata(task_vars or {})
        payload = json.dumps(params).encode("utf-8")

        rc, out, err = self._run_binary(payload)
        result = self._parse(rc, out, err, fqcn)
        return mask(result, no_log)

    def controller_metadata(self, task_vars):
        """Who runs the task and from which commit, for the change journal."""
        playbook_dir = task_vars.get("playbook_dir") or ""
        commit, dirty = cached_git_state(playbook_dir) if playbook_dir else ("", None)
        try:
            task = self._task.get_path() or ""
        except AttributeError:
            task = ""
        return {
            "user": controller_user(),
            "playbook": playbook_path(playbook_dir),
            "task": task,
            "git_commit": commit,
            "git_dirty": dirty,
        }

    def _parse(self, rc, out, err, fqcn):
        try:
            data = _filter_non_json_lines(out)[0]
            result = json.loads(data)
            if not isinstance(result, dict):
                raise ValueError("not an object")
        except ValueError:
            detail = (err or out).strip().splitlines()
            detail = detail[-1][:300] if detail else "no output"
            return {
                "failed": True,
                "changed": False,
                "rc": rc,
                "msg": "%s: the module produced no result (exit code %s): %s" % (fqcn, rc, detail),
            }
        result.setdefault("changed", False)
        return result


def _first_line(out):
    return out.lstrip().split("\n", 1)[0] if out.strip() else ""


# Secrets shorter than this are masked only where a whole string equals them:
# masking every "a" inside other words would wreck the result and hide nothing.
MIN_SUBSTRING_SECRET = 4


def mask(value, secrets_):
    """Return value with every secret replaced by ********, in every string of
    every nested dict and list (values only; keys are option and field names)."""
    secrets_ = [s for s in secrets_ if isinstance(s, str) and s]
    if not secrets_:
        return value
    long_ = sorted((s for s in secrets_ if len(s) >= MIN_SUBSTRING_SECRET), key=len, reverse=True)
    short = set(s for s in secrets_ if len(s) < MIN_SUBSTRING_SECRET)

    def walk(v):
        if isinstance(v, str):
            if v in short:
                return MASK
            for s in long_:
                if s in v:
                    v = v.replace(s, MASK)
            return v
        if isinstance(v, dict):
            return dict((k, walk(e)) for k, e in v.items())
        if isinstance(v, (list, tuple)):
            return [walk(e) for e in v]
        return v

    return walk(value)


def _strings(args, names):
    """Raw values of secret options, for masking messages before validation:
    every string under an option of that name, at any depth (the options of
    a users list included) and whatever its (possibly wrong) shape."""
    found = set()

    def collect(v):
        if isinstance(v, str):
            if v:
                found.add(v)
        elif isinstance(v, dict):
            for e in v.values():
                collect(e)
        elif isinstance(v, (list, tuple)):
            for e in v:
                collect(e)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            found.add(str(v))

    def walk(v):
        if isinstance(v, dict):
            for k, e in v.items():
                if k in names:
                    collect(e)
                else:
                    walk(e)
        elif isinstance(v, (list, tuple)):
            for e in v:
                walk(e)

    walk(args)
    return found
