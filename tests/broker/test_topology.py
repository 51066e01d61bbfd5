"""Exchanges and bindings as rows, against the real broker: declarequeues (declaring,
drift, --check), runconsumer declaring its bindings, publishing to an exchange row,
topic matching compared with the broker's own routing, and bad input."""

from __future__ import annotations

import contextlib
import io
import threading
from typing import Any

import pika
import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from messaging import broker, publish
from messaging.amqp.routing import edges_from_rows, route, topic_matches
from messaging.consumer import Consumer
from messaging.exceptions import ExchangeMismatch, NotFound, Unroutable
from messaging.models import Binding, Exchange, Message, Queue
from tests.support.rabbitmq import close_broker_connections, queue_depth
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def exchange_on_broker(name: str) -> bool:
    return broker.check_exchanges([name])[0] == broker.MATCHES


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def raw_publish(exchange: str, routing_key: str, body: bytes = b"x", headers=None) -> None:
    with broker.connection() as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        with contextlib.suppress(pika.exceptions.UnroutableError):
            channel.basic_publish(
                exchange, routing_key, body, pika.BasicProperties(headers=headers)
            )


def topology(topo_names: Any, kind: str = "topic", key: str = "order.*") -> tuple[Exchange, Queue]:
    exchange = Exchange.objects.create(name=topo_names("orders"), exchange_type=kind)
    queue = Queue.objects.create(name=topo_names("created"))
    Binding.objects.create(source=exchange, queue=queue, routing_key=key)
    return exchange, queue


# --------------------------------------------------------------------------- declarequeues


def test_declarequeues_declares_exchanges_queues_bindings_idempotently(topo_names):
    exchange, queue = topology(topo_names)
    for _ in range(2):
        out, err = run("declarequeues")
        assert f"declared exchange {exchange.name}" in out
        assert f"declared {queue.name} (0 ready)" in out
        assert f"declared binding {exchange.name} → {queue.name} [order.*]" in out
        assert err == ""
    raw_publish(exchange.name, "order.created")
    raw_publish(exchange.name, "invoice.paid")
    assert wait_for(lambda: queue_depth(queue.name) == 1)


def test_declarequeues_reports_exchange_drift_and_exits_non_zero(topo_names, manage):
    exchange, queue = topology(topo_names)
    with broker.connection() as conn:
        conn.channel().exchange_declare(exchange.name, exchange_type="fanout", durable=True)
    proc = manage("declarequeues")
    assert proc.returncode != 0
    err = proc.stderr.decode()
    assert (
        f"drift: exchange '{exchange.name}' already exists on the broker with other "
        "settings: type is 'fanout' on the broker but 'topic' was declared" in err
    )
    assert f"declared {queue.name}" in proc.stdout.decode()  # the queue still is


def test_check_declares_nothing_then_passes_then_sees_drift(topo_names, manage):
    exchange, queue = topology(topo_names)
    proc = manage("declarequeues", "--check")
    assert proc.returncode != 0
    err = proc.stderr.decode()
    assert f"missing: exchange {exchange.name} is not on the broker" in err
    assert f"missing: queue {queue.name} is not on the broker" in err
    assert f"missing: binding {exchange.name} → {queue.name} [order.*]" in err
    assert not exchange_on_broker(exchange.name)
    assert broker.check_queues([queue.name])[0] is None  # nothing was declared

    run("declarequeues")
    proc = manage("declarequeues", "--check")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert f"ok: exchange {exchange.name}" in out
    assert f"ok: queue {queue.name} (0 ready)" in out
    assert f"ok: binding {exchange.name} → {queue.name} [order.*]" in out

    Exchange.objects.filter(pk=exchange.pk).update(durable=False)  # the row drifts
    proc = manage("declarequeues", "--check")
    assert proc.returncode != 0
    assert "drift: exchange" in proc.stderr.decode()
    assert "durable is 'true' on the broker but 'false' was declared" in proc.stderr.decode()


def test_check_reports_queue_drift_without_changing_the_queue(topo_names, manage, channel):
    queue = Queue.objects.create(name=topo_names("q"), arguments={"x-max-length": 5})
    channel.queue_declare(queue.name, durable=True)
    proc = manage("declarequeues", "--check")
    assert proc.returncode != 0
    assert "drift: queue" in proc.stderr.decode()
    assert "x-max-length" in proc.stderr.decode()


def test_a_binding_whose_queue_row_is_deleted(topo_names):
    exchange, queue = topology(topo_names)
    run("declarequeues")
    queue.delete()
    assert not Binding.objects.exists()  # the binding row goes with its queue row
    out, err = run("declarequeues")
    assert f"declared exchange {exchange.name}" in out and err == ""
    types = {exchange.name: "topic"}
    assert route(exchange.name, "order.created", types=types, edges=[]).queues == []
    # Only rows were deleted: on the broker the queue and its binding stay (as when a
    # Queue row is deleted in the admin), so the message still lands there.
    raw_publish(exchange.name, "order.created")
    assert wait_for(lambda: queue_depth(queue.name) == 1)


# --------------------------------------------------------------------------- runconsumer


def test_runconsumer_declares_bindings_at_start_and_after_a_reconnect(topo_names, settings):
    settings.MESSAGING = {**settings.MESSAGING, "RECONNECT_DELAY": 0.1}
    exchange, queue = topology(topo_names, kind="direct", key="created")
    fanout = Exchange.objects.create(name=topo_names("audit"), exchange_type="fanout")
    Binding.objects.create(source=fanout, destination_exchange=exchange, routing_key="")
    Binding.objects.create(source=exchange, queue=queue, routing_key="other")
    seen: list[bytes] = []
    name = f"topology-{queue.name}"  # its broker connection, closed below by this name
    consumer = Consumer([queue], {queue.name: lambda d: seen.append(d.body)}, name=name)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        assert consumer.wait_until_consuming(20)
        raw_publish(exchange.name, "created", b"one")
        wait_for(lambda: seen == [b"one"])
        with broker.connection() as conn:
            conn.channel().queue_unbind(queue.name, exchange.name, routing_key="created")
            conn.channel().exchange_delete(fanout.name)
        generation = consumer.io.current_generation()
        assert close_broker_connections(f"runconsumer {name}") == 1  # not others' (xdist)
        wait_for(lambda: consumer.io.current_generation() > generation)
        raw_publish(exchange.name, "created", b"two")
        raw_publish(fanout.name, "created", b"three")  # e2e binding declared again
        wait_for(lambda: seen == [b"one", b"two", b"three"])
    finally:
        consumer.stop()
        thread.join(20)


# --------------------------------------------------------------------------- publishing


def test_publish_declares_the_exchange_from_its_row(topo_names, channel):
    exchange = Exchange.objects.create(name=topo_names("orders"), exchange_type="topic")
    with pytest.raises(Unroutable):
        publish(exchange=exchange.name, routing_key="order.created", body=b"x")
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert message.last_error == (
        f"unroutable: no queue bound for exchange {exchange.name} routing key order.created"
    )
    assert broker.check_exchanges([exchange])[0] == broker.MATCHES  # declared as a topic
    queue = topo_names("q")
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, exchange.name, routing_key="order.#")
    sent = publish(exchange=exchange.name, routing_key="order.created", body=b"y")
    sent.refresh_from_db()
    assert sent.status == Message.Status.PUBLISHED
    assert queue_depth(queue) == 1


def test_publish_to_an_exchange_that_drifted_from_its_row_fails(topo_names, channel):
    exchange = Exchange.objects.create(name=topo_names("orders"), exchange_type="topic")
    channel.exchange_declare(exchange.name, exchange_type="direct", durable=True)
    with pytest.raises(ExchangeMismatch, match="type is 'direct' on the broker"):
        publish(exchange=exchange.name, routing_key="k", body=b"x")
    assert Message.objects.get().status == Message.Status.FAILED


def test_an_exchange_without_a_row_is_used_as_it_is(topo_names, channel):
    name, queue = topo_names("logs"), topo_names("q")
    channel.exchange_declare(name, exchange_type="fanout", durable=False, auto_delete=False)
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, name)
    message = publish(exchange=name, routing_key="", body=b"hello")
    message.refresh_from_db()
    assert message.status == Message.Status.PUBLISHED
    assert queue_depth(queue) == 1
    assert not Exchange.objects.exists()  # no row was made for it


def test_a_missing_exchange_is_a_clear_error(topo_names):
    name = topo_names("nowhere")
    with pytest.raises(NotFound, match=f"no exchange '{name}'"):
        publish(exchange=name, routing_key="k", body=b"x")
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert f"no exchange '{name}'" in message.last_error
    assert not exchange_on_broker(name)


def test_send_exchange_declares_the_exchange_from_its_row(topo_names, manage):
    exchange, queue = topology(topo_names, kind="direct", key="created")
    run("declarequeues")
    with broker.connection() as conn:
        conn.channel().exchange_delete(exchange.name)  # declared again by send
        channel = conn.channel()
        channel.queue_declare(queue.name, durable=True)
    proc = manage("send", "created", "hi", "--exchange", exchange.name)
    assert proc.returncode != 0  # the binding went with the exchange: unroutable
    assert (
        f"unroutable: no queue bound for exchange {exchange.name} routing key created"
        in proc.stderr.decode()
    )
    assert exchange_on_broker(exchange.name)
    run("declarequeues")
    proc = manage("send", "created", "hi", "--exchange", exchange.name)
    assert proc.returncode == 0, proc.stderr
    assert queue_depth(queue.name) == 1


# --------------------------------------------------------------------------- the broker's routing


PATTERNS = ["*", "#", "a.*", "a.#", "*.b", "a.#.b", "#.b", "*.*", "", "a..b", "a.*.b", "a."]
KEYS = ["", "a", "b", "a.b", "a.x.b", "a..b", "a.", ".", "x.b", "a.b.c", "a.x.y.b"]


def test_topic_matching_agrees_with_the_broker(topo_names):
    exchange = Exchange.objects.create(name=topo_names("topic"), exchange_type="topic")
    queues = {}
    for index, pattern in enumerate(PATTERNS):
        queue = Queue.objects.create(name=topo_names(f"p{index}"), dead_lettering=False)
        Binding.objects.create(source=exchange, queue=queue, routing_key=pattern)
        queues[queue.name] = pattern
    run("declarequeues")
    bindings = Binding.objects.select_related("source", "queue", "destination_exchange")
    edges = edges_from_rows(bindings)
    expected: dict[str, int] = dict.fromkeys(queues, 0)
    for key in KEYS:
        raw_publish(exchange.name, key, key.encode())
        for name in route(exchange.name, key, types={exchange.name: "topic"}, edges=edges).queues:
            expected[name] += 1
    for name, pattern in queues.items():
        wanted = sum(topic_matches(pattern, key) for key in KEYS)
        assert expected[name] == wanted
    with broker.connection() as conn:
        channel = conn.channel()
        landed = {}
        for name in queues:
            keys = []
            while True:
                method, _props, body = channel.basic_get(name, auto_ack=True)
                if method is None:
                    break
                keys.append(body.decode())
            landed[name] = sorted(keys)
    computed = {
        name: sorted(k for k in KEYS if topic_matches(pattern, k))
        for name, pattern in queues.items()
    }
    assert landed == computed


def test_headers_matching_agrees_with_the_broker(topo_names):
    exchange = Exchange.objects.create(name=topo_names("hdr"), exchange_type="headers")
    cases = {
        "all": {"x-match": "all", "format": "pdf", "type": "report"},
        "any": {"x-match": "any", "format": "pdf", "type": "report"},
    }
    for label, arguments in cases.items():
        queue = Queue.objects.create(name=topo_names(label), dead_lettering=False)
        Binding.objects.create(source=exchange, queue=queue, arguments=arguments)
    run("declarequeues")
    edges = edges_from_rows(Binding.objects.select_related("source", "queue"))
    messages = [{"format": "pdf", "type": "report"}, {"format": "pdf"}, {"format": "zip"}]
    for headers in messages:
        raw_publish(exchange.name, "", b"m", headers=headers)
    expected = {topo_names(label): 0 for label in cases}
    for headers in messages:
        hit = route(
            exchange.name, "", types={exchange.name: "headers"}, edges=edges, headers=headers
        )
        for name in hit.queues:
            expected[name] += 1
    assert expected == {topo_names("all"): 1, topo_names("any"): 2}
    for name, count in expected.items():
        assert wait_for(lambda name=name, count=count: queue_depth(name) == count)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"name": "x.bad-type", "exchange_type": "fan"}, "Value 'fan' is not a valid choice."),
        ({"name": "amq.mine"}, "Exchange names starting with 'amq.' are reserved"),
        ({"name": ""}, "This field cannot be blank."),
    ],
)
def test_bad_exchanges_are_refused_and_nothing_is_saved(fields, text):
    with pytest.raises(ValidationError) as info:
        Exchange.objects.create(**fields)
    lines = info.value.messages
    assert len(lines) == 1 and text in lines[0], lines
    assert not Exchange.objects.exists()


def test_the_database_refuses_builtin_exchanges_behind_the_orm():
    for fields in ({"name": "amq.direct"}, {"name": "ok", "exchange_type": "nope"}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Exchange.objects.bulk_create([Exchange(**fields)])  # bulk_create skips save()
    assert not Exchange.objects.exists()


def test_a_wildcard_on_a_direct_exchange_is_refused(topo_names):
    exchange = Exchange.objects.create(name=topo_names("direct"), exchange_type="direct")
    queue = Queue.objects.create(name=topo_names("q"))
    with pytest.raises(ValidationError) as info:
        Binding.objects.create(source=exchange, queue=queue, routing_key="order.#")
    assert info.value.messages == [
        "Routing key 'order.#' has a wildcard (* or #), but a direct exchange matches keys "
        "literally: use a topic exchange for patterns."
    ]
    assert not Binding.objects.exists()


def test_a_binding_has_exactly_one_destination(topo_names):
    exchange = Exchange.objects.create(name=topo_names("e"), exchange_type="fanout")
    other = Exchange.objects.create(name=topo_names("f"), exchange_type="fanout")
    queue = Queue.objects.create(name=topo_names("q"))
    for fields in ({}, {"queue": queue, "destination_exchange": other}):
        with pytest.raises(ValidationError, match="exactly one of the two"):
            Binding.objects.create(source=exchange, **fields)
        with pytest.raises(IntegrityError), transaction.atomic():
            Binding.objects.bulk_create([Binding(source=exchange, **fields)])
    assert not Binding.objects.exists()


def test_bindings_are_unique_per_source_destination_key_and_arguments(topo_names):
    exchange = Exchange.objects.create(name=topo_names("h"), exchange_type="headers")
    queue = Queue.objects.create(name=topo_names("q"))
    Binding.objects.create(source=exchange, queue=queue, arguments={"a": "1", "x-match": "any"})
    duplicate = Binding(source=exchange, queue=queue, arguments={"x-match": "any", "a": "1"})
    with pytest.raises(ValidationError, match="already bound"):
        duplicate.full_clean()  # what the admin form runs
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()
    Binding.objects.create(source=exchange, queue=queue, arguments={"a": "2", "x-match": "any"})
    assert Binding.objects.count() == 2


def test_declarequeues_check_on_a_broker_that_is_down(topo_names, settings):
    topology(topo_names)
    settings.MESSAGING = {**settings.MESSAGING, "BROKER_URL": "amqp://guest:guest@127.0.0.1:1/%2F"}
    with pytest.raises(CommandError, match="cannot reach the broker"):
        run("declarequeues", "--check")
