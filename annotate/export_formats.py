"""The gold-label export formats: one registry, as doccano's `data_export/pipeline/catalog.py`.

The Export model's choices, the API's format field, the admin actions, the exports page and
`manage.py export_gold` all read `EXPORT_FORMATS`; `annotate.gold.write_gold` writes each one.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.safestring import SafeString, mark_safe


@dataclass(frozen=True)
class ExportFormat:
    key: str  # the file extension, stored on the Export row
    label: str
    # What the exports page says about it (HTML written here, never from input).
    description: SafeString
    admin_action: str
    # The download's Content-Type. Named here, not guessed from the file name: mimetypes reads
    # the host's /etc/mime.types, so the same download would answer differently on another
    # machine than its schema says.
    media_type: str
    # What write_gold's count counts, and how the command reports it.
    unit: str
    unit_long: str
    # Whether `export_gold --out -` may stream it (a Parquet file needs a seekable file).
    streams: bool = True


EXPORT_FORMATS: dict[str, ExportFormat] = {
    fmt.key: fmt
    for fmt in (
        ExportFormat(
            "csv", "CSV", mark_safe("one row per output and criterion"),
            "Export gold labels (CSV)", "text/csv", "rows", "rows",
        ),
        ExportFormat(
            "jsonl", "JSON Lines",
            mark_safe("one line per output; re-import it with <code>--with-labels</code>"),
            "Export gold labels (JSON Lines, re-importable)", "application/jsonl", "lines",
            "lines (one per output)",
        ),
        ExportFormat(
            "parquet", "Parquet", mark_safe("the CSV's rows, typed and compressed"),
            "Export gold labels (Parquet)", "application/vnd.apache.parquet", "rows", "rows",
            streams=False,
        ),
    )
}


def export_format_choices() -> list[tuple[str, str]]:
    """The model field's choices, as a callable: migrations record the callable, not the list,
    so a new format needs no migration."""
    return [(fmt.key, fmt.label) for fmt in EXPORT_FORMATS.values()]


def unknown_format_message(fmt: str) -> str:
    *first, last = EXPORT_FORMATS
    return f"Unknown format '{fmt}'; use {', '.join(first)} or {last}."
