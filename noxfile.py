"""The Django × Python matrix (``make matrix``; ``nox -l`` lists the sessions).

Each cell (``django5.2-py3.11`` …) installs the app with its ``dev`` extra and that Django
from the registry into its own virtualenv (``.nox/``), then runs the unit tier
(``pytest -m unit``) and a short integration smoke against the real broker on SQLite
(:data:`SMOKE`). ``full``: the whole suite on Django 6.1 / Python 3.12 on PostgreSQL.

The interpreters are the machine's: ``python3.X`` on ``PATH`` if it runs, else pyenv's
newest ``3.X.*`` (under ``PYENV_ROOT``, ``pyenv root`` or ``~/.pyenv``). A missing one
fails its cell with one line; nothing is downloaded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.download_python = "never"
nox.options.error_on_missing_interpreters = True
nox.options.reuse_venv = "yes"
nox.options.sessions = []  # filled below: every matrix cell, not `full`

#: Django series → the Pythons it is tested on (Django 6 needs Python >= 3.12).
MATRIX: dict[str, tuple[str, ...]] = {
    "5.2": ("3.11", "3.12"),
    "6.0": ("3.12", "3.13"),
    "6.1": ("3.12", "3.13"),
}
#: A few real-broker tests: send, consume, receipt, failure, dead letter, the tutorial's
#: sender, the inbox (seconds, not minutes).
SMOKE = [
    "tests/consumer/test_consumer.py",
    "-k",
    "consumes_and_writes_receipt or handler_exception_leaves_receipt"
    " or reject_moves_to_dead_letter or tutorial_sender_to_runconsumer"
    " or same_message_id_published_twice",
]

#: Series → pytest arguments that leave out what does not run there yet, and why (printed
#: by the cell). Empty: every series runs everything.
LEFT_OUT: dict[str, tuple[list[str], str]] = {}


def runs(python: str, minor: str) -> bool:
    """Is ``python`` an interpreter of Python ``minor`` that starts (not a pyenv shim of
    a version that is not selected)?"""
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError:
        return False
    return out.returncode == 0 and out.stdout.strip() == minor


def pyenv_root() -> Path | None:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    if shutil.which("pyenv"):
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    default = Path.home() / ".pyenv"  # pyenv's own default root, when it is not on PATH
    return default if default.is_dir() else None


def find_python(minor: str) -> str | None:
    """The path of a working Python ``minor`` (``"3.12"``) on this machine, or None."""
    on_path = shutil.which(f"python{minor}")
    if on_path and runs(on_path, minor):
        return on_path
    root = pyenv_root()
    if root is None:
        return None
    pattern = re.compile(rf"^{re.escape(minor)}\.(\d+)$")
    found = sorted(
        (int(m.group(1)), path)
        for path in (root / "versions").glob(f"{minor}.*")
        if (m := pattern.match(path.name))
    )
    for _patch, path in reversed(found):
        candidate = path / "bin" / f"python{minor}"
        if runs(str(candidate), minor):
            return str(candidate)
    return None


def django_spec(series: str) -> str:
    major, minor = (int(n) for n in series.split("."))
    return f"django>={series},<{major}.{minor + 1}"


def install(session: nox.Session, series: str) -> None:
    session.install("-e", ".[dev]", django_spec(series))
    version = session.run("python", "-c", "import django; print(django.__version__)", silent=True)
    if not str(version).startswith(series):
        session.error(f"installed Django {str(version).strip()}, not {series}")


def missing(minor: str):  # noqa: ANN201 - a nox session function
    def session_function(session: nox.Session) -> None:
        session.error(
            f"no Python {minor} here (python{minor} on PATH, or pyenv's {minor}.*): "
            "install it, e.g. pyenv install " + minor
        )

    return session_function


def cell(series: str):  # noqa: ANN201 - a nox session function
    def session_function(session: nox.Session) -> None:
        install(session, series)
        left_out, why = LEFT_OUT.get(series, ([], ""))
        if why:
            session.warn(why)
        env = {"MESSAGING_TEST_DB": "sqlite"}
        session.run(
            "pytest",
            "-m",
            "unit",
            "-q",
            "-p",
            "no:cacheprovider",
            *left_out,
            *session.posargs,
            env={**env, "DATABASE_URL": "sqlite://:memory:"},
        )
        session.run("pytest", "-q", "-p", "no:cacheprovider", *SMOKE, env=env)

    return session_function


for _series, _pythons in MATRIX.items():
    for _minor in _pythons:
        _name = f"django{_series}-py{_minor}"
        _python = find_python(_minor)
        if _python is None:
            nox.session(name=_name, python=False)(missing(_minor))
        else:
            nox.session(name=_name, python=_python)(cell(_series))
        nox.options.sessions.append(_name)


_full_python = find_python("3.12")


@nox.session(python=_full_python or False)
def full(session: nox.Session) -> None:
    """The whole suite on Django 6.1 / Python 3.12 on PostgreSQL (as ``make test-postgres``;
    with arguments, ``pytest ARGS`` alone)."""
    if _full_python is None:
        session.error("no Python 3.12 here (python3.12 on PATH, or pyenv's 3.12.*)")
    install(session, "6.1")
    env = {"MESSAGING_TEST_DB": "postgres"}
    if session.posargs:
        session.run("pytest", *session.posargs, env=env)
        return
    # As `make test`: xdist workers, then the tests that stop the broker alone.
    workers = os.environ.get("TEST_WORKERS", "4")
    session.run("pytest", "-n", workers, "--dist", "loadgroup", "-m", "not broker_control", env=env)
    session.run("pytest", "-m", "broker_control", env=env)
