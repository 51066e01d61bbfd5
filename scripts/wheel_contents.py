#!/usr/bin/env python3
"""What a wheel of the app must hold (``scripts/wheel-smoke`` runs this): every file of
``messaging/`` in the checkout — its modules, migrations, templates, static files and
``py.typed`` — and nothing else (no tests/, bench/, project/, no stale build output), and
the version of ``messaging/__init__.py``. Exit 1 with the problem on the last line.

    python scripts/wheel_contents.py dist/django_messaging_rabbitmq-*.whl
"""

from __future__ import annotations

import ast
import email
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "messaging"
#: Files a wheel that works at all cannot lack (a smaller package_data would drop them).
REQUIRED = (
    "messaging/py.typed",
    "messaging/migrations/0001_initial.py",
    "messaging/static/messaging/admin.css",
    "messaging/templates/admin/messaging/overview.html",
)


def source_version() -> str:
    tree = ast.parse((ROOT / PACKAGE / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(getattr(t, "id", None) == "__version__" for t in targets):
                return ast.literal_eval(node.value)  # type: ignore[arg-type]
    raise SystemExit("no __version__ in messaging/__init__.py")


def checkout_files() -> set[str]:
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / PACKAGE).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def problems(wheel: Path) -> list[str]:
    names = set(zipfile.ZipFile(wheel).namelist())
    found: list[str] = []
    dist_info = {n for n in names if n.split("/")[0].endswith(".dist-info")}
    package = {n for n in names if n.startswith(PACKAGE + "/")}
    others = sorted(names - dist_info - package)
    if others:
        found.append(f"files outside messaging/: {', '.join(others[:5])}")
    expected = checkout_files()
    extra = sorted(package - expected)
    missing = sorted(expected - package)
    if extra:
        found.append(f"{len(extra)} file(s) not in the checkout's messaging/: {extra[:5]}")
    if missing:
        found.append(f"{len(missing)} file(s) of messaging/ missing: {missing[:5]}")
    absent = [n for n in REQUIRED if n not in names]
    if absent:
        found.append(f"required files missing: {absent}")
    metadata = next((n for n in dist_info if n.endswith("/METADATA")), None)
    if metadata is None:
        found.append("no METADATA")
    else:
        text = zipfile.ZipFile(wheel).read(metadata).decode()
        version = email.message_from_string(text)["Version"]
        if version != source_version():
            found.append(f"version {version}, not messaging.__version__ {source_version()}")
    return found


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    wheel = Path(sys.argv[1])
    found = problems(wheel)
    for problem in found:
        print(problem)
    if found:
        raise SystemExit(f"{wheel.name}: {'; '.join(found)}")
    count = len(checkout_files())
    print(f"{wheel.name}: the {count} files of messaging/ and its metadata, nothing else")


if __name__ == "__main__":
    main()
