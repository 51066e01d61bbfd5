"""The backend's system checks (``check()``, run by Django's task checks):
``messaging.E040`` a misconfigured backend (OPTIONS, QUEUES, the queue names the prefix
makes), ``messaging.W041`` a task queue whose ``Queue`` row is declared otherwise (queue
type, ``x-max-priority``) than the backend declares its queues."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core import checks
from django.db import DatabaseError

from .task_queues import differences


def backend_checks(backend: Any, **kwargs: Any) -> Iterator[checks.CheckMessage]:
    for problem in backend.configuration_problems():
        yield checks.Error(
            f"TASKS[{backend.alias!r}]: {problem}",
            hint="See the README's 'Django tasks' section for the backend's settings.",
            id="messaging.E040",
        )
    if not kwargs.get("databases"):
        return  # checks that read the database run only when asked to (migrate, check --database)
    try:
        lines = differences(backend.task_options, backend.queues)
    except DatabaseError:
        return  # no tables yet
    for line in lines:
        yield checks.Warning(
            f"TASKS[{backend.alias!r}]: {line}",
            hint="Change the Queue row (and redeclare the queue) or the backend's OPTIONS.",
            id="messaging.W041",
        )
