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


def check(page: Path, cells: list[tuple[str, str, str]], secrets: list[str]) -> list[str]:
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
    for suffix in SUFFIXES:
        path = Path(stem(page) + suffix)
        if not path.exists():
            continue
        text = path.read_text()
        for i, secret in enumerate(secrets):
            if secret and secret in text:
                problems.append("secret #%d is in %s" % (i + 1, path))
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("page", type=Path, help="the report's HTML page (the JSON report beside it)")
    ap.add_argument("--cell", action="append", default=[], help="'INSTANCE RULE STATUS' (status: pass, fail, accepted, not-applicable, unknown)")
    ap.add_argument("--secret-env", action="append", default=[], help="an environment variable holding a secret that must not appear")
    args = ap.parse_args(argv)
    cells = []
    for c in args.cell:
        parts = c.split()
        if len(parts) != 3:
            ap.error("--cell %r: expected INSTANCE RULE STATUS" % c)
        cells.append(tuple(parts))
    secrets = [os.environ.get(name, "") for name in args.secret_env]
    problems = check(args.page, cells, secrets)
    for p in problems:
        print(p)
    if not problems:
        print("%s: renders without a console message; counts, cells and secrets checked" % args.page)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
