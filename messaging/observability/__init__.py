"""Operating the app: Prometheus metrics, health checks, OpenTelemetry traces and the
fields of structured log records.

The rest of the app calls the hooks below, one call at the point where a thing happens
(they do nothing when the optional libraries are missing):

- consumer: :func:`receipts` (after a receipt commits), :func:`batch` (a batch taken),
  :func:`instrument_handlers` (handler time and the ``process`` span), :func:`beat` /
  :func:`busy` (``--health-file``), :func:`reconnect` (connection lost);
- publishing: :func:`creating` (``publish()``), :func:`sending` and
  :func:`outgoing_headers` (every send), :func:`published` (the outcomes);
- broker: :func:`confirm_wait` (the publisher-confirm wait), :func:`connected`.

The hooks sit below :mod:`messaging.broker` (it calls them): they import the modules that
need neither the broker nor the database — :mod:`.metrics` (the metric objects),
:mod:`.tracing`, :mod:`.logs` (log fields), :mod:`.liveness` — and of the broker only its
error rules (:mod:`messaging.broker.errors`). Above the broker, for commands and views:
:mod:`.gauges` (scrape-time gauges), :mod:`.exposition` (a scrape), :mod:`.health`
(checks), :mod:`.server` (``--metrics-port``) and :mod:`.endpoints` (``messaging.urls``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from django.utils import timezone

from .. import conf
from ..broker.errors import is_temporary
from .liveness import LIVENESS
from .logs import (
    CURRENT_DELIVERY,
    broker_address,
    connection_address,
    log_connected,
    log_fields,
)
from .metrics import (
    BATCH_SIZE,
    CONFIRM_SECONDS,
    CONSUMER_IN_FLIGHT,
    DELIVERIES,
    END_TO_END_SECONDS,
    HANDLER_SECONDS,
    OUTBOX_WAIT_SECONDS,
    PUBLISHED,
    RECONNECTS,
    available,
)
from .tracing import creating, processing, sending
from .tracing import enabled as tracing_enabled
from .tracing import outgoing_headers as _trace_headers

#: Header with the send time (epoch milliseconds: AMQP tables carry no floats) when
#: ``MESSAGING["SENT_AT_HEADER"]`` is on; consumers measure
#: ``messaging_end_to_end_seconds`` from it.
SENT_AT_HEADER = "x-messaging-sent-at"

__all__ = [
    "SENT_AT_HEADER",
    "batch",
    "beat",
    "busy",
    "confirm_wait",
    "connected",
    "creating",
    "instrument_handlers",
    "log_fields",
    "outgoing_headers",
    "published",
    "receipts",
    "reconnect",
    "sending",
]

_METRICS = available()


# --------------------------------------------------------------------------- consumer


def receipts(deliveries: Sequence[Any], outcome: str) -> None:
    """Receipts with ``outcome`` for ``deliveries`` were committed."""
    if not _METRICS or not deliveries:
        return
    outcome = str(outcome)
    counts: dict[str, int] = {}
    for delivery in deliveries:
        counts[delivery.queue] = counts.get(delivery.queue, 0) + 1
    for queue, n in counts.items():
        DELIVERIES.child(queue, outcome).inc(n)
    if outcome == "acked":
        _end_to_end(deliveries)


def _end_to_end(deliveries: Sequence[Any]) -> None:
    now = None
    for delivery in deliveries:
        headers = delivery.properties.headers
        sent = headers.get(SENT_AT_HEADER) if headers else None
        if isinstance(sent, int) and not isinstance(sent, bool):
            now = now or time.time()
            END_TO_END_SECONDS.child(delivery.queue).observe(max(0.0, now - sent / 1000))


def batch(deliveries: Sequence[Any]) -> None:
    """The calling thread took ``deliveries`` to dispatch as one batch."""
    if _METRICS and deliveries:
        BATCH_SIZE.child(deliveries[0].queue).observe(len(deliveries))


def instrument_handlers(handlers: Mapping[str, Any], consumer: str = "") -> dict[str, Any]:
    """``handlers`` timed into ``messaging_handler_seconds``, run in a ``process`` span
    and with the delivery in :data:`.logs.CURRENT_DELIVERY` (for :class:`DeliveryFilter`);
    the metric and the span only when their libraries are there."""
    return {queue: _instrumented(queue, h, consumer) for queue, h in handlers.items()}


def _instrumented(queue: str, handler: Callable[[Any], Any], consumer: str) -> Any:
    timer = HANDLER_SECONDS.child(queue) if _METRICS else None

    @functools.wraps(handler)
    def run(delivery: Any) -> Any:
        started = time.perf_counter()
        context = CURRENT_DELIVERY.set(
            {"message_id": delivery.message_id or "", "queue": queue, "consumer": consumer}
        )
        try:
            with processing(delivery, consumer):
                return handler(delivery)
        finally:
            CURRENT_DELIVERY.reset(context)
            if timer is not None:
                timer.observe(time.perf_counter() - started)

    run.__wrapped_handler__ = handler  # type: ignore[attr-defined]
    return run


def in_flight(count: int) -> None:
    """``count`` deliveries' handlers are running now in this consumer process."""
    if _METRICS:
        CONSUMER_IN_FLIGHT.child().set(max(0, count))


def beat(part: str) -> None:
    """``part`` (``loop``: the calling thread, ``io``: the I/O thread) is alive."""
    LIVENESS.beat(part)


def busy(since: float | None) -> None:
    """The calling thread took a batch (``since``, monotonic) or finished it (None)."""
    LIVENESS.busy(since)


def reconnect(role: str) -> None:
    """A broker connection of ``role`` (``consumer``, ``relay``) was lost; retrying."""
    if _METRICS:
        RECONNECTS.child(role).inc()


def connected(
    target: Any, role: str | None = "", on_event: Callable[[str], None] | None = None
) -> None:
    """A connection (a URL or a pika connection) of ``role`` is open: logged with the
    broker's address, never the password — at INFO (``-v 2``) for a consumer or the
    relay, at DEBUG for a publisher — and told to ``on_event``. ``role`` may be the
    connection's name (``messaging-relay@…`` is the relay's)."""
    role = _role(role)
    address = broker_address(target) if isinstance(target, str) else connection_address(target)
    log_connected(address, role)
    if on_event is not None:
        on_event(f"connected to broker {address}" + (f" ({role})" if role else ""))


def _role(name: str | None) -> str:
    if not name or name.startswith(("messaging@", "messaging publisher")):
        return "publisher"
    if name.startswith("messaging-relay"):
        return "relay"
    if name.startswith("runconsumer"):
        return "consumer"
    return name


# --------------------------------------------------------------------------- publishing


def outgoing_headers(message: Any) -> Mapping[str, Any] | None:
    """The AMQP headers ``message`` is sent with: its row's, the trace context, and
    (``SENT_AT_HEADER`` setting) the send time."""
    headers = message.headers or None
    if tracing_enabled() or bool(getattr(message, "traceparent", "")):
        headers = _trace_headers(message, headers)
    if _sent_at_wanted():
        headers = {**(headers or {}), SENT_AT_HEADER: int(time.time() * 1000)}
    return headers


def _sent_at_wanted() -> bool:
    return bool(conf.get("SENT_AT_HEADER"))


def published(rows: Sequence[Any], outcomes: Sequence[Any]) -> None:
    """The broker's answers for ``rows`` (None: confirmed) were stored."""
    if not _METRICS or not rows:
        return
    now = None
    for row, outcome in zip(rows, outcomes, strict=True):
        exchange, routing_key = row.destination
        destination = exchange or routing_key
        if outcome is None:
            PUBLISHED.child(destination, "published").inc()
            if row.created_at is not None:
                now = now or timezone.now()
                wait = (now - row.created_at).total_seconds()
                OUTBOX_WAIT_SECONDS.child(destination).observe(max(0.0, wait))
        else:
            PUBLISHED.child(destination, "pending" if is_temporary(outcome) else "failed").inc()


@contextmanager
def confirm_wait() -> Iterator[None]:
    """Around one ``publish_many``: from the first send to the last confirm."""
    started = time.perf_counter()
    try:
        yield
    finally:
        if _METRICS:
            CONFIRM_SECONDS.child().observe(time.perf_counter() - started)
