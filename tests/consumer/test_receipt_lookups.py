"""Receipt.message_id takes the text lookups of a CharField (it is the column of a
LooseForeignKey); ``startswith`` is a range the message_id index serves; the admin's
receipt search matches prefixes; ``receipt.message`` still resolves (or is None)."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.admin.views.main import SEARCH_VAR
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from messaging.fields import PrefixRange, prefix_upper_bound, sorts_by_code_point
from messaging.models import Message, Queue, Receipt

pytestmark = pytest.mark.django_db

IDS = [
    "order-1",
    "order-10",
    "order-z",
    "order.",
    "order1",
    "orders",
    "Order-2",
    "ORDER-3",
    "order-é",
    "order-\U0001f600",
    "ordeq",
    "x-order-1",
    "re%ceipt_1",
    "rexceipt",
    "",
]


def make_receipts(ids: list[str]) -> None:
    """One receipt per id; its queue_name (a plain CharField) holds the same text, so
    each lookup can be compared with what Django's CharField gives."""
    now = timezone.now()
    Receipt.objects.bulk_create(
        Receipt(
            message_id=message_id,
            queue_name=message_id,
            outcome=Receipt.Outcome.REQUEUED,
            received_at=now,
            finished_at=now,
        )
        for message_id in ids
    )


def ids_of(**lookup: object) -> list[str]:
    return sorted(Receipt.objects.filter(**lookup).values_list("message_id", flat=True))


@pytest.mark.parametrize(
    ("lookup", "value"),
    [
        ("istartswith", "order-"),
        ("contains", "der-"),
        ("contains", "_"),  # % and _ are literal
        ("icontains", "DER-"),
        ("endswith", "-1"),
        ("iendswith", "-Z"),
        ("iexact", "order-2"),
        ("regex", r"^order-\d+$"),
        ("iregex", r"^ORDER-\d"),
        ("in", ["order-1", "nope", "orders"]),
        ("exact", "order-z"),
        ("gte", "order."),
        ("lt", "order"),
        ("isnull", False),
    ],
)
def test_text_lookups_behave_as_on_a_charfield(lookup: str, value: object) -> None:
    make_receipts(IDS)
    expected = ids_of(**{f"queue_name__{lookup}": value})
    assert expected  # the case says something
    assert ids_of(**{f"message_id__{lookup}": value}) == expected


@pytest.mark.parametrize(
    "prefix", ["order-", "order", "ORDER", "Order-", "re%", "re_", "order-\U0001f600", "", "zzz"]
)
def test_startswith_matches_python_case_sensitively(prefix: str) -> None:
    # Case-sensitive on every database (Django's CharField startswith is not on SQLite).
    make_receipts(IDS)
    assert ids_of(message_id__startswith=prefix) == sorted(i for i in IDS if i.startswith(prefix))


def test_startswith_through_the_relation_name() -> None:
    make_receipts(IDS)
    assert ids_of(message__startswith="Order") == ["Order-2"]


def test_startswith_with_the_highest_code_point() -> None:
    top = chr(0x10FFFF)
    make_receipts(["a" + top, "a" + top + "b", "b", "a"])
    assert ids_of(message_id__startswith="a" + top) == ["a" + top, "a" + top + "b"]


def test_prefix_upper_bound() -> None:
    assert prefix_upper_bound("order-") == "order."
    assert prefix_upper_bound("ab\u00ff") == "ab\u0100"
    assert prefix_upper_bound("a\ud7ff") == "a\ue000"  # past the surrogates
    assert prefix_upper_bound("a" + chr(0x10FFFF)) == "b"
    assert prefix_upper_bound("") is None
    assert prefix_upper_bound(chr(0x10FFFF)) is None


def test_startswith_is_a_range_where_the_database_sorts_by_code_point() -> None:
    assert Receipt._meta.get_field("message").get_lookup("startswith") is PrefixRange
    sql = str(Receipt.objects.filter(message_id__startswith="order-").query)
    # SQLite (BINARY) always; PostgreSQL with a C / C.UTF-8 database, as here and in CI.
    assert sorts_by_code_point(connection)
    assert "LIKE" not in sql.upper() and ">=" in sql and "<" in sql


def test_prefix_search_uses_the_message_index() -> None:
    make_receipts(
        [f"order-{n:05d}" for n in range(3000)] + [str(uuid.uuid4()) for _ in range(3000)]
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Receipt._meta.db_table}")
    plan = Receipt.objects.filter(message_id__startswith="order-0001").explain()
    assert "messaging_one_acked_receipt" in plan, plan
    assert ids_of(message_id__startswith="order-0001") == [f"order-0001{n}" for n in range(10)]


def test_receipt_message_still_resolves() -> None:
    queue = Queue.objects.create(name="orders")
    message = Message.objects.create(queue=queue, body=b"x")
    make_receipts([message.message_id, "someone-elses-id", ""])
    by_id = {r.message_id: r for r in Receipt.objects.all()}
    assert by_id[message.message_id].message == message
    assert by_id["someone-elses-id"].message is None
    assert by_id[""].message is None
    found = Receipt.objects.filter(message_id__startswith=message.message_id[:8])
    assert [r.message for r in found] == [message]


def admin_search(client: Client, text: str) -> list[str]:
    page = client.get(reverse("admin:messaging_receipt_changelist"), {SEARCH_VAR: text})
    assert page.status_code == 200
    return sorted(r.message_id for r in page.context["cl"].result_list)


def test_admin_search_matches_prefixes(admin_client: Client) -> None:
    make_receipts(IDS)  # none of these ids has a Message row: they are still found
    assert admin_search(admin_client, "order-") == sorted(i for i in IDS if i.startswith("order-"))
    assert admin_search(admin_client, "x-order-1") == ["x-order-1"]
    assert admin_search(admin_client, "nothing") == []


def test_admin_search_finds_receipts_with_and_without_a_message_row(admin_client: Client) -> None:
    queue = Queue.objects.create(name="orders")
    message = Message.objects.create(queue=queue, body=b"x")
    make_receipts([message.message_id, message.message_id[:8] + "-elsewhere"])
    assert admin_search(admin_client, message.message_id[:8]) == sorted(
        [message.message_id, message.message_id[:8] + "-elsewhere"]
    )
