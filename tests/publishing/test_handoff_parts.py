"""The hand-off's rules without a broker: when the creator may still send a row (its
lease), what a row weighs in the backlog, that nothing beyond the bound is queued, and
when the thread lingers for more rows before a batch."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import Message
from messaging.publishing.handoff import (
    LINGER_ROWS,
    LINGER_SECONDS,
    ROW_OVERHEAD,
    Handoff,
    Pace,
    handed,
)
from messaging.publishing.outbox import LEASE_MARGIN, lease_end, lease_holds, send_deadline

pytestmark = pytest.mark.unit


def test_a_fresh_lease_holds_and_one_that_waited_past_the_margin_does_not():
    now = timezone.now()
    fresh = Message(next_attempt_at=lease_end(now))
    waited = Message(next_attempt_at=lease_end(now - timedelta(seconds=LEASE_MARGIN + 1)))
    assert lease_holds(fresh, send_deadline(now))
    assert not lease_holds(waited, send_deadline(now))
    assert not lease_holds(Message(next_attempt_at=None), send_deadline(now))


def test_a_row_weighs_its_body_plus_the_overhead():
    assert handed(Message(body=b"x" * 100), None, 0.0).size == 100 + ROW_OVERHEAD


def test_nothing_beyond_the_count_bound_is_queued(settings):
    settings.MESSAGING = {**settings.MESSAGING, "PUBLISH_BACKLOG_MAX": 0}
    rows = [handed(Message(body=b"x"), None, 0.0) for _ in range(3)]
    handoff = Handoff()
    assert handoff.offer(rows) == rows
    assert handoff.depth == 0
    assert handoff.flush(0)  # empty: nothing to wait for


def test_nothing_beyond_the_byte_bound_is_queued(settings):
    settings.MESSAGING = {**settings.MESSAGING, "PUBLISH_BACKLOG_MAX_BYTES": ROW_OVERHEAD}
    rows = [handed(Message(body=b"x"), None, 0.0)]
    assert Handoff().offer(rows) == rows


def _paced(seconds_apart: float, count: int = 50) -> Pace:
    pace = Pace()
    for n in range(count):
        pace.handed(1, 100.0 + n * seconds_apart)
    return pace


def test_rows_that_come_fast_linger_for_company():
    assert _paced(LINGER_SECONDS / 10).linger(1) == LINGER_SECONDS


def test_a_steady_trickle_and_a_full_batch_go_at_once():
    assert _paced(LINGER_SECONDS * 2).linger(1) == 0.0  # 200/s: each row alone, now
    assert _paced(LINGER_SECONDS / 10).linger(LINGER_ROWS) == 0.0
    assert Pace().linger(1) == 0.0  # nothing known yet


def test_a_hand_off_of_many_rows_counts_each():
    pace = Pace()
    for n in range(50):
        pace.handed(10, 100.0 + n * LINGER_SECONDS * 2)  # 10 rows per 2 linger periods
    assert pace.linger(1) == LINGER_SECONDS
