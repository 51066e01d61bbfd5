"""Django error reports that never show a URL's password.

Django's own :class:`~django.views.debug.SafeExceptionReporterFilter` hides settings
whose *name* looks secret (``PASSWORD``, ``SECRET_KEY``...), but not the password inside
a URL: ``MESSAGING = {"BROKER_URL": "amqp://user:secret@host/"}``, ``CELERY_BROKER_URL``,
a ``DATABASE_URL`` environment variable in ``request.META`` or a ``url`` local variable of
a traceback frame are shown in clear on the ``DEBUG`` error page and in the e-mails sent
to ``ADMINS``. This filter also replaces the password of every URL-like string with
``***``. Enable it in your settings::

    DEFAULT_EXCEPTION_REPORTER_FILTER = "messaging.debug.SafeExceptionReporterFilter"
"""

from __future__ import annotations

import pprint
from typing import Any

from django.views import debug

from .conf import redact_text, redact_url


def redact_string(value: str) -> str:
    """``value`` with every URL password replaced by ``***``: a URL (or a list of URLs
    in one string) is redacted by :func:`messaging.conf.redact_url`, other text by
    :func:`messaging.conf.redact_text` (so an e-mail address is left alone)."""
    if "://" not in value or "@" not in value:
        return value
    if " " not in value.strip():
        value = redact_url(value)
    return redact_text(value)


class _Redacted:
    """Shown on the error page as ``text`` (a local variable whose representation
    quoted a URL with its password)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class SafeExceptionReporterFilter(debug.SafeExceptionReporterFilter):
    """Django's filter, plus: no URL password in settings (nested dicts and lists
    included), ``request.META`` (the environment under runserver), cookies or traceback
    frame variables."""

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        # Django's version recurses into dicts, lists and tuples through this method,
        # so every string on the way gets here.
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):
            return redact_string(cleansed)
        return cleansed

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        return [
            (name, self.cleanse_variable(value))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]

    def cleanse_variable(self, value: Any) -> Any:
        """A frame variable as the error page may show it: a string redacted; anything
        else whose representation quotes a URL password, replaced by that representation
        redacted."""
        if isinstance(value, str):
            return redact_string(value)
        try:
            text = pprint.pformat(value)
        except Exception:  # noqa: BLE001 - Django's page reports an unprintable value itself
            return value
        redacted = redact_text(text)
        return value if redacted == text else _Redacted(redacted)
