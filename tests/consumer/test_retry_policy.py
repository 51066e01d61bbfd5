"""The failure policy as plain code: attempt counting and what a failure leads to."""

from __future__ import annotations

import pytest

from messaging.consumer.retry_policy import (
    AnonymousFailures,
    Outcome,
    QueuePolicy,
    RetryPolicy,
    Verdict,
    attempt_number,
    death_record,
)

pytestmark = pytest.mark.unit


def test_a_first_delivery_is_attempt_one():
    assert attempt_number(None, False, None) == 1
    assert attempt_number({}, False, [Outcome.REQUEUED, Outcome.REQUEUED]) == 1


def test_quorum_queues_count_deliveries():
    assert attempt_number({"x-delivery-count": 2}, True, None) == 3
    assert attempt_number({"x-delivery-count": "nonsense"}, False, None) == 1


def test_classic_queues_count_failures_since_the_last_dead_letter_or_reject():
    history = [Outcome.REQUEUED, Outcome.REQUEUED, Outcome.DEAD_LETTERED, Outcome.REQUEUED]
    assert attempt_number(None, True, history) == 3
    assert attempt_number(None, True, [Outcome.REJECTED, Outcome.REQUEUED]) == 1
    assert attempt_number(None, True, [Outcome.DUPLICATE, Outcome.REQUEUED]) == 2
    assert attempt_number(None, True, []) == 1


def test_messages_without_an_id_count_what_this_process_saw():
    failures = AnonymousFailures(limit=2)
    failures.add("q", b"a")
    failures.add("q", b"a")
    assert attempt_number(None, True, None, failures.get("q", b"a")) == 3
    assert attempt_number(None, False, None, failures.get("q", b"a")) == 1
    failures.add("q", b"b")
    failures.add("q", b"c")  # the oldest is forgotten
    assert len(failures) == 2
    assert failures.get("q", b"a") == 0
    assert failures.get("other", b"b") == 0


def test_the_last_attempt_dead_letters():
    retry = RetryPolicy(max_attempts=3)
    queue = QueuePolicy(dead_letter_queue="q.dlq")
    assert retry.decide(1, queue).verdict is Verdict.REQUEUE
    assert retry.decide(2, queue).outcome == Outcome.REQUEUED
    last = retry.decide(3, queue)
    assert (last.outcome, last.verdict) == (Outcome.DEAD_LETTERED, Verdict.DEAD_LETTER)


def test_a_queue_row_overrides_the_attempts_setting():
    retry = RetryPolicy(max_attempts=5)
    assert retry.decide(2, QueuePolicy(max_attempts=2, dead_letter_queue="q.dlq")).verdict is (
        Verdict.DEAD_LETTER
    )


def test_a_queue_with_its_own_dead_letter_exchange_gets_a_nack():
    retry = RetryPolicy(max_attempts=1)
    assert retry.decide(1, QueuePolicy(broker_dead_letters=True)).verdict is Verdict.NACK
    assert retry.decide(1, QueuePolicy()).verdict is Verdict.NACK  # no DLQ known


@pytest.mark.parametrize(("attempt", "delay"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (50, 3.0)])
def test_retry_delay_doubles_up_to_the_cap_and_is_held_by_the_broker(attempt, delay):
    retry = RetryPolicy(max_attempts=100, retry_delay=0.5, retry_max_delay=3.0)
    decision = retry.decide(attempt, QueuePolicy())
    assert (decision.outcome, decision.verdict, decision.delay) == (
        Outcome.REQUEUED,
        Verdict.DELAY,
        delay,
    )


def test_no_retry_delay_requeues_at_once():
    decision = RetryPolicy(max_attempts=9).decide(4, QueuePolicy())
    assert (decision.verdict, decision.delay) == (Verdict.REQUEUE, 0)


def test_the_last_attempt_dead_letters_even_with_a_delay():
    retry = RetryPolicy(max_attempts=3, retry_delay=5)
    assert retry.decide(3, QueuePolicy(dead_letter_queue="q.dlq")).verdict is Verdict.DEAD_LETTER


def test_a_copy_back_from_a_delay_queue_counts_the_attempts_it_carries():
    headers = {"x-messaging-attempts": 2}
    assert attempt_number(headers, False, None) == 3
    # classic: the larger of the header and the receipts (a crash mid-handler)
    assert attempt_number(headers, True, [Outcome.REQUEUED, Outcome.REQUEUED]) == 3
    assert attempt_number(headers, True, [Outcome.REQUEUED] * 3) == 4
    # quorum: the copy's own deliveries add up
    assert attempt_number({**headers, "x-delivery-count": 1}, True, None) == 4
    assert attempt_number({"x-messaging-attempts": "junk"}, False, None) == 1
    assert attempt_number(headers, True, None, anonymous_failures=0) == 3


def test_death_record_carries_the_reason_and_a_bounded_error():
    death = death_record("q", "max_attempts", 5, "x" * 2000, "worker-1")
    assert death["queue"] == "q" and death["reason"] == "max_attempts"
    assert death["attempts"] == 5 and death["consumer"] == "worker-1"
    assert len(death["error"]) == 500
    assert isinstance(death["time"], int)
