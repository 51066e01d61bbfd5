"""Django admin log entries (``django.contrib.admin.models.LogEntry``) for what the
console's actions did to the broker: who, what, how many.

- Queue actions (declare, purge, replay): one entry per queue row the action touched,
  e.g. "Purged 12 messages on the broker." or the broker's refusal.
- Message actions (publish, retry, republish, Save and publish): one entry per message
  that was published or tried, saying the action, this message's outcome and the run's
  total; republish also writes an addition entry per copy naming its original. Entries
  are written in bulk (``LogEntry.objects.log_actions`` / ``bulk_create``), so 10,000
  rows stay fast; rows that were skipped (wrong status) or busy (another publisher holds
  them) get none.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ..models import Message
from ..publishing import PublishResult
from ..publishing.outbox import chunks

#: Message rows loaded (without their bodies) per query while logging.
LOG_CHUNK = 2000

#: Fields ``str(Message)`` needs; the body is never loaded for a log entry.
_REPR_FIELDS = ("message_id", "exchange", "routing_key", "status", "queue", "queue__name")


def _user_id(user: Any) -> int | None:
    return getattr(user, "pk", None)


def log_same(user: Any, objects: Iterable[Model], text: str, flag: int = CHANGE) -> int:
    """One entry with ``text`` per object (one bulk insert); returns how many."""
    objects = list(objects)
    user_id = _user_id(user)
    if user_id is None or not objects:
        return 0
    LogEntry.objects.log_actions(user_id, objects, flag, change_message=text)
    return len(objects)


def log_each(user: Any, entries: Iterable[tuple[Model, str]], flag: int = CHANGE) -> int:
    """One entry per ``(object, text)`` pair, inserted in bulk; returns how many."""
    user_id = _user_id(user)
    if user_id is None:
        return 0
    rows = [
        LogEntry(
            user_id=user_id,
            content_type_id=ContentType.objects.get_for_model(obj, for_concrete_model=False).pk,
            object_id=str(obj.pk),
            object_repr=str(obj)[:200],
            action_flag=flag,
            change_message=text,
        )
        for obj, text in entries
    ]
    LogEntry.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def messages_by(field: str, values: Sequence[Any]) -> Iterator[Message]:
    """The Message rows whose ``field`` is in ``values``, without their bodies."""
    for chunk in chunks(list(values), LOG_CHUNK):
        yield from (
            Message.objects.filter(**{f"{field}__in": chunk})
            .select_related("queue")
            .only(*_REPR_FIELDS)
            .order_by("pk")
        )


def log_messages(user: Any, field: str, values: Sequence[Any], text: str) -> int:
    """One entry with ``text`` per message whose ``field`` is in ``values``."""
    return sum(
        log_same(user, messages_by(field, chunk), text) for chunk in chunks(values, LOG_CHUNK)
    )


def log_publish_result(user: Any, result: PublishResult, action: str) -> int:
    """One entry per message ``result`` published or failed to publish, by ``action``."""
    count = len(result.published)
    logged = log_messages(
        user,
        "message_id",
        result.published,
        ngettext(
            "Published to the broker (%(action)s; %(count)d message published in this run).",
            "Published to the broker (%(action)s; %(count)d messages published in this run).",
            count,
        )
        % {"action": action, "count": count},
    )
    retrying = set(result.retrying)
    by_text: dict[str, list[str]] = {}
    for message_id, error in result.failed.items():
        if message_id in retrying:
            text = _("Not published yet (%(action)s): %(error)s. Stays pending for the relay.")
        else:
            text = _("Not published (%(action)s), marked failed: %(error)s")
        by_text.setdefault(text % {"action": action, "error": error}, []).append(message_id)
    for text, ids in by_text.items():
        logged += log_messages(user, "message_id", ids, text)
    return logged


def log_handed_to_celery(user: Any, pks: Sequence[int], action: str) -> int:
    """One entry per message handed to Celery for publishing."""
    count = len(pks)
    text = ngettext(
        "Handed to Celery for publishing (%(action)s; %(count)d message).",
        "Handed to Celery for publishing (%(action)s; %(count)d messages).",
        count,
    ) % {"action": action, "count": count}
    return log_messages(user, "pk", pks, text)


def log_copies(user: Any, pairs: Sequence[tuple[str, int]], action: str) -> int:
    """An addition entry per copy ``(original message_id, copy pk)``, naming its original."""
    originals = {pk: original for original, pk in pairs}
    logged = 0
    for chunk in chunks([pk for _original, pk in pairs], LOG_CHUNK):
        copies = messages_by("pk", chunk)
        entries = (
            (
                copy,
                _("Added as a copy of message %(original)s (%(action)s).")
                % {"original": originals[copy.pk], "action": action},
            )
            for copy in copies
        )
        logged += log_each(user, entries, flag=ADDITION)
    return logged


# --------------------------------------------------------------------------- queues


def log_queues(user: Any, rows: Iterable[Any], texts: dict[str, str]) -> int:
    """One entry per queue row whose name is in ``texts`` (name → what happened)."""
    return log_each(user, [(row, texts[row.name]) for row in rows if row.name in texts])


def declare_texts(result: Any) -> dict[str, str]:
    """Log lines of a :class:`messaging.broker.queue_ops.DeclareResult`, per queue name."""
    texts = {name: _("Declared on the broker.") for name in result.declared}
    failed = _("Not declared on the broker: %(error)s")
    return _with_failures(texts, failed, result.failed, result.not_declared, result.error)


def purge_texts(result: Any) -> dict[str, str]:
    """Log lines of a :class:`messaging.admin.PurgeResult`, per queue name."""
    texts = {
        name: ngettext(
            "Purged %(count)d message on the broker.",
            "Purged %(count)d messages on the broker.",
            count,
        )
        % {"count": count}
        for name, count in result.purged.items()
    }
    for name in result.missing:
        texts[name] = _("Purge: the queue is not on the broker, nothing purged.")
    failed = _("Not purged: %(error)s")
    return _with_failures(texts, failed, result.failed, result.not_purged, result.error)


def _with_failures(
    texts: dict[str, str], text: str, refused: dict[str, Any], left: Iterable[str], error: Any
) -> dict[str, str]:
    """``texts`` plus ``text`` (with ``%(error)s``) for each name the broker refused, and
    for each name a connection error (``error``) left alone."""
    for name, exc in refused.items():
        texts[name] = text % {"error": exc}
    for name in left:
        texts[name] = text % {"error": error}
    return texts


def replay_texts(outcome: Any) -> dict[str, str]:
    """Log lines of a :class:`messaging.admin.ReplayOutcome`, per queue name (queues
    without an app-managed dead-letter queue were not touched and get none)."""
    texts = {
        name: ngettext(
            "Replayed %(count)d dead letter from the dead-letter queue (%(left)d left there).",
            "Replayed %(count)d dead letters from the dead-letter queue (%(left)d left there).",
            moved,
        )
        % {"count": moved, "left": left}
        for name, (moved, left) in outcome.replayed.items()
    }
    for name, exc in outcome.failed.items():
        texts[name] = _("Dead letters not replayed: %(error)s") % {"error": exc}
    return texts
