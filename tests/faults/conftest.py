"""Shared helpers of the fault-injection suite.

Every test runs ``manage.py runconsumer`` as a subprocess (output to files, so a chatty
consumer never blocks on a full pipe), injects one kind of fault, and ends with
:func:`check_exactly_once`: the Jepsen-style check that every published message_id has
exactly one ``acked`` receipt, that nothing was lost or is left on the broker, that
nothing unexpected was acked, and that the handler's database write happened exactly
once per message.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.models import Count

from messaging import broker
from messaging.models import Message, Queue, Receipt, dead_letter_queue_name
from messaging.publishing import build_message, get_queue, publish_messages
from tests.conftest import ROOT, manage_env, queue_depth, wait_for

RABBITMQCTL_TIMEOUT = 60


def settings_env(**messaging: Any) -> dict[str, str]:
    """Environment that merges ``messaging`` into the subprocess's MESSAGING setting
    (see tests/settings.py)."""
    return {"MESSAGING_TEST_SETTINGS": json.dumps(messaging)}


# --------------------------------------------------------------------------- consumers


@dataclass
class ConsumerProcess:
    """One ``runconsumer`` subprocess; stdout and stderr go to files."""

    proc: subprocess.Popen[bytes]
    name: str
    queue: str
    stdout_path: Path
    stderr_path: Path
    started: float

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def dump_threads(self) -> None:
        """SIGABRT a stuck consumer: faulthandler (PYTHONFAULTHANDLER=1) writes every
        thread's stack to its stderr, for the failure message."""
        if self.alive():
            self.proc.send_signal(signal.SIGABRT)
            with suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout=timeout)

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def describe(self) -> str:
        """For assertion messages: exit code and the tail of stderr."""
        tail = "\n".join(self.stderr.splitlines()[-80:])
        return f"runconsumer {self.name} (pid {self.pid}, rc {self.proc.poll()}):\n{tail}"


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


def wait_running(
    consumer: ConsumerProcess, predicate: Callable[[], Any], timeout: float = 60
) -> Any:
    """Poll ``predicate()`` until truthy (returns its value); fails with the consumer's
    stderr if it exits meanwhile or the time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if not consumer.alive():
            pytest.fail(f"consumer exited while waiting: {consumer.describe()}")
        if time.monotonic() > deadline:
            state = broker_state(consumer.queue)
            consumer.dump_threads()
            pytest.fail(f"timed out after {timeout}s waiting ({state}): {consumer.describe()}")
        time.sleep(0.05)


def drain(
    manage: Callable[..., Any],
    queue: str,
    *args: str,
    idle: float = 3,
    handler: str = "tests.support.handlers.record",
) -> None:
    """A final clean run that consumes whatever is left and exits on its own."""
    r = manage(
        "runconsumer",
        queue,
        "--handler",
        handler,
        "--idle-timeout",
        str(idle),
        "-v",
        "0",
        *args,
        timeout=240,
    )
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]


def consumers_on(queue: str) -> int:
    with broker.connection() as conn:
        state = broker.inspect_queue(conn.channel(), queue)
    return 0 if state is None else state[1]


def stop_and_wait(consumer: ConsumerProcess, timeout: float = 30) -> None:
    """SIGTERM and expect a clean exit 0."""
    consumer.terminate()
    try:
        rc = consumer.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        consumer.dump_threads()  # every thread's stack into its stderr, for the message
        pytest.fail(f"no exit {timeout:g}s after SIGTERM: {consumer.describe()}")
    assert rc == 0, consumer.describe()


# --------------------------------------------------------------------------- messages


@pytest.fixture
def fault_queue(queue_name: str) -> Iterator[str]:
    """``queue_name``, whose ``<queue>.dlq`` is deleted from the broker afterwards too."""
    yield queue_name
    try:
        with broker.connection() as conn:
            conn.channel().queue_delete(dead_letter_queue_name(queue_name))
    except Exception:  # noqa: BLE001 - cleanup must not hide the test's own result
        pass


def publish_many(
    queue: str | Queue,
    count: int,
    *,
    prefix: str = "m",
    headers: dict[str, Any] | None = None,
) -> list[str]:
    """Record and publish ``count`` persistent messages (bodies ``<prefix><i>``) over one
    connection with confirms; returns their message_ids in order."""
    row = queue if isinstance(queue, Queue) else get_queue(queue)
    messages = [build_message(row, f"{prefix}{i}".encode(), headers=headers) for i in range(count)]
    Message.objects.bulk_create(messages, batch_size=500)
    result = publish_messages(messages)
    assert result.ok, result.first_error
    return [m.message_id for m in messages]


def handled_counts() -> Counter[str]:
    """message_id -> how many times ``tests.support.handlers.record`` committed its row."""
    rows = (
        Message.objects.filter(exchange="handled")
        .values("routing_key")
        .annotate(n=Count("id"))
        .values_list("routing_key", "n")
    )
    return Counter(dict(rows))


def acked_ids(queue: str) -> set[str]:
    return set(
        Receipt.objects.acked().filter(queue_name=queue).values_list("message_id", flat=True)
    )


def all_acked(queue: str, ids: Sequence[str]) -> bool:
    return Receipt.objects.acked().filter(queue_name=queue).count() >= len(ids)


def check_exactly_once(queue: str, ids: Sequence[str], *, context: str = "") -> None:
    """The end-of-test check (after every consumer has exited):

    * every published message_id has exactly one ``acked`` receipt;
    * no receipt of any outcome names an id we did not publish (nothing unexpected);
    * the handler's database write happened exactly once per message, and for no other;
    * nothing is left on the broker: the queue and its ``<queue>.dlq`` are empty.
    """
    published = set(ids)
    assert len(published) == len(ids), "test bug: duplicate ids published"
    acked = Counter(
        Receipt.objects.acked().filter(queue_name=queue).values_list("message_id", flat=True)
    )
    missing = published - set(acked)
    twice = {mid: n for mid, n in acked.items() if n != 1}
    unexpected = (
        set(Receipt.objects.filter(queue_name=queue).values_list("message_id", flat=True))
        - published
    )
    handled = handled_counts()
    not_once = {mid: handled.get(mid, 0) for mid in published if handled.get(mid, 0) != 1}
    stray = set(handled) - published
    outcomes = Counter(Receipt.objects.filter(queue_name=queue).values_list("outcome", flat=True))
    summary = f"{context} outcomes={dict(outcomes)}"
    assert not missing, f"{len(missing)} published messages never acked ({summary})"
    assert not twice, f"message_ids with more than one acked receipt: {twice} ({summary})"
    assert not unexpected, f"receipts for ids never published: {unexpected} ({summary})"
    assert not not_once, f"handler writes not exactly once: {dict(list(not_once.items())[:10])}"
    assert not stray, f"handler writes for ids never published: {stray}"
    assert queue_depth(queue) == 0, f"messages left on {queue} ({summary})"
    dlq_depth = queue_depth(dead_letter_queue_name(queue))
    assert not dlq_depth, f"{dlq_depth} messages in {queue}.dlq ({summary})"


# --------------------------------------------------------------------------- broker


def rabbitmqctl(*args: str, timeout: float = RABBITMQCTL_TIMEOUT) -> str:
    r = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert r.returncode == 0, f"rabbitmqctl {' '.join(args)}: {r.stderr.strip() or r.stdout}"
    return r.stdout


def broker_connections(name_contains: str) -> list[str]:
    """Erlang pids of the broker connections whose client properties contain
    ``name_contains`` (runconsumer names its connection after ``--name``)."""
    out = rabbitmqctl("-q", "list_connections", "pid", "client_properties")
    return [
        line.partition("\t")[0].strip()
        for line in out.splitlines()
        if name_contains in line.partition("\t")[2]
    ]


def broker_state(queue: str) -> str:
    """Ready/unacked/consumers of ``queue`` and receipts so far, for failure messages."""
    try:
        out = rabbitmqctl(
            "-q", "list_queues", "name", "messages_ready", "messages_unacknowledged", "consumers"
        )
    except AssertionError as exc:
        return str(exc)
    rows = [line for line in out.splitlines() if line.startswith(queue)]
    acked = Receipt.objects.acked().filter(queue_name=queue).count()
    return f"broker: {rows}; acked receipts: {acked}"


def broker_host_port() -> tuple[str, int]:
    from messaging import conf

    params = broker.connection_parameters(conf.broker_urls()[0])
    return params.host, params.port


def broker_answers() -> bool:
    """True once the broker takes an AMQP connection (not just a TCP one)."""
    host, port = broker_host_port()
    try:
        with socket.create_connection((host, port), timeout=2):
            pass
        with broker.connection() as conn:
            conn.channel()
    except Exception:  # noqa: BLE001 - not up yet
        return False
    return True


@contextmanager
def broker_stopped() -> Iterator[None]:
    """``rabbitmqctl stop_app`` for the body of the block; ``start_app`` in ``finally`` and
    wait until the broker answers again. Other test runs share the broker: keep it short."""
    rabbitmqctl("stop_app")
    try:
        yield
    finally:
        subprocess.run(["rabbitmqctl", "start_app"], capture_output=True, timeout=120)
        subprocess.run(["rabbitmqctl", "await_startup"], capture_output=True, timeout=120)
        deadline = time.monotonic() + 120
        while not broker_answers():
            if time.monotonic() > deadline:
                raise RuntimeError("the broker did not come back after start_app")
            time.sleep(0.5)


# --------------------------------------------------------------------------- database


def database_is_sqlite() -> bool:
    return connection.vendor == "sqlite"


def outage_env() -> dict[str, str]:
    """Extra environment for a consumer that must *fail* (not wait) during an outage:
    SQLite otherwise waits 30 s for a lock (OPTIONS timeout)."""
    if database_is_sqlite():
        return {"MESSAGING_TEST_DB_OPTIONS": json.dumps({"timeout": 1})}
    return {}


def _exclusive_lock(path: str, timeout: float = 30) -> sqlite3.Connection:
    """A connection holding SQLite's EXCLUSIVE lock on ``path``. A consumer writing all
    the time leaves the lock free only for a fraction of a millisecond between two
    transactions, which SQLite's own busy handler (sleeping up to 100 ms between tries)
    can miss for seconds: try again at once instead, up to ``timeout`` seconds."""
    lock = sqlite3.connect(path, timeout=0, isolation_level=None)
    deadline = time.monotonic() + timeout
    while True:
        try:
            lock.execute("BEGIN EXCLUSIVE")
            return lock
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                lock.close()
                raise
            time.sleep(0.0001)


@contextmanager
def database_unavailable() -> Iterator[None]:
    """Make the test database unusable for other processes for the body of the block.

    SQLite: another connection holds an EXCLUSIVE lock (readers and writers get "database
    is locked"). PostgreSQL: the database stops accepting connections and every backend
    connected to it except this process's own is terminated (done as a separate
    connection to database ``postgres``). Restored in ``finally``.
    """
    if database_is_sqlite():
        lock = _exclusive_lock(connection.settings_dict["NAME"])
        try:
            yield
        finally:
            try:
                lock.execute("ROLLBACK")
            finally:
                lock.close()
        return

    import psycopg

    settings = connection.settings_dict
    dbname = settings["NAME"]
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (own_pid,) = cursor.fetchone()
    admin = psycopg.connect(
        host=settings.get("HOST") or "localhost",
        port=settings.get("PORT") or 5432,
        user=settings.get("USER") or "postgres",
        password=settings.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )
    quoted = '"' + dbname.replace('"', '""') + '"'
    try:
        admin.execute(f"ALTER DATABASE {quoted} ALLOW_CONNECTIONS false")
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> %s",
                (dbname, own_pid),
            )
            yield
        finally:
            admin.execute(f"ALTER DATABASE {quoted} ALLOW_CONNECTIONS true")
    finally:
        admin.close()


def env_with(*envs: dict[str, str] | None) -> dict[str, str]:
    merged: dict[str, str] = {}
    for env in envs:
        merged.update(env or {})
    return merged


__all__ = [
    "ConsumerProcess",
    "all_acked",
    "acked_ids",
    "broker_answers",
    "broker_connections",
    "broker_stopped",
    "check_exactly_once",
    "consumers_on",
    "database_is_sqlite",
    "database_unavailable",
    "drain",
    "env_with",
    "handled_counts",
    "outage_env",
    "publish_many",
    "rabbitmqctl",
    "settings_env",
    "stop_and_wait",
    "wait_for",
    "wait_running",
]
