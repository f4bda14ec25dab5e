"""CSV that a spreadsheet opens as data, never as formulas: the one way every service writes
CSV (exports, reports). A cell that begins with =, +, -, @, tab or carriage return is read by
Excel, LibreOffice and Google Sheets as a formula (`=HYPERLINK(...)`, DDE), so it gets a
leading apostrophe, which spreadsheets show as text (OWASP's CSV injection advice). A phone
number like +1 916... then reads '+1 916...: data stays readable, nothing runs."""

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """One value as a cell: None is empty, a formula-like start is neutralised."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A whole CSV document (header row first), every cell passed through `cell`."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([cell(h) for h in header])
    writer.writerows([cell(v) for v in row] for row in rows)
    return out.getvalue()
