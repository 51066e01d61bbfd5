"""messaging.testing: capture() and the captured_messages fixture (the package's pytest
plugin), from plain pytest and from Django's TestCase. No broker is involved: the
settings point BROKER_URL at a closed port, so any connection attempt would leave the
rows ``pending`` instead of ``published``."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import transaction
from django.test import TestCase, override_settings

from messaging import broker, publish
from messaging.admin.message_admin import publish_pks
from messaging.models import Message, Queue, Receipt
from messaging.publishing import build_message, send_copies
from messaging.publishing.relay import relay_once
from messaging.testing import CapturedMessages, CapturingPublisher, capture
from messaging.testing.delivery import CONSUMER_NAME
from tests.support.capture_handlers import (
    HANDLED,
    always_fails,
    fails_twice,
    rejects,
)

NO_BROKER = {**settings.MESSAGING, "BROKER_URL": "amqp://guest:guest@127.0.0.1:1/%2F"}


@pytest.fixture(autouse=True)
def no_broker(request: pytest.FixtureRequest, settings) -> None:
    HANDLED.clear()
    if request.cls is not None:  # the TestCase below has its own override_settings
        return
    settings.MESSAGING = {
        **NO_BROKER,
        "CONSUMERS": {
            "orders": "tests.support.capture_handlers.record",
            "mail": "tests.support.capture_handlers.record",
        },
    }


def outcomes() -> list[str]:
    return list(Receipt.objects.order_by("pk").values_list("outcome", flat=True))


# --------------------------------------------------------------------------- capturing


def test_captured_after_commit_with_destination_properties_and_row(transactional_db) -> None:
    with capture() as captured:
        with transaction.atomic():
            sent = publish("orders", b"order 42", headers={"tenant": "acme"}, content_type="x/y")
            assert len(captured) == 0  # not before the commit
        (message,) = captured
    assert (message.exchange, message.routing_key, message.queue) == ("", "orders", "orders")
    assert message.body == b"order 42" and message.text() == "order 42"
    assert message.headers == {"tenant": "acme"} and message.content_type == "x/y"
    assert message.message_id == sent.message_id
    props = message.properties
    assert (props.message_id, props.delivery_mode, props.headers) == (
        sent.message_id,
        2,
        {"tenant": "acme"},
    )
    row = message.message
    assert row.pk == sent.pk and row.status == Message.Status.PUBLISHED and row.attempts == 1


def test_rolled_back_transaction_captures_nothing(transactional_db) -> None:
    with capture() as captured, pytest.raises(ZeroDivisionError), transaction.atomic():
        publish("orders", b"never")
        raise ZeroDivisionError
    assert len(captured) == 0
    assert not Message.objects.exists()


def test_no_broker_connection_while_capturing_and_the_real_publisher_after(
    transactional_db,
) -> None:
    real = broker.get_publisher_factory()
    with capture() as captured:
        assert broker.get_publisher_factory() is CapturingPublisher
        publish("orders", b"a")
    assert captured[0].message.status == Message.Status.PUBLISHED  # nothing tried to connect
    assert broker.get_publisher_factory() is real
    after = publish("orders", b"b")  # the closed port: left pending for the relay
    after.refresh_from_db()
    assert after.status == Message.Status.PENDING and after.last_error
    assert len(captured) == 1


def test_send_copies_relay_and_admin_publish_are_captured(transactional_db, settings) -> None:
    with capture() as captured:
        send_copies(build_message("orders", b"copy"), 3)
        settings.MESSAGING = {**settings.MESSAGING, "PUBLISH_MODE": "relay"}
        relayed = publish("orders", b"relayed")
        assert len(captured) == 3
        relay_once()
        row = Message.objects.create(queue=Queue.objects.get(name="orders"), body=b"admin")
        publish_pks([row.pk])
    assert [m.body for m in captured] == [b"copy"] * 3 + [b"relayed", b"admin"]
    assert captured.filter(body=b"relayed")[0].message_id == relayed.message_id
    assert set(Message.objects.values_list("status", flat=True)) == {Message.Status.PUBLISHED}


def test_nested_captures_both_see_messages(transactional_db) -> None:
    with capture() as outer:
        with capture() as inner:
            publish("orders", b"1")
        publish("orders", b"2")
    assert (len(inner), len(outer)) == (1, 2)


# --------------------------------------------------------------------------- assertions


def test_assertion_helpers_and_filter(transactional_db) -> None:
    with capture() as captured:
        publish("orders", b"order 1", headers={"kind": "new"})
        publish("orders", "order 2")
        publish("mail", b"hello")
    assert captured.assert_published(queue="orders", body="order 2").body == b"order 2"
    assert len(captured.assert_count(2, queue="orders")) == 2
    captured.assert_published(headers={"kind": "new"})
    captured.assert_nothing_published(queue="billing")
    assert [m.body for m in captured.filter(where=lambda m: m.body.startswith(b"order"))] == [
        b"order 1",
        b"order 2",
    ]
    with pytest.raises(AssertionError) as failure:
        captured.assert_published(queue="orders")
    text = str(failure.value)
    assert "expected 1 message(s) with queue='orders', found 2; captured 3:" in text
    assert "queue 'mail' body b'hello'" in text and "{'kind': 'new'}" in text
    with pytest.raises(TypeError, match="unknown criterion 'colour'"):
        captured.filter(colour="red")
    captured.clear()
    captured.assert_nothing_published()
    assert list(captured) == []


def test_json_messages_read_naturally(transactional_db) -> None:
    with capture() as captured:
        publish("orders", json={"id": 7, "name": "Zoë"})
        publish("orders", b"not json")
    message = captured.assert_published(queue="orders", json={"id": 7, "name": "Zoë"})
    assert message.content_type == "application/json"
    assert message.json() == {"id": 7, "name": "Zoë"}
    captured.assert_nothing_published(json={"id": 8})


# --------------------------------------------------------------------------- delivering


def test_deliver_runs_the_configured_handler_with_a_receipt(transactional_db) -> None:
    with capture() as captured:
        sent = publish("orders", b"order 42")
        result = captured.deliver()
    assert HANDLED == [b"order 42"]
    assert result.outcomes == ["acked"] and result.acked == list(captured)
    receipt = result.receipts[0]
    assert (receipt.message_id, receipt.queue_name, receipt.consumer_name) == (
        sent.message_id,
        "orders",
        CONSUMER_NAME,
    )
    assert receipt.message == sent
    assert captured.deliver().receipts == []  # everything was delivered already


def test_deliver_with_handlers_given_and_pika_style(transactional_db) -> None:
    seen = []
    with capture() as captured:
        publish("billing", b"invoice")
        captured.deliver(handlers={"billing": lambda ch, method, props, body: seen.append(body)})
    assert seen == [b"invoice"] and outcomes() == ["acked"]


def test_handler_failing_until_max_attempts_is_dead_lettered(transactional_db, settings) -> None:
    settings.MESSAGING = {**settings.MESSAGING, "MAX_ATTEMPTS": 4}
    with capture() as captured:
        publish("orders", b"order 42")
        result = captured.deliver(handlers={"orders": always_fails})
    assert HANDLED == [b"order 42"] * 4
    assert result.outcomes == ["requeued"] * 3 + ["dead_lettered"]
    assert [r.attempt for r in result.receipts] == [1, 2, 3, 4]
    assert [r.redelivered for r in result.receipts] == [False, True, True, True]
    (dead,) = result.dead_letters
    assert captured.dead_letters == [dead]
    assert (dead.queue, dead.dead_letter_queue, dead.outcome, dead.attempts) == (
        "orders",
        "orders.dlq",
        "dead_lettered",
        4,
    )
    assert "payment service down" in dead.error and dead.message is captured[0]
    assert result.acked == []


def test_queue_max_attempts_and_a_handler_that_recovers(transactional_db) -> None:
    Queue.objects.create(name="orders", max_attempts=2)
    with capture() as captured:
        publish("orders", b"a")
        captured.deliver(handlers={"orders": always_fails})
        assert outcomes() == ["requeued", "dead_lettered"]
        Receipt.objects.all().delete()
        publish("orders", b"b")
        Queue.objects.filter(name="orders").update(max_attempts=5)
        result = captured.deliver(handlers={"orders": fails_twice})
    assert result.outcomes == ["requeued", "requeued", "acked"] and result.dead_letters == []


def test_redelivering_an_acked_message_is_a_duplicate(transactional_db) -> None:
    with capture() as captured:
        publish("orders", b"order 42")
        captured.deliver()
        again = captured.deliver(redeliver=True)
        once_more = captured.deliver(captured[0], redeliver=True)
    assert HANDLED == [b"order 42"]  # the handler ran once
    assert again.outcomes == ["duplicate"] and once_more.outcomes == ["duplicate"]
    assert outcomes() == ["acked", "duplicate", "duplicate"]


def writes_a_row(delivery) -> None:
    HANDLED.append(delivery.body)
    Queue.objects.create(name=f"handled.{len(HANDLED)}")


def test_a_second_copy_not_flagged_redelivered_is_a_duplicate(transactional_db) -> None:
    # A copy the broker got twice (a lost publisher confirm): the handler runs, but its
    # receipt collides with the acked one, so its work is rolled back.
    with capture() as captured:
        publish("orders", b"order 42")
        captured.deliver(handlers={"orders": writes_a_row})
        second = captured.deliver(captured[0], handlers={"orders": writes_a_row})
    assert second.outcomes == ["duplicate"] and len(HANDLED) == 2
    assert list(
        Queue.objects.filter(name__startswith="handled.").values_list("name", flat=True)
    ) == ["handled.1"]


def test_reject_goes_to_the_dead_letter_queue_at_once(transactional_db) -> None:
    with capture() as captured:
        publish("orders", b"order 42")
        result = captured.deliver(handlers={"orders": rejects})
    assert HANDLED == [b"order 42"]
    assert result.outcomes == ["rejected"]
    (dead,) = result.dead_letters
    assert (dead.dead_letter_queue, dead.outcome, dead.error) == (
        "orders.dlq",
        "rejected",
        "order 42 is malformed",
    )


def test_queue_with_its_own_dead_letter_exchange(transactional_db) -> None:
    Queue.objects.create(name="orders", dead_letter_exchange="dlx")
    with capture() as captured:
        publish("orders", b"x")
        (dead,) = captured.deliver(handlers={"orders": rejects}).dead_letters
    assert (dead.dead_letter_queue, dead.dead_letter_exchange) == (None, "dlx")


def test_messages_handlers_publish_are_delivered_too(transactional_db, settings) -> None:
    settings.MESSAGING = {
        **settings.MESSAGING,
        "CONSUMERS": {
            "orders": "tests.support.capture_handlers.forwards",
            "mail": "tests.support.capture_handlers.record",
        },
    }
    with capture() as captured:
        publish("orders", b"order 42")
        result = captured.deliver()
    assert HANDLED == [b"order 42", b"mail for order 42"]
    assert [m.queue for m in captured] == ["orders", "mail"]
    assert result.outcomes == ["acked", "acked"]


def test_exchange_messages_need_a_queue_and_unknown_queues_a_handler(transactional_db) -> None:
    with capture() as captured:
        publish(exchange="amq.topic", routing_key="orders.new", body=b"event")
        publish("nobody-handles-this", b"x")
    event, orphan = captured
    assert event.queue is None and captured.assert_published(exchange="amq.topic") is event
    with pytest.raises(ValueError, match="deliver it with deliver\\(message, queue="):
        captured.deliver(event)
    assert captured.deliver(event, queue="orders").outcomes == ["acked"]
    with pytest.raises(LookupError, match="no handler for queue 'nobody-handles-this'"):
        captured.deliver(orphan)


# --------------------------------------------------------------------------- the fixture


def test_the_plugin_is_loaded(request: pytest.FixtureRequest) -> None:
    import messaging.testing.plugin

    assert request.config.pluginmanager.get_plugin("messaging") is messaging.testing.plugin


def test_fixture_in_a_db_test(
    captured_messages: CapturedMessages, db, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        publish("orders", b"order 42")
    captured_messages.assert_published(queue="orders", body=b"order 42")
    assert captured_messages.deliver().outcomes == ["acked"]
    assert HANDLED == [b"order 42"]


def test_fixture_without_the_commit_captures_nothing(captured_messages, db) -> None:
    publish("orders", b"order 42")  # inside the test's transaction, never committed
    captured_messages.assert_nothing_published()
    assert broker.get_publisher_factory() is CapturingPublisher


# --------------------------------------------------------------------------- TestCase


@override_settings(
    MESSAGING={
        **NO_BROKER,
        "CONSUMERS": {"orders": "tests.support.capture_handlers.record"},
        "MAX_ATTEMPTS": 3,
    }
)
class CaptureInTestCase(TestCase):
    def setUp(self) -> None:
        HANDLED.clear()

    def test_capture_on_commit_callbacks(self) -> None:
        with capture() as captured:
            with self.captureOnCommitCallbacks(execute=True):
                publish("orders", b"order 42")
            self.assertEqual(len(captured), 1)
            result = captured.deliver()
        self.assertEqual(result.outcomes, ["acked"])
        self.assertEqual(captured[0].message.status, Message.Status.PUBLISHED)

    def test_nothing_without_executing_the_callbacks(self) -> None:
        with capture() as captured:
            publish("orders", b"order 42")
        self.assertEqual(len(captured), 0)

    def test_rolled_back_savepoint_captures_nothing(self) -> None:
        with capture() as captured, self.captureOnCommitCallbacks(execute=True):
            try:
                with transaction.atomic():
                    publish("orders", b"rolled back")
                    raise RuntimeError
            except RuntimeError:
                pass
            publish("orders", b"kept")
        self.assertEqual([m.body for m in captured], [b"kept"])

    def test_attempts_dead_letter_duplicate_and_reject(self) -> None:
        with capture() as captured:
            with self.captureOnCommitCallbacks(execute=True):
                publish("orders", b"fails")
                publish("orders", b"rejected")
                publish("orders", b"fine")
            failing = captured.deliver(captured[0], handlers={"orders": always_fails})
            rejected = captured.deliver(captured[1], handlers={"orders": rejects})
            fine = captured.deliver(captured[2])
            duplicate = captured.deliver(captured[2], redeliver=True)
        self.assertEqual(failing.outcomes, ["requeued", "requeued", "dead_lettered"])
        self.assertEqual(rejected.outcomes, ["rejected"])
        self.assertEqual((fine.outcomes, duplicate.outcomes), (["acked"], ["duplicate"]))
        self.assertEqual(
            [(d.message.body, d.outcome) for d in captured.dead_letters],
            [(b"fails", "dead_lettered"), (b"rejected", "rejected")],
        )
        self.assertEqual(HANDLED, [b"fails"] * 3 + [b"rejected", b"fine"])
