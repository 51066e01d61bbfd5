"""How the console shows times and yes/no (unit tier: no broker, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from messaging.admin import display

pytestmark = pytest.mark.unit

MOMENT = datetime(2026, 12, 7, 18, 2, 11, 654321, tzinfo=UTC)


def test_one_format_to_the_second_in_the_current_time_zone() -> None:
    assert display.seconds(MOMENT) == "2026-12-07 18:02:11"
    with timezone.override(ZoneInfo("Europe/Berlin")):
        assert display.seconds(MOMENT) == "2026-12-07 19:02:11"
    assert display.timestamp(MOMENT) == display.seconds(MOMENT)
    assert display.seconds(None) == display.EMPTY
    assert display.seconds(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02 03:04:05"  # naive


@pytest.mark.parametrize(
    ("before", "shown"),
    [
        (timedelta(seconds=0), "0 s ago"),
        (timedelta(seconds=12, milliseconds=900), "12 s ago"),
        (timedelta(seconds=119), "119 s ago"),
        (timedelta(minutes=2), "2 min ago"),
        (timedelta(minutes=119, seconds=59), "119 min ago"),
        (timedelta(hours=2), "2 h ago"),
        (timedelta(hours=47), "47 h ago"),
        (timedelta(days=3, hours=5), "3 d ago"),
        (-timedelta(seconds=30), "in 30 s"),
    ],
)
def test_ago_is_short_and_whole(before: timedelta, shown: str) -> None:
    assert display.ago(MOMENT - before, now=MOMENT) == shown


def test_seconds_ago_gives_both() -> None:
    then = MOMENT - timedelta(seconds=12)
    assert display.seconds_ago(then, now=MOMENT) == "2026-12-07 18:01:59 (12 s ago)"
    assert display.seconds_ago(None) == display.EMPTY
    assert display.ago(None) == display.EMPTY


def test_from_epoch_reads_both_death_headers() -> None:
    epoch = int(MOMENT.timestamp())
    assert display.from_epoch(epoch) == MOMENT.replace(microsecond=0)
    assert display.from_epoch(MOMENT) == MOMENT  # x-death's time, decoded by pika
    assert display.from_epoch(MOMENT.replace(tzinfo=None)) == MOMENT  # naive: UTC
    for nothing in (None, "1765130531", True, 10**30):
        assert display.from_epoch(nothing) is None


def test_yes_no_is_neutral_text_not_an_icon() -> None:
    no = str(display.yes_no(False))
    assert ">no<" in no and "icon" not in no and "#ba2121" not in no
    assert ">yes<" in str(display.yes_no(True))
    assert display.yes_no(None) == display.EMPTY
