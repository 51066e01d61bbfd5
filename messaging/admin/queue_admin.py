"""Queue admin: rows with their live broker state (its columns :mod:`.queue_columns`), the
overview page's and the dead-letter browser's URLs, and the declare / purge / replay
actions (:mod:`.queue_actions`, whose plain functions :func:`purge_selected` and
:func:`replay_selected` are importable from here too).

The queue's page shows its state on the broker at the top, with links and the actions as
buttons (:mod:`.queue_change_page`).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ..amqp.queue_types import CLASSIC_ON_CLUSTER, classic_on_cluster
from ..broker import QueueSpec
from ..broker import management_api as management
from ..models import Queue
from .broker_state import broker_snapshot
from .dead_letter_browser import dead_letters_view
from .feedback import BrokerKeepsDeleted
from .forms import QueueForm
from .live_changelist import LiveChangeList, LiveStateAdmin
from .queue_actions import (  # noqa: F401 - the moved names stay importable from here
    PurgeResult,
    QueueActions,
    ReplayOutcome,
    purge_selected,
    replay_selected,
)
from .queue_change_page import QueueChangePage
from .queue_columns import QueueColumns
from .views import overview_view


@admin.register(Queue)
class QueueAdmin(QueueColumns, QueueChangePage, BrokerKeepsDeleted, QueueActions, LiveStateAdmin):
    form = QueueForm
    list_display = (
        "name",
        "matches_broker",
        "ready",
        "unacked",
        "consumers",
        "dead_letters",
        "publish_link",
        "durable",
        "queue_type",
        "arguments",
    )
    list_filter = ("durable", "queue_type", "dead_lettering")
    search_fields = ("name",)
    readonly_fields = ("on_broker", "created_at", "updated_at")
    actions = ["declare_on_broker", "purge_queues", "replay_dead_letters"]
    delete_confirmation_template = "admin/messaging/queue/delete_confirmation.html"
    delete_selected_confirmation_template = (
        "admin/messaging/queue/delete_selected_confirmation.html"
    )
    change_list_template = "admin/messaging/queue/change_list.html"
    unreachable_warning = gettext_lazy(
        "The broker is unreachable, so live counts are missing: %(error)s"
    )

    # ----------------------------------------------------------------- plumbing

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label
        view = self.admin_site.admin_view(self.overview)
        dead_letters = self.admin_site.admin_view(self.dead_letters_page)
        return [
            path("overview/", view, name=f"{info}_overview"),
            path(
                "<path:object_id>/dead-letters/",
                dead_letters,
                name=f"{info}_queue_dead_letters",
            ),
            *super().get_urls(),
        ]

    def dead_letters_page(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return dead_letters_view(self, request, object_id)

    def overview(self, request: HttpRequest) -> HttpResponse:
        return overview_view(self, request)

    def attach_states(self, request: HttpRequest, changelist: LiveChangeList) -> None:
        """Every queue on the page and its ``.dlq``, over one connection, each row's
        declaration compared with the broker on it; unacked counts from the management
        API (one cached request, if ``MANAGEMENT_URL`` is set)."""
        rows = changelist.result_list
        can_compose = self.can_compose(request)
        names: list[str] = []
        for row in rows:
            row.can_compose = can_compose
            names.append(row.name)
            if row.dead_letter_queue:
                names.append(row.dead_letter_queue)
        snapshot = broker_snapshot(names, compare=[QueueSpec.of(row) for row in rows])
        changelist.broker_error = snapshot.error
        changelist.management_counts = counts = management.queue_counts()  # type: ignore[attr-defined]
        for row in rows:
            row.broker_state = snapshot.state(row.name)
            row.drift = snapshot.drift.get(row.name)
            if row.dead_letter_queue:
                row.dlq_state = snapshot.state(row.dead_letter_queue)
            row.unacked_count = counts.unacked(row.name)
            row.unacked_missing = (
                "" if row.unacked_count is not None else counts.why_missing(row.name)
            )

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        counts = getattr(changelist, "management_counts", None)
        if counts is not None and counts.configured and not counts.available:
            self.message_user(
                request,
                _("Unacked counts are missing: the management API did not answer: %(error)s")
                % {"error": counts.error},
                messages.WARNING,
            )
        classic = classic_on_cluster(changelist.result_list)
        if classic:
            self.message_user(
                request,
                _("%(names)s: %(warning)s.")
                % {"names": ", ".join(classic), "warning": _(CLASSIC_ON_CLUSTER)},
                messages.WARNING,
            )
        return changelist

    def has_purge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.purge_queue")

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.publish_message")

    # ----------------------------------------------------------------- deleting

    def _tell_broker_untouched(self, request: HttpRequest, names: list[str]) -> None:
        self.message_user(
            request,
            ngettext(
                "Only the row was deleted: queue %(names)s is still on the broker with its "
                "messages. Delete it there (rabbitmqctl delete_queue) if you mean to.",
                "Only the rows were deleted: queues %(names)s are still on the broker with "
                "their messages. Delete them there (rabbitmqctl delete_queue) if you mean to.",
                len(names),
            )
            % {"names": ", ".join(names)},
            messages.INFO,
        )
