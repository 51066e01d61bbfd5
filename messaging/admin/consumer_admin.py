"""Consumer admin: the registry ``runconsumer`` keeps (read-only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy

from .. import conf
from ..models import Consumer
from . import display

#: What the list and the detail page show first: which process, where, since when,
#: consuming what.
IDENTITY = (
    "name",
    "status_badge",
    "host",
    "pid",
    "queue_list",
    "prefetch",
    "work",
    "started",
    "heartbeat",
)
STATUS_COLORS = {"running": "#2e7d32", "stopping": "#b26a00", "stopped": "#666", "lost": "#ba2121"}


def lost_cutoff() -> Any:
    return timezone.now() - timedelta(seconds=3 * conf.get("CONSUMER_HEARTBEAT_INTERVAL"))


def filter_status(queryset: QuerySet[Consumer], status: str) -> QuerySet[Consumer]:
    """Consumers whose :attr:`Consumer.status` is ``status`` (``running``, ``stopping``,
    ``stopped`` or ``lost``: not stopped and silent for more than 3 heartbeat intervals)."""
    cutoff = lost_cutoff()
    stopped = Q(state=Consumer.State.STOPPED)
    if status == "lost":
        return queryset.filter(~stopped & Q(last_heartbeat__lt=cutoff))
    if status == "stopped":
        return queryset.filter(stopped)
    return queryset.filter(state=status, last_heartbeat__gte=cutoff)


class StatusFilter(admin.SimpleListFilter):
    title = gettext_lazy("status")
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> Any:
        return [
            ("running", gettext_lazy("running")),
            ("lost", gettext_lazy("lost (silent for 3 heartbeat intervals)")),
            ("stopping", gettext_lazy("stopping")),
            ("stopped", gettext_lazy("stopped")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Consumer]) -> Any:
        value = self.value()
        if value in {"running", "lost", "stopping", "stopped"}:
            return filter_status(queryset, str(value))
        return queryset


@admin.register(Consumer)
class ConsumerAdmin(admin.ModelAdmin):
    """``runconsumer`` processes: written by the consumers themselves, read-only here."""

    list_display = (*IDENTITY, "processed", "failed", "stopped")
    list_filter = (StatusFilter, "host")
    search_fields = ("name", "host")
    date_hierarchy = "started_at"
    fields = (*IDENTITY, "stopped", "processed", "failed", "last_error")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Consumer | None = None) -> bool:
        return False

    @admin.display(description=gettext_lazy("status"), ordering="state")
    def status_badge(self, obj: Consumer) -> str:
        status = obj.status
        return format_html(
            '<strong class="messaging-consumer-{}" style="color: {}">{}</strong>',
            status,
            STATUS_COLORS.get(status, "inherit"),
            status,
        )

    # Times to the second (display.seconds); the heartbeat with how long ago it was.

    @admin.display(description=gettext_lazy("started"), ordering="started_at")
    def started(self, obj: Consumer) -> str:
        return display.seconds(obj.started_at)

    @admin.display(description=gettext_lazy("last heartbeat"), ordering="last_heartbeat")
    def heartbeat(self, obj: Consumer) -> str:
        return display.seconds_ago(obj.last_heartbeat)

    @admin.display(description=gettext_lazy("stopped"), ordering="stopped_at")
    def stopped(self, obj: Consumer) -> str:
        return display.seconds(obj.stopped_at)

    @admin.display(description=gettext_lazy("in flight / threads"), ordering="in_flight")
    def work(self, obj: Consumer) -> str:
        """Handlers running at the last heartbeat, out of ``runconsumer --threads``."""
        return f"{obj.in_flight} / {obj.threads}"

    @admin.display(description=gettext_lazy("queues"))
    def queue_list(self, obj: Consumer) -> str:
        queues = obj.queues if isinstance(obj.queues, list) else [obj.queues]
        return ", ".join(str(q) for q in queues)
