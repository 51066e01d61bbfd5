"""Publishing a batch of messages, and the end-of-test check that each was handled
exactly once: one ``acked`` receipt, one handler write, nothing left on the broker."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from django.db.models import Count

from messaging.models import Message, Queue, Receipt, dead_letter_queue_name
from messaging.publishing import build_message, get_queue, publish_messages
from tests.support.rabbitmq import queue_depth


def publish_many(
    queue: str | Queue,
    count: int,
    *,
    prefix: str = "m",
    headers: dict[str, Any] | None = None,
) -> list[str]:
    """Record and publish ``count`` persistent messages (bodies ``<prefix><i>``) over one
    connection with confirms; returns their message_ids in order."""
    row = queue if isinstance(queue, Queue) else get_queue(queue)
    messages = [build_message(row, f"{prefix}{i}".encode(), headers=headers) for i in range(count)]
    Message.objects.bulk_create(messages, batch_size=500)
    result = publish_messages(messages)
    assert result.ok, result.first_error
    return [m.message_id for m in messages]


def handled_counts() -> Counter[str]:
    """message_id -> how many times ``tests.support.handlers.record`` committed its row."""
    rows = (
        Message.objects.filter(exchange="handled")
        .values("routing_key")
        .annotate(n=Count("id"))
        .values_list("routing_key", "n")
    )
    return Counter(dict(rows))


def acked_ids(queue: str) -> set[str]:
    return set(
        Receipt.objects.acked().filter(queue_name=queue).values_list("message_id", flat=True)
    )


def all_acked(queue: str, ids: Sequence[str]) -> bool:
    return Receipt.objects.acked().filter(queue_name=queue).count() >= len(ids)


def check_exactly_once(queue: str, ids: Sequence[str], *, context: str = "") -> None:
    """The end-of-test check (after every consumer has exited):

    * every published message_id has exactly one ``acked`` receipt;
    * no receipt of any outcome names an id we did not publish (nothing unexpected);
    * the handler's database write happened exactly once per message, and for no other;
    * nothing is left on the broker: the queue and its ``<queue>.dlq`` are empty.
    """
    published = set(ids)
    assert len(published) == len(ids), "test bug: duplicate ids published"
    acked = Counter(
        Receipt.objects.acked().filter(queue_name=queue).values_list("message_id", flat=True)
    )
    missing = published - set(acked)
    twice = {mid: n for mid, n in acked.items() if n != 1}
    unexpected = (
        set(Receipt.objects.filter(queue_name=queue).values_list("message_id", flat=True))
        - published
    )
    handled = handled_counts()
    not_once = {mid: handled.get(mid, 0) for mid in published if handled.get(mid, 0) != 1}
    stray = set(handled) - published
    outcomes = Counter(Receipt.objects.filter(queue_name=queue).values_list("outcome", flat=True))
    summary = f"{context} outcomes={dict(outcomes)}"
    assert not missing, f"{len(missing)} published messages never acked ({summary})"
    assert not twice, f"message_ids with more than one acked receipt: {twice} ({summary})"
    assert not unexpected, f"receipts for ids never published: {unexpected} ({summary})"
    assert not not_once, f"handler writes not exactly once: {dict(list(not_once.items())[:10])}"
    assert not stray, f"handler writes for ids never published: {stray}"
    assert queue_depth(queue) == 0, f"messages left on {queue} ({summary})"
    dlq_depth = queue_depth(dead_letter_queue_name(queue))
    assert not dlq_depth, f"{dlq_depth} messages in {queue}.dlq ({summary})"
