"""A backend's ``OPTIONS``, read and checked once (pure: no database, no broker).

``QUEUE_PREFIX`` (default ``"tasks."``): broker queue = prefix + queue name.
``QUEUE_TYPE`` (default ``MESSAGING["DEFAULT_QUEUE_TYPE"]``): ``classic`` (priorities,
declared with ``x-max-priority``) or ``quorum`` (no priorities on RabbitMQ < 4: a task
with a non-default priority is refused with ``InvalidTask``).
``MAX_PRIORITY`` (default 10): the classic queues' ``x-max-priority``, 1..255.
``TASK_MODULES`` (default ``[]``): packages or modules, besides the installed apps,
whose modules the worker may import to find a task named by a message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from ..amqp.validators import validate_queue_name

DEFAULT_PREFIX = "tasks."
DEFAULT_MAX_PRIORITY = 10
KNOWN = {"QUEUE_PREFIX", "QUEUE_TYPE", "MAX_PRIORITY", "TASK_MODULES"}


@dataclass(frozen=True)
class TaskOptions:
    prefix: str = DEFAULT_PREFIX
    queue_type: str = "classic"
    max_priority: int = DEFAULT_MAX_PRIORITY
    task_modules: tuple[str, ...] = ()
    #: What is wrong with the OPTIONS as given (the backend's check reports each).
    problems: tuple[str, ...] = field(default=(), compare=False)

    @property
    def priorities(self) -> bool:
        return self.queue_type == "classic"

    def broker_queue(self, queue_name: str) -> str:
        return f"{self.prefix}{queue_name}"

    def queue_arguments(self) -> dict[str, Any]:
        """The ``Queue.arguments`` of this backend's task queues."""
        return {"x-max-priority": self.max_priority} if self.priorities else {}


def read_options(options: Mapping[str, Any], default_queue_type: str) -> TaskOptions:
    """``OPTIONS`` as :class:`TaskOptions`; a bad value keeps its default and is listed
    in ``problems`` (one line each, naming the setting)."""
    problems = [f"unknown option {key!r}" for key in sorted(set(options) - KNOWN)]
    prefix = options.get("QUEUE_PREFIX", DEFAULT_PREFIX)
    if not isinstance(prefix, str) or not prefix or prefix.startswith("amq."):
        problems.append(
            f"QUEUE_PREFIX must be a non-empty string not starting 'amq.', got {prefix!r}"
        )
        prefix = DEFAULT_PREFIX
    queue_type = options.get("QUEUE_TYPE", default_queue_type)
    if queue_type not in ("classic", "quorum"):
        problems.append(f"QUEUE_TYPE must be 'classic' or 'quorum', got {queue_type!r}")
        queue_type = "classic"
    max_priority = options.get("MAX_PRIORITY", DEFAULT_MAX_PRIORITY)
    if (
        isinstance(max_priority, bool)
        or not isinstance(max_priority, int)
        or not (1 <= max_priority <= 255)
    ):
        problems.append(f"MAX_PRIORITY must be a whole number 1..255, got {max_priority!r}")
        max_priority = DEFAULT_MAX_PRIORITY
    modules = options.get("TASK_MODULES", ())
    if isinstance(modules, str) or not all(isinstance(m, str) and m for m in modules):
        problems.append(f"TASK_MODULES must be a list of dotted module names, got {modules!r}")
        modules = ()
    return TaskOptions(prefix, queue_type, max_priority, tuple(modules), tuple(problems))


def queue_name_problems(options: TaskOptions, queue_names: Any) -> list[str]:
    """One line per task queue whose broker name (prefix + name) is not a valid queue."""
    problems = []
    for name in sorted(queue_names):
        if not isinstance(name, str) or not name:
            problems.append(f"QUEUES holds {name!r}, not a queue name")
            continue
        try:
            validate_queue_name(options.broker_queue(name))
        except ValidationError as exc:
            problems.append(f"task queue {options.broker_queue(name)!r}: {exc.messages[0]}")
    return problems
