"""A message's whole fate, from its receipts: published → consumed (acked / duplicate),
retried n times, dead-lettered or rejected (in ``<queue>.dlq`` now), replayed.

:func:`with_fate` annotates a ``Message`` queryset with a few correlated subqueries on
the receipts (the ``message_id`` index): one query for a whole list page, no query per
row. :func:`fate_of` reads those annotations as a :class:`Fate`.

Which receipt tells the fate (the *deciding* receipt): a dead-letter receipt
(``dead_lettered`` or ``rejected``) that no later receipt of the same queue follows — the
message sits in that queue's DLQ, as far as the receipts know — else the newest receipt.
A message with a dead-letter receipt that a later receipt of its queue follows was
*replayed* (moved back and consumed again). A replay that no consumer has taken yet, or a
discard from the DLQ, leaves no receipt: the fate still says dead-lettered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ..models import Message, Queue, Receipt, dead_letter_queue_name

Outcome = Receipt.Outcome
#: Outcomes that put the message in its queue's DLQ.
DEATHS = (Outcome.DEAD_LETTERED, Outcome.REJECTED)
#: Outcomes of a delivery the handler finished with (the message is consumed).
CONSUMED = (Outcome.ACKED, Outcome.DUPLICATE)
#: Outcomes of a failed attempt (the failed receipts' partial index holds them).
FAILED = (Outcome.REQUEUED, Outcome.DEAD_LETTERED, Outcome.REJECTED)

#: The annotations :func:`with_fate` adds.
OUTCOME, QUEUE, ATTEMPT, STANDING, RETRIES, DEATH_COUNT = (
    "fate_outcome",
    "fate_queue",
    "fate_attempt",
    "fate_standing",
    "fate_retries",
    "fate_deaths",
)

#: The choices of the message list's "consumer outcome" filter.
FILTER_CHOICES = (
    ("acked", gettext_lazy("acked (consumed)")),
    ("retried", gettext_lazy("retried (at least one failed attempt)")),
    ("dead_lettered", gettext_lazy("dead-lettered (in the DLQ)")),
    ("rejected", gettext_lazy("rejected (in the DLQ)")),
    ("replayed", gettext_lazy("replayed from the DLQ")),
    ("none", gettext_lazy("none yet (no receipt)")),
)


def _receipts() -> QuerySet[Receipt]:
    return Receipt.objects.filter(message_id=OuterRef("message_id"))


def _deciding_order() -> QuerySet[Receipt]:
    """The message's receipts, the deciding one first."""
    later_in_queue = Receipt.objects.filter(
        Q(received_at__gt=OuterRef("received_at"))
        | Q(received_at=OuterRef("received_at"), pk__gt=OuterRef("pk")),
        message_id=OuterRef("message_id"),
        queue_name=OuterRef("queue_name"),
    )
    standing = Case(
        When(Q(outcome__in=DEATHS) & ~Exists(later_in_queue), then=Value(1)),
        default=Value(0),
        output_field=IntegerField(),
    )
    return _receipts().annotate(_standing=standing).order_by("-_standing", "-received_at", "-pk")


def _count(condition: Q) -> Coalesce:
    counted = (
        _receipts()
        .filter(condition)
        .order_by()
        .values("message_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def with_fate(queryset: QuerySet[Message]) -> QuerySet[Message]:
    """``queryset`` with the fate annotations (once: annotating twice is a no-op)."""
    if OUTCOME in queryset.query.annotations:
        return queryset
    deciding = _deciding_order()
    return queryset.annotate(
        **{
            OUTCOME: Subquery(deciding.values("outcome")[:1]),
            QUEUE: Subquery(deciding.values("queue_name")[:1]),
            ATTEMPT: Subquery(deciding.values("attempt")[:1]),
            STANDING: Subquery(deciding.values("_standing")[:1]),  # type: ignore[misc]
            RETRIES: _count(Q(outcome=Outcome.REQUEUED)),
            DEATH_COUNT: _count(Q(outcome__in=DEATHS)),
        }
    )


def filter_fate(queryset: QuerySet[Message], value: str) -> QuerySet[Message]:
    """Messages whose fate matches a :data:`FILTER_CHOICES` value (others: unchanged).

    The fate annotations are computed only for messages that can have that fate: those
    with a receipt of the outcome it needs (a semi-join on the receipts' indexes), so a
    filter over a million messages does not run the fate's subqueries a million times.
    ``retried`` needs none (a requeued receipt is the whole test). ``acked`` is a test
    per message (EXISTS on the ``message_id`` index, so a list page or a capped count
    reads only the rows it needs, not every receipt): a consumed receipt, and either no
    failed receipt or a consumed deciding receipt (the fate's subquery runs only for a
    message with a failed receipt)."""
    if value == "none":
        return queryset.filter(~Exists(_receipts()))
    if value == "retried":
        return queryset.filter(message_id__in=_ids(Q(outcome=Outcome.REQUEUED)))
    if value == "acked":
        deciding = Subquery(_deciding_order().values("outcome")[:1])
        consumed_in_the_end = Case(
            When(~Exists(_receipts().filter(outcome__in=FAILED)), then=Value(True)),
            When(Q(_deciding__in=CONSUMED), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
        return (
            queryset.filter(Exists(_receipts().filter(outcome__in=CONSUMED)))
            .alias(_deciding=deciding)
            .alias(_consumed_in_the_end=consumed_in_the_end)
            .filter(_consumed_in_the_end=True)
        )
    if value in ("dead_lettered", "rejected"):
        candidates = queryset.filter(message_id__in=_ids(Q(outcome=value)))
        return with_fate(candidates).filter(**{OUTCOME: value, STANDING: 1})
    if value == "replayed":
        candidates = queryset.filter(message_id__in=_ids(Q(outcome__in=DEATHS)))
        return with_fate(candidates).filter(**{f"{DEATH_COUNT}__gt": 0}).exclude(**{STANDING: 1})
    return queryset


def _ids(condition: Q) -> QuerySet[Receipt, Any]:
    """The message ids of the receipts matching ``condition`` (for ``__in``)."""
    return Receipt.objects.filter(condition).exclude(message_id="").values("message_id")


@dataclass(frozen=True)
class Fate:
    """What became of a message. ``key``: the badge's colour and the filter's word —
    ``pending`` / ``held`` / ``failed`` (not published), ``published`` (no receipt yet),
    ``acked``, ``duplicate``, ``retrying`` (the newest attempt failed and was requeued),
    ``dead_lettered``, ``rejected``."""

    key: str
    label: str
    #: The queue of the deciding receipt ("" without one).
    queue: str = ""
    attempt: int | None = None
    #: Failed attempts that were requeued (retries), over every queue.
    retries: int = 0
    #: Dead-lettered (or rejected) earlier, then consumed again.
    replayed: bool = False
    #: ``dead_lettered`` or ``rejected`` when the deciding receipt is that ("" if not).
    dead_letter_outcome: str = ""
    #: The list's short text (the whole label is the badge's title).
    short: str = ""

    @property
    def in_dead_letter_queue(self) -> bool:
        return self.key in DEATHS

    @property
    def dead_letter_queue(self) -> str:
        """``<queue>.dlq`` when the message sits there, else ""."""
        return dead_letter_queue_name(self.queue) if self.in_dead_letter_queue else ""

    @property
    def received(self) -> bool:
        """A consumer has seen it (there is a receipt)."""
        return bool(self.queue)


def fate_of(message: Message) -> Fate:
    """The fate of a message annotated by :func:`with_fate`."""
    outcome = getattr(message, OUTCOME)
    if outcome is None:
        if message.status != Message.Status.PUBLISHED:
            status = message.get_status_display()
            return Fate(message.status, status, short=message.status)
        return Fate("published", _("published, not consumed yet"), short=_("published"))
    attempt = getattr(message, ATTEMPT)
    retries = getattr(message, RETRIES) or 0
    replayed = bool(getattr(message, DEATH_COUNT)) and not getattr(message, STANDING)
    queue = getattr(message, QUEUE)
    label = _label(outcome, attempt, retries)
    if replayed:
        label = _("replayed, then %(fate)s") % {"fate": label}
    key = "retrying" if outcome == Outcome.REQUEUED else outcome
    died = outcome if outcome in DEATHS else ""
    return Fate(key, label, queue, attempt, retries, replayed, died, _short(key, retries))


def _short(key: str, retries: int) -> str:
    words = {
        "acked": _("acked"),
        "duplicate": _("duplicate"),
        "retrying": _("retrying"),
        "dead_lettered": _("dead-lettered"),
        "rejected": _("rejected"),
    }
    text = words.get(key, key)
    if retries and key in ("acked", "duplicate", "retrying"):
        text += " " + ngettext("(%(n)d retry)", "(%(n)d retries)", retries) % {"n": retries}
    return text


def _label(outcome: str, attempt: int | None, retries: int) -> str:
    attempt = attempt or 1
    if outcome == Outcome.DEAD_LETTERED:
        return ngettext(
            "dead-lettered after %(n)d attempt", "dead-lettered after %(n)d attempts", attempt
        ) % {"n": attempt}
    if outcome == Outcome.REJECTED:
        return _("rejected on attempt %(n)d") % {"n": attempt}
    if outcome == Outcome.REQUEUED:
        return ngettext(
            "retrying (%(n)d failed attempt so far)",
            "retrying (%(n)d failed attempts so far)",
            retries,
        ) % {"n": retries}
    consumed = (
        _("consumed (duplicate, handler skipped)")
        if outcome == Outcome.DUPLICATE
        else _("consumed (acked)")
    )
    if retries:
        consumed += " " + ngettext("after %(n)d retry", "after %(n)d retries", retries) % {
            "n": retries
        }
    return consumed


@dataclass(frozen=True)
class AfterDeath:
    """What a user did to a dead letter after its death receipt, from the admin log of
    the queue's row (the dead-letter browser's and the queue list's replays, the
    browser's discards): ``replayed`` or ``discarded``, by whom, when."""

    kind: str
    user: str
    time: Any


def after_death(message: Message, fate: Fate, queue: Queue) -> AfterDeath | None:
    """The newest replay (of this id, or of the whole DLQ) or discard (of this id) of
    ``queue``'s dead letters logged since the message's standing death receipt; None
    when there is none (two queries). Matches the log's English wording."""
    if not fate.dead_letter_outcome:
        return None
    died = (
        Receipt.objects.filter(
            message_id=message.message_id, queue_name=fate.queue, outcome__in=DEATHS
        )
        .order_by("-received_at", "-pk")
        .values_list("finished_at", flat=True)
        .first()
    )
    if died is None:
        return None
    mentions = Q(change_message__contains=message.message_id)
    whole_queue = Q(change_message__contains="(all)") | Q(change_message__contains="left there")
    entry = (
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Queue),
            object_id=str(queue.pk),
            action_time__gte=died,
        )
        .filter(
            (Q(change_message__startswith="Replayed") & (mentions | whole_queue))
            | (Q(change_message__startswith="Discarded") & mentions)
        )
        .select_related("user")
        .order_by("-action_time", "-pk")
        .first()
    )
    if entry is None:
        return None
    kind = "replayed" if entry.change_message.startswith("Replayed") else "discarded"
    return AfterDeath(kind, entry.user.get_username() if entry.user else "", entry.action_time)


def annotated(message: Message) -> Message:
    """``message`` with the fate annotations (one query), when it has none."""
    if hasattr(message, OUTCOME):
        return message
    values: dict[str, Any] = (
        with_fate(Message.objects.filter(pk=message.pk))
        .values(OUTCOME, QUEUE, ATTEMPT, STANDING, RETRIES, DEATH_COUNT)
        .first()
    ) or dict.fromkeys((OUTCOME, QUEUE, ATTEMPT, STANDING, RETRIES, DEATH_COUNT))
    for name, value in values.items():
        setattr(message, name, value)
    return message
