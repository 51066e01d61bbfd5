"""Message admin: the list (search in bodies, the consumer-outcome filter, the columns),
the message's page and its receipts inline. What it does is in its mixins: composing and
saving (:mod:`.message_compose`), the actions (:mod:`.message_actions`, whose plain
functions :func:`publish_selected`, :func:`republish_selected` and :func:`hand_to_celery`
work without a request and are importable from here too), the fate on the page
(:mod:`.message_fate_column`), bodies shown and downloaded without loading them whole
(:mod:`.message_bodies`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connections, router
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..db import operations
from ..db.failure_counts import without_jit
from ..models import Message, Receipt
from ..publishing import PUBLISHABLE  # noqa: F401 - importable from here, as before
from . import display
from .body_preview import preview_prefix_size
from .capped_count import COUNT_CAP, CappedPaginator, is_filtered
from .feedback import PublishFeedback
from .forms import MessageForm, with_body_head
from .message_actions import (  # noqa: F401 - the moved names stay importable from here
    CELERY_CHUNK,
    PUBLISH_CHUNK,
    MessageActions,
    PublishSelection,
    action_label,
    copy_messages,
    copy_pairs,
    hand_to_celery,
    publish_pks,
    publish_selected,
    republish_selected,
)
from .message_bodies import MessageBodies
from .message_compose import (  # noqa: F401 - the moved names stay importable from here
    SAVING_TO_PUBLISH,
    UNPUBLISHED,
    MessageCompose,
)
from .message_fate import FILTER_CHOICES, annotated, fate_of, filter_fate, with_fate
from .message_fate_column import FateDisplay

# --------------------------------------------------------------------------- inline


class ReceiptInline(admin.TabularInline):
    model = Receipt
    fk_name = "message"
    fields = (
        "outcome",
        "attempt",
        "queue_name",
        "consumer_name",
        "consumer_host",
        "redelivered_text",
        "received",
        "finished",
        "error",
    )
    readonly_fields = fields
    extra = 0

    @admin.display(description=gettext_lazy("redelivered"))
    def redelivered_text(self, obj: Receipt) -> str:
        return display.yes_no(obj.redelivered)

    @admin.display(description=gettext_lazy("received"))
    def received(self, obj: Receipt) -> str:
        return display.seconds(obj.received_at)

    @admin.display(description=gettext_lazy("finished"))
    def finished(self, obj: Receipt) -> str:
        return display.seconds(obj.finished_at)

    can_delete = False
    show_change_link = True
    verbose_name_plural = gettext_lazy("receipts (deliveries handled by consumers)")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --------------------------------------------------------------------------- search


def body_contains(queryset: QuerySet[Message], term: str) -> tuple[QuerySet[Message], Q]:
    """``queryset`` annotated so that the returned ``Q`` matches bodies containing
    ``term`` (UTF-8), case-insensitively for ASCII letters, on SQLite and PostgreSQL."""
    ops = operations(connections[queryset.db])
    queryset = queryset.alias(_body_text=ops.bytes_as_text(F("body")))
    return queryset, Q(_body_text__icontains=ops.bytes_text_term(term))


# --------------------------------------------------------------------------- admin


MESSAGE_FIELDS = ("queue", "exchange", "routing_key", "content_type")
STATUS_FIELDS = (
    "message_id",
    "status",
    "attempts",
    "last_error",
    "error_class",
    "created",
    "published",
    "published_by",
)
#: What became of it (from its receipts): the fate and its links.
FATE_FIELDS = ("fate_summary",)


class FateFilter(admin.SimpleListFilter):
    """By consumer outcome, from the receipts (:mod:`.message_fate`)."""

    title = gettext_lazy("consumer outcome")
    parameter_name = "fate"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> Any:
        return FILTER_CHOICES

    def queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> Any:
        value = self.value()
        return filter_fate(queryset, value) if value else queryset


class MessageChangeList(ChangeList):
    """Loads each row's first bytes and size for the preview column, never its body."""

    def get_results(self, request: HttpRequest) -> None:
        self.queryset = with_fate(with_body_head(self.queryset, preview_prefix_size()))
        super().get_results(request)


#: The AMQP properties (correlation_id, reply_to, priority, expiration, type, app_id).
PROPERTIES_FIELDSET = (
    gettext_lazy("Properties"),
    {
        "fields": (("correlation_id", "reply_to"), ("priority", "expiration"), ("type", "app_id")),
        "description": gettext_lazy(
            "Optional AMQP properties. Priority 0-255 needs a queue declared with "
            "x-max-priority; expiration is in milliseconds. The timestamp is set on send."
        ),
    },
)


@admin.register(Message)
class MessageAdmin(
    MessageCompose, MessageActions, FateDisplay, MessageBodies, PublishFeedback, admin.ModelAdmin
):
    form = MessageForm
    list_display = (
        "message_id",
        "destination",
        "status_badge",
        "short_error",
        "content_type",
        "created",
        "published",
        "published_by",
        "body_preview",
    )
    list_filter = ("status", FateFilter, "queue", "created_at", "published_at")
    search_fields = ("message_id",)
    search_help_text = gettext_lazy("Searches message ids and body text.")
    date_hierarchy = "created_at"
    # A filtered list does not also count every message ("5 results (1,000,000 total)").
    show_full_result_count = False
    list_select_related = ("queue", "published_by")
    readonly_fields = (*STATUS_FIELDS, *FATE_FIELDS, "body_download")
    inlines = [ReceiptInline]
    actions = ["publish_messages", "retry_failed", "republish"]

    #: A filtered or searched list counts at most this many messages ("10,000+").
    list_count_cap = COUNT_CAP

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return MessageChangeList

    def get_paginator(
        self,
        request: HttpRequest,
        queryset: QuerySet[Message],
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
    ) -> Paginator:
        """A filtered list counts up to :attr:`list_count_cap` rows
        (:class:`~.capped_count.CappedPaginator`); the whole table, exactly."""
        if not is_filtered(queryset):
            return super().get_paginator(
                request, queryset, per_page, orphans, allow_empty_first_page
            )
        return CappedPaginator(
            queryset, per_page, orphans, allow_empty_first_page, cap=self.list_count_cap
        )

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        """Filtered by consumer outcome, the list is queried and drawn with PostgreSQL's
        JIT off (:func:`~messaging.db.failure_counts.without_jit`): the fate's
        subqueries make the planner compile each query (0.7 s at a million messages)."""
        if FateFilter.parameter_name not in request.GET:
            return self._capped_note(super().changelist_view(request, extra_context))
        with without_jit(connections[router.db_for_read(Message)]):
            response = self._capped_note(super().changelist_view(request, extra_context))
            if isinstance(response, TemplateResponse):
                response.render()
        return response

    @staticmethod
    def _capped_note(response: HttpResponse) -> HttpResponse:
        """ "All 10,000+ selected" when the count is capped (not "All 10000")."""
        context = getattr(response, "context_data", None) or {}
        paginator = getattr(context.get("cl"), "paginator", None)
        if getattr(paginator, "capped", False):
            context["selection_note_all"] = _("All %(total_count)s selected") % {
                "total_count": paginator.at_least  # type: ignore[union-attr]
            }
        return response

    def get_fieldsets(self, request: HttpRequest, obj: Message | None = None) -> Any:
        if obj is None:
            fields = (*MESSAGE_FIELDS, "body_text", "body_format", "headers", "persistent")
            return [(None, {"fields": fields}), PROPERTIES_FIELDSET]
        # View-only (published, or no change permission): every field is read-only.
        editable = self.has_change_permission(request, obj)
        body = ("body_text", "body_format") if editable else ("body_display",)
        return [
            (None, {"fields": (*MESSAGE_FIELDS, *body, "body_download", "headers", "persistent")}),
            (_("What became of it"), {"fields": FATE_FIELDS}),
            PROPERTIES_FIELDSET,
            (_("Publishing"), {"fields": STATUS_FIELDS}),
        ]

    def get_inlines(self, request: HttpRequest, obj: Message | None) -> list[Any]:
        return list(self.inlines) if obj is not None else []

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Message], search_term: str
    ) -> tuple[QuerySet[Message], bool]:
        """Every word must be in the message_id or in the body text."""
        for bit in smart_split(search_term):
            if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
                bit = unescape_string_literal(bit)
            if not bit:
                continue
            queryset, in_body = body_contains(queryset, bit)
            queryset = queryset.filter(Q(message_id__icontains=bit) | in_body)
        return queryset, False

    def has_change_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        if obj is not None and obj.status == Message.Status.PUBLISHED:
            return False
        return super().has_change_permission(request, obj)

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.publish_message")

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Message | None = None,
    ) -> HttpResponse:
        context["show_save_and_publish"] = self.can_save_and_publish(request, obj)
        context["message_actions"] = self.page_actions(request, obj)
        if obj is not None and not obj._state.adding:
            context["subtitle"] = context["message_label"] = self.page_label(obj)
            context["replay"] = self.replay_button(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    # ----------------------------------------------------------------- columns

    @admin.display(description=gettext_lazy("destination"))
    def destination(self, obj: Message) -> str:
        return obj.destination_label

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, obj: Message) -> str:
        """The message's fate (what the consumers did with it) once it has receipts,
        else its publish status."""
        fate = fate_of(annotated(obj))
        return display.badge(fate.key, fate.short or fate.label, title=fate.label)

    @admin.display(description=gettext_lazy("error"))
    def short_error(self, obj: Message) -> str:
        return display.one_line(obj.last_error)

    @admin.display(description=gettext_lazy("created"), ordering="created_at")
    def created(self, obj: Message) -> str:
        return display.seconds(obj.created_at)

    @admin.display(description=gettext_lazy("published"), ordering="published_at")
    def published(self, obj: Message) -> str:
        return display.seconds(obj.published_at)
