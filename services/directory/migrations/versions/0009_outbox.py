"""The directory's outbox: events such as county.changed, sent by the relay.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

from services.common import outbox_schema

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_schema.create_v1(op)


def downgrade() -> None:
    outbox_schema.drop_v1(op)
