"""Queues' live state on the broker, as the admin's pages show it (the queue list, the
purge confirmation, bindings, the overview, the topology): ready messages and consumers
per queue, asked over one connection per page (:func:`broker_snapshot`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..amqp.validators import DERIVED_QUEUE_SUFFIXES
from ..broker import QueueSpec
from ..broker.queue_ops import queue_name_problem
from ..broker.queues import inspect_and_compare, inspect_queues
from ..exceptions import BrokerError

#: The state of a queue (or exchange) the broker could not be asked about.
UNREACHABLE = "unreachable"
#: The state of a queue whose name the broker must not be sent (see
#: :func:`~messaging.amqp.validators.validate_queue_name`).
INVALID_NAME = "invalid name"


@dataclass
class BrokerSnapshot:
    """(ready, consumers) per queue name, ``None`` for a queue the broker does not have;
    ``invalid`` names (with the reason) were not sent to the broker; ``error`` is why the
    broker could not be asked at all (names then missing from ``states``), or else the
    first per-name failure (that name alone is missing, e.g. no answer in time).
    ``drift``: queues that differ from their row, when the snapshot compared them."""

    states: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    error: BrokerError | None = None
    #: Queues that exist on the broker with other arguments than their row (drift),
    #: with the broker's refusal; only when asked (``compare``).
    drift: dict[str, BrokerError] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)

    def state(self, name: str) -> tuple[int, int] | None | str:
        """``(ready, consumers)``, ``None`` (not on the broker), ``"invalid name"`` or
        ``"unreachable"``."""
        if name in self.states:
            return self.states[name]
        if name in self.invalid:
            return INVALID_NAME
        return UNREACHABLE


def broker_snapshot(
    names: Iterable[str],
    urls: Iterable[str] | None = None,
    compare: Iterable[QueueSpec] | None = None,
) -> BrokerSnapshot:
    """Inspect every queue in ``names`` over one connection, all at once (a passive
    declare each, :func:`~messaging.broker.queues.inspect_queues`), within
    CONNECTION_TIMEOUT (plus about a second). A name the validators refuse is not sent.
    Never raises a broker error: it is in ``error``."""
    names = list(dict.fromkeys(names))
    snapshot = BrokerSnapshot()
    asked = []
    for name in names:
        problem = _name_problem(name)
        if problem is None:
            asked.append(name)
        else:
            snapshot.invalid[name] = problem
    if not asked:
        return snapshot
    try:
        if compare is None:
            answers = inspect_queues(asked, urls)
        else:
            specs = [spec for spec in compare if spec.name in asked]
            answers, snapshot.drift = inspect_and_compare(asked, specs, urls)
    except BrokerError as exc:
        snapshot.error = exc
        return snapshot
    for name, answer in zip(asked, answers, strict=True):
        if isinstance(answer, BrokerError):
            snapshot.error = snapshot.error or answer
        else:
            snapshot.states[name] = answer
    return snapshot


def _name_problem(name: str) -> str | None:
    """A queue row's name, or one the app derives from a valid one (``<name>.dlq``)."""
    problem = queue_name_problem(name)
    if problem is not None:
        for suffix in DERIVED_QUEUE_SUFFIXES:
            base = name.removesuffix(suffix)
            if base != name and queue_name_problem(base) is None:
                return None
    return problem
