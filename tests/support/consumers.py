"""``runconsumer`` subprocesses (the ``start_consumer`` fixture starts them): watching one
while waiting, and stopping it as an operator would (SIGTERM, then a clean exit 0)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.rabbitmq import broker_state


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


def stop_and_wait(consumer: ConsumerProcess, timeout: float = 30) -> None:
    """SIGTERM and expect a clean exit 0."""
    consumer.terminate()
    try:
        rc = consumer.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        consumer.dump_threads()  # every thread's stack into its stderr, for the message
        pytest.fail(f"no exit {timeout:g}s after SIGTERM: {consumer.describe()}")
    assert rc == 0, consumer.describe()
