"""Traces with the OpenTelemetry SDK's in-memory exporter: a view's publish() (relay
mode), the relay's later send and the consumer's ``process`` span are one trace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.test import Client, override_settings
from django.urls import path
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.util._once import Once

from messaging import conf, publish
from messaging.consumer import Consumer
from messaging.models import Message
from messaging.publishing import get_queue, relay

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = {"name": ""}


def order_view(request: HttpRequest) -> JsonResponse:
    """A view as an instrumented site has it: a server span around the request."""
    tracer = trace.get_tracer("tests")
    span = tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER)
    with span, transaction.atomic():
        message = publish(QUEUE["name"], json={"order": 1})
    return JsonResponse({"message_id": message.message_id})


urlpatterns = [path("orders", order_view)]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """An SDK tracer provider for this test only (the API lets one be set once per
    process; the test puts the previous state back)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    saved = trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace.set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = saved


def test_one_trace_from_the_view_through_the_relay_to_the_consumer(spans, queue_name):
    QUEUE["name"] = queue_name
    queue = get_queue(queue_name)
    relay_mode = {**conf.user_settings(), "PUBLISH_MODE": "relay"}
    with override_settings(ROOT_URLCONF=__name__, MESSAGING=relay_mode):
        response = Client().post("/orders")
    assert response.status_code == 200
    row = Message.objects.get(message_id=response.json()["message_id"])
    assert row.status == Message.Status.PENDING and row.traceparent.startswith("00-")
    assert {s.name for s in spans.get_finished_spans()} == {"POST /orders", f"create {queue_name}"}

    assert relay.relay_once().published == 1  # later, in another "process"

    seen = {}

    def handler(delivery):
        seen["span"] = trace.get_current_span().get_span_context()
        seen["headers"] = dict(delivery.properties.headers or {})

    Consumer([queue], {queue_name: handler}, max_messages=1, idle_timeout=20).run()

    by_name = {s.name: s for s in spans.get_finished_spans()}
    request, create = by_name["POST /orders"], by_name[f"create {queue_name}"]
    send, process = by_name[f"send {queue_name}"], by_name[f"process {queue_name}"]
    trace_id = request.context.trace_id
    assert {s.context.trace_id for s in by_name.values()} == {trace_id}
    assert row.traceparent.startswith(f"00-{trace_id:032x}-{create.context.span_id:016x}-")
    assert create.parent.span_id == request.context.span_id
    assert send.parent.span_id == create.context.span_id
    assert process.parent.span_id == send.context.span_id
    assert [link.context.span_id for link in process.links] == [send.context.span_id]
    assert seen["span"].span_id == process.context.span_id  # the handler ran inside it
    assert seen["headers"]["traceparent"].split("-")[2] == f"{send.context.span_id:016x}"
    assert (create.kind, send.kind, process.kind) == (
        SpanKind.PRODUCER,
        SpanKind.PRODUCER,
        SpanKind.CONSUMER,
    )
    assert dict(process.attributes) == {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": queue_name,
        "messaging.message.id": row.message_id,
        "messaging.rabbitmq.destination.routing_key": queue_name,
        "messaging.consumer.group.name": process.attributes["messaging.consumer.group.name"],
    }
    assert send.attributes["messaging.operation.type"] == "send"
    assert create.attributes["messaging.message.id"] == row.message_id


def test_a_failing_handler_marks_its_span(spans, queue_name):
    queue = get_queue(queue_name)
    publish(queue, b"x")

    def handler(delivery):
        raise RuntimeError("boom")

    settings = {**conf.user_settings(), "MAX_ATTEMPTS": 1}
    with override_settings(MESSAGING=settings):
        Consumer([queue], {queue_name: handler}, max_messages=1, idle_timeout=20).run()
    (process,) = [s for s in spans.get_finished_spans() if s.name.startswith("process")]
    assert process.status.status_code.name == "ERROR"
    assert process.events[0].name == "exception"


def test_nothing_happens_without_a_tracer_provider(queue_name, channel):
    message = publish(get_queue(queue_name), b"plain")
    assert (message.traceparent, message.tracestate) == ("", "")
    method, properties, _body = channel.basic_get(queue_name, auto_ack=True)
    assert method is not None and properties.headers is None
