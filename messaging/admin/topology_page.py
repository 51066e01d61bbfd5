"""The topology page (``admin:messaging_topology``): every Exchange row → its bindings →
the queues, with each queue's live depth, drawn as server-rendered SVG; with
``?exchange=E&routing_key=K`` (and optional ``headers`` as JSON) it also shows which
queues a message published there reaches, computed from the rows with RabbitMQ's
matching rules (:mod:`messaging.amqp.routing`)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from ..amqp.declarations import BindingSpec
from ..amqp.routing import Route, edges_from_rows, route
from ..models import Binding, Exchange, Queue
from .overview import broker_snapshot
from .topology_drawing import Node, topology_svg


def topology_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """Needs view (or change) permission on exchanges."""
    if not model_admin.has_view_or_change_permission(request):
        raise PermissionDenied
    exchanges = list(Exchange.objects.order_by("name"))
    bindings = list(
        Binding.objects.select_related("source", "queue", "destination_exchange").order_by("id")
    )
    edges = edges_from_rows(bindings)
    queue_names = sorted(
        {b.queue.name for b in bindings if b.queue_id is not None}
        | set(Queue.objects.filter(bindings__isnull=True).values_list("name", flat=True)[:50])
    )
    snapshot = broker_snapshot(queue_names)
    query = _query(request)
    found = _route(query, exchanges, edges) if query["exchange"] else None
    svg = topology_svg(
        [Node(e.name, _exchange_detail(e)) for e in exchanges],
        [Node(name, _depth(snapshot.state(name))) for name in queue_names],
        edges,
        hit_edges=found.edges if found else (),
        hit_queues=found.queues if found else (),
        hit_exchanges=found.exchanges if found else (),
        title=_("Exchanges, bindings and queues"),
    )
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Messaging topology"),
        "opts": model_admin.opts,
        "app_label": model_admin.opts.app_label,
        "svg": svg,
        "exchanges": exchanges,
        "query": query,
        "route": found,
        "broker_error": snapshot.error,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/messaging/topology.html", context)


def _route(query: dict[str, Any], exchanges: list[Exchange], edges: list[BindingSpec]) -> Route:
    """Where a message to the chosen exchange and routing key goes, from the rows."""
    return route(
        query["exchange"],
        query["routing_key"],
        types={e.name: e.exchange_type for e in exchanges},
        edges=edges,
        headers=query["headers"],
        alternates={
            e.name: str(e.arguments["alternate-exchange"])
            for e in exchanges
            if (e.arguments or {}).get("alternate-exchange")
        },
    )


def _query(request: HttpRequest) -> dict[str, Any]:
    """exchange, routing_key and headers (a JSON object; anything else is an error line)."""
    text = request.GET.get("headers", "").strip()
    headers: Any = None
    error = ""
    if text:
        try:
            headers = json.loads(text)
        except ValueError as exc:
            error = _("Headers are not JSON: %(error)s") % {"error": exc}
        if headers is not None and not isinstance(headers, dict):
            headers, error = None, _("Headers must be a JSON object.")
    return {
        "exchange": request.GET.get("exchange", ""),
        "routing_key": request.GET.get("routing_key", ""),
        "headers_text": text,
        "headers": headers,
        "error": error,
    }


def _exchange_detail(exchange: Exchange) -> str:
    flags = [exchange.exchange_type]
    if not exchange.durable:
        flags.append(_("transient"))
    if exchange.internal:
        flags.append(_("internal"))
    return ", ".join(flags)


def _depth(state: Any) -> str:
    if isinstance(state, tuple):
        return _("%(ready)d ready, %(consumers)d consumers") % {
            "ready": state[0],
            "consumers": state[1],
        }
    if state is None:
        return _("not on broker")
    return str(state)
