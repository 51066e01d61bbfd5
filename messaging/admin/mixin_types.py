"""The bases the admin's mixins have for a type checker: the ``ModelAdmin`` each is mixed
into, with what it calls on it. At run time they are ``object``: the MRO is unchanged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from django.contrib.admin import ModelAdmin
    from django.http import HttpRequest

    from .feedback import PublishFeedback
    from .live_changelist import LiveStateAdmin

    class AdminMixin(ModelAdmin[Any]):
        """A mixin of any ``ModelAdmin``."""

    class MessageAdminMixin(PublishFeedback):
        """A mixin of ``MessageAdmin`` (its ``PublishFeedback`` and permissions)."""

        has_publish_permission: Callable[[HttpRequest], bool]

    class QueueAdminMixin(LiveStateAdmin):
        """A mixin of ``QueueAdmin`` (its columns and permissions)."""

        on_broker: Callable[[Any], str]
        has_purge_permission: Callable[[HttpRequest], bool]
        has_publish_permission: Callable[[HttpRequest], bool]

else:
    AdminMixin = MessageAdminMixin = QueueAdminMixin = object
