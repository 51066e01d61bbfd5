"""Shared fixtures: the broker (looked for only when a test outside the unit tier runs),
per-test queue names, a broker channel, manage.py subprocesses that use the test
database (``runconsumer`` ones among them: ``start_consumer``), and exchange and queue
names for topology tests. Plain helpers live in :mod:`tests.support`."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from messaging import broker
from tests.support import services
from tests.support.consumers import ConsumerProcess
from tests.support.environment import ROOT, manage_env

#: Tests that share something fixed: the RabbitMQ tutorials' queue and exchange names,
#: the extra broker nodes on fixed ports (their session fixtures hold a lock file while
#: the nodes run). Under pytest-xdist each group runs on one worker.
SHARED_GROUPS = {
    "tests/tutorials/": "tutorial-names",
    "tests/project/test_demo.py": "tutorial-names",
    "tests/cluster/": "extra-broker-nodes",
    "tests/admin/test_unacked.py": "extra-broker-nodes",
}


def shared_group(nodeid: str) -> str | None:
    path = nodeid.split("::")[0]
    return next((g for prefix, g in SHARED_GROUPS.items() if path.startswith(prefix)), None)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``-n N --dist loadgroup`` (``make test``): each test file is one unit of work on
    one worker (its tests in order, its module fixtures set up once), and the files of a
    :data:`SHARED_GROUPS` group are one unit together. (xdist's own ``xdist_group``
    marks do not reach pytest 9's node ids, so the grouping is done here.)"""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesAndSharedGroups(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return shared_group(nodeid) or super()._split_scope(nodeid)

    return FilesAndSharedGroups(config, log)


def pytest_itemcollected(item: pytest.Item) -> None:
    """A test that stops the broker (marker ``broker_control``) would break every test
    running beside it: on an xdist worker it is skipped with the reason (``make test``
    deselects them there and runs them alone afterwards)."""
    if hasattr(item.config, "workerinput") and item.get_closest_marker("broker_control"):
        item.add_marker(
            pytest.mark.skip(reason="stops the broker: run without -n (make test runs it alone)")
        )


@pytest.fixture(scope="session")
def broker_url() -> str:
    """The RabbitMQ every test but the unit tier's may use, looked for once (see
    :mod:`tests.support.services`) and put in ``MESSAGING['BROKER_URL']`` and the
    environment (for subprocesses). None to be had: each such test fails with the
    one-line reason."""
    try:
        url = services.broker_url()
    except SystemExit as exc:
        reason = str(exc)
    else:
        settings.MESSAGING["BROKER_URL"] = url
        return url
    pytest.fail(reason, pytrace=False)


@pytest.fixture(autouse=True)
def live_broker(request: pytest.FixtureRequest) -> str | None:
    """Every test finds the broker first, except the unit tier (``pytest.mark.unit``,
    ``make test-unit``): pure-logic tests that look for none and run where there is none."""
    if request.node.get_closest_marker("unit"):
        return None
    return request.getfixturevalue("broker_url")


@pytest.fixture
def queue_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A queue name no other test uses; the queue is deleted from the broker afterwards."""
    names: list[str] = []

    def make(suffix: str = "") -> str:
        base = request.node.name.split("[")[0][:40]
        name = f"test.{base}.{uuid.uuid4().hex[:8]}{suffix}"
        names.append(name)
        return name

    first = make()
    request.node.make_queue_name = make
    yield first
    try:
        with broker.connection() as conn:
            for name in names:
                conn.channel().queue_delete(name)
                conn.channel().queue_delete(f"{name}.dlq")
    except Exception:  # noqa: BLE001 - cleanup must not hide the test's own result
        pass


@pytest.fixture
def channel() -> Iterator[object]:
    """A plain (non-confirm) channel for inspecting the broker in assertions."""
    with broker.connection() as conn:
        yield conn.channel()


@pytest.fixture
def manage(transactional_db: None) -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """Run ``manage.py ARGS`` in a subprocess against the test database."""

    def run(
        *args: str, input: bytes | None = None, timeout: float = 60, env: dict | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            input=input,
            capture_output=True,
            timeout=timeout,
            env=manage_env(**(env or {})),
            cwd=ROOT,
        )

    return run


@pytest.fixture
def spawn(transactional_db: None) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``manage.py ARGS`` in the background; killed at teardown if still running."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=manage_env(**(env or {})),
            cwd=ROOT,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


@pytest.fixture
def start_consumer(
    transactional_db: None, tmp_path: Path
) -> Iterator[Callable[..., ConsumerProcess]]:
    """``start_consumer(queue, *args, handler=..., name=..., env=...)`` starts runconsumer
    in the background; whatever is still running at teardown is SIGKILLed."""
    procs: list[ConsumerProcess] = []

    def start(
        queue: str,
        *args: str,
        handler: str = "tests.support.handlers.record",
        name: str | None = None,
        env: dict[str, str] | None = None,
    ) -> ConsumerProcess:
        name = name or f"fault-{uuid.uuid4().hex[:8]}"
        n = len(procs)
        out, err = tmp_path / f"consumer-{n}.out", tmp_path / f"consumer-{n}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "manage.py"),
                    "runconsumer",
                    queue,
                    "--handler",
                    handler,
                    "--name",
                    name,
                    *args,
                ],
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                env=manage_env(PYTHONFAULTHANDLER="1", **(env or {})),
                cwd=ROOT,
            )
        consumer = ConsumerProcess(proc, name, queue, out, err, time.monotonic())
        procs.append(consumer)
        return consumer

    yield start
    for consumer in procs:
        if consumer.alive():
            consumer.kill()


@pytest.fixture
def topo_names(request: pytest.FixtureRequest) -> Iterator[Any]:
    """``topo_names("x")`` gives a name no other test uses; every exchange and queue so named
    is deleted from the broker afterwards."""
    made: list[str] = []
    tag = uuid.uuid4().hex[:8]

    def make(what: str) -> str:
        name = f"test.topo.{tag}.{what}"
        made.append(name)
        return name

    yield make
    with contextlib.suppress(Exception), broker.connection() as conn:  # cleanup
        for name in made:
            for delete in (conn.channel().exchange_delete, conn.channel().queue_delete):
                with contextlib.suppress(Exception):
                    delete(name)
            with contextlib.suppress(Exception):
                conn.channel().queue_delete(f"{name}.dlq")


# The interop tests' fixtures (``launch``: subprocesses read line by line).
from tests.support.interop import launch, launched  # noqa: E402, F401
