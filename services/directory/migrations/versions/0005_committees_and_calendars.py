"""Committees and the two calendars (events, maintenance), with the guide's meeting series.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

import datetime as dt
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.directory.committees_seed import COMMITTEES, first_meeting_utc, regional_user_group
from services.directory.seed_data import region_id, regions

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAMESPACE = uuid.UUID("0b5e3c55-7e9f-4f0e-8d1e-3f1f3b0c9a77")


def upgrade() -> None:
    # Calendar actions ("calendar_entry.occurrence_cancelled") outgrow 32 characters.
    with op.batch_alter_table("audit_event") as batch:
        batch.alter_column("action", type_=sa.String(64), existing_type=sa.String(32))
    committee = op.create_table(
        "committee",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("code", sa.String(48), nullable=False, unique=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("cadence", sa.String(128), nullable=False),
        sa.Column("region_id", sa.Uuid(), sa.ForeignKey("region.id"), nullable=True),
    )
    entry = op.create_table(
        "calendar_entry",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("calendar", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("committee_id", sa.Uuid(), sa.ForeignKey("committee.id"), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("rrule", sa.String(256), nullable=True),
        sa.Column("location", sa.String(256), nullable=True),
        sa.Column("call_in", sa.String(256), nullable=True),
        sa.Column("agenda_url", sa.String(512), nullable=True),
        sa.Column("minutes_url", sa.String(512), nullable=True),
        sa.Column("affected_counties", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "calendar in ('events', 'maintenance')", name="ck_calendar_entry_calendar"
        ),
        sa.CheckConstraint("ends_at > starts_at", name="ck_calendar_entry_ends_after_start"),
    )
    op.create_index("ix_calendar_entry_calendar", "calendar_entry", ["calendar"])
    op.create_table(
        "calendar_exception",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "entry_id",
            sa.Uuid(),
            sa.ForeignKey("calendar_entry.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("original_starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint(
            "entry_id", "original_starts_at", name="uq_calendar_exception_occurrence"
        ),
    )
    op.create_table(
        "calendar_feed",
        sa.Column("account_sub", sa.String(64), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )

    committees, entries = [], []
    for code, name, purpose, cadence, series in COMMITTEES:
        cid = uuid.uuid5(_NAMESPACE, f"committee:{code}")
        committees.append(
            {
                "id": cid,
                "code": code,
                "name": name,
                "purpose": purpose,
                "cadence": cadence,
                "region_id": None,
            }
        )
        if series:
            local_start, minutes, rule = series
            starts, ends = first_meeting_utc(local_start, minutes)
            entries.append(
                {
                    "id": uuid.uuid5(_NAMESPACE, f"series:{code}"),
                    "calendar": "events",
                    "kind": "meeting",
                    "title": name,
                    "description": cadence,
                    "committee_id": cid,
                    "starts_at": starts,
                    "ends_at": ends,
                    "timezone": "America/Los_Angeles",
                    "rrule": rule,
                    "affected_counties": [],
                }
            )
    for code, region_name in regions():
        rug_code, name, purpose, cadence = regional_user_group(code, region_name)
        committees.append(
            {
                "id": uuid.uuid5(_NAMESPACE, f"committee:{rug_code}"),
                "code": rug_code,
                "name": name,
                "purpose": purpose,
                "cadence": cadence,
                "region_id": region_id(code),
            }
        )
    op.bulk_insert(committee, committees)
    seeded = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    op.bulk_insert(entry, [{**e, "created_at": seeded, "updated_at": seeded} for e in entries])


def downgrade() -> None:
    op.drop_table("calendar_feed")
    op.drop_table("calendar_exception")
    op.drop_index("ix_calendar_entry_calendar", "calendar_entry")
    op.drop_table("calendar_entry")
    op.drop_table("committee")
    with op.batch_alter_table("audit_event") as batch:
        batch.alter_column("action", type_=sa.String(32), existing_type=sa.String(64))
