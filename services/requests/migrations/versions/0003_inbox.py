"""The inbox: the ids of the events received (county.changed), recorded with their handling.
The table as it was then, spelled out: services.common.inbox has grown since (0004).

Revision ID: 0003_inbox
Revises: 0002_outbox_deliveries
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.common.db import UtcDateTime

revision: str = "0003_inbox"
down_revision: str | None = "0002_outbox_deliveries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbox_event",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(256), nullable=True),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("handled_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_inbox_event_state", "inbox_event", ["state", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_inbox_event_state", "inbox_event")
    op.drop_table("inbox_event")
