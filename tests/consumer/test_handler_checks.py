"""Handlers are checked when runconsumer starts, a handler that
hands back an awaitable is a failure (never ``acked``), and the default handler prints a
bounded preview of the body."""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import io
import warnings
from contextlib import redirect_stdout

import pika
import pytest

from messaging import publish
from messaging.consumer import Consumer
from messaging.consumer.handlers import (
    PREVIEW_BYTES,
    Delivery,
    as_handler,
    awaitable_error,
    check_handler,
    load_handler,
    print_delivery,
)
from messaging.exceptions import HandlerImportError
from messaging.models import Queue, Receipt
from tests.support import refused_handlers as h
from tests.support.rabbitmq import queue_depth
from tests.support.waiting import wait_for


def delivery(body: bytes) -> Delivery:
    return Delivery(queue="q", body=body, properties=pika.BasicProperties(), delivery_tag=1,
                    redelivered=False)  # fmt: skip


# --------------------------------------------------------------------------- start checks


class AsyncMethods:
    async def handle(self, delivery: Delivery) -> None:
        pass


@pytest.mark.parametrize(
    "func",
    [
        h.coro,
        h.async_callable,
        h.partial_coro,
        functools.partial(h.async_callable),
        AsyncMethods().handle,
    ],
    ids=["coroutine", "async-call", "partial", "partial-of-call", "method"],
)
def test_async_handlers_are_accepted_and_run_to_completion(func):
    check_handler(func, "app.handlers.x")
    handler = as_handler(func, "app.handlers.x")
    assert not inspect.iscoroutinefunction(handler)
    assert handler(delivery(b"x")) is None  # awaited here, not handed back


def test_an_async_handler_runs_its_coroutine_and_returns_its_result():
    seen = []

    async def handle(d: Delivery) -> str:
        await asyncio.sleep(0)
        seen.append(d.body)
        return "done"

    assert as_handler(handle)(delivery(b"body")) == "done"
    assert seen == [b"body"]


@pytest.mark.parametrize("func", [h.agen, functools.partial(h.agen)], ids=["agen", "partial"])
def test_async_generators_are_refused_with_one_line(func):
    with pytest.raises(HandlerImportError) as info:
        check_handler(func, "app.handlers.x")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("handler 'app.handlers.x' is an async generator")


@pytest.mark.parametrize("func", [h.no_args, h.two_args, lambda a, b, c: None])
def test_handlers_with_the_wrong_arguments_are_refused(func):
    with pytest.raises(HandlerImportError, match="cannot be called with one Delivery") as info:
        check_handler(func, "app.handlers.x")
    assert "\n" not in str(info.value)


class Handles:
    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def __call__(self, delivery: Delivery) -> None:
        self.seen.append(delivery.body)


@pytest.mark.parametrize(
    "func",
    [
        print_delivery,
        h.delivery_with_default,
        h.pika_with_default,
        lambda *args: None,
        Handles(),
        functools.partial(h.two_args, other=1),
        max,  # a builtin without a signature: accepted
    ],
)
def test_usable_handlers_are_accepted(func):
    check_handler(func)
    assert callable(as_handler(func))


def test_pika_callback_with_an_optional_fifth_argument_is_adapted():
    handler = as_handler(h.pika_with_default)
    assert handler.wrapped is h.pika_with_default
    assert as_handler(h.delivery_with_default) is h.delivery_with_default


def test_load_handler_checks_what_it_imports():
    with pytest.raises(
        HandlerImportError, match="'tests.support.refused_handlers.agen' is an async"
    ):
        load_handler("tests.support.refused_handlers.agen")
    assert callable(load_handler("tests.support.refused_handlers.coro"))


def test_system_check_reports_an_async_generator_handler_not_an_async_one(settings):
    from messaging.checks import check_settings

    settings.MESSAGING = {
        **settings.MESSAGING,
        "CONSUMERS": {
            "orders": "tests.support.refused_handlers.agen",
            "ok": "tests.support.handlers.ok",
            "async": "tests.support.refused_handlers.coro",
        },
    }
    (error,) = check_settings()
    assert error.id == "messaging.E006"
    assert error.msg.startswith("MESSAGING['CONSUMERS']['orders']: handler ")
    assert "is an async generator" in error.msg


@pytest.mark.parametrize("name", ["agen", "no_args", "two_args"])
def test_runconsumer_refuses_a_bad_handler_before_consuming(manage, queue_name, name):
    assert manage("send", queue_name, "keep me").returncode == 0
    r = manage(
        "runconsumer", queue_name, "--handler", f"tests.support.refused_handlers.{name}",
        "--max-messages", "1", "--idle-timeout", "5",
    )  # fmt: skip
    stderr = r.stderr.decode()
    assert r.returncode != 0
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "Traceback" not in stderr and "never awaited" not in stderr
    assert f"tests.support.refused_handlers.{name}" in stderr
    expected = "is an async generator" if name == "agen" else "cannot be called with one Delivery"
    assert expected in stderr
    assert not Receipt.objects.filter(queue_name=queue_name).exists()
    assert wait_for(lambda: queue_depth(queue_name) == 1)  # nothing consumed


def test_runconsumer_accepts_the_tutorial_callback_shape(manage, queue_name):
    assert manage("send", queue_name, "hi").returncode == 0
    r = manage(
        "runconsumer", queue_name, "--handler", "tests.support.refused_handlers.pika_with_default",
        "--max-messages", "1", "--idle-timeout", "10",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr.decode()
    assert list(Receipt.objects.values_list("outcome", flat=True)) == ["acked"]


# --------------------------------------------------------------------------- runtime net


def test_awaitable_error_closes_the_coroutine():
    coroutine = h.coro(delivery(b"x"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        error = awaitable_error(coroutine)
        del coroutine
        gc.collect()
    assert isinstance(error, TypeError)
    assert "returned coroutine instead of running" in str(error)
    assert not [w for w in caught if "never awaited" in str(w.message)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("prefetch", [1, 10], ids=["one-by-one", "batch"])
def test_a_handler_returning_a_coroutine_is_never_acked(queue_name, prefetch):
    Queue.objects.create(name=queue_name, max_attempts=2)
    for body in (b"a", b"b", b"c"):
        publish(queue_name, body)
    consumer = Consumer(
        [Queue.objects.get(name=queue_name)],
        {queue_name: as_handler(h.returns_coroutine)},
        prefetch=prefetch,
        batch_size=3 if prefetch > 1 else None,
        max_messages=6,
        idle_timeout=10,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        consumer.run()
        gc.collect()
    receipts = Receipt.objects.filter(queue_name=queue_name)
    assert (
        sorted(receipts.values_list("outcome", flat=True))
        == ["dead_lettered"] * 3 + ["requeued"] * 3
    )
    assert not receipts.filter(outcome="acked").exists()
    assert all("returned coroutine" in e for e in receipts.values_list("error", flat=True))
    assert consumer.stats.acked == 0 and consumer.stats.dead_lettered == 3
    assert wait_for(lambda: queue_depth(f"{queue_name}.dlq") == 3)
    assert queue_depth(queue_name) == 0
    assert not [w for w in caught if "never awaited" in str(w.message)]


# --------------------------------------------------------------------------- default handler


def test_default_handler_prints_small_bodies_as_the_tutorial():
    out = io.StringIO()
    with redirect_stdout(out):
        print_delivery(delivery(b"Hello World!"))
    assert out.getvalue() == " [x] Received b'Hello World!'\n"


def test_default_handler_prints_a_bounded_preview_of_a_big_body():
    body = b"\x00" * (20 * 1024 * 1024)
    out = io.StringIO()
    with redirect_stdout(out):
        print_delivery(delivery(body))
    line = out.getvalue()
    assert line.count("\n") == 1
    assert len(line) < 5 * PREVIEW_BYTES
    assert line.startswith(" [x] Received b'\\x00\\x00")
    assert f"({len(body)} bytes)" in line


def test_a_body_of_exactly_the_preview_size_is_not_cut():
    out = io.StringIO()
    with redirect_stdout(out):
        print_delivery(delivery(b"y" * PREVIEW_BYTES))
    assert out.getvalue() == f" [x] Received {b'y' * PREVIEW_BYTES!r}\n"
