"""The consumer's fault-injection points (messaging.consumer.fault_points): where the
settling of a delayed failure reaches AFTER_DELAY_CONFIRMED (no broker: a channel and a
delay publisher made by hand). The fault suite (tests/faults/test_retry_delays.py) kills a
real runconsumer there."""

from __future__ import annotations

from typing import Any

import pika
import pytest

from messaging.amqp.retry_delays import retry_entry
from messaging.consumer import Delivery, Settlement, Verdict, fault_points
from messaging.consumer.acks import Settler
from messaging.exceptions import QueueMismatch

pytestmark = pytest.mark.unit


class Channel:
    """What the settler tells the broker, in order."""

    is_open = True

    def __init__(self, calls: list[tuple[Any, ...]]) -> None:
        self.calls = calls

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.calls.append(("ack", delivery_tag))

    def basic_nack(self, delivery_tag: int, requeue: bool = True) -> None:
        self.calls.append(("nack", delivery_tag, requeue))


def settler(calls: list, refuse: bool = False) -> Settler:
    class DelayPublisher:
        def __init__(self, connection: Any) -> None:
            pass

        def publish(self, name: str, arguments: Any, body: bytes, props: Any) -> None:
            if refuse:
                raise QueueMismatch(f"{name} exists with other arguments")
            calls.append(("delayed copy confirmed", name))

    settler = Settler({}, delay_publisher=DelayPublisher)
    settler.attach(object(), Channel(calls), generation=1)
    return settler


def delayed(tag: int = 7) -> Settlement:
    delivery = Delivery(
        queue="orders",
        body=b"x",
        properties=pika.BasicProperties(message_id="m1"),
        delivery_tag=tag,
        redelivered=False,
        generation=1,
    )
    retry = retry_entry("orders", 1, "boom", "c1", 1.0)
    return Settlement(delivery, Verdict.DELAY, retry=retry, delay_queue="orders.delay.1000")


def test_the_point_is_reached_after_the_copy_is_confirmed_and_before_the_ack():
    calls: list[tuple[Any, ...]] = []
    settlement = delayed()

    def hook(**context: Any) -> None:
        calls.append(("hook", context["delivery"].delivery_tag))

    with fault_points.installed(fault_points.AFTER_DELAY_CONFIRMED, hook):
        settler(calls).settle([settlement])
    assert calls == [("delayed copy confirmed", "orders.delay.1000"), ("hook", 7), ("ack", 7)]


def test_a_hook_that_raises_leaves_the_original_unacked():
    """What the fault suite's SIGKILL does in a real consumer: the copy exists, the
    original is not acked (the broker redelivers it)."""
    calls: list[tuple[Any, ...]] = []

    def crash(**context: Any) -> None:
        raise SystemExit("killed")

    point = fault_points.AFTER_DELAY_CONFIRMED
    with fault_points.installed(point, crash), pytest.raises(SystemExit):
        settler(calls).settle([delayed()])
    assert calls == [("delayed copy confirmed", "orders.delay.1000")]


def test_a_refused_copy_never_reaches_the_point():
    calls: list[tuple[Any, ...]] = []
    with fault_points.installed(fault_points.AFTER_DELAY_CONFIRMED, lambda **c: calls.append(c)):
        settler(calls, refuse=True).settle([delayed()])
    assert calls == [("nack", 7, True)]


def test_no_hook_is_left_behind_and_unknown_points_are_refused():
    def hook(**context: Any) -> None:
        pass

    with fault_points.installed(fault_points.AFTER_DELAY_CONFIRMED, hook):
        assert fault_points.install(fault_points.AFTER_DELAY_CONFIRMED, hook) is hook
    assert fault_points.install(fault_points.AFTER_DELAY_CONFIRMED, None) is None
    fault_points.reach(fault_points.AFTER_DELAY_CONFIRMED, delivery=None)  # nothing happens
    with pytest.raises(ValueError, match="unknown fault point 'after_the_ack'"):
        fault_points.install("after_the_ack", hook)
