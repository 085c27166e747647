#!/usr/bin/env python3
"""Checks an audit report (valkey_report, playbooks/audit.yml) in a real headless
chromium: the page renders without a console message (a CSP violation or a
script error would be one), the counts it shows are those of the JSON report
beside it, given cells show the given status, and no secret is in the HTML,
JSON, JUnit or SARIF files.

  scripts/check_report.py /tmp/valkeyops-audit/valkey-audit.html \\
      --cell 'host1/default VK-008 fail' --secret-env VALKEY_ADMIN_PASSWORD

Exit 0 when every check holds, 1 with one line per failed check. Stdlib only,
so molecule's verify and the integration tests both run it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

# The files a report is written as, beside the page.
SUFFIXES = (".html", ".json", ".junit.xml", ".sarif")


def chromium(page: Path, *args: str, binary: str | None = None) -> tuple[str, list[str]]:
    """Opens page in headless chromium: what it prints (the DOM with --dump-dom)
    and the page's console messages (errors, CSP violations)."""
    binary = binary or shutil.which("chromium")
    if not binary:
        raise RuntimeError("chromium is not installed (make system-deps)")
    proc = subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError("chromium failed: " + proc.stderr[-2000:])
    return proc.stdout, [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


class Page(HTMLParser):
    """What the rendered DOM shows: the summary counts, the matrix cells
    ((instance, rule) -> status), the elements, and the text of the drift table."""

    def __init__(self, dom: str):
        super().__init__()
        self.counts: dict[str, int] = {}
        self.cells: dict[tuple[str, str], str] = {}
        self.tags: set[str] = set()
        self.drift_text: list[str] = []
        # Rows of the topology section (instance -> role) and of the
        # across-nodes section ('KIND NAME' -> the nodes that differ).
        self.roles: dict[str, str] = {}
        self.differences: dict[str, list[str]] = {}
        self._count = None
        self._row = None
        self._in_drift = False
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if "data-count" in a:
            self._count = a["data-count"]
        if tag == "tr" and "data-instance" in a:
            self._row = a["data-instance"]
        if tag == "td" and "data-rule" in a and self._row:
            self.cells[(self._row, a["data-rule"])] = a["data-status"]
        if tag == "tr" and "data-drift" in a:
            self._in_drift = True
        if tag == "tr" and "data-topology" in a:
            self.roles[a["data-topology"]] = a.get("data-role", "")
        if tag == "tr" and "data-difference" in a:
            self.differences[a["data-difference"]] = (a.get("data-odd") or "").split()

    def handle_endtag(self, tag):
        if tag == "tr":
            self._in_drift = False

    def handle_data(self, data):
        if self._count:
            self.counts[self._count] = int(data)
            self._count = None
        if self._in_drift:
            self.drift_text.append(data)


def stem(page: Path) -> str:
    return str(page)[: -len(".html")] if str(page).endswith(".html") else str(page)


def check(page: Path, cells: list[tuple[str, str, str]], secrets: list[str],
          roles: list[str] = (), differences: list[tuple[str, str]] = (), only: list[tuple[str, str]] = ()) -> list[str]:
    """Every failed check, one sentence each (empty: the report is good)."""
    problems = []
    run = json.loads(Path(stem(page) + ".json").read_text())
    dom, console = chromium(page, "--dump-dom")
    problems += ["console: " + line for line in console]
    shown = Page(dom)
    if not shown.counts:
        problems.append("the page shows no counts")
    for key, value in shown.counts.items():
        if run["summary"].get(key) != value:
            problems.append("the page shows %s %d, the JSON report %r" % (key, value, run["summary"].get(key)))
    if "script" in shown.tags:
        problems.append("the page has a script element")
    for instance, rule, want in cells:
        got = shown.cells.get((instance, rule))
        if got != want:
            problems.append("cell %s %s is %s, expected %s" % (instance, rule, got, want))
    for want in roles:
        if want not in shown.roles.values():
            problems.append("topology: no instance is a %s (it shows %s)" % (want, sorted(set(shown.roles.values()))))
    for what, host in differences:
        odd = shown.differences.get(what, [])
        if not any(o.startswith(host + "/") for o in odd):
            problems.append("across nodes: %s does not name an instance of %s as differing (it names %s)" % (what, host, odd))
    for rule, host in only:
        problems += only_fails(run, shown, rule, host)
    for suffix in SUFFIXES:
        path = Path(stem(page) + suffix)
        if not path.exists():
            continue
        text = path.read_text()
        for i, secret in enumerate(secrets):
            if secret and secret in text:
                problems.append("secret #%d is in %s" % (i + 1, path))
    return problems


def only_fails(run: dict, shown: Page, rule: str, host: str) -> list[str]:
    """rule fails on an instance of host and on no other instance, in the page
    and in the JSON; every other member of that instance's group passes it."""
    failing = sorted(inst for (inst, r), st in shown.cells.items() if r == rule and st == "fail")
    if len(failing) != 1 or not failing[0].startswith(host + "/"):
        return ["%s fails on %s, expected one instance of %s" % (rule, failing or "no instance", host)]
    in_json = sorted("%s/%s" % (i["host"], i["instance"]) for i in run["instances"]
                     if any(f["id"] == rule for f in (i.get("report") or {}).get("findings", [])))
    problems = [] if in_json == failing else ["the JSON has %s failing on %s, the page on %s" % (rule, in_json, failing)]
    for group in run.get("groups", []):
        if failing[0] in group["members"]:
            for member in group["members"]:
                if member != failing[0] and shown.cells.get((member, rule)) != "pass":
                    problems.append("%s is %s on %s, expected pass" % (rule, shown.cells.get((member, rule)), member))
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("page", type=Path, help="the report's HTML page (the JSON report beside it)")
    ap.add_argument("--cell", action="append", default=[], help="'INSTANCE RULE STATUS' (status: pass, fail, accepted, not-applicable, unknown)")
    ap.add_argument("--secret-env", action="append", default=[], help="an environment variable holding a secret that must not appear")
    ap.add_argument("--role", action="append", default=[], help="ROLE: the topology section shows an instance with it (primary, replica, sentinel)")
    ap.add_argument("--differs", action="append", default=[],
                    help="'KIND NAME HOST': the across-nodes section names an instance of HOST as differing on it (kind: directive, user, ca)")
    ap.add_argument("--fails-only-on", action="append", default=[],
                    help="'RULE HOST': RULE fails on one instance, of HOST, and passes on the other members of its group (VK-090)")
    args = ap.parse_args(argv)

    def words(option: str, values: list[str], expected: str) -> list[tuple[str, ...]]:
        out = []
        for v in values:
            parts = tuple(v.split())
            if len(parts) != len(expected.split()):
                ap.error("%s %r: expected %s" % (option, v, expected))
            out.append(parts)
        return out

    cells = words("--cell", args.cell, "INSTANCE RULE STATUS")
    differences = [(k + " " + n, h) for k, n, h in words("--differs", args.differs, "KIND NAME HOST")]
    only = words("--fails-only-on", args.fails_only_on, "RULE HOST")
    secrets = [os.environ.get(name, "") for name in args.secret_env]
    problems = check(args.page, cells, secrets, args.role, differences, only)
    for p in problems:
        print(p)
    if not problems:
        print("%s: renders without a console message; counts, cells, topology, differences and secrets checked" % args.page)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
