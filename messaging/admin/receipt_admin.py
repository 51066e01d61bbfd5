"""Receipt admin: the read-only log of deliveries consumers handled."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Case, F, OuterRef, Q, QuerySet, Subquery, When
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.translation import gettext_lazy

from ..consumer.handlers import preview
from ..db.failure_counts import FATE_OUTCOMES
from ..db.raw_sql import FAILED_OUTCOMES
from ..fields import PrefixRange
from ..models import Consumer, Message, Queue, Receipt
from . import display
from .failures_page import (
    CAUSE_PARAM,
    FAILED,
    FATE_PARAM,
    LINK_LOOKUPS,
    OUTCOME_PARAM,
    SINCE_PARAM,
    triage_view,
)

#: Shorter words search message ids only (a trigram index needs three characters).
ERROR_SEARCH_MIN_CHARS = 3


class _NameFilter(admin.SimpleListFilter):
    """Filter on a name column with choices from a small table instead of a
    ``SELECT DISTINCT`` over every receipt (a full scan at a million rows); a name that
    came in a link (``?queue_name=…``) is among the choices, so the sidebar shows it."""

    def queryset(self, request: HttpRequest, queryset: QuerySet[Receipt]) -> QuerySet[Receipt]:
        value = self.value()
        return queryset.filter(**{str(self.parameter_name): value}) if value else queryset

    def names(self) -> list[str]:
        raise NotImplementedError

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        names = self.names()
        value = self.value()
        if value and value not in names:
            names = [value, *names]
        return [(name, name) for name in names]


class QueueNameFilter(_NameFilter):
    title = gettext_lazy("queue")
    parameter_name = "queue_name"

    def names(self) -> list[str]:
        return list(Queue.objects.values_list("name", flat=True))


class ConsumerNameFilter(_NameFilter):
    title = gettext_lazy("consumer")
    parameter_name = "consumer_name"

    def names(self) -> list[str]:
        names = Consumer.objects.order_by("name").values_list("name", flat=True).distinct()
        return list(names[:200])


class OutcomeFilter(admin.SimpleListFilter):
    """The outcome, one of them or all failed ones (``?outcome__exact=failed``, what the
    failures page links with); an older link's ``?outcome__in=a,b`` is shown here too."""

    title = gettext_lazy("outcome")
    parameter_name = OUTCOME_PARAM
    legacy_parameter = "outcome__in"

    def __init__(self, request: HttpRequest, params: dict, model: Any, model_admin: Any) -> None:
        if self.legacy_parameter in params:
            legacy = params.pop(self.legacy_parameter)
            params.setdefault(self.parameter_name, [_outcome_set(legacy[-1])])
        super().__init__(request, params, model, model_admin)

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        choices: list[tuple[str, Any]] = [
            *Receipt.Outcome.choices,
            (FAILED, gettext_lazy("failed (requeued, rejected, dead-lettered)")),
        ]
        value = self.value()
        if value and value not in {v for v, _label in choices}:
            choices.append((value, value.replace(",", ", ")))
        return choices

    def expected_parameters(self) -> list[str | None]:
        return [self.parameter_name, self.legacy_parameter]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Receipt]) -> QuerySet[Receipt]:
        value = self.value()
        if not value:
            return queryset
        if value == FAILED:
            return queryset.filter(outcome__in=FAILED_OUTCOMES)
        return queryset.filter(outcome__in=value.split(","))


def _outcome_set(value: str) -> str:
    """``outcome__in``'s value as the outcome filter's: ``failed`` for the failed set."""
    outcomes = sorted(o for o in value.split(",") if o)
    return FAILED if outcomes == sorted(str(o) for o in FAILED_OUTCOMES) else ",".join(outcomes)


class CauseFilter(admin.SimpleListFilter):
    """Receipts of one cause (``?cause=…``, the failures page's groups): those whose
    stored cause (``error_cause``, written with the receipt) is it — with the queue and
    the failed outcomes, a range of the partial index ``messaging_rcpt_cause_idx``.
    Shown only when a link brought a cause."""

    title = gettext_lazy("cause")
    parameter_name = CAUSE_PARAM

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        value = self.value()
        return [(value, value or gettext_lazy("(no error text)"))] if value is not None else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Receipt]) -> QuerySet[Receipt]:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(error_cause=value)


class FateFilter(admin.SimpleListFilter):
    """What became of each receipt's message (``?fate=…``, the failures page's counts):
    the outcome of its newest receipt on the queue — acked or duplicate: recovered;
    dead-lettered; rejected; requeued: still retrying. A receipt without a message id is
    its own newest. One lookup per receipt on the message index: meant for the few
    receipts the other filters leave, so shown only beside a cause (the failures page's
    links) or when a link brought a fate."""

    title = gettext_lazy("what became of the message")
    parameter_name = FATE_PARAM

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        if CAUSE_PARAM not in request.GET and self.value() is None:
            return []
        return [
            ("recovered", gettext_lazy("recovered (acked later)")),
            ("dead_lettered", gettext_lazy("dead-lettered")),
            ("rejected", gettext_lazy("rejected")),
            ("retrying", gettext_lazy("still retrying")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Receipt]) -> QuerySet[Receipt]:
        value = self.value()
        if not value:
            return queryset
        if value not in FATE_OUTCOMES:
            raise IncorrectLookupParameters(f"no such fate: {value!r}")
        newest = (
            Receipt.objects.filter(
                message_id=OuterRef("message_id"),
                queue_name=OuterRef("queue_name"),
                received_at__gte=OuterRef("received_at"),
            )
            .order_by("-received_at", "-pk")
            .values("outcome")[:1]
        )
        fate = Case(
            When(Q(message_id__isnull=True) | Q(message_id=""), then=F("outcome")),
            default=Subquery(newest),
        )
        return queryset.alias(fate=fate).filter(fate__in=FATE_OUTCOMES[value])


class ReceivedSinceFilter(admin.SimpleListFilter):
    """Receipts received since a moment (``?received_at__gte=<ISO time>``, the failures
    page's window). Shown only when a link brought one."""

    title = gettext_lazy("received since")
    parameter_name = SINCE_PARAM

    def moment(self) -> Any:
        value = self.value()
        if not value:
            return None
        try:
            moment = parse_datetime(value)
        except ValueError:
            moment = None
        if moment is None:
            raise IncorrectLookupParameters(f"not a time: {value!r}")
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        return moment

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        value = self.value()
        return [(value, display.seconds(self.moment()))] if value else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Receipt]) -> QuerySet[Receipt]:
        moment = self.moment()
        return queryset.filter(received_at__gte=moment) if moment else queryset


@admin.register(Receipt)
class ReceiptAdmin(admin.ModelAdmin):
    """Receipts are a log: nothing can be added, changed or deleted here."""

    # What happened first (outcome, error), then where and who.
    list_display = (
        "received",
        "queue_name",
        "message_link",
        "outcome_badge",
        "short_error",
        "attempt",
        "redelivered",
        "finished",
        "source",
        "consumer_name",
        "consumer_host",
        "consumer_pid",
    )
    # Choices from the Queue and Consumer tables (the queue/consumer names receipts
    # carry); a ?queue_name= / ?consumer_name= link from elsewhere filters any name.
    list_filter = (
        OutcomeFilter,
        QueueNameFilter,
        ConsumerNameFilter,
        CauseFilter,
        FateFilter,
        ReceivedSinceFilter,
    )
    date_hierarchy = "received_at"
    # message_id: prefix, case-sensitive: a range on the message_id index where the
    # database sorts by code point (messaging.fields.PrefixRange), fast at millions of rows.
    # error: contains, case-insensitive, words of ERROR_SEARCH_MIN_CHARS or more; on
    # PostgreSQL the pg_trgm GIN index of migration 0013 serves it. See get_search_results.
    search_fields = ("message_id__startswith", "error__icontains")
    search_help_text = gettext_lazy(
        "Finds message ids that start with the text (case-sensitive) and errors that "
        "contain it (any case, 3 characters or more)."
    )
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
        """Receipts where every word searched starts the message_id or (a word of
        :data:`ERROR_SEARCH_MIN_CHARS` or more) is in the error, any case.

        The message_id is filtered with a lookup expression: ``filter(message_id__
        startswith=…)`` goes through the relation, which turns the ``select_related`` LEFT
        JOIN into an INNER JOIN and so hides the receipts of ids that have no Message row
        (another producer's). The error test is ``error <> '' AND UPPER(error) LIKE
        '%WORD%'``: on PostgreSQL that is the partial trigram index
        ``messaging_rcpt_error_trgm`` (migration 0013; acked receipts, without error
        text, are not in it), elsewhere a scan of the rows the other filters leave."""
        for term in search_term.split():
            matches = Q(PrefixRange(F("message_id"), term))
            if len(term) >= ERROR_SEARCH_MIN_CHARS:
                matches |= Q(error__icontains=term) & ~Q(error="")
            queryset = queryset.filter(matches)
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
