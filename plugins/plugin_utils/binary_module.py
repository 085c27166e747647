# -*- coding: utf-8 -*-
# Copyright: valkeyops.secure contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bridge between an Ansible task and the valkeyops Go binary.

Every module of this collection is a subcommand of one static Go binary,
``valkeyops``, shipped in the collection's ``bin/`` directory for each
platform. This action plugin base runs it on the target.

Where we differ from Ansible's stock binary-module path on purpose (and from
sivel/toiletwater, which hands its binary to that path): the stock path sends
the whole binary and an arguments file to a fresh remote temp dir on every
task (measured at 8.4x the cost of one ``raw`` command per task over SSH).
Here the binary is cached on the target under a key made of its sha256, so it
crosses the wire once per host, version and remote user, and each task is ONE
low-level command: a short POSIX sh script that picks the cached binary by
``uname -sm`` and execs it with the arguments as JSON on stdin. No remote temp
dir, no ``stat``, no Python on the target, no argument on disk or in argv. The
transfer happens only when that command reports the binary missing.

Fallbacks, both slower and both removed after the task:
- become to another user: the binary is staged in an Ansible temp dir made
  readable to that user, then installed into the become user's own cache
  (or, if that user has no usable home, run straight from the temp dir);
- no stdin (a connection without pipelining support, or ``become_method: su``):
  the arguments go into a 0600 file in a private temp dir.

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
from ansible.utils.display import Display
from ansible.utils.plugin_docs import get_docstring

display = Display()

COLLECTION = "valkeyops.secure"
# The collection root: plugins/plugin_utils/binary_module.py -> ../../
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.path.join(_ROOT, "bin")
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

# Options every module shares (doc fragment `connection`) that are no_log.
CONNECTION_NO_LOG = ("login_password",)

# The internal argument that carries the controller's metadata to the module
# (internal/ansible.ControllerKey); never an option.
CONTROLLER_KEY = "_valkeyops_controller"
# Bound on the one `git status` per playbook directory and run.
GIT_TIMEOUT = 3


def binary_key():
    """Return the cache key of the shipped binaries.

    ``make build`` writes bin/SHA256SUMS; its own hash names the cache dir,
    so a new build never reuses an old binary. Reading one small file keeps
    this off the per-task hot path (hashing the binaries takes longer).
    """
    sums = os.path.join(BIN_DIR, "SHA256SUMS")
    try:
        with open(sums, "rb") as f:
            data = f.read()
    except OSError as e:
        raise AnsibleError(
            "%s: the valkeyops binaries are missing from %s (%s); "
            "build them with `make build` or install the collection from its Galaxy tarball" % (COLLECTION, BIN_DIR, e.strerror)
        )
    return hashlib.sha256(data).hexdigest()[:16]


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


def remote_script(key, module, prefix="", args_file=""):
    """The one shell command a task costs on the target.

    It picks the binary by `uname -sm`, reports MISSING (creating the cache
    dir) or UNSUPPORTED on stdout when it cannot run it, else execs it.
    ``prefix`` installs a freshly transferred binary first.
    """
    cases = "\n".join(
        '  "%s") p=%s ;;' % (uname, plat) for uname, plat in sorted(PLATFORMS.items())
    )
    run = 'exec "$b" module %s' % shlex.quote(module)
    if args_file:
        run += " " + shlex.quote(args_file)
    return (
        "umask 077\n"
        'case "$(uname -sm)" in\n'
        "%s\n"
        '  *) echo "%s $(uname -sm)"; exit 0 ;;\n'
        "esac\n"
        'd="${HOME:-/nonexistent}/.ansible/valkeyops/%s"\n'
        'b="$d/valkeyops_$p"\n'
        "%s"
        '[ -x "$b" ] || { mkdir -p "$d" 2>/dev/null && ok=1 || ok=0; echo "%s $p $d $ok"; exit 0; }\n'
        "%s\n"
    ) % (cases, UNSUPPORTED, key, prefix, MISSING, run)


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

    def _stdin_usable(self):
        conn = self._connection
        if not conn.has_pipelining:
            return False
        become = conn.become
        return not become or (getattr(become, "pipelining", True) and become.name != "su")

    def _become_active(self):
        return bool(self._connection.become) and self._play_context.become

    def _exec(self, script, payload):
        res = self._low_level_execute_command(script, sudoable=True, in_data=payload)
        return res.get("rc"), to_text(res.get("stdout", "")), to_text(res.get("stderr", ""))

    def _run_binary(self, payload):
        """Run the module on the target; return (rc, stdout, stderr)."""
        key = binary_key()
        args_tmp = None
        args_file = ""
        in_data = payload
        try:
            if not self._stdin_usable():
                args_tmp = self._make_tmp_path()
                args_file = self._connection._shell.join_path(args_tmp, "args.json")
                self._transfer_data(args_file, payload)
                self._fixup_perms2([args_tmp, args_file], execute=False)
                in_data = None

            rc, out, err = self._exec(remote_script(key, self.MODULE, args_file=args_file), in_data)
            first = out.lstrip().split("\n", 1)[0] if out.strip() else ""
            if first.startswith(UNSUPPORTED):
                platform = first[len(UNSUPPORTED):].strip() or "unknown"
                raise AnsibleError(
                    "%s.%s: the target reports platform %r, for which this collection ships no binary; "
                    "shipped platforms: %s" % (COLLECTION, self.MODULE, platform, ", ".join(SHIPPED))
                )
            if not first.startswith(MISSING):
                return rc, out, err
            fields = first.split()
            plat, cache_dir, dir_ok = fields[1], fields[2], fields[3] == "1"
            return self._install_and_run(key, plat, cache_dir, dir_ok, in_data, args_file)
        finally:
            if args_tmp:
                self._remove_tmp_path(args_tmp, force=True)

    def _install_and_run(self, key, plat, cache_dir, dir_ok, in_data, args_file):
        local = os.path.join(BIN_DIR, "valkeyops_" + plat)
        if not os.path.isfile(local):
            raise AnsibleError("%s: the binary for %s is missing from %s; run `make build`" % (COLLECTION, plat, BIN_DIR))
        display.vvv("%s: caching %s on the target in %s" % (COLLECTION, os.path.basename(local), cache_dir))
        tmp_name = ".valkeyops_%s.%s" % (plat, secrets.token_hex(6))
        if not self._become_active() and dir_ok:
            # Same user on both ends: put the binary straight into the cache.
            staged = self._connection._shell.join_path(cache_dir, tmp_name)
            self._connection.put_file(local, staged)
            prefix = 't=%s; chmod 0755 "$t" && mv -f "$t" "$b" || { rm -f "$t"; exit 97; }\n' % shlex.quote(staged)
            rc, out, err = self._exec(remote_script(key, self.MODULE, prefix, args_file), in_data)
            return rc, out, err
        # become (or no usable cache dir): stage in an Ansible temp dir the
        # effective user can read, then copy into that user's cache; if it
        # has none, run the staged copy directly.
        tmp = self._make_tmp_path()
        try:
            staged = self._connection._shell.join_path(tmp, "valkeyops_" + plat)
            self._transfer_file(local, staged)
            self._fixup_perms2([tmp, staged], execute=True)
            prefix = (
                's=%s\n'
                'if mkdir -p "$d" 2>/dev/null && cp "$s" "$d/%s" 2>/dev/null && chmod 0755 "$d/%s" && mv -f "$d/%s" "$b"; then :; '
                'else rm -f "$d/%s" 2>/dev/null; b="$s"; fi\n'
            ) % (shlex.quote(staged), tmp_name, tmp_name, tmp_name, tmp_name)
            return self._exec(remote_script(key, self.MODULE, prefix, args_file), in_data)
        finally:
            self._remove_tmp_path(tmp, force=True)

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
