"""An error's cause (``messaging.db.error_causes``): the first line with numbers, ids,
addresses, URLs and quoted values folded into placeholders, and the regular expression
a cause can be matched by; what a receipt stores (``stored_cause``); the failures page's
groups made of the database's (queue, cause) rows and their variants
(``messaging.admin.failure_groups.make_groups``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from messaging.admin.failure_groups import make_groups
from messaging.db.error_causes import (
    CAUSE_CHARS,
    CUT,
    LINE_CHARS,
    Cause,
    cause_of,
    cause_pattern,
    fold,
    stored_cause,
)
from messaging.db.failure_counts import CauseRow, VariantRow

pytestmark = pytest.mark.unit

BOUNCES = [
    f"smtplib.SMTPRecipientsRefused: {{'{who}@example.{tld}': (550, b'5.1.1 <{who}@example."
    f"{tld}>: Recipient address rejected: User unknown')}}"
    for who, tld in [
        ("ann", "com"),
        ("bob", "org"),
        ("c.d+x", "co.uk"),
        ("eve", "net"),
        ("f", "io"),
    ]
]
WEBHOOKS = [
    f"requests.exceptions.ConnectionError: HTTPSConnectionPool(host='{host}', port=443): "
    f"Max retries exceeded with url: {url} (Caused by NewConnectionError('<urllib3.connection."
    f"HTTPSConnection object at 0x7f{n}3a2b1c0>: Failed to establish a new connection: "
    f"[Errno 111] Connection refused'))"
    for n, (host, url) in enumerate(
        [
            ("hooks.a.com", "/hook/1"),
            ("b.example.org", "/v2/events?id=42"),
            ("c.io", "/x/5f3a9c0e77aa"),
            ("d.net", "/"),
            ("e.dev", "/cb/550e8400-e29b-41d4-a716-446655440000"),
        ]
    )
]
DEAD_URLS = [
    f"WebhookError: POST {url} failed: 503 Service Unavailable"
    for url in [
        "https://a.example.com/hook",
        "https://b.example.com/hook?token=abc123",
        "http://10.0.0.7:8080/callback/17",
        "https://hooks.example.org/services/T00000000/B00000000/XXXXXXXX",
        "https://c.example.com/",
    ]
]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("KeyError: 'k'", "KeyError: '<value>'"),
        ('KeyError: "order_id"', 'KeyError: "<value>"'),
        ("ValueError: bad", "ValueError: bad"),
        ("TimeoutError: timed out after 30s", "TimeoutError: timed out after <num>s"),
        (
            "ValueError: 0.25 is not between -1 and +1",
            "ValueError: <num> is not between <num> and <num>",
        ),
        ("OSError: cannot reach 10.0.0.1:5672", "OSError: cannot reach <num>"),
        ("LookupError: order-123 not found", "LookupError: order-<num> not found"),
        ("LookupError: user_48213 not found", "LookupError: user_<num> not found"),
        ("UnicodeError: not utf8 or sha256, Http404", "UnicodeError: not utf8 or sha256, Http404"),
        (
            "Missing: message 550e8400-e29b-41d4-a716-446655440000 gone",
            "Missing: message <uuid> gone",
        ),
        ("Missing: object at 0x7f3a2b1c0 (deadbeef01)", "Missing: object at <hex> (<hex>)"),
        ("Missing: trace 4bf92f3577b34da6a3ce929d0e0e4736", "Missing: trace <hex>"),
        ("Word: deadbeefcafe stays, so does decade", "Word: deadbeefcafe stays, so does decade"),
        ("Mail: to ann@example.com failed", "Mail: to <email> failed"),
        ("Mail: to 'ann@example.com' failed", "Mail: to '<email>' failed"),
        ("Http: GET https://x.example/a?b=1. then", "Http: GET <url>. then"),
        ("Http: see (https://x.example/a)", "Http: see (<url>)"),
        ("Http: <https://x.example/a>", "Http: <<url>>"),
        ("Quoted: it can't find 'x' or \"y z\"", "Quoted: it can't find '<value>' or \"y z\""),
        ("no exception class, 3 tries", "no exception class, <num> tries"),
        ("", ""),
    ],
)
def test_cause_folds_variable_values(line: str, expected: str) -> None:
    assert cause_of(line).text == expected


def test_exception_class_is_the_dotted_head() -> None:
    assert cause_of("smtplib.SMTPDataError: (554, b'x')").exception == "smtplib.SMTPDataError"
    assert cause_of("KeyError: 'k'") == Cause("KeyError", "KeyError: '<value>'")
    assert cause_of("Connection refused: 3 times").exception == ""
    assert cause_of("ValueError:nospace").exception == ""


def test_only_the_first_line_counts() -> None:
    assert cause_of("ValueError: bad 1\nsecond line 2").text == "ValueError: bad <num>"
    assert cause_of("ValueError: bad\r\nmore").text == "ValueError: bad"


def test_five_bounced_addresses_are_one_cause() -> None:
    causes = {cause_of(line).text for line in BOUNCES}
    assert causes == {
        "smtplib.SMTPRecipientsRefused: {'<email>': (<num>, b'<num> <<email>>: "
        "Recipient address rejected: User unknown')}"
    }


def test_five_dead_webhooks_are_one_cause() -> None:
    assert len({cause_of(line).text for line in WEBHOOKS}) == 1
    assert {cause_of(line).text for line in DEAD_URLS} == {
        "WebhookError: POST <url> failed: <num> Service Unavailable"
    }


def test_folding_is_idempotent() -> None:
    for line in [*BOUNCES, *WEBHOOKS, *DEAD_URLS, "KeyError: 'k'", "x 0x1f 12 'a'"]:
        once = fold(line)
        assert fold(once) == once


@pytest.mark.parametrize(
    "line",
    [
        *BOUNCES,
        *WEBHOOKS,
        *DEAD_URLS,
        "KeyError: 'k'",
        "TimeoutError: timed out after 30s (a.b) [x] {y} * ? + ^ $ | \\ é",
        "Tab:\tseparated\t12",
        "",
    ],
)
def test_pattern_matches_every_error_of_the_cause(line: str) -> None:
    pattern = re.compile(cause_pattern(cause_of(line).text))
    assert pattern.search(line)
    assert pattern.search(line + "\nTraceback…")


def test_pattern_does_not_match_other_causes() -> None:
    pattern = re.compile(cause_pattern(cause_of("KeyError: 'k'").text))
    assert pattern.search("KeyError: 'other'\nmore")
    assert not pattern.search("KeyError: 'k' and more")
    assert not pattern.search("xKeyError: 'k'")
    assert not pattern.search("ValueError: 'k'")
    empty = re.compile(cause_pattern(""))
    assert empty.search("") and empty.search("\ntraceback") and not empty.search("x")


def test_a_cut_line_matches_any_longer_line() -> None:
    cause = cause_of("ValueError: " + "x" * 40, cut=True)
    assert cause.text.endswith(CUT)
    pattern = re.compile(cause_pattern(cause.text))
    assert pattern.search("ValueError: " + "x" * 40 + "y" * 100)


def cause_row(queue: str, cause: str, total: int, seen: int, **fates: int) -> CauseRow:
    at = datetime(2026, 12, 7, 2, 0, tzinfo=UTC) + timedelta(minutes=seen)
    counts = {"recovered": 0, "dead_lettered": 0, "rejected": 0, "retrying": 0, **fates}
    first = at - timedelta(minutes=4)
    return CauseRow(queue, cause, 0, total, total, first, at, seen, total, **counts)


def test_cause_rows_and_their_variants_make_the_groups() -> None:
    bounce = "SMTPError: bounce for <email>"
    causes = [
        cause_row("mail", bounce, 5, 9, recovered=1, dead_lettered=2, retrying=2),
        cause_row("hooks", "WebhookError: POST <url> failed", 1, 7, rejected=1),
    ]
    variants = [
        VariantRow("mail", bounce, "SMTPError: bounce for ann@example.com", 2, 7),
        VariantRow("mail", bounce, "SMTPError: bounce for bob@example.com", 3, 7),
        VariantRow("other", "KeyError: '<value>'", "KeyError: 'k'", 1, 1),  # no such group
    ]
    bounces, hooks = make_groups(causes, variants)
    assert (bounces.queue, bounces.cause, bounces.exception) == ("mail", bounce, "SMTPError")
    assert (bounces.total, bounces.messages, bounces.variant_count) == (5, 5, 7)
    assert [v.total for v in bounces.variants] == [3, 2]  # most frequent first
    fates = (bounces.recovered, bounces.dead_lettered, bounces.rejected, bounces.retrying)
    assert fates == (1, 2, 0, 2)
    assert bounces.example_id == 9
    assert bounces.last_seen - bounces.first_seen == timedelta(minutes=4)
    assert (hooks.variant_count, hooks.variants, hooks.rejected) == (0, [], 1)


def test_the_stored_cause_is_the_first_lines_cause_cut_to_the_column() -> None:
    assert stored_cause("") == ""
    assert stored_cause("KeyError: 'k17'\nTraceback …") == "KeyError: '<value>'"
    long_line = stored_cause("ValueError: " + "x" * (LINE_CHARS + 50) + "\nmore")
    assert len(long_line) == CAUSE_CHARS and long_line.endswith(CUT)
    many = stored_cause("ValueError: " + " ".join(["word"] * 200))  # 1 000 characters
    assert len(many) == CAUSE_CHARS and many.endswith(CUT)
    exact = "ValueError: " + "y" * (LINE_CHARS - len("ValueError: "))
    assert stored_cause(exact) == cause_of(exact).text[: CAUSE_CHARS - 1] + CUT
