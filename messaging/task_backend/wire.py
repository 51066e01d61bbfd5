"""The wire format of a task run: one JSON object per message, pure code (no Django
models, no broker), so that any producer can enqueue a task.

A task run is an AMQP message on the durable queue ``QUEUE_PREFIX + queue_name``
(default ``tasks.<queue_name>``) with ``message_id`` = the result id,
``content_type = application/json``, ``type = django.task`` and, on classic queues, the
task's priority mapped onto the queue's ``x-max-priority``. Its body::

    {"version": 1,
     "task": "myapp.tasks.send_welcome",   # module path of a task of this backend
     "backend": "default",                 # the TASKS alias
     "queue_name": "emails",               # the task queue (without the prefix)
     "args": [42], "kwargs": {"lang": "de"},
     "priority": 0,                        # Django's -100..100
     "enqueued_at": "2026-12-07T21:00:00.123456+00:00",
     "run_after": null}                    # ISO 8601 with offset, or null

``version``, ``task``, ``args`` and ``kwargs`` are required; the others default to
``"default"``, ``"default"``, ``0``, the delivery time and ``null``. Unknown keys are
ignored (a newer producer may add some)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

VERSION = 1
CONTENT_TYPE = "application/json"
#: The AMQP ``type`` property of a task message.
MESSAGE_TYPE = "django.task"
MIN_PRIORITY, MAX_PRIORITY = -100, 100


class WireError(ValueError):
    """A body that is not a task message of this format (one line: why)."""


@dataclass(frozen=True)
class TaskMessage:
    task: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    backend: str = "default"
    queue_name: str = "default"
    priority: int = 0
    enqueued_at: datetime | None = None
    run_after: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "task": self.task,
            "backend": self.backend,
            "queue_name": self.queue_name,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "priority": self.priority,
            "enqueued_at": _iso(self.enqueued_at),
            "run_after": _iso(self.run_after),
        }


def encode(message: TaskMessage) -> bytes:
    """The body of ``message`` (compact JSON, UTF-8); ``WireError`` if its arguments
    are not JSON."""
    try:
        return json.dumps(message.as_dict(), separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise WireError(f"task arguments are not JSON: {exc}") from None


def decode(body: bytes) -> TaskMessage:
    """The task message in ``body``; ``WireError`` saying what is wrong with it."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(f"task message is not JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise WireError(f"task message is a JSON {type(data).__name__}, not an object")
    if data.get("version") != VERSION:
        raise WireError(f"unsupported task message version {data.get('version')!r}")
    return TaskMessage(
        task=_text(data, "task", None),
        args=_typed(data, "args", list, "a list"),
        kwargs=_kwargs(data),
        backend=_text(data, "backend", "default"),
        queue_name=_text(data, "queue_name", "default"),
        priority=_priority(data.get("priority", 0)),
        enqueued_at=_datetime(data, "enqueued_at"),
        run_after=_datetime(data, "run_after"),
    )


def _text(data: Mapping[str, Any], key: str, default: str | None) -> str:
    if key not in data and default is not None:
        return default
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise WireError(f"task message field {key!r} must be a non-empty string")
    return value


def _typed(data: Mapping[str, Any], key: str, kind: type, shown: str) -> Any:
    if key not in data:
        raise WireError(f"task message has no {key!r}")
    value = data[key]
    if not isinstance(value, kind):
        raise WireError(f"task message field {key!r} must be {shown}")
    return value


def _kwargs(data: Mapping[str, Any]) -> dict[str, Any]:
    return _typed(data, "kwargs", dict, "an object")


def _priority(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError("task message field 'priority' must be a whole number")
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise WireError(f"task priority {value} is not within {MIN_PRIORITY}..{MAX_PRIORITY}")
    return value


def _datetime(data: Mapping[str, Any], key: str) -> datetime | None:
    value = data.get(key)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise WireError(f"task message field {key!r} must be an ISO 8601 time with an offset")
    return parsed


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def amqp_priority(priority: int, max_priority: int) -> int:
    """Django's -100..100 onto a classic queue's 0..``max_priority`` (linear, rounded:
    with 10, -100 → 0, 0 → 5, 100 → 10)."""
    span = MAX_PRIORITY - MIN_PRIORITY
    return round((priority - MIN_PRIORITY) * max_priority / span)
