"""``manage.py send`` refuses bad names and fields in one line before anything is saved
(the validators themselves, the models and publish(): tests/amqp/test_validators.py)."""

from __future__ import annotations

import pytest

from messaging.models import Message, Queue
from tests.support.examples import BAD_QUEUE_NAMES

# --------------------------------------------------------------------------- send


@pytest.mark.parametrize(("name", "expected"), BAD_QUEUE_NAMES)
def test_send_refuses_bad_queue_names(manage, name: str, expected: str) -> None:
    result = manage("send", name, "body")
    assert result.returncode == 1
    err = result.stderr.decode().strip()
    assert len(err.splitlines()) == 1, err
    assert expected in err
    assert not Queue.objects.exists()
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--content-type", "é" * 200], "Content type is 400 bytes"),
        (["--header", "k" * 300 + "=v"], "300 bytes"),
        (["--header", "x-death=1"], "reserved"),
        (["--exchange", " spaced"], "whitespace"),
    ],
)
def test_send_refuses_bad_properties(manage, args: list[str], expected: str) -> None:
    result = manage("send", "valid.queue", "body", *args)
    assert result.returncode == 1
    err = result.stderr.decode().strip()
    assert len(err.splitlines()) == 1, err
    assert expected in err
    assert not Message.objects.exists()
