"""The failure triage page (``admin:messaging_failures``,
``/admin/messaging/receipt/failures/``): what is failing, where, since when, how often
and what became of the messages (:func:`messaging.admin.failure_groups.build_triage`),
filtered by queue, outcome and time window (``?queue=…&outcome=…&window=…``). Each group
links to its receipts: the receipt list filtered by queue, outcome, cause and time, each
filter shown in the list's sidebar (:mod:`.receipt_admin`)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from ..db.failure_counts import FATE_OUTCOMES
from ..db.raw_sql import FAILED_OUTCOMES
from ..models import Queue, Receipt
from . import display
from .failure_groups import DEFAULT_WINDOW, WINDOW_DAYS, WINDOWS, FailureGroup, build_triage

#: Lookups older group links used on the receipt list (see ReceiptAdmin.lookup_allowed);
#: the links now use the list's filters (:data:`LINK_FILTERS`).
LINK_LOOKUPS = ("error__startswith", "outcome__in", "received_at__gte")
#: The receipt list's filter parameters a group link sets: queue, outcome, cause, since.
QUEUE_PARAM, OUTCOME_PARAM, CAUSE_PARAM, SINCE_PARAM, FATE_PARAM = (
    "queue_name",
    "outcome__exact",
    "cause",
    "received_at__gte",
    "fate",
)
#: The outcome filter's value for all three failed outcomes.
FAILED = "failed"
#: Where a queue name may break: after these characters (never inside a word).
_BREAKS = re.compile(r"(?<=[._:/-])")


@dataclass
class GroupRow:
    """A group and its links and display values, as the template shows them."""

    group: FailureGroup
    link: str
    #: fate (FATE_OUTCOMES' keys) → the group's receipts whose message met it.
    fate_links: dict[str, str]
    queue: SafeString
    first_seen: SafeString
    last_seen: SafeString


def breakable(name: str) -> SafeString:
    """``name`` escaped, with a ``<wbr>`` after each ``.``, ``_``, ``:``, ``/`` and ``-``:
    a long queue name wraps between its parts, never inside one."""
    return format_html_join(SafeString("<wbr>"), "{}", ((part,) for part in _BREAKS.split(name)))


def unbroken_words(text: str) -> SafeString:
    """``text`` escaped, each of its words in a ``<span class="word">`` (no break inside,
    so ``2026-12-07 19:17:13`` wraps only at its space)."""
    return format_html_join(" ", '<span class="word">{}</span>', ((w,) for w in text.split()))


def receipts_url(
    model_admin: admin.ModelAdmin,
    group: FailureGroup,
    since: Any,
    outcome: str | None = None,
    fate: str | None = None,
) -> str:
    """The receipt list filtered to one group's receipts: its queue, the ``outcome``
    (all failed ones when None), its cause and the window's start; with ``fate``, only
    those whose message met that fate (recovered, dead_lettered, rejected, retrying)."""
    opts = model_admin.opts
    base = reverse(
        f"admin:{opts.app_label}_{opts.model_name}_changelist",
        current_app=model_admin.admin_site.name,
    )
    query = {
        QUEUE_PARAM: group.queue,
        OUTCOME_PARAM: outcome or FAILED,
        CAUSE_PARAM: group.cause,
        SINCE_PARAM: since.isoformat(),
    }
    if fate:
        query[FATE_PARAM] = fate
    return f"{base}?{urlencode(query)}"


def chosen(request: HttpRequest) -> tuple[str | None, str | None, str]:
    """The page's filters from the query string: queue, outcome, window (an unknown
    outcome or window is ignored)."""
    queue = request.GET.get("queue") or None
    outcome = request.GET.get("outcome") or None
    if outcome not in FAILED_OUTCOMES:
        outcome = None
    window = request.GET.get("window") or DEFAULT_WINDOW
    if window not in {key for key, _length, _label in WINDOWS}:
        window = DEFAULT_WINDOW
    return queue, outcome, window


def triage_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """Needs view permission on receipts."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    started = time.perf_counter()
    queue, outcome, window = chosen(request)
    triage = build_triage(queue=queue, outcome=outcome, window=window)
    rows = []
    for group in triage.groups:
        rows.append(
            GroupRow(
                group,
                receipts_url(model_admin, group, triage.since, outcome),
                {
                    fate: receipts_url(model_admin, group, triage.since, outcome, fate)
                    for fate in FATE_OUTCOMES
                },
                breakable(group.queue),
                unbroken_words(display.seconds(group.first_seen)),
                unbroken_words(display.seconds_ago(group.last_seen, triage.now)),
            )
        )
    # The Queue table's names and those failing here (a server-named queue has no row).
    queues = sorted(
        {
            *Queue.objects.values_list("name", flat=True),
            *(group.queue for group in triage.groups),
            *([queue] if queue else []),
        }
    )
    outcomes = [(str(o), Receipt.Outcome(o).label) for o in FAILED_OUTCOMES]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Failures"),
        "opts": model_admin.opts,
        "triage": triage,
        "rows": rows,
        "window_days": WINDOW_DAYS,
        "window_label": next(label for key, _length, label in WINDOWS if key == window),
        "queues": queues,
        "outcomes": outcomes,
        "windows": [(key, label) for key, _length, label in WINDOWS],
        "filtered": bool(queue or outcome or window != DEFAULT_WINDOW),
        "seconds": time.perf_counter() - started,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/messaging/failures.html", context)
