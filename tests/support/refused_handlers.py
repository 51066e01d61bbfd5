"""Handlers ``runconsumer`` must refuse at start (an async generator, the wrong
arguments), or must not count as acked (a plain def handing back a coroutine); and
``async def`` ones it accepts.

Pointed at with ``--handler tests.support.refused_handlers.NAME``.
"""

from __future__ import annotations

import functools

from messaging import Delivery


async def coro(delivery: Delivery) -> None:
    """An ``async def`` handler: runconsumer awaits it (``run_async``)."""


async def agen(delivery: Delivery):
    yield delivery


class AsyncCallable:
    async def __call__(self, delivery: Delivery) -> None:
        pass


async_callable = AsyncCallable()


async def _coro_two(delivery: Delivery, extra: int) -> None:
    pass


partial_coro = functools.partial(_coro_two, extra=1)


def no_args() -> None:
    """Takes neither a Delivery nor the pika arguments."""


def two_args(delivery: Delivery, other: object) -> None:
    """Two required arguments: neither one Delivery nor four pika arguments."""


def returns_coroutine(delivery: Delivery):
    """A plain def that hands back a coroutine instead of doing its work (the runtime
    safety net must count it as a failure, never ``acked``)."""
    return coro(delivery)


def pika_with_default(ch, method, properties, body, extra=None) -> None:
    """Four pika arguments plus an optional one: accepted as a pika callback."""


def delivery_with_default(delivery: Delivery, extra: int = 0) -> None:
    """One Delivery plus an optional one: accepted."""
