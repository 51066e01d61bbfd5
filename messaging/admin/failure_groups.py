"""The failure triage page's numbers: failed receipts (``requeued``, ``dead_lettered``,
``rejected``) of a time window grouped by queue and **cause** — the error's first line
with its numbers, ids, addresses, URLs and quoted values folded into placeholders
(:mod:`messaging.db.error_causes`), so one SMTP bounce is one group whatever the address.
Per group: counts for the last hour and day, first and last seen, distinct messages and
what became of them (recovered: later acked; dead-lettered; rejected; still retrying),
the distinct first lines it folds (its variants, the most frequent listed) and one
example traceback.

The cause is stored with each receipt (``Receipt.error_cause``), so the database groups
by it: one aggregate for the groups and one for their variants
(:mod:`messaging.db.failure_counts`), then one query for the groups' example receipts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connections, router
from django.utils import timezone

from ..db.error_causes import LINE_CHARS, exception_of
from ..db.failure_counts import (
    CauseRow,
    VariantRow,
    Window,
    failure_cause_rows,
    failure_variant_rows,
)
from ..db.raw_sql import FAILED_OUTCOMES
from ..models import Receipt

#: Days of failed receipts the page groups by default (its longest window).
WINDOW_DAYS = 7
#: The page's time windows: (key, length, label); the last is the default.
WINDOWS = (
    ("1h", timedelta(hours=1), "last hour"),
    ("24h", timedelta(days=1), "last 24 hours"),
    ("7d", timedelta(days=WINDOW_DAYS), f"last {WINDOW_DAYS} days"),
)
DEFAULT_WINDOW = WINDOWS[-1][0]
#: Groups shown (the most recently seen first).
MAX_GROUPS = 200
#: Variants listed per group (all are counted).
MAX_VARIANTS_SHOWN = 10


@dataclass
class Variant:
    """One distinct first line of a group and its failed receipts."""

    line: str
    total: int


@dataclass
class FailureGroup:
    """The failed receipts of one queue with one cause, its distinct messages counted
    by what became of them, its most frequent variants and how many there are."""

    queue: str
    cause: str
    exception: str
    last_hour: int = 0
    last_day: int = 0
    total: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    messages: int = 0
    recovered: int = 0
    dead_lettered: int = 0
    rejected: int = 0
    retrying: int = 0
    example_id: int = 0
    variants: list[Variant] = field(default_factory=list)
    variant_count: int = 0
    example: Receipt | None = None

    @property
    def kind(self) -> str:
        """The cause (the name the page used before causes were folded)."""
        return self.cause

    @property
    def variants_shown(self) -> list[Variant]:
        return self.variants[:MAX_VARIANTS_SHOWN]


@dataclass
class Triage:
    groups: list[FailureGroup]
    since: datetime
    now: datetime
    truncated: bool
    queue: str | None = None
    outcome: str | None = None
    window: str = DEFAULT_WINDOW


def window_length(window: str) -> timedelta | None:
    """The length of the window named ``window`` (None: no such window)."""
    return next((length for key, length, _label in WINDOWS if key == window), None)


def make_groups(causes: list[CauseRow], variants: list[VariantRow]) -> list[FailureGroup]:
    """The groups of ``causes`` (in their order) with their ``variants`` (each group's
    most frequent first, ties by line)."""
    groups = {
        (row.queue, row.cause): FailureGroup(
            row.queue,
            row.cause,
            exception_of(row.cause),
            row.last_hour,
            row.last_day,
            row.total,
            row.first_seen,
            row.last_seen,
            row.messages,
            row.recovered,
            row.dead_lettered,
            row.rejected,
            row.retrying,
            row.example_id,
        )
        for row in causes
    }
    for row in variants:
        group = groups.get((row.queue, row.cause))
        if group is not None:
            group.variants.append(Variant(row.line, row.total))
            group.variant_count = row.variants
    for group in groups.values():
        group.variants.sort(key=lambda v: (-v.total, v.line))
    return list(groups.values())


def build_triage(
    now: datetime | None = None,
    using: str | None = None,
    queue: str | None = None,
    outcome: str | None = None,
    window: str = DEFAULT_WINDOW,
) -> Triage:
    """The failure groups of the ``window`` (:data:`WINDOWS`), newest seen first: of one
    ``queue`` and one failed ``outcome`` when given."""
    now = now or timezone.now()
    length = window_length(window)
    if length is None:
        raise ValueError(f"unknown window {window!r}")
    if outcome is not None and outcome not in FAILED_OUTCOMES:
        raise ValueError(f"not a failed outcome: {outcome!r}")
    since = now - length
    alias = using or router.db_for_read(Receipt)
    connection = connections[alias]
    chosen = Window(since, queue, [outcome] if outcome else FAILED_OUTCOMES)
    causes = failure_cause_rows(connection, now, chosen, MAX_GROUPS + 1)
    variants = failure_variant_rows(connection, chosen, LINE_CHARS, MAX_VARIANTS_SHOWN)
    groups = make_groups(causes[:MAX_GROUPS], variants)
    examples = Receipt.objects.using(alias).in_bulk([g.example_id for g in groups])
    for group in groups:
        group.example = examples.get(group.example_id)
    return Triage(groups, since, now, len(causes) > MAX_GROUPS, queue, outcome, window)
