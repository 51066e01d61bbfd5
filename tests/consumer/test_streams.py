"""Streams: a ``Queue`` row of type ``stream`` is declared as one, and
``runconsumer --offset`` reads it from first / last / next / N / a timestamp, each
receipt recording the delivery's stream offset."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from messaging import broker, publish
from messaging.models import Queue, Receipt
from tests.support.interop import consumer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stream(queue_name) -> str:
    row = Queue.objects.create(name=queue_name, queue_type=Queue.QueueType.STREAM)
    result = broker.declare_queues([row])
    assert not result.failed and result.error is None, result.failed
    return queue_name


def fill(queue: str, bodies: list[str]) -> None:
    for body in bodies:
        publish(queue, body.encode())


def offsets(queue: str, name: str) -> list[int]:
    rows = Receipt.objects.filter(queue_name=queue, consumer_name=name).order_by("id")
    return list(rows.values_list("stream_offset", flat=True))


def consume(manage, queue: str, name: str, *args: str) -> None:
    r = manage("runconsumer", queue, "--name", name, "--idle-timeout", "3", "-v", "0", *args)
    assert r.returncode == 0, r.stderr


def test_stream_row_is_declared_as_a_stream(stream, channel):
    with pytest.raises(Exception, match="x-queue-type"):  # redeclared as classic: refused
        channel.queue_declare(stream, durable=True)


def test_offset_first_reads_everything_with_offsets(manage, stream):
    fill(stream, [f"m{i}" for i in range(5)])
    consume(manage, stream, "first", "--offset", "first", "--max-messages", "5")
    assert offsets(stream, "first") == [0, 1, 2, 3, 4]
    assert set(Receipt.objects.values_list("outcome", flat=True)) == {"acked"}


def test_offset_n_starts_there(manage, stream):
    fill(stream, [f"m{i}" for i in range(5)])
    consume(manage, stream, "from3", "--offset", "3", "--prefetch", "10")
    assert offsets(stream, "from3") == [3, 4]


def test_reading_again_gives_duplicates_not_second_runs(manage, stream):
    fill(stream, ["a", "b"])
    consume(manage, stream, "one", "--offset", "first")
    consume(manage, stream, "two", "--offset", "first")
    outcomes = Receipt.objects.filter(consumer_name="two").values_list("outcome", flat=True)
    assert list(outcomes) == ["duplicate", "duplicate"]


def test_offset_last_reads_the_last_chunk_only(manage, stream):
    fill(stream, [f"m{i}" for i in range(4)])  # one confirm each: chunks of one message
    consume(manage, stream, "last", "--offset", "last")
    got = offsets(stream, "last")
    assert got and got[-1] == 3 and 0 not in got


def test_offset_next_reads_only_new_messages(launch, stream):
    fill(stream, ["old"])
    proc = consumer(launch, stream, "--offset", "next", "--name", "next", "--max-messages", "1")
    fill(stream, ["new"])
    assert proc.finish() == 0, proc.err
    assert offsets(stream, "next") == [1]


def test_offset_timestamp_starts_at_that_time(manage, stream):
    fill(stream, ["before-1", "before-2"])
    time.sleep(1.5)
    moment = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.1)
    fill(stream, ["after"])
    # A longer idle timeout than the helper's 3 s: on a loaded machine (xdist workers) the
    # first delivery from a timestamp once came later than that.
    consume(manage, stream, "ts", "--offset", moment.isoformat(), "--idle-timeout", "10")
    assert offsets(stream, "ts") == [2]


def test_offset_on_a_classic_queue_is_refused(manage, queue_name):
    Queue.objects.create(name=queue_name)
    r = manage("runconsumer", queue_name, "--offset", "first")
    assert r.returncode != 0
    assert f"--offset is for streams: queue {queue_name!r} is a classic queue" in r.stderr.decode()


def test_bad_offset_is_an_argument_error(manage, stream):
    r = manage("runconsumer", stream, "--offset", "-3")
    assert r.returncode == 2
    assert b"expected first, last, next, an offset" in r.stderr


def test_a_failing_handler_on_a_stream_is_dead_lettered_at_once(manage, stream, channel):
    fill(stream, ["bad"])
    r = manage(
        "runconsumer",
        stream,
        "--offset",
        "first",
        "--handler",
        "tests.support.handlers.fail",
        "--max-messages",
        "1",
        "--name",
        "failing",
    )
    assert r.returncode == 0, r.stderr
    (receipt,) = Receipt.objects.filter(consumer_name="failing")
    assert (receipt.outcome, receipt.stream_offset) == ("dead_lettered", 0)
    assert channel.basic_get(f"{stream}.dlq", auto_ack=True)[2] == b"bad"
