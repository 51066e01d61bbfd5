"""Structured log fields. The consumer's, publisher's and relay's records carry these
``extra`` attributes where they apply, so a JSON formatter emits them as fields:

=============  =====================================================================
``message_id`` the AMQP ``message_id`` (the ``Message`` row's)
``queue``      the queue consumed from, or the destination published to
``consumer``   the consumer's name (``runconsumer --name``, default host:pid)
``outcome``    the receipt's outcome (``acked``, ``requeued``, ``dead_lettered``, …) or
               the publish outcome (``published``, ``pending``, ``failed``)
``attempt``    1 for the first delivery, 2 for the first retry, …
``broker``     a broker node's ``host:port/vhost`` (never the user or password)
``role``       which connection: ``consumer``, ``publisher``, ``relay``
=============  =====================================================================

:class:`JsonFormatter` writes one JSON object per record with them (any ``extra`` is
kept); python-json-logger and structlog's stdlib bridge pick them up as well.
:class:`DeliveryFilter` adds ``message_id``, ``queue`` and ``consumer`` to the records a
handler logs while it runs.
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

#: The ``extra`` names the app uses (documented above: a public interface).
FIELDS = ("message_id", "queue", "consumer", "outcome", "attempt", "broker", "role")

logger = logging.getLogger("messaging.broker")

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def log_fields(
    delivery: Any = None,
    *,
    message: Any = None,
    message_id: str | None = None,
    queue: str | None = None,
    consumer: str | None = None,
    outcome: str | None = None,
    attempt: int | None = None,
) -> dict[str, Any]:
    """The ``extra`` dict for a record about ``delivery`` or a ``Message`` row (and/or
    the fields given)."""
    fields: dict[str, Any] = {}
    if message is not None:
        exchange, routing_key = message.destination
        fields["message_id"] = message.message_id
        fields["queue"] = exchange or routing_key
    if delivery is not None:
        fields["message_id"] = delivery.message_id or ""
        fields["queue"] = delivery.queue
    given = {
        "message_id": message_id,
        "queue": queue,
        "consumer": consumer,
        "outcome": None if outcome is None else str(outcome),
        "attempt": attempt,
    }
    fields.update({k: v for k, v in given.items() if v is not None})
    return fields


def broker_address(url: str) -> str:
    """``host:port/vhost`` of a broker URL: what a log line may show of it."""
    try:
        parts = urlsplit(url)
        port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
        vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        return f"{parts.hostname or 'localhost'}:{port}/{quote(vhost, safe='')}"
    except ValueError:
        return "<unparseable URL>"


def connection_address(conn: Any) -> str:
    """``host:port/vhost`` of an open pika connection."""
    params = getattr(getattr(conn, "_impl", None), "params", None)
    if params is None:
        return "<unknown broker>"
    return f"{params.host}:{params.port}/{quote(params.virtual_host, safe='')}"


def log_connected(address: str, role: str = "") -> None:
    level = logging.INFO if role in ("consumer", "relay") else logging.DEBUG
    logger.log(
        level,
        "connected to broker %s%s", address, f" ({role})" if role else "",
        extra={"broker": address, "role": role},
    )  # fmt: skip


#: The delivery whose handler runs on this thread (set by the instrumented handler).
CURRENT_DELIVERY: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "messaging_delivery", default=None
)


class DeliveryFilter(logging.Filter):
    """Attach to a handler (``"filters": [...]`` in LOGGING): records logged while a
    consumer's handler runs get that delivery's ``message_id``, ``queue`` and
    ``consumer`` unless they set them."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = CURRENT_DELIVERY.get()
        if fields:
            for key, value in fields.items():
                if not hasattr(record, key):
                    setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the fields above and
    any other ``extra``; the traceback as ``exc_info``."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)
