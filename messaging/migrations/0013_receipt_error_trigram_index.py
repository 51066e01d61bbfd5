"""The receipt list's error search on PostgreSQL: the ``pg_trgm`` extension and a partial
GIN trigram index on ``UPPER(error)`` of the receipts with error text
(``messaging_rcpt_error_trgm``), which serves the admin's ``UPPER(error) LIKE '%WORD%'``.

Only on PostgreSQL; other databases get nothing (the search scans the rows the other
filters leave). The index is not in the model's ``Meta.indexes`` (a GIN index would
break SQLite), so the migration state does not change.

Where the extension cannot be created (no CREATE privilege on the database, or pg_trgm
not installed on the server), the migration does not fail: it warns, creates no index,
and the search still works, scanning the receipts with error text. Create it later as a
superuser (``CREATE EXTENSION pg_trgm;``) and run ``python manage.py migrate messaging
0012`` then ``migrate`` again, or create the index with the SQL in :data:`CREATE_INDEX`.
"""

import warnings

from django.db import migrations, transaction

INDEX = "messaging_rcpt_error_trgm"
CREATE_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {INDEX} ON messaging_receipt "
    "USING gin (UPPER(error) gin_trgm_ops) WHERE error <> ''"
)


def create_index(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    table = apps.get_model("messaging", "Receipt")._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        if cursor.fetchone() is None:
            try:
                with transaction.atomic(using=connection.alias):
                    cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            except Exception as exc:  # noqa: BLE001 - a missing index must not stop a deploy
                warnings.warn(
                    f"messaging 0013: pg_trgm could not be created ({exc}); the receipt "
                    f"search scans instead of using the index {INDEX}",
                    RuntimeWarning,
                    stacklevel=1,
                )
                return
        cursor.execute(CREATE_INDEX.replace("messaging_receipt", connection.ops.quote_name(table)))


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0012_receipt_one_message_index"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
