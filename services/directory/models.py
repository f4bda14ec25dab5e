"""Directory tables."""

import datetime as dt
import uuid

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Uuid, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class DirectoryBase(DeclarativeBase):
    """The directory's own metadata: no other service's tables live here."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_now, onupdate=_now, server_default=func.now()
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
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_now, onupdate=_now
    )


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
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
