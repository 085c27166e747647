#!/usr/bin/env python3
"""Let `ansible-test sanity --venv` bootstrap pip without its download host.

ansible-test creates each test venv `--without-pip`, then runs a "get-pip"
script it downloads from ci-files.testing.ansible.com (not reachable from this
machine) and caches as ~/.ansible/test/cache/get_pip_<version>.py. A cached
file is used as is, so this places a stand-in there that does the same job
from the package index: Python's own ensurepip (no network), then
`pip install pip==<version> ...` with the arguments ansible-test passed.

Run it with the Python of the venv whose ansible-test will run: it reads the
pip version that ansible-test pins from ansible-test's own source. A file
already in the cache is kept unless it is an older version of this stand-in.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

MARKER = "Stand-in for get-pip.py, written by valkeyops.secure"
STAND_IN = '''\
"""Stand-in for get-pip.py, written by valkeyops.secure scripts/ansible_test_pip_bootstrap.py.

Installs pip with ensurepip, then the requested pip (and friends) from the package index.
"""
import subprocess
import sys

GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")  # get-pip options pip does not know
args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
# In a child process: ensurepip sets PIP_CONFIG_FILE=/dev/null in its own environment,
# which would hide the machine's pip.conf (index, certificates) from the install below.
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
unwanted = [name for name, flag in (("setuptools", "--no-setuptools"), ("wheel", "--no-wheel")) if flag in sys.argv[1:]]
if unwanted:
    subprocess.check_call([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet"] + unwanted)
'''


def pinned_pip_version():
    """The pip version ansible-test (of this interpreter's ansible-core) bootstraps into its venvs."""
    import ansible_test

    source = os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")
    with open(source, encoding="utf-8") as f:
        text = f.read()
    match = re.search(r"default_packages\s*=\s*dict\(\s*pip='([0-9.]+)'", text)
    if not match:
        sys.exit("%s: cannot find the pinned pip version (default_packages) in %s" % (sys.argv[0], source))
    return match.group(1)


def main():
    version = pinned_pip_version()
    cache_path = os.path.expanduser("~/.ansible/test/cache/get_pip_%s.py" % version.replace(".", "_"))
    if os.path.exists(cache_path):
        with open(cache_path, encoding="utf-8", errors="replace") as f:
            current = f.read()
        if current == STAND_IN or MARKER not in current:
            print("pip %s bootstrap for ansible-test: %s (kept)" % (version, cache_path))
            return
    os.makedirs(os.path.dirname(cache_path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(cache_path), prefix=".get_pip_")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(STAND_IN)
    os.chmod(tmp, 0o644)
    os.replace(tmp, cache_path)
    print("pip %s bootstrap for ansible-test: %s (stand-in written)" % (version, cache_path))


if __name__ == "__main__":
    main()
