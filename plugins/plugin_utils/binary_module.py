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

On the controller, the task's arguments are validated against the module's
spec, which the Go binary defines (``valkeyops spec``, written next to this
file by ``make build``; a parity test keeps DOCUMENTATION in agreement): the
same rules in the same order with the same sentences as the Go side's
``ansible.Spec.Check``, so a typo fails before any host is touched and the
user reads one message per rule. Target paths are passed as written (never
``~`` or ``$VAR`` expanded here). Every secret the spec names is masked in
the result, as defense in depth: the Go side never echoes a secret either.

The controller also tells the module who runs the task and from which Git
commit (the internal key ``_valkeyops_controller``), for the change journal
the module writes on the target: the target needs no Git.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import math
import os
import re
import secrets
import shlex
import subprocess
import unicodedata

from ansible import constants as C
from ansible import context
from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.json_utils import _filter_non_json_lines
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

COLLECTION = "valkeyops.secure"
# The collection root: plugins/plugin_utils/binary_module.py -> ../../
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.path.join(_ROOT, "bin")
# Every module's interface, printed by the binary (`valkeyops spec`) at build time.
SPEC_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "valkeyops_spec.json")

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


def load_spec():
    """The document `valkeyops spec` printed at build time: {"modules": {name:
    spec}, "secret_directives": [...]}. One json.load per task (each task runs
    in a fresh worker)."""
    try:
        with open(SPEC_FILE) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise AnsibleError(
            "%s: the modules' spec %s is missing or unreadable (%s); "
            "build it with `make build` or install the collection from its Galaxy tarball" % (COLLECTION, SPEC_FILE, e)
        )


# ---- the Go side's option rules (internal/ansible/spec.go), word for word ----
#
# Spec.Check in Go and check_options here apply the same rules in the same
# order and say the same sentences; tests/integration/test_interface.py runs
# the same bad inputs through both. Change one, change the other.

BOOLEANS_TRUE = ("y", "yes", "on", "1", "true", "t")
BOOLEANS_FALSE = ("n", "no", "off", "0", "false", "f")
ARTICLES = {"str": "a string", "path": "a string", "bool": "a boolean", "int": "an integer", "float": "a number", "dict": "a dictionary"}
ASCII_SPACE = " \t\n\r\f\v"
INT_RE = re.compile(r"\A[+-]?[0-9]+\Z")
FLOAT_RE = re.compile(r"\A[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")
INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63


class OptionError(ValueError):
    """One sentence naming the option, what was wrong and what was expected."""


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(s):
    """Go's %q (strconv.Quote) of a string, for the messages to match."""
    out = []
    for ch in s:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch == " " or (ch != "\x7f" and unicodedata.category(ch)[0] in "LMNPS"):
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append("\\x%02x" % ord(ch))
        elif ord(ch) <= 0xFFFF:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append("\\U%08x" % ord(ch))
    return '"%s"' % "".join(out)


def _key(k):
    """A dictionary key as it reaches the Go side in JSON."""
    if isinstance(k, str):
        return k
    return json.dumps(k) if isinstance(k, (bool, type(None))) else str(k)


def _expected(name, what):
    return OptionError("option %s: expected %s" % (go_quote(name), what))


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v):
    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float is still a number
        return isinstance(v, int)


def _given(params, name):
    return params.get(name) is not None


def check_options(module, spec, params):
    """Validate a task's arguments against a module's spec; return them with
    their types coerced. Raises OptionError with the Go side's sentence."""
    out = _check_level(module, spec["options"], params, "")
    for a, b in spec.get("mutually_exclusive") or ():
        if _given(params, a) and _given(params, b):
            raise OptionError("options %s and %s are mutually exclusive: give one or the other" % (go_quote(a), go_quote(b)))
    for a, b in spec.get("required_together") or ():
        if _given(params, a) != _given(params, b):
            raise OptionError("options %s and %s go together: give both or neither" % (go_quote(a), go_quote(b)))
    return out


_NAMES = {}  # id(options) -> (names in order, required names): 10,000 users share one suboptions dict


def _names(options):
    plan = _NAMES.get(id(options))
    if plan is None or plan[0] is not options:
        names = sorted(options)
        plan = _NAMES[id(options)] = (options, names, [k for k in names if options[k].get("required")])
    return plan[1], plan[2]


def _check_level(module, options, params, prefix):
    keys = params if all(isinstance(k, str) for k in params) else dict((_key(k), v) for k, v in params.items())
    unknown = [prefix + k for k in keys if k not in options]
    if unknown:
        unknown.sort()
        where = " in " + prefix[:-1] if prefix else ""
        raise OptionError(
            "unsupported %s for %s: %s; valid options%s: %s"
            % ("options" if len(unknown) > 1 else "option", module, ", ".join(unknown), where, ", ".join(sorted(options)))
        )
    names, required = _names(options)
    for k in required:
        if keys.get(k) is None:
            raise OptionError("option %s is required" % go_quote(prefix + k))
    out = {}
    for k in names:
        v = keys.get(k)
        if v is not None:
            out[k] = _check_value(module, options[k], v, prefix + k)
    return out


def _check_value(module, o, v, name):
    if o["type"] != "list":
        c = _check_one(module, o, v, name)
        _check_choice(o, c, name)
        return c
    elements = o.get("elements")
    if elements in ("str", "path") and isinstance(v, list) and all(isinstance(x, str) and "\0" not in x for x in v):
        # The common case, checked at once: strings without a NUL byte.
        choices = o.get("choices")
        if not choices or all(x in choices for x in v):
            return list(v)
    if isinstance(v, (list, tuple)):
        items = v
    elif isinstance(v, str) and elements != "dict":
        items = v.split(",")
    elif _is_number(v) and elements != "dict":
        items = [str(v)]
    else:
        raise _expected(name, "a list of " + ("dictionaries" if elements == "dict" else ARTICLES[elements].split(" ", 1)[1] + "s"))
    elem = dict(o, type=elements)
    out = []
    for i, item in enumerate(items):
        c = _check_one(module, elem, item, "%s[%d]" % (name, i))
        _check_choice(o, c, name)
        out.append(c)
    return out


def _check_choice(o, v, name):
    choices = o.get("choices")
    if choices and v not in choices:
        raise OptionError("option %s: %s is not one of %s" % (go_quote(name), go_quote(v if isinstance(v, str) else ""), ", ".join(choices)))


def _check_one(module, o, v, name):
    t = o["type"]
    if v is None:
        raise _expected(name, ARTICLES.get(t, "a value"))
    if t in ("str", "path"):
        if not isinstance(v, (str, dict, list, tuple, set, bool, int, float)):
            v = to_text(v)  # a text-like object (an inline !vault value): its text, as Ansible's validator did
        if isinstance(v, str):
            if "\0" in v:
                raise OptionError("option %s: the value contains a NUL byte" % go_quote(name))
            return v
        if _is_number(v) and _finite(v):
            return str(v)
        if isinstance(v, bool):
            # A YAML yes/no given for a choice spelled yes/no.
            for c in o.get("choices") or ():
                if c in (BOOLEANS_TRUE if v else BOOLEANS_FALSE):
                    return c
        raise _expected(name, "a string")
    if t == "bool":
        if isinstance(v, bool):
            return v
        if isinstance(v, str):
            s = v.strip().lower()
            if s in BOOLEANS_TRUE:
                return True
            if s in BOOLEANS_FALSE:
                return False
        elif _is_number(v) and v in (0, 1):
            return v == 1
        raise _expected(name, "a boolean")
    if t == "int":
        if isinstance(v, str):
            s = v.strip(ASCII_SPACE)
            if INT_RE.match(s) and INT_MIN <= int(s) < INT_MAX:
                return int(s)
        elif isinstance(v, int) and not isinstance(v, bool):
            if INT_MIN <= v < INT_MAX:
                return int(v)
        elif isinstance(v, float) and v.is_integer() and INT_MIN <= v < INT_MAX:
            return int(v)
        raise _expected(name, "an integer")
    if t == "float":
        if isinstance(v, str):
            s = v.strip(ASCII_SPACE)
            if FLOAT_RE.match(s) and math.isfinite(float(s)):
                return float(s)
        elif _is_number(v) and _finite(v):
            return float(v)
        raise _expected(name, "a number")
    if t == "dict":
        if not isinstance(v, dict):
            raise _expected(name, "a dictionary")
        if o.get("options") is not None:
            return _check_level(module, o["options"], v, name + ".")
        if not o.get("directives"):  # the directives engine reads each value (NUL and line breaks included)
            _check_nul(v, name)
        return v
    if t == "raw":
        _check_nul(v, name)
        return v
    raise OptionError("internal error: option %s has the unknown type %s" % (go_quote(name), go_quote(t)))


def _check_nul(v, name):
    if isinstance(v, str):
        if "\0" in v:
            raise OptionError("option %s: the value contains a NUL byte" % go_quote(name))
    elif isinstance(v, dict):
        keys = dict((_key(k), e) for k, e in v.items())
        for k in sorted(keys):
            if "\0" in k:
                raise OptionError("option %s: a key contains a NUL byte" % go_quote(name))
            _check_nul(keys[k], name + "." + k)
    elif isinstance(v, (list, tuple)):
        for i, e in enumerate(v):
            _check_nul(e, "%s[%d]" % (name, i))


def secret_directive(name, secret_directives):
    """Whether a directive name as written (any case, surrounding space)
    names a secret directive (the Go side's IsSecretDirective; Go lowercases
    a dotted capital I to a plain i)."""
    return isinstance(name, str) and name.strip().lower().replace("i\u0307", "i") in secret_directives


def spec_secrets(options, params, secret_directives):
    """The values the spec makes secret in checked params (the Go side's
    Spec.SecretValues): no_log options at any depth, values of secret
    directives in a directives dictionary, and every string under a secret
    key of a free-form dictionary."""
    found = set()

    def holds_secret(o):
        return o.get("no_log") or o.get("directives") or o.get("secret_keys") or any(holds_secret(e) for e in (o.get("options") or {}).values())

    plans = {}

    def walk(options, params):
        names = plans.get(id(options))
        if names is None:
            names = plans[id(options)] = [k for k in sorted(options) if holds_secret(options[k])]
        for k in names:
            v, o = params.get(k), options[k]
            if v is None:
                continue
            for item in (v if o["type"] == "list" and isinstance(v, list) else [v]):
                if o.get("no_log"):
                    _collect(item, found)
                elif o.get("directives"):
                    if isinstance(item, dict):
                        for d, value in item.items():
                            if secret_directive(d, secret_directives):
                                _collect(value, found)
                elif o.get("secret_keys"):
                    if isinstance(item, dict):
                        for key, value in item.items():
                            if any(sk in _key(key).lower() for sk in o["secret_keys"]):
                                _collect(value, found)
                elif o.get("options") is not None and isinstance(item, dict):
                    walk(o["options"], item)

    walk(options, params)
    return found


def raw_secrets(spec, args, secret_directives):
    """Secrets in arguments that failed validation, whatever their shape:
    every string under any key that names a no_log option anywhere in the
    spec, a secret directive, or contains a secret key (password, hash)."""
    names, keys = set(), set()

    def names_of(options):
        for k, o in options.items():
            if o.get("no_log"):
                names.add(k)
            keys.update(o.get("secret_keys") or ())
            if o.get("options"):
                names_of(o["options"])

    names_of(spec["options"])
    found = set()

    def walk(v):
        if isinstance(v, dict):
            for k, e in v.items():
                k = _key(k)
                if k in names or secret_directive(k, secret_directives) or any(s in k.lower() for s in keys):
                    _collect(e, found)
                else:
                    walk(e)
        elif isinstance(v, (list, tuple)):
            for e in v:
                walk(e)

    walk(args)
    return found


def _collect(v, found):
    if isinstance(v, str):
        if v:
            found.add(v)
    elif isinstance(v, dict):
        for e in v.values():
            _collect(e, found)
    elif isinstance(v, (list, tuple)):
        for e in v:
            _collect(e, found)
    elif v is not None and not isinstance(v, (bool, set)):
        found.add(to_text(v))  # a number, or a text-like object (an inline !vault value)


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
    """Run one valkeyops module. Subclasses set MODULE and, when the module's
    secrets have derived forms the result might show (a hash of a password),
    derived_secrets."""

    TRANSFERS_FILES = False  # True would cost a remote temp dir on every task
    _requires_connection = True

    MODULE = None
    # How the module ends a refusal (the Go side's words after the sentence).
    REFUSED = "nothing was changed"

    # -- controller side ---------------------------------------------------

    def derived_secrets(self, params, found):
        """Forms of the secrets in ``found`` that the result could show
        (see valkey_acl: the SHA-256 of each password)."""
        return set()

    def validate(self, args):
        """Return (params, secrets): the arguments checked and coerced by the
        module's spec, and every secret value the spec names in them. Raises
        OptionError with the Go side's sentence."""
        doc = load_spec()
        spec = doc["modules"].get(self.MODULE)
        if spec is None:
            raise AnsibleError("%s: the spec %s has no module %s; rebuild with `make build`" % (COLLECTION, SPEC_FILE, self.MODULE))
        directives = frozenset(doc.get("secret_directives") or ())
        try:
            params = check_options(self.MODULE, spec, args)
        except OptionError as e:
            # Secrets may sit where the spec does not expect them (a password
            # list given as a dict): mask every string a secret could be.
            hidden = raw_secrets(spec, args, directives)
            raise OptionError(mask(str(e), hidden))
        found = spec_secrets(spec["options"], params, directives)
        found |= self.derived_secrets(params, found)
        return params, found

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

        try:
            params, no_log = self.validate(args)
        except OptionError as e:
            return {"failed": True, "changed": False, "msg": "%s; %s" % (e, self.REFUSED)}

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
            data, _ = _filter_non_json_lines(out)
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
    every nested dict and list (values only; keys are option and field names).

    It scales with the result, not with results x secrets (valkey_acl with
    10,000 users has 20,000 secrets): secrets are indexed by their first
    MIN_SUBSTRING_SECRET characters, and a string is searched only for the
    secrets whose prefix occurs in it (one set intersection with the string's
    own prefixes). Those are replaced longest first, so that a secret holding
    another is masked whole."""
    whole = set(s for s in secrets_ if isinstance(s, str) and s)
    if not whole:
        return value
    n = MIN_SUBSTRING_SECRET
    by_prefix = {}
    for s in whole:
        if len(s) >= n:
            by_prefix.setdefault(s[:n], []).append(s)
    prefixes = set(by_prefix)

    def scrub(x):
        if x in whole:
            return MASK
        if len(x) <= n or not prefixes:
            return x
        hits = prefixes.intersection(x[i:i + n] for i in range(len(x) - n + 1))
        if not hits:
            return x
        for s in sorted((s for p in hits for s in by_prefix[p]), key=len, reverse=True):
            if s in x:
                x = x.replace(s, MASK)
        return x

    def walk(v):
        if isinstance(v, str):
            return scrub(v)
        if isinstance(v, dict):
            return dict((k, walk(e)) for k, e in v.items())
        if isinstance(v, (list, tuple)):
            return [walk(e) for e in v]
        return v

    return walk(value)
