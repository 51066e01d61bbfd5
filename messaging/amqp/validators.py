"""Validation of everything the broker would otherwise refuse (or choke on) at run time.

One set of rules serves the models, the admin forms, :func:`messaging.publish`, the
commands and the relay, so a message the broker cannot take is refused *before* it is
saved — and a row saved before these rules existed is failed for good by
:func:`message_problem` instead of stalling everything behind it.

AMQP 0-9-1 sends names, routing keys, content types and header keys as *short strings*:
at most 255 bytes of UTF-8 (:mod:`.short_strings`). Every limit here is counted in bytes,
not characters. The rules of header tables live in :mod:`.headers`, those of the other
properties in :mod:`.properties`; this module adds names and routing keys, and checks a
whole message (its destination, then :class:`~.properties.Properties`).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .headers import MAX_HEADER_DEPTH as MAX_HEADER_DEPTH
from .headers import RESERVED_HEADER_PREFIXES as RESERVED_HEADER_PREFIXES
from .headers import RESERVED_HEADERS as RESERVED_HEADERS
from .headers import validate_headers
from .properties import properties_problem, validate_content_type
from .short_strings import MAX_NAME_BYTES, check_short_string, first_message, utf8_size

#: Suffixes of the queues the app derives from a queue's name (``<name>.dlq``).
DERIVED_QUEUE_SUFFIXES: tuple[str, ...] = (".dlq",)


def derived_queue_names(name: str) -> list[str]:
    """The queues the app declares for queue ``name`` besides itself."""
    return [name + suffix for suffix in DERIVED_QUEUE_SUFFIXES]


def validate_queue_name(name: str) -> None:
    """Refuse what RabbitMQ would refuse or choke on: empty, control characters (the
    broker never answers a declare of a name with a newline), surrounding whitespace,
    over 255 bytes of UTF-8 — itself or any queue derived from it (``<name>.dlq``) — and
    the broker's reserved ``amq.`` prefix."""
    if not name:
        raise ValidationError(_("A queue name cannot be empty."), code="empty")
    check_short_string(name, _("Queue name"), names=True)
    for suffix in DERIVED_QUEUE_SUFFIXES:
        size = utf8_size(name + suffix)
        if size > MAX_NAME_BYTES:
            raise ValidationError(
                _(
                    "Queue name is %(size)d bytes of UTF-8, so its queue <name>%(suffix)s "
                    "would pass AMQP's 255 bytes: use at most %(most)d bytes."
                )
                % {
                    "size": utf8_size(name),
                    "suffix": suffix,
                    "most": MAX_NAME_BYTES - utf8_size(suffix),
                },
                code="too_long",
            )
    if name.startswith("amq."):
        raise ValidationError(
            _("Queue names starting with 'amq.' are reserved by the broker."), code="reserved"
        )


def validate_exchange_name(name: str) -> None:
    """An exchange to publish to: ``""`` (the default exchange) or a name without control
    characters or surrounding whitespace, at most 255 bytes."""
    if name:
        check_short_string(name, _("Exchange name"), names=True)


def validate_routing_key(value: str) -> None:
    if value:
        check_short_string(value, _("Routing key"), names=False)


def validate_x_arguments(value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError(_("Arguments must be a JSON object."), code="not_an_object")
    for key in value:
        if not isinstance(key, str) or not key.startswith("x-"):
            raise ValidationError(
                _("Argument %(key)r is not an x- argument.") % {"key": key},
                code="not_an_x_argument",
            )


# --------------------------------------------------------------------------- a whole message


def validate_message_fields(
    *,
    queue: str | None = None,
    exchange: str = "",
    routing_key: str = "",
    content_type: str = "",
    headers: Any = None,
) -> None:
    """Every rule above for one message's destination and properties (ValidationError)."""
    if queue is not None:
        validate_queue_name(queue)
    validate_exchange_name(exchange)
    validate_routing_key(routing_key)
    validate_content_type(content_type)
    validate_headers(headers)


def message_problem(message: Any) -> str | None:
    """Why the ``Message`` row (saved or not) cannot be sent to the broker as it is, in
    one line, or ``None`` when it can. Pure Python: the relay runs it on every row."""
    row = type(message)._meta.get_field("queue").get_cached_value(message, None)
    if row is None and message.queue_id is not None:
        row = message.queue
    queue = row.name if row is not None else None
    try:
        validate_message_fields(
            queue=queue, exchange=message.exchange or "", routing_key=message.routing_key or ""
        )
    except ValidationError as exc:
        return f"invalid message: {first_message(exc)}"
    problem = properties_problem(message)
    return None if problem is None else f"invalid message: {problem}"
