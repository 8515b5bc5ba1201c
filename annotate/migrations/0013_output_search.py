"""The outputs search on PostgreSQL (annotate.output_search): a stored tsvector column on
outputs (text and system) and on samples (input, reference and external id, GIN-indexed).
Stored rather than expression indexes: a common word matches most rows, the planner then reads
the table instead of the index, and computing to_tsvector for every row took 20 s on 100,000
outputs (bench/outputs_search.py); reading stored vectors takes milliseconds. The search reads
each output's own vector on the row (an OR with the sample subquery rules out an index there),
so outputs get no GIN index, which would only slow imports down.

Generated columns written in SQL and left out of the models: PostgreSQL computes them on every
insert and update, so no code writes them, and SQLite (no full text here) never has them.
annotate.output_search.SearchDocument reads them."""

from django.db import migrations

# table, document, whether the column gets a GIN index
DOCUMENTS = [
    ("annotate_output", "COALESCE(text, '') || ' ' || COALESCE(system, '')", False),
    ("annotate_sample",
     "COALESCE(input_text, '') || ' ' || COALESCE(reference, '') || ' ' || COALESCE(external_id, '')", True),
]


def add_documents(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, document, indexed in DOCUMENTS:
        schema_editor.execute(
            f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS search_document tsvector "
            f"GENERATED ALWAYS AS (to_tsvector('english'::regconfig, {document})) STORED"
        )
        if indexed:
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {table}_search ON {table} USING gin (search_document)"
            )


def drop_documents(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, _, _ in DOCUMENTS:
        schema_editor.execute(f"DROP INDEX IF EXISTS {table}_search")
        schema_editor.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS search_document")


class Migration(migrations.Migration):

    dependencies = [
        ("annotate", "0012_queue_controls"),
    ]

    operations = [migrations.RunPython(add_documents, drop_documents, elidable=False)]
