"""Which Celery queue the tasks the app queues go to, and a Celery whose broker is down,
through Celery's own means (no attribute of the app's modules is replaced):

- :func:`route` is listed in tests/settings.py's ``CELERY_TASK_ROUTES`` (Celery's
  ``task_routes``): inside :func:`tasks_routed_to`, a ``messaging.tasks`` task sent without
  a queue (the admin's ``publish_messages_task.delay(...)``) goes to the test's own queue,
  where the test's worker waits; outside, and for a task sent to a named queue, it says
  nothing and Celery routes as configured.
- :func:`celery_broker_refusing`: the app's tasks are ``shared_task`` proxies, which send
  through the *current* Celery app; for the block that is an app whose broker is a closed
  port, so sending a task fails as it does when RabbitMQ is down.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import Celery, current_app

#: The queue the app's tasks go to (None: Celery's routing as configured).
_queue: str | None = None

#: A broker URL whose port refuses connections.
REFUSING_BROKER = "amqp://guest:guest@127.0.0.1:1//"


def route(
    name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any
) -> dict[str, str] | None:
    """A Celery router (see ``task_routes``): the queue :func:`tasks_routed_to` names for
    a ``messaging.tasks`` task, while it does."""
    if _queue is None or not name.startswith("messaging.tasks."):
        return None
    return {"queue": _queue}


@contextmanager
def tasks_routed_to(queue: str) -> Iterator[None]:
    """While the block runs, the app's tasks sent without a queue go to ``queue``."""
    global _queue
    previous, _queue = _queue, queue
    try:
        yield
    finally:
        _queue = previous


@contextmanager
def celery_broker_refusing() -> Iterator[Celery]:
    """While the block runs, the current Celery app (this thread's) is one whose broker
    refuses connections (no Django fix-up: it never runs a worker); then the one before."""
    previous = current_app._get_current_object()
    refusing = Celery("refusing", broker=REFUSING_BROKER, set_as_current=False, fixups=[])
    refusing.set_current()
    try:
        yield refusing
    finally:
        previous.set_current()
        refusing.close()
