"""Celery tasks (the app works without Celery; import this module only where Celery is).

``messaging.tasks.relay_outbox``
    one relay pass: publishes the due ``pending`` messages (see :mod:`messaging.publishing.relay`).
    Schedule it with Celery beat every few seconds; overlapping runs are safe.
``messaging.tasks.purge_messages``
    deletes old messages and receipts in batches (see :mod:`messaging.publishing.retention`).
``messaging.tasks.publish_messages_task``
    publishes the given messages (primary keys), for the admin's bulk "publish" when
    ``MESSAGING["PUBLISH_VIA_CELERY"]`` is on.

Each returns a small dict of counts (JSON-serialisable).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import shared_task
from django.db import close_old_connections, connection

from .publishing import publish_ids, relay, retention

#: This worker process's ``relay@<host>`` row in the Consumer registry, written after each
#: relay pass (as ``manage.py relay`` keeps one), so the outbox warning knows a relay runs.
_HEARTBEAT = relay.Heartbeat()


def _tidy_connections() -> None:
    # What Django does around a request: drop broken or expired database connections (a
    # worker is long-lived). Not inside a transaction (a task called directly in one).
    if not connection.in_atomic_block:
        close_old_connections()


@shared_task(name="messaging.tasks.relay_outbox")
def relay_outbox(
    batch_size: int | None = None,
    max_batches: int | None = None,
    max_seconds: float | None = 60.0,
) -> dict[str, Any]:
    """Publish due pending messages until none is left, ``max_batches`` batches or
    ``max_seconds`` seconds (so scheduled runs do not pile up behind a huge backlog)."""
    _tidy_connections()
    try:
        result = relay.relay_once(
            batch_size=batch_size, max_batches=max_batches, max_seconds=max_seconds
        )
        _HEARTBEAT.beat(result, force=True)  # the admin's "a relay ran recently"
    finally:
        _tidy_connections()
    return result.as_dict()


@shared_task(name="messaging.tasks.purge_messages")
def purge_messages(
    older_than: str = "30d",
    statuses: Sequence[str] | None = None,
    batch_size: int = retention.DEFAULT_BATCH_SIZE,
) -> dict[str, Any]:
    """Delete messages older than ``older_than`` (``30d``, ``12h``, ``90m``) with those
    statuses (default published and failed), their receipts, and old receipts of
    messages not in the table — in batches of ``batch_size``."""
    _tidy_connections()
    try:
        result = retention.purge(
            retention.parse_age(older_than), statuses=statuses, batch_size=batch_size
        )
    finally:
        _tidy_connections()
    return result.as_dict()


@shared_task(name="messaging.tasks.publish_messages_task")
def publish_messages_task(ids: Sequence[int], user_id: int | None = None) -> dict[str, Any]:
    """Publish the messages with primary keys ``ids`` (pending or failed ones; others are
    skipped) and record ``user_id`` as ``published_by``."""
    _tidy_connections()
    try:
        result = publish_ids(ids, user=user_id)
    finally:
        _tidy_connections()
    return {
        "published": len(result.published),
        "failed": len(result.failed) - len(result.retrying),
        "retrying": len(result.retrying),
        "busy": len(result.busy),
        "first_error": str(result.first_error) if result.first_error else None,
    }
