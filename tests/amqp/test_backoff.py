"""messaging.amqp.backoff: ``first * 2**(attempt-1)``, capped, with optional jitter."""

from __future__ import annotations

import doctest
import random

import pytest

from messaging.amqp import backoff as backoff_module
from messaging.amqp.backoff import MAX_DOUBLINGS, backoff

pytestmark = pytest.mark.unit


def test_doubles_from_first_up_to_the_cap() -> None:
    pauses = [backoff(n, first=0.5, cap=30.0) for n in range(1, 10)]
    assert pauses == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert all(isinstance(p, float) for p in pauses)


def test_first_attempt_waits_first_even_when_the_cap_is_larger() -> None:
    assert backoff(1, first=3, cap=100) == 3.0


def test_cap_below_first_wins() -> None:
    assert backoff(1, first=5, cap=2) == 2.0
    assert backoff(4, first=5, cap=2) == 2.0


@pytest.mark.parametrize("first", [0, 0.0, -1])
def test_no_first_delay_means_no_wait(first: float) -> None:
    assert backoff(1, first=first, cap=30) == 0.0
    assert backoff(50, first=first, cap=30, jitter=True) == 0.0


@pytest.mark.parametrize("attempt", [0, -3])
def test_attempts_below_one_count_as_the_first(attempt: int) -> None:
    assert backoff(attempt, first=2, cap=60) == 2.0


def test_huge_attempt_numbers_stop_doubling_instead_of_overflowing() -> None:
    assert backoff(10**6, first=1, cap=float("inf")) == 2.0**MAX_DOUBLINGS
    assert backoff(10**6, first=1, cap=300) == 300.0


def test_jitter_stays_in_the_upper_half() -> None:
    rng_state = random.getstate()
    try:
        random.seed(1234)
        pauses = [backoff(4, first=1, cap=60, jitter=True) for _ in range(500)]
    finally:
        random.setstate(rng_state)
    assert all(4.0 <= p <= 8.0 for p in pauses)
    assert len(set(pauses)) > 1  # really drawn, not a constant


def test_jitter_respects_the_cap() -> None:
    assert all(5.0 <= backoff(30, first=1, cap=10, jitter=True) <= 10.0 for _ in range(200))


def test_the_docstring_example_holds() -> None:
    failures, tried = doctest.testmod(backoff_module)
    assert tried and not failures
