"""Choosing dead letters by message_id, against the real broker: ``replaydlq QUEUE
--message-id ID`` (repeatable) replays only those, the others stay in ``<queue>.dlq``;
the dead-letter browser's bounded peek (puts everything back) and discard."""

from __future__ import annotations

import pytest

from messaging import Reject, broker, publish
from messaging.consumer import Consumer
from messaging.consumer.replay import replay
from messaging.models import Queue
from tests.support.rabbitmq import queue_depth
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def refuse(delivery):
    raise Reject(f"refused {delivery.body!r}")


def dead_letters(queue: str, count: int) -> list[str]:
    """``count`` messages rejected into ``<queue>.dlq``; their message_ids in order."""
    row = Queue.objects.create(name=queue)
    ids = [publish(queue, f"m{i}".encode()).message_id for i in range(count)]
    Consumer([row], {queue: refuse}, max_messages=count).run()
    assert wait_for(lambda: queue_depth(f"{queue}.dlq") == count)
    return ids


def ids_in(queue: str) -> list[str]:
    return sorted(p.properties.message_id for p in broker.peek_messages(queue, 100))


def test_replaydlq_message_id_replays_only_those(queue_name, manage):
    ids = dead_letters(queue_name, 4)
    r = manage("replaydlq", queue_name, "--message-id", ids[0], "--message-id", ids[2])
    assert r.returncode == 0, r.stderr.decode()
    assert f"moved 2 message(s) from {queue_name}.dlq to {queue_name}; 2 left" in r.stdout.decode()
    assert ids_in(queue_name) == sorted([ids[0], ids[2]])
    assert ids_in(f"{queue_name}.dlq") == sorted([ids[1], ids[3]])


def test_replaydlq_names_the_ids_it_did_not_find_after_moving_the_others(queue_name, manage):
    ids = dead_letters(queue_name, 2)
    r = manage("replaydlq", queue_name, "--message-id", ids[1], "--message-id", "nope")
    assert r.returncode == 1
    assert f"not in {queue_name}.dlq: nope" in r.stderr.decode()
    assert "moved 1 message(s)" in r.stdout.decode()
    assert ids_in(queue_name) == [ids[1]]
    assert ids_in(f"{queue_name}.dlq") == [ids[0]]


def test_replaydlq_refuses_limit_with_message_id(queue_name, manage):
    r = manage("replaydlq", queue_name, "--limit", "1", "--message-id", "x")
    assert r.returncode == 2
    assert "not allowed with argument" in r.stderr.decode()


def test_peek_is_bounded_and_puts_everything_back(queue_name):
    ids = dead_letters(queue_name, 3)
    dlq = f"{queue_name}.dlq"
    seen = broker.peek_messages(dlq, 2)
    assert [p.properties.message_id for p in seen] == ids[:2]
    assert seen[0].properties.headers["x-messaging-death"][0]["reason"] == "rejected"
    assert wait_for(lambda: queue_depth(dlq) == 3)
    again = broker.peek_messages(dlq, 10)
    assert len(again) == 3 and again[0].redelivered  # peeking marks them redelivered
    assert broker.peek_messages(f"{queue_name}.missing", 5) == []


def test_discard_removes_only_the_chosen_and_replay_all_after(queue_name):
    ids = dead_letters(queue_name, 3)
    dlq = f"{queue_name}.dlq"
    result = broker.discard_messages(dlq, [ids[1], "absent"])
    assert (result.moved, result.not_found, result.remaining) == (1, ["absent"], 2)
    assert ids_in(dlq) == sorted([ids[0], ids[2]])
    replayed = replay(queue_name)
    assert (replayed.moved, replayed.remaining) == (2, 0)
    assert ids_in(queue_name) == sorted([ids[0], ids[2]])
