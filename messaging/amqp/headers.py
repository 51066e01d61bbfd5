"""AMQP header tables: the headers the broker and this app write themselves (a producer
may not set them), and what a table can carry (:func:`validate_headers`).

Pure code; :mod:`messaging.broker` writes these headers, :mod:`.retry_delays` reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .short_strings import MAX_NAME_BYTES, utf8_size

#: Written by the consumer when it moves a message to ``<queue>.dlq``: a list of tables
#: {queue, reason, attempts, error, consumer, time} (newest last).
DEATH_HEADER = "x-messaging-death"
#: Failed attempts before a copy back from a delay queue (``RETRY_DELAY`` > 0), an int;
#: absent on a message's first delivery (see :mod:`messaging.amqp.retry_delays`).
ATTEMPTS_HEADER = "x-messaging-attempts"
#: The retry history of a delayed copy: tables {queue, attempt, error, consumer,
#: delay_ms, time}, newest last.
RETRY_HEADER = "x-messaging-retry"
#: Written by the broker: its dead-letter history, and a quorum queue's delivery count.
BROKER_DEATH_HEADER = "x-death"
DELIVERY_COUNT_HEADER = "x-delivery-count"

#: Headers the broker or the app writes itself; a producer may not set them.
RESERVED_HEADERS = (
    BROKER_DEATH_HEADER,
    DELIVERY_COUNT_HEADER,
    DEATH_HEADER,
    ATTEMPTS_HEADER,
    RETRY_HEADER,
)
RESERVED_HEADER_PREFIXES = ("x-first-death-", "x-last-death-")
#: Deepest nesting of lists/tables accepted in headers (the broker and pika recurse).
MAX_HEADER_DEPTH = 16


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
