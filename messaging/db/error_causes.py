"""An error's cause: its first line with the values that differ from one failure to the
next folded into placeholders, so one SMTP bounce is one cause whatever the address and
one dead webhook one cause whatever the URL (the failure triage page groups by it).

Pure rules, no database. :func:`cause_of` folds a first line, in this order:

1. URLs (``scheme://…``, up to a space, quote or ``<>``; trailing ``.,;:!?)]}`` are
   left out) → ``<url>``
2. e-mail addresses → ``<email>``
3. paths after a space (``url: /hook/17`` of requests' errors) → ``<path>`` (trailing
   punctuation left out as for URLs)
4. UUIDs (8-4-4-4-12 hex digits) → ``<uuid>``
5. hex: ``0x…``, and runs of 8+ hex digits with at least one digit and one letter
   a–f (hashes, object ids, trace ids) → ``<hex>``
6. numbers, not inside a word (``utf8``, ``sha256``, ``Http404`` stay): an optional
   sign, digits and ``.``/``:``/``,`` separated digit groups (``550``, ``5.1.1``,
   ``10.0.0.1``, ``12:30:01``, ``-3``, ``0.25``) → ``<num>``; what follows stays
   (``30s`` → ``<num>s``)
7. quoted values without spaces (``'k'``, ``"abc"``, ``b'x'``) → ``'<value>'`` (the
   quote kept); a quoted value that is already one placeholder (``'<email>'``) stays
   as it is; quoted text with spaces is kept (it is usually the message itself, e.g. an
   SMTP server's reply), the other rules applied inside it.

The exception class is the first line's head up to ``": "`` when that head is a dotted
name (``KeyError``, ``smtplib.SMTPRecipientsRefused``); it is part of the cause.

:func:`cause_pattern` turns a cause back into an anchored regular expression (portable:
PostgreSQL, SQLite's Python ``REGEXP``, MySQL) that every error whose first line folds
to that cause matches, so the receipt list can be filtered to one cause in SQL.

:func:`stored_cause` is what the consumer writes in ``Receipt.error_cause`` when it
records a failed receipt (and migration 0014 wrote for the receipts before it): the
failure triage page groups by that column and its group links filter on it, so neither
folds errors at read time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: A cause whose first line was cut (longer than the characters read) ends with this.
CUT = "…"
#: Characters of an error's first line folded (a longer one is cut: its cause ends in
#: :data:`CUT`), as the failure triage page read them before the cause was stored.
LINE_CHARS = 1000
#: The longest stored cause (``Receipt.error_cause``'s max_length): a longer one is cut
#: to this many characters, :data:`CUT` last.
CAUSE_CHARS = 500
#: The placeholders, each with the portable regular expression the receipt filter uses
#: for it: a superset of what the rule above folds into it.
PLACEHOLDERS: dict[str, str] = {
    "<url>": r"[A-Za-z][A-Za-z0-9+.-]*://[^ \t'\"<>]*",
    "<email>": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+",
    "<path>": r"/[^ \t'\"<>]*",
    "<uuid>": r"[0-9A-Fa-f-]+",
    "<hex>": r"(0[xX])?[0-9A-Fa-f]+",
    "<num>": r"[-+]?[0-9]+([.:,][0-9]+)*",
    "'<value>'": r"'[^' \t]+'",
    '"<value>"': r'"[^" \t]+"',
}

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_URL_TRAILING = ".,;:!?)]}"
_PATH = re.compile(r"(?:(?<=\s)|^)/[^\s'\"<>]*")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_UUID = re.compile(
    r"(?<![0-9A-Za-z])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12}(?![0-9A-Za-z])"
)
_HEX = re.compile(
    r"(?<![0-9A-Za-z])(?:0[xX][0-9a-fA-F]+"
    r"|(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,})(?![0-9A-Za-z])"
)
_NUMBER = re.compile(r"(?<![A-Za-z0-9.])[-+]?[0-9]+(?:[.:,][0-9]+)*(?![0-9])")
_QUOTED = re.compile(r"'([^'\s]+)'|\"([^\"\s]+)\"")
_EXCEPTION = re.compile(r"([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*): ")
_TOKEN = re.compile("|".join(re.escape(p) for p in sorted(PLACEHOLDERS, key=len, reverse=True)))


@dataclass(frozen=True)
class Cause:
    """``exception`` ("" when the line has no ``Class: `` head) and ``text``, the whole
    folded first line (the exception class included): what failures are grouped by."""

    exception: str
    text: str


def first_line(error: str) -> str:
    """The first line of an error text."""
    return (error or "").split("\n", 1)[0].rstrip("\r")


def exception_of(line: str) -> str:
    """The exception class at the head of a first line ("ValueError: bad" → "ValueError")."""
    match = _EXCEPTION.match(line)
    return match.group(1) if match else ""


def fold(text: str) -> str:
    """``text`` with its variable values folded into placeholders (the rules above)."""
    text = _URL.sub(_url, text)
    text = _EMAIL.sub("<email>", text)
    text = _PATH.sub(_path, text)
    text = _UUID.sub("<uuid>", text)
    text = _HEX.sub("<hex>", text)
    text = _NUMBER.sub("<num>", text)
    return _QUOTED.sub(_quoted, text)


def cause_of(line: str, cut: bool = False) -> Cause:
    """The cause of an error's first line (``cut``: the line was cut short, so the cause
    ends with :data:`CUT` and its pattern matches any longer line)."""
    line = first_line(line)
    exception = exception_of(line)
    text = exception + ": " + fold(line[len(exception) + 2 :]) if exception else fold(line)
    return Cause(exception, text + CUT if cut else text)


def stored_cause(error: str) -> str:
    """What ``Receipt.error_cause`` holds for an error text: "" for no error, else the
    cause's text (:func:`cause_of` of its first :data:`LINE_CHARS` characters), at most
    :data:`CAUSE_CHARS` characters."""
    if not error:
        return ""
    line = first_line(error[: LINE_CHARS + 1])
    text = cause_of(line[:LINE_CHARS], cut=len(line) > LINE_CHARS).text
    if len(text) > CAUSE_CHARS:
        text = text[: CAUSE_CHARS - len(CUT)] + CUT
    return text


def cause_pattern(cause: str) -> str:
    """An anchored regular expression matched by every error text whose first line folds
    to ``cause``: its literal parts escaped (ASCII punctuation only, so PostgreSQL takes
    it too), each placeholder as :data:`PLACEHOLDERS` says; the end anchored to the end
    of the first line unless the cause was cut."""
    cut = cause.endswith(CUT)
    if cut:
        cause = cause[: -len(CUT)]
    parts = ["^"]
    position = 0
    for match in _TOKEN.finditer(cause):
        parts.append(_escape(cause[position : match.start()]))
        parts.append("(" + PLACEHOLDERS[match.group(0)] + ")")
        position = match.end()
    parts.append(_escape(cause[position:]))
    if not cut:
        parts.append("(\n|\r|$)")
    return "".join(parts)


def _url(match: re.Match[str]) -> str:
    url = match.group(0)
    kept = url.rstrip(_URL_TRAILING)
    return "<url>" + url[len(kept) :]


def _path(match: re.Match[str]) -> str:
    path = match.group(0)
    kept = path.rstrip(_URL_TRAILING)
    return "<path>" + path[len(kept) :] if kept else path


def _quoted(match: re.Match[str]) -> str:
    quote = "'" if match.group(1) is not None else '"'
    value = match.group(1) if match.group(1) is not None else match.group(2)
    if value in PLACEHOLDERS:
        return match.group(0)
    return f"{quote}<value>{quote}"


def _escape(text: str) -> str:
    return "".join("\\" + c if c.isascii() and not c.isalnum() else c for c in text)
