#!/usr/bin/env bash
# Installs what the tests need from Debian: valkey-server/valkey-tools 8.0 from
# bookworm-backports, openssh-server (ssh transport tests), sudo (become tests)
# and chromium (the HTML report is rendered in a headless browser).
#
# The backports suite is added by copying the machine's existing Debian source
# entry and changing only the suite name, so no registry host name lives in
# this repository.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need=()
command -v valkey-server >/dev/null 2>&1 || need+=(valkey-server valkey-tools)
command -v valkey-cli >/dev/null 2>&1 || need+=(valkey-tools)
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v sudo >/dev/null 2>&1 || need+=(sudo)
command -v git >/dev/null 2>&1 || need+=(git)
# The HTML audit report's test renders it in a real headless browser.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

backports_file=/etc/apt/sources.list.d/valkeyops-backports.sources
if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    # deb822: take the first stanza whose Suites names plain "bookworm".
    awk '
      BEGIN { RS=""; ORS="\n\n" }
      /(^|\n)Suites:[^\n]*(^|[ \t])bookworm([ \t]|\n|$)/ && !done {
        n = split($0, lines, "\n"); out = ""
        for (i = 1; i <= n; i++) {
          if (lines[i] ~ /^Suites:/) lines[i] = "Suites: bookworm-backports"
          out = out lines[i] "\n"
        }
        printf "%s", out; done = 1
      }' /etc/apt/sources.list.d/debian.sources | $SUDO tee "$backports_file" >/dev/null
  elif [ -f /etc/apt/sources.list ]; then
    # one-line format: the first "deb ... bookworm main" line, suite renamed.
    grep -E '^deb[[:space:]]+[^#]*[[:space:]]bookworm[[:space:]]' /etc/apt/sources.list | head -n 1 |
      sed -E 's/[[:space:]]bookworm[[:space:]]/ bookworm-backports /' |
      $SUDO tee /etc/apt/sources.list.d/valkeyops-backports.list >/dev/null
  fi
fi

# The packages' maintainer scripts would start valkey-server (port 6379) and
# sshd as services. The tests run their own servers, and stopping a service
# afterwards could hit a Valkey the user runs: so no service starts at all,
# for this install only (policy-rc.d exit 101 = "action forbidden", honoured by
# invoke-rc.d and deb-systemd-invoke). An existing policy is left as it is.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  trap '$SUDO rm -f "$policy"' EXIT
  printf '#!/bin/sh\n# valkeyops.secure install-system-deps.sh: no service starts during its install\nexit 101\n' |
    $SUDO tee "$policy" >/dev/null
  $SUDO chmod 0755 "$policy"
fi

export DEBIAN_FRONTEND=noninteractive
# The packages must not start services (we run our own servers, and never stop
# one by name: it might be the machine's own): Debian's policy-rc.d, for the
# install only, unless the machine already has one.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 0755 "$policy"
  trap '$SUDO rm -f "$policy"' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq -t bookworm-backports valkey-server valkey-tools >/dev/null
$SUDO apt-get install -y -qq openssh-server sudo git >/dev/null
command -v chromium >/dev/null 2>&1 || $SUDO apt-get install -y -qq chromium >/dev/null
