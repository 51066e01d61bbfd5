"""Where the project is, and the environment ``manage.py`` subprocesses run with: the
test settings, this process's *test* database, and MESSAGING overrides."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.db import connection

#: The repository root (``manage.py`` is there).
ROOT = Path(__file__).resolve().parent.parent.parent


def database_url_for_subprocess() -> str:
    """A DATABASE_URL pointing at the *test* database this process uses."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or ""
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth}{s.get('HOST') or 'localhost'}{port}/{s['NAME']}"


def manage_env(**extra: str) -> dict[str, str]:
    """This process's environment for a ``manage.py`` subprocess: the test settings and
    the test database, plus ``extra``."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=database_url_for_subprocess(),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def settings_env(**messaging: Any) -> dict[str, str]:
    """Environment that merges ``messaging`` into the subprocess's MESSAGING setting
    (see tests/settings.py)."""
    return {"MESSAGING_TEST_SETTINGS": json.dumps(messaging)}


def env_with(*envs: dict[str, str] | None) -> dict[str, str]:
    """The environments merged, later ones winning (None counts as empty)."""
    merged: dict[str, str] = {}
    for env in envs:
        merged.update(env or {})
    return merged
