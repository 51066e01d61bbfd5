"""What the long-running and the small commands share: argument types, the
"first signal stops, second exits" handling, and verbosity → log level."""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Callable
from datetime import timedelta

from messaging.publishing.retention import parse_age

#: The oldest age ``purgemessages --older-than`` takes.
MAX_AGE = timedelta(days=36500)


#: The largest AMQP short (``basic.qos`` prefetch_count is one).
AMQP_SHORT_MAX = 65535


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def bounded_int(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number in ``low..high`` (no upper bound if None); out
    of range is an argparse error (exit 2) naming the bounds."""

    def parse(text: str) -> int:
        value = _whole_number(text)
        if value < low or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text!r}")
        return value

    parse.__name__ = f"int_{low}_to_{high}"
    return parse


#: argparse type: an integer >= 1.
positive_int = bounded_int(1)
#: argparse type: an integer >= 0.
non_negative_int = bounded_int(0)


def name_text(text: str) -> str:
    """argparse type: a name for a column of 255 characters (a consumer's ``--name``):
    at most 255 characters, no control characters."""
    if len(text) > 255:
        raise argparse.ArgumentTypeError(f"at most 255 characters, got {len(text)}")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise argparse.ArgumentTypeError(f"no control characters (newline, tab...), got {text!r}")
    return text


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def age(text: str) -> timedelta:
    """argparse type: an age such as ``30d``, ``12h``, ``90m``, ``45s``, ``2w``, at most
    :data:`MAX_AGE` (checked here, so a huge one is an argparse error rather than an
    OverflowError)."""
    try:
        value = parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    except OverflowError:
        value = None
    if value is None or value > MAX_AGE:
        raise argparse.ArgumentTypeError(
            f"age {text!r} is too large: at most {MAX_AGE.days}d (100 years)"
        )
    return value


def configure_logging(verbosity: int) -> None:
    """``-v 0`` errors only, ``1`` warnings, ``2`` info, ``3`` debug (logger ``messaging``)."""
    level = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO}.get(verbosity, logging.DEBUG)
    logger = logging.getLogger("messaging")
    logger.setLevel(level)
    if verbosity >= 2 and not logger.handlers and not logging.getLogger().handlers:
        # Nothing configured (Python would print warnings only): show INFO too, e.g.
        # "connected to broker host:5672/vhost" and the reconnects.
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
