#!/bin/sh
# valkeyops.secure (role valkey_server, tasks upgrade_package.yml): while a Valkey
# package installs, /usr/sbin/policy-rc.d refuses every service action (exit 101:
# "action forbidden by policy"; invoke-rc.d and deb-systemd-invoke ask it), so the
# package's postinst restarts nothing: the rolling restart restarts each node itself,
# after its gates. An administrator's own policy-rc.d is kept (renamed aside, never
# overwritten) and put back afterwards; a run killed half-way is finished by the next.
#
#   policy-rc.d-guard.sh on  [ROOT]   install ours (ROOT: / on a host, a directory in tests)
#   policy-rc.d-guard.sh off [ROOT]   remove ours, put the saved one back
#
# Prints "changed" when it changed something; one sentence on stderr and exit 1 when
# it refuses, with nothing changed.
set -eu
action=${1:-}
root=${2:-/}
dir="${root%/}/usr/sbin"
cur="$dir/policy-rc.d"
saved="$dir/policy-rc.d.valkeyops-saved"
mark="# valkeyops.secure: refuse service actions while a Valkey package installs"

exists() { [ -e "$1" ] || [ -L "$1" ]; }
# Ours: a regular file (not a link: it could point anywhere) carrying our mark.
ours() { [ -f "$cur" ] && [ ! -L "$cur" ] && grep -qxF "$mark" "$cur"; }

case $action in
on)
  if exists "$cur" && ! ours; then
    if exists "$saved"; then
      echo "policy-rc.d guard: both $cur and $saved exist and neither is ours; nothing was changed" >&2
      exit 1
    fi
    mv -T -- "$cur" "$saved" # a rename: the file, its mode and owner (or a link) untouched
  fi
  if ! ours; then
    tmp=$(mktemp "$dir/.policy-rc.d.XXXXXX")
    printf '#!/bin/sh\n%s\nexit 101\n' "$mark" >"$tmp"
    chmod 0755 "$tmp"
    mv -fT -- "$tmp" "$cur"
    echo changed
  fi
  ;;
off)
  changed=
  if ours; then
    rm -f -- "$cur"
    changed=1
  fi
  if exists "$saved"; then
    if exists "$cur"; then
      echo "policy-rc.d guard: $cur was replaced by someone else during the upgrade; kept it, and the saved one as $saved" >&2
      exit 1
    fi
    mv -T -- "$saved" "$cur"
    changed=1
  fi
  if [ -n "$changed" ]; then echo changed; fi
  ;;
*)
  echo "policy-rc.d guard: the action must be on or off, not '$action'; nothing was changed" >&2
  exit 1
  ;;
esac
