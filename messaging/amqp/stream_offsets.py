"""Streams (RabbitMQ 3.9+): where ``runconsumer --offset`` starts reading — pure code
(``tests/amqp/test_properties_replies_offsets.py``). The value is sent as the
``x-stream-offset`` argument of ``basic.consume``."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime

#: The named offsets RabbitMQ knows.
NAMED_OFFSETS = ("first", "last", "next")

StreamOffset = str | int | datetime


def parse_offset(text: str) -> StreamOffset:
    """``first``, ``last``, ``next``, an offset (a whole number >= 0) or an ISO 8601
    timestamp (naive means UTC) — an ``argparse`` type: anything else is one
    ``ArgumentTypeError`` line."""
    value = text.strip()
    if value in NAMED_OFFSETS:
        return value
    if re.fullmatch(r"[0-9]+", value):
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "expected first, last, next, an offset (a whole number >= 0) or an ISO 8601 "
            f"timestamp such as 2026-12-01T12:00:00+00:00, got {text!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def consume_arguments(offset: StreamOffset | None) -> dict[str, StreamOffset] | None:
    """The ``basic.consume`` arguments for ``offset`` (pika sends a datetime as an AMQP
    timestamp)."""
    return None if offset is None else {"x-stream-offset": offset}
