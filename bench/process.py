"""The bench's subprocesses (the real commands, the raw loops), its log and its errors.

No Django here: the measured code always runs in a process of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench import config

ROOT = Path(__file__).resolve().parent.parent
MANAGE = str(ROOT / "manage.py")
KINDS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
MB = 1024 * 1024

_T0 = time.monotonic()


class BenchError(Exception):
    """A measurement or a setup step failed; the text is one line for the table."""


def log(text: str) -> None:
    """One progress line on stderr, with the minutes since the bench started."""
    elapsed = int(time.monotonic() - _T0)
    sys.stderr.write(f"[bench {elapsed // 60}:{elapsed % 60:02d}] {text}\n")
    sys.stderr.flush()


def describe(exc: BaseException) -> str:
    """One line for an error; pika's connection errors often have no text."""
    if isinstance(exc, BenchError):
        return str(exc)
    import pika.exceptions

    if isinstance(exc, pika.exceptions.AMQPConnectionError | ConnectionError):
        return f"cannot reach RabbitMQ ({type(exc).__name__})"
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return text.rstrip(": ")


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def command_env(kind: str | None = None) -> dict[str, str]:
    """The environment of a bench subprocess; with ``kind``, on that bench database."""
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        MESSAGING_BROKER_URL=config.broker_url(),
        BENCH_SQLITE=config.sqlite_path(),
        BENCH_POSTGRES_URL=config.postgres_url(),
        PYTHONUNBUFFERED="1",
    )
    if kind:
        env["BENCH_DATABASE_URL"] = config.database_url(kind)
    return env


def manage(*args: str) -> list[str]:
    """The command line of ``manage.py ARGS`` with this interpreter."""
    return [sys.executable, MANAGE, *args]


@dataclass
class Finished:
    returncode: int
    wall: float
    stdout: str
    stderr: str

    def failure(self) -> str:
        """The last line of stderr (or the exit status), for the table."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return (lines[-1] if lines else f"exit status {self.returncode}")[:200]


@contextlib.contextmanager
def started(cmd: list[str], env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, Any, Any]]:
    """Start ``cmd`` with stdout/stderr in temporary files; killed if still running."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT, text=True)
        try:
            yield proc, out, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def finished(proc: subprocess.Popen, out: Any, err: Any, start: float) -> Finished:
    """What a process :func:`started` at ``start`` (perf_counter) left behind."""
    out.seek(0)
    err.seek(0)
    return Finished(proc.returncode, time.perf_counter() - start, out.read(), err.read())


def run(cmd: list[str], env: dict[str, str], timeout: float) -> Finished:
    """Run ``cmd`` to the end (killed after ``timeout`` seconds)."""
    start = time.perf_counter()
    with started(cmd, env) as (proc, out, err):
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            err.write(f"\ntimed out after {timeout:.0f}s")
        return finished(proc, out, err, start)


def run_raw(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one :mod:`bench.raw` loop and return its JSON line."""
    spec = {"url": config.broker_url(), **spec}
    done = run([sys.executable, "-m", "bench.raw", json.dumps(spec)], command_env(), timeout)
    if done.returncode != 0:
        raise BenchError(done.failure())
    return json.loads(done.stdout.strip().splitlines()[-1])


def rss_of(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in bytes; (0, 0) once it is gone."""
    values = {"VmRSS": 0, "VmHWM": 0}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in values:
                    values[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return values["VmRSS"], values["VmHWM"]
