"""The packaging checks themselves: ``scripts/wheel_contents.py`` (run by
``scripts/wheel-smoke`` on the real wheel) accepts a wheel of exactly ``messaging/`` and
its metadata at ``messaging.__version__``, and names what is extra, missing or wrong;
``pyproject.toml`` reads the version from ``messaging.__version__``."""

from __future__ import annotations

import importlib.util
import tomllib
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

import messaging

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "wheel_contents", ROOT / "scripts" / "wheel_contents.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_wheel(
    path: Path, files: set[str], version: str = messaging.__version__, extra: tuple = ()
) -> Path:
    wheel = path / f"django_messaging_rabbitmq-{version}-py3-none-any.whl"
    info = f"django_messaging_rabbitmq-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name in sorted(files) + list(extra):
            archive.writestr(name, "")
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.4\nVersion: {version}\n")
    return wheel


def test_the_version_has_one_source():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["dynamic"]["version"] == {"attr": "messaging.__version__"}
    assert checker().source_version() == messaging.__version__


def test_a_wheel_of_exactly_the_package_passes(tmp_path):
    module = checker()
    files = module.checkout_files()
    assert "messaging/py.typed" in files and "messaging/migrations/0001_initial.py" in files
    assert module.problems(make_wheel(tmp_path, files)) == []


def test_extra_missing_and_wrong_version_are_named(tmp_path):
    module = checker()
    files = module.checkout_files() - {"messaging/py.typed"}
    wheel = make_wheel(tmp_path, files, version="9.9.9", extra=("tests/conftest.py",))
    found = " ".join(module.problems(wheel))
    assert "tests/conftest.py" in found
    assert "messaging/py.typed" in found
    assert "version 9.9.9" in found
