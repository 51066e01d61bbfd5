"""The dead-letter browser (``admin:messaging_queue_dead_letters``): per queue, the
messages in ``<queue>.dlq`` — a bounded look that puts them back — with message_id,
death reason, attempts, last error and a safe body preview; replay the selected ones,
replay all, or discard the selected ones (after a confirmation page). Replays need
``messaging.publish_message``, discards ``messaging.purge_queue``; each is written to
the admin log (LogEntry) on the queue's row, with the user and the message ids.

The logic is in plain functions (:func:`dead_letter_rows`, :func:`replay_dead_letters`,
:func:`discard_dead_letters`) that work without a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ..amqp.headers import DEATH_HEADER
from ..broker.dead_letters import Peeked, discard_messages, peek_messages
from ..consumer.replay import replay
from ..exceptions import BrokerError, InvalidQueueName
from ..models import Queue
from . import audit

#: Messages looked at per page (each look marks a message redelivered).
PEEK_LIMIT = 100
#: Bytes of a body shown in the list.
PREVIEW_BYTES = 200
#: Most message ids named in one admin log entry.
LOGGED_IDS = 50


@dataclass(frozen=True)
class DeadLetterRow:
    message_id: str
    reason: str
    attempts: int | None
    error: str
    preview: str
    size: int
    redelivered: bool


def describe(peeked: Peeked) -> DeadLetterRow:
    """One dead letter as the browser shows it: the newest ``x-messaging-death`` entry,
    or the broker's ``x-death`` when the broker dead-lettered it."""
    headers = peeked.properties.headers or {}
    deaths = headers.get(DEATH_HEADER) or []
    last = deaths[-1] if deaths and isinstance(deaths[-1], dict) else {}
    reason, attempts, error = last.get("reason", ""), last.get("attempts"), last.get("error", "")
    if not last and headers.get("x-death"):
        first = headers["x-death"][0]
        reason, attempts = str(first.get("reason", "")), first.get("count")
    body = peeked.body or b""
    preview = body[:PREVIEW_BYTES].decode("utf-8", errors="replace")
    if len(body) > PREVIEW_BYTES:
        preview += f"… ({len(body)} bytes)"
    return DeadLetterRow(
        message_id=peeked.properties.message_id or "",
        reason=_to_text(reason),
        attempts=attempts if isinstance(attempts, int) else None,
        error=_to_text(error),
        preview=preview,
        size=len(body),
        redelivered=peeked.redelivered,
    )


def _to_text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def dead_letter_rows(queue: Queue, limit: int = PEEK_LIMIT) -> list[DeadLetterRow]:
    """The first ``limit`` messages of the queue's DLQ (put back, flagged redelivered)."""
    if not queue.dead_letter_queue:
        return []
    return [describe(p) for p in peek_messages(queue.dead_letter_queue, limit)]


def replay_dead_letters(
    queue: Queue, message_ids: Sequence[str] | None, user: Any = None
) -> tuple[int, list[str]]:
    """Replay the given ids (all when None) from the DLQ; logged. (moved, not found)."""
    result = replay(queue.name, message_ids=list(message_ids) if message_ids else None)
    which = _ids(message_ids) if message_ids else _("all")
    audit.log_same(
        user,
        [queue],
        ngettext(
            "Replayed %(count)d dead letter from the dead-letter queue (%(which)s).",
            "Replayed %(count)d dead letters from the dead-letter queue (%(which)s).",
            result.moved,
        )
        % {"count": result.moved, "which": which},
    )
    return result.moved, result.not_found


def discard_dead_letters(
    queue: Queue, message_ids: Sequence[str], user: Any = None
) -> tuple[int, list[str]]:
    """Remove the given ids from the DLQ for good; logged. (discarded, not found)."""
    assert queue.dead_letter_queue
    result = discard_messages(queue.dead_letter_queue, list(message_ids))
    audit.log_same(
        user,
        [queue],
        ngettext(
            "Discarded %(count)d dead letter from the dead-letter queue (%(which)s).",
            "Discarded %(count)d dead letters from the dead-letter queue (%(which)s).",
            result.moved,
        )
        % {"count": result.moved, "which": _ids(message_ids)},
    )
    return result.moved, result.not_found


def _ids(message_ids: Sequence[str]) -> str:
    shown = ", ".join(message_ids[:LOGGED_IDS])
    more = len(message_ids) - LOGGED_IDS
    return shown + (f" and {more} more" if more > 0 else "")


# --------------------------------------------------------------------------- the view


def dead_letters_view(
    model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    """GET: the browser; POST: replay selected / replay all / discard selected."""
    if not model_admin.has_view_or_change_permission(request):
        raise PermissionDenied
    queue = model_admin.get_object(request, unquote(object_id))
    if queue is None:
        raise Http404(_("No queue with id “%(id)s”.") % {"id": object_id})
    if not queue.dead_letter_queue:
        model_admin.message_user(
            request, _("This queue has no dead-letter queue the app manages."), messages.WARNING
        )
        return HttpResponseRedirect(_change_url(model_admin, queue))
    if request.method == "POST":
        done = _post(model_admin, request, queue)
        if done is not None:
            return done
    return _render(model_admin, request, queue)


def _post(model_admin: Any, request: HttpRequest, queue: Queue) -> HttpResponse | None:
    action = request.POST.get("action", "")
    ids = [i for i in request.POST.getlist("message_id") if i]
    try:
        if action in ("replay_selected", "replay_all"):
            if not model_admin.has_publish_permission(request):
                raise PermissionDenied
            if action == "replay_selected" and not ids:
                model_admin.message_user(request, _("No messages selected."), messages.WARNING)
                return None
            moved, missing = replay_dead_letters(
                queue, ids if action == "replay_selected" else None, request.user
            )
            _report(model_admin, request, _("replayed"), moved, missing)
        elif action == "discard_selected":
            if not model_admin.has_purge_permission(request):
                raise PermissionDenied
            if not ids:
                model_admin.message_user(request, _("No messages selected."), messages.WARNING)
                return None
            if request.POST.get("post") != "yes":
                return _confirm(model_admin, request, queue, ids)
            discarded, missing = discard_dead_letters(queue, ids, request.user)
            _report(model_admin, request, _("discarded"), discarded, missing)
        else:
            return None
    except (BrokerError, InvalidQueueName) as exc:
        model_admin.message_user(
            request, _("The broker refused: %(error)s") % {"error": exc}, messages.ERROR
        )
    return HttpResponseRedirect(request.path)


def _report(
    model_admin: Any, request: HttpRequest, done: str, count: int, missing: list[str]
) -> None:
    model_admin.message_user(
        request,
        ngettext("%(count)d message %(done)s.", "%(count)d messages %(done)s.", count)
        % {"count": count, "done": done},
        messages.SUCCESS,
    )
    if missing:
        model_admin.message_user(
            request,
            _("Not in the dead-letter queue any more: %(ids)s") % {"ids": ", ".join(missing)},
            messages.WARNING,
        )


def _confirm(model_admin: Any, request: HttpRequest, queue: Queue, ids: list[str]) -> HttpResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Discard dead letters?"),
        "opts": model_admin.opts,
        "queue": queue,
        "message_ids": ids,
        "original": queue,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(
        request, "admin/messaging/queue/dead_letters_confirmation.html", context
    )


def _render(model_admin: Any, request: HttpRequest, queue: Queue) -> HttpResponse:
    rows: list[DeadLetterRow] = []
    error = None
    try:
        rows = dead_letter_rows(queue)
    except (BrokerError, InvalidQueueName) as exc:
        error = exc
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Dead letters of %(name)s") % {"name": queue.name},
        "opts": model_admin.opts,
        "queue": queue,
        "original": queue,
        "rows": rows,
        "limit": PEEK_LIMIT,
        "broker_error": error,
        "can_replay": model_admin.has_publish_permission(request),
        "can_discard": model_admin.has_purge_permission(request),
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/messaging/queue/dead_letters.html", context)


def _change_url(model_admin: Any, queue: Queue) -> str:
    opts = model_admin.opts
    return reverse(
        f"admin:{opts.app_label}_{opts.model_name}_change",
        args=[queue.pk],
        current_app=model_admin.admin_site.name,
    )
