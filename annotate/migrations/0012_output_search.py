"""GIN indexes for the outputs search on PostgreSQL (annotate.output_search): one over each
output's text and system, one over each sample's input, reference and external id.

Expression indexes written in SQL, PostgreSQL only: the query must repeat the exact expression
for the planner to use them (annotate.output_search.OutputDocument and SampleDocument;
tests/annotate/test_outputs_pages.py reads the query plan). SQLite has no full text here.
Measured on 100,000 outputs: a search went from 8.6 s (to_tsvector over every row) to
milliseconds (bench/outputs_search.py)."""

from django.db import migrations

INDEXES = [
    ("annotate_output_search", "annotate_output", "COALESCE(text, '') || ' ' || COALESCE(system, '')"),
    ("annotate_sample_search", "annotate_sample",
     "COALESCE(input_text, '') || ' ' || COALESCE(reference, '') || ' ' || COALESCE(external_id, '')"),
]


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table, document in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} "
            f"USING gin (to_tsvector('english'::regconfig, {document}))"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ("annotate", "0011_bothgoals_goal_balance"),
    ]

    operations = [migrations.RunPython(create_indexes, drop_indexes, elidable=False)]
