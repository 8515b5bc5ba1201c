"""The gold-label export formats: one registry, as doccano's `data_export/pipeline/catalog.py`.

The Export model's choices, the API's format field, the admin actions, the exports page and
`manage.py export_gold` all read `EXPORT_FORMATS`; `annotate.gold.write_gold` writes each one.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from django.utils.safestring import SafeString, mark_safe

if TYPE_CHECKING:
    from annotate.gold import GoldOptions

# (chunks from annotate.gold.iter_gold, the binary stream, the options) -> rows written.
GoldWriter = Callable[[Iterable[Any], IO[bytes], "GoldOptions"], int]


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
    # Writes the chunks `annotate.gold.write_gold` hands it, inside one database snapshot.
    write: GoldWriter
    # Whether `export_gold --out -` may stream it (a Parquet file needs a seekable file).
    streams: bool = True
    # Whether the chunks must carry each output's JSON (the JSON Lines record).
    needs_json: bool = False


# The writers live beside their entries, so a new format is one entry and one function here.
# They import annotate.gold lazily: gold reads this registry.


def _write_jsonl(chunks: Iterable[Any], stream: IO[bytes], options: GoldOptions) -> int:
    from annotate.gold import jsonl_lines

    rows = 0
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    try:
        for chunk in chunks:
            lines = jsonl_lines(chunk, options)
            if lines:
                text.write("\n".join(lines) + "\n")
            rows += len(lines)
        text.flush()
    finally:
        text.detach()
    return rows


def _write_arrow(make_writer: Callable[[IO[bytes], Any], Any], *, neutralise: bool) -> GoldWriter:
    def write(chunks: Iterable[Any], stream: IO[bytes], options: GoldOptions) -> int:
        from annotate.gold import chunk_table, gold_schema
        from annotate.spreadsheet import neutralise_table

        schema = gold_schema(options.all_grades)
        writer = make_writer(stream, schema)
        rows = 0
        try:
            for chunk in chunks:
                table = chunk_table(chunk, options, schema)
                writer.write_table(neutralise_table(table) if neutralise else table)
                rows += table.num_rows
        finally:
            writer.close()
        return rows

    return write


def _csv_writer(stream: IO[bytes], schema: Any) -> Any:
    import pyarrow.csv as pa_csv

    return pa_csv.CSVWriter(stream, schema)


def _parquet_writer(stream: IO[bytes], schema: Any) -> Any:
    import pyarrow.parquet as pq

    return pq.ParquetWriter(stream, schema, compression="zstd")


EXPORT_FORMATS: dict[str, ExportFormat] = {
    fmt.key: fmt
    for fmt in (
        ExportFormat(
            "csv", "CSV", mark_safe("one row per output and criterion"),
            "Export gold labels (CSV)", "text/csv", "rows", "rows",
            # CSV is opened in spreadsheets: formulas are neutralised (OWASP).
            write=_write_arrow(_csv_writer, neutralise=True),
        ),
        ExportFormat(
            "jsonl", "JSON Lines",
            mark_safe("one line per output; re-import it with <code>--with-labels</code>"),
            "Export gold labels (JSON Lines, re-importable)", "application/jsonl", "lines",
            "lines (one per output)", write=_write_jsonl, needs_json=True,
        ),
        ExportFormat(
            "parquet", "Parquet", mark_safe("the CSV's rows, typed and compressed"),
            "Export gold labels (Parquet)", "application/vnd.apache.parquet", "rows", "rows",
            # Parquet keeps the exact text.
            write=_write_arrow(_parquet_writer, neutralise=False), streams=False,
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
