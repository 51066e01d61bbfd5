"""The process publisher's pure parts: the keeper's interval, the declaration cache,
the factory hook and the fork reset (no broker: a stand-in publisher)."""

from __future__ import annotations

import os

import pytest

from messaging import broker
from messaging.broker.keeper import MAX_INTERVAL, keeper_interval
from messaging.broker.queues import DeclarationCache, QueueSpec
from messaging.testing import CapturingPublisher

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("heartbeat", "interval"),
    [(60, 15.0), (20, 5.0), (2, 1.0), (0, MAX_INTERVAL), (600, MAX_INTERVAL)],
)
def test_keeper_interval(heartbeat: int, interval: float) -> None:
    assert keeper_interval(heartbeat) == interval


def test_declaration_cache_declares_once_per_owner_and_signature() -> None:
    cache = DeclarationCache()
    calls: list[str] = []
    one, other = object(), object()
    spec = QueueSpec("q")
    for _ in range(3):
        cache.ensure(one, "q", lambda: calls.append("q"), spec)
    assert calls == ["q"]
    cache.ensure(one, "q", lambda: calls.append("changed"), QueueSpec("q", durable=False))
    cache.ensure(other, "q", lambda: calls.append("reconnected"), spec)
    assert calls == ["q", "changed", "reconnected"]
    assert "q" in cache
    cache.forget("q")
    assert "q" not in cache
    cache.ensure(other, "q", lambda: calls.append("deleted"), spec)
    assert calls[-1] == "deleted"


def test_the_factory_hook_builds_the_process_publisher(settings) -> None:
    settings.MESSAGING = {"BROKER_URL": "amqp://guest:guest@127.0.0.1:1/%2F"}
    publisher = broker.ProcessPublisher()
    previous = broker.set_publisher_factory(CapturingPublisher)
    try:
        with publisher.session() as pub:
            assert pub.publish_many([broker.Outgoing("", "q", b"x")]) == [None]
            assert isinstance(pub._inner, CapturingPublisher)
    finally:
        broker.set_publisher_factory(previous)
    assert broker.get_publisher_factory() is broker.PipelinedPublisher


def test_a_forked_child_forgets_the_parents_publisher(settings) -> None:
    settings.MESSAGING = {"BROKER_URL": "amqp://guest:guest@127.0.0.1:1/%2F"}
    publisher = broker.ProcessPublisher(CapturingPublisher)
    publisher.open()
    inner = publisher._inner
    publisher._pid = os.getpid() + 1  # as a child sees the parent's object
    with publisher.session() as pub:
        assert pub._inner is not inner  # a new one, the old never closed
    assert inner.is_open


def test_connection_name_names_the_process() -> None:
    name = broker.publisher_connection_name()
    assert name.startswith("messaging publisher ") and name.endswith(f":{os.getpid()}")
