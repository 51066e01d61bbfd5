"""A poison message (its handler always raises) is tried MAX_ATTEMPTS times, each attempt
on a receipt, then moved to ``<queue>.dlq`` with its message_id and headers; a rejected
message goes there at once. Nothing is dropped and nothing loops. ``replaydlq`` brings
them back and a fixed handler acks them. For a classic and a quorum queue (quorum counts
attempts with x-delivery-count)."""

from __future__ import annotations

import json

import pytest

from messaging.models import Message, Queue, Receipt, dead_letter_queue_name
from tests.support.draining import drain, drain_with_consumer
from tests.support.environment import settings_env
from tests.support.exactly_once import check_exactly_once, publish_many
from tests.support.rabbitmq import queue_depth
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults

MAX_ATTEMPTS = 3


def attempts_of(queue: str, message_id: str) -> list[tuple[int, str]]:
    return list(
        Receipt.objects.filter(queue_name=queue, message_id=message_id)
        .order_by("id")
        .values_list("attempt", "outcome")
    )


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_poison_message_is_dead_lettered_after_max_attempts_and_replayed(
    manage, fault_queue, queue_type
):
    row = Queue.objects.create(name=fault_queue, queue_type=queue_type)
    dlq = dead_letter_queue_name(fault_queue)
    good = publish_many(row, 2, prefix="good")
    (poison,) = publish_many(row, 1, prefix="poison", headers={"poison": True, "k": "v"})
    (rejected,) = publish_many(row, 1, prefix="reject", headers={"reject": True, "k": "w"})
    ids = [*good, poison, rejected]

    r = manage(
        "runconsumer",
        fault_queue,
        "--handler",
        "tests.support.handlers.record_unless_poison",
        "--idle-timeout",
        "3",
        env=settings_env(MAX_ATTEMPTS=MAX_ATTEMPTS),
    )
    assert r.returncode == 0, r.stderr.decode(errors="replace")

    # Each attempt is on a receipt; the last one dead-letters it. No loop, no drop.
    assert attempts_of(fault_queue, poison) == [
        (1, "requeued"),
        (2, "requeued"),
        (3, "dead_lettered"),
    ]
    assert all(
        "poison message" in x.error
        for x in Receipt.objects.filter(queue_name=fault_queue, message_id=poison)
    )
    assert attempts_of(fault_queue, rejected) == [(1, "rejected")]
    for message_id in good:
        assert attempts_of(fault_queue, message_id) == [(1, "acked")]
    assert queue_depth(fault_queue) == 0
    assert wait_for(lambda: queue_depth(dlq) == 2)

    dead = sorted(drain(dlq, headers=True, leave=True))
    assert [(mid, body) for mid, _, body in dead] == sorted(
        [(poison, b"poison0"), (rejected, b"reject0")]
    )
    dead_headers = {mid: headers for mid, headers, _ in dead}
    assert dead_headers[poison].items() >= {"poison": True, "k": "v"}.items()
    assert dead_headers[rejected].items() >= {"reject": True, "k": "w"}.items()

    # Replay one, then the rest: message_id, headers and the death history come along.
    r = manage("replaydlq", fault_queue, "--limit", "1")
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert queue_depth(dlq) == 1 and queue_depth(fault_queue) == 1
    r = manage("replaydlq", fault_queue)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert queue_depth(dlq) == 0 and queue_depth(fault_queue) == 2

    # A fixed handler acks them (attempt counting restarted with the replay) and sees
    # the message_id, the headers and the death history they had in the DLQ. (Not
    # peeked here: on a quorum queue that would count as a delivery.)
    drain_with_consumer(manage, fault_queue, handler="tests.support.handlers.record_with_headers")
    assert attempts_of(fault_queue, poison)[-1] == (1, "acked")
    assert attempts_of(fault_queue, rejected)[-1] == (1, "acked")
    for mid in (poison, rejected):
        (seen,) = Message.objects.filter(exchange="handled", routing_key=mid)
        expected = json.loads(json.dumps(dead_headers[mid], default=str))
        for key, value in expected.items():
            if key == "x-delivery-count":  # each quorum queue counts its own (the DLQ too)
                continue
            kept = seen.headers.get(key)
            if isinstance(value, list):  # a history may grow, never lose entries
                assert isinstance(kept, list) and all(v in kept for v in value), (mid, key, kept)
            else:
                assert kept == value, f"header {key!r} of {mid}: {kept!r} != {value!r}"
    check_exactly_once(fault_queue, ids, context=f"{queue_type} queue")
