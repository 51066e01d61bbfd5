"""``message_published`` / ``message_failed``: sent once the outcome is committed, with the
documented arguments, and a receiver that raises never breaks publishing."""

from __future__ import annotations

import logging
import uuid

import pytest
from django.conf import settings
from django.db import transaction
from django.test import override_settings

from messaging import Unroutable, publish, signals
from messaging.exceptions import BrokerUnavailable
from messaging.models import Message, Queue
from messaging.publishing import build_message, send_copies
from messaging.publishing.relay import relay_once
from tests.support.ports import closed_port


@pytest.fixture
def caught():
    """Every publishing signal sent during the test: (signal name, kwargs)."""
    seen: list[tuple[str, dict]] = []

    def on_published(sender, **kwargs):
        assert sender is Message
        seen.append(("published", kwargs))

    def on_failed(sender, **kwargs):
        assert sender is Message
        seen.append(("failed", kwargs))

    signals.message_published.connect(on_published)
    signals.message_failed.connect(on_failed)
    yield seen
    signals.message_published.disconnect(on_published)
    signals.message_failed.disconnect(on_failed)


# The broker is not the point of these two: messaging.testing stands in for it (the
# delivery itself is tested against the real broker everywhere else).


def test_published_after_commit_with_the_message(transactional_db, caught, captured_messages):
    with transaction.atomic():
        message = publish("orders", b"x")
        assert caught == []
        captured_messages.assert_nothing_published()
    assert [name for name, _ in caught] == ["published"]
    captured_messages.assert_published(queue="orders", message_id=message.message_id)
    sent = caught[0][1]["message"]
    assert sent.message_id == message.message_id
    assert sent.status == Message.Status.PUBLISHED
    # The receiver could already read the committed row.
    assert Message.objects.get(message_id=sent.message_id).status == Message.Status.PUBLISHED


def test_nothing_is_sent_for_a_rolled_back_message(transactional_db, caught, captured_messages):
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        publish("orders", b"x")
        1 / 0  # noqa: B018
    assert caught == []
    captured_messages.assert_nothing_published()


def test_failed_for_good_when_unroutable(transactional_db, caught):
    key = f"nobody-{uuid.uuid4().hex[:8]}"
    with pytest.raises(Unroutable):
        publish(exchange="amq.direct", routing_key=key, body=b"x")
    [(name, kwargs)] = caught
    assert name == "failed"
    assert isinstance(kwargs["error"], Unroutable)
    assert kwargs["will_retry"] is False
    assert kwargs["message"].status == Message.Status.FAILED
    assert str(kwargs["error"]) == kwargs["message"].last_error


def test_failed_and_will_retry_when_the_broker_is_down(transactional_db, queue_name, caught):
    url = f"amqp://guest:guest@127.0.0.1:{closed_port()}/%2F"
    with override_settings(MESSAGING={**settings.MESSAGING, "BROKER_URL": url}):
        message = publish(queue_name, b"x")
    [(name, kwargs)] = caught
    assert name == "failed"
    assert isinstance(kwargs["error"], BrokerUnavailable)
    assert kwargs["will_retry"] is True
    assert kwargs["message"].message_id == message.message_id


def test_a_receiver_that_raises_is_logged_and_publishing_goes_on(
    transactional_db, queue_name, caplog, channel
):
    def broken(sender, **kwargs):
        raise RuntimeError("receiver bug")

    signals.message_published.connect(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="messaging.signals"):
            message = publish(queue_name, b"x")
    finally:
        signals.message_published.disconnect(broken)
    assert Message.objects.get(pk=message.pk).status == Message.Status.PUBLISHED
    assert channel.basic_get(queue_name, auto_ack=True)[2] == b"x"
    assert any("receiver bug" in record.getMessage() for record in caplog.records)


def test_relay_and_send_copies_send_them_too(transactional_db, queue_name, caught):
    queue = Queue.objects.create(name=queue_name)
    row = Message.objects.create(queue=queue, body=b"relayed")
    relay_once()
    ids = send_copies(build_message(queue, b"copy"), 3).published
    published = [kwargs["message"].message_id for name, kwargs in caught if name == "published"]
    assert published == [row.message_id, *ids]
