"""Fixtures for the task backend's tests: a ``runconsumer --tasks`` worker (the
``start_consumer`` fixture's subprocess) and the task queues of this test run deleted
from the broker after each test."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from messaging import broker
from messaging.task_backend.compat import TaskResultStatus
from tests.support.consumers import ConsumerProcess, wait_running
from tests.support.environment import settings_env
from tests.support.rabbitmq import rabbitmqctl

PREFIX = os.environ["MESSAGING_TEST_TASK_PREFIX"]

#: runconsumer's settings in these tests: a quick retry (the broker-held delay).
WORKER_SETTINGS = {"MAX_ATTEMPTS": 3, "RETRY_DELAY": 0.2, "RETRY_MAX_DELAY": 0.5}


def task_queues_on_broker() -> list[str]:
    out = rabbitmqctl("list_queues", "--quiet", "--no-table-headers", "name")
    return [line.strip() for line in out.splitlines() if line.strip().startswith(PREFIX)]


@pytest.fixture(autouse=True)
def delete_task_queues(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if request.node.get_closest_marker("unit"):
        return
    with contextlib.suppress(Exception), broker.connection() as conn:
        for name in task_queues_on_broker():
            with contextlib.suppress(Exception):
                conn.channel().queue_delete(name)


@pytest.fixture
def task_worker(start_consumer: Any) -> Callable[..., ConsumerProcess]:
    """``task_worker(*args, **settings)``: ``runconsumer --tasks`` (every RabbitMQBackend;
    ``"--tasks=ALIAS"`` among ``args`` for one), waiting until it consumes."""

    def start(*args: str, alias: str = "", **settings: Any) -> ConsumerProcess:
        spec = f"--tasks={alias}" if alias else "--tasks"
        env = settings_env(**{**WORKER_SETTINGS, **settings})
        worker = start_consumer(spec, *args, "-v", "2", env=env)
        wait_running(worker, lambda: "consuming " in worker.stderr, timeout=60)
        return worker

    return start


def wait_status(result: Any, *statuses: str, timeout: float = 30, worker: Any = None) -> Any:
    """Refresh ``result`` until its status is one of ``statuses``."""
    wanted = {TaskResultStatus(s) for s in statuses}
    if worker is not None:
        return wait_running(worker, lambda: _refreshed(result) in wanted, timeout=timeout)
    from tests.support.waiting import wait_for

    return wait_for(lambda: _refreshed(result) in wanted, timeout, f"status {statuses}")


def _refreshed(result: Any) -> Any:
    result.refresh()
    return result.status
