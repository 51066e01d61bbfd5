"""Admin for queues, messages and receipts.

The two actions ("Declare on broker", "Publish selected messages") keep their logic in
plain functions, :func:`messaging.broker.declare_queues` and :func:`publish_selected`,
that tests and other code call without a request. Deleting a Queue row never touches the broker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from . import broker
from .exceptions import QueueMismatch
from .models import Message, Queue, Receipt
from .publishing import PublishResult, publish_messages

#: Statuses the publish action sends; ``published`` rows are skipped.
PUBLISHABLE = (Message.Status.PENDING, Message.Status.FAILED)

#: Most messages the publish action sends in one request (each waits for a confirm).
PUBLISH_ACTION_LIMIT = 1000

PREVIEW_CHARS = 60


# --------------------------------------------------------------------------- bodies


def body_as_text(body: bytes) -> str | None:
    """The body as text when a text field can round-trip it, else ``None``.

    UTF-8 without NUL characters (form fields refuse NUL) qualifies; anything else is
    binary and is only ever shown as a ``bytes`` literal.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


def body_preview(body: bytes, limit: int = PREVIEW_CHARS) -> str:
    """A short plain-text preview: the text, or ``repr`` of the first bytes if binary."""
    text = body_as_text(body)
    if text is None:
        return repr(body[:limit]) + ("…" if len(body) > limit else "")
    return Truncator(text).chars(limit)


def _same_text(a: str, b: str) -> bool:
    """Equal up to line endings (browsers submit every textarea line break as CRLF)."""

    def lf(value: str) -> str:
        return value.replace("\r\n", "\n").replace("\r", "\n")

    return lf(a) == lf(b)


# --------------------------------------------------------------------------- actions


@dataclass
class PublishSelection(PublishResult):
    """A :class:`~messaging.publishing.PublishResult` plus the already published rows
    that were skipped."""

    skipped: list[str] = field(default_factory=list)


def publish_selected(queryset: QuerySet[Message], user: Any = None) -> PublishSelection:
    """Publish the ``pending`` and ``failed`` messages of ``queryset``, oldest first;
    ``published`` ones are skipped. Never raises a broker error (see the result)."""
    rows = list(
        queryset.filter(status__in=PUBLISHABLE).select_related("queue").order_by("created_at", "pk")
    )
    skipped = list(queryset.exclude(status__in=PUBLISHABLE).values_list("message_id", flat=True))
    result = publish_messages(rows, user=user)
    return PublishSelection(
        published=result.published,
        failed=result.failed,
        first_error=result.first_error,
        skipped=skipped,
    )


# --------------------------------------------------------------------------- queues


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "durable",
        "queue_type",
        "dead_letter_exchange",
        "arguments",
        "updated_at",
    )
    list_filter = ("durable", "queue_type")
    search_fields = ("name",)
    readonly_fields = ("created_at", "updated_at")
    actions = ["declare_on_broker"]

    @admin.action(description=gettext_lazy("Declare on broker"), permissions=["change"])
    def declare_on_broker(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        result = broker.declare_queues(queryset)
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
                text = _("Queue “%(name)s” differs on the broker: %(error)s")
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


# --------------------------------------------------------------------------- messages


class BodyTextField(forms.CharField):
    """The body as text; unchanged when only the line endings differ."""

    def has_changed(self, initial: Any, data: Any) -> bool:
        if self.disabled:
            return False
        return not _same_text(initial or "", self.to_python(data) or "")


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


class ReceiptInline(admin.TabularInline):
    model = Receipt
    fk_name = "message"
    fields = (
        "outcome",
        "queue_name",
        "consumer_name",
        "redelivered",
        "received_at",
        "finished_at",
        "error",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
    list_filter = ("status", "queue", "created_at")
    search_fields = ("message_id",)
    date_hierarchy = "created_at"
    list_select_related = ("queue", "published_by")
    readonly_fields = STATUS_FIELDS
    inlines = [ReceiptInline]
    actions = ["publish_messages"]

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

    def has_change_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        if obj is not None and obj.status == Message.Status.PUBLISHED:
            return False
        return super().has_change_permission(request, obj)

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.publish_message")

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

    @admin.action(description=gettext_lazy("Publish selected messages"), permissions=["publish"])
    def publish_messages(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        count = queryset.filter(status__in=PUBLISHABLE).count()
        if count > PUBLISH_ACTION_LIMIT:
            self.message_user(
                request,
                _(
                    "%(count)d messages selected; the action publishes at most %(limit)d "
                    "at a time. Nothing was published."
                )
                % {"count": count, "limit": PUBLISH_ACTION_LIMIT},
                messages.ERROR,
            )
            return
        result = publish_selected(queryset, request.user)
        if result.skipped:
            count = len(result.skipped)
            self.message_user(
                request,
                ngettext(
                    "%(count)d message was already published and was skipped.",
                    "%(count)d messages were already published and were skipped.",
                    count,
                )
                % {"count": count},
                messages.WARNING,
            )
        if result.published:
            count = len(result.published)
            self.message_user(
                request,
                ngettext("%(count)d message published.", "%(count)d messages published.", count)
                % {"count": count},
                messages.SUCCESS,
            )
        if result.failed:
            count = len(result.failed)
            self.message_user(
                request,
                ngettext(
                    "%(count)d message not published: %(error)s",
                    "%(count)d messages not published; first error: %(error)s",
                    count,
                )
                % {"count": count, "error": result.first_error},
                messages.ERROR,
            )


# --------------------------------------------------------------------------- receipts


@admin.register(Receipt)
class ReceiptAdmin(admin.ModelAdmin):
    """Receipts are a log: nothing can be added, changed or deleted here."""

    list_display = (
        "received_at",
        "queue_name",
        "message_link",
        "outcome",
        "redelivered",
        "consumer_name",
        "consumer_host",
        "consumer_pid",
        "short_error",
    )
    list_filter = ("outcome", "queue_name", "consumer_name")
    date_hierarchy = "received_at"
    # Exact: the column is a (constraint-less) foreign key, which has no icontains.
    search_fields = ("message_id__exact",)
    list_select_related = ("message",)
    fields = (
        "message_link",
        "queue_name",
        "outcome",
        "redelivered",
        "received_at",
        "finished_at",
        "consumer_name",
        "consumer_host",
        "consumer_pid",
        "consumer_tag",
        "delivery_tag",
        "error",
        "traceback",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Receipt]:
        # The linked Message is only needed for its pk: do not load its body.
        return super().get_queryset(request).select_related("message").defer("message__body")

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

    @admin.display(description=gettext_lazy("error"))
    def short_error(self, obj: Receipt) -> str:
        return Truncator(obj.error).chars(80)
