"""What :func:`messaging.testing.capture` and the ``captured_messages`` fixture give:
the captured messages, assertion helpers, and :meth:`CapturedMessages.deliver`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ..broker import Outgoing
from .captured_message import CapturedMessage
from .delivery import DeadLetter, DeliveryResult, deliver_messages
from .task_capture import is_task

#: Most captured messages an assertion failure lists.
SHOWN = 20


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _has_headers(message: CapturedMessage, wanted: Mapping[str, Any]) -> bool:
    return all(key in message.headers and message.headers[key] == v for key, v in wanted.items())


#: Keyword -> test, for :meth:`CapturedMessages.filter` and the assertions. A criterion
#: is one entry here (e.g. a ``json=`` that compares the parsed body).
def _json_equals(message: CapturedMessage, value: Any) -> bool:
    try:
        return message.json() == value
    except ValueError:
        return False


MATCHERS: dict[str, Callable[[CapturedMessage, Any], bool]] = {
    "queue": lambda m, v: m.queue == v,
    "exchange": lambda m, v: m.exchange == v,
    "routing_key": lambda m, v: m.routing_key == v,
    "body": lambda m, v: m.body == _as_bytes(v),
    "content_type": lambda m, v: m.content_type == v,
    "headers": _has_headers,  # these headers (others may be there too)
    "message_id": lambda m, v: m.message_id == v,
    "persistent": lambda m, v: m.persistent == v,
    "json": lambda m, v: _json_equals(m, v),  # the body parses to this JSON value
    "where": lambda m, v: bool(v(m)),  # any predicate
    "task": is_task,  # a run of this Django task (messaging.task_backend)
}


class CapturedMessages:
    """The messages captured so far, in the order they would have been published.

    Iterate it, ``len()`` it, index it; :meth:`filter` and the ``assert_*`` helpers take
    the criteria of :data:`MATCHERS` (``queue=``, ``body=``, ``headers=``, …); a failing
    assertion lists what was captured. :meth:`deliver` runs the handlers for them.
    """

    def __init__(self) -> None:
        #: Held while the messages change or are copied (publishers call :meth:`add`
        #: from any thread).
        self._lock = threading.RLock()
        self._messages: list[CapturedMessage] = []
        self._delivered: set[int] = set()
        #: Every message a :meth:`deliver` dead-lettered (MAX_ATTEMPTS or ``Reject``).
        self.dead_letters: list[DeadLetter] = []

    def add(self, items: Iterable[Outgoing]) -> None:
        """Capture what a publisher was handed, in order (the capturing publisher calls
        this; a test need not)."""
        with self._lock:
            for item in items:
                self._messages.append(CapturedMessage.of(item, len(self._messages)))

    # ----------------------------------------------------------------- reading

    @property
    def messages(self) -> list[CapturedMessage]:
        with self._lock:
            return list(self._messages)

    def __iter__(self) -> Iterator[CapturedMessage]:
        return iter(self.messages)

    def __len__(self) -> int:
        return len(self._messages)

    def __getitem__(self, index: int) -> CapturedMessage:
        return self.messages[index]

    def __repr__(self) -> str:
        return f"<CapturedMessages: {len(self)} message(s)>"

    def filter(self, **criteria: Any) -> list[CapturedMessage]:
        """The captured messages matching every criterion, in order."""
        tests = [(_matcher(name), value) for name, value in criteria.items()]
        return [m for m in self.messages if all(test(m, value) for test, value in tests)]

    def clear(self) -> None:
        """Forget everything captured (and delivered) so far."""
        with self._lock:
            self._messages.clear()
            self._delivered.clear()
            self.dead_letters.clear()

    # ----------------------------------------------------------------- assertions

    def assert_count(self, count: int, **criteria: Any) -> list[CapturedMessage]:
        """Exactly ``count`` messages match; returns them."""
        found = self.filter(**criteria)
        if len(found) != count:
            raise AssertionError(self._explain(f"expected {count} message(s)", criteria, found))
        return found

    def assert_published(self, **criteria: Any) -> CapturedMessage:
        """Exactly one message matches (see :meth:`assert_count` for other numbers);
        returns it."""
        return self.assert_count(1, **criteria)[0]

    def assert_nothing_published(self, **criteria: Any) -> None:
        """No message matches (with no criteria: nothing was captured at all)."""
        self.assert_count(0, **criteria)

    def _explain(self, expected: str, criteria: Mapping[str, Any], found: list) -> str:
        wanted = ", ".join(f"{k}={v!r}" for k, v in criteria.items()) or "any"
        messages = self.messages
        lines = [f"{expected} with {wanted}, found {len(found)}; captured {len(messages)}:"]
        lines += [f"  {m.index}. {m.describe()}" for m in messages[:SHOWN]]
        if len(messages) > SHOWN:
            lines.append(f"  … and {len(messages) - SHOWN} more")
        return "\n".join(lines)

    # ----------------------------------------------------------------- delivering

    def deliver(
        self,
        *messages: CapturedMessage,
        handlers: Mapping[str, Any] | None = None,
        queue: str | None = None,
        redeliver: bool = False,
    ) -> DeliveryResult:
        """Run the handlers for captured messages through the consumer's own per-delivery
        path, against the database, with no broker: receipts, duplicates, ``Reject``,
        attempts and dead-lettering as ``runconsumer`` does them (without RETRY_DELAY
        pauses). A requeued message is delivered again at once, until it is acked or
        dead-lettered.

        With no ``messages``: every captured message not delivered yet, and then those
        the handlers published meanwhile, until none is left. ``handlers`` maps queue
        names to handlers (callables or dotted paths; default MESSAGING["CONSUMERS"]).
        ``queue`` delivers the given messages to that queue (needed for a message
        published to an exchange). ``redeliver=True`` delivers them flagged
        ``redelivered`` as the broker does after a lost ack (all captured messages when
        none are given): one already acked gets a ``duplicate`` receipt.
        """
        result = DeliveryResult()
        if messages or redeliver:
            batch = list(messages) or self.messages
            self._run(batch, result, handlers, queue, redeliver)
            return result
        for _round in range(1000):
            batch = self._undelivered()
            if not batch:
                return result
            self._run(batch, result, handlers, queue, redeliver)
        raise RuntimeError("deliver(): the handlers kept publishing for 1000 rounds")

    def _undelivered(self) -> list[CapturedMessage]:
        return [m for m in self.messages if m.index not in self._delivered]

    def _run(self, batch: list, result: DeliveryResult, handlers: Any, queue: Any, again: bool):
        self._delivered.update(m.index for m in batch)
        part = deliver_messages(batch, handlers=handlers, queue=queue, redelivered=again)
        result.extend(part)
        self.dead_letters.extend(part.dead_letters)


def _matcher(name: str) -> Callable[[CapturedMessage, Any], bool]:
    try:
        return MATCHERS[name]
    except KeyError:
        raise TypeError(
            f"unknown criterion {name!r} (known: {', '.join(sorted(MATCHERS))})"
        ) from None
