"""The publisher's book-keeping (``messaging.broker.batch.Batch``) and the declaration
cache, driven by hand the way the I/O loop's callbacks drive them: no broker."""

from __future__ import annotations

import pika
import pytest

from messaging.broker import DeclarationCache, Outgoing
from messaging.broker.batch import Batch
from messaging.exceptions import (
    BrokerUnavailable,
    MessageRefused,
    NotFound,
    PublishInterrupted,
    PublishNacked,
    Unroutable,
)

pytestmark = pytest.mark.unit


def batch_of(count: int, **kwargs) -> Batch:
    return Batch([Outgoing("", "q1", b"x", message_id=f"id-{i}", **kwargs) for i in range(count)])


def send(batch: Batch, count: int, first_tag: int = 1) -> None:
    for tag in range(first_tag, first_tag + count):
        batch.sent_as(batch.sent, tag)


def test_acks_one_by_one_and_multiple():
    batch = batch_of(4)
    send(batch, 4)
    batch.confirm(2, multiple=False, nacked=False)
    assert batch.left == 3
    batch.confirm(3, multiple=True, nacked=False)  # 1 and 3 (2 is done already)
    assert batch.left == 1
    assert list(batch.order) == [4]
    batch.confirm(4, multiple=False, nacked=True)
    assert batch.outcomes()[:3] == [None, None, None]
    assert isinstance(batch.outcomes()[3], PublishNacked)
    assert batch.left == 0 and not batch.pending and not batch.by_id


def test_a_return_before_its_ack_makes_it_unroutable():
    batch = batch_of(2)
    send(batch, 2)
    method = pika.spec.Basic.Return(312, "NO_ROUTE", "", "q1")
    batch.returned_message(method, pika.BasicProperties(message_id="id-1"), b"x")
    batch.confirm(2, multiple=True, nacked=False)
    first, second = batch.outcomes()
    assert first is None
    assert isinstance(second, Unroutable)


def test_a_return_without_message_id_is_the_oldest_unconfirmed_to_that_destination():
    batch = Batch([Outgoing("", "a", b"1"), Outgoing("", "b", b"2"), Outgoing("", "b", b"3")])
    send(batch, 3)
    method = pika.spec.Basic.Return(312, "NO_ROUTE", "", "b")
    batch.returned_message(method, pika.BasicProperties(), b"2")
    batch.confirm(3, multiple=True, nacked=False)
    assert [type(outcome) for outcome in batch.outcomes()] == [type(None), Unroutable, type(None)]


def test_a_refused_item_is_settled_and_the_rest_still_go():
    batch = batch_of(3)
    send(batch, 1)
    batch.refused(1, MessageRefused("cannot be sent: x"))
    send(batch, 1, first_tag=2)
    assert batch.sent == 3
    assert batch.pending == {1: 0, 2: 2}


def test_channel_closed_blames_a_lone_unconfirmed_message():
    batch = batch_of(2)
    send(batch, 2)
    batch.confirm(1, multiple=False, nacked=False)
    batch.channel_closed(NotFound("no exchange"))
    assert [type(outcome) for outcome in batch.outcomes()] == [type(None), NotFound]


def test_channel_closed_with_several_unconfirmed_interrupts_them_all():
    batch = batch_of(3)
    send(batch, 2)
    batch.channel_closed(NotFound("no exchange"))
    outcomes = batch.outcomes()
    assert all(isinstance(outcome, PublishInterrupted) for outcome in outcomes)
    assert "no exchange" in str(outcomes[0])


def test_settle_rest_and_late_confirms():
    batch = batch_of(3)
    send(batch, 2)
    batch.settle_rest(BrokerUnavailable("lost"))
    batch.confirm(1, multiple=False, nacked=False)  # too late: the outcome stays
    assert batch.left == 0 and batch.sent == 3
    assert all(isinstance(outcome, BrokerUnavailable) for outcome in batch.outcomes())


def test_an_unknown_outcome_reads_as_interrupted():
    [outcome] = batch_of(1).outcomes()
    assert isinstance(outcome, PublishInterrupted)


def test_properties_are_shared_while_only_the_message_id_changes():
    batch = batch_of(2, headers={"a": 1})  # one headers object for both
    first = batch.properties(batch.items[0])
    assert first.message_id == "id-0"
    assert batch.properties(batch.items[1]) is first
    assert first.message_id == "id-1"
    other = batch.properties(Outgoing("", "q1", b"x", persistent=False))
    assert other is not first and other.delivery_mode == 1


# --------------------------------------------------------------------------- declarations


def test_declaration_cache_declares_once_per_owner():
    declared: list[str] = []
    cache = DeclarationCache()
    first, second = object(), object()
    for owner, name in [(first, "q1"), (first, "q1"), (first, "q2"), (second, "q1")]:
        cache.ensure(owner, name, lambda name=name: declared.append(name))
    assert declared == ["q1", "q2", "q1"]


def test_declaration_cache_does_not_remember_a_failed_declaration():
    cache = DeclarationCache()
    owner = object()

    def refuse() -> None:
        raise NotFound("no")

    with pytest.raises(NotFound):
        cache.ensure(owner, "q1", refuse)
    declared: list[str] = []
    cache.ensure(owner, "q1", lambda: declared.append("q1"))
    assert declared == ["q1"]
