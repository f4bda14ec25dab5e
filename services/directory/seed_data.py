"""The regions and counties seed file, read in one place."""

import csv
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

SEED_FILE = Path(__file__).parent / "data" / "counties.csv"
# Region ids are stable across environments: derived from the region's code.
_NAMESPACE = uuid.UUID("6f1c1f8e-5d0e-4c53-9c9a-0c2b1f7f3a10")


def region_code(name: str) -> str:
    """'Bay Area' -> 'bay_area'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def region_id(code: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"region:{code}")


def _rows() -> list[dict[str, str]]:
    with SEED_FILE.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def regions() -> list[tuple[str, str]]:
    """(code, name) for each region, in first-seen order."""
    seen: dict[str, str] = {}
    for row in _rows():
        seen.setdefault(region_code(row["region"]), row["region"])
    return list(seen.items())


def counties() -> Iterator[tuple[str, str, str]]:
    """(fips, name, region code) for each county."""
    for row in _rows():
        yield row["fips"], row["name"], region_code(row["region"])
