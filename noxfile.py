# /// script
# dependencies = ["nox>=2025.02.09", "antsibull-nox"]
# ///
"""nox sessions of hostfleet.workloads: the lint, sanity and build stages of scripts/test.

antsibull-nox.toml configures antsibull-nox's sessions (`typing`: mypy, `ansible-lint`,
`build-import-check`, `antsibull-nox-config`); this file adds the ones antsibull-nox has no
setting for here: `ruff` over the whole repository, `changelog`, `shellcheck`, ansible-test sanity
run locally (no container engine on this project's machines) with exactly the ansible-core and
Python of the two venvs scripts/setup makes, and `docs-*`, which install the built tarball and
render every module's and role's documentation with ansible-doc.

Venvs live in ${HOSTFLEET_CACHE:-/var/cache/hostfleet}/nox and are reused; `scripts/test` adds
`--no-install` while the pinned requirement files are unchanged, so a second run installs nothing
(and needs no network). By hand: `/var/cache/hostfleet/venv-nox/bin/nox -l`.
"""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from pathlib import Path

import nox

try:
    import antsibull_nox
    from antsibull_nox.sessions import prepare_collections
except ImportError:
    print("You need to install antsibull-nox in the same Python environment as nox (scripts/setup makes venv-nox).")
    sys.exit(1)

ROOT = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("HOSTFLEET_CACHE", "/var/cache/hostfleet"))
# ansible-test keeps its sanity venvs in ~/.ansible/test/venv: a HOME in the cache keeps them across
# runs (first run per version about a minute of pip installs, later runs seconds); scripts/setup puts
# the get-pip stand-in there (ansible-test would download get-pip.py from a host not reachable here).
ANSIBLE_TEST_HOME = CACHE / "ansible-test-home"

nox.options.envdir = str(CACHE / "nox")
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True

antsibull_nox.load_antsibull_nox_toml()

# ansible-core version -> (requirements file of scripts/setup's venv, Python version, override variable)
CORES = {
    "2.19": ("requirements/venv-2.19.txt", "3.11", "HOSTFLEET_PYTHON_2_19"),
    "2.21": ("requirements/venv-2.21.txt", "3.13", "HOSTFLEET_PYTHON_2_21"),
}
LINT_CONSTRAINTS = "requirements/venv-2.21.txt"


def _python(core: str) -> str:
    """The interpreter scripts/setup chose for that core's venv (its pyvenv.cfg), else X.Y from PATH."""
    version, variable = CORES[core][1:]
    if os.environ.get(variable):
        return os.environ[variable]
    cfg = CACHE / f"venv-{core}" / "pyvenv.cfg"
    if cfg.is_file():
        parser = configparser.ConfigParser()
        parser.read_string("[venv]\n" + cfg.read_text())
        executable = parser.get("venv", "executable", fallback="")
        if executable and os.access(executable, os.X_OK):
            return executable
    return version


def _install_only(session: nox.Session) -> bool:
    """nox --install-only (scripts/test installs a session's venv so first): session.run runs nothing."""
    return session.run("true", external=True, silent=True) is None


def _pinned(session: nox.Session, *packages: str, core: str = "2.21") -> None:
    """pip install PACKAGES at the versions of scripts/setup's venv for CORE (its pip freeze as constraints)."""
    session.install("-c", CORES[core][0], *packages)


# ---------------------------------------------------------------- lint


@nox.session(python=_python("2.21"), default=False)
def ruff(session: nox.Session) -> None:
    """ruff check of the whole repository (ruff.toml)."""
    _pinned(session, "ruff")
    session.run("ruff", "--version")
    session.run("ruff", "check", "--no-fix", ".")


@nox.session(python=_python("2.21"), default=False)
def changelog(session: nox.Session) -> None:
    """antsibull-changelog lint of the fragments and of changelogs/changelog.yaml."""
    _pinned(session, "antsibull-changelog")
    session.run("antsibull-changelog", "lint")
    session.run("antsibull-changelog", "lint-changelog-yaml", "changelogs/changelog.yaml")
    fragments = [p for p in (ROOT / "changelogs" / "fragments").iterdir() if p.suffix in (".yml", ".yaml")]
    session.log(f"changelog fragments OK: {len(fragments)} fragment(s)")


@nox.session(python=False, default=False)
def shellcheck(session: nox.Session) -> None:
    """shellcheck of the bash scripts in scripts/, scripts/lib/ and .ci/run (Debian's shellcheck)."""
    files = [".ci/run"]
    for path in sorted([*ROOT.glob("scripts/*"), *ROOT.glob("scripts/lib/*.sh")]):
        if not path.is_file():
            continue
        with path.open("rb") as handle:
            first_line = handle.readline()
        # bash scripts only (scripts/lib also holds a Python file)
        if path.suffix == ".sh" or b"bash" in first_line:
            files.append(str(path.relative_to(ROOT)))
    session.run("shellcheck", "--version", external=True)
    session.run("shellcheck", "-x", *files, external=True)
    session.log(f"shellcheck OK: {' '.join(files)}")


# ---------------------------------------------------------------- sanity


def _sanity(session: nox.Session, core: str) -> None:
    _pinned(session, "ansible-core", core=core)
    if _install_only(session):
        return
    collections = prepare_collections(session, install_in_site_packages=False, install_out_of_tree=True)
    if collections is None:
        session.error("no collection tree for ansible-test (nox --no-venv?)")
    python = ".".join(session.run("python", "-c", "import sys; print(*sys.version_info[:2])", silent=True).split())
    env = {"HOME": str(ANSIBLE_TEST_HOME)}
    # The user's pip config (index, certificates) stays in effect under the other HOME.
    for pip_conf in (os.environ.get("PIP_CONFIG_FILE"), Path.home() / ".config/pip/pip.conf", Path.home() / ".pip/pip.conf"):
        if pip_conf and Path(pip_conf).is_file():
            env["PIP_CONFIG_FILE"] = str(pip_conf)
            break
    ANSIBLE_TEST_HOME.mkdir(parents=True, exist_ok=True)
    with session.chdir(collections.current_path):
        # Local run: no --docker (no container engine here), no --venv (this venv has the right
        # ansible-core). Every sanity test runs; pslint and shellcheck skip only when they have no files.
        session.run("ansible-test", "sanity", "--python", python, "--color", "yes" if sys.stdout.isatty() else "no", *session.posargs, env=env)


@nox.session(name="sanity-2.19", python=_python("2.19"), default=False)
def sanity_219(session: nox.Session) -> None:
    """ansible-test sanity of ansible-core 2.19 on Python 3.11, locally."""
    _sanity(session, "2.19")


@nox.session(name="sanity-2.21", python=_python("2.21"), default=False)
def sanity_221(session: nox.Session) -> None:
    """ansible-test sanity of ansible-core 2.21 on Python 3.13, locally."""
    _sanity(session, "2.21")


@nox.session(python=False, default=False, requires=["sanity-2.19", "sanity-2.21"])
def sanity(session: nox.Session) -> None:
    """Meta session: ansible-test sanity on both ansible-core versions."""


# ---------------------------------------------------------------- build

# What galaxy.yml's build_ignore must keep out of the tarball.
NOT_IN_TARBALL = re.compile(
    r"(^|/)(tests/lab|tests/integration|scripts|benchmarks|\.ci|\.nox|__pycache__|\.pytest_cache|\.hypothesis|\.ruff_cache"
    r"|noxfile\.py|antsibull-nox\.toml|mypy\.ini|\.mypy_cache)(/|$)"
)
# ansible-core 2.21.5's ansible-doc -t role warns about its own internal collection for every role
# (ansible/ansible#85689, fixed by PR #86815): that line only is not ours.
PROTOMATTER_WARNING = "_internal/ansible_collections/ansible/_protomatter"


def _tarball(session: nox.Session) -> Path:
    """The tarball build-import-check made (in its session's tmp dir), checked against build_ignore."""
    build_dir = Path(session.virtualenv.location).parent / "build-import-check" / "tmp" / "collection"
    tarballs = sorted(build_dir.glob("hostfleet-workloads-*.tar.gz"))
    if len(tarballs) != 1:
        session.error(f"expected one tarball in {build_dir}, found {len(tarballs)}: run the build-import-check session first")
    tarball = tarballs[0]
    names = subprocess.run(["tar", "-tzf", str(tarball)], check=True, capture_output=True, text=True).stdout.splitlines()
    leaked = [name for name in names if NOT_IN_TARBALL.search(name)]
    if leaked:
        session.error(f"{tarball.name} contains paths that galaxy.yml's build_ignore should drop: {', '.join(leaked[:20])}")
    session.log(f"{tarball.name}: {tarball.stat().st_size // 1024} KiB, {len(names)} entries, nothing build_ignore should drop")
    return tarball


def _docs(session: nox.Session, core: str) -> None:
    _pinned(session, "ansible-core", core=core)
    if _install_only(session):
        return
    tarball = _tarball(session)
    tmp = Path(session.create_tmp())
    collections, empty = tmp / "installed", tmp / "empty"
    for path in (collections, empty):
        subprocess.run(["rm", "-rf", str(path)], check=True)
        path.mkdir(parents=True)
    # Only the installed copy is visible (not ~/.ansible/collections, nor this work tree).
    env = {"ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_NOCOLOR": "1"}
    bin_dir = Path(session.bin)
    doc_env = {key: value for key, value in os.environ.items() if key != "ANSIBLE_COLLECTIONS_PATHS"}
    doc_env.update(env, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", VIRTUAL_ENV=str(bin_dir.parent))
    with session.chdir(empty):  # no ansible_collections/ next to the cwd
        session.run("ansible-galaxy", "collection", "install", "--offline", "--force", "-p", str(collections), str(tarball), env=env)
        modules = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.name != "__init__.py")
        roles = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir()) if (ROOT / "roles").is_dir() else []
        bad = []
        for plugin_type, names, header in (("module", modules, "> MODULE "), ("role", roles, "")):
            if not names:
                continue
            # One ansible-doc per type (its start-up is most of the time): each plugin's text must be
            # there, and nothing may be warned about or refused.
            fqcns = [f"hostfleet.workloads.{name}" for name in names]
            done = subprocess.run([str(bin_dir / "ansible-doc"), "-t", plugin_type, *fqcns], capture_output=True, text=True, env=doc_env, check=False)
            problems = [line for line in done.stderr.splitlines() if re.search(r"\[(WARNING|ERROR)\]", line) and PROTOMATTER_WARNING not in line]
            for fqcn in fqcns:
                rendered = f"{header}{fqcn} " in done.stdout if header else fqcn in done.stdout
                status = "ok     " if rendered and done.returncode == 0 and not problems else "FAILED "
                print(f"{status} {plugin_type} {fqcn}")
                if status.startswith("FAILED"):
                    bad.append(fqcn)
            if done.returncode or problems:
                print(f"ansible-doc -t {plugin_type} exited {done.returncode}:\n" + "\n".join(problems or done.stderr.splitlines()[-40:]))
        total = len(modules) + len(roles)
        if not total:
            session.log("no modules in plugins/modules and no roles yet: nothing to render")
        session.log(f"ansible-doc (core {core}): {total - len(bad)} of {total} rendered")
        if bad:
            session.error(f"ansible-doc failed for {', '.join(bad)}")


@nox.session(name="docs-2.19", python=_python("2.19"), default=False)
def docs_219(session: nox.Session) -> None:
    """Install build-import-check's tarball, ansible-doc of every module and role with ansible-core 2.19."""
    _docs(session, "2.19")


@nox.session(name="docs-2.21", python=_python("2.21"), default=False)
def docs_221(session: nox.Session) -> None:
    """Install build-import-check's tarball, ansible-doc of every module and role with ansible-core 2.21."""
    _docs(session, "2.21")


@nox.session(python=False, default=False, requires=["build-import-check", "docs-2.19", "docs-2.21"])
def build(session: nox.Session) -> None:
    """Meta session: build the collection, then render its docs from the installed tarball on both cores."""


# Allow running the noxfile with `python noxfile.py`, `pipx run noxfile.py`, or similar.
if __name__ == "__main__":
    nox.main()
