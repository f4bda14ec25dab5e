"""The directory's outbox: events such as county.changed, sent by the relay.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

from services.common.outbox import table_for_migration

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    name, columns = table_for_migration()
    op.create_table(name, *columns)
    op.create_index("ix_outbox_event_due", name, ["delivered_at", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_event_due", "outbox_event")
    op.drop_table("outbox_event")
