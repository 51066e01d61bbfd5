"""Connecting: pika parameters from a URL and the settings, connection names, and the
one loop that tries each broker URL in turn (cluster nodes) for every kind of connection.
"""

from __future__ import annotations

import logging
import os
import random
import socket
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from .. import conf
from ..exceptions import AccessRefused, AuthenticationFailed, BrokerError, BrokerUnavailable
from .errors import translate, translating

logger = logging.getLogger(__name__)

T = TypeVar("T")


def connection_parameters(url: str, *, connection_name: str | None = None) -> pika.URLParameters:
    """Turn one broker URL into pika parameters.

    Heartbeat, connection and blocked-connection timeouts come from
    ``settings.MESSAGING`` unless the URL's query string sets them
    (``?heartbeat=30``). ``amqps://`` enables TLS with certificate and host name
    verification.
    """
    params = pika.URLParameters(url)
    query = parse_qs(urlsplit(url).query)
    if "heartbeat" not in query:
        params.heartbeat = conf.get("HEARTBEAT")
    timeout = conf.get("CONNECTION_TIMEOUT") or None
    if "socket_timeout" not in query:
        params.socket_timeout = timeout
    if "stack_timeout" not in query:  # TCP connect + TLS + AMQP handshake, all together
        params.stack_timeout = timeout and timeout + 1
    if "blocked_connection_timeout" not in query:
        params.blocked_connection_timeout = conf.get("BLOCKED_CONNECTION_TIMEOUT") or None
    if params.ssl_options is not None and params.ssl_options.server_hostname is None:
        params.ssl_options = pika.SSLOptions(
            params.ssl_options.context, server_hostname=params.host
        )
    params.client_properties = {
        "connection_name": connection_name or default_connection_name(),
        "product": "django messaging",
    }
    return params


def default_connection_name() -> str:
    return f"messaging@{socket.gethostname()}:{os.getpid()}"


#: This process's order of each URL list (shuffled once per process: see ordered_urls).
_ORDERS: dict[tuple[int, tuple[str, ...]], list[str]] = {}


def ordered_urls(urls: Iterable[str], *, shuffle: bool | None = None) -> list[str]:
    """``urls`` in the order this process tries them: shuffled once per process (and
    kept, so a process fails over in a fixed order) unless ``SHUFFLE_BROKER_URLS`` is
    False, so that the connections of many processes — and with RabbitMQ's
    ``client-local`` placement the quorum leaders they declare — spread over a
    cluster's nodes instead of all landing on the first URL."""
    urls = list(urls)
    if shuffle is None:
        shuffle = conf.get("SHUFFLE_BROKER_URLS")
    if not shuffle or len(urls) < 2:
        return urls
    key = (os.getpid(), tuple(urls))  # a forked child shuffles again
    if key not in _ORDERS:
        _ORDERS[key] = random.sample(urls, len(urls))
    return list(_ORDERS[key])


def forget_url_orders() -> None:
    """Forget this process's orders: the next :func:`ordered_urls` shuffles each list
    afresh, as a new process would. A forked child forgets its parent's on its own (its
    orders are kept under its own process id, and this runs after ``os.fork``); tests
    call it to start from no order."""
    _ORDERS.clear()


os.register_at_fork(after_in_child=forget_url_orders)


def describe_node(url: str) -> str:
    """``host:port`` of ``url`` (no credentials): which node a log line is about."""
    try:
        params = pika.URLParameters(url)
    except Exception:  # noqa: BLE001 - only for a log line
        return conf.redact_url(url)
    return f"{params.host}:{params.port}"


def connect_first(urls: Iterable[str] | None, attempt: Callable[[str], T]) -> T:
    """``attempt(url)`` for each URL in turn (``BROKER_URL`` in this process's
    :func:`ordered_urls` order when ``urls`` is ``None``; a list given is tried in its
    own order) until one connects; logs (INFO) which
    node it connected to. A refused password or vhost is raised at once (a configuration
    error, not a dead node); else the only error, or a :class:`BrokerUnavailable`
    naming each URL's."""
    urls = list(urls) if urls is not None else ordered_urls(conf.broker_urls())
    errors: list[BrokerError] = []
    for url in urls:
        try:
            connected = attempt(url)
            if len(urls) > 1 or errors:
                logger.info("connected to broker node %s", describe_node(url))
            return connected
        except Exception as exc:  # noqa: BLE001 - translated below
            error = translate(exc, url=url)
            if isinstance(error, AuthenticationFailed | AccessRefused):
                if error is exc:
                    raise
                raise error from exc
            errors.append(error)
    if len(errors) == 1:
        raise errors[0]
    raise BrokerUnavailable("no broker answered: " + "; ".join(str(e) for e in errors))


def connect(
    urls: Iterable[str] | None = None, *, connection_name: str | None = None
) -> BlockingConnection:
    """Open a blocking connection, trying each URL in turn (cluster nodes).

    Raises :class:`BrokerUnavailable`, :class:`AuthenticationFailed` or
    :class:`AccessRefused`, never a pika exception.
    """
    return connect_first(urls, partial(_blocking_connection, connection_name=connection_name))


def _blocking_connection(url: str, *, connection_name: str | None) -> BlockingConnection:
    return pika.BlockingConnection(connection_parameters(url, connection_name=connection_name))


def connected_node(conn: BlockingConnection) -> str:
    """``host:port`` of the node ``conn`` is connected to, for ``-v 2`` output."""
    params = getattr(getattr(conn, "_impl", None), "params", None)
    return f"{params.host}:{params.port}" if params is not None else "?"


@contextmanager
def connection(
    urls: Iterable[str] | None = None, *, connection_name: str | None = None
) -> Iterator[BlockingConnection]:
    """:func:`connect`, closed (quietly) when the block ends."""
    conn = connect(urls, connection_name=connection_name)
    try:
        yield conn
    finally:
        close_quietly(conn)


def close_quietly(conn: BlockingConnection | None) -> None:
    if conn is None:
        return
    try:
        if conn.is_open:
            conn.close()
    except Exception:  # noqa: BLE001 - closing a dead connection must not mask the real error
        logger.debug("error while closing a broker connection", exc_info=True)


def open_channel(conn: BlockingConnection, *, confirm: bool = False) -> BlockingChannel:
    """A new channel on ``conn``, in confirm mode if ``confirm``; pika's errors translated."""
    with translating():
        channel = conn.channel()
        if confirm:
            channel.confirm_delivery()
    return channel
