"""Exchange and binding admin: rows with their live broker state (asked over one
connection per page; a broker that is down shows "unreachable", never an error page),
a "declare on broker" action, a "publish a message" link per exchange, and the
topology page (``admin:messaging_topology``, :mod:`.topology_page`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ..broker.declare_many import (
    MATCHES,
    check_exchanges,
    declare_binding_rows,
    declare_exchanges,
)
from ..exceptions import BrokerError, QueueMismatch
from ..models import Binding, Exchange
from . import audit
from .broker_state import UNREACHABLE, broker_snapshot
from .feedback import BrokerKeepsDeleted, tell_refused
from .live_changelist import LiveChangeList, LiveStateAdmin
from .topology_page import topology_view

#: A row the broker was not asked about (not a GET).
NOT_ASKED = "-"


def exchange_states(names_or_rows: Iterable[Any]) -> tuple[list[Any], BrokerError | None]:
    """Per exchange: MATCHES, None (not on the broker), a BrokerError (drift, …) or
    UNREACHABLE; and the connection error, if any. Never raises a broker error."""
    items = list(names_or_rows)
    try:
        return check_exchanges(items), None
    except BrokerError as exc:
        return [UNREACHABLE] * len(items), exc


def state_html(state: Any) -> Any:
    """One exchange's (or binding end's) live state as the changelist shows it."""
    if state == NOT_ASKED:
        return "-"
    if state == MATCHES:
        return format_html('<span class="messaging-ok">{}</span>', _("as its row says"))
    if state == UNREACHABLE:
        return format_html('<span class="messaging-unreachable">{}</span>', _("unreachable"))
    if state is None:
        return format_html('<span class="messaging-missing">{}</span>', _("not on broker"))
    label = _("drift") if isinstance(state, QueueMismatch) else _("error")
    return format_html('<span class="messaging-unreachable">{}: {}</span>', label, state)


class _DeclaringAdmin(LiveStateAdmin):
    """What the exchange and binding admins share: the live changelist, and what their
    "Declare on broker" action tells the user."""

    def _report(self, request: HttpRequest, result: Any, kind: str) -> None:
        if result.declared:
            self.message_user(
                request,
                _("Declared on the broker (%(kind)s): %(names)s")
                % {"kind": kind, "names": ", ".join(result.declared)},
                messages.SUCCESS,
            )
        tell_refused(self, request, result.failed, _("“%(name)s” was not declared: %(error)s"))
        if result.error is not None:
            self.message_user(
                request,
                _("Not declared (%(names)s): %(error)s")
                % {"names": ", ".join(result.not_declared), "error": result.error},
                messages.ERROR,
            )


@admin.register(Exchange)
class ExchangeAdmin(BrokerKeepsDeleted, _DeclaringAdmin):
    list_display = (
        "name",
        "exchange_type",
        "on_broker",
        "binding_count",
        "publish_link",
        "durable",
        "auto_delete",
        "internal",
    )
    list_filter = ("exchange_type", "durable", "internal")
    search_fields = ("name",)
    readonly_fields = ("on_broker_now", "created_at", "updated_at")
    actions = ["declare_on_broker"]

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.topology)
        return [path("topology/", view, name="messaging_topology"), *super().get_urls()]

    def topology(self, request: HttpRequest) -> HttpResponse:
        return topology_view(self, request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Exchange]:
        return super().get_queryset(request).annotate(_bindings=Count("bindings"))

    def attach_states(self, request: HttpRequest, changelist: LiveChangeList) -> None:
        rows = changelist.result_list
        states, changelist.broker_error = exchange_states(rows)
        can_compose = self.can_compose(request)
        for row, state in zip(rows, states, strict=True):
            row.broker_state = state
            row.can_compose = can_compose

    @admin.display(description=gettext_lazy("on the broker"))
    def on_broker(self, obj: Exchange) -> Any:
        return state_html(getattr(obj, "broker_state", NOT_ASKED))

    @admin.display(description=gettext_lazy("on the broker now"))
    def on_broker_now(self, obj: Exchange) -> Any:
        if obj.pk is None:
            return "-"
        states, error = exchange_states([obj])
        if error is not None:
            return _("unreachable: %(error)s") % {"error": error}
        return state_html(states[0])

    @admin.display(description=gettext_lazy("bindings"), ordering="_bindings")
    def binding_count(self, obj: Exchange) -> int:
        return getattr(obj, "_bindings", 0)

    @admin.display(description="")
    def publish_link(self, obj: Exchange) -> Any:
        return self.compose_link(obj, "exchange", obj.name)

    def _tell_broker_untouched(self, request: HttpRequest, names: list[str]) -> None:
        self.message_user(
            request,
            _(
                "Only the rows were deleted (with their bindings): exchange(s) %(names)s stay "
                "on the broker with their bindings. Delete them there "
                "(rabbitmqadmin delete exchange) if you mean to."
            )
            % {"names": ", ".join(names)},
            messages.INFO,
        )

    @admin.action(description=gettext_lazy("Declare on broker"), permissions=["change"])
    def declare_on_broker(self, request: HttpRequest, queryset: QuerySet[Exchange]) -> None:
        rows = list(queryset)
        result = declare_exchanges(rows)
        audit.log_queues(request.user, rows, audit.declare_texts(result))
        self._report(request, result, _("exchanges"))


@admin.register(Binding)
class BindingAdmin(_DeclaringAdmin):
    list_display = ("__str__", "source", "destination", "routing_key", "arguments", "ends")
    list_filter = ("source",)
    search_fields = ("routing_key", "source__name", "queue__name", "destination_exchange__name")
    list_select_related = ("source", "queue", "destination_exchange")
    readonly_fields = ("created_at", "updated_at")
    actions = ["declare_on_broker"]

    def attach_states(self, request: HttpRequest, changelist: LiveChangeList) -> None:
        rows = changelist.result_list
        exchanges = sorted(
            {r.source.name for r in rows}
            | {r.destination_exchange.name for r in rows if r.destination_exchange_id}
        )
        queues = sorted({r.queue.name for r in rows if r.queue_id})
        states, error = exchange_states(exchanges)
        by_name = dict(zip(exchanges, states, strict=True))
        snapshot = broker_snapshot(queues) if error is None else None
        error = error or (snapshot.error if snapshot else None)
        for row in rows:
            ends = [by_name[row.source.name]]
            if row.destination_exchange_id:
                ends.append(by_name[row.destination_exchange.name])
            elif snapshot is not None:
                state = snapshot.state(row.queue.name)
                ends.append(MATCHES if isinstance(state, tuple) else state)
            row.broker_state = _worst(ends, error)
        changelist.broker_error = error

    @admin.display(description=gettext_lazy("destination"))
    def destination(self, obj: Binding) -> str:
        return obj.destination_label

    @admin.display(description=gettext_lazy("both ends on the broker"))
    def ends(self, obj: Binding) -> Any:
        return state_html(getattr(obj, "broker_state", NOT_ASKED))

    @admin.action(description=gettext_lazy("Declare on broker"), permissions=["change"])
    def declare_on_broker(self, request: HttpRequest, queryset: QuerySet[Binding]) -> None:
        rows = list(queryset.select_related("source", "queue", "destination_exchange"))
        sources = {r.source for r in rows} | {r.destination_exchange for r in rows}
        sources.discard(None)
        exchanges = declare_exchanges(sorted(sources, key=lambda e: e.name))
        self._report(request, exchanges, _("exchanges"))
        if exchanges.error is not None:
            return
        result = declare_binding_rows(rows)
        if result.declared:
            audit.log_same(request.user, rows, _("Declared on the broker."))
        self._report(request, result, _("bindings"))
        if result.failed:
            self.message_user(
                request,
                ngettext(
                    "%(count)d binding was not declared (is its queue declared?).",
                    "%(count)d bindings were not declared (are their queues declared?).",
                    len(result.failed),
                )
                % {"count": len(result.failed)},
                messages.ERROR,
            )


def _worst(ends: list[Any], error: BrokerError | None) -> Any:
    if error is not None or UNREACHABLE in ends:
        return UNREACHABLE
    for state in ends:
        if state != MATCHES:
            return state
    return MATCHES
