"""The queue admin's actions: declare on the broker, purge, replay dead letters.

The logic lives in plain functions that work without a request
(:func:`messaging.broker.declare_queues`, :func:`purge_selected`,
:func:`replay_selected`); :class:`QueueActions` is the ``QueueAdmin`` mixin that runs
them for the selected rows, logs them (:mod:`.audit`) and tells the user.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, ngettext_lazy

from .. import broker
from ..broker.queue_ops import queue_name_problem
from ..broker.queues import purge_queues
from ..consumer.replay import replay
from ..exceptions import (
    BrokerError,
    InvalidQueueName,
    MessageRefused,
    NotFound,
    QueueMismatch,
)
from ..models import Queue
from . import audit
from .broker_state import broker_snapshot
from .feedback import tell_not_reached, tell_refused
from .mixin_types import QueueAdminMixin

# --------------------------------------------------------------------------- plain functions


@dataclass
class PurgeResult:
    """Messages dropped per queue, queues the broker does not have, other refusals, and
    a connection error that stopped the run (with the names it left alone)."""

    purged: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    failed: dict[str, BrokerError] = field(default_factory=dict)
    error: BrokerError | None = None
    not_purged: list[str] = field(default_factory=list)


def purge_selected(queues: Iterable[Queue | str], urls: Iterable[str] | None = None) -> PurgeResult:
    """Purge each queue on the broker, all at once over one connection, within
    CONNECTION_TIMEOUT; a name the validators refuse is not sent (failed with the
    reason), a queue the broker does not answer for fails alone. Never raises a broker
    error."""
    names = []
    result = PurgeResult()
    for name in (q if isinstance(q, str) else q.name for q in queues):
        problem = queue_name_problem(name)
        if problem is None:
            names.append(name)
        else:
            result.failed[name] = MessageRefused(f"invalid queue name {name!r}: {problem}")
    try:
        answers = purge_queues(names, urls)
    except BrokerError as exc:  # could not connect at all
        result.error = exc
        result.not_purged = names
        return result
    for name, answer in zip(names, answers, strict=True):
        if isinstance(answer, NotFound):
            result.missing.append(name)
        elif isinstance(answer, BrokerError):
            result.failed[name] = answer
        else:
            result.purged[name] = answer
    return result


@dataclass
class ReplayOutcome:
    """What :func:`replay_selected` did per queue."""

    replayed: dict[str, tuple[int, int]] = field(default_factory=dict)  # name: (moved, left)
    skipped: list[str] = field(default_factory=list)  # no app-managed dead-letter queue
    failed: dict[str, BrokerError | InvalidQueueName] = field(default_factory=dict)


def replay_selected(queues: Iterable[Queue], limit: int | None = None) -> ReplayOutcome:
    """Move the dead letters of each queue (``<name>.dlq``) back to it with
    :func:`messaging.consumer.replay.replay`. Never raises a broker error."""
    outcome = ReplayOutcome()
    for queue in queues:
        if queue.dead_letter_queue is None:
            outcome.skipped.append(queue.name)
            continue
        try:
            result = replay(queue.name, limit=limit)
        except (BrokerError, InvalidQueueName) as exc:  # an old row with an invalid name
            outcome.failed[queue.name] = exc
        else:
            outcome.replayed[queue.name] = (result.moved, result.remaining)
    return outcome


# --------------------------------------------------------------------------- admin mixin

#: What a run the broker could not be reached for left undone.
NOT_DECLARED = ngettext_lazy(
    "%(count)d queue not declared: %(error)s", "%(count)d queues not declared: %(error)s", "count"
)
NOT_PURGED = ngettext_lazy(
    "%(count)d queue not purged: %(error)s", "%(count)d queues not purged: %(error)s", "count"
)


class QueueActions(QueueAdminMixin):
    """Mixin for the ``Queue`` ``ModelAdmin``: the declare / purge / replay actions."""

    @admin.action(description=gettext_lazy("Declare on broker"), permissions=["change"])
    def declare_on_broker(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        rows = list(queryset)
        result = broker.declare_queues(rows)
        audit.log_queues(request.user, rows, audit.declare_texts(result))
        if result.declared:
            count = len(result.declared)
            self.message_user(
                request,
                ngettext(
                    "%(count)d queue declared on the broker.",
                    "%(count)d queues declared on the broker.",
                    count,
                )
                % {"count": count},
                messages.SUCCESS,
            )
        for name, exc in result.failed.items():
            if isinstance(exc, QueueMismatch):
                text = _(
                    "Queue “%(name)s” differs on the broker: %(error)s. Nothing was changed; "
                    "make the row match the broker, or delete the broker queue and declare again."
                )
            else:
                text = _("Queue “%(name)s” was not declared: %(error)s")
            self.message_user(request, text % {"name": name, "error": exc}, messages.ERROR)
        tell_not_reached(self, request, NOT_DECLARED, result.not_declared, result.error)

    @admin.action(description=gettext_lazy("Purge on broker…"), permissions=["purge"])
    def purge_queues(self, request: HttpRequest, queryset: QuerySet[Queue]) -> Any:
        rows = list(queryset)
        if request.POST.get("post") == "yes":
            self._purge(request, rows)
            return None
        snapshot = broker_snapshot([row.name for row in rows])
        queues = [(row, snapshot.state(row.name)) for row in rows]
        total = sum(state[0] for _row, state in queues if isinstance(state, tuple))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Purge queues on the broker?"),
            "opts": self.opts,
            "queues": queues,
            "total": total,
            "broker_error": snapshot.error,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "action": "purge_queues",
            "select_across": request.POST.get("select_across", "0"),
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/messaging/queue/purge_confirmation.html", context)

    def _purge(self, request: HttpRequest, rows: list[Queue]) -> None:
        result = purge_selected(rows)
        audit.log_queues(request.user, rows, audit.purge_texts(result))
        for name, count in result.purged.items():
            self.message_user(
                request,
                ngettext(
                    "Queue “%(name)s”: %(count)d message dropped.",
                    "Queue “%(name)s”: %(count)d messages dropped.",
                    count,
                )
                % {"name": name, "count": count},
                messages.SUCCESS,
            )
        for name in result.missing:
            self.message_user(
                request,
                _("Queue “%(name)s” is not on the broker: nothing to purge.") % {"name": name},
                messages.WARNING,
            )
        tell_refused(self, request, result.failed, _("Queue “%(name)s” was not purged: %(error)s"))
        tell_not_reached(self, request, NOT_PURGED, result.not_purged, result.error)

    @admin.action(
        description=gettext_lazy("Replay dead letters (move <queue>.dlq back)"),
        permissions=["publish"],
    )
    def replay_dead_letters(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        rows = list(queryset)
        outcome = replay_selected(rows)
        audit.log_queues(request.user, rows, audit.replay_texts(outcome))
        for name, (moved, left) in outcome.replayed.items():
            text = ngettext(
                "Queue “%(name)s”: %(count)d dead letter moved back",
                "Queue “%(name)s”: %(count)d dead letters moved back",
                moved,
            ) % {"name": name, "count": moved}
            if left:
                text += " " + _("(%(left)d still in the dead-letter queue)") % {"left": left}
            self.message_user(request, text + ".", messages.SUCCESS)
        for name in outcome.skipped:
            self.message_user(
                request,
                _(
                    "Queue “%(name)s” has no dead-letter queue managed by this app "
                    "(dead-lettering off, or a dead-letter exchange of its own): skipped."
                )
                % {"name": name},
                messages.WARNING,
            )
        for name, exc in outcome.failed.items():
            self.message_user(
                request,
                _("Dead letters of “%(name)s” not replayed: %(error)s")
                % {"name": name, "error": exc},
                messages.ERROR,
            )
