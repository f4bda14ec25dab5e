"""The outbox gets a delivery row per (event, subscriber): one subscriber down no longer holds
back the others, and each delivery has its own attempts, state and dead letter. Events not yet
delivered become pending deliveries for the registry's subscribers of the directory.

Revision ID: 0011_outbox_deliveries
Revises: 0010
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

from services.common import outbox_schema

revision: str = "0011_outbox_deliveries"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_schema.upgrade_to_deliveries(op, "directory")


def downgrade() -> None:
    outbox_schema.downgrade_from_deliveries(op)
