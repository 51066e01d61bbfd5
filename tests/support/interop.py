"""Subprocesses for the interop tests: the tutorials' pika scripts and ``runconsumer``,
their output collected line by line by a thread (a test never blocks on a pipe)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.environment import manage_env
from tests.support.waiting import wait_for


class Proc:
    """A subprocess whose output lines are collected by a thread (never blocks)."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=manage_env(**(env or {}))
        )
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in iter(stream.readline, b""):
            lines.append(line.decode(errors="replace").rstrip("\n"))

    def wait_line(self, needle: str, *, err: bool = False, timeout: float = 30) -> str:
        lines = self.err if err else self.out

        def found() -> str | None:
            return next((line for line in list(lines) if needle in line), None)

        try:
            return wait_for(found, timeout=timeout)
        except BaseException:
            print("stdout:", *self.out, "stderr:", *self.err, sep="\n")
            raise

    def finish(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def launched() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.kill()


@pytest.fixture
def launch(launched, transactional_db):
    def run(*args: str, env: dict[str, str] | None = None) -> Proc:
        proc = Proc([sys.executable, *args], env)
        launched.append(proc)
        return proc

    return run


def manage_py() -> str:
    return str(Path(__file__).resolve().parents[2] / "manage.py")


def consumer(launch, *args: str, env: dict[str, str] | None = None) -> Proc:
    """``runconsumer ARGS -v 2``, once it consumes (its queue is declared and bound)."""
    proc = launch(manage_py(), "runconsumer", *args, "-v", "2", env=env)
    proc.wait_line("consuming ", err=True)
    return proc
