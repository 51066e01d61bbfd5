"""The hand-off's rules without a broker: when the creator may still send a row (its
lease), what a row weighs in the backlog, and that nothing beyond the bound is queued."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import Message
from messaging.publishing.handoff import ROW_OVERHEAD, Handoff, handed
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
