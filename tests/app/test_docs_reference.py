"""The documentation's reference pages (``docs/reference/``) say what the code does: the
settings table lists exactly ``messaging.conf``'s keys with their defaults, the commands
page's option tables are what the commands' parsers say (``scripts/docs_reference.py``),
and the checks, metrics and signals pages name every one the code has."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from django.dispatch import Signal

from messaging import conf, signals

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference"


def page(name: str) -> str:
    return (REFERENCE / name).read_text()


def settings_rows() -> dict[str, str]:
    """Key → its default cell, from the settings page's table (a row may give two:
    ``| `A` / `B` | `1` / `2` |``)."""
    rows: dict[str, str] = {}
    for line in page("settings.md").splitlines():
        match = re.match(r"^\| (`[A-Z_]+`(?: / `[A-Z_]+`)*) \| ([^|]*) \|", line)
        if not match:
            continue
        keys = [k.strip("`") for k in match.group(1).split(" / ")]
        defaults = [d.strip() for d in match.group(2).split(" / ")]
        assert len(keys) == len(defaults), line
        for key, default in zip(keys, defaults, strict=True):
            assert key not in rows, f"{key} twice"
            rows[key] = default
    return rows


def shown(value: object) -> set[str]:
    """The ways the table may write a default."""
    if isinstance(value, str):
        return {f"`{value}`", f'`"{value}"`'}
    if isinstance(value, float) and value.is_integer():
        return {f"`{value}`", f"`{int(value)}`"}
    return {f"`{value!r}`"}


def test_the_settings_table_lists_exactly_the_settings():
    assert set(settings_rows()) == set(conf.DEFAULTS)


def test_the_settings_table_gives_each_default():
    rows = settings_rows()
    wrong = {
        key: (rows[key], conf.DEFAULTS[key])
        for key in conf.DEFAULTS
        if key in rows and rows[key] not in shown(conf.DEFAULTS[key])
    }
    assert wrong == {}


def test_the_commands_options_are_the_parsers():
    spec = importlib.util.spec_from_file_location(
        "docs_reference", ROOT / "scripts" / "docs_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = page("commands.md")
    assert module.current_block(text) == module.generate(), (
        "docs/reference/commands.md is stale: python scripts/docs_reference.py --write"
    )
    for name in module.command_names():
        assert f"### `{name}`" in text


def ids_in(text: str) -> set[str]:
    return set(re.findall(r"messaging\.[EW]\d{3}", text))


def test_the_checks_page_names_every_check():
    in_code = set()
    for path in (ROOT / "messaging").rglob("*.py"):
        in_code |= ids_in(path.read_text())
    assert in_code
    assert ids_in(page("checks.md")) == in_code


def test_the_metrics_page_names_every_metric():
    source = (ROOT / "messaging" / "observability" / "metrics.py").read_text()
    names = set(re.findall(r'"(messaging_[a-z_]+)"', source))
    assert names
    assert {n for n in names if n not in page("metrics.md")} == set()


def test_the_signals_page_names_every_signal():
    names = {n for n, v in vars(signals).items() if isinstance(v, Signal)}
    assert names
    assert {n for n in names if f"`{n}`" not in page("signals.md")} == set()
