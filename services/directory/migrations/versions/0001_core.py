"""Core directory tables: regions, counties, accounts, API clients.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "region",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("code", sa.String(32), nullable=False, unique=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
    )
    op.create_table(
        "county",
        sa.Column("fips", sa.String(5), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("region_id", sa.Uuid(), sa.ForeignKey("region.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("ix_county_region_id", "county", ["region_id"])
    op.create_table(
        "account",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("county_fips", sa.String(5), sa.ForeignKey("county.fips"), nullable=True),
        sa.Column("region_id", sa.Uuid(), sa.ForeignKey("region.id"), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("perms", sa.JSON(), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("totp_secret", sa.String(64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_account_county_fips", "account", ["county_fips"])
    op.create_table(
        "api_client",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(256), nullable=False),
        sa.Column("county_fips", sa.String(5), sa.ForeignKey("county.fips"), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("perms", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind in ('helpdesk', 'county_system', 'service')", name="ck_api_client_kind"
        ),
    )


def downgrade() -> None:
    op.drop_table("api_client")
    op.drop_index("ix_account_county_fips", "account")
    op.drop_table("account")
    op.drop_index("ix_county_region_id", "county")
    op.drop_table("county")
    op.drop_table("region")
