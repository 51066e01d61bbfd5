"""Validation of everything the broker would otherwise refuse (or choke on) at run time.

One set of rules serves the models, the admin forms, :func:`messaging.publish`, the
commands and the relay, so a message the broker cannot take is refused *before* it is
saved — and a row saved before these rules existed is failed for good by
:func:`message_problem` instead of stalling everything behind it.

AMQP 0-9-1 sends names, routing keys, content types and header keys as *short strings*:
at most 255 bytes of UTF-8. Every limit here is counted in bytes, not characters.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

MAX_NAME_BYTES = 255  # AMQP 0-9-1 shortstr
#: Deepest nesting of lists/tables accepted in headers (the broker and pika recurse).
MAX_HEADER_DEPTH = 16
#: Suffixes of the queues the app derives from a queue's name (``<name>.dlq``).
DERIVED_QUEUE_SUFFIXES: tuple[str, ...] = (".dlq",)
#: Headers the broker or the app writes itself; a producer may not set them.
RESERVED_HEADERS = (
    "x-death",
    "x-delivery-count",
    "x-messaging-death",
    "x-messaging-attempts",
    "x-messaging-retry",
)
RESERVED_HEADER_PREFIXES = ("x-first-death-", "x-last-death-")


def utf8_size(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def derived_queue_names(name: str) -> list[str]:
    """The queues the app declares for queue ``name`` besides itself."""
    return [name + suffix for suffix in DERIVED_QUEUE_SUFFIXES]


def _control_character(value: str) -> str | None:
    """The first control (or otherwise invisible format) character in ``value``."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            return char
    return None


def _check_short_string(value: str, what: str, *, names: bool) -> None:
    """Shared rules: no control characters, at most 255 bytes; for names also no
    surrounding whitespace."""
    char = _control_character(value)
    if char is not None:
        raise ValidationError(
            _("%(what)s contains the control character %(char)s, which is not allowed.")
            % {"what": what, "char": f"U+{ord(char):04X}"},
            code="control_character",
        )
    if names and value != value.strip():
        raise ValidationError(
            _("%(what)s starts or ends with whitespace, which is not allowed.") % {"what": what},
            code="whitespace",
        )
    size = utf8_size(value)
    if size > MAX_NAME_BYTES:
        raise ValidationError(
            _("%(what)s is %(size)d bytes of UTF-8; AMQP allows at most 255.")
            % {"what": what, "size": size},
            code="too_long",
        )


def validate_queue_name(name: str) -> None:
    """Refuse what RabbitMQ would refuse or choke on: empty, control characters (the
    broker never answers a declare of a name with a newline), surrounding whitespace,
    over 255 bytes of UTF-8 — itself or any queue derived from it (``<name>.dlq``) — and
    the broker's reserved ``amq.`` prefix."""
    if not name:
        raise ValidationError(_("A queue name cannot be empty."), code="empty")
    _check_short_string(name, _("Queue name"), names=True)
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
        _check_short_string(name, _("Exchange name"), names=True)


def validate_routing_key(value: str) -> None:
    if value:
        _check_short_string(value, _("Routing key"), names=False)


def validate_content_type(value: str) -> None:
    if value:
        _check_short_string(value, _("Content type"), names=False)


def validate_x_arguments(value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError(_("Arguments must be a JSON object."), code="not_an_object")
    for key in value:
        if not isinstance(key, str) or not key.startswith("x-"):
            raise ValidationError(
                _("Argument %(key)r is not an x- argument.") % {"key": key},
                code="not_an_x_argument",
            )


# --------------------------------------------------------------------------- headers


def _cut(text: str) -> str:
    return text if len(text) <= 40 else text[:40] + "…"


def _shown(key: Any) -> str:
    """A header key as an error message names it: repr, cut after 40 characters."""
    if isinstance(key, str) and len(key) > 40:
        return repr(key[:40]) + "…"
    return repr(key)


def _header_error(where: str, text: str) -> ValidationError:
    return ValidationError(
        _("header %(where)s: %(text)s") % {"where": where, "text": text}, code="invalid_header"
    )


def _check_header_key(key: Any, where: str) -> None:
    if not isinstance(key, str):
        raise _header_error(where, _("keys must be strings, not %s") % type(key).__name__)
    if not key:
        raise _header_error(where, _("keys cannot be empty"))
    size = utf8_size(key)
    if size > MAX_NAME_BYTES:
        raise _header_error(
            where, _("the key is %d bytes of UTF-8; AMQP allows at most 255") % size
        )


def _check_header_value(value: Any, where: str, depth: int) -> None:
    if depth > MAX_HEADER_DEPTH:
        raise _header_error(where, _("nested deeper than %d levels") % MAX_HEADER_DEPTH)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, float):
        raise _header_error(
            where,
            _("%r is a float, which AMQP tables (pika) cannot carry; send it as a string") % value,
        )
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise _header_error(where, _("%d does not fit in 64 bits") % value)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            inner = f"{where}.{_shown(key) if not isinstance(key, str) else _cut(key)}"
            _check_header_key(key, inner)
            _check_header_value(item, inner, depth + 1)
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_header_value(item, f"{where}[{index}]", depth + 1)
        return
    raise _header_error(
        where,
        _("%s values cannot be sent (use strings, numbers, lists or objects)")
        % type(value).__name__,
    )


def validate_headers(headers: Any) -> None:
    """Refuse headers that cannot travel as an AMQP table, or that the broker and the app
    write themselves (``x-death``, ``x-delivery-count``, ``x-messaging-death``…).

    JSON's strings, integers (64-bit), booleans, null, lists and objects can travel;
    floats, bytes and other Python objects cannot; keys are strings of at most 255 bytes;
    nesting is at most :data:`MAX_HEADER_DEPTH` deep."""
    if headers is None:
        return
    if not isinstance(headers, Mapping):
        raise ValidationError(_("Headers must be a JSON object (a dict)."), code="invalid_header")
    for key, value in headers.items():
        _check_header_key(key, _shown(key))
        if key in RESERVED_HEADERS or key.startswith(RESERVED_HEADER_PREFIXES):
            raise _header_error(
                _shown(key), _("reserved: the broker or this app sets it, a producer may not")
            )
        _check_header_value(value, _shown(key), 1)


# --------------------------------------------------------------------------- a whole message


def first_message(error: ValidationError) -> str:
    """The one line of a ValidationError."""
    return error.messages[0] if error.messages else str(error)


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
            queue=queue,
            exchange=message.exchange or "",
            routing_key=message.routing_key or "",
            content_type=message.content_type or "",
            headers=message.headers,
        )
    except ValidationError as exc:
        return f"invalid message: {first_message(exc)}"
    from .properties import properties_problem

    problem = properties_problem(message)
    return None if problem is None else f"invalid message: {problem}"
