"""Django's Tasks API, from ``django.tasks`` (Django >= 6.0) or else the ``django-tasks``
backport (Django 5.2, the ``[tasks]`` extra): the one place that knows which."""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:  # type checkers see Django's own API (django-stubs has django.tasks)
    from django.tasks import Task, TaskContext, TaskResult, TaskResultStatus, signals, task_backends
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import (
        DEFAULT_TASK_BACKEND_ALIAS,
        DEFAULT_TASK_PRIORITY,
        DEFAULT_TASK_QUEUE_NAME,
        TASK_MAX_PRIORITY,
        TASK_MIN_PRIORITY,
        TaskError,
    )
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
    from django.utils.json import normalize_json

    FRAMEWORK = "django.tasks"
else:
    try:  # Django >= 6.0
        from django.tasks import (
            Task,
            TaskContext,
            TaskResult,
            TaskResultStatus,
            signals,
            task_backends,
        )
        from django.tasks.backends.base import BaseTaskBackend
        from django.tasks.base import (
            DEFAULT_TASK_BACKEND_ALIAS,
            DEFAULT_TASK_PRIORITY,
            DEFAULT_TASK_QUEUE_NAME,
            TASK_MAX_PRIORITY,
            TASK_MIN_PRIORITY,
            TaskError,
        )
        from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
        from django.utils.json import normalize_json

        FRAMEWORK = "django.tasks"
    except ImportError:  # Django 5.2: the backport
        try:
            from django_tasks import (
                TaskContext,
                TaskResult,
                TaskResultStatus,
                signals,
                task_backends,
            )
        except ImportError as exc:
            raise ImproperlyConfigured(
                "messaging.task_backend needs Django >= 6.0 or the django-tasks backport: "
                "pip install 'django-messaging-rabbitmq[tasks]'"
            ) from exc
        from django_tasks.backends.base import BaseTaskBackend
        from django_tasks.base import (
            DEFAULT_TASK_BACKEND_ALIAS,
            DEFAULT_TASK_PRIORITY,
            DEFAULT_TASK_QUEUE_NAME,
            TASK_MAX_PRIORITY,
            TASK_MIN_PRIORITY,
            Task,
            TaskError,
        )
        from django_tasks.exceptions import InvalidTaskError as InvalidTask
        from django_tasks.exceptions import TaskResultDoesNotExist
        from django_tasks.utils import normalize_json

        FRAMEWORK = "django_tasks"


def module_path(value: Any) -> str:
    """``module.qualname`` of a function or class (a task's path, an exception's)."""
    return f"{value.__module__}.{value.__qualname__}"


def exception_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


__all__ = [
    "DEFAULT_TASK_BACKEND_ALIAS",
    "DEFAULT_TASK_PRIORITY",
    "DEFAULT_TASK_QUEUE_NAME",
    "FRAMEWORK",
    "TASK_MAX_PRIORITY",
    "TASK_MIN_PRIORITY",
    "BaseTaskBackend",
    "InvalidTask",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "exception_traceback",
    "module_path",
    "normalize_json",
    "signals",
    "task_backends",
]
