"""The statements ``publish()`` runs without the ORM's query building: the INSERT of a
new row writes what ``Model.save()`` writes, falls back to ``save()`` when something
is hooked on saving a Message, and breaks the caller's transaction as ``save()`` does
when it fails."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.models import Message, Queue
from messaging.publishing import build_message
from messaging.publishing.statements import insert_message, plain_insert

pytestmark = pytest.mark.django_db

#: Every column a new row gets, compared between the two ways of writing it.
COLUMNS = [f.attname for f in Message._meta.concrete_fields if f.attname not in {"id"}]


LEASE_END = timezone.now() + timedelta(minutes=2)


def _message(queue: Queue) -> Message:
    message = build_message(
        queue,
        b"\x00body\xff",
        headers={"n": 1, "nested": {"ok": True}},
        correlation_id="c-1",
        priority=3,
        expiration=timedelta(seconds=5),
        type="order.created",
    )
    message.next_attempt_at = LEASE_END
    return message


@pytest.mark.parametrize("watched", [False, True], ids=["plain", "queries-captured"])
def test_the_insert_writes_what_save_writes(watched):
    queue = Queue.objects.create(name="orders")
    by_hand, by_orm = _message(queue), _message(queue)
    with CaptureQueriesContext(connection) if watched else nullcontext() as captured:
        insert_message(by_hand)
    if watched:  # a query capture (DEBUG's log, a tracing hook…) sees the INSERT
        assert [q["sql"] for q in captured.captured_queries if "INSERT" in q["sql"]]
    by_orm.save()
    assert by_hand.pk is not None and not by_hand._state.adding
    assert by_hand._state.db == by_orm._state.db
    assert by_hand.created_at is not None
    stored = Message.objects.get(pk=by_hand.pk)
    twin = Message.objects.get(pk=by_orm.pk)
    for name in COLUMNS:
        if name not in {"message_id", "created_at"}:
            assert getattr(stored, name) == getattr(twin, name), name
        assert getattr(stored, name) == getattr(by_hand, name), name


def test_a_message_to_an_exchange_is_written_too():
    message = build_message(exchange="amq.topic", routing_key="a.b", body=b"x")
    insert_message(message)
    assert Message.objects.get(pk=message.pk).routing_key == "a.b"


def test_a_save_receiver_makes_it_save_through_the_orm():
    seen = []

    def receiver(sender, instance, created, **kwargs):
        seen.append((instance.pk, created))

    queue = Queue.objects.create(name="orders")
    message = _message(queue)
    assert plain_insert(message)
    post_save.connect(receiver, sender=Message)
    try:
        assert not plain_insert(message)
        insert_message(message)
    finally:
        post_save.disconnect(receiver, sender=Message)
    assert seen == [(message.pk, True)]


def test_an_unsaved_queue_is_refused_as_save_refuses_it():
    message = build_message(Queue(name="never-saved"), b"x")
    assert not plain_insert(message)
    with pytest.raises(ValueError, match="unsaved related object"):
        insert_message(message)


def test_a_failed_insert_breaks_the_transaction_as_save_does():
    queue = Queue.objects.create(name="orders")
    first = _message(queue)
    insert_message(first)
    again = _message(queue)
    again.message_id = first.message_id
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            insert_message(again)
        assert connection.needs_rollback
        with pytest.raises(transaction.TransactionManagementError):
            Message.objects.count()  # refused: the transaction is broken
