"""A real ``runconsumer --metrics-port`` scraped over HTTP while and after it consumes:
the delivery counters equal the receipts table, per outcome; and multiprocess mode."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest
from django.test import Client

from messaging import conf
from messaging.models import Queue, Receipt
from messaging.observability.gauges import GaugeCollector
from messaging.publishing import get_queue
from tests.support.consumers import stop_and_wait, wait_running
from tests.support.environment import settings_env
from tests.support.exactly_once import publish_many
from tests.support.metrics import delivery_counts, receipt_counts, samples, scrape
from tests.support.ports import free_port
from tests.support.waiting import wait_for

HANDLER = "tests.support.observability_handlers.mixed"
pytestmark = pytest.mark.django_db(transaction=True)


def _publish_mixed(queue: Queue) -> int:
    """20 good, 3 failing (dead-lettered after 2 attempts), 2 rejected."""
    publish_many(queue, 20, prefix="ok")
    publish_many(queue, 3, prefix="bad")
    publish_many(queue, 2, prefix="no")
    return 25


def _settled(queue: str, expected: int) -> bool:
    """Every message has its final receipt (acked, dead_lettered or rejected)."""
    final = Receipt.objects.filter(
        queue_name=queue, outcome__in=["acked", "dead_lettered", "rejected"]
    ).count()
    return final == expected


def test_counters_equal_the_receipts_table(start_consumer, queue_name):
    queue = get_queue(queue_name)
    port = free_port()
    consumer = start_consumer(
        queue_name,
        "--metrics-port",
        str(port),
        "--prefetch",
        "10",
        handler=HANDLER,
        env=settings_env(MAX_ATTEMPTS=2),
    )
    wait_running(consumer, lambda: _can_scrape(port))
    total = _publish_mixed(queue)
    # During: the scrape parses and never counts more than the table holds at the end.
    during = scrape(port)
    assert sum(delivery_counts(during, queue_name).values()) <= total + 3
    wait_running(consumer, lambda: _settled(queue_name, total))
    after = scrape(port)
    expected = receipt_counts(queue_name)
    assert expected == {"acked": 20, "requeued": 3, "dead_lettered": 3, "rejected": 2}
    assert delivery_counts(after, queue_name) == expected
    receipts = sum(expected.values())
    batch_sum = samples(after, "messaging_batch_size_sum")[(("queue", queue_name),)]
    assert batch_sum == receipts  # each delivery was in exactly one batch
    handler_runs = samples(after, "messaging_handler_seconds_count")[(("queue", queue_name),)]
    assert handler_runs >= receipts  # a batch that failed is redone one by one
    # Scrape-time gauges (cached a few seconds): the broker's view and the registry.
    wanted = {"queue_consumers": 1, "queue_messages": 0, "dead_letter_messages": 5}
    wait_running(consumer, lambda: _gauges(scrape(port), queue_name) == wanted, timeout=30)
    assert samples(scrape(port), "messaging_consumers")[(("state", "running"),)] >= 1
    stop_and_wait(consumer)


def _gauges(text: str, queue: str) -> dict[str, float | None]:
    names = ("queue_consumers", "queue_messages", "dead_letter_messages")
    return {n: samples(text, f"messaging_{n}").get((("queue", queue),)) for n in names}


def _can_scrape(port: int) -> bool:
    try:
        return bool(scrape(port, timeout=2))
    except OSError:
        return False


def test_multiprocess_mode_adds_up_two_consumers(start_consumer, queue_name, tmp_path, monkeypatch):
    queue = get_queue(queue_name)
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    ports = [free_port(), free_port()]
    consumers = [
        start_consumer(queue_name, "--metrics-port", str(port), "--prefetch", "1", env=env)
        for port in ports
    ]
    for consumer, port in zip(consumers, ports, strict=True):
        wait_running(consumer, lambda port=port: _can_scrape(port))
    publish_many(queue, 40)
    wait_for(lambda: receipt_counts(queue_name)["acked"] == 40, timeout=60)
    by_consumer = Receipt.objects.filter(queue_name=queue_name).values_list(
        "consumer_pid", flat=True
    )
    assert len(set(by_consumer)) == 2, "both consumers took messages"
    # Each process's own server reports every process's counters (merged from the files).
    for port in ports:
        assert delivery_counts(scrape(port), queue_name) == {"acked": 40}
    for consumer in consumers:
        stop_and_wait(consumer)
    assert len(list(metrics_dir.glob("counter_*.db"))) == 2
    # The web view (gunicorn's case) merges the same files.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    GaugeCollector.shared().clear()
    response = Client().get("/messaging/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert delivery_counts(text, queue_name) == {"acked": 40}
    assert samples(text, "messaging_queue_consumers")[(("queue", queue_name),)] == 0


def test_metrics_port_refuses_a_port_in_use(manage, queue_name):
    import socket

    get_queue(queue_name)
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = manage("runconsumer", queue_name, "--metrics-port", str(port), "--idle-timeout", "1")
    assert r.returncode == 1
    assert f"--metrics-port {port}:" in r.stderr.decode()
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR") is None


def test_relay_metrics_and_end_to_end_latency(spawn, start_consumer, queue_name):
    """The relay's /metrics counts what it published and the outbox wait; with
    SENT_AT_HEADER the consumer measures each message's end-to-end latency."""
    from messaging.models import Message

    queue = get_queue(queue_name)
    Message.objects.bulk_create([Message(queue=queue, body=b"r%d" % i) for i in range(12)])
    relay_port, consumer_port = free_port(), free_port()
    env = settings_env(SENT_AT_HEADER=True)
    relay = spawn(
        "relay", "--metrics-port", str(relay_port), "--interval", "0.2", "-v", "2", env=env
    )
    wait_for(lambda: Message.objects.filter(status="published").count() == 12, timeout=60)
    text = wait_for(lambda: _scrape_or_none(relay_port))
    published = samples(text, "messaging_published_total")
    assert published[(("destination", queue_name), ("outcome", "published"))] == 12
    waits = samples(text, "messaging_outbox_wait_seconds_count")
    assert waits[(("queue", queue_name),)] == 12
    assert samples(text, "messaging_confirm_seconds_count")[()] >= 1
    relay.terminate()
    _out, err = relay.communicate(timeout=30)
    assert relay.returncode == 0, err
    # The relay publishes on the process's publisher (-v 2 shows where it connected).
    assert b"publisher connected to amqp://guest:***@" + _host().encode() + b":" in err
    assert b"guest:guest" not in err

    consumer = start_consumer(queue_name, "--metrics-port", str(consumer_port))
    wait_running(consumer, lambda: receipt_counts(queue_name)["acked"] == 12)
    text = scrape(consumer_port)
    assert samples(text, "messaging_end_to_end_seconds_count")[(("queue", queue_name),)] == 12
    stop_and_wait(consumer)


def _scrape_or_none(port: int) -> str | None:
    try:
        return scrape(port, timeout=2)
    except OSError:
        return None


@pytest.mark.broker_control
def test_reconnects_are_counted_and_shown(start_consumer, queue_name):
    from tests.support.rabbitmq import close_broker_connections

    get_queue(queue_name)
    port = free_port()
    consumer = start_consumer(queue_name, "--metrics-port", str(port), "-v", "2")
    wait_running(consumer, lambda: "connected to broker" in consumer.stderr)
    wait_running(consumer, lambda: close_broker_connections(consumer.name) == 1)
    wait_running(consumer, lambda: _connections_shown(consumer.stderr) == 2)
    reconnects = samples(scrape(port), "messaging_broker_reconnects_total")
    assert reconnects[(("role", "consumer"),)] == 1
    assert "broker connection lost" in consumer.stderr
    assert ":guest@" not in consumer.stderr
    stop_and_wait(consumer)


def _connections_shown(stderr: str) -> int:
    """runconsumer's own event lines (the log records repeat them with a prefix)."""
    prefix = f"connected to broker {_host()}:"
    return sum(line.startswith(prefix) for line in stderr.splitlines())


def _host() -> str:
    return urlsplit(conf.broker_urls()[0]).hostname or ""
