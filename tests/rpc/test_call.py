"""``messaging.call()`` and the server side of request/reply: timeouts, a request no
queue takes, and a server killed between its receipt's commit and the reply."""

from __future__ import annotations

import uuid

import pytest

from messaging import RequestTimeout, Unroutable, broker, call
from messaging.exceptions import InvalidMessage
from messaging.models import Queue, Receipt
from tests.support.interop import consumer
from tests.support.rpc_handlers import effects

pytestmark = pytest.mark.django_db(transaction=True)


def declare(name: str) -> Queue:
    row = Queue.objects.create(name=name)
    result = broker.declare_queues([row])
    assert not result.failed and result.error is None
    return row


def test_call_times_out_when_nobody_answers(queue_name):
    declare(queue_name)
    with pytest.raises(RequestTimeout, match=rf"no reply from {queue_name} within 0.5 s"):
        call(queue_name, b"anyone?", timeout=0.5)


def test_call_to_a_queue_that_does_not_exist_is_unroutable_at_once():
    with pytest.raises(Unroutable, match="unroutable"):
        call("no.such.queue.for.call", b"x", timeout=30)


def test_call_refuses_bad_properties_before_sending(queue_name):
    with pytest.raises(InvalidMessage, match="priority must be between 0 and 255, got 300"):
        call(queue_name, b"x", priority=300)
    with pytest.raises(ValueError, match="timeout must be a positive"):
        call(queue_name, b"x", timeout=0)


def test_server_killed_between_commit_and_reply_the_retry_gets_the_stored_reply(
    launch, queue_name, tmp_path
):
    declare(queue_name)
    marker = tmp_path / "killed"
    args = ("--handler", "tests.support.rpc_handlers.fib", "--name", "rpc-kill")
    first = consumer(
        launch, queue_name, *args, env={"MESSAGING_TEST_KILL_AFTER_COMMIT": str(marker)}
    )
    request_id = str(uuid.uuid4())
    with pytest.raises(RequestTimeout):
        call(queue_name, b"25", message_id=request_id, timeout=5)
    assert first.finish() == -9  # SIGKILLed after the commit, before reply and ack
    assert marker.read_text() == request_id
    (acked,) = Receipt.objects.filter(queue_name=queue_name)
    assert acked.outcome == "acked" and bytes(acked.reply) == b"75025"

    consumer(launch, queue_name, *args)  # marker exists: runs normally
    reply = call(queue_name, b"25", message_id=request_id, timeout=30)  # the caller's retry
    assert reply.body == b"75025"
    assert effects("fib-handled", request_id) == 1  # the handler ran once
    outcomes = sorted(
        Receipt.objects.filter(queue_name=queue_name).values_list("outcome", flat=True)
    )
    # The redelivered original and the retry: both duplicates, both answered.
    assert outcomes == ["acked", "duplicate", "duplicate"]
