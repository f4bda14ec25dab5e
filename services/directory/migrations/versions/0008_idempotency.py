"""Idempotency-Key records for the directory's POSTs.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

from services.common.idempotency import table_for_migration

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    name, items = table_for_migration()
    op.create_table(name, *items)
    op.create_index("ix_idempotency_record_created_at", name, ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_record_created_at", "idempotency_record")
    op.drop_table("idempotency_record")
