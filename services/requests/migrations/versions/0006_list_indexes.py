"""Every list filter and order of GET /api/v1/requests led by an index ending in the cursor's
keys (created or updated, then id): filtered pages and deep cursor pages stay flat from ten
thousand requests to a million (issue 11). (region_id) and (type, state) become the leading
columns of ordered indexes.

Revision ID: 0006_list_indexes
Revises: 0005_county_seen
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006_list_indexes"
down_revision: str | None = "0005_county_seen"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADDED = {
    "ix_request_county_updated": ["county_fips", "updated_at", "id"],
    "ix_request_county_state_created": ["county_fips", "state", "created_at", "id"],
    "ix_request_region_created": ["region_id", "created_at", "id"],
    "ix_request_region_updated": ["region_id", "updated_at", "id"],
    "ix_request_type_state_created": ["type", "state", "created_at", "id"],
    "ix_request_state_created": ["state", "created_at", "id"],
    "ix_request_submitter_created": ["submitter_sub", "created_at", "id"],
    "ix_request_assignee_created": ["assignee_sub", "created_at", "id"],
}
REPLACED = {
    "ix_request_region_id": ["region_id"],
    "ix_request_type_state": ["type", "state"],
}


def upgrade() -> None:
    for name, columns in ADDED.items():
        op.create_index(name, "request", columns)
    for name in REPLACED:
        op.drop_index(name, "request")


def downgrade() -> None:
    for name, columns in REPLACED.items():
        op.create_index(name, "request", columns)
    for name in ADDED:
        op.drop_index(name, "request")
