"""``Receipt.error_cause`` (migration 0014): the error's folded first line, written with
every receipt that has an error — by the real consumer for a failing handler, by any ORM
save, by the consumer's batch insert (COPY on PostgreSQL) — and backfilled by the
migration; the failures page groups by it and its group links filter on it."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from messaging.admin.failure_groups import build_triage
from messaging.consumer.receipts import FIELDS, insert_receipts
from messaging.db.error_causes import stored_cause
from messaging.db.failure_counts import fill_error_causes
from messaging.db.postgresql import COPY_THRESHOLD
from messaging.models import Receipt
from tests.support.admin import url
from tests.support.environment import settings_env
from tests.support.exactly_once import publish_many

FAILED = ("requeued", "dead_lettered", "rejected")


def test_the_consumer_writes_the_cause_of_a_failing_handler(start_consumer, queue_name) -> None:
    publish_many(queue_name, 3, prefix="order-")
    consumer = start_consumer(
        queue_name,
        "--idle-timeout",
        "3",
        handler="tests.support.handlers.fail",
        env=settings_env(MAX_ATTEMPTS=2),
    )
    assert consumer.wait(timeout=120) == 0, consumer.describe()
    failed = list(Receipt.objects.filter(queue_name=queue_name, outcome__in=FAILED))
    assert {r.outcome for r in failed} == {"requeued", "dead_lettered"}, failed
    assert len(failed) == 6
    # "RuntimeError: handler failed on b'order-0'" … : one cause for the three bodies.
    assert {r.error_cause for r in failed} == {"RuntimeError: handler failed on b'<value>'"}
    (group,) = build_triage(queue=queue_name).groups
    assert (group.cause, group.total, group.messages, group.variant_count) == (
        "RuntimeError: handler failed on b'<value>'",
        6,
        3,
        3,
    )
    assert group.dead_lettered == 3


def row(message_id: str, error: str, outcome: str) -> tuple:
    now = timezone.now()
    values = dict.fromkeys(FIELDS, "")
    values.update(
        message=message_id,
        queue_name="copy.q",
        consumer_pid=1,
        delivery_tag=1,
        redelivered=False,
        attempt=1,
        outcome=outcome,
        error=error,
        received_at=now,
        finished_at=now,
        stream_offset=None,
        reply=None,
    )
    return tuple(values[name] for name in FIELDS)


@pytest.mark.django_db(transaction=True)
def test_the_batch_insert_writes_the_cause_and_acked_batches_leave_it_empty() -> None:
    n = COPY_THRESHOLD + 5  # COPY on PostgreSQL, executemany elsewhere
    failing = [row(f"f-{i}", f"KeyError: 'k{i}'\nmore", "requeued") for i in range(n)]
    acked = [row(f"a-{i}", "", "acked") for i in range(n)]
    with transaction.atomic():
        insert_receipts(failing + [row("mixed-ok", "", "acked")])
        insert_receipts(acked)
    causes = dict(Receipt.objects.values_list("message_id", "error_cause"))
    assert {causes[f"f-{i}"] for i in range(n)} == {"KeyError: '<value>'"}
    assert causes["mixed-ok"] == "" and {causes[f"a-{i}"] for i in range(n)} == {""}


@pytest.mark.django_db
def test_an_orm_save_fills_the_cause_unless_given() -> None:
    now = timezone.now()
    fields = {"queue_name": "q", "outcome": "rejected", "received_at": now, "finished_at": now}
    saved = Receipt.objects.create(message_id="s", error="ValueError: 12 apples", **fields)
    given = Receipt.objects.create(message_id="g", error="x", error_cause="mine", **fields)
    bulk = Receipt.objects.bulk_create(
        [Receipt(message_id="b", error="OSError: [Errno 5]", **fields)]
    )
    assert Receipt.objects.get(pk=saved.pk).error_cause == "ValueError: <num> apples"
    assert Receipt.objects.get(pk=given.pk).error_cause == "mine"
    assert Receipt.objects.get(pk=bulk[0].pk).error_cause == "OSError: [Errno <num>]"


@pytest.mark.django_db
def test_the_migration_backfills_receipts_without_a_cause() -> None:
    now = timezone.now()
    Receipt.objects.bulk_create(
        Receipt(
            message_id=f"old-{i}",
            queue_name="q",
            outcome="dead_lettered" if i % 2 else "acked",
            error=f"smtplib.SMTPRecipientsRefused: {{'u{i}@example.com': (550, b'no')}}"
            if i % 2
            else "",
            received_at=now - timedelta(minutes=i),
            finished_at=now,
        )
        for i in range(7)
    )
    Receipt.objects.update(error_cause="")  # as before migration 0014
    migration = importlib.import_module("messaging.migrations.0014_receipt_error_cause")
    migration.backfill(apps, connection.schema_editor())
    causes = dict(Receipt.objects.values_list("message_id", "error_cause"))
    expected = "smtplib.SMTPRecipientsRefused: {'<email>': (<num>, b'<value>')}"
    assert [causes[f"old-{i}"] for i in range(7)] == ["", expected] * 3 + [""]
    assert fill_error_causes(connection, Receipt._meta.db_table, batch=2) == 0  # all done
    Receipt.objects.filter(message_id="old-1").update(error_cause="")
    assert fill_error_causes(connection, Receipt._meta.db_table, batch=2) == 1
    assert stored_cause(Receipt.objects.get(message_id="old-1").error) == expected


@pytest.mark.django_db
def test_the_page_groups_by_the_stored_cause_and_the_link_filters_on_it(
    admin_client: Client,
) -> None:
    now = timezone.now()
    fields = {"queue_name": "q", "outcome": "requeued", "received_at": now, "finished_at": now}
    Receipt.objects.bulk_create(
        [
            Receipt(message_id="a", error="ValueError: 1", error_cause="stored: one", **fields),
            Receipt(message_id="b", error="TypeError: 2", error_cause="stored: one", **fields),
            Receipt(message_id="c", error="ValueError: 3", error_cause="stored: two", **fields),
        ]
    )
    page = admin_client.get(url("failures"))
    rows = {r.group.cause: r for r in page.context["rows"]}
    assert set(rows) == {"stored: one", "stored: two"}
    assert rows["stored: one"].group.variant_count == 2
    listed = admin_client.get(rows["stored: one"].link).context["cl"].result_list
    assert {r.message_id for r in listed} == {"a", "b"}
