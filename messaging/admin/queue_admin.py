"""Queue admin: rows with their live broker state, the overview page's URL, and the
declare / purge / replay actions (:mod:`.queue_actions`, whose plain functions
:func:`purge_selected` and :func:`replay_selected` are importable from here too).

The queue's page shows its state on the broker at the top, with links (its dead letters,
its messages and receipts) and the actions as buttons for the users allowed to run them
(``admin/messaging/queue/change_form.html``); help texts are shown as text.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import conditional_escape, format_html
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ..amqp.queue_types import CLASSIC_ON_CLUSTER, classic_on_cluster
from ..broker import QueueSpec
from ..broker import management_api as management
from ..models import Queue
from .broker_state import INVALID_NAME, UNREACHABLE, broker_snapshot
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
from .views import overview_view

#: Attribute value of a row the broker was not asked about (not a GET).
NOT_ASKED = "not asked"


def _count_or_state(state: Any, index: int) -> Any:
    if state == NOT_ASKED:
        return "-"
    if isinstance(state, tuple):
        return state[index]
    if state == UNREACHABLE:
        return format_html('<span class="messaging-unreachable">{}</span>', _("unreachable"))
    if state == INVALID_NAME:
        return format_html('<span class="messaging-unreachable">{}</span>', _("invalid name"))
    return format_html('<span class="messaging-missing">{}</span>', _("not on broker"))


@admin.register(Queue)
class QueueAdmin(BrokerKeepsDeleted, QueueActions, LiveStateAdmin):
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
        changelist.management_counts = counts = management.queue_counts()
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

    def get_fields(self, request: HttpRequest, obj: Queue | None = None) -> Any:
        fields = list(super().get_fields(request, obj))
        # The state on the broker is at the top of the change page (queue_page), not a field.
        fields.remove("on_broker")
        return fields

    def get_form(
        self, request: HttpRequest, obj: Queue | None = None, change: bool = False, **kwargs: Any
    ) -> type[ModelForm]:
        """The form, its help texts escaped: the admin renders help texts as HTML, and
        they name queues like ``<name>.dlq``."""
        form = super().get_form(request, obj, change=change, **kwargs)
        for field in form.base_fields.values():
            if field.help_text:
                field.help_text = conditional_escape(field.help_text)
        return form

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        if request.method in ("GET", "HEAD"):
            obj = self.get_object(request, unquote(object_id))
            if obj is not None and self.has_view_or_change_permission(request, obj):
                extra_context["queue_page"] = self.queue_page(request, obj)
        return super().change_view(request, object_id, form_url, extra_context)

    def queue_page(self, request: HttpRequest, obj: Queue) -> dict[str, Any]:
        """The top of the queue's page: its state on the broker, links, and the action
        buttons this user may press (each posts the changelist's action for this row)."""
        site = self.admin_site.name
        app = self.opts.app_label
        name_query = urlencode({"queue_name": obj.name})
        links = []
        if obj.dead_letter_queue:
            links.append(
                (
                    "queue-dead-letters",
                    reverse(f"admin:{app}_queue_dead_letters", args=[obj.pk], current_app=site),
                    _("Dead letters (%(dlq)s)") % {"dlq": ".dlq"},
                )
            )
        if request.user.has_perm(f"{app}.view_message") or request.user.has_perm(
            f"{app}.change_message"
        ):
            links.append(
                (
                    "queue-messages",
                    reverse(f"admin:{app}_message_changelist", current_app=site)
                    + f"?queue__id__exact={obj.pk}",
                    _("Messages"),
                )
            )
        if request.user.has_perm(f"{app}.view_receipt"):
            links.append(
                (
                    "queue-receipts",
                    reverse(f"admin:{app}_receipt_changelist", current_app=site) + f"?{name_query}",
                    _("Receipts"),
                )
            )
        links.append(
            ("queue-overview", reverse(f"admin:{app}_overview", current_app=site), _("Overview"))
        )
        buttons = []
        if self.has_change_permission(request, obj):
            buttons.append(("declare_on_broker", _("Declare on broker"), ""))
        if self.has_purge_permission(request):
            buttons.append(("purge_queues", _("Purge on broker…"), "messaging-danger"))
        if self.has_publish_permission(request) and obj.dead_letter_queue:
            buttons.append(("replay_dead_letters", _("Replay dead letters"), ""))
        return {
            "state": self.on_broker(obj),
            "links": links,
            "buttons": buttons,
            "action_url": reverse(f"admin:{app}_queue_changelist", current_app=site),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "compose_url": (
                reverse(f"admin:{app}_message_add", current_app=site) + f"?queue={obj.pk}"
                if self.can_compose(request)
                else ""
            ),
        }

    def has_purge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.purge_queue")

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.publish_message")

    # ----------------------------------------------------------------- columns

    @admin.display(description=gettext_lazy("as on broker"))
    def matches_broker(self, obj: Queue) -> Any:
        """Drift: the broker has this queue with other arguments than the row."""
        state = getattr(obj, "broker_state", NOT_ASKED)
        drift = getattr(obj, "drift", None)
        if drift is not None:
            return format_html(
                '<span class="messaging-unreachable messaging-drift" title="{}">{}</span>',
                drift,
                _("differs: %(error)s") % {"error": drift},
            )
        if isinstance(state, tuple):
            return format_html('<span class="messaging-matches">{}</span>', _("matches"))
        return "-"

    @admin.display(description=gettext_lazy("ready"))
    def ready(self, obj: Queue) -> Any:
        return _count_or_state(getattr(obj, "broker_state", NOT_ASKED), 0)

    @admin.display(description=gettext_lazy("unacked"))
    def unacked(self, obj: Queue) -> Any:
        """Delivered and not acked yet, from the management API (``MANAGEMENT_URL``)."""
        if not hasattr(obj, "unacked_count"):
            return "-"  # not asked (not a GET)
        if obj.unacked_count is None:
            return format_html(
                '<span class="messaging-missing" title="{}">—</span>', obj.unacked_missing
            )
        return obj.unacked_count

    @admin.display(description=gettext_lazy("consumers"))
    def consumers(self, obj: Queue) -> Any:
        """The consumer count; flagged when ready messages wait and nothing consumes."""
        state = getattr(obj, "broker_state", NOT_ASKED)
        if isinstance(state, tuple) and state[0] and not state[1]:
            return format_html(
                '<span class="messaging-flag messaging-unconsumed" title="{}">0 ⚠</span>',
                _("Ready messages and no consumer: nothing is taking them"),
            )
        return _count_or_state(state, 1)

    @admin.display(description=gettext_lazy("dead letters"))
    def dead_letters(self, obj: Queue) -> Any:
        if not obj.dead_letter_queue:
            return self.get_empty_value_display()
        count = _count_or_state(getattr(obj, "dlq_state", NOT_ASKED), 0)
        url = reverse(
            f"admin:{self.opts.app_label}_queue_dead_letters",
            args=[obj.pk],
            current_app=self.admin_site.name,
        )
        return format_html('<a href="{}" class="dead-letters-link">{}</a>', url, count)

    @admin.display(description="")
    def publish_link(self, obj: Queue) -> Any:
        return self.compose_link(obj, "queue", obj.pk)

    @admin.display(description=gettext_lazy("on the broker now"))
    def on_broker(self, obj: Queue) -> str:
        names = [obj.name] + ([obj.dead_letter_queue] if obj.dead_letter_queue else [])
        snapshot = broker_snapshot(names)
        state = snapshot.state(obj.name)
        if state == UNREACHABLE:
            return _("unreachable: %(error)s") % {"error": snapshot.error}
        if state == INVALID_NAME:
            return _("invalid name, not sent to the broker: %(error)s") % {
                "error": snapshot.invalid[obj.name]
            }
        if state is None:
            return _("not declared on the broker")
        assert isinstance(state, tuple)
        text = ngettext("%(ready)d ready message", "%(ready)d ready messages", state[0]) % {
            "ready": state[0]
        }
        text += ", " + ngettext("%(count)d consumer", "%(count)d consumers", state[1]) % {
            "count": state[1]
        }
        unacked = management.queue_counts().unacked(obj.name)
        if unacked is not None:
            text += ", " + _("%(count)d unacked") % {"count": unacked}
        if obj.dead_letter_queue:
            dlq = snapshot.state(obj.dead_letter_queue)
            if isinstance(dlq, tuple):
                text += "; " + _("%(count)d in %(dlq)s") % {
                    "count": dlq[0],
                    "dlq": obj.dead_letter_queue,
                }
        return text

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
