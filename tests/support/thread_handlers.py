"""Handlers for the ``--threads`` and ``async def`` tests (``--handler
tests.support.thread_handlers.NAME``): each commits one row per message, as
:func:`tests.support.handlers.record` does, so :func:`check_exactly_once` applies."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

from messaging import Delivery, Reject


def timed_record(delivery: Delivery) -> None:
    """Sleeps $MESSAGING_TEST_PACE seconds (default 0.3), then records the message with
    the worker thread's name and when it started and ended (to see handlers overlap); a
    body starting with b"slow" touches $MESSAGING_TEST_MARKER (once) and sleeps
    $MESSAGING_TEST_SLEEP seconds instead."""
    from messaging.models import Message

    started = time.time()
    if delivery.body.startswith(b"slow"):
        marker = os.environ.get("MESSAGING_TEST_MARKER")
        if marker:
            Path(marker).write_bytes(delivery.body)
        time.sleep(float(os.environ.get("MESSAGING_TEST_SLEEP", "10")))
    else:
        time.sleep(float(os.environ.get("MESSAGING_TEST_PACE", "0.3")))
    Message.objects.create(
        exchange="handled",
        routing_key=delivery.message_id,
        body=delivery.body,
        headers={"thread": threading.current_thread().name, "start": started, "end": time.time()},
    )


async def arecord(delivery: Delivery) -> None:
    """An ``async def`` handler writing through Django's async ORM: body b"fail..."
    writes and then raises (the write must roll back), b"reject..." raises Reject."""
    from messaging.models import Message

    await asyncio.sleep(0.01)
    await Message.objects.acreate(
        exchange="handled",
        routing_key=delivery.message_id,
        body=delivery.body,
        headers={"thread": threading.current_thread().name},
    )
    if delivery.body.startswith(b"fail"):
        raise RuntimeError("async handler failed after writing")
    if delivery.body.startswith(b"reject"):
        raise Reject("refused by the async handler")
