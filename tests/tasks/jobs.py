"""Tasks the tests enqueue (``TASKS['default']`` of tests/settings.py; the worker finds
them through ``TASK_MODULES = ["tests.tasks"]``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from django.contrib.auth.models import Group

from messaging.task_backend import RabbitMQTask
from messaging.task_backend.compat import Task

try:
    from django.tasks import task
except ImportError:
    from django_tasks import task


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def noop() -> None:
    return None


@task
def make_group(name: str) -> int:
    """A database effect: one Group row per run."""
    return Group.objects.create(name=name).pk


@task(takes_context=True)
def attempt_seen(context: Any, fail_until: int) -> dict[str, Any]:
    """Fails on attempts before ``fail_until``; returns the attempt it succeeded on."""
    if context.attempt < fail_until:
        raise ValueError(f"attempt {context.attempt} fails")
    return {"attempt": context.attempt, "id": context.task_result.id}


@task
def always_fails(text: str) -> None:
    raise KeyError(text)


def with_options(**options: Any) -> Any:
    """``@task(**options)`` where ``@task`` passes a backend's own options on (Django 6.1,
    the backport); on Django 6.0, whose ``@task`` takes none, the ``RabbitMQTask`` built
    directly (as ``@task`` would)."""
    try:
        return task(**options)
    except TypeError:
        return lambda func: RabbitMQTask(func=func, **options)


@with_options(max_attempts=2)
def fails_twice_max(text: str) -> None:
    raise RuntimeError(text)


@with_options(retry_delay=1.5)
def fails_with_own_delay(text: str) -> None:
    raise RuntimeError(text)


@task
async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0.01)
    return a + b


@task
def wait_for_file(path: str, timeout: float = 30) -> str:
    """Runs until ``path`` exists (the test creates it once it saw RUNNING)."""
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.05)
    return "done"


@task
def returns_set() -> Any:
    return {1, 2}


#: Not a task: a message naming it is refused like os.system.
def plain_function() -> str:
    return "never"


#: A task of another backend alias (not a RabbitMQBackend) would be refused too.
assert isinstance(add, Task)


@task
def make_group_and_wait(name: str, started: str, go: str) -> int:
    """A database effect, then a wait for ``go`` (the test SIGKILLs the worker meanwhile)."""
    pk = Group.objects.create(name=name).pk
    Path(started).write_text(name)
    deadline = time.monotonic() + 60
    while not Path(go).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(go)
        time.sleep(0.05)
    return pk
