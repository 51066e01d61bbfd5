"""Receipt admin: the read-only log of deliveries consumers handled."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy

from ..consumer.handlers import preview
from ..fields import PrefixRange
from ..models import Consumer, Message, Queue, Receipt
from . import display
from .failures_page import LINK_LOOKUPS, triage_view


class _NameFilter(admin.SimpleListFilter):
    """Filter on a name column with choices from a small table instead of a
    ``SELECT DISTINCT`` over every receipt (a full scan at a million rows)."""

    def queryset(self, request: HttpRequest, queryset: QuerySet[Receipt]) -> QuerySet[Receipt]:
        value = self.value()
        return queryset.filter(**{self.parameter_name: value}) if value else queryset


class QueueNameFilter(_NameFilter):
    title = gettext_lazy("queue")
    parameter_name = "queue_name"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [(name, name) for name in Queue.objects.values_list("name", flat=True)]


class ConsumerNameFilter(_NameFilter):
    title = gettext_lazy("consumer")
    parameter_name = "consumer_name"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        names = Consumer.objects.order_by("name").values_list("name", flat=True).distinct()
        return [(name, name) for name in names[:200]]


@admin.register(Receipt)
class ReceiptAdmin(admin.ModelAdmin):
    """Receipts are a log: nothing can be added, changed or deleted here."""

    list_display = (
        "received",
        "finished",
        "queue_name",
        "source",
        "message_link",
        "outcome_badge",
        "attempt",
        "redelivered",
        "consumer_name",
        "consumer_host",
        "consumer_pid",
        "short_error",
    )
    # Choices from the Queue and Consumer tables (the queue/consumer names receipts
    # carry); a ?queue_name= / ?consumer_name= link from elsewhere filters any name.
    list_filter = ("outcome", QueueNameFilter, ConsumerNameFilter)
    date_hierarchy = "received_at"
    # Prefix, case-sensitive: a range on the message_id index where the database sorts
    # by code point (messaging.fields.PrefixRange), so it stays fast at millions of rows.
    # See get_search_results.
    search_fields = ("message_id__startswith",)
    search_help_text = gettext_lazy("Finds message ids that start with the text (case-sensitive).")
    list_select_related = ("message",)
    # A million receipts: do not count the whole table on every page.
    show_full_result_count = False
    fields = (
        "message_link",
        "queue_name",
        "outcome",
        "attempt",
        "redelivered",
        "received",
        "finished",
        "next_attempt",
        "consumer_name",
        "consumer_host",
        "consumer_pid",
        "consumer_tag",
        "delivery_tag",
        "exchange",
        "routing_key",
        "stream_offset",
        "reply_preview",
        "reply_content_type",
        "error",
        "traceback_text",
    )
    readonly_fields = fields

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.failures)
        name = f"{self.opts.app_label}_failures"
        return [path("failures/", view, name=name), *super().get_urls()]

    def failures(self, request: HttpRequest) -> HttpResponse:
        return triage_view(self, request)

    def lookup_allowed(self, lookup: str, value: str, request: Any = None) -> bool:
        # The failure triage page links to a group's receipts with these.
        return lookup in LINK_LOOKUPS or super().lookup_allowed(lookup, value, request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Receipt]:
        # The linked Message is only needed for its pk: do not load its body.
        return super().get_queryset(request).select_related("message").defer("message__body")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Receipt], search_term: str
    ) -> tuple[QuerySet[Receipt], bool]:
        """Receipts whose message_id starts with every word searched. Filtered with a
        lookup expression: ``filter(message_id__startswith=…)`` goes through the relation,
        which turns the ``select_related`` LEFT JOIN into an INNER JOIN and so hides the
        receipts of ids that have no Message row (another producer's)."""
        for term in search_term.split():
            queryset = queryset.filter(PrefixRange(F("message_id"), term))
        return queryset, False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Receipt | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Receipt | None = None) -> bool:
        return False

    @admin.display(description=gettext_lazy("message"), ordering="message_id")
    def message_link(self, obj: Receipt) -> str:
        if not obj.message_id:
            return self.get_empty_value_display()
        message = obj.message
        if message is None:  # another producer's id, or the Message row was deleted
            return obj.message_id
        url = reverse(
            f"admin:{Message._meta.app_label}_{Message._meta.model_name}_change",
            args=[message.pk],
            current_app=self.admin_site.name,
        )
        return format_html('<a href="{}">{}</a>', url, obj.message_id)

    @admin.display(description=gettext_lazy("exchange / routing key"))
    def source(self, obj: Receipt) -> str:
        """Where the delivery came from: the exchange and routing key it was published
        with (what tells the server-named queues of ``runconsumer --bind`` apart)."""
        if not obj.exchange:
            return obj.routing_key and f"(default) {obj.routing_key}"
        return f"{obj.exchange} {obj.routing_key}".rstrip()

    @admin.display(description=gettext_lazy("reply"))
    def reply_preview(self, obj: Receipt) -> str:
        if obj.reply is None:
            return self.get_empty_value_display()
        return preview(bytes(obj.reply))

    @admin.display(description=gettext_lazy("error"))
    def short_error(self, obj: Receipt) -> str:
        return display.one_line(obj.error)

    @admin.display(description=gettext_lazy("received"), ordering="received_at")
    def received(self, obj: Receipt) -> str:
        return display.seconds(obj.received_at)

    @admin.display(description=gettext_lazy("finished"), ordering="finished_at")
    def finished(self, obj: Receipt) -> str:
        return display.seconds(obj.finished_at)

    @admin.display(description=gettext_lazy("next attempt due"))
    def next_attempt(self, obj: Receipt) -> str:
        return display.seconds(obj.next_attempt_at)

    @admin.display(description=gettext_lazy("outcome"), ordering="outcome")
    def outcome_badge(self, obj: Receipt) -> str:
        return display.badge(obj.outcome, obj.get_outcome_display())

    @admin.display(description=gettext_lazy("traceback"))
    def traceback_text(self, obj: Receipt) -> str:
        return display.preformatted(obj.traceback)
