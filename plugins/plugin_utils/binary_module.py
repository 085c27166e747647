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
import pwd
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
from ansible.utils.collection_loader import resource_from_fqcr
from ansible.utils.display import Display

display = Display()

COLLECTION = "valkeyops.secure"
# The collection root: plugins/plugin_utils/binary_module.py -> ../../
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.path.join(_ROOT, "files", "bin")
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
INSTALL_FAILED = "__VALKEYOPS_INSTALL_FAILED__"

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


def key_lines(pem):
    """The base64 lines of a PEM key, registered as secrets so that not even
    a fragment of a key could be shown (x509check.KeyLines on the Go side)."""
    lines = set()
    if isinstance(pem, str):
        for line in pem.splitlines():
            line = line.strip()
            if len(line) >= 16 and not line.startswith("-----") and ":" not in line:
                lines.add(line)
    return lines


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
