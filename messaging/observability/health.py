"""Health checks (``manage.py healthcheck``, ``health/ready``). A consumer's own liveness
(``runconsumer --health-file``) is :mod:`.liveness`, importable from here as well.

Every check returns a :class:`Check`: its name, whether it passed, and one line saying
why not. No line ever holds a password: broker URLs are shown redacted, database
errors by their first line only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .. import conf
from ..broker import PipelinedPublisher, QueueSpec, translate
from ..broker.connecting import default_connection_name
from ..exceptions import BrokerError
from .gauges import broker_depths, outbox_backlog
from .liveness import LIVENESS, HealthFile, Liveness, liveness_limits

__all__ = [
    "LIVENESS",
    "Check",
    "HealthFile",
    "Liveness",
    "Report",
    "check_broker",
    "check_consumers",
    "check_database",
    "check_dead_letters",
    "check_pending_age",
    "liveness_limits",
    "readiness",
    "run_checks",
]


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
    publisher = PipelinedPublisher(connection_name=default_connection_name())
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
    specs = [QueueSpec.of(q) for q in present]
    answers = publisher.call_each(
        "queue_declare",
        [{"queue": s.name, "durable": s.durable, "arguments": dict(s.arguments or {}) or None}
         for s in specs],
    )  # fmt: skip
    for queue, answer in zip(present, answers, strict=True):
        if isinstance(answer, BaseException):
            detail = "declared with other arguments than its row: " + _first_line(
                translate(answer, queue=queue.name)
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
