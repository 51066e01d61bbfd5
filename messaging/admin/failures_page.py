"""The failure triage page (``admin:messaging_failures``,
``/admin/messaging/receipt/failures/``): what is failing, where, since when, how often
(:func:`messaging.admin.failure_groups.build_triage`); each group links to its receipts."""

from __future__ import annotations

import time
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from ..db.raw_sql import FAILED_OUTCOMES
from .failure_groups import WINDOW_DAYS, FailureGroup, build_triage

#: Lookups the group links use on the receipt list (see ReceiptAdmin.lookup_allowed).
LINK_LOOKUPS = ("error__startswith", "outcome__in", "received_at__gte")


def receipts_url(model_admin: admin.ModelAdmin, group: FailureGroup, since: Any) -> str:
    """The receipt list filtered to one group's receipts."""
    opts = model_admin.opts
    base = reverse(
        f"admin:{opts.app_label}_{opts.model_name}_changelist",
        current_app=model_admin.admin_site.name,
    )
    query = {
        "queue_name": group.queue,
        "outcome__in": ",".join(str(o) for o in FAILED_OUTCOMES),
        "received_at__gte": since.isoformat(),
    }
    if group.kind:
        query["error__startswith"] = group.kind
    return f"{base}?{urlencode(query)}"


def triage_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """Needs view permission on receipts."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    started = time.perf_counter()
    triage = build_triage()
    rows = [(g, receipts_url(model_admin, g, triage.since)) for g in triage.groups]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Failures"),
        "opts": model_admin.opts,
        "triage": triage,
        "rows": rows,
        "window_days": WINDOW_DAYS,
        "seconds": time.perf_counter() - started,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/messaging/failures.html", context)
