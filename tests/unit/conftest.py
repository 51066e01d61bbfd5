"""The unit tier (``make test-unit``): pure-logic tests that need no broker.

The suite's ``live_broker`` fixture (tests/conftest.py) finds a RabbitMQ before every
other test; here it is replaced by one that finds none, so these tests run, fast, on a
machine with no broker at all. A test that needs the broker belongs one level up.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def live_broker() -> None:
    """No broker for unit tests: nothing is looked up or started."""
    return None
