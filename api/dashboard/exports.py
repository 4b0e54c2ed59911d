"""Files the dashboard hands out: the workbench's rows as CSV and XLSX.

CSV is written with a byte-order mark, so that Excel on a Chinese Windows opens it as UTF-8
instead of GBK. XLSX is written by XlsxWriter in constant-memory mode (rows go to disk as they
come, so a 10,000-row export does not build the workbook in memory); a text starting with
``=``, ``+``, ``-`` or ``@`` is written as text, never as a formula, in both files (a customer
name cannot run in a supervisor's spreadsheet).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import xlsxwriter
from flask import Response

from api.dashboard import i18n

Table = tuple[list[str], list[list[Any]]]

COLUMNS = (
    ("id", "case"),
    ("business_key", "business_key"),
    ("customer", "customer"),
    ("team", "team"),
    ("assignee", "assignee_column"),
    ("priority", "priority"),
    ("definition_title", "definition"),
    ("state_title", "state"),
    ("sla_title", "urgent_sla"),
    ("share", "elapsed"),
    ("due_text", "due_in_column"),
    ("reasons", "stuck_reason"),
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def workbench_table(rows: Sequence[dict[str, Any]], lang: str) -> Table:
    """The workbench rows (api/dashboard/workbench.py ``row_view``) as a header and cells."""
    header = [i18n.translate(title, lang) for _, title in COLUMNS]
    cells = []
    for row in rows:
        line = []
        for key, _ in COLUMNS:
            value = row.get(key)
            if key == "reasons":
                value = ", ".join(i18n.pick(i18n.REASONS, r, lang) for r in value or ())
            line.append("" if value is None else value)
        cells.append(line)
    return header, cells


def _as_text(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_bytes(table: Table) -> bytes:
    header, cells = table
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([_as_text(v) for v in line] for line in cells)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def xlsx_bytes(table: Table, *, sheet: str = "svcflow") -> bytes:
    header, cells = table
    out = io.BytesIO()
    book = xlsxwriter.Workbook(
        out, {"in_memory": False, "constant_memory": True, "strings_to_formulas": False}
    )
    bold = book.add_format({"bold": True})
    page = book.add_worksheet(sheet[:31].replace(":", "").replace("/", ""))
    page.write_row(0, 0, header, bold)
    for number, line in enumerate(cells, start=1):
        for column, value in enumerate(line):
            if isinstance(value, int | float) and not isinstance(value, bool):
                page.write_number(number, column, value)
            else:
                page.write_string(number, column, str(value))
    page.freeze_panes(1, 0)
    page.autofilter(0, 0, max(len(cells), 1), len(header) - 1)
    book.close()
    return out.getvalue()


def download(body: bytes, name: str, kind: str) -> Response:
    return Response(
        body,
        mimetype=TYPES[kind],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
