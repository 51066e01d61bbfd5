"""Queue admin: rows with their live broker state, declare / purge / replay actions, and
the overview page's URL.

The action logic lives in plain functions (:func:`messaging.broker.declare_queues`,
:func:`purge_selected`, :func:`replay_selected`) that work without a request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import broker
from ..exceptions import (
    BrokerError,
    InvalidQueueName,
    MessageRefused,
    NotFound,
    QueueMismatch,
)
from ..models import Message, Queue
from ..overview import INVALID_NAME, broker_snapshot
from . import audit
from .forms import QueueForm
from .views import overview_view

UNREACHABLE = "unreachable"


# --------------------------------------------------------------------------- plain functions


@dataclass
class PurgeResult:
    """Messages dropped per queue, queues the broker does not have, other refusals, and
    a connection error that stopped the run (with the names it left alone)."""

    purged: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    failed: dict[str, BrokerError] = field(default_factory=dict)
    error: BrokerError | None = None
    not_purged: list[str] = field(default_factory=list)


def purge_selected(queues: Iterable[Queue | str], urls: Iterable[str] | None = None) -> PurgeResult:
    """Purge each queue on the broker, all at once over one connection, within
    CONNECTION_TIMEOUT; a name the validators refuse is not sent (failed with the
    reason), a queue the broker does not answer for fails alone. Never raises a broker
    error."""
    names = []
    result = PurgeResult()
    for name in (q if isinstance(q, str) else q.name for q in queues):
        problem = broker.queue_name_problem(name)
        if problem is None:
            names.append(name)
        else:
            result.failed[name] = MessageRefused(f"invalid queue name {name!r}: {problem}")
    try:
        answers = broker.purge_queues(names, urls)
    except BrokerError as exc:  # could not connect at all
        result.error = exc
        result.not_purged = names
        return result
    for name, answer in zip(names, answers, strict=True):
        if isinstance(answer, NotFound):
            result.missing.append(name)
        elif isinstance(answer, BrokerError):
            result.failed[name] = answer
        else:
            result.purged[name] = answer
    return result


@dataclass
class ReplayOutcome:
    """What :func:`replay_selected` did per queue."""

    replayed: dict[str, tuple[int, int]] = field(default_factory=dict)  # name: (moved, left)
    skipped: list[str] = field(default_factory=list)  # no app-managed dead-letter queue
    failed: dict[str, BrokerError | InvalidQueueName] = field(default_factory=dict)


def replay_selected(queues: Iterable[Queue], limit: int | None = None) -> ReplayOutcome:
    """Move the dead letters of each queue (``<name>.dlq``) back to it with
    :func:`messaging.deadletters.replay`. Never raises a broker error."""
    from ..deadletters import replay

    outcome = ReplayOutcome()
    for queue in queues:
        if queue.dead_letter_queue is None:
            outcome.skipped.append(queue.name)
            continue
        try:
            result = replay(queue.name, limit=limit)
        except (BrokerError, InvalidQueueName) as exc:  # an old row with an invalid name
            outcome.failed[queue.name] = exc
        else:
            outcome.replayed[queue.name] = (result.moved, result.remaining)
    return outcome


# --------------------------------------------------------------------------- changelist


class LiveChangeList(ChangeList):
    """Asks the broker about every queue on the page (and its ``.dlq``) over one
    connection, after the page's rows are known. POSTs (actions) do not ask."""

    broker_error: BrokerError | None = None

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        rows = list(self.result_list)
        self.result_list = rows  # evaluated once; the template iterates the same objects
        can_compose = self.model_admin.message_admin_can_add(request)
        for row in rows:
            row.can_compose = can_compose
        if request.method not in ("GET", "HEAD"):
            return  # an action or a list_editable save: the broker is not shown
        names: list[str] = []
        for row in rows:
            names.append(row.name)
            if row.dead_letter_queue:
                names.append(row.dead_letter_queue)
        snapshot = broker_snapshot(names)
        self.broker_error = snapshot.error
        for row in rows:
            row.broker_state = snapshot.state(row.name)
            if row.dead_letter_queue:
                row.dlq_state = snapshot.state(row.dead_letter_queue)


# --------------------------------------------------------------------------- admin


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
class QueueAdmin(admin.ModelAdmin):
    form = QueueForm
    list_display = (
        "name",
        "ready",
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

    # ----------------------------------------------------------------- plumbing

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label
        view = self.admin_site.admin_view(self.overview)
        return [path("overview/", view, name=f"{info}_overview"), *super().get_urls()]

    def overview(self, request: HttpRequest) -> HttpResponse:
        return overview_view(self, request)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return LiveChangeList

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        error = getattr(changelist, "broker_error", None)
        if error is not None:
            self.message_user(
                request,
                _("The broker is unreachable, so live counts are missing: %(error)s")
                % {"error": error},
                messages.WARNING,
            )
        return changelist

    def get_fields(self, request: HttpRequest, obj: Queue | None = None) -> Any:
        fields = list(super().get_fields(request, obj))
        if obj is None:
            fields.remove("on_broker")
        return fields

    def message_admin_can_add(self, request: HttpRequest) -> bool:
        opts = Message._meta
        return self.admin_site.is_registered(Message) and request.user.has_perm(
            f"{opts.app_label}.add_{opts.model_name}"
        )

    def has_purge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.purge_queue")

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.publish_message")

    # ----------------------------------------------------------------- columns

    @admin.display(description=gettext_lazy("ready"))
    def ready(self, obj: Queue) -> Any:
        return _count_or_state(getattr(obj, "broker_state", NOT_ASKED), 0)

    @admin.display(description=gettext_lazy("consumers"))
    def consumers(self, obj: Queue) -> Any:
        return _count_or_state(getattr(obj, "broker_state", NOT_ASKED), 1)

    @admin.display(description=gettext_lazy("dead letters"))
    def dead_letters(self, obj: Queue) -> Any:
        if not obj.dead_letter_queue:
            return self.get_empty_value_display()
        return _count_or_state(getattr(obj, "dlq_state", NOT_ASKED), 0)

    @admin.display(description="")
    def publish_link(self, obj: Queue) -> Any:
        if not getattr(obj, "can_compose", False):
            return ""
        url = reverse(
            f"admin:{Message._meta.app_label}_{Message._meta.model_name}_add",
            current_app=self.admin_site.name,
        )
        return format_html('<a href="{}?queue={}">{}</a>', url, obj.pk, _("Publish a message"))

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
        if obj.dead_letter_queue:
            dlq = snapshot.state(obj.dead_letter_queue)
            if isinstance(dlq, tuple):
                text += "; " + _("%(count)d in %(dlq)s") % {
                    "count": dlq[0],
                    "dlq": obj.dead_letter_queue,
                }
        return text

    # ----------------------------------------------------------------- deleting

    def delete_model(self, request: HttpRequest, obj: Queue) -> None:
        super().delete_model(request, obj)
        self._tell_broker_untouched(request, [obj.name])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        names = list(queryset.values_list("name", flat=True))
        super().delete_queryset(request, queryset)
        self._tell_broker_untouched(request, names)

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

    # ----------------------------------------------------------------- actions

    @admin.action(description=gettext_lazy("Declare on broker"), permissions=["change"])
    def declare_on_broker(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        rows = list(queryset)
        result = broker.declare_queues(rows)
        audit.log_queues(request.user, rows, audit.declare_texts(result))
        if result.declared:
            count = len(result.declared)
            self.message_user(
                request,
                ngettext(
                    "%(count)d queue declared on the broker.",
                    "%(count)d queues declared on the broker.",
                    count,
                )
                % {"count": count},
                messages.SUCCESS,
            )
        for name, exc in result.failed.items():
            if isinstance(exc, QueueMismatch):
                text = _(
                    "Queue “%(name)s” differs on the broker: %(error)s. Nothing was changed; "
                    "make the row match the broker, or delete the broker queue and declare again."
                )
            else:
                text = _("Queue “%(name)s” was not declared: %(error)s")
            self.message_user(request, text % {"name": name, "error": exc}, messages.ERROR)
        if result.error is not None:
            count = len(result.not_declared)
            self.message_user(
                request,
                ngettext(
                    "%(count)d queue not declared: %(error)s",
                    "%(count)d queues not declared: %(error)s",
                    count,
                )
                % {"count": count, "error": result.error},
                messages.ERROR,
            )

    @admin.action(description=gettext_lazy("Purge on broker…"), permissions=["purge"])
    def purge_queues(self, request: HttpRequest, queryset: QuerySet[Queue]) -> Any:
        rows = list(queryset)
        if request.POST.get("post") == "yes":
            self._purge(request, rows)
            return None
        snapshot = broker_snapshot([row.name for row in rows])
        queues = [(row, snapshot.state(row.name)) for row in rows]
        total = sum(state[0] for _row, state in queues if isinstance(state, tuple))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Purge queues on the broker?"),
            "opts": self.opts,
            "queues": queues,
            "total": total,
            "broker_error": snapshot.error,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "action": "purge_queues",
            "select_across": request.POST.get("select_across", "0"),
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/messaging/queue/purge_confirmation.html", context)

    def _purge(self, request: HttpRequest, rows: list[Queue]) -> None:
        result = purge_selected(rows)
        audit.log_queues(request.user, rows, audit.purge_texts(result))
        for name, count in result.purged.items():
            self.message_user(
                request,
                ngettext(
                    "Queue “%(name)s”: %(count)d message dropped.",
                    "Queue “%(name)s”: %(count)d messages dropped.",
                    count,
                )
                % {"name": name, "count": count},
                messages.SUCCESS,
            )
        for name in result.missing:
            self.message_user(
                request,
                _("Queue “%(name)s” is not on the broker: nothing to purge.") % {"name": name},
                messages.WARNING,
            )
        for name, exc in result.failed.items():
            self.message_user(
                request,
                _("Queue “%(name)s” was not purged: %(error)s") % {"name": name, "error": exc},
                messages.ERROR,
            )
        if result.error is not None:
            count = len(result.not_purged)
            self.message_user(
                request,
                ngettext(
                    "%(count)d queue not purged: %(error)s",
                    "%(count)d queues not purged: %(error)s",
                    count,
                )
                % {"count": count, "error": result.error},
                messages.ERROR,
            )

    @admin.action(
        description=gettext_lazy("Replay dead letters (move <queue>.dlq back)"),
        permissions=["publish"],
    )
    def replay_dead_letters(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        rows = list(queryset)
        outcome = replay_selected(rows)
        audit.log_queues(request.user, rows, audit.replay_texts(outcome))
        for name, (moved, left) in outcome.replayed.items():
            text = ngettext(
                "Queue “%(name)s”: %(count)d dead letter moved back",
                "Queue “%(name)s”: %(count)d dead letters moved back",
                moved,
            ) % {"name": name, "count": moved}
            if left:
                text += " " + _("(%(left)d still in the dead-letter queue)") % {"left": left}
            self.message_user(request, text + ".", messages.SUCCESS)
        for name in outcome.skipped:
            self.message_user(
                request,
                _(
                    "Queue “%(name)s” has no dead-letter queue managed by this app "
                    "(dead-lettering off, or a dead-letter exchange of its own): skipped."
                )
                % {"name": name},
                messages.WARNING,
            )
        for name, exc in outcome.failed.items():
            self.message_user(
                request,
                _("Dead letters of “%(name)s” not replayed: %(error)s")
                % {"name": name, "error": exc},
                messages.ERROR,
            )
