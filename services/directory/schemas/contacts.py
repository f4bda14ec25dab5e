"""People and their designations; a region's detail."""

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from services.common.schemas import Patch
from services.directory.schemas.calendars import CommitteeRead
from services.directory.schemas.counties import Fips, Phone, RegionRead
from services.directory.schemas.users import Email

DesignationKind = Literal[
    "spoc",
    "probation_spoc",
    "ssc",
    "bo_admin",
    "state_admin",
    "web_admin",
    "sbc_admin",
    "regional_chair",
    "committee_member",
]


class DesignationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: DesignationKind
    county: str | None = Field(validation_alias="county_fips")
    region_id: uuid.UUID | None
    committee_id: uuid.UUID | None
    is_chair: bool
    counties: list[str] | None = Field(description="An SSC's counties, when not its region's")
    director_letter_on: dt.date | None
    started_on: dt.date
    ended_on: dt.date | None = Field(description="Null while current")


class ContactRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    title: str | None
    email: str | None
    phone: str | None
    personal_phone: str | None = Field(
        description="Only for the office and the contact's own county; null otherwise"
    )
    county: str | None = Field(validation_alias="county_fips", description="Null: the office")
    account_id: uuid.UUID | None
    designations: list[DesignationRead]


LINK = (
    "Their logon account, if any: one you administer (for a county administrator, an account "
    "of its county holding only roles and permissions it could grant)"
)


class ContactCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    title: str | None = Field(default=None, max_length=128)
    email: Email | None = None
    phone: Phone | None = None
    personal_phone: Phone | None = None
    county: Fips | None = Field(default=None, description="Null for office staff")
    account_id: uuid.UUID | None = Field(default=None, description=LINK)

    def fields(self) -> dict[str, Any]:
        data = self.model_dump()
        data["county_fips"] = data.pop("county")
        return data


class ContactUpdate(Patch):
    """Send only the fields to change (a contact's county does not change: add a new one)."""

    nullable = frozenset({"title", "email", "phone", "personal_phone", "account_id"})

    name: str | None = Field(default=None, min_length=1, max_length=128)
    title: str | None = Field(default=None, max_length=128)
    email: Email | None = None
    phone: Phone | None = None
    personal_phone: Phone | None = None
    account_id: uuid.UUID | None = Field(default=None, description=LINK)


class DesignationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: DesignationKind
    region: str | None = Field(default=None, description="ssc, regional_chair: id or code")
    committee_id: uuid.UUID | None = Field(default=None, description="committee_member")
    is_chair: StrictBool = False
    counties: list[Fips] | None = Field(default=None, description="ssc: overrides the region")
    director_letter_on: dt.date | None = Field(default=None, description="state_admin: required")


class ContactSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    email: str | None
    phone: str | None


class RegionDetail(RegionRead):
    """A region with who serves it and when its user group meets."""

    sscs: list[ContactSummary] = Field(description="The office SSCs assigned to the region")
    regional_chair: ContactSummary | None
    user_group: CommitteeRead | None = Field(description="Its regional user group")


__all__ = [
    "DesignationKind",
    "DesignationRead",
    "ContactRead",
    "ContactCreate",
    "ContactUpdate",
    "DesignationCreate",
    "ContactSummary",
    "RegionDetail",
]
