"""The inbox: the ids of the events received (county.changed), recorded with their handling.

Revision ID: 0003_inbox
Revises: 0002_outbox_deliveries
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

from services.common import inbox

revision: str = "0003_inbox"
down_revision: str | None = "0002_outbox_deliveries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    inbox.create_table(op)


def downgrade() -> None:
    inbox.drop_table(op)
