"""The latest county version the requests service has applied, per county: a county.changed
older than it (a dead delivery re-queued after a newer one) moves nothing back.

Revision ID: 0005_county_seen
Revises: 0004_inbox_failed_payload
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.common.db import UtcDateTime

revision: str = "0005_county_seen"
down_revision: str | None = "0004_inbox_failed_payload"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "county_seen",
        sa.Column("fips", sa.String(5), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Uuid(), nullable=False),
        sa.Column("seen_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("county_seen")
