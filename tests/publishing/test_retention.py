"""Retention: ``manage.py purgemessages`` and :func:`messaging.publishing.retention.purge`."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from messaging.models import Message, Queue, Receipt
from messaging.publishing.retention import parse_age, purge

DAY = timedelta(days=1)


def purge_cmd(*args: str) -> str:
    out = io.StringIO()
    call_command("purgemessages", *args, stdout=out)
    return out.getvalue()


def message(queue: Queue, age: timedelta, status: str = Message.Status.PUBLISHED) -> Message:
    row = Message.objects.create(queue=queue, body=b"x", status=status)
    Message.objects.filter(pk=row.pk).update(created_at=timezone.now() - age)
    return row


def receipt(message_id: str, age: timedelta) -> Receipt:
    when = timezone.now() - age
    return Receipt.objects.create(
        message_id=message_id,
        queue_name="q",
        outcome=Receipt.Outcome.ACKED,
        received_at=when,
        finished_at=when,
    )


@pytest.fixture
def history(db):
    queue = Queue.objects.create(name="purge-q")
    rows = {
        "old_published": message(queue, 40 * DAY),
        "old_failed": message(queue, 40 * DAY, Message.Status.FAILED),
        "old_pending": message(queue, 40 * DAY, Message.Status.PENDING),
        "new_published": message(queue, 2 * DAY),
    }
    receipts = {
        "of_old": receipt(rows["old_published"].message_id, 39 * DAY),
        "of_new": receipt(rows["new_published"].message_id, 1 * DAY),
        "old_foreign": receipt("someone-elses-id", 35 * DAY),
        "old_blank": receipt("", 35 * DAY),
        "new_foreign": receipt("someone-elses-new-id", 1 * DAY),
        # A message older than the cutoff is kept when its status is not purged; so are
        # its receipts, even old ones.
        "of_pending": receipt(rows["old_pending"].message_id, 39 * DAY),
    }
    return rows, receipts


def left(model, objects) -> set[str]:
    pks = set(model.objects.values_list("pk", flat=True))
    return {name for name, obj in objects.items() if obj.pk in pks}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("30d", 30 * DAY),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("2w", 14 * DAY),
        (" 7d ", 7 * DAY),
    ],
)
def test_parse_age(text, expected):
    assert parse_age(text) == expected


@pytest.mark.parametrize("text", ["30", "d", "1.5h", "-3d", "30 days", ""])
def test_parse_age_refuses_other_text(text):
    with pytest.raises(ValueError, match="e.g. 30d, 12h, 90m"):
        parse_age(text)


def test_purge_deletes_old_published_and_failed_with_their_receipts(history):
    rows, receipts = history
    out = purge_cmd("--older-than", "30d")
    assert "Deleted 2 message(s) (published, failed) and 3 receipt(s)" in out
    assert left(Message, rows) == {"old_pending", "new_published"}
    assert left(Receipt, receipts) == {"of_new", "new_foreign", "of_pending"}


def test_purge_by_status(history):
    rows, receipts = history
    out = purge_cmd("--older-than", "30d", "--status", "failed")
    assert "Deleted 1 message(s) (failed)" in out
    assert left(Message, rows) == {"old_published", "old_pending", "new_published"}
    # Receipts of messages still in the table are kept; other producers' old ones go.
    assert left(Receipt, receipts) == {"of_old", "of_new", "new_foreign", "of_pending"}


def test_purge_pending_only_when_asked(history):
    rows, receipts = history
    purge_cmd("--older-than", "30d", "--status", "pending", "--status", "published")
    assert left(Message, rows) == {"old_failed", "new_published"}
    assert "of_pending" not in left(Receipt, receipts)


def test_dry_run_counts_and_deletes_nothing(history):
    out = purge_cmd("--older-than", "30d", "--dry-run")
    assert "Would delete 2 message(s) (published, failed) and 3 receipt(s)" in out
    assert Message.objects.count() == 4
    assert Receipt.objects.count() == 6


def test_shorter_age_and_small_batches(history):
    rows, _ = history
    result = purge(timedelta(hours=36), batch_size=1)
    assert result.messages == 3
    assert left(Message, rows) == {"old_pending"}


def test_many_rows_in_batches(db):
    queue = Queue.objects.create(name="purge-many")
    Message.objects.bulk_create(
        [Message(queue=queue, body=b"x", status=Message.Status.PUBLISHED) for _ in range(2500)]
    )
    Message.objects.update(created_at=timezone.now() - 2 * DAY)
    result = purge(DAY, batch_size=1000)
    assert result.messages == 2500
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    "args, error",
    [
        (["--older-than", "soon"], "cannot read 'soon' as an age"),
        (["--older-than", "30d", "--batch-size", "0"], "must be between 1 and 10000"),
    ],
)
def test_bad_input_is_one_line(history, args, error):
    with pytest.raises(CommandError, match=error) as info:
        purge_cmd(*args)
    assert "\n" not in str(info.value)
    assert Message.objects.count() == 4


def test_purge_command_in_a_subprocess(manage):
    proc = manage("purgemessages", "--older-than", "30d", "--status", "bogus")
    assert proc.returncode != 0
    assert "invalid choice: 'bogus'" in proc.stderr.decode()
