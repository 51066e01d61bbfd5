"""The pytest plugin of ``messaging`` (registered as the ``pytest11`` entry point
``messaging``): the ``captured_messages`` fixture."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .captured import CapturedMessages


@pytest.fixture
def captured_messages() -> Iterator[CapturedMessages]:
    """Messages published during the test are captured, not sent (see
    :func:`messaging.testing.capture`); ``captured_messages.deliver()`` runs the handlers.
    Needs the database (pytest-django's ``db`` or ``transactional_db``) to publish."""
    # Here, not at the top: pytest loads this plugin before Django is set up, and
    # capturing imports models.
    from .capturing import capture

    with capture() as captured:
        yield captured
