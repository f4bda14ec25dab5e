"""Requests, their history, comments, SCR votes and human numbers; idempotency and outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.common import idempotency, outbox_schema
from services.common.db import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "request",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(24), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("county_fips", sa.String(5), nullable=False),
        sa.Column("region_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("submitter_sub", sa.String(64), nullable=False),
        sa.Column("submitter_name", sa.String(128), nullable=False),
        sa.Column("submitter_kind", sa.String(8), nullable=False),
        sa.Column("assignee_sub", sa.String(64), nullable=True),
        sa.Column("approved_by_sub", sa.String(64), nullable=True),
        sa.Column("open_ticket", sa.String(32), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("number", name="uq_request_number"),
        sa.UniqueConstraint("open_ticket", name="uq_request_open_ticket"),
    )
    op.create_index("ix_request_region_id", "request", ["region_id"])
    op.create_index("ix_request_created", "request", ["created_at", "id"])
    op.create_index("ix_request_updated", "request", ["updated_at", "id"])
    op.create_index("ix_request_county_created", "request", ["county_fips", "created_at", "id"])
    op.create_index("ix_request_type_state", "request", ["type", "state"])

    op.create_table(
        "request_history",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "request_id", sa.Uuid(), sa.ForeignKey("request.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("actor_sub", sa.String(64), nullable=False),
        sa.Column("actor_name", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_state", sa.String(32), nullable=True),
        sa.Column("to_state", sa.String(32), nullable=True),
        sa.Column("field", sa.String(32), nullable=True),
        sa.Column("old_value", sa.JSON(), nullable=True),
        sa.Column("new_value", sa.JSON(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_request_history_request", "request_history", ["request_id", "occurred_at", "id"]
    )

    op.create_table(
        "request_comment",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "request_id", sa.Uuid(), sa.ForeignKey("request.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("author_sub", sa.String(64), nullable=False),
        sa.Column("author_name", sa.String(128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("internal", sa.Boolean(), nullable=False),
    )
    op.create_index(
        "ix_request_comment_request", "request_comment", ["request_id", "created_at", "id"]
    )

    op.create_table(
        "scr_vote",
        sa.Column(
            "request_id", sa.Uuid(), sa.ForeignKey("request.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("region_id", sa.Uuid(), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("meeting_on", sa.Date(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("recorded_by_sub", sa.String(64), nullable=False),
        sa.Column("recorded_by_name", sa.String(128), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", "region_id", name="pk_scr_vote"),
    )

    op.create_table(
        "request_number",
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("type", "year", name="pk_request_number"),
    )

    idempotency.create_table(op)
    outbox_schema.create_v1(op)


def downgrade() -> None:
    outbox_schema.drop_v1(op)
    idempotency.drop_table(op)
    op.drop_table("request_number")
    op.drop_table("scr_vote")
    op.drop_index("ix_request_comment_request", "request_comment")
    op.drop_table("request_comment")
    op.drop_index("ix_request_history_request", "request_history")
    op.drop_table("request_history")
    for index in (
        "ix_request_type_state",
        "ix_request_county_created",
        "ix_request_updated",
        "ix_request_created",
        "ix_request_region_id",
    ):
        op.drop_index(index, "request")
    op.drop_table("request")
