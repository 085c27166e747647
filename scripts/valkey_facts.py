#!/usr/bin/env python3
"""Write the directive facts of one Valkey release from its src/config.c.

Reads the standardConfig table (static_configs[]) and the configEnum tables of
src/config.c, and the numeric #defines of src/server.h, at one git ref of a
Valkey clone, and writes a JSON facts file: per directive its type, alias,
flags, bounds, enum values and default, tagged with the version and commit
they were read from. Only data is extracted; no code is copied.

    scripts/valkey_facts.py --repo /path/to/valkey.git --ref 8.0.1 \
        --out internal/directives/facts/valkey-8.0.json

internal/directives/facts_test.go checks the Go table against these files, and
facts_live_test.go checks the 8.0 file against a running valkey-server.
"""

import argparse
import json
import re
import subprocess
import sys

C_LIMITS = {
    "INT_MAX": 2**31 - 1, "INT_MIN": -(2**31), "UINT_MAX": 2**32 - 1,
    "LONG_MAX": 2**63 - 1, "LONG_MIN": -(2**63), "ULONG_MAX": 2**64 - 1,
    "LLONG_MAX": 2**63 - 1, "LLONG_MIN": -(2**63), "ULLONG_MAX": 2**64 - 1,
    "SSIZE_MAX": 2**63 - 1, "SIZE_MAX": 2**64 - 1,
}

# Argument positions of each create*Config macro (after name and alias).
NUMERIC = {"Int", "UInt", "Long", "ULong", "LongLong", "ULongLong", "SizeT", "SSizeT", "TimeT", "OffT"}


def git_show(repo, ref, path):
    return subprocess.run(["git", "--git-dir", repo, "show", f"{ref}:{path}"],
                          check=True, capture_output=True, text=True).stdout


def split_args(s):
    """Split a C argument list at top-level commas."""
    out, depth, cur, i, instr = [], 0, [], 0, False
    while i < len(s):
        c = s[i]
        if instr:
            cur.append(c)
            if c == "\\":
                cur.append(s[i + 1])
                i += 1
            elif c == '"':
                instr = False
        elif c == '"':
            instr = True
            cur.append(c)
        elif c in "([{":
            depth += 1
            cur.append(c)
        elif c in ")]}":
            depth -= 1
            cur.append(c)
        elif c == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def c_string(tok):
    tok = tok.strip()
    if tok == "NULL":
        return None
    m = re.fullmatch(r'"((?:[^"\\]|\\.)*)"', tok)
    return m.group(1) if m else None


class Evaluator:
    def __init__(self, defines):
        self.defines = defines

    def __call__(self, expr, depth=0):
        expr = expr.strip()
        if depth > 8:
            raise ValueError(expr)
        if expr in C_LIMITS:
            return C_LIMITS[expr]
        if expr in self.defines:
            return self(self.defines[expr], depth + 1)
        py = re.sub(r"\b(\d+)(?:[uU]?[lL]{1,2}|[lL]{1,2}[uU]?|[uU])\b", r"\1", expr)
        py = re.sub(r"\b0([0-7]+)\b", r"0o\1", py)

        def name(m):
            n = m.group(0)
            if n in C_LIMITS:
                return str(C_LIMITS[n])
            if n in self.defines:
                return "(" + str(self(self.defines[n], depth + 1)) + ")"
            raise ValueError(n)
        py = re.sub(r"\b[A-Za-z_][A-Za-z_0-9]*\b", name, py)
        if not re.fullmatch(r"[0-9xXoO+\-*/<>() ]+", py):
            raise ValueError(expr)
        return int(eval(py, {"__builtins__": {}}))  # noqa: S307 - digits and operators only


def parse_defines(text):
    out = {}
    for m in re.finditer(r"^#define\s+([A-Z_][A-Z_0-9]*)\s+([^\n/]+?)\s*(?:/\*.*)?$", text, re.M):
        out[m.group(1)] = m.group(2)
    return out


def parse_enums(text):
    enums = {}
    for m in re.finditer(r"configEnum\s+(\w+)\[\]\s*=\s*\{(.*?)\};", text, re.S):
        vals = re.findall(r'\{\s*"([^"]+)"\s*,\s*([^}]+?)\s*\}', m.group(2))
        enums[m.group(1)] = vals  # [(name, constant)]
    return enums


def parse_table(text):
    start = text.index("standardConfig static_configs[] = {")
    end = text.index("{NULL}", start)
    body = text[start:end]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    entries, cond = [], []
    for line in body.splitlines():
        s = line.strip()
        if s.startswith("#if"):
            cond.append(s)
            continue
        if s.startswith("#else"):
            cond[-1] = "!" + cond[-1]
            continue
        if s.startswith("#endif"):
            cond.pop()
            continue
        entries.append((s, list(cond)))
    # Re-join calls that span lines.
    calls, buf, bcond = [], "", []
    for s, c in entries:
        if not buf and not s.startswith("create"):
            continue
        if not buf:
            bcond = c
        buf += " " + s
        if buf.count("(") == buf.count(")"):
            calls.append((buf.strip().rstrip(","), bcond))
            buf = ""
    return calls


def build(repo, ref):
    config_c = git_show(repo, ref, "src/config.c")
    server_h = git_show(repo, ref, "src/server.h")
    version_h = git_show(repo, ref, "src/version.h")
    commit = subprocess.run(["git", "--git-dir", repo, "rev-parse", ref + "^{commit}"],
                            check=True, capture_output=True, text=True).stdout.strip()
    version = re.search(r'#define VALKEY_VERSION "([^"]+)"', version_h).group(1)
    defines = parse_defines(server_h)
    defines.update(parse_defines(config_c))
    ev = Evaluator(defines)
    enums = parse_enums(config_c)
    facts = {}
    for call, cond in parse_table(config_c):
        m = re.fullmatch(r"create(\w+)Config\((.*)\)", call, re.S)
        kind, args = m.group(1), split_args(m.group(2))
        name, alias = c_string(args[0]), c_string(args[1])
        flags = sorted(f.strip() for f in args[2].split("|"))
        e = {"kind": kind, "flags": flags}
        if alias:
            e["alias"] = alias
        if cond:
            e["condition"] = " && ".join(cond)
        if kind == "Bool":
            e["default"] = "yes" if ev(args[4]) else "no"
        elif kind in ("String", "SDS"):
            e["empty"] = args[3]
            d = c_string(args[5]) if args[5].startswith('"') or args[5] == "NULL" else None
            if args[5] == "SERVER_NAME":
                d = "valkey"
            if d is not None or args[5] == "NULL":
                e["default"] = d or ""
        elif kind == "Enum":
            table = enums[args[3]]
            e["values"] = [v for v, _ in table]
            dflt = args[5]
            names = [v for v, c in table if c.strip() == dflt]
            if not names:
                try:
                    want = ev(dflt)
                    names = [v for v, c in table if ev(c) == want]
                except ValueError:
                    names = []
            if names:
                e["default"] = names[0]
        elif kind in NUMERIC:
            e["min"], e["max"] = ev(args[3]), ev(args[4])
            try:
                e["default"] = ev(args[6])
            except ValueError:
                pass
            e["numeric_flags"] = sorted(f.strip() for f in args[7].split("|"))
        facts[name] = e
    return {
        "valkey_version": version,
        "ref": ref,
        "commit": commit,
        "source": "valkey-io/valkey src/config.c static_configs[] and configEnum tables, src/server.h #defines",
        "directives": dict(sorted(facts.items())),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", required=True, help="git directory of a valkey clone")
    ap.add_argument("--ref", required=True, help="tag or branch, e.g. 8.0.1")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    data = build(a.repo, a.ref)
    with open(a.out, "w") as f:
        json.dump(data, f, indent=1, sort_keys=False)
        f.write("\n")
    print(f"{a.out}: {len(data['directives'])} directives from {a.ref} ({data['commit'][:12]})", file=sys.stderr)


if __name__ == "__main__":
    main()
