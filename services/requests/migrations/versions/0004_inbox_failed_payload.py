"""A failed inbox event keeps its envelope and data, so that an office admin can have it
handled again (POST /internal/inbox/events/{id}/retry). Handled ones keep none of it.

Revision ID: 0004_inbox_failed_payload
Revises: 0003_inbox
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.common.db import UtcDateTime

revision: str = "0004_inbox_failed_payload"
down_revision: str | None = "0003_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("source", "subject", "dataschema", "event_time", "data")


def upgrade() -> None:
    with op.batch_alter_table("inbox_event") as table:
        table.add_column(sa.Column("source", sa.String(256), nullable=True))
        table.add_column(sa.Column("subject", sa.String(256), nullable=True))
        table.add_column(sa.Column("dataschema", sa.String(256), nullable=True))
        table.add_column(sa.Column("event_time", UtcDateTime(), nullable=True))
        table.add_column(sa.Column("data", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbox_event") as table:
        for column in reversed(COLUMNS):
            table.drop_column(column)
