"""Every broker call the admin and ``declarequeues`` make has a deadline: against a
broker that accepts TCP but never answers (a local listening socket) each returns within
CONNECTION_TIMEOUT plus a little, saying why; against the real broker a queue row whose
name the broker must not be sent (a newline, inserted behind the validators' back) fails
that row alone, at once."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings

from messaging import broker
from messaging.admin import overview, purge_selected
from messaging.models import Queue
from tests.support.admin import declared, put, url
from tests.support.rabbitmq import queue_depth

pytestmark = pytest.mark.django_db

TIMEOUT = 1
#: CONNECTION_TIMEOUT plus what "a little" may add (connect slack, closing, Django).
BOUND = TIMEOUT + 3


@pytest.fixture
def silent_broker() -> Iterator[str]:
    """The URL of a socket that accepts connections (the kernel completes the TCP
    handshake) and never says a word."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"amqp://guest:guest@127.0.0.1:{server.getsockname()[1]}/%2F"


@pytest.fixture
def silent(silent_broker: str) -> Iterator[str]:
    value = {**settings.MESSAGING, "BROKER_URL": silent_broker, "CONNECTION_TIMEOUT": TIMEOUT}
    with override_settings(MESSAGING=value):
        yield silent_broker


class Timer:
    def __enter__(self) -> Timer:
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.monotonic() - self.started


# --------------------------------------------------------------------------- a silent broker


def test_declare_queues_gives_up_on_a_silent_broker(silent: str) -> None:
    row = Queue.objects.create(name="silent.declare")
    with Timer() as timer:
        result = broker.declare_queues([row])
    assert timer.elapsed < BOUND, timer.elapsed
    assert result.declared == [] and result.not_declared == ["silent.declare"]
    assert "cannot reach the broker" in str(result.error)
    assert "guest:guest" not in str(result.error)


def test_declarequeues_command_gives_up_on_a_silent_broker(manage: Any, silent_broker: str):
    Queue.objects.create(name="silent.command")
    env = {
        "MESSAGING_TEST_SETTINGS": json.dumps(
            {"BROKER_URL": silent_broker, "CONNECTION_TIMEOUT": TIMEOUT}
        )
    }
    baseline = time.monotonic()
    manage("check", env=env)  # what starting Django costs, without the broker
    startup = time.monotonic() - baseline
    with Timer() as timer:
        done = manage("declarequeues", env=env, timeout=60)
    assert timer.elapsed < startup + BOUND, (timer.elapsed, startup)
    assert done.returncode != 0
    assert b"cannot reach the broker" in done.stderr
    assert b"Traceback" not in done.stderr


def test_broker_snapshot_gives_up_on_a_silent_broker(silent: str) -> None:
    with Timer() as timer:
        snapshot = overview.broker_snapshot(["silent.a", "silent.a.dlq", "silent.b"])
    assert timer.elapsed < BOUND, timer.elapsed
    assert snapshot.states == {}
    assert snapshot.state("silent.a") == "unreachable"
    assert "cannot reach the broker" in str(snapshot.error)


def test_purge_selected_gives_up_on_a_silent_broker(silent: str) -> None:
    with Timer() as timer:
        result = purge_selected(["silent.a", "silent.b"])
    assert timer.elapsed < BOUND, timer.elapsed
    assert result.not_purged == ["silent.a", "silent.b"] and not result.purged
    assert "cannot reach the broker" in str(result.error)


def test_queue_changelist_and_change_page_answer_with_a_silent_broker(
    admin_client: Client, silent: str
) -> None:
    row = Queue.objects.create(name="silent.page")
    with Timer() as listing:
        page = admin_client.get(url("queue_changelist"))
    with Timer() as changing:
        change = admin_client.get(url("queue_change", row.pk))

    assert listing.elapsed < BOUND and changing.elapsed < BOUND, (listing, changing)
    assert page.status_code == 200 and change.status_code == 200
    assert 'class="messaging-unreachable">unreachable<' in page.content.decode()
    assert "broker is unreachable" in page.content.decode()
    assert "unreachable: cannot reach the broker" in change.content.decode()


# --------------------------------------------------------------------------- invalid names


def newline_row(name: str) -> Queue:
    """A Queue row whose name has a newline, written with a raw UPDATE (the model's
    validators would refuse it)."""
    row = Queue.objects.create(name=f"{name}.nl")
    Queue.objects.filter(pk=row.pk).update(name=f"{name}\nnl")
    row.refresh_from_db()
    return row


def test_changelist_shows_real_counts_beside_an_invalid_name(
    admin_client: Client, queue_name: str, request: pytest.FixtureRequest
) -> None:
    full = declared(queue_name, 3)
    other = declared(request.node.make_queue_name(), 1, dead_lettering=False)
    bad = newline_row(request.node.make_queue_name())

    with Timer() as timer:
        page = admin_client.get(url("queue_changelist"))

    assert timer.elapsed < 2, timer.elapsed
    assert page.status_code == 200
    rows = {row.name: row for row in page.context["cl"].result_list}
    assert rows[full.name].broker_state == (3, 0)
    assert rows[full.name].dlq_state == (0, 0)
    assert rows[other.name].broker_state == (1, 0)
    assert rows[bad.name].broker_state == "invalid name"
    content = page.content.decode()
    assert ">invalid name<" in content
    assert "broker is unreachable" not in content
    with Timer() as timer:
        change = admin_client.get(url("queue_change", bad.pk))
    assert timer.elapsed < 2 and change.status_code == 200
    assert "invalid name, not sent to the broker" in change.content.decode()
    assert "U+000A" in change.content.decode()


def test_declarequeues_fails_the_invalid_row_and_declares_the_others(
    manage: Any, queue_name: str
) -> None:
    Queue.objects.create(name=queue_name)
    newline_row(queue_name)

    with Timer() as timer:
        done = manage("declarequeues", timeout=60)

    assert timer.elapsed < 15, timer.elapsed  # startup included; it used to hang for good
    assert done.returncode != 0
    assert f"declared {queue_name} (0 ready)".encode() in done.stdout
    err = done.stderr.decode()
    assert "refused: invalid queue name" in err and "U+000A" in err
    assert "1 queue(s) differ from their Queue row or were refused" in err
    assert queue_depth(queue_name) == 0
    assert queue_depth(f"{queue_name}nl") is None  # never sent (the broker would drop the \n)


def test_declare_queues_and_purge_fail_only_the_invalid_row(queue_name: str) -> None:
    good = Queue.objects.create(name=queue_name)
    bad = newline_row(queue_name)

    result = broker.declare_queues([good, bad])

    assert result.declared == [queue_name] and result.error is None
    assert list(result.failed) == [bad.name]
    assert "invalid queue name" in str(result.failed[bad.name])
    put(queue_name, 2)
    purged = purge_selected([bad, good])
    assert purged.purged == {queue_name: 2}
    assert list(purged.failed) == [bad.name] and purged.error is None
    assert queue_depth(f"{queue_name}nl") is None  # never sent


def test_snapshot_marks_a_dead_letter_queue_of_a_valid_name_valid(queue_name: str) -> None:
    long_name = "q" * 251  # <name>.dlq is exactly 255 bytes; <name>.dlq.dlq would not be
    snapshot = overview.broker_snapshot([long_name, f"{long_name}.dlq", "amq.nope", "x\ny.dlq"])
    assert snapshot.error is None
    assert snapshot.state(long_name) is None and snapshot.state(f"{long_name}.dlq") is None
    assert snapshot.state("amq.nope") == "invalid name"
    assert snapshot.state("x\ny.dlq") == "invalid name"
