"""The outputs search on PostgreSQL (annotate.output_search): a stored tsvector column on
outputs (text and system) and on samples (input, reference and external id), each with a GIN
index. Stored rather than an expression index: a common word matches most rows, the planner
then reads the table instead of the index, and computing to_tsvector for every row took 20 s
on 100,000 outputs (bench/outputs_search.py); reading a stored vector takes milliseconds.

Generated columns written in SQL and left out of the models: PostgreSQL computes them on every
insert and update, so no code writes them, and SQLite (no full text here) never has them.
annotate.output_search.SearchDocument reads them; the sample index serves the search, the output index
serves rare words when the output document is queried on its own."""

from django.db import migrations

DOCUMENTS = [
    ("annotate_output", "COALESCE(text, '') || ' ' || COALESCE(system, '')"),
    ("annotate_sample",
     "COALESCE(input_text, '') || ' ' || COALESCE(reference, '') || ' ' || COALESCE(external_id, '')"),
]


def add_documents(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, document in DOCUMENTS:
        schema_editor.execute(
            f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS search_document tsvector "
            f"GENERATED ALWAYS AS (to_tsvector('english'::regconfig, {document})) STORED"
        )
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {table}_search ON {table} USING gin (search_document)"
        )


def drop_documents(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, _ in DOCUMENTS:
        schema_editor.execute(f"DROP INDEX IF EXISTS {table}_search")
        schema_editor.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS search_document")


class Migration(migrations.Migration):

    dependencies = [
        ("annotate", "0011_bothgoals_goal_balance"),
    ]

    operations = [migrations.RunPython(add_documents, drop_documents, elidable=False)]
