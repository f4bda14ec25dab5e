"""Requests tables."""

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.db import UtcDateTime, utc_now


class RequestsBase(DeclarativeBase):
    """The requests service's own metadata: no other service's tables live here."""


class Request(RequestsBase):
    """A county's request to the office (MAC, relocation, DDR, SCR, SBC), with its state."""

    __tablename__ = "request"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    type: Mapped[str] = mapped_column(String(16))
    county_fips: Mapped[str] = mapped_column(String(5))
    # The county's region when filed (kept current by the directory's county.changed events):
    # an SSC works the requests of its region.
    region_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(32))
    submitter_sub: Mapped[str] = mapped_column(String(64))
    submitter_name: Mapped[str] = mapped_column(String(128))
    submitter_kind: Mapped[str] = mapped_column(String(8))
    assignee_sub: Mapped[str | None] = mapped_column(String(64))
    # Who approved a DDR: the one who completes it must be someone else (two-person rule).
    approved_by_sub: Mapped[str | None] = mapped_column(String(64))
    # A DDR's help desk ticket while the DDR is open: one ticket backs one open DDR.
    open_ticket: Mapped[str | None] = mapped_column(String(32), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now, onupdate=utc_now)

    __mapper_args__ = {"version_id_col": version}
    # Every list's tenancy, filter and order is led by an index that ends in the list's order
    # (created or updated, then id, the cursor's keys), so a filtered page and a page deep in
    # the cursor chain stay as cheap with a million requests as with a thousand. A filter not
    # led here (type alone, the text search) walks an order's index and keeps what matches.
    __table_args__ = (
        Index("ix_request_created", "created_at", "id"),
        Index("ix_request_updated", "updated_at", "id"),
        Index("ix_request_county_created", "county_fips", "created_at", "id"),
        Index("ix_request_county_updated", "county_fips", "updated_at", "id"),
        Index("ix_request_county_state_created", "county_fips", "state", "created_at", "id"),
        Index("ix_request_region_created", "region_id", "created_at", "id"),
        Index("ix_request_region_updated", "region_id", "updated_at", "id"),
        Index("ix_request_type_state_created", "type", "state", "created_at", "id"),
        Index("ix_request_state_created", "state", "created_at", "id"),
        Index("ix_request_submitter_created", "submitter_sub", "created_at", "id"),
        Index("ix_request_assignee_created", "assignee_sub", "created_at", "id"),
    )


class RequestHistory(RequestsBase):
    """One step in a request's life: its filing, a transition, a field change or a vote."""

    __tablename__ = "request_history"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("request.id", ondelete="CASCADE"))
    occurred_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)
    actor_sub: Mapped[str] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str | None] = mapped_column(String(32))
    field: Mapped[str | None] = mapped_column(String(32))
    old_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_request_history_request", "request_id", "occurred_at", "id"),)


class RequestComment(RequestsBase):
    """A comment; `internal` ones are for the office's eyes only."""

    __tablename__ = "request_comment"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("request.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)
    author_sub: Mapped[str] = mapped_column(String(64))
    author_name: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_request_comment_request", "request_id", "created_at", "id"),)


class ScrVote(RequestsBase):
    """A region's decision on an SCR, taken at its regional user group meeting."""

    __tablename__ = "scr_vote"

    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("request.id", ondelete="CASCADE"), primary_key=True
    )
    region_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    decision: Mapped[str] = mapped_column(String(8))
    meeting_on: Mapped[dt.date | None] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(Text)
    recorded_by_sub: Mapped[str] = mapped_column(String(64))
    recorded_by_name: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)


class RequestNumber(RequestsBase):
    """The last human number given per type and year: MAC-2026-000041 was the 41st MAC."""

    __tablename__ = "request_number"

    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class CountySeen(RequestsBase):
    """The latest version of a county's row in the directory that this service has applied
    (services.requests.county_moves): an older county.changed, arriving late, is ignored."""

    __tablename__ = "county_seen"

    fips: Mapped[str] = mapped_column(String(5), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    region_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
