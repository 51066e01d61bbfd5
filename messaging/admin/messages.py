"""Message admin: compose, publish, republish, retry; receipts inline.

The actions keep their logic in plain functions (:func:`publish_selected`,
:func:`republish_selected`, :func:`hand_to_celery`) that work without a request.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import F, Func, Q, QuerySet, TextField, Value
from django.db.models.functions import Cast
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import broker, conf
from ..models import Message, Receipt
from ..publishing import PublishResult, publish_messages
from .bodies import body_as_text, body_preview, same_text

#: Statuses the publish action sends; ``published`` rows are skipped.
PUBLISHABLE = (Message.Status.PENDING, Message.Status.FAILED)

#: Rows loaded (with their bodies), claimed and published at a time; all chunks share
#: one broker connection.
PUBLISH_CHUNK = 2000

#: Message ids per Celery task when ``MESSAGING["PUBLISH_VIA_CELERY"]`` is on.
CELERY_CHUNK = 10_000


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------- actions


@dataclass
class PublishSelection(PublishResult):
    """A :class:`~messaging.publishing.PublishResult` plus how many selected rows were
    skipped because of their status."""

    skipped: int = 0


def publish_pks(
    ids: Sequence[int], user: Any = None, statuses: Sequence[str] = PUBLISHABLE
) -> PublishResult:
    """Publish the messages with primary keys ``ids`` (in that order) whose status is
    still one of ``statuses``: pipelined confirms, one connection for all of them, rows
    loaded :data:`PUBLISH_CHUNK` at a time. Never raises a broker error (see the result:
    ``retrying`` ids stay ``pending`` because the broker could not take them now)."""
    result = PublishResult()
    publisher = broker.PipelinedPublisher()  # opened (and reopened) by publish_messages
    try:
        for chunk in _chunks(list(ids), PUBLISH_CHUNK):
            rows = list(
                Message.objects.filter(pk__in=chunk, status__in=statuses)
                .select_related("queue")
                .order_by("created_at", "pk")
            )
            result.extend(publish_messages(rows, user=user, publisher=publisher))
    finally:
        publisher.close()
    return result


def _publishable_ids(queryset: QuerySet[Message], statuses: Sequence[str]) -> list[int]:
    return list(
        queryset.filter(status__in=statuses)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    )


def publish_selected(
    queryset: QuerySet[Message], user: Any = None, statuses: Sequence[str] = PUBLISHABLE
) -> PublishSelection:
    """Publish the rows of ``queryset`` whose status is in ``statuses`` (by default
    ``pending`` and ``failed``), oldest first; the others are counted as skipped."""
    selection = PublishSelection(skipped=queryset.exclude(status__in=statuses).count())
    selection.extend(publish_pks(_publishable_ids(queryset, statuses), user, statuses))
    return selection


def hand_to_celery(ids: Sequence[int], user: Any = None) -> int:
    """Queue ``messaging.tasks.publish_messages_task(ids, user_id)`` in chunks of
    :data:`CELERY_CHUNK` ids; returns how many ids were handed over. Raises whatever
    Celery raises when it cannot queue a task (the rows then stay as they were)."""
    from ..tasks import publish_messages_task

    user_id = getattr(user, "pk", None)
    handed = 0
    for chunk in _chunks(list(ids), CELERY_CHUNK):
        publish_messages_task.delay(list(chunk), user_id)
        handed += len(chunk)
    return handed


def copy_messages(queryset: QuerySet[Message]) -> list[int]:
    """Create a new ``pending`` message (new message_id) for each selected one, copying
    destination, body, content type, headers and persistence; returns the new pks."""
    copies = [
        Message(
            queue_id=original.queue_id,
            exchange=original.exchange,
            routing_key=original.routing_key,
            body=original.body_bytes,
            content_type=original.content_type,
            headers=original.headers,
            persistent=original.persistent,
        )
        for original in queryset.order_by("created_at", "pk").iterator(chunk_size=2000)
    ]
    created = Message.objects.bulk_create(copies, batch_size=500)
    if created and created[0].pk is None:  # a backend that does not return primary keys
        ids = [c.message_id for c in created]
        by_id = dict(Message.objects.filter(message_id__in=ids).values_list("message_id", "pk"))
        return [by_id[i] for i in ids]
    return [c.pk for c in created]


def republish_selected(queryset: QuerySet[Message], user: Any = None) -> PublishResult:
    """Publish a copy (new message_id) of each selected message, whatever its status."""
    return publish_pks(copy_messages(queryset), user)


# --------------------------------------------------------------------------- form


class BodyTextField(forms.CharField):
    """The body as text; unchanged when only the line endings differ."""

    def has_changed(self, initial: Any, data: Any) -> bool:
        if self.disabled:
            return False
        return not same_text(initial or "", self.to_python(data) or "")


class MessageForm(forms.ModelForm):
    """Compose or edit a message. ``body`` (binary) is edited as UTF-8 text through
    ``body_text``; a body that is not text is shown read-only and never rewritten."""

    body_text = BodyTextField(
        label=gettext_lazy("body"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 12, "cols": 80}),
        help_text=gettext_lazy("Sent as UTF-8."),
    )

    class Meta:
        model = Message
        fields = ("queue", "exchange", "routing_key", "content_type", "headers", "persistent")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        body = bytes(self.instance.body or b"")
        text = body_as_text(body)
        field = self.fields["body_text"]
        if text is None:
            field.disabled = True
            field.help_text = _(
                "Not UTF-8 text (%(size)d bytes): shown as a Python bytes literal, not "
                "editable here, kept unchanged when you save."
            ) % {"size": len(body)}
            self.initial["body_text"] = repr(body)
        elif not self.instance._state.adding:
            self.initial["body_text"] = text

    def clean_headers(self) -> dict[str, Any]:
        headers = self.cleaned_data.get("headers")
        if headers is None:
            return {}
        if not isinstance(headers, dict):
            raise ValidationError(
                _('Headers must be a JSON object, e.g. {"x-tenant": "acme"}.'), code="invalid"
            )
        try:
            broker.check_headers(headers)
        except ValueError as exc:
            raise ValidationError(str(exc), code="invalid") from exc
        return headers

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("routing_key") and "exchange" in cleaned and not cleaned["exchange"]:
            self.add_error(
                "routing_key",
                _("A routing key needs an exchange (the default exchange routes by queue)."),
            )
        if cleaned.get("queue") and cleaned.get("exchange"):
            self.add_error("exchange", _("Give a queue or an exchange, not both."))
        return cleaned

    def save(self, commit: bool = True) -> Message:
        field = self.fields["body_text"]
        if not field.disabled and (self.instance._state.adding or "body_text" in self.changed_data):
            self.instance.body = self.cleaned_data["body_text"].encode("utf-8")
        return super().save(commit)


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
        "redelivered",
        "received_at",
        "finished_at",
        "error",
    )
    readonly_fields = fields
    extra = 0
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


class _EscapeEncode(Func):
    """PostgreSQL ``encode(bytea, 'escape')``: text in which bytes >= 0x80 and NUL are
    ``\\ooo`` octal and a backslash is doubled; safe for any body."""

    function = "encode"
    output_field = TextField()


def _escape_encoded(term: str) -> str:
    """``term`` as PostgreSQL's ``encode(…, 'escape')`` would spell its UTF-8 bytes."""
    out = []
    for byte in term.encode("utf-8"):
        if byte == 0x5C:
            out.append("\\\\")
        elif byte >= 0x80 or byte == 0:
            out.append(f"\\{byte:03o}")
        else:
            out.append(chr(byte))
    return "".join(out)


def body_contains(queryset: QuerySet[Message], term: str) -> tuple[QuerySet[Message], Q]:
    """``queryset`` annotated so that the returned ``Q`` matches bodies containing
    ``term`` (UTF-8), case-insensitively for ASCII letters, on SQLite and PostgreSQL."""
    vendor = connections[queryset.db].vendor
    if vendor == "postgresql":
        queryset = queryset.alias(_body_text=_EscapeEncode(F("body"), Value("escape")))
        return queryset, Q(_body_text__icontains=_escape_encoded(term))
    queryset = queryset.alias(_body_text=Cast("body", TextField()))
    return queryset, Q(_body_text__icontains=term)


# --------------------------------------------------------------------------- admin


MESSAGE_FIELDS = ("queue", "exchange", "routing_key", "content_type")
STATUS_FIELDS = (
    "message_id",
    "status",
    "attempts",
    "last_error",
    "created_at",
    "published_at",
    "published_by",
)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    form = MessageForm
    list_display = (
        "message_id",
        "destination",
        "status",
        "content_type",
        "created_at",
        "published_at",
        "published_by",
        "body_preview",
    )
    list_filter = ("status", "queue", "created_at", "published_at")
    search_fields = ("message_id",)
    search_help_text = gettext_lazy("Searches message ids and body text.")
    date_hierarchy = "created_at"
    list_select_related = ("queue", "published_by")
    readonly_fields = STATUS_FIELDS
    inlines = [ReceiptInline]
    actions = ["publish_messages", "retry_failed", "republish"]

    def get_fieldsets(self, request: HttpRequest, obj: Message | None = None) -> Any:
        if obj is None:
            return [(None, {"fields": (*MESSAGE_FIELDS, "body_text", "headers", "persistent")})]
        # View-only (published, or no change permission): every field is read-only.
        body = "body_text" if self.has_change_permission(request, obj) else "body_display"
        return [
            (None, {"fields": (*MESSAGE_FIELDS, body, "headers", "persistent")}),
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

    # ----------------------------------------------------------------- columns

    @admin.display(description=gettext_lazy("destination"))
    def destination(self, obj: Message) -> str:
        return obj.destination_label

    @admin.display(description=gettext_lazy("body"))
    def body_preview(self, obj: Message) -> str:
        return body_preview(obj.body_bytes)

    @admin.display(description=gettext_lazy("body"))
    def body_display(self, obj: Message) -> str:
        body = obj.body_bytes
        text = body_as_text(body)
        return format_html(
            '<pre style="white-space: pre-wrap; margin: 0">{}</pre>',
            repr(body) if text is None else text,
        )

    # ----------------------------------------------------------------- actions

    @admin.action(description=gettext_lazy("Publish selected messages"), permissions=["publish"])
    def publish_messages(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        self._publish(request, queryset, PUBLISHABLE)

    @admin.action(description=gettext_lazy("Retry failed messages"), permissions=["publish"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        self._publish(request, queryset, (Message.Status.FAILED,))

    @admin.action(
        description=gettext_lazy("Republish as new messages (copies)"), permissions=["publish"]
    )
    def republish(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        ids = copy_messages(queryset)
        count = len(ids)
        self.message_user(
            request,
            ngettext(
                "%(count)d copy created (new message id).",
                "%(count)d copies created (new message ids).",
                count,
            )
            % {"count": count},
            messages.INFO,
        )
        if conf.get("PUBLISH_VIA_CELERY"):
            self._to_celery(request, ids)
            return
        self._report(request, publish_pks(ids, request.user), skipped=0)

    def _publish(
        self, request: HttpRequest, queryset: QuerySet[Message], statuses: Sequence[str]
    ) -> None:
        skipped = queryset.exclude(status__in=statuses).count()
        ids = _publishable_ids(queryset, statuses)
        if conf.get("PUBLISH_VIA_CELERY"):
            self._report_skipped(request, skipped, statuses)
            self._to_celery(request, ids)
            return
        self._report_skipped(request, skipped, statuses)
        self._report(request, publish_pks(ids, request.user, statuses), skipped)

    def _to_celery(self, request: HttpRequest, ids: Sequence[int]) -> None:
        if not ids:
            self.message_user(request, _("Nothing to publish."), messages.WARNING)
            return
        try:
            count = hand_to_celery(ids, request.user)
        except Exception as exc:  # noqa: BLE001 - Celery/kombu errors vary by transport
            self.message_user(
                request,
                _(
                    "Could not hand the messages to Celery (%(error)s): nothing was "
                    "published; they keep their status."
                )
                % {"error": exc},
                messages.ERROR,
            )
            return
        self.message_user(
            request,
            ngettext(
                "%(count)d message handed to Celery for publishing; its status changes "
                "when a worker has published it.",
                "%(count)d messages handed to Celery for publishing; their status changes "
                "when a worker has published them.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )

    def _report_skipped(self, request: HttpRequest, skipped: int, statuses: Sequence[str]) -> None:
        if not skipped:
            return
        if tuple(statuses) == (Message.Status.FAILED,):
            text = ngettext(
                "%(count)d message was not failed and was skipped.",
                "%(count)d messages were not failed and were skipped.",
                skipped,
            )
        else:
            text = ngettext(
                "%(count)d message was already published and was skipped.",
                "%(count)d messages were already published and were skipped.",
                skipped,
            )
        self.message_user(request, text % {"count": skipped}, messages.WARNING)

    def _report(self, request: HttpRequest, result: PublishResult, skipped: int) -> None:
        if result.published:
            count = len(result.published)
            self.message_user(
                request,
                ngettext("%(count)d message published.", "%(count)d messages published.", count)
                % {"count": count},
                messages.SUCCESS,
            )
        retrying = set(result.retrying)
        refused = {k: v for k, v in result.failed.items() if k not in retrying}
        if refused:
            count = len(refused)
            self.message_user(
                request,
                ngettext(
                    "%(count)d message failed: %(error)s",
                    "%(count)d messages failed; first error: %(error)s",
                    count,
                )
                % {"count": count, "error": next(iter(refused.values()))},
                messages.ERROR,
            )
        if retrying:
            count = len(retrying)
            error = result.failed[result.retrying[0]]
            self.message_user(
                request,
                ngettext(
                    "%(count)d message not published yet: %(error)s. It stays pending and "
                    "is retried later (relay), or publish it again.",
                    "%(count)d messages not published yet: %(error)s. They stay pending and "
                    "are retried later (relay), or publish them again.",
                    count,
                )
                % {"count": count, "error": error},
                messages.ERROR,
            )
        if result.busy:
            count = len(result.busy)
            self.message_user(
                request,
                ngettext(
                    "%(count)d message was being published by another process (or already "
                    "was) and was left alone.",
                    "%(count)d messages were being published by another process (or already "
                    "were) and were left alone.",
                    count,
                )
                % {"count": count},
                messages.WARNING,
            )
        if not (result.published or result.failed or result.busy or skipped):
            self.message_user(request, _("Nothing to publish."), messages.WARNING)
