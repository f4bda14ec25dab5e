"""County attributes the office maintains, and the directory's audit log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("county") as batch:
        batch.add_column(sa.Column("cws_configuration", sa.String(16), nullable=True))
        batch.add_column(
            sa.Column("concurrent_lan", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("sbc_in_use", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("vpn_in_use", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("address", sa.String(256), nullable=True))
        batch.add_column(sa.Column("phone", sa.String(32), nullable=True))
        batch.add_column(sa.Column("notes", sa.Text(), nullable=True))
        batch.create_check_constraint(
            "ck_county_cws_configuration",
            "cws_configuration is null or cws_configuration in ('dedicated', 'co_existent')",
        )
        batch.create_check_constraint(
            "ck_county_concurrent_lan_dedicated",
            "not concurrent_lan or "
            "(cws_configuration is not null and cws_configuration = 'dedicated')",
        )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_sub", sa.String(64), nullable=False),
        sa.Column("actor_name", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
    )
    op.create_index("ix_audit_event_occurred_at", "audit_event", ["occurred_at", "id"])
    op.create_index("ix_audit_event_resource", "audit_event", ["resource_type", "resource_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_event_resource", "audit_event")
    op.drop_index("ix_audit_event_occurred_at", "audit_event")
    op.drop_table("audit_event")
    with op.batch_alter_table("county") as batch:
        batch.drop_constraint("ck_county_concurrent_lan_dedicated", type_="check")
        batch.drop_constraint("ck_county_cws_configuration", type_="check")
        for column in (
            "notes",
            "phone",
            "address",
            "vpn_in_use",
            "sbc_in_use",
            "concurrent_lan",
            "cws_configuration",
        ):
            batch.drop_column(column)
