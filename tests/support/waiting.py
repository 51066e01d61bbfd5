"""Waiting for something the test cannot join: poll until it is true, or fail the test."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 20,
    what: str | None = None,
    *,
    interval: float = 0.05,
) -> Any:
    """Poll ``predicate()`` every ``interval`` seconds until it is truthy and return its
    value; after ``timeout`` seconds fail the test, naming ``what`` it waited for (the
    predicate itself if not given)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what or predicate}")
        time.sleep(interval)
