"""The outbox's rules, each written once: which rows may be sent, who holds a row (the
creator's lease, the claim), and what each outcome of a try writes — the same field
values for the bulk UPDATEs and for the in-memory objects."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q

from .. import conf
from ..amqp.backoff import backoff
from ..broker import is_temporary
from ..broker.errors import error_class
from ..broker.queues import queues_down
from ..db import operations
from ..exceptions import (
    BrokerError,
    BrokerUnavailable,
    ConfirmTimeout,
    PublishInterrupted,
    PublishNacked,
    Unroutable,
)
from ..models import Message
from .statements import update_by_message_id

#: Outcomes that leave the row ``pending`` for a retry (the broker could not take it now);
#: every other broker error is about the message itself and marks it ``failed``. The
#: classes say so themselves (``temporary``); this lists them for importers.
TRANSIENT_ERRORS: tuple[type[BrokerError], ...] = (
    BrokerUnavailable,
    PublishNacked,
    ConfirmTimeout,
    PublishInterrupted,
)

#: Statuses :func:`publish_messages` sends; ``published`` rows are never sent again.
PUBLISHABLE = (Message.Status.PENDING, Message.Status.HELD, Message.Status.FAILED)

#: Message ids per UPDATE when outcomes are stored.
UPDATE_CHUNK = 2000

#: Seconds of a creator's lease beyond the longest publish (:func:`claim_lease`): a row
#: held longer than this before its send is left to the relay (see :func:`lease_holds`).
LEASE_MARGIN = 30


@dataclass
class PublishResult:
    """What happened to a batch of messages (message_ids).

    ``published``: confirmed by the broker. ``failed``: not published, with the reason —
    the row is ``failed``, or still ``pending`` when the id is also in ``retrying`` (the
    broker was down, nacked or did not confirm in time: the relay tries again later).
    ``busy``: not touched because another publisher (the relay, or the process that
    created the row) holds it, or it is already published.
    """

    published: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    retrying: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    first_error: BrokerError | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.busy

    def extend(self, other: PublishResult) -> None:
        self.published.extend(other.published)
        self.failed.update(other.failed)
        self.retrying.extend(other.retrying)
        self.busy.extend(other.busy)
        self.first_error = self.first_error or other.first_error


def user_id_of(user: Any) -> int | None:
    """The ``published_by`` id of ``user``: a user, its primary key, or ``None``."""
    if user is None or isinstance(user, int):
        return user
    return getattr(user, "pk", None)


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """``items`` in consecutive slices of ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------- errors


def is_transient(error: BaseException) -> bool:
    """True when ``error`` leaves the row ``pending`` for a retry (``error.temporary``)."""
    return is_temporary(error)


def recheck_unroutable(
    pub: Any, queues: Sequence[str], outcomes: Sequence[BrokerError | None]
) -> list[BrokerError | None]:
    """``outcomes`` of messages sent straight to ``queues`` (one name per message, ``""``
    for one sent to an exchange), with each :class:`Unroutable` or :class:`PublishNacked`
    of a queue that exists but whose node is down replaced by that outage (pending, not
    failed; which of the two the broker answers depends on how far the node's stop got)."""
    rechecked = (Unroutable, PublishNacked)
    names = [q for q, o in zip(queues, outcomes, strict=True) if q and isinstance(o, rechecked)]
    if not names:
        return list(outcomes)
    down = queues_down(pub, names)
    return [
        down.get(q, o) if isinstance(o, rechecked) else o
        for q, o in zip(queues, outcomes, strict=True)
    ]


def as_transient(error: BrokerError) -> BrokerError:
    """A failure to connect at all (refused, wrong password, vhost refused) is never the
    message's fault: its rows wait for a retry, with the same text."""
    return error if is_transient(error) else BrokerUnavailable(str(error))


# --------------------------------------------------------------------------- who holds a row


def claim_lease() -> timedelta:
    """How long the creator of a row has it to itself before the relay may send it: the
    longest a publish can take (connect to every URL, a blocked connection, the confirm
    timeout) plus a margin."""
    seconds = (
        (conf.get("CONNECTION_TIMEOUT") or 10) * 2 * len(conf.broker_urls())
        + (conf.get("BLOCKED_CONNECTION_TIMEOUT") or 60)
        + 2 * conf.get("CONFIRM_TIMEOUT")
        + LEASE_MARGIN
    )
    return timedelta(seconds=seconds)


def lease_end(now: datetime) -> datetime:
    """``next_attempt_at`` of a row its creator holds from ``now`` (the relay waits)."""
    return now + claim_lease()


def owned_by_creator(now: datetime) -> Q:
    """Rows their creator is publishing right now (never tried, within the lease)."""
    return Q(status=Message.Status.PENDING, attempts=0, next_attempt_at__gt=now)


def renew_lease(message: Message, now: datetime) -> bool:
    """Extend the creator's lease on ``message``; False when its row is no longer the
    untouched pending row it was (someone else has tried it meanwhile)."""
    return bool(
        Message.objects.filter(
            pk=message.pk, status=Message.Status.PENDING, attempts=message.attempts
        ).update(next_attempt_at=lease_end(now))
    )


def send_deadline(now: datetime) -> datetime:
    """The creator may still start sending a row at ``now`` only if its lease ends at
    this time or later: what is left of the lease covers the longest publish (it has
    waited less than :data:`LEASE_MARGIN`), so the relay never takes a row its creator
    is still sending."""
    return now + claim_lease() - timedelta(seconds=LEASE_MARGIN)


def lease_holds(message: Message, deadline: datetime) -> bool:
    """Does ``message``'s lease end at ``deadline`` (:func:`send_deadline`) or later?"""
    end = message.next_attempt_at
    return end is not None and end >= deadline


def release_lease(message_ids: Sequence[str], now: datetime) -> int:
    """Hand rows whose creator will not send them to the relay at once: the ones still
    untouched and leased (:func:`owned_by_creator`) get ``next_attempt_at = now``.
    Returns how many were released."""
    rows = Message.objects.filter(owned_by_creator(now), message_id__in=list(message_ids))
    return rows.update(next_attempt_at=now)


def lock_options() -> dict[str, Any]:
    features = connection.features
    if features.has_select_for_update_skip_locked:
        options: dict[str, Any] = {"skip_locked": True}
        if features.has_select_for_update_of:
            options["of"] = ("self",)
        return options
    return {}


@contextmanager
def claiming() -> Iterator[None]:
    """``transaction.atomic()`` in which claimed rows stay claimed until it ends.

    With row locks (PostgreSQL…) ``select_for_update(skip_locked=True)`` inside it does the
    work. SQLite has none, so the transaction starts with a write that matches nothing,
    which takes the database's write lock at once: a second claimer waits for this one to
    commit and then sees the outcome."""
    with transaction.atomic():
        operations(connection).begin_claim(
            connection, connection.ops.quote_name(Message._meta.db_table)
        )
        yield


def claim(pks: Iterable[int], now: datetime) -> dict[int, int]:
    """Inside :func:`claiming`: lock the rows of ``pks`` that may be sent (publishable,
    not held by their creator, not locked by another claimer); their attempts by pk."""
    return dict(
        Message.objects.filter(pk__in=list(pks), status__in=PUBLISHABLE)
        .exclude(owned_by_creator(now))
        .select_for_update(**lock_options())
        .values_list("pk", "attempts")
    )


# --------------------------------------------------------------------------- outcomes


def retry_delay(attempts: int) -> timedelta:
    """Backoff after the ``attempts``-th failed try: PUBLISH_RETRY_DELAY doubling each time,
    capped at PUBLISH_RETRY_MAX_DELAY."""
    first = float(conf.get("PUBLISH_RETRY_DELAY"))
    cap = float(conf.get("PUBLISH_RETRY_MAX_DELAY"))
    return timedelta(seconds=backoff(attempts, first=first, cap=cap))


def outcome_fields(
    outcome: BrokerError | None, *, attempts: int, now: datetime, user_id: int | None
) -> dict[str, Any]:
    """The fields (besides ``attempts``) a try ending with ``outcome`` at ``now`` writes;
    ``attempts`` counts that try. Confirmed → ``published``; a transient error →
    ``pending``, due again after :func:`retry_delay`; any other → ``failed``."""
    if outcome is None:
        return {
            "status": Message.Status.PUBLISHED,
            "published_at": now,
            "published_by_id": user_id,
            "last_error": "",
            "error_class": "",
            "next_attempt_at": None,
        }
    if is_transient(outcome):
        return {
            "status": Message.Status.PENDING,
            "last_error": str(outcome),
            "error_class": error_class(outcome),
            "next_attempt_at": now + retry_delay(attempts),
        }
    return {
        "status": Message.Status.FAILED,
        "last_error": str(outcome),
        "error_class": error_class(outcome),
        "next_attempt_at": None,
    }


def store_outcomes(
    rows: Sequence[tuple[str, int]],
    outcomes: Sequence[BrokerError | None],
    *,
    user_id: int | None,
    now: datetime,
    result: PublishResult,
) -> None:
    """Write the outcomes of ``rows`` ((message_id, attempts before this try)) with a few
    UPDATEs (:func:`.statements.update_by_message_id`), one per set of field values, and
    add them to ``result``."""
    groups: dict[tuple[tuple[str, Any], ...], list[str]] = {}
    for (message_id, attempts), outcome in zip(rows, outcomes, strict=True):
        _add_outcome(result, message_id, outcome)
        changes = outcome_fields(outcome, attempts=attempts + 1, now=now, user_id=user_id)
        groups.setdefault(tuple(changes.items()), []).append(message_id)
    for frozen, ids in groups.items():
        for chunk in chunks(ids, UPDATE_CHUNK):
            update_by_message_id(chunk, dict(frozen))


def apply_outcomes(
    rows: Sequence[Message],
    outcomes: Sequence[BrokerError | None],
    *,
    user_id: int | None,
    now: datetime,
) -> None:
    """Set on the in-memory objects what :func:`store_outcomes` wrote to their rows."""
    for row, outcome in zip(rows, outcomes, strict=True):
        row.attempts += 1
        changes = outcome_fields(outcome, attempts=row.attempts, now=now, user_id=user_id)
        for name, value in changes.items():
            setattr(row, name, value)


def _add_outcome(result: PublishResult, message_id: str, outcome: BrokerError | None) -> None:
    if outcome is None:
        result.published.append(message_id)
        return
    result.failed[message_id] = str(outcome)
    if is_transient(outcome):
        result.retrying.append(message_id)
    result.first_error = result.first_error or outcome
