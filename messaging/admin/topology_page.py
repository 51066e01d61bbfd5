"""The topology page (``admin:messaging_topology``): every Exchange row → its bindings →
the queues, with each queue's live depth, drawn as server-rendered SVG; with
``?exchange=E&routing_key=K`` (and optional ``headers`` as JSON) it also shows which
queues a message published there reaches, computed from the rows with RabbitMQ's
matching rules (:mod:`messaging.amqp.routing`).

What the app declares itself is drawn too, dashed: the ``messaging.dlx`` exchange and
its binding to each drawn queue's ``<name>.dlq``, and the retry delay queues
(``<name>.delay.<ms>``) the broker has. Every node links to its admin page (a dead-letter
queue to its queue's dead-letter browser, a delay queue to its queue)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from .. import conf
from ..amqp.declarations import BindingSpec, ExchangeSpec
from ..amqp.retry_delays import delay_queue_name, delay_steps
from ..amqp.routing import Route, edges_from_rows, route
from ..models import DEAD_LETTER_EXCHANGE, Binding, Exchange, Queue
from .broker_state import BrokerSnapshot, broker_snapshot
from .topology_drawing import Node, topology_svg


def topology_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """Needs view (or change) permission on exchanges."""
    if not model_admin.has_view_or_change_permission(request):
        raise PermissionDenied
    exchanges = list(Exchange.objects.order_by("name"))
    bindings = list(
        Binding.objects.select_related("source", "queue", "destination_exchange").order_by("id")
    )
    queue_names = sorted(
        {b.queue.name for b in bindings if b.queue is not None}
        | set(Queue.objects.filter(bindings__isnull=True).values_list("name", flat=True)[:50])
    )
    rows = {q.name: q for q in Queue.objects.filter(name__in=queue_names)}
    derived = _derived_queues([rows[n] for n in queue_names if n in rows])
    snapshot = broker_snapshot([*queue_names, *derived])
    site = model_admin.admin_site.name
    queue_nodes, dlx_edges = _queue_nodes(queue_names, rows, derived, snapshot, site)
    exchange_nodes = _exchange_nodes(exchanges, bool(dlx_edges), site)
    edges = [*edges_from_rows(bindings), *dlx_edges]
    query = _query(request)
    found = _route(query, exchanges, edges) if query["exchange"] else None
    svg = topology_svg(
        exchange_nodes,
        queue_nodes,
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


def _queue_nodes(
    queue_names: list[str],
    rows: dict[str, Queue],
    derived: dict[str, tuple[str, Queue, str]],
    snapshot: BrokerSnapshot,
    site: str,
) -> tuple[list[Node], list[BindingSpec]]:
    """The drawn queues (the bound ones, then those the app declares for them) with their
    live depth, and the dead-letter exchange's bindings to the ``.dlq`` queues."""
    queue_nodes = []
    for name in queue_names:
        row = rows.get(name)
        url = _url("queue_change", row.pk, site) if row else ""
        queue_nodes.append(Node(name, _depth(snapshot.state(name)), url))
    dlx_edges = []
    for name, (role, row, detail) in derived.items():
        state = snapshot.state(name)
        if role == "delay" and not isinstance(state, tuple):
            continue  # delay queues are declared on first use: only those the broker has
        page = "queue_dead_letters" if role == "dlq" else "queue_change"
        text = f"{_depth(state)}; {detail}" if detail else _depth(state)
        queue_nodes.append(Node(name, text, _url(page, row.pk, site), role))
        if role == "dlq":
            dlx_edges.append(
                BindingSpec(ExchangeSpec.of(DEAD_LETTER_EXCHANGE), routing_key=row.name, queue=name)
            )
    return queue_nodes, dlx_edges


def _exchange_nodes(exchanges: list[Exchange], dead_lettering: bool, site: str) -> list[Node]:
    """The Exchange rows, plus the app's dead-letter exchange when a ``.dlq`` is drawn and
    no row declares it."""
    nodes = [
        Node(e.name, _exchange_detail(e), _url("exchange_change", e.pk, site)) for e in exchanges
    ]
    if dead_lettering and DEAD_LETTER_EXCHANGE not in {e.name for e in exchanges}:
        nodes.append(
            Node(DEAD_LETTER_EXCHANGE, _("direct, dead letters (declared by the app)"), "", "dlx")
        )
    return nodes


def _url(name: str, pk: Any, site: str) -> str:
    return reverse(f"admin:messaging_{name}", args=[pk], current_app=site)


def _derived_queues(rows: list[Queue]) -> dict[str, tuple[str, Queue, str]]:
    """The queues the app declares for these rows: ``<name>.dlq`` (dead-lettering on)
    and the retry delay queues RETRY_DELAY makes (name → role, row, detail)."""
    derived: dict[str, tuple[str, Queue, str]] = {}
    first, cap = conf.get("RETRY_DELAY"), conf.get("RETRY_MAX_DELAY")
    for row in rows:
        if row.dead_letter_queue:
            derived[row.dead_letter_queue] = ("dlq", row, _("dead letters"))
        attempts = row.max_attempts or conf.get("MAX_ATTEMPTS")
        for delay in delay_steps(attempts, first, cap):
            name = delay_queue_name(row.name, delay)
            if name is not None:
                derived[name] = ("delay", row, _("retry delay %(seconds)g s") % {"seconds": delay})
    return derived


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
