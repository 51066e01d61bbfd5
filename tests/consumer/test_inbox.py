"""Batch collection in the consumer's inbox (no broker: deliveries made by hand)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pika
import pytest

from messaging.consumer.handlers import Delivery
from messaging.consumer.inbox import Inbox, default_batch_size

pytestmark = pytest.mark.unit


def delivery(tag: int, generation: int = 1) -> Delivery:
    return Delivery(
        queue="q",
        body=b"",
        properties=pika.BasicProperties(),
        delivery_tag=tag,
        redelivered=False,
        generation=generation,
    )


def test_a_batch_stops_at_the_first_delivery_of_a_new_channel():
    """A reconnect while a batch fills: the new channel's deliveries are kept for the next
    batch, never dropped (a dropped one would stay unsettled, or be covered by a later
    multiple-ack without being handled)."""
    inbox = Inbox(flush_interval=0.05)
    for item in (delivery(2, 1), delivery(1, 2), delivery(2, 2)):
        inbox.put(item)
    batch, fatal = inbox.collect(delivery(1, 1), limit=10)
    assert [(d.generation, d.delivery_tag) for d in batch] == [(1, 1), (1, 2)]
    assert fatal is None
    assert (inbox.carried.generation, inbox.carried.delivery_tag) == (2, 1)
    assert inbox.get_nowait().delivery_tag == 2  # still queued, in order
    first = inbox.first(0.01, generation=lambda: 2)  # the carried one starts the next batch
    assert (first.generation, first.delivery_tag) == (2, 1)


def test_deliveries_of_an_older_channel_are_dropped():
    inbox = Inbox(flush_interval=0.05)
    inbox.put(delivery(1, generation=1))
    assert inbox.first(0.01, generation=lambda: 2) is None
    inbox.put(delivery(1, generation=2))
    inbox.put(delivery(9, generation=1))
    batch, _ = inbox.collect(inbox.first(0.01, generation=lambda: 2), limit=10)
    assert [d.delivery_tag for d in batch] == [1]


def test_a_batch_ends_at_its_limit_and_at_the_flush_interval():
    inbox = Inbox(flush_interval=0.01)
    for tag in range(2, 8):
        inbox.put(delivery(tag))
    batch, _ = inbox.collect(delivery(1), limit=3)
    assert [d.delivery_tag for d in batch] == [1, 2, 3]
    batch, _ = inbox.collect(delivery(4), limit=1)
    assert [d.delivery_tag for d in batch] == [4]
    batch, _ = inbox.collect(inbox.first(0.01, lambda: 1), limit=100)  # empties, then times out
    assert [d.delivery_tag for d in batch] == [4, 5, 6, 7]


def test_a_fatal_error_ends_the_batch_and_is_returned_with_it():
    inbox = Inbox(flush_interval=0.5)
    error = RuntimeError("the I/O thread gave up")
    inbox.put(delivery(2))
    inbox.put(error)
    batch, fatal = inbox.collect(delivery(1), limit=10)
    assert [d.delivery_tag for d in batch] == [1, 2]
    assert fatal is error
    inbox.put(error)
    with pytest.raises(RuntimeError, match="gave up"):
        inbox.first(0.01, generation=lambda: 1)


@pytest.mark.parametrize(
    ("prefetch", "batch"), [(1, 1), (3, 1), (4, 1), (30, 10), (300, 100), (10_000, 500)]
)
def test_default_batch_size(prefetch, batch):
    assert default_batch_size(prefetch) == batch


def test_wake_ends_a_wait_and_is_never_handed_out_as_a_delivery():
    inbox = Inbox(flush_interval=5)
    inbox.wake()
    started = time.monotonic()
    assert inbox.first(5, generation=lambda: 1) is None
    inbox.put(delivery(2))
    inbox.wake()
    inbox.put(delivery(3))
    batch, fatal = inbox.collect(delivery(1), limit=10)  # ends at the wake, not in 5 s
    assert [d.delivery_tag for d in batch] == [1, 2] and fatal is None
    assert time.monotonic() - started < 1
    inbox.wake()
    assert inbox.get_nowait().delivery_tag == 3


#: A stop signal whose handler outlasts what is left of a 0.2 s poll of the inbox: in
#: CPython's SimpleQueue.get(timeout=...) that turns into a wait without end, unless the
#: handler wakes the inbox (what Consumer.stop() does).
HANDLER_OUTLASTS_THE_POLL = """
import signal, sys, threading, time
import django
django.setup()
from messaging.consumer.inbox import Inbox
inbox, stop = Inbox(0.05), threading.Event()
def on_signal(signum, frame):
    time.sleep(0.3)
    stop.set()
    if sys.argv[1] == "wake":
        inbox.wake()
signal.signal(signal.SIGALRM, on_signal)
signal.setitimer(signal.ITIMER_REAL, 0.5)
while not stop.is_set():
    inbox.first(0.2, lambda: 1)
"""


def test_a_slow_stop_signal_during_a_poll_still_ends_the_loop():
    """Without the wake the loop below never ends on CPython 3.11 (the get waits forever);
    with it, it ends right after the handler."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings"}
    done = subprocess.run(
        [sys.executable, "-c", HANDLER_OUTLASTS_THE_POLL, "wake"],
        timeout=20,
        capture_output=True,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
