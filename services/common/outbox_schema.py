"""The outbox's tables as migrations made them, frozen: a migration must build the same schema
whatever services.common.outbox looks like today. (A new service's first migration uses
outbox.create_tables: the current shape.)

1. `create_v1`: one row per event, sent to every subscriber at once (attempts, next try and
   last error on the event).
2. `upgrade_to_deliveries`: one delivery row per (event, subscriber); the events not yet
   delivered become pending deliveries for the registry's current subscribers of the service.
   `downgrade_from_deliveries` folds them back: an event is undelivered while any of its
   deliveries is pending or dead."""

import datetime as dt
from typing import Any

import sqlalchemy as sa

from services.common.db import UtcDateTime
from services.common.events import MODELS
from services.common.names import EventType
from services.common.outbox import subscribers_of

EVENT, DELIVERY = "outbox_event", "outbox_delivery"
V1_DUE_INDEX = "ix_outbox_event_due"
V2_INDEXES = {
    "ix_outbox_delivery_due": ["subscriber", "state", "next_attempt_at"],
    "ix_outbox_delivery_order": ["subscriber", "subject", "state", "id"],
    "ix_outbox_delivery_purge": ["state", "delivered_at"],
    "ix_outbox_delivery_event_id": ["event_id"],
}
V1_COLUMNS = ("attempts", "next_attempt_at", "delivered_at", "last_error")
_event = sa.table(
    EVENT,
    sa.column("id", sa.String),
    sa.column("type", sa.String),
    sa.column("subject", sa.String),
    sa.column("time", UtcDateTime),
    sa.column("dataschema", sa.String),
    sa.column("attempts", sa.Integer),
    sa.column("next_attempt_at", UtcDateTime),
    sa.column("delivered_at", UtcDateTime),
    sa.column("last_error", sa.String),
)
_delivery = sa.table(
    DELIVERY,
    sa.column("event_id", sa.String),
    sa.column("subscriber", sa.String),
    sa.column("subject", sa.String),
    sa.column("state", sa.String),
    sa.column("attempts", sa.Integer),
    sa.column("next_attempt_at", UtcDateTime),
    sa.column("last_error", sa.String),
    sa.column("delivered_at", UtcDateTime),
    sa.column("created_at", UtcDateTime),
)


def _v1_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("attempts", sa.Integer(), nullable=True),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.String(512), nullable=True),
    ]


def create_v1(op: Any) -> None:
    op.create_table(
        EVENT,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("time", UtcDateTime(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.String(512), nullable=True),
    )
    op.create_index(V1_DUE_INDEX, EVENT, ["delivered_at", "next_attempt_at"])


def drop_v1(op: Any) -> None:
    op.drop_index(V1_DUE_INDEX, EVENT)
    op.drop_table(EVENT)


def _dataschema(event_type: str) -> str:
    try:
        return MODELS[EventType(event_type)].dataschema()
    except ValueError:  # a type since retired: version 1 is what it was sent as
        return f"urn:cwshub:event:{event_type}:v1"


def upgrade_to_deliveries(op: Any, service: str) -> None:
    bind = op.get_bind()
    waiting = bind.execute(
        sa.select(_event.c.id, _event.c.type, _event.c.subject, _event.c.time)
        .where(_event.c.delivered_at.is_(None))
        .order_by(_event.c.time, _event.c.id)
    ).all()
    op.drop_index(V1_DUE_INDEX, EVENT)
    with op.batch_alter_table(EVENT) as batch:
        batch.add_column(sa.Column("dataschema", sa.String(256), nullable=True))
        for name in V1_COLUMNS:
            batch.drop_column(name)
    for (event_type,) in bind.execute(sa.select(_event.c.type).distinct()).all():
        bind.execute(
            _event.update()
            .where(_event.c.type == event_type)
            .values(dataschema=_dataschema(event_type))
        )
    with op.batch_alter_table(EVENT) as batch:
        batch.alter_column("dataschema", existing_type=sa.String(256), nullable=False)
    op.create_index("ix_outbox_event_time", EVENT, ["time"])
    op.create_table(
        DELIVERY,
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(36), sa.ForeignKey(f"{EVENT}.id"), nullable=False),
        sa.Column("subscriber", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("claimed_until", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'delivered', 'dead')", name="ck_outbox_delivery_state"
        ),
        sqlite_autoincrement=True,
    )
    for name, columns in V2_INDEXES.items():
        op.create_index(name, DELIVERY, columns)
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "event_id": row.id,
            "subscriber": name,
            "subject": row.subject,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": row.time,
        }
        for row in waiting
        for name in subscribers_of(service, row.type)
    ]
    if rows:
        bind.execute(_delivery.insert(), rows)


def downgrade_from_deliveries(op: Any) -> None:
    bind = op.get_bind()
    waiting = bind.execute(
        sa.select(
            _delivery.c.event_id,
            sa.func.max(_delivery.c.attempts).label("attempts"),
            sa.func.min(_delivery.c.next_attempt_at).label("next_attempt_at"),
            sa.func.max(_delivery.c.last_error).label("last_error"),
        )
        .where(_delivery.c.state != "delivered")
        .group_by(_delivery.c.event_id)
    ).all()
    delivered = dict(
        bind.execute(
            sa.select(_delivery.c.event_id, sa.func.max(_delivery.c.delivered_at))
            .where(_delivery.c.state == "delivered")
            .group_by(_delivery.c.event_id)
        ).all()
    )
    for name in V2_INDEXES:
        op.drop_index(name, DELIVERY)
    op.drop_table(DELIVERY)
    op.drop_index("ix_outbox_event_time", EVENT)
    with op.batch_alter_table(EVENT) as batch:
        batch.drop_column("dataschema")
        for column in _v1_columns():
            batch.add_column(column)
    # Every event delivered (when its last delivery was, else when it happened) ...
    bind.execute(
        _event.update().values(
            attempts=0, next_attempt_at=_event.c.time, delivered_at=_event.c.time
        )
    )
    for event_id, when in delivered.items():
        if when is not None:
            bind.execute(_event.update().where(_event.c.id == event_id).values(delivered_at=when))
    # ... but those some subscriber still waits for.
    for row in waiting:
        bind.execute(
            _event.update()
            .where(_event.c.id == row.event_id)
            .values(
                attempts=row.attempts,
                next_attempt_at=row.next_attempt_at,
                delivered_at=None,
                last_error=row.last_error,
            )
        )
    with op.batch_alter_table(EVENT) as batch:
        batch.alter_column("attempts", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("next_attempt_at", existing_type=UtcDateTime(), nullable=False)
    op.create_index(V1_DUE_INDEX, EVENT, ["delivered_at", "next_attempt_at"])
