"""``Receipt.error_cause``: the error's folded first line (messaging.db.error_causes),
written by the consumer with each failed receipt, so the failure triage page groups by a
column and its group links are index lookups (``messaging_rcpt_cause_idx``, partial: only
failed receipts, so the consumer's acked inserts never touch it).

The column is added with a database default of '' (a constant default: no table rewrite
on PostgreSQL 11+), then the receipts that already have an error get their cause, 2,000
at a time in id order, then the index is built (after the backfill: one build, not an
update per row). Reversible: the index and the column are dropped.
"""

from django.db import migrations, models

from messaging.db.failure_counts import fill_error_causes


def backfill(apps, schema_editor):
    receipt = apps.get_model("messaging", "Receipt")
    fill_error_causes(schema_editor.connection, receipt._meta.db_table)


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0013_receipt_error_trigram_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="receipt",
            name="error_cause",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                editable=False,
                help_text=(
                    "The error's first line with numbers, ids, addresses and URLs folded "
                    "(messaging.db.error_causes.stored_cause), written with a failed "
                    "receipt; what the failures page groups by."
                ),
                max_length=500,
                verbose_name="cause",
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="receipt",
            index=models.Index(
                condition=models.Q(("outcome__in", ["requeued", "dead_lettered", "rejected"])),
                fields=["error_cause", "queue_name", "received_at"],
                name="messaging_rcpt_cause_idx",
            ),
        ),
    ]
