"""The admin's forms: composing a message (text or JSON body, checked against the queue's
schema), and a queue row (names refused, never silently stripped).

A big body is never loaded (or decoded) whole for a page: the rows the admin shows carry
their first bytes and their length (:func:`with_body_head`).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.db.models.functions import Length, Substr
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..amqp import schemas
from ..amqp.properties import NAMES as PROPERTY_NAMES
from ..broker.pika_properties import check_headers
from ..models import Message, Queue
from .body_preview import BIG_BODY, BIG_BODY_PREVIEW, body_as_text, bounded_preview, same_text

#: Annotations the admin puts on the Message rows it shows, so that a big body is never
#: loaded (or decoded) whole for a page: its first bytes and its length.
BODY_HEAD = "admin_body_head"
BODY_SIZE = "admin_body_size"


def with_body_head(queryset: QuerySet[Message], head_bytes: int) -> QuerySet[Message]:
    """``queryset`` without the body column, annotated with its first ``head_bytes``
    bytes (:data:`BODY_HEAD`) and its length (:data:`BODY_SIZE`)."""
    return queryset.defer("body").annotate(
        **{BODY_HEAD: Substr("body", 1, head_bytes), BODY_SIZE: Length("body")}
    )


def stored_body(message: Message) -> tuple[bytes, int]:
    """``(body or its first bytes, size)``: the whole body, unless the row came from
    :func:`with_body_head` and its body is over :data:`BIG_BODY` bytes (then only the
    annotated first bytes; the body itself is not loaded)."""
    size = getattr(message, BODY_SIZE, None)
    if size is not None and size > BIG_BODY:
        return bytes(getattr(message, BODY_HEAD) or b""), size
    body = bytes(message.body or b"")
    return body, len(body)


class BodyTextField(forms.CharField):
    """The body as text; unchanged when only the line endings differ."""

    def has_changed(self, initial: Any, data: Any) -> bool:
        if self.disabled:
            return False
        return not same_text(initial or "", self.to_python(data) or "")


class SafeJSONField(forms.JSONField):
    """Django's JSON form field, with JSON nested too deeply to parse as a form error
    instead of a ``RecursionError`` (a 500)."""

    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except RecursionError:
            raise ValidationError(_("This JSON is nested too deeply."), code="invalid") from None

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)


def is_json_type(content_type: str) -> bool:
    base = (content_type or "").split(";", 1)[0].strip().lower()
    return base == schemas.JSON_CONTENT_TYPE or base.endswith("+json")


def pretty_json(body: bytes, content_type: str) -> str | None:
    """A JSON body as indented text (for showing and editing), else None."""
    if not is_json_type(content_type):
        return None
    try:
        value = schemas.decode_json(body)
    except ValueError:
        return None
    return json.dumps(value, indent=2, ensure_ascii=False)


class MessageForm(forms.ModelForm):
    """Compose or edit a message. ``body`` (binary) is edited as UTF-8 text through
    ``body_text`` — or as JSON (``body_format``), checked and re-encoded compactly; a
    body that is not text, or too big, is shown read-only and never rewritten. When the
    queue has a schema, the body must match it."""

    body_text = BodyTextField(
        label=gettext_lazy("body"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 12, "cols": 80}),
        help_text=gettext_lazy("Sent as UTF-8."),
    )
    body_format = forms.ChoiceField(
        label=gettext_lazy("body format"),
        choices=[("text", gettext_lazy("text (UTF-8)")), ("json", gettext_lazy("JSON"))],
        initial="text",
        required=False,
        widget=forms.RadioSelect,
        help_text=gettext_lazy(
            "JSON: the body must be valid JSON; it is sent compactly with content type "
            "application/json (unless you set another)."
        ),
    )

    class Meta:
        model = Message
        fields = (
            "queue",
            "exchange",
            "routing_key",
            "content_type",
            "headers",
            "persistent",
            *PROPERTY_NAMES,
        )
        field_classes = {"headers": SafeJSONField}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._body: bytes | None = None
        for name in ("exchange", "routing_key", "correlation_id", "reply_to", "type", "app_id"):
            # refused by the validators, never stripped
            if isinstance(self.fields.get(name), forms.CharField):
                self.fields[name].strip = False  # type: ignore[attr-defined]
        field = self.fields["body_text"]
        head, size = stored_body(self.instance)
        if size > BIG_BODY:
            field.disabled = True
            field.help_text = _(
                "%(size)s bytes: too big to edit here. The first %(shown)s bytes are shown; "
                "the body is kept unchanged when you save. Download it below."
            ) % {"size": f"{size:,}", "shown": f"{BIG_BODY_PREVIEW:,}"}
            self.initial["body_text"] = bounded_preview(head, size)
            return
        self._show_body(head)

    def _show_body(self, body: bytes) -> None:
        field = self.fields["body_text"]
        text = body_as_text(body)
        if text is None:
            field.disabled = True
            field.help_text = _(
                "Not UTF-8 text (%(size)d bytes): shown as a Python bytes literal, not "
                "editable here, kept unchanged when you save."
            ) % {"size": len(body)}
            self.initial["body_text"] = repr(body)
        elif not self.instance._state.adding:
            pretty = pretty_json(body, self.instance.content_type)
            self.initial["body_text"] = text if pretty is None else pretty
            self.initial["body_format"] = "text" if pretty is None else "json"

    def clean_headers(self) -> dict[str, Any]:
        headers = self.cleaned_data.get("headers")
        if headers is None:
            return {}
        if not isinstance(headers, dict):
            raise ValidationError(
                _('Headers must be a JSON object, e.g. {"x-tenant": "acme"}.'), code="invalid"
            )
        try:
            check_headers(headers)
        except ValueError as exc:
            raise ValidationError(str(exc), code="invalid") from exc
        return headers

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("routing_key") and "exchange" in cleaned and not cleaned["exchange"]:
            self.add_error(
                "routing_key",
                _("A routing key needs an exchange (the default exchange routes by queue)."),
            )
        if cleaned.get("queue") and cleaned.get("exchange"):
            self.add_error("exchange", _("Give a queue or an exchange, not both."))
        self._clean_body(cleaned)
        return cleaned

    def _clean_body(self, cleaned: dict[str, Any]) -> None:
        """Work out the body to save (``self._body``; None: keep the stored one), and
        check it against the queue's schema."""
        field = self.fields["body_text"]
        changed = {"body_text", "body_format"} & set(self.changed_data)
        if not field.disabled and (self.instance._state.adding or changed):
            text = cleaned.get("body_text") or ""
            if cleaned.get("body_format") == "json":
                try:
                    self._body = schemas.encode_json(json.loads(text))
                except (ValueError, RecursionError) as exc:
                    problem = str(exc) if isinstance(exc, ValueError) else _("nested too deeply")
                    self.add_error("body_text", _("Not valid JSON: %s") % problem)
                    return
                if not cleaned.get("content_type"):
                    cleaned["content_type"] = schemas.JSON_CONTENT_TYPE
            else:
                self._body = text.encode("utf-8")
        queue = cleaned.get("queue")
        if queue is None or queue.schema is None:
            return
        body = self._body if self._body is not None else stored_body(self.instance)[0]
        schema_problem = schemas.body_problem(queue.schema, body)
        if schema_problem is not None:
            self.add_error(
                "body_text",
                _("Does not match the schema of queue %(queue)s: %(problem)s")
                % {"queue": queue.name, "problem": schema_problem},
            )

    def save(self, commit: bool = True) -> Message:
        if self._body is not None:
            self.instance.body = self._body
        return super().save(commit)


class QueueForm(forms.ModelForm):
    """A queue row. The name is validated as typed: surrounding spaces are refused (as
    ``send`` and ``publish()`` refuse them), never silently stripped."""

    class Meta:
        model = Queue
        fields = (
            "name",
            "durable",
            "queue_type",
            "dead_letter_exchange",
            "dead_letter_routing_key",
            "dead_lettering",
            "max_attempts",
            "handler_time_budget",
            "arguments",
            "schema",
        )
        field_classes = {"arguments": SafeJSONField, "schema": SafeJSONField}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(self.fields.get("name"), forms.CharField):
            self.fields["name"].strip = False  # type: ignore[attr-defined]
