"""The failure triage page's numbers: failed receipts (``requeued``, ``dead_lettered``,
``rejected``) of a time window grouped by queue and **cause** — the error's first line
with its numbers, ids, addresses, URLs and quoted values folded into placeholders
(:mod:`.error_causes`), so one SMTP bounce is one group whatever the address. Per group:
counts for the last hour and day, first and last seen, distinct messages and what became
of them (recovered: later acked; dead-lettered; rejected; still retrying), the distinct
first lines it folds (its variants) and one example traceback.

The database groups by queue and first line (one aggregate over the partial index of
failed receipts, :func:`messaging.db.failure_counts.failure_line_rows`); Python folds the
lines into causes; then one query for the example receipts of the groups shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connections, router
from django.utils import timezone

from ..db.error_causes import cause_of
from ..db.failure_counts import LineRow, failure_line_rows
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
#: Characters of an error's first line read (a longer one is cut: its cause ends in "…").
LINE_CHARS = 1000
#: (queue, first line) rows read from the database at most.
MAX_LINES = 20000
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
    """The failed receipts of one queue with one cause. ``messages`` and the fate counts
    add up the distinct messages of each variant (a message whose failures have two
    first lines of one cause counts in both)."""

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
    example: Receipt | None = None

    @property
    def kind(self) -> str:
        """The cause (the name the page used before causes were folded)."""
        return self.cause

    @property
    def variant_count(self) -> int:
        return len(self.variants)

    @property
    def variants_shown(self) -> list[Variant]:
        return self.variants[:MAX_VARIANTS_SHOWN]

    def add(self, row: LineRow) -> None:
        self.last_hour += row.last_hour
        self.last_day += row.last_day
        self.total += row.total
        if self.first_seen is None or row.first_seen < self.first_seen:
            self.first_seen = row.first_seen
        if self.last_seen is None or row.last_seen > self.last_seen:
            self.last_seen = row.last_seen
            self.example_id = row.example_id
        self.messages += row.messages
        self.recovered += row.recovered
        self.dead_lettered += row.dead_lettered
        self.rejected += row.rejected
        self.retrying += row.retrying
        self.variants.append(Variant(row.line, row.total))


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


def group_lines(rows: list[LineRow], line_chars: int = LINE_CHARS) -> list[FailureGroup]:
    """Fold (queue, first line) rows into (queue, cause) groups, the most recently seen
    first; each group's variants most frequent first."""
    groups: dict[tuple[str, str], FailureGroup] = {}
    for row in rows:
        cause = cause_of(row.line, cut=len(row.line) >= line_chars)
        group = groups.get((row.queue, cause.text))
        if group is None:
            group = groups[(row.queue, cause.text)] = FailureGroup(
                row.queue, cause.text, cause.exception
            )
        group.add(row)
    for group in groups.values():
        group.variants.sort(key=lambda v: (-v.total, v.line))
    return sorted(groups.values(), key=lambda g: (g.last_seen, g.total), reverse=True)


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
    rows = failure_line_rows(
        connections[alias],
        now,
        since,
        LINE_CHARS,
        MAX_LINES + 1,
        queue=queue,
        outcomes=[outcome] if outcome else FAILED_OUTCOMES,
    )
    grouped = group_lines(rows[:MAX_LINES])
    groups = grouped[:MAX_GROUPS]
    examples = Receipt.objects.using(alias).in_bulk([g.example_id for g in groups])
    for group in groups:
        group.example = examples.get(group.example_id)
    truncated = len(rows) > MAX_LINES or len(grouped) > MAX_GROUPS
    return Triage(groups, since, now, truncated, queue, outcome, window)
