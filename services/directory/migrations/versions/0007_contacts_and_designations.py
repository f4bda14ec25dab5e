"""Contacts and their designations (SPOC, SSC, administrators, regional chair, members).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = (
    "spoc",
    "probation_spoc",
    "ssc",
    "bo_admin",
    "state_admin",
    "web_admin",
    "sbc_admin",
    "regional_chair",
    "committee_member",
)


def upgrade() -> None:
    op.create_table(
        "contact",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("title", sa.String(128), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("personal_phone", sa.String(32), nullable=True),
        sa.Column("county_fips", sa.String(5), sa.ForeignKey("county.fips"), nullable=True),
        sa.Column("account_id", sa.Uuid(), sa.ForeignKey("account.id"), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_contact_county_fips", "contact", ["county_fips"])
    op.create_table(
        "designation",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "contact_id",
            sa.Uuid(),
            sa.ForeignKey("contact.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("county_fips", sa.String(5), sa.ForeignKey("county.fips"), nullable=True),
        sa.Column("region_id", sa.Uuid(), sa.ForeignKey("region.id"), nullable=True),
        sa.Column("committee_id", sa.Uuid(), sa.ForeignKey("committee.id"), nullable=True),
        sa.Column("is_chair", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("counties", sa.JSON(), nullable=True),
        sa.Column("director_letter_on", sa.Date(), nullable=True),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "kind in (" + ", ".join(f"'{k}'" for k in KINDS) + ")", name="ck_designation_kind"
        ),
    )
    op.create_index("ix_designation_kind", "designation", ["kind"])
    op.create_index("ix_designation_county_fips", "designation", ["county_fips"])


def downgrade() -> None:
    op.drop_index("ix_designation_county_fips", "designation")
    op.drop_index("ix_designation_kind", "designation")
    op.drop_table("designation")
    op.drop_index("ix_contact_county_fips", "contact")
    op.drop_table("contact")
