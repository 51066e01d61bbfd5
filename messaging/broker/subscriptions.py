"""The tutorials' ``receive_logs`` pattern: a fresh exclusive, server-named queue bound to
existing exchanges (used passively: the app does not own them), and the exchanges'
existence checked beforehand."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel

from .connecting import connection
from .errors import translating


def declare_subscription(channel: BlockingChannel, bindings: Sequence[tuple[str, str]]) -> str:
    """Declare an exclusive, server-named queue (gone with its connection), bind it to
    each ``(exchange, routing_key)``, and return its name. A missing exchange raises
    :class:`~messaging.exceptions.NotFound` (the broker closes the channel)."""
    with translating():
        for exchange in dict.fromkeys(exchange for exchange, _key in bindings):
            channel.exchange_declare(exchange=exchange, passive=True)
        name = channel.queue_declare(queue="", exclusive=True).method.queue
        for exchange, routing_key in bindings:
            channel.queue_bind(queue=name, exchange=exchange, routing_key=routing_key)
    return name


def missing_exchanges(names: Iterable[str], urls: Iterable[str] | None = None) -> list[str]:
    """The exchanges among ``names`` that do not exist on the broker (a passive declare
    each, on a throw-away channel)."""
    missing = []
    with connection(urls) as conn, translating():
        for name in dict.fromkeys(names):
            try:
                conn.channel().exchange_declare(exchange=name, passive=True)
            except pe.ChannelClosedByBroker as exc:
                if exc.reply_code != 404:
                    raise
                missing.append(name)
    return missing
