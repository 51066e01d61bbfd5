"""Django's Tasks framework (``django.tasks``, or the ``django-tasks`` backport on
Django 5.2) on RabbitMQ: :class:`RabbitMQBackend`.

Its modules: :mod:`.compat` (which Tasks API), :mod:`.options` (``OPTIONS``),
:mod:`.wire` (the documented message format, pure), :mod:`.enqueue` (the record and the
outbox message, in the caller's transaction), :mod:`.task_queues` (the queues' rows),
:mod:`.results` (rows as ``TaskResult``), :mod:`.resolve` (an import path to a task of
this backend, nothing else), :mod:`.worker` (the handler ``runconsumer --tasks`` runs),
:mod:`.stamps` (what the worker writes outside the task's transaction),
:mod:`.worker_queues` (``--tasks`` expanded) and :mod:`.task_checks`."""

from __future__ import annotations

from .backend import RabbitMQBackend, RabbitMQTask

__all__ = ["RabbitMQBackend", "RabbitMQTask"]
