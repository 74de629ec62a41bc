"""The type check's scope (antsibull-nox.toml's sessions.lint.code_files) is what the project says it is.

mypy runs over plugins/plugin_utils and the pure parts of plugins/module_utils: a module_utils file in
the list must stay free of I/O (else it belongs with the host programs), and the ones named as pure
must stay in the list. scripts/test's lint stage must run the session.
"""

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Imports that mean a module does I/O on its host (files, processes, sockets, signals).
IO_MODULES = {"os", "subprocess", "socket", "fcntl", "shutil", "selectors", "signal", "tempfile", "io", "pathlib"}
MUST_BE_CHECKED = [
    "plugins/plugin_utils",
    "plugins/module_utils/kinds.py",
    "plugins/module_utils/node/podspec.py",
    "plugins/module_utils/node/units.py",
    "plugins/module_utils/node/quantity.py",
    "plugins/module_utils/job/tracking.py",
    "plugins/module_utils/job/cron_inputs.py",
]


def _code_files():
    with open(ROOT / "antsibull-nox.toml", "rb") as handle:
        config = tomllib.load(handle)
    lint = config["sessions"]["lint"]
    assert lint["run_mypy"] is True
    assert lint["mypy_config"] == "mypy.ini"
    return lint["code_files"]


def _imported_modules(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("path", MUST_BE_CHECKED)
def test_named_code_is_type_checked(path):
    assert path in _code_files()


def test_every_listed_path_exists():
    missing = [path for path in _code_files() if not (ROOT / path).exists()]
    assert not missing


def test_listed_module_utils_do_no_io():
    impure = {}
    for entry in _code_files():
        if not entry.startswith("plugins/module_utils/"):
            continue
        io = sorted(set(_imported_modules(ROOT / entry)) & IO_MODULES)
        if io:
            impure[entry] = io
    assert not impure, f"module_utils files in the type check's scope import I/O modules: {impure}"


def test_lint_stage_runs_the_type_check():
    script = (ROOT / "scripts" / "test").read_text()
    stage = script[script.index("stage_lint() {") :]
    stage = stage[: stage.index("\n}\n")]
    assert "nox_session typing" in stage
