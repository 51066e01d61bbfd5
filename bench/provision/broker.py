"""The bench's queues on the broker: a new name for each use, all deleted at the end."""

from __future__ import annotations

import time

from bench import raw
from bench.process import BenchError, describe, log, redact


def check_broker(url: str) -> None:
    """One clear line when RabbitMQ does not answer, before anything is created."""
    try:
        raw.server_version(url)
    except Exception as exc:  # noqa: BLE001
        raise BenchError(
            f"cannot reach RabbitMQ at {redact(url)} (MESSAGING_BROKER_URL): "
            f"{type(exc).__name__} {exc}".strip()
        ) from exc


def wait_for_broker(url: str, timeout: float) -> bool:
    """True once the broker answers; False after ``timeout`` seconds of trying."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            raw.server_version(url)
            return True
        except Exception:  # noqa: BLE001
            if time.monotonic() > deadline:
                return False
            time.sleep(2)


class Queues:
    """The queues of one bench run, named ``<prefix>.<what>.<n>``."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self.names: list[str] = []

    def new(self, what: str) -> str:
        """A new queue name for each use (a retry never finds an earlier attempt's
        messages); all are deleted at the end."""
        name = f"{self.prefix}.{what}.{len(self.names) + 1}"
        self.names.append(name)
        return name

    def drop(self, name: str) -> None:
        raw.delete_queues(self.url, [name, f"{name}.dlq"])

    def cleanup(self) -> None:
        """Delete every queue the bench made; wait up to a minute for a broker that is
        restarting (other test runs on a shared machine stop it now and then)."""
        names = [n for q in self.names for n in (q, f"{q}.dlq")]
        deadline = time.monotonic() + 60
        while True:
            try:
                raw.delete_queues(self.url, names)
                return
            except Exception as exc:  # noqa: BLE001 - report, do not hide the run's result
                if time.monotonic() > deadline:
                    log(f"could not delete the bench queues {names}: {describe(exc)}")
                    return
                time.sleep(2)
