"""Broker-held retry delays as plain code: delays, delay queue names and arguments,
the copy's attempt headers, and recognising a copy of an attempt already handled."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from messaging.amqp.retry_delays import (
    ATTEMPTS_HEADER,
    RETRY_HEADER,
    RETRY_HISTORY,
    already_attempted,
    delay_for,
    delay_milliseconds,
    delay_queue_arguments,
    delay_queue_name,
    delay_steps,
    earlier_attempts,
    retry_entry,
    retry_headers,
)
from messaging.broker import copy_properties, properties

pytestmark = pytest.mark.unit

DUE = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempt", "expected"), [(1, 5.0), (2, 10.0), (3, 20.0), (4, 30.0), (9, 30.0)]
)
def test_delay_for_attempt_n_doubles_up_to_the_cap(attempt, expected):
    assert delay_for(attempt, 5, 30) == expected


def test_no_delay_when_retry_delay_is_zero():
    assert delay_for(3, 0, 30) == 0
    assert delay_steps(5, 0, 30) == []


def test_one_delay_queue_per_distinct_step_before_the_last_attempt():
    assert delay_steps(5, 5, 30) == [5, 10, 20, 30]
    assert delay_steps(8, 5, 30) == [5, 10, 20, 30]  # capped steps share a queue
    assert delay_steps(1, 5, 30) == []  # the only attempt dead-letters


def test_delay_queue_names_are_the_queue_and_milliseconds():
    assert delay_queue_name("orders", 5) == "orders.delay.5000"
    assert delay_queue_name("orders", 0.25) == "orders.delay.250"
    assert delay_milliseconds(0.0011) == 2  # rounded up: never earlier than asked
    assert delay_milliseconds(0.1 + 0.2) == 300  # float noise is not a millisecond


def test_a_delay_queue_name_over_255_bytes_is_none():
    assert delay_queue_name("q" * 245, 5) is None
    assert delay_queue_name("q" * 245, 0.005) == "q" * 245 + ".delay.5"


def test_delay_queue_arguments_dead_letter_back_to_the_queue():
    assert delay_queue_arguments("orders", 5, quorum=False) == {
        "x-message-ttl": 5000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "orders",
    }
    quorum = delay_queue_arguments("orders", 5, quorum=True)
    assert quorum["x-queue-type"] == "quorum"
    assert quorum["x-dead-letter-strategy"] == "at-least-once"
    assert quorum["x-overflow"] == "reject-publish"


def test_the_copy_carries_the_attempts_and_a_bounded_history():
    entry = retry_entry("orders", 2, "ValueError: " + "x" * 500, "c1", 10)
    assert (entry["attempt"], entry["delay_ms"], len(entry["error"])) == (2, 10000, 200)
    headers = retry_headers({RETRY_HEADER: [{"attempt": 1}]}, entry)
    assert headers[ATTEMPTS_HEADER] == 2
    assert [e["attempt"] for e in headers[RETRY_HEADER]] == [1, 2]
    long = retry_headers({RETRY_HEADER: [{"attempt": n} for n in range(50)]}, entry)
    assert len(long[RETRY_HEADER]) == RETRY_HISTORY
    assert earlier_attempts(headers) == 2
    assert earlier_attempts(None) == 0
    assert earlier_attempts({ATTEMPTS_HEADER: -3}) == 0


def test_copy_properties_sets_the_attempts_and_a_dead_letter_or_replay_drops_them():
    props = properties(message_id="m1", headers={"k": "v", "x-delivery-count": 3})
    delayed = copy_properties(props, extra_headers={ATTEMPTS_HEADER: 1, RETRY_HEADER: []})
    assert delayed.message_id == "m1"
    assert delayed.headers == {"k": "v", ATTEMPTS_HEADER: 1, RETRY_HEADER: []}
    dead = copy_properties(delayed, extra_death={"reason": "max_attempts"})
    assert ATTEMPTS_HEADER not in dead.headers  # a replay gets fresh attempts
    assert RETRY_HEADER in dead.headers
    assert ATTEMPTS_HEADER not in copy_properties(delayed).headers


def test_a_delivery_whose_attempt_was_already_delayed_is_a_duplicate():
    # the original (no attempts header) after attempt 1 was delayed
    assert already_attempted(0, ("requeued", 1, DUE))
    # the copy of attempt 2 after attempt 2 was delayed (a second copy)
    assert already_attempted(1, ("requeued", 2, DUE))
    # the copy of attempt 2 when only attempt 1 was handled: its turn
    assert not already_attempted(1, ("requeued", 1, DUE))
    # an immediate requeue (RETRY_DELAY = 0) is the next attempt, not a duplicate
    assert not already_attempted(0, ("requeued", 1, None))
    assert not already_attempted(0, ("dead_lettered", 5, None))
    assert not already_attempted(0, None)
