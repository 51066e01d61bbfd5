"""Admin views of their own.

- The overview page (``admin:messaging_overview``): per queue, depth, consumers, unacked
  and dead letters now, messages published and receipts per minute over the last hour,
  failure rate, and publish→receipt latency, with small server-rendered SVG charts.
- A message body as a download (``admin:messaging_message_body``).
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header, urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from . import charts, display
from .overview import (
    LATENCY_SAMPLE,
    WINDOW_MINUTES,
    Overview,
    QueueStats,
    build_overview,
    duration,
)


def overview_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """The overview page; needs view (or change) permission on queues."""
    if not model_admin.has_view_or_change_permission(request):
        raise PermissionDenied
    overview = build_overview()
    labels = [timezone.localtime(m).strftime("%H:%M") for m in overview.minute_starts]
    latency_max = max((s.latency_p95 or 0 for s in overview.queues), default=0)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Messaging overview"),
        "opts": model_admin.opts,
        "app_label": model_admin.opts.app_label,
        "overview": overview,
        "rows": [
            _queue_row(model_admin, stats, overview, labels, latency_max)
            for stats in overview.queues
        ],
        "backlog": overview.backlog,
        "backlog_age": duration(overview.backlog.age) if overview.backlog else "–",
        "last_relay": display.seconds_ago(overview.backlog.last_relay) if overview.backlog else "",
        "pending_url": reverse(
            "admin:messaging_message_changelist", current_app=model_admin.admin_site.name
        )
        + "?status__exact=pending",
        "unconsumed": [s for s in overview.queues if s.unconsumed],
        "total_chart": _total_chart(overview, labels),
        "totals": {name: overview.total_now(name) for name in ("ready", "unacked", "dead_letters")},
        "window_minutes": WINDOW_MINUTES,
        "latency_sample": LATENCY_SAMPLE,
        "first_label": labels[0] if labels else "",
        "last_label": labels[-1] if labels else "",
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/messaging/overview.html", context)


def _queue_row(
    model_admin: admin.ModelAdmin,
    stats: QueueStats,
    overview: Overview,
    labels: list[str],
    latency_max: float,
) -> dict[str, Any]:
    """One queue's row of the overview table: its links, charts and per-minute rates."""
    site = model_admin.admin_site.name
    receipts = reverse("admin:messaging_receipt_changelist", current_app=site)
    receipts = f"{receipts}?{urlencode({'queue_name': stats.name})}"
    if stats.queue_id is not None:
        url = reverse("admin:messaging_queue_change", args=[stats.queue_id], current_app=site)
        dlq_url = reverse(
            "admin:messaging_queue_dead_letters", args=[stats.queue_id], current_app=site
        )
    else:  # receipts of a queue without a row: its receipts are what there is
        url, dlq_url = receipts, ""
    return {
        "stats": stats,
        "url": url,
        "dlq_url": dlq_url,
        "receipts_url": receipts,
        "latency_median": duration(stats.latency_median),
        "latency_p95": duration(stats.latency_p95),
        "activity": charts.activity_chart(
            received=stats.received,
            failed=stats.failed,
            published=stats.published,
            labels=labels,
            title=_("%(name)s: receipts (bars, failures in red) and published (line) per minute")
            % {"name": stats.name},
        ),
        "latency": charts.latency_chart(
            stats.latency_median, stats.latency_p95, scale_max=latency_max
        ),
        "failure_percent": (
            None if stats.failure_rate is None else round(stats.failure_rate * 100, 1)
        ),
        "published_per_minute": round(stats.published_total / overview.minutes, 2),
        "received_per_minute": round(stats.received_total / overview.minutes, 2),
    }


def _total_chart(overview: Overview, labels: list[str]) -> SafeString:
    received, published = overview.total("received"), overview.total("published")
    chart = charts.activity_chart(
        received=received,
        failed=overview.total("failed"),
        published=published,
        labels=labels,
        width=720,
        height=100,
        title=_("All queues: receipts (bars, failures in red) and published (line) per minute"),
        values=True,
    )
    return charts.with_axes(
        chart,
        peak=charts.peak_of(received, published),
        labels=labels,
        width=720,
        height=100,
        unit=_("per min"),
    )


def body_download_view(
    model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    """The whole body of one message as an attachment (``application/octet-stream``,
    never rendered by the browser); needs view (or change) permission on messages."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    obj = model_admin.get_object(request, unquote(object_id))
    if obj is None:
        raise Http404(_("No message with id “%(id)s”.") % {"id": object_id})
    if not model_admin.has_view_permission(request, obj):
        raise PermissionDenied
    body = type(obj)._default_manager.filter(pk=obj.pk).values_list("body", flat=True).get()
    response = HttpResponse(bytes(body or b""), content_type="application/octet-stream")
    response["Content-Disposition"] = content_disposition_header(
        True, f"message-{_safe_name(obj.message_id)}.bin"
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _safe_name(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", value)[:100] or "body"
