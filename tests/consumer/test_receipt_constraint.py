"""``messaging_one_acked_receipt``: one index serves both the dedup rule (one acked
receipt per message_id and queue) and the look-ups by message_id; the consumer's binary
COPY raises the same IntegrityError as an INSERT."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from messaging.consumer.receipts import FIELDS, insert_receipts
from messaging.models import Receipt

pytestmark = pytest.mark.django_db


def receipt(message_id: str, queue: str = "q", outcome: str = "acked") -> Receipt:
    now = timezone.now()
    return Receipt.objects.create(
        message_id=message_id, queue_name=queue, outcome=outcome, received_at=now, finished_at=now
    )


def row(message_id: str, tag: int, queue: str = "q") -> tuple:
    now = timezone.now()
    values = {
        "message": message_id,
        "queue_name": queue,
        "consumer_name": "host:1",
        "consumer_host": "host",
        "consumer_pid": 1,
        "consumer_tag": "ctag",
        "delivery_tag": tag,
        "redelivered": False,
        "attempt": 1,
        "outcome": "acked",
        "error": "",
        "traceback": "",
        "received_at": now,
        "finished_at": now,
        "exchange": "",
        "routing_key": queue,
        "stream_offset": None,
        "reply": None,
        "reply_content_type": "",
    }
    return tuple(values[name] for name in FIELDS)


def test_a_second_acked_receipt_of_a_message_in_a_queue_is_refused() -> None:
    receipt("m-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        receipt("m-1")


def test_other_outcomes_other_queues_and_empty_ids_do_not_clash() -> None:
    receipt("m-1")
    receipt("m-1", queue="other")
    receipt("m-1", outcome="requeued")
    receipt("m-1", outcome="requeued")
    receipt("m-1", outcome="dead_lettered")
    receipt("")
    receipt("")
    assert Receipt.objects.filter(message_id="m-1").count() == 5
    assert Receipt.objects.filter(message_id="", outcome="acked").count() == 2


def test_the_bulk_copy_writes_every_column_and_refuses_a_duplicate() -> None:
    rows = [row(f"b-{n}", n) for n in range(30)]  # over COPY_THRESHOLD: COPY on PostgreSQL
    with transaction.atomic():
        insert_receipts(rows)
    stored = Receipt.objects.get(message_id="b-7")
    assert (stored.delivery_tag, stored.consumer_pid, stored.routing_key) == (7, 1, "q")
    assert stored.received_at == rows[7][FIELDS.index("received_at")]
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_receipts([row(f"c-{n}", n) for n in range(20)] + [row("b-3", 99)])
    assert not Receipt.objects.filter(message_id__startswith="c-").exists()


def test_a_message_id_look_up_reads_the_index() -> None:
    for n in range(2000):
        receipt(f"id-{n:05d}", outcome="acked" if n % 3 else "requeued")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Receipt._meta.db_table}")
    plan = Receipt.objects.filter(message_id="id-00042").explain()
    assert "messaging_one_acked_receipt" in plan, plan


class Boom(Exception):
    pass


def _status() -> object:
    """psycopg's transaction status of the default connection (None elsewhere)."""
    if connection.vendor != "postgresql":
        return None
    from psycopg.pq import TransactionStatus

    return TransactionStatus(connection.connection.pgconn.transaction_status).name


@pytest.mark.django_db(transaction=True)
def test_receipts_as_the_only_statement_are_committed_with_nothing_left_open() -> None:
    rows = [row(f"l-{n}", n) for n in range(20)]
    with transaction.atomic():
        insert_receipts(rows, last=True)
        if connection.vendor == "postgresql":
            # Committed on their own (no BEGIN / COMMIT round trips); autocommit is back.
            assert _status() == "IDLE"
            assert connection.connection.autocommit is False
    assert Receipt.objects.filter(message_id__startswith="l-").count() == 20


@pytest.mark.django_db(transaction=True)
def test_receipts_after_other_work_stay_in_its_transaction() -> None:
    from messaging.models import Queue

    with pytest.raises(Boom), transaction.atomic():
        Queue.objects.create(name="handler-work")  # what a handler wrote first
        insert_receipts([row(f"w-{n}", n) for n in range(20)], last=True)
        if connection.vendor == "postgresql":
            assert _status() == "INTRANS"
        raise Boom
    assert not Queue.objects.filter(name="handler-work").exists()
    assert not Receipt.objects.filter(message_id__startswith="w-").exists()


@pytest.mark.django_db(transaction=True)
def test_receipts_in_a_nested_atomic_stay_in_the_outer_transaction() -> None:
    with pytest.raises(Boom), transaction.atomic():
        with transaction.atomic():
            insert_receipts([row("n-1", 1)], last=True)
        raise Boom
    assert not Receipt.objects.filter(message_id="n-1").exists()
