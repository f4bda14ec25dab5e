"""Regions, counties and the audit log."""

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from services.common.schemas import Patch

Fips = Annotated[str, Field(pattern=r"^06\d{3}$", examples=["06067"], description="FIPS code")]


class RegionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str = Field(examples=["bay_area"])
    name: str = Field(examples=["Bay Area"])


CwsConfiguration = Literal["dedicated", "co_existent"]


Phone = Annotated[str, Field(max_length=32, pattern=r"^[0-9()+.\- xX]{7,32}$")]


class CountyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    fips: str = Field(examples=["06067"])
    name: str = Field(examples=["Sacramento"])
    region: RegionRead
    cws_configuration: CwsConfiguration | None = Field(
        description="dedicated (closed LAN, state image) or co_existent; null if not recorded"
    )
    concurrent_lan: bool = Field(description="Concurrent LAN offering (dedicated counties only)")
    sbc_in_use: bool
    vpn_in_use: bool
    address: str | None
    phone: str | None
    notes: str | None


class CountyUpdate(Patch):
    """Send only the fields to change. A county administrator may change address and phone."""

    nullable = frozenset({"cws_configuration", "address", "phone", "notes"})

    region: str | None = Field(default=None, description="Region id or code", examples=["bay_area"])
    cws_configuration: CwsConfiguration | None = None
    concurrent_lan: StrictBool | None = None
    sbc_in_use: StrictBool | None = None
    vpn_in_use: StrictBool | None = None
    address: str | None = Field(default=None, max_length=256)
    phone: Phone | None = None
    notes: str | None = Field(default=None, max_length=4000)


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    occurred_at: dt.datetime
    actor_sub: str
    actor_name: str
    action: str = Field(examples=["county.region_changed"])
    resource_type: str = Field(examples=["county"])
    resource_id: str = Field(examples=["06067"])
    changes: dict[str, dict[str, Any]] = Field(
        examples=[{"region_id": {"before": "…", "after": "…"}}]
    )
    request_id: str | None


__all__ = [
    "Fips",
    "RegionRead",
    "CwsConfiguration",
    "Phone",
    "CountyRead",
    "CountyUpdate",
    "AuditEventRead",
]
