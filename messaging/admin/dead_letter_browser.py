"""The dead-letter browser (``admin:messaging_queue_dead_letters``): per queue, the
messages in ``<queue>.dlq`` — a bounded look that puts them back — with message_id
(linked to its ``Message`` page when there is one), when it was dead-lettered, death
reason, attempts, last error and a safe body preview, and how many the DLQ holds in all;
replay the selected ones, replay all, or discard the selected ones (after a confirmation
page). Replays need ``messaging.publish_message``, discards ``messaging.purge_queue``;
each is written to the admin log (LogEntry) on the queue's row, with the user and the
message ids.

Every row can be selected. A row with a message_id is taken by its id. A row without
one is taken by its *delivery token*, ``<position>:<digest>``: the digest is a hash of
its body and properties (leaving out the headers the broker changes on each look, such
as a quorum queue's ``x-delivery-count``). Discarding it removes, among the first
``2 * PEEK_LIMIT`` messages of the DLQ, one without an id whose digest is that: the same
content, so never another message (two identical copies are the same message twice);
the position is only what the pages and the log name it by. Such a row can be
discarded, not replayed on its own (Replay all moves it).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ..amqp.headers import BROKER_DEATH_HEADER, DEATH_HEADER, DELIVERY_COUNT_HEADER
from ..broker.connecting import connection, open_channel
from ..broker.dead_letters import Peeked, discard_messages, peek_messages
from ..broker.errors import translating
from ..broker.queue_ops import inspect_queue
from ..broker.queues import inspect_queues
from ..consumer.replay import replay
from ..exceptions import BrokerError, InvalidQueueName
from ..models import Message, Queue
from . import audit, display

#: Messages looked at per page (each look marks a message redelivered).
PEEK_LIMIT = 100
#: Bytes of a body shown in the list.
PREVIEW_BYTES = 200
#: Most message ids named in one admin log entry.
LOGGED_IDS = 50
#: Headers left out of a delivery's digest: the broker changes them on each look.
UNSTABLE_HEADERS = (DELIVERY_COUNT_HEADER,)


@dataclass(frozen=True)
class DeadLetterRow:
    message_id: str
    reason: str
    attempts: int | None
    error: str
    preview: str
    size: int
    redelivered: bool
    #: When it was dead-lettered (the newest death entry's time), if the header says.
    dead_lettered_at: datetime | None = None
    #: 1 for the head of the DLQ.
    position: int = 0
    #: Hash of body and properties (see the module's docstring).
    digest: str = ""
    #: The ``Message`` row's page, when one has this message_id.
    message_url: str = ""

    @property
    def token(self) -> str:
        """What a row without a message_id is selected by: ``<position>:<digest>``."""
        return f"{self.position}:{self.digest}"

    @property
    def dead_lettered(self) -> str:
        return display.seconds_ago(self.dead_lettered_at)


def digest(peeked_properties: Any, body: bytes) -> str:
    """A hash of a message's body and properties, the same on every look."""
    fields = dict(vars(peeked_properties))
    headers = dict(fields.pop("headers", None) or {})
    for name in UNSTABLE_HEADERS:
        headers.pop(name, None)
    canonical = repr((sorted(fields.items()), sorted(headers.items(), key=lambda kv: kv[0])))
    return hashlib.sha256(canonical.encode() + b"\0" + (body or b"")).hexdigest()[:24]


def describe(peeked: Peeked) -> DeadLetterRow:
    """One dead letter as the browser shows it: the newest ``x-messaging-death`` entry,
    or the broker's ``x-death`` when the broker dead-lettered it."""
    headers = peeked.properties.headers or {}
    deaths = headers.get(DEATH_HEADER) or []
    last = deaths[-1] if deaths and isinstance(deaths[-1], dict) else {}
    reason, attempts, error = last.get("reason", ""), last.get("attempts"), last.get("error", "")
    died = last.get("time")
    if not last and headers.get(BROKER_DEATH_HEADER):
        first = headers[BROKER_DEATH_HEADER][0]
        reason, attempts = str(first.get("reason", "")), first.get("count")
        died = first.get("time")
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
        dead_lettered_at=display.from_epoch(died),
        digest=digest(peeked.properties, body),
    )


def _to_text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def dead_letter_rows(queue: Queue, limit: int | None = None) -> list[DeadLetterRow]:
    """The first ``limit`` messages of the queue's DLQ (put back, flagged redelivered),
    numbered from 1."""
    if not queue.dead_letter_queue:
        return []
    peeked = peek_messages(queue.dead_letter_queue, PEEK_LIMIT if limit is None else limit)
    return [replace(describe(p), position=n) for n, p in enumerate(peeked, start=1)]


def dead_letter_total(queue: Queue) -> int | None:
    """How many messages the queue's DLQ holds (ready ones), None when unknown."""
    if not queue.dead_letter_queue:
        return None
    (state,) = inspect_queues([queue.dead_letter_queue])
    return state[0] if isinstance(state, tuple) else 0 if state is None else None


def with_message_links(rows: list[DeadLetterRow], link: Any) -> list[DeadLetterRow]:
    """``rows`` with ``message_url`` set where a ``Message`` row has the id (one query);
    ``link(pk)`` makes the URL."""
    ids = {row.message_id for row in rows if row.message_id}
    if not ids:
        return rows
    pks = dict(Message.objects.filter(message_id__in=ids).values_list("message_id", "pk"))
    return [
        replace(row, message_url=link(pks[row.message_id])) if row.message_id in pks else row
        for row in rows
    ]


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


def discard_deliveries(
    queue: Queue, tokens: Sequence[str], user: Any = None, scan: int | None = None
) -> tuple[int, list[str]]:
    """Remove, for each delivery token (``<position>:<digest>``), one message without a
    message_id whose digest matches, among the first ``scan`` messages of the DLQ (twice
    :data:`PEEK_LIMIT` by default; the others are put back); logged. (discarded, tokens
    not found)."""
    assert queue.dead_letter_queue
    dlq = queue.dead_letter_queue
    wanted = Counter(token.partition(":")[2] for token in tokens)
    left = Counter(wanted)
    with connection() as conn, translating(queue=dlq):
        if inspect_queue(conn.channel(), dlq) is not None:
            channel = open_channel(conn)
            for _seen in range(2 * PEEK_LIMIT if scan is None else scan):
                if not +left:
                    break
                method, props, body = channel.basic_get(queue=dlq, auto_ack=False)
                if method is None:
                    break
                if not props.message_id and left[digest(props, body)] > 0:
                    left[digest(props, body)] -= 1
                    channel.basic_ack(delivery_tag=method.delivery_tag)
            channel.close()  # what was looked at and not taken goes back
    missing: list[str] = []
    for token in tokens:
        key = token.partition(":")[2]
        if left[key] > 0:
            missing.append(token)
            left[key] -= 1
    discarded = len(tokens) - len(missing)
    positions = ", ".join(f"#{t.partition(':')[0]}" for t in tokens[:LOGGED_IDS])
    audit.log_same(
        user,
        [queue],
        ngettext(
            "Discarded %(count)d dead letter without a message id from the dead-letter "
            "queue (%(which)s as listed).",
            "Discarded %(count)d dead letters without a message id from the dead-letter "
            "queue (%(which)s as listed).",
            discarded,
        )
        % {"count": discarded, "which": positions},
    )
    return discarded, missing


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
    """The browser's buttons: replay (selected or all) and discard (selected, confirmed
    first). ``None`` when there is nothing to do but show the browser again."""
    action = request.POST.get("action", "")
    ids = [i for i in request.POST.getlist("message_id") if i]
    tokens = [t for t in request.POST.getlist("delivery") if ":" in t]
    try:
        if action in ("replay_selected", "replay_all"):
            return _replay(model_admin, request, queue, action, ids, tokens)
        if action == "discard_selected":
            return _discard(model_admin, request, queue, ids, tokens)
        return None
    except (BrokerError, InvalidQueueName) as exc:
        model_admin.message_user(
            request, _("The broker refused: %(error)s") % {"error": exc}, messages.ERROR
        )
    return HttpResponseRedirect(_next(request))


def _replay(
    model_admin: Any,
    request: HttpRequest,
    queue: Queue,
    action: str,
    ids: list[str],
    tokens: list[str],
) -> HttpResponse | None:
    """Replay the selected dead letters (by message id), or all of them."""
    if not model_admin.has_publish_permission(request):
        raise PermissionDenied
    if action == "replay_selected" and tokens:
        model_admin.message_user(
            request,
            ngettext(
                "%(count)d selected message has no message id: it cannot be "
                "replayed on its own (Replay all moves it, or discard it).",
                "%(count)d selected messages have no message id: they cannot be "
                "replayed on their own (Replay all moves them, or discard them).",
                len(tokens),
            )
            % {"count": len(tokens)},
            messages.WARNING,
        )
    if action == "replay_selected" and not ids:
        if not tokens:
            model_admin.message_user(request, _("No messages selected."), messages.WARNING)
        return None
    moved, missing = replay_dead_letters(
        queue, ids if action == "replay_selected" else None, request.user
    )
    _report(model_admin, request, _("replayed"), moved, missing)
    return HttpResponseRedirect(_next(request))


def _discard(
    model_admin: Any, request: HttpRequest, queue: Queue, ids: list[str], tokens: list[str]
) -> HttpResponse | None:
    """Discard the selected dead letters (by message id, or by delivery for those without
    one), once the user has confirmed."""
    if not model_admin.has_purge_permission(request):
        raise PermissionDenied
    if not ids and not tokens:
        model_admin.message_user(request, _("No messages selected."), messages.WARNING)
        return None
    if request.POST.get("post") != "yes":
        return _confirm(model_admin, request, queue, ids, tokens)
    discarded, missing = 0, list[str]()
    if ids:
        discarded, missing = discard_dead_letters(queue, ids, request.user)
    if tokens:
        more, gone = discard_deliveries(queue, tokens, request.user)
        discarded += more
        missing += [_("#%(position)s (no id)") % {"position": t.partition(":")[0]}
                    for t in gone]  # fmt: skip
    _report(model_admin, request, _("discarded"), discarded, missing)
    return HttpResponseRedirect(_next(request))


def _next(request: HttpRequest) -> str:
    """Where to go after a POST: the ``next`` field when it is a page of this site (the
    message page's Replay button comes back to it), else the browser again."""
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and safe else request.path


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


def _confirm(
    model_admin: Any, request: HttpRequest, queue: Queue, ids: list[str], tokens: list[str]
) -> HttpResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Discard dead letters?"),
        "opts": model_admin.opts,
        "queue": queue,
        "message_ids": ids,
        "deliveries": [(t, t.partition(":")[0]) for t in tokens],
        "selected": len(ids) + len(tokens),
        "original": queue,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(
        request, "admin/messaging/queue/dead_letters_confirmation.html", context
    )


def _render(model_admin: Any, request: HttpRequest, queue: Queue) -> HttpResponse:
    rows: list[DeadLetterRow] = []
    error = total = None
    try:
        total = dead_letter_total(queue)
        rows = dead_letter_rows(queue)
    except (BrokerError, InvalidQueueName) as exc:
        error = exc
    rows = with_message_links(rows, partial(_message_url, model_admin))
    wanted = request.GET.get("message_id", "")
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Dead letters of %(name)s") % {"name": queue.name},
        "opts": model_admin.opts,
        "queue": queue,
        "original": queue,
        "rows": rows,
        "total": max(total, len(rows)) if total is not None else None,
        "wanted": wanted,
        "wanted_shown": any(row.message_id == wanted for row in rows),
        "limit": PEEK_LIMIT,
        "broker_error": error,
        "can_replay": model_admin.has_publish_permission(request),
        "can_discard": model_admin.has_purge_permission(request),
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/messaging/queue/dead_letters.html", context)


def _message_url(model_admin: Any, pk: int) -> str:
    return reverse(
        f"admin:{Message._meta.app_label}_{Message._meta.model_name}_change",
        args=[pk],
        current_app=model_admin.admin_site.name,
    )


def _change_url(model_admin: Any, queue: Queue) -> str:
    opts = model_admin.opts
    return reverse(
        f"admin:{opts.app_label}_{opts.model_name}_change",
        args=[queue.pk],
        current_app=model_admin.admin_site.name,
    )
