"""Where a message goes, computed from Exchange and Binding rows with RabbitMQ's own
matching rules — pure code (no broker, no database), used by the admin's topology page.

- ``direct``: the binding key equals the routing key.
- ``fanout``: every binding, whatever the key.
- ``topic``: keys are words separated by ``.`` (empty words count: ``"a..b"`` has three,
  ``"a."`` two, ``""`` none); ``*`` matches exactly one word, ``#`` zero or more.
- ``headers``: the binding's arguments against the message headers, ``x-match`` ``all``
  (the default: every argument present with that value) or ``any`` (at least one); keys
  starting with ``x-`` are left out unless ``all-with-x``/``any-with-x``.

Exchange-to-exchange bindings are followed (each exchange once), and an exchange's
``alternate-exchange`` argument receives what none of its bindings matched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .declarations import BindingSpec

#: A binding as the routing sees it: the one binding type, :class:`BindingSpec`.
Edge = BindingSpec


def split_words(key: str) -> tuple[str, ...]:
    """A topic key's words as RabbitMQ splits them (``""`` has none)."""
    return tuple(key.split(".")) if key else ()


def topic_matches(pattern: str, routing_key: str) -> bool:
    """True when topic binding key ``pattern`` matches ``routing_key``."""
    return _match(split_words(pattern), split_words(routing_key))


@lru_cache(maxsize=4096)
def _match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        # zero words, or swallow one and try again
        return _match(rest, words) or (bool(words) and _match(pattern, words[1:]))
    if not words:
        return False
    return (head == "*" or head == words[0]) and _match(rest, words[1:])


def headers_match(arguments: Mapping[str, Any] | None, headers: Mapping[str, Any] | None) -> bool:
    """True when a headers-exchange binding with ``arguments`` matches ``headers``."""
    arguments = dict(arguments or {})
    headers = headers or {}
    mode = str(arguments.pop("x-match", "all"))
    with_x = mode.endswith("-with-x")
    wanted = {k: v for k, v in arguments.items() if with_x or not k.startswith("x-")}
    if not wanted:
        return mode.startswith("all")

    def one(key: str, value: Any) -> bool:
        if key not in headers:
            return False
        return value is None or headers[key] == value  # a void argument: presence only

    if mode.startswith("any"):
        return any(one(k, v) for k, v in wanted.items())
    return all(one(k, v) for k, v in wanted.items())


def binding_matches(
    exchange_type: str,
    binding_key: str,
    routing_key: str,
    arguments: Mapping[str, Any] | None = None,
    headers: Mapping[str, Any] | None = None,
) -> bool:
    """Does one binding of an exchange of ``exchange_type`` take this message?"""
    if exchange_type == "fanout":
        return True
    if exchange_type == "direct":
        return binding_key == routing_key
    if exchange_type == "topic":
        return topic_matches(binding_key, routing_key)
    if exchange_type == "headers":
        return headers_match(arguments, headers)
    return False


# --------------------------------------------------------------------------- a graph


@dataclass
class Route:
    """Where a message published to one exchange goes: the queues (sorted), the edges
    it took, the exchanges it passed through, and the exchanges it was unknown at."""

    queues: list[str] = field(default_factory=list)
    edges: list[BindingSpec] = field(default_factory=list)
    exchanges: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    @property
    def routable(self) -> bool:
        return bool(self.queues)


def route(
    exchange: str,
    routing_key: str,
    *,
    types: Mapping[str, str],
    edges: Sequence[BindingSpec],
    headers: Mapping[str, Any] | None = None,
    alternates: Mapping[str, str] | None = None,
) -> Route:
    """Follow a message published to ``exchange`` with ``routing_key`` (``types``: the
    type of each exchange by name; ``alternates``: an exchange's alternate-exchange)."""
    result = Route()
    queues: set[str] = set()
    by_source: dict[str, list[BindingSpec]] = {}
    for edge in edges:
        by_source.setdefault(edge.source.name, []).append(edge)
    todo, seen = [exchange], set()
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        result.exchanges.append(name)
        if name not in types:
            result.unknown.append(name)
            continue
        matched = False
        for edge in by_source.get(name, []):
            if binding_matches(types[name], edge.routing_key, routing_key, edge.arguments, headers):
                matched = True
                result.edges.append(edge)
                if edge.queue is not None:
                    queues.add(edge.queue)
                elif edge.destination is not None:
                    todo.append(edge.destination.name)
        alternate = (alternates or {}).get(name)
        if not matched and alternate:
            todo.append(alternate)
    result.queues = sorted(queues)
    return result


def edges_from_rows(bindings: Iterable[Any]) -> list[BindingSpec]:
    """The :class:`BindingSpec` of each ``Binding`` row (with source, queue and
    destination exchange selected)."""
    return [BindingSpec.of(b) for b in bindings]
