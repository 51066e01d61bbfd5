"""The AMQP message properties a producer may set beyond the body and headers —
``correlation_id``, ``reply_to``, ``priority``, ``expiration``, ``type``, ``app_id`` —
validated the same way by the models, the admin form, :func:`messaging.publish`,
``send`` and :func:`messaging.call`
(pure code: ``tests/amqp/test_properties_replies_offsets.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .short_strings import check_short_string, first_message

#: The properties :func:`messaging.publish` takes as keyword arguments (and ``Message``
#: stores in fields of the same names).
NAMES = ("correlation_id", "reply_to", "priority", "expiration", "type", "app_id")
#: The text properties (AMQP short strings).
TEXT_NAMES = ("correlation_id", "reply_to", "type", "app_id")
#: AMQP's priority is an octet; RabbitMQ orders by it only on a queue declared with
#: ``x-max-priority`` (at most 255, the broker advises at most 10).
MAX_PRIORITY = 255
#: RabbitMQ refuses a per-message TTL above 2**32 - 1 ms (about 49 days).
MAX_EXPIRATION_MS = 2**32 - 1
#: AMQP ``delivery_mode``: written to disk (survives a broker restart), or not.
PERSISTENT = 2
TRANSIENT = 1


def validate_content_type(value: str) -> None:
    if value:
        check_short_string(value, _("Content type"), names=False)


def validate_priority(value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            _("priority must be a whole number from 0 to 255, got %(value)r") % {"value": value},
            code="priority",
        )
    if not 0 <= value <= MAX_PRIORITY:
        raise ValidationError(
            _("priority must be between 0 and 255, got %(value)d") % {"value": value},
            code="priority",
        )


def validate_expiration(value: Any) -> None:
    """Milliseconds as a whole number, 0 to 2**32 - 1 (the broker's limit)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            _("expiration must be whole milliseconds, got %(value)r") % {"value": value},
            code="expiration",
        )
    if value < 0:
        raise ValidationError(
            _("expiration must not be negative, got %(value)d ms") % {"value": value},
            code="expiration",
        )
    if value > MAX_EXPIRATION_MS:
        raise ValidationError(
            _("expiration must be at most %(most)d ms (about 49 days), got %(value)d")
            % {"most": MAX_EXPIRATION_MS, "value": value},
            code="expiration",
        )


def validate_property_text(value: Any) -> None:
    if value:
        if not isinstance(value, str):
            raise ValidationError(_("must be a string"), code="not_a_string")
        check_short_string(value, _("Property"), names=False)


def expiration_ms(value: int | timedelta | str | None) -> int | None:
    """``expiration`` as whole milliseconds: an ``int`` (or digit string) is taken as
    milliseconds, a :class:`~datetime.timedelta` is converted (rounded down)."""
    if value is None or value == "":
        return None
    if isinstance(value, timedelta):
        return value // timedelta(milliseconds=1)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError(f"expiration must be whole milliseconds, got {value!r}") from None
    return value


def clean_properties(values: Mapping[str, Any]) -> dict[str, Any]:
    """The properties in ``values`` (keys from :data:`NAMES`) checked and normalised
    (expiration in ms, text ``""`` for unset); ``ValueError`` with one line for the first
    bad one. Unset numbers stay ``None``."""
    unknown = set(values) - set(NAMES)
    if unknown:
        raise ValueError(f"unknown message properties: {', '.join(sorted(unknown))}")
    cleaned: dict[str, Any] = {name: values.get(name) or "" for name in TEXT_NAMES}
    cleaned["priority"] = values.get("priority")
    cleaned["expiration"] = expiration_ms(values.get("expiration"))
    checks = [(validate_priority, "priority"), (validate_expiration, "expiration")]
    checks += [(validate_property_text, name) for name in TEXT_NAMES]
    for check, name in checks:
        try:
            check(cleaned[name])
        except ValidationError as exc:
            text = first_message(exc)
            if name in TEXT_NAMES:
                text = f"{name}: {text}".replace("Property ", "")
            raise ValueError(text) from None
    return cleaned


def properties_problem(message: Any) -> str | None:
    """Why the stored properties of a ``Message`` row cannot be sent, or ``None``."""
    try:
        clean_properties({name: getattr(message, name, None) for name in NAMES})
    except ValueError as exc:
        return str(exc)
    return None


def pika_kwargs(message: Any) -> dict[str, Any]:
    """The ``pika.BasicProperties`` keyword arguments for a row's (or any object's)
    properties; unset ones are left out."""
    kwargs: dict[str, Any] = {}
    for name in TEXT_NAMES:
        value = getattr(message, name, "")
        if value:
            kwargs[name] = value
    priority = getattr(message, "priority", None)
    if priority is not None:
        kwargs["priority"] = priority
    expiration = getattr(message, "expiration", None)
    if expiration is not None:
        kwargs["expiration"] = str(expiration)
    return kwargs
