"""Retention: delete old messages and receipts in batches (``manage.py purgemessages``
and the ``messaging.tasks.purge_messages`` Celery task)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from ..models import Message, Receipt

#: Statuses purged when none are given: ``pending`` rows are the outbox (not sent yet)
#: and are only purged when asked for by name.
DEFAULT_STATUSES: tuple[str, ...] = (Message.Status.PUBLISHED, Message.Status.FAILED)

DEFAULT_BATCH_SIZE = 1000

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` → a timedelta; ``ValueError`` (one line)
    otherwise."""
    match = _AGE.match(str(text))
    if not match:
        raise ValueError(
            f"cannot read {text!r} as an age: use a whole number and a unit, "
            "e.g. 30d, 12h, 90m, 45s or 2w"
        )
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


@dataclass
class RetentionResult:
    """What :func:`purge` deleted (or, with ``dry_run``, would delete)."""

    cutoff: datetime
    messages: int = 0
    receipts: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "messages": self.messages,
            "receipts": self.receipts,
            "dry_run": self.dry_run,
        }


def __getattr__(name: str) -> type[RetentionResult]:
    # PurgeResult was this module's name for RetentionResult (messaging.admin.PurgeResult
    # is the admin purge's, a different class); the old name still works, with a warning.
    if name == "PurgeResult":
        warnings.warn(
            "messaging.publishing.retention.PurgeResult is deprecated: use RetentionResult",
            DeprecationWarning,
            stacklevel=2,
        )
        return RetentionResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def purge(
    older_than: timedelta,
    *,
    statuses: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    now: datetime | None = None,
) -> RetentionResult:
    """Delete messages created more than ``older_than`` ago whose status is in
    ``statuses`` (default ``published`` and ``failed``) together with their receipts, and
    receipts received before that cutoff whose message_id matches no message (other
    producers' messages). Each batch of ``batch_size`` rows is its own transaction, so
    the tables stay usable while it runs. ``dry_run`` only counts."""
    statuses = tuple(statuses or DEFAULT_STATUSES)
    unknown = set(statuses) - set(Message.Status.values)
    if unknown:
        raise ValueError(
            f"unknown status {sorted(unknown)[0]!r}: choose from {', '.join(Message.Status.values)}"
        )
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    cutoff = (now or timezone.now()) - older_than
    result = RetentionResult(cutoff=cutoff, dry_run=dry_run)
    messages = Message.objects.filter(created_at__lt=cutoff, status__in=statuses)
    orphans = Receipt.objects.filter(received_at__lt=cutoff).exclude(
        message_id__in=Message.objects.values("message_id")
    )
    if dry_run:
        result.messages = messages.count()
        result.receipts = (
            Receipt.objects.filter(message_id__in=messages.values("message_id")).count()
            + orphans.count()
        )
        return result
    while True:
        with transaction.atomic():
            batch = list(messages.order_by("pk").values_list("pk", "message_id")[:batch_size])
            if not batch:
                break
            ids = [message_id for _, message_id in batch]
            result.receipts += Receipt.objects.filter(message_id__in=ids).delete()[0]
            result.messages += Message.objects.filter(pk__in=[pk for pk, _ in batch]).delete()[0]
    while True:
        with transaction.atomic():
            pks = list(orphans.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not pks:
                break
            result.receipts += Receipt.objects.filter(pk__in=pks).delete()[0]
    return result
