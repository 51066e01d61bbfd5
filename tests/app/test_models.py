"""Models: migrations in sync, validation, binary bodies, constraints, ``__str__``."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging.models import Message, Queue, Receipt

pytestmark = [pytest.mark.unit, pytest.mark.django_db]


def make_receipt(**fields) -> Receipt:
    now = timezone.now()
    values = {
        "queue_name": "orders",
        "outcome": Receipt.Outcome.ACKED,
        "received_at": now,
        "finished_at": now,
    }
    values.update(fields)
    return Receipt.objects.create(**values)


def test_no_missing_migrations():
    out = io.StringIO()
    # --check exits (SystemExit) when a migration is missing; it must not.
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    assert "No changes detected" in out.getvalue()


# --------------------------------------------------------------------------- Queue


@pytest.mark.parametrize(
    "name",
    [
        "q",
        "a" * 251,  # <name>.dlq is then exactly 255 bytes
        "é" * 125 + "a",  # 126 characters, 251 bytes
        "tâches.urgentes",
        "amq",  # only the "amq." prefix is reserved
        "x.amq.y",
    ],
)
def test_valid_queue_names(name):
    Queue(name=name).full_clean()


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("a" * 256, "too_long"),
        ("a" * 252, "too_long"),  # its <name>.dlq would be 256 bytes
        ("é" * 126, "too_long"),  # 252 bytes
        ("bad\nname", "control_character"),
        ("tab\there", "control_character"),
        (" lead", "whitespace"),
        ("trail ", "whitespace"),
        ("é" * 128, "too_long"),  # only 128 characters, but 256 bytes of UTF-8
        ("✓" * 86, "too_long"),  # 86 characters, 258 bytes
        ("amq.tasks", "reserved"),
        ("amq.", "reserved"),
        ("", None),
    ],
)
def test_invalid_queue_names(name, code):
    with pytest.raises(ValidationError) as info:
        Queue(name=name).full_clean()
    errors = info.value.error_dict["name"]
    if code is not None:
        assert code in [e.code for e in errors]


def test_byte_length_error_message_says_bytes():
    with pytest.raises(ValidationError) as info:
        Queue(name="é" * 128).full_clean()
    assert "256 bytes" in " ".join(info.value.message_dict["name"])


def test_queue_name_is_unique():
    Queue.objects.create(name="orders")
    with pytest.raises(ValidationError) as info:
        Queue(name="orders").full_clean()
    assert "name" in info.value.error_dict


def test_quorum_queue_must_be_durable():
    with pytest.raises(ValidationError) as info:
        Queue(name="q", queue_type=Queue.QueueType.QUORUM, durable=False).full_clean()
    assert "durable" in info.value.error_dict
    Queue(name="q", queue_type=Queue.QueueType.QUORUM, durable=True).full_clean()
    Queue(name="q2", queue_type=Queue.QueueType.CLASSIC, durable=False).full_clean()


@pytest.mark.parametrize(
    "key", ["x-queue-type", "x-dead-letter-exchange", "x-dead-letter-routing-key"]
)
def test_reserved_arguments_are_refused(key):
    with pytest.raises(ValidationError) as info:
        Queue(name="q", arguments={key: "value"}).full_clean()
    assert key in " ".join(info.value.message_dict["arguments"])


@pytest.mark.parametrize("arguments", [{"max-length": 5}, ["x-max-length"], "x-max-length"])
def test_arguments_must_be_an_object_of_x_arguments(arguments):
    with pytest.raises(ValidationError) as info:
        Queue(name="q", arguments=arguments).full_clean()
    assert "arguments" in info.value.error_dict


def test_other_x_arguments_are_accepted():
    Queue(name="q", arguments={"x-max-length": 10000, "x-message-ttl": 60000}).full_clean()


def test_declare_arguments():
    # The app manages q.dlq itself: no x- arguments, so the tutorial's plain
    # queue_declare(durable=True) stays compatible with the queue.
    assert Queue(name="q").declare_arguments() == {}
    assert Queue(name="q").dead_letter_queue == "q.dlq"
    assert Queue(name="q", dead_lettering=False).dead_letter_queue is None
    queue = Queue(
        name="q",
        queue_type=Queue.QueueType.QUORUM,
        dead_letter_exchange="dlx",
        dead_letter_routing_key="dead",
        arguments={"x-max-length": 10},
    )
    assert queue.declare_arguments() == {
        "x-max-length": 10,
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "dlx",
        "x-dead-letter-routing-key": "dead",
    }
    # Building the table must not change the row's own arguments.
    assert queue.arguments == {"x-max-length": 10}
    classic = Queue(name="q", dead_letter_exchange="dlx")
    assert classic.declare_arguments() == {"x-dead-letter-exchange": "dlx"}
    # An explicit exchange wins over the app-managed dead-letter queue.
    assert classic.dead_letter_queue is None


def test_dead_letter_routing_key_needs_an_exchange():
    with pytest.raises(ValidationError) as info:
        Queue(name="q", dead_letter_routing_key="dead").full_clean()
    assert "dead_letter_routing_key" in info.value.message_dict


def test_a_dead_letter_queue_has_no_dead_letter_queue():
    queue = Queue(name="orders.dlq")
    queue.full_clean()
    assert queue.dead_letter_queue is None


def test_queue_defaults():
    queue = Queue.objects.create(name="orders")
    queue.refresh_from_db()
    assert queue.durable is True
    assert queue.queue_type == Queue.QueueType.CLASSIC
    assert queue.arguments == {}


# --------------------------------------------------------------------------- Message


@pytest.mark.parametrize(
    "body",
    [
        bytes(range(256)),
        b"",
        b"\x00",
        b"\xff\xfe\x00abc",
        bytes(range(256)) * 64,  # 16 KiB
        "héllo ✓".encode(),
    ],
    ids=["all-bytes", "empty", "nul", "not-utf8", "16KiB", "utf8"],
)
def test_message_body_round_trips_exactly(body):
    queue = Queue.objects.create(name="orders")
    message = Message.objects.create(queue=queue, body=body)
    reloaded = Message.objects.get(pk=message.pk)
    assert reloaded.body_bytes == body
    assert type(reloaded.body_bytes) is bytes


def test_message_defaults():
    queue = Queue.objects.create(name="orders")
    first = Message.objects.create(queue=queue)
    second = Message.objects.create(queue=queue)
    first.refresh_from_db()
    assert first.status == Message.Status.PENDING
    assert first.persistent is True
    assert first.attempts == 0
    assert first.body_bytes == b""
    assert first.headers == {}
    assert first.message_id and first.message_id != second.message_id


def test_message_needs_a_queue_or_an_exchange_in_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(body=b"nowhere")
    assert not Message.objects.exists()
    Message.objects.create(exchange="amq.direct", routing_key="rk")
    Message.objects.create(queue=Queue.objects.create(name="orders"))
    assert Message.objects.count() == 2


def test_message_needs_a_queue_or_an_exchange_in_full_clean():
    with pytest.raises(ValidationError) as info:
        Message(body=b"nowhere").full_clean()
    assert any("one of the two" in m for m in info.value.messages)
    Message(exchange="amq.fanout").full_clean()


def test_message_goes_to_a_queue_or_an_exchange_not_both():
    queue = Queue.objects.create(name="orders")
    for both in (
        Message(queue=queue, exchange="amq.direct"),
        Message(queue=queue, routing_key="rk"),  # the default exchange routes by queue
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            both.save()
    assert not Message.objects.exists()


def test_message_destination_and_str():
    queue = Queue.objects.create(name="orders")
    to_queue = Message.objects.create(queue=queue)
    assert to_queue.destination == ("", "orders")
    assert str(to_queue) == f"{to_queue.message_id} → orders (pending)"
    to_exchange = Message.objects.create(
        exchange="amq.direct", routing_key="rk", status=Message.Status.FAILED
    )
    assert to_exchange.destination == ("amq.direct", "rk")
    assert str(to_exchange) == f"{to_exchange.message_id} → amq.direct/rk (failed)"


def test_message_status_querysets():
    queue = Queue.objects.create(name="orders")
    pending = Message.objects.create(queue=queue)
    published = Message.objects.create(queue=queue, status=Message.Status.PUBLISHED)
    failed = Message.objects.create(queue=queue, status=Message.Status.FAILED)
    assert list(Message.objects.pending()) == [pending]
    assert list(Message.objects.published()) == [published]
    assert list(Message.objects.failed()) == [failed]


def test_queue_with_messages_cannot_be_deleted():
    from django.db.models import ProtectedError

    queue = Queue.objects.create(name="orders")
    Message.objects.create(queue=queue)
    with pytest.raises(ProtectedError):
        queue.delete()


# --------------------------------------------------------------------------- Receipt


def test_second_acked_receipt_for_same_queue_and_message_id_is_refused():
    make_receipt(message_id="m-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_receipt(message_id="m-1")
    assert Receipt.objects.count() == 1


def test_acked_receipts_with_blank_message_id_are_allowed():
    make_receipt(message_id="")
    make_receipt(message_id="")
    assert Receipt.objects.filter(message_id="").count() == 2


@pytest.mark.parametrize(
    "outcome",
    [Receipt.Outcome.REQUEUED, Receipt.Outcome.REJECTED, Receipt.Outcome.DUPLICATE],
)
def test_acked_plus_other_outcomes_for_same_id_are_allowed(outcome):
    make_receipt(message_id="m-1", outcome=outcome)
    make_receipt(message_id="m-1", outcome=Receipt.Outcome.ACKED)
    make_receipt(message_id="m-1", outcome=outcome)
    assert Receipt.objects.filter(message_id="m-1").count() == 3


def test_same_message_id_acked_on_another_queue_is_allowed():
    make_receipt(queue_name="orders", message_id="m-1")
    make_receipt(queue_name="audit", message_id="m-1")
    assert Receipt.objects.acked().count() == 2


def test_receipt_message_resolves_to_the_message_row():
    queue = Queue.objects.create(name="orders")
    message = Message.objects.create(queue=queue, body=b"x")
    receipt = make_receipt(message_id=message.message_id)
    assert Receipt.objects.get(pk=receipt.pk).message == message
    assert list(message.receipts.all()) == [receipt]
    assert Receipt.objects.select_related("message").get(pk=receipt.pk).message == message


@pytest.mark.parametrize("message_id", ["not-one-of-ours", ""])
def test_receipt_message_is_none_when_no_row_matches(message_id):
    Message.objects.create(queue=Queue.objects.create(name="orders"))
    receipt = make_receipt(message_id=message_id)
    reloaded = Receipt.objects.get(pk=receipt.pk)
    assert reloaded.message_id == message_id  # the id is kept exactly as it arrived
    assert reloaded.message is None
    assert Receipt.objects.select_related("message").get(pk=receipt.pk).message is None


def test_receipt_message_id_can_exist_without_a_message_row():
    # No database constraint: a foreign producer's message_id is stored as is.
    make_receipt(message_id="external-42")
    assert Receipt.objects.filter(message_id="external-42").exists()


def test_receipt_with_a_foreign_message_id_passes_full_clean():
    now = timezone.now()
    receipt = Receipt(
        queue_name="orders",
        message_id="external-42",
        outcome="acked",
        received_at=now,
        finished_at=now,
    )
    receipt.full_clean()
    receipt.save()
    assert Receipt.objects.get(pk=receipt.pk).message is None


def test_receipt_and_queue_str():
    assert str(make_receipt(message_id="m-1")) == "orders m-1 acked"
    blank = make_receipt(message_id="", outcome=Receipt.Outcome.REQUEUED)
    assert str(blank) == "orders (no id) requeued"
    assert str(Queue(name="tâches")) == "tâches"
