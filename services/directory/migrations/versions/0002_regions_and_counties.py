"""Seed the six regions and the 58 counties from services/directory/data/counties.csv.

Reference data every environment needs; the office edits memberships afterwards, since some
in the seed file are uncertain.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.directory.seed_data import counties, region_id, regions

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

region = sa.table("region", sa.column("id", sa.Uuid()), sa.column("code"), sa.column("name"))
county = sa.table("county", sa.column("fips"), sa.column("name"), sa.column("region_id", sa.Uuid()))


def upgrade() -> None:
    op.bulk_insert(region, [{"id": region_id(c), "code": c, "name": n} for c, n in regions()])
    op.bulk_insert(
        county,
        [{"fips": f, "name": n, "region_id": region_id(code)} for f, n, code in counties()],
    )


def downgrade() -> None:
    op.execute(county.delete())
    op.execute(region.delete())
