"""OpenTelemetry tracing (``opentelemetry-api``, the ``otel`` extra), after the
messaging semantic conventions: ``messaging.system`` = ``rabbitmq``,
``messaging.destination.name``, ``messaging.message.id``, ``messaging.operation.type``
/ ``messaging.operation.name``, span names ``"<operation> <destination>"``.

- :func:`creating` — ``publish()``: a ``create`` span (PRODUCER) whose context is stored
  on the row (``Message.traceparent`` / ``tracestate``), so a message the relay sends
  later still belongs to the request's trace;
- :func:`sending` — every send of rows (``publish()``, the relay, the admin): a ``send``
  span per row, child of the stored context; :func:`outgoing_headers` puts the W3C
  ``traceparent`` / ``tracestate`` headers on the AMQP message;
- :func:`processing` — the consumer: the handler runs in a ``process`` span (CONSUMER),
  child of the extracted context and linked to it.

Nothing happens unless a tracer provider is configured (the SDK's, by the
application): with only the API, or without it, every function is a cheap no-op.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode
except ImportError:  # pragma: no cover - exercised without the extra
    trace = None  # type: ignore[assignment]

TRACER_NAME = "messaging"
SYSTEM = "rabbitmq"
TRACE_HEADERS = ("traceparent", "tracestate")


def enabled() -> bool:
    """Is a real tracer provider configured (not the API's proxy / no-op)?"""
    if trace is None:
        return False
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def _tracer() -> Any:
    return trace.get_tracer(TRACER_NAME)


def _destination(message: Any) -> str:
    exchange, routing_key = message.destination
    return exchange or routing_key


def _attributes(operation: str, kind: str, destination: str, message_id: str) -> dict[str, Any]:
    return {
        "messaging.system": SYSTEM,
        "messaging.operation.type": kind,
        "messaging.operation.name": operation,
        "messaging.destination.name": destination,
        "messaging.message.id": message_id,
    }


# --------------------------------------------------------------------------- producer


@contextmanager
def creating(message: Any) -> Iterator[None]:
    """Around saving and sending a new row: a ``create`` span, its context stored on
    ``message`` (before it is saved) for every later send."""
    if not enabled():
        yield
        return
    destination = _destination(message)
    with _tracer().start_as_current_span(
        f"create {destination}",
        kind=SpanKind.PRODUCER,
        attributes=_attributes("create", "create", destination, message.message_id),
    ):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        message.traceparent = carrier.get("traceparent", "")
        message.tracestate = carrier.get("tracestate", "")
        yield


def _stored_context(message: Any) -> Any:
    carrier = {"traceparent": getattr(message, "traceparent", "") or ""}
    if getattr(message, "tracestate", ""):
        carrier["tracestate"] = message.tracestate
    return propagate.extract(carrier) if carrier["traceparent"] else None


@contextmanager
def sending(rows: Sequence[Any]) -> Iterator[None]:
    """Around publishing ``rows``: a ``send`` span per row, child of the row's stored
    context (or of the current one); :func:`outgoing_headers` reads them."""
    if not enabled() or not rows:
        yield
        return
    tracer = _tracer()
    spans = []
    for row in rows:
        destination = _destination(row)
        span = tracer.start_span(
            f"send {destination}",
            context=_stored_context(row),
            kind=SpanKind.PRODUCER,
            attributes=_attributes("send", "send", destination, row.message_id),
        )
        row._send_span = span
        spans.append(span)
    try:
        yield
    finally:
        for row, span in zip(rows, spans, strict=True):
            span.end()
            row._send_span = None


def outgoing_headers(message: Any, headers: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``headers`` plus the trace context of ``message``'s send span (or, without one,
    the context stored on its row)."""
    span = getattr(message, "_send_span", None)
    if span is not None:
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
    elif getattr(message, "traceparent", ""):
        carrier = {"traceparent": message.traceparent}
        if message.tracestate:
            carrier["tracestate"] = message.tracestate
    else:
        return headers
    return {**(headers or {}), **carrier}


# --------------------------------------------------------------------------- consumer


def processing(delivery: Any, consumer: str = "") -> Any:
    """A context manager: the handler of ``delivery`` in a ``process`` span, child of
    the trace context in its headers and linked to it (a no-op when not configured)."""
    if not enabled():
        return nullcontext()
    return _processing(delivery, consumer)


@contextmanager
def _processing(delivery: Any, consumer: str) -> Iterator[None]:
    headers = delivery.properties.headers or {}
    carrier = {k: _text(headers[k]) for k in TRACE_HEADERS if k in headers}
    parent = propagate.extract(carrier) if carrier else None
    links = []
    if parent is not None:
        linked = trace.get_current_span(parent).get_span_context()
        if linked.is_valid:
            links.append(Link(linked))
    attributes = _attributes("process", "process", delivery.queue, delivery.message_id or "")
    attributes["messaging.rabbitmq.destination.routing_key"] = delivery.routing_key or ""
    if consumer:
        attributes["messaging.consumer.group.name"] = consumer
    token = otel_context.attach(parent) if parent is not None else None
    try:
        with _tracer().start_as_current_span(
            f"process {delivery.queue}",
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=attributes,
            record_exception=True,
            set_status_on_exception=True,
        ) as span:
            yield
            span.set_status(Status(StatusCode.OK))
    finally:
        if token is not None:
            otel_context.detach(token)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
