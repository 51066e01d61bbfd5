"""The failure triage page's numbers: failed receipts (``requeued``, ``dead_lettered``,
``rejected``) of the last :data:`WINDOW_DAYS` days grouped by queue and error kind (the
error's first line: exception class and message), with counts for the last hour and day,
first and last seen, distinct messages and one example traceback per group.

One aggregate over the partial index of failed receipts, so acked receipts are never
read (:func:`messaging.db.failure_counts.failure_group_rows`, where its SQL is); then one
query for the example receipts of the groups shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connections, router
from django.utils import timezone

from ..db.failure_counts import failure_group_rows
from ..models import Receipt

#: Days of failed receipts the page groups.
WINDOW_DAYS = 7
#: Characters of an error's first line that make its kind.
KIND_CHARS = 200
#: Groups shown (the most recently seen first).
MAX_GROUPS = 200


@dataclass
class FailureGroup:
    queue: str
    kind: str
    last_hour: int
    last_day: int
    total: int
    first_seen: datetime
    last_seen: datetime
    messages: int
    example_id: int
    example: Receipt | None = None

    @property
    def exception(self) -> str:
        """The exception class of the kind ("ValueError" of "ValueError: bad"), or ""."""
        head, sep, _rest = self.kind.partition(":")
        return head if sep and head.replace(".", "").replace("_", "").isalnum() else ""


@dataclass
class Triage:
    groups: list[FailureGroup]
    since: datetime
    now: datetime
    truncated: bool


def build_triage(now: datetime | None = None, using: str | None = None) -> Triage:
    """The failure groups of the last :data:`WINDOW_DAYS` days, newest seen first."""
    now = now or timezone.now()
    since = now - timedelta(days=WINDOW_DAYS)
    alias = using or router.db_for_read(Receipt)
    connection = connections[alias]
    rows = failure_group_rows(connection, now, since, KIND_CHARS, MAX_GROUPS + 1)
    groups = [FailureGroup(*row) for row in rows[:MAX_GROUPS]]
    examples = Receipt.objects.using(alias).in_bulk([g.example_id for g in groups])
    for group in groups:
        group.example = examples.get(group.example_id)
    return Triage(groups=groups, since=since, now=now, truncated=len(rows) > MAX_GROUPS)
