"""Cursors are opaque but can be forged: what a forged one holds is refused as a bad cursor
(422 naming `cursor`), never passed to the database to fail there."""

import base64
import datetime as dt
import json
import uuid
from typing import Any

import pytest

from services.common.errors import InvalidInput
from services.common.paging import decode_cursor, encode_cursor
from services.directory.models import AuditEvent

ZERO = str(uuid.UUID(int=0))
KEYS = [AuditEvent.occurred_at, AuditEvent.id]


def forged(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


@pytest.mark.parametrize(
    "values",
    [
        ["9999-12-31T23:59:59-14:00", ZERO],  # past year 9999 in UTC
        ["0001-01-01T00:00:00+14:00", ZERO],  # before year 1 in UTC
        ["2026-01-01T00:00:00", ZERO],  # no offset
        [2**63, ZERO],
    ],
)
def test_forged_times_are_bad_cursors(values: list[Any]) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_cursor(forged(values), KEYS)
    assert [e.field for e in caught.value.errors] == ["cursor"]


def test_a_cursor_we_gave_out_reads_back_in_utc() -> None:
    moment = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    back = decode_cursor(encode_cursor([moment, ZERO]), KEYS)
    assert back == [moment, uuid.UUID(ZERO)] and back[0].tzinfo == dt.UTC
