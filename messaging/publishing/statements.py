"""The two statements the publishing path runs most, built by hand instead of by the
ORM: the INSERT of a new ``Message`` row (:func:`insert_message`, on the request
thread, once per ``publish()``) and the outcome UPDATE (:func:`update_by_message_id`,
on the publisher thread, once per batch). The ORM's query building (the compiler,
lookups, expressions) costs more Python than the statement itself, holding the GIL
the other threads need. Same rows and values (each converted by its field for the
database, as the ORM does), in the caller's transaction or in autocommit as the ORM
would; on Django's cursors (query logging and ``execute_wrapper`` hooks see them),
except on PostgreSQL while nothing watches them (:func:`_server_side_binding`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connections, models, router, transaction
from django.db.models import Field
from django.db.models.signals import post_save, pre_save

from ..models import Message

#: Per database alias: the INSERT's SQL, the fields it writes in order, and whether it
#: returns the new primary key (else the driver's last insert id gives it).
_INSERTS: dict[str, tuple[str, list[Field], bool]] = {}


def _field(name: str) -> Field:
    field = Message._meta.get_field(name)
    assert isinstance(field, Field)
    return field


def plain_insert(message: Message) -> bool:
    """May ``message`` be written by :func:`insert_message`: a new row with no primary
    key yet, the rows it refers to (queue, user) saved, and nothing hooked on saving a Message (a
    ``pre_save``/``post_save`` receiver, an overridden ``save()``)?"""
    return (
        message.pk is None
        and (message.queue_id is not None or message.queue is None)
        and (message.published_by_id is not None or message.published_by is None)
        and type(message).save is models.Model.save
        and not pre_save.has_listeners(Message)
        and not post_save.has_listeners(Message)
    )


def insert_message(message: Message) -> None:
    """``message.save()`` for a new row (see :func:`plain_insert`; any other is saved by
    the ORM): one INSERT, ``created_at`` and the primary key set on the object."""
    if not plain_insert(message):
        message.save()
        return
    alias = router.db_for_write(Message, instance=message)
    connection = connections[alias]
    sql, fields, returning = _insert(alias)
    params = [field.get_db_prep_save(field.pre_save(message, True), connection) for field in fields]
    with transaction.mark_for_rollback_on_error(alias):
        if returning and _server_side_binding(connection):
            message.pk = _insert_bound(connection, sql, params)
        else:
            message.pk = _insert_on_django_cursor(connection, sql, params, returning)
    message._state.adding = False
    message._state.db = alias


def _insert_on_django_cursor(connection: Any, sql: str, params: list[Any], returning: bool) -> Any:
    """The INSERT on one of Django's cursors; the new primary key."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if returning:
            row = cursor.fetchone()
            assert row is not None
            return row[0]
        return connection.ops.last_insert_id(
            cursor, Message._meta.db_table, Message._meta.pk.column
        )


def _server_side_binding(connection: Any) -> bool:
    """Send the statement on a psycopg 3 cursor of its own (:func:`_bound_cursor`):
    server-side binding, prepared when ``OPTIONS["prepare_threshold"]`` allows (as
    :mod:`messaging.db`'s receipt INSERT), about a third less Python than Django's
    client-side-binding cursor, which quotes every value into the SQL text. Only on
    PostgreSQL with psycopg 3, and only while nothing watches Django's cursors
    (``DEBUG`` query logging, Django's test query capture, an ``execute_wrapper`` such
    as a tracing hook): they still see it."""
    if connection.vendor != "postgresql" or connection.queries_logged:
        return False
    if connection.execute_wrappers:
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return bool(is_psycopg3)


@contextmanager
def _bound_cursor(connection: Any) -> Iterator[Any]:
    """A server-side-binding psycopg cursor on ``connection``, with the checks and the
    error translation of Django's cursors."""
    import psycopg

    connection.ensure_connection()
    connection.validate_thread_sharing()
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def _insert_bound(connection: Any, sql: str, params: list[Any]) -> Any:
    """The INSERT … RETURNING on a server-side-binding cursor; the new primary key."""
    with _bound_cursor(connection) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assert row is not None
    return row[0]


def _insert(alias: str) -> tuple[str, list[Field], bool]:
    found = _INSERTS.get(alias)
    if found is None:
        connection = connections[alias]
        meta = Message._meta
        fields = [f for f in meta.local_concrete_fields if not f.primary_key and not f.generated]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(column_of(f)) for f in fields)
        marks = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({marks})"
        returning = bool(connection.features.can_return_columns_from_insert)
        if returning:  # by hand: Django renamed its helpers for this in 6.0
            sql = f"{sql} RETURNING {quote(meta.db_table)}.{quote(column_of(meta.pk))}"
        found = _INSERTS[alias] = (sql, fields, returning)
    return found


def column_of(field: Field) -> str:
    """A concrete field's column (typed ``str | None`` by django-stubs)."""
    return str(field.column)


def update_by_message_id(
    message_ids: Sequence[str], changes: Mapping[str, Any], *, add_attempt: bool = True
) -> int:
    """``UPDATE`` the rows of ``message_ids``: each field of ``changes`` (name → value)
    set, and ``attempts`` one more (``add_attempt``). Returns the rows changed."""
    if not message_ids:
        return 0
    alias = router.db_for_write(Message)
    connection = connections[alias]
    quote = connection.ops.quote_name
    assignments, params = [], []
    for name, value in changes.items():
        field = _field(name)
        assignments.append(f"{quote(column_of(field))} = %s")
        params.append(field.get_db_prep_save(value, connection))
    if add_attempt:
        attempts = quote(column_of(_field("attempts")))
        assignments.append(f"{attempts} = {attempts} + 1")
    head = f"UPDATE {quote(Message._meta.db_table)} SET {', '.join(assignments)} WHERE "
    column = quote(column_of(_field("message_id")))
    if _server_side_binding(connection):  # one statement text whatever the count
        with _bound_cursor(connection) as cursor:
            cursor.execute(f"{head}{column} = ANY(%s)", [*params, list(message_ids)])
            return int(cursor.rowcount)
    marks = ", ".join(["%s"] * len(message_ids))
    with connection.cursor() as cursor:
        cursor.execute(f"{head}{column} IN ({marks})", [*params, *message_ids])
        return int(cursor.rowcount)
