"""Asking the test broker about its queues and connections: over AMQP (queue depth,
consumer count, whether it answers) and with ``rabbitmqctl`` (connections, closing them)."""

from __future__ import annotations

import socket
import subprocess

from messaging import broker
from messaging.models import Receipt

RABBITMQCTL_TIMEOUT = 60


def queue_depth(name: str) -> int | None:
    """Ready messages in ``name`` (None if the queue does not exist)."""
    with broker.connection() as conn:
        state = broker.inspect_queue(conn.channel(), name)
    return None if state is None else state[0]


def consumers_on(queue: str) -> int:
    """Consumers the broker counts on ``queue`` (0 if it does not exist)."""
    with broker.connection() as conn:
        state = broker.inspect_queue(conn.channel(), queue)
    return 0 if state is None else state[1]


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


def rabbitmqctl(*args: str, timeout: float = RABBITMQCTL_TIMEOUT) -> str:
    """``rabbitmqctl ARGS`` on the default node; its stdout, or the test fails."""
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


def close_broker_connections(name_contains: str) -> int:
    """Close, from the broker side, the connections whose client-provided name contains
    ``name_contains`` (needs ``rabbitmqctl``). Returns how many were closed."""
    pids = broker_connections(name_contains)
    for pid in pids:
        rabbitmqctl("-q", "close_connection", pid, "closed by test")
    return len(pids)


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
