"""The fault-injection suite's fixture: ``fault_queue``.

Every test runs ``manage.py runconsumer`` as a subprocess (the ``start_consumer`` fixture;
output to files, so a chatty consumer never blocks on a full pipe), injects one kind of
fault (:mod:`tests.support.outages`, ``rabbitmqctl``, signals), and ends with
:func:`tests.support.exactly_once.check_exactly_once`: the Jepsen-style check that every
published message_id has exactly one ``acked`` receipt, that nothing was lost or is left
on the broker, that nothing unexpected was acked, and that the handler's database write
happened exactly once per message.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from messaging import broker
from messaging.models import dead_letter_queue_name


@pytest.fixture
def fault_queue(queue_name: str) -> Iterator[str]:
    """``queue_name``, whose ``<queue>.dlq`` is deleted from the broker afterwards too."""
    yield queue_name
    try:
        with broker.connection() as conn:
            conn.channel().queue_delete(dead_letter_queue_name(queue_name))
    except Exception:  # noqa: BLE001 - cleanup must not hide the test's own result
        pass
