"""Failed sign-ins with the address each came from: the account lockout counts addresses, so
one stranger guessing from one address cannot lock the owner out.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failure",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "account_id",
            sa.Uuid(),
            sa.ForeignKey("account.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_sign_in_failure_account_id_failed_at", "sign_in_failure", ["account_id", "failed_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_sign_in_failure_account_id_failed_at", "sign_in_failure")
    op.drop_table("sign_in_failure")
