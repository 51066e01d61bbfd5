"""Health checks (``manage.py healthcheck``, ``health/ready``) and a consumer's own
liveness (``runconsumer --health-file``).

Every check returns a :class:`Check`: its name, whether it passed, and one line saying
why not. No line ever holds a password: broker URLs are shown redacted, database
errors by their first line only.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import conf


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        return f"{self.name}: {self.detail}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return conf.redact_text(text[0] if text else type(exc).__name__)


# --------------------------------------------------------------------------- the checks


def check_database() -> Check:
    """Connect and run ``SELECT 1`` on the default database."""
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any driver error means "not reachable"
        with contextlib.suppress(Exception):
            connection.close()
        return Check("database", False, f"unreachable ({_first_line(exc)})")
    return Check("database", True, connection.vendor)


def check_broker(queues: Sequence[Any] | None) -> list[Check]:
    """Connect; each ``Queue`` row (when ``queues`` is given) exists on the broker with
    the arguments its row declares (a declare with them is refused otherwise)."""
    from .. import broker
    from ..exceptions import BrokerError

    publisher = broker.PipelinedPublisher(connection_name=broker.default_connection_name())
    try:
        try:
            publisher.open()
        except BrokerError as exc:
            urls = ", ".join(conf.redact_url(u) for u in conf.broker_urls())
            return [Check("broker", False, f"cannot connect to {urls}: {_first_line(exc)}")]
        checks = [Check("broker", True, "connected")]
        if queues:
            checks.extend(_check_queues(publisher, list(queues)))
        return checks
    finally:
        publisher.close()


def _check_queues(publisher: Any, queues: list[Any]) -> list[Check]:
    from .. import broker

    states = publisher.call_each(
        "queue_declare", [{"queue": q.name, "passive": True} for q in queues]
    )
    present = []
    checks = []
    for queue, state in zip(queues, states, strict=True):
        if getattr(state, "reply_code", None) == 404:
            checks.append(Check(f"queue {queue.name}", False, "missing on the broker"))
        elif isinstance(state, BaseException):
            checks.append(Check(f"queue {queue.name}", False, _first_line(state)))
        else:
            present.append(queue)
    specs = [broker.QueueSpec.of(q) for q in present]
    answers = publisher.call_each(
        "queue_declare",
        [{"queue": s.name, "durable": s.durable, "arguments": dict(s.arguments or {}) or None}
         for s in specs],
    )  # fmt: skip
    for queue, answer in zip(present, answers, strict=True):
        if isinstance(answer, BaseException):
            detail = "declared with other arguments than its row: " + _first_line(
                broker.translate(answer, queue=queue.name)
            )
            checks.append(Check(f"queue {queue.name}", False, detail))
        else:
            checks.append(Check(f"queue {queue.name}", True, "declared as its row says"))
    return checks


def check_consumers(queues: Iterable[str]) -> list[Check]:
    """Each queue has at least one live consumer in the registry."""
    from ..models import Consumer

    covered: set[str] = set()
    for names in Consumer.objects.live().values_list("queues", flat=True):
        covered.update(names or [])
    checks = []
    for name in queues:
        if name in covered:
            checks.append(Check(f"consumers {name}", True, "at least one live consumer"))
        else:
            checks.append(Check(f"consumers {name}", False, "no live consumer in the registry"))
    return checks


def check_pending_age(max_age: float) -> Check:
    """The oldest ``pending`` message is at most ``max_age`` seconds old."""
    from .gauges import outbox_backlog

    _pending, oldest = outbox_backlog()
    worst = max(oldest.items(), key=lambda item: item[1], default=None)
    if worst is not None and worst[1] > max_age:
        return Check(
            "pending",
            False,
            f"oldest pending message ({worst[0]}) is {worst[1]:.0f}s old (max {max_age:g}s)",
        )
    return Check("pending", True, "no pending message older than the limit")


def check_dead_letters(queues: Sequence[Any], limit: int) -> list[Check]:
    """Each app-managed ``<queue>.dlq`` holds at most ``limit`` messages."""
    from .gauges import broker_depths

    _messages, _consumers, dead = broker_depths(queues)
    checks = []
    for name, depth in sorted(dead.items()):
        ok = depth <= limit
        detail = f"{name}.dlq holds {depth} message(s)" + ("" if ok else f" (max {limit})")
        checks.append(Check(f"dead letters {name}", ok, detail))
    return checks


@dataclass
class Report:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def run_checks(
    *,
    consumers: Sequence[str] | None = None,
    max_pending_age: float | None = None,
    max_dead_letters: int | None = None,
) -> Report:
    """Database, broker and queues, then the optional checks (skipped when the part
    they need is down: that part's failure is already reported)."""
    from ..models import Queue

    checks = [check_database()]
    db_ok = checks[0].ok
    queues = list(Queue.objects.order_by("name")) if db_ok else None
    checks.extend(check_broker(queues))
    broker_ok = checks[1].ok
    if consumers is not None and db_ok:
        names = consumers or list(conf.get("CONSUMERS"))
        checks.extend(_guarded("consumers", lambda: check_consumers(names)))
    if max_pending_age is not None and db_ok:
        checks.extend(_guarded("pending", lambda: [check_pending_age(max_pending_age)]))
    if max_dead_letters is not None and db_ok and broker_ok:
        dead = _guarded("dead letters", lambda: check_dead_letters(queues or [], max_dead_letters))
        checks.extend(dead)
    return Report(checks)


def _guarded(name: str, run: Callable[[], list[Check]]) -> list[Check]:
    """``run()``'s checks, or one failed check when the part it reads broke meanwhile."""
    try:
        return run()
    except Exception as exc:  # noqa: BLE001 - a health check reports, never crashes
        return [Check(name, False, f"could not check: {_first_line(exc)}")]


def readiness() -> Report:
    """``health/ready``: the database and the broker answer."""
    return Report([check_database(), check_broker(None)[0]])


# --------------------------------------------------------------------------- liveness


class Liveness:
    """When the consumer's calling thread and I/O thread last showed they were alive,
    and whether the calling thread has a batch in hand (a handler may run long)."""

    def __init__(self) -> None:
        self.beats: dict[str, float] = {}
        self.busy_since: float | None = None

    def beat(self, part: str) -> None:
        self.beats[part] = time.monotonic()

    def busy(self, since: float | None) -> None:
        self.busy_since = since

    def stale(self, limits: dict[str, float], now: float | None = None) -> list[str]:
        """Parts that have not beaten within their limit (or never). ``limits`` has
        ``loop`` (idle calling thread), ``busy`` (a batch in hand) and ``io``."""
        now = time.monotonic() if now is None else now
        stale = []
        busy_since = self.busy_since
        if busy_since is not None:
            if now - busy_since > limits["busy"]:
                stale.append("loop")
        elif now - self.beats.get("loop", -1e18) > limits["loop"]:
            stale.append("loop")
        if now - self.beats.get("io", -1e18) > limits["io"]:
            stale.append("io")
        return stale


#: The process's liveness (one consumer per runconsumer process).
LIVENESS = Liveness()


def liveness_limits() -> dict[str, float]:
    """How long each part may stay silent before it counts as stuck: the idle calling
    thread (it looks up every 0.2 s) 30 s; one with a batch in hand the broker's
    consumer timeout (a handler may run that long); the I/O thread (it turns every
    0.25 s) a minute beyond the longest reconnect pause."""
    busy = float(conf.get("BROKER_CONSUMER_TIMEOUT") or 0) or 3600.0
    io = 60.0 + float(conf.get("RECONNECT_MAX_DELAY"))
    return {"loop": 30.0, "busy": busy, "io": io}


class HealthFile:
    """Touches ``path`` every ``interval`` seconds while no part is stale."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        interval: float = 2.0,
        liveness: Liveness = LIVENESS,
        limits: dict[str, float] | None = None,
    ) -> None:
        self.path = Path(path)
        self.interval = interval
        self.liveness = liveness
        self.limits = limits
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="messaging-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def touch_if_alive(self) -> bool:
        if self.liveness.stale(self.limits or liveness_limits()):
            return False
        self.path.touch()
        return True

    def _main(self) -> None:
        while True:
            with contextlib.suppress(OSError):  # a directory gone: the probe fails
                self.touch_if_alive()
            if self._stop.wait(self.interval):
                return
