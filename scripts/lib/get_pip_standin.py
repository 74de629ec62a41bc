"""Offline stand-in for ansible-test's ``get-pip.py`` bootstrap script.

ansible-test creates its sanity/units virtual environments with
``python -m venv --without-pip`` and then downloads ``get-pip-X.Y.py`` from
ci-files.testing.ansible.com, a host this project's machines cannot reach
(only PyPI and Debian are). It looks for a cached copy first at
``~/.ansible/test/cache/get_pip_X_Y.py``; scripts/setup installs this file
there (under the HOME that scripts/test gives ansible-test).

Called like get-pip.py: ``python get_pip_X_Y.py [pip options] pip==X.Y``.
It bootstraps pip from the interpreter's own ``ensurepip`` (stdlib, offline),
then lets that pip install the exact version ansible-test asked for from
the configured index (PyPI).
"""

import subprocess
import sys

GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}


def main() -> int:
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], stdout=subprocess.DEVNULL)
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    return subprocess.call([sys.executable, "-m", "pip", "install", *args])


if __name__ == "__main__":
    sys.exit(main())
