"""System checks for ``settings.MESSAGING`` (ids ``messaging.E001``…), and one on the
database: a stalled outbox (``messaging.W002``, :func:`check_outbox`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, router

from . import conf
from .consumer.handlers import load_handler
from .exceptions import HandlerImportError

#: Stable check ids, one per kind of problem.
IDS = {
    "NOT_A_DICT": "messaging.E001",
    "BROKER_URL": "messaging.E002",
    "HEARTBEAT": "messaging.E003",
    "CONNECTION_TIMEOUT": "messaging.E003",
    "BLOCKED_CONNECTION_TIMEOUT": "messaging.E003",
    "RECONNECT_DELAY": "messaging.E003",
    "RECONNECT_MAX_DELAY": "messaging.E003",
    "MAX_ATTEMPTS": "messaging.E003",
    "RETRY_DELAY": "messaging.E003",
    "RETRY_MAX_DELAY": "messaging.E003",
    "CONSUMER_HEARTBEAT_INTERVAL": "messaging.E003",
    "BATCH_FLUSH_INTERVAL": "messaging.E003",
    "BROKER_CONSUMER_TIMEOUT": "messaging.E003",
    "CONFIRM_TIMEOUT": "messaging.E003",
    "RELAY_BATCH_SIZE": "messaging.E003",
    "RELAY_INTERVAL": "messaging.E003",
    "PUBLISH_RETRY_DELAY": "messaging.E003",
    "PUBLISH_RETRY_MAX_DELAY": "messaging.E003",
    "RELAY_WARNING_AFTER": "messaging.E003",
    "THREADS": "messaging.E003",
    "SHUTDOWN_TIMEOUT": "messaging.E003",
    "HANDLER_TIME_BUDGET": "messaging.E003",
    "PUBLISH_BACKLOG_MAX": "messaging.E003",
    "PUBLISH_BACKLOG_MAX_BYTES": "messaging.E003",
    "QUEUE_CACHE_SECONDS": "messaging.E003",
    "PUBLISH_MODE": "messaging.E007",
    "PUBLISH_VIA_CELERY": "messaging.E007",
    "SHUFFLE_BROKER_URLS": "messaging.E007",
    "PUBLISH_IN_BACKGROUND": "messaging.E007",
    "SENT_AT_HEADER": "messaging.E007",
    "DEFAULT_QUEUE_TYPE": "messaging.E007",
    "DEAD_LETTER_QUEUE_TYPE": "messaging.E007",
    "PREFETCH": "messaging.E004",
    "CONSUMERS": "messaging.E005",
    "HANDLER_IMPORT": "messaging.E006",
    "MANAGEMENT_URL": "messaging.E008",
    "UNKNOWN_KEY": "messaging.W001",
    "OUTBOX_STALLED": "messaging.W002",
}


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    value = getattr(settings, "MESSAGING", {})
    if value is None:
        return []
    if not isinstance(value, dict):
        return [
            Error(
                "settings.MESSAGING must be a dict.",
                hint="See docs/reference/settings.md.",
                id=IDS["NOT_A_DICT"],
            )
        ]
    errors: list[Any] = []
    for key, setting in value.items():
        if key not in conf.DEFAULTS:
            errors.append(
                Warning(
                    f"MESSAGING[{key!r}] is not a setting of the messaging app (typo?).",
                    hint="Known keys: " + ", ".join(sorted(conf.DEFAULTS)),
                    id=IDS["UNKNOWN_KEY"],
                )
            )
            continue
        try:
            conf.validate(key, setting)
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), id=IDS[key]))
    if not any(e.id == IDS["CONSUMERS"] for e in errors):
        errors.extend(_check_handlers(value.get("CONSUMERS", {})))
    return errors


def _check_handlers(consumers: dict[str, str]) -> list[Any]:
    errors = []
    for queue, path in consumers.items():
        try:
            load_handler(path)
        except HandlerImportError as exc:
            errors.append(
                Error(f"MESSAGING['CONSUMERS'][{queue!r}]: {exc}", id=IDS["HANDLER_IMPORT"])
            )
    return errors


@register(Tags.database)
def check_outbox(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Any]:
    """``messaging.W002``: pending messages older than RELAY_WARNING_AFTER while no relay
    ran within that time (a running ``manage.py relay`` keeps a ``relay@<host>`` row in
    the Consumer registry fresh). A database check: ``manage.py check --database
    default`` and ``migrate`` run it. A database without the tables yet is no problem."""
    from .models import Message
    from .publishing.relay import outbox_backlog

    alias = router.db_for_read(Message)
    if not databases or alias not in databases:
        return []
    try:
        conf.get("RELAY_WARNING_AFTER")
        backlog = outbox_backlog(using=alias)
    except (DatabaseError, ImproperlyConfigured):
        return []
    if not backlog.stalled:
        return []
    return [Warning(stalled_text(backlog), hint=STALLED_HINT, id=IDS["OUTBOX_STALLED"])]


@register(Tags.database)
def check_task_queues(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Any]:
    """``messaging.W041``: a task queue of a ``RabbitMQBackend`` (``TASKS``) whose Queue row
    is declared otherwise than the backend declares it (see
    :mod:`messaging.task_backend.task_checks`). Nothing without Django's Tasks framework."""
    if not any("RabbitMQBackend" in str(c.get("BACKEND")) for c in _tasks_setting().values()):
        return []
    try:
        from .task_backend.queue_checks import queue_checks
    except ImproperlyConfigured:
        return []  # E040 / the framework's own checks say what is missing
    return queue_checks(databases)


def _tasks_setting() -> dict[str, Any]:
    from django.conf import settings

    value = getattr(settings, "TASKS", None)
    return value if isinstance(value, dict) else {}


#: What to do about a stalled outbox.
STALLED_HINT = (
    "Run `manage.py relay` (it publishes pending messages and keeps a relay@<host> row in "
    "the Consumer registry), or publish them from the admin. A Celery beat schedule of "
    "messaging.tasks.relay_outbox publishes them too but writes no heartbeat."
)


def stalled_text(backlog: Any) -> str:
    """The warning's text (the admin's banner says the same)."""
    since = (
        "no relay has ever run"
        if backlog.last_relay is None
        else f"the last relay heartbeat was at {backlog.last_relay:%Y-%m-%d %H:%M:%S %Z}"
    )
    return (
        f"{backlog.count} pending message(s) wait to be sent, the oldest for "
        f"{int(backlog.age)} s, and {since}: nothing is publishing them."
    )
