"""Shared fixtures: the broker (looked for only when a test outside the unit tier runs),
per-test queue names, a broker channel, and manage.py subprocesses that use the test
database."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from messaging import broker
from tests.support import services

ROOT = Path(__file__).resolve().parent.parent


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


def database_url_for_subprocess() -> str:
    """A DATABASE_URL pointing at the *test* database this process uses."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or ""
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth}{s.get('HOST') or 'localhost'}{port}/{s['NAME']}"


def manage_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=database_url_for_subprocess(),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


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


def wait_for(predicate: Callable[[], object], timeout: float = 20, interval: float = 0.05):
    """Poll until ``predicate()`` is truthy; returns its value or fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


def queue_depth(name: str) -> int | None:
    """Ready messages in ``name`` (None if the queue does not exist)."""
    with broker.connection() as conn:
        state = broker.inspect_queue(conn.channel(), name)
    return None if state is None else state[0]


def close_broker_connections(name_contains: str) -> int:
    """Close, from the broker side, the connections whose client-provided name contains
    ``name_contains`` (needs ``rabbitmqctl``). Returns how many were closed."""
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    closed = 0
    for line in out.splitlines():
        pid, _, client_properties = line.partition("\t")
        if name_contains in client_properties:
            subprocess.run(
                ["rabbitmqctl", "-q", "close_connection", pid.strip(), "closed by test"],
                capture_output=True,
                timeout=60,
                check=True,
            )
            closed += 1
    return closed


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
