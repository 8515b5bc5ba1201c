"""The export-format registry: every place that offers a format reads EXPORT_FORMATS."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from annotate.admin_actions import GOLD_EXPORT_ACTIONS
from annotate.api.views_review import ExportRequestSerializer
from annotate.export_formats import EXPORT_FORMATS, export_format_choices
from annotate.gold import FORMATS
from annotate.models import Export


def test_the_registry_holds_the_three_formats_in_order():
    assert export_format_choices() == [("csv", "CSV"), ("jsonl", "JSON Lines"), ("parquet", "Parquet")]
    assert FORMATS == ("csv", "jsonl", "parquet")
    assert [fmt.unit for fmt in EXPORT_FORMATS.values()] == ["rows", "lines", "rows"]
    assert [fmt.streams for fmt in EXPORT_FORMATS.values()] == [True, True, False]
    assert [fmt.media_type for fmt in EXPORT_FORMATS.values()] == [
        "text/csv", "application/jsonl", "application/vnd.apache.parquet"]


def test_model_api_and_admin_read_the_registry():
    field = Export._meta.get_field("format")
    # The field records the callable, so a new format needs no migration.
    assert field.deconstruct()[3]["choices"] is export_format_choices
    assert list(field.choices) == export_format_choices()
    assert list(ExportRequestSerializer().fields["format"].choices) == list(EXPORT_FORMATS)
    assert [(a.__name__, a.short_description) for a in GOLD_EXPORT_ACTIONS] == [
        ("export_gold_csv", "Export gold labels (CSV)"),
        ("export_gold_jsonl", "Export gold labels (JSON Lines, re-importable)"),
        ("export_gold_parquet", "Export gold labels (Parquet)"),
    ]


@pytest.mark.django_db
def test_the_exports_page_offers_each_format_with_its_description(client, project, owner):
    client.force_login(owner)

    page = client.get(reverse("exports", args=[project.slug])).content.decode()

    for fmt in EXPORT_FORMATS.values():
        assert f'name="format" value="{fmt.key}"' in page
        assert f"<span>{fmt.label}<span class=\"option-help\">{fmt.description}</span></span>" in page
    assert "re-import it with <code>--with-labels</code>" in page


@pytest.mark.django_db
def test_export_gold_refuses_a_format_that_cannot_stream(project):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="Parquet cannot go to stdout"):
        call_command("export_gold", project.slug, "--format", "parquet", "--out", "-")
    with pytest.raises(CommandError, match="invalid choice: 'xlsx'"):
        call_command("export_gold", project.slug, "--format", "xlsx")
