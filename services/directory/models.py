"""Directory tables."""

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, Uuid, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.common.db import UtcDateTime, utc_now


class DirectoryBase(DeclarativeBase):
    """The directory's own metadata: no other service's tables live here."""


class Region(DirectoryBase):
    """One of the six regions; each has a regional user group and an assigned SSC."""

    __tablename__ = "region"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class County(DirectoryBase):
    """One of the 58 counties, keyed by its FIPS code (06001 Alameda ... 06115 Yuba)."""

    __tablename__ = "county"

    fips: Mapped[str] = mapped_column(String(5), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    region_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("region.id"), index=True)
    # How the county runs CWS/CMS: "dedicated" or "co_existent"; null until the office records it.
    cws_configuration: Mapped[str | None] = mapped_column(String(16))
    concurrent_lan: Mapped[bool] = mapped_column(Boolean, default=False)
    sbc_in_use: Mapped[bool] = mapped_column(Boolean, default=False)
    vpn_in_use: Mapped[bool] = mapped_column(Boolean, default=False)
    address: Mapped[str | None] = mapped_column(String(256))
    phone: Mapped[str | None] = mapped_column(String(32))
    notes: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(
        UtcDateTime, default=utc_now, onupdate=utc_now, server_default=func.now()
    )

    region: Mapped[Region] = relationship(lazy="joined")

    __mapper_args__ = {"version_id_col": version}


class Account(DirectoryBase):
    """A person's logon: roles, tool permissions, argon2id password hash, optional TOTP."""

    __tablename__ = "account"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    email: Mapped[str] = mapped_column(String(254))
    county_fips: Mapped[str | None] = mapped_column(ForeignKey("county.fips"), index=True)
    region_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("region.id"))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    perms: Mapped[list[str]] = mapped_column(JSON, default=list)
    password_hash: Mapped[str] = mapped_column(String(256))
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    # Set by a reset: the one-time password only lets its holder choose a new one.
    must_change_password: Mapped[bool] = mapped_column(default=False)
    # Two-factor: a secret waiting for its first code, and the last TOTP step used (no replays).
    totp_pending_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    # Lockout after repeated failures, lifted by time or by an administrator.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now, onupdate=utc_now)

    __mapper_args__ = {"version_id_col": version}


class ApiClient(DirectoryBase):
    """A system calling the API with client credentials: help desk, county system, service."""

    __tablename__ = "api_client"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(256))
    county_fips: Mapped[str | None] = mapped_column(ForeignKey("county.fips"))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    perms: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)


class AuditEvent(DirectoryBase):
    """Who changed what in the directory, when, and under which request."""

    __tablename__ = "audit_event"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    occurred_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)
    actor_sub: Mapped[str] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(128))


class Committee(DirectoryBase):
    """A committee or user group of the guide; its regular meetings are a calendar series."""

    __tablename__ = "committee"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(48), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    purpose: Mapped[str] = mapped_column(Text, default="")
    cadence: Mapped[str] = mapped_column(String(128), default="")
    region_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("region.id"))


class CalendarEntry(DirectoryBase):
    """An event (meeting, training) or a maintenance window (release, outage, technical change),
    once or recurring by an RFC 5545 rule in its time zone."""

    __tablename__ = "calendar_entry"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    calendar: Mapped[str] = mapped_column(String(16), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    committee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("committee.id"))
    starts_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    timezone: Mapped[str] = mapped_column(String(64), default="America/Los_Angeles")
    rrule: Mapped[str | None] = mapped_column(String(256))
    location: Mapped[str | None] = mapped_column(String(256))
    call_in: Mapped[str | None] = mapped_column(String(256))
    agenda_url: Mapped[str | None] = mapped_column(String(512))
    minutes_url: Mapped[str | None] = mapped_column(String(512))
    affected_counties: Mapped[list[str]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now, onupdate=utc_now)

    committee: Mapped[Committee | None] = relationship(lazy="joined")
    exceptions: Mapped[list["CalendarException"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan"
    )

    __mapper_args__ = {"version_id_col": version}


class CalendarException(DirectoryBase):
    """One occurrence of a series cancelled, or moved to another time."""

    __tablename__ = "calendar_exception"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("calendar_entry.id", ondelete="CASCADE"))
    original_starts_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    cancelled: Mapped[bool] = mapped_column(default=False)
    starts_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    ends_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class CalendarFeed(DirectoryBase):
    """A person's private feed token for the maintenance calendar's .ics (hashed at rest)."""

    __tablename__ = "calendar_feed"

    account_sub: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)


class RecoveryCode(DirectoryBase):
    """A single-use code that stands in for a TOTP code (kept as a SHA-256 digest)."""

    __tablename__ = "recovery_code"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class RefreshToken(DirectoryBase):
    """A rotating refresh token. Tokens descending from one sign-in form a family; a spent one
    presented again revokes the whole family (someone copied it)."""

    __tablename__ = "refresh_token"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)


class SignInFailure(DirectoryBase):
    """A failed sign-in and the address it came from (as the gateway saw it): the lockout
    counts distinct addresses, so one stranger cannot lock the owner out."""

    __tablename__ = "sign_in_failure"
    __table_args__ = (Index("ix_sign_in_failure_account_id_failed_at", "account_id", "failed_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class Contact(DirectoryBase):
    """A person in the directory: of a county, or of the office when county is null."""

    __tablename__ = "contact"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(128))
    title: Mapped[str | None] = mapped_column(String(128))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    # Shown only to the office and to the contact's own county.
    personal_phone: Mapped[str | None] = mapped_column(String(32))
    county_fips: Mapped[str | None] = mapped_column(ForeignKey("county.fips"), index=True)
    account_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now, onupdate=utc_now)

    designations: Mapped[list["Designation"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="Designation.started_on"
    )

    __mapper_args__ = {"version_id_col": version}


class Designation(DirectoryBase):
    """A role a person holds (SPOC, SSC, regional chair...), from a date until ended."""

    __tablename__ = "designation"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    county_fips: Mapped[str | None] = mapped_column(ForeignKey("county.fips"), index=True)
    region_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("region.id"))
    committee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("committee.id"))
    is_chair: Mapped[bool] = mapped_column(default=False)
    # An SSC's counties when they differ from the region's.
    counties: Mapped[list[str] | None] = mapped_column(JSON)
    # A state administrator is listed once the child welfare director's letter arrived.
    director_letter_on: Mapped[dt.date | None] = mapped_column(Date)
    started_on: Mapped[dt.date] = mapped_column(Date)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)
