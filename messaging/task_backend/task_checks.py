"""The backend's system checks: ``messaging.E040`` a misconfigured backend (OPTIONS,
QUEUES, the queue names the prefix makes; the backend's ``check()``, run by Django's
task checks), ``messaging.W041`` a task queue whose ``Queue`` row is declared otherwise
(queue type, ``x-max-priority``) than the backend declares its queues (a database check
in :mod:`.queue_checks`, registered by :mod:`messaging.checks`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core import checks


def backend_checks(backend: Any) -> Iterator[checks.CheckMessage]:
    """``messaging.E040`` for each problem of the backend's settings (its ``check()``,
    which Django's task checks call)."""
    for problem in backend.configuration_problems():
        yield checks.Error(
            f"TASKS[{backend.alias!r}]: {problem}",
            hint="See docs/topics/tasks.md for the backend's settings.",
            id="messaging.E040",
        )
