"""The directory's API contract."""

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

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
    concurrent_lan: bool | None = None
    sbc_in_use: bool | None = None
    vpn_in_use: bool | None = None
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


class PasswordCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grant: Literal["password"]
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    otp: str | None = Field(default=None, max_length=16)


class ClientCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grant: Literal["client_credentials"]
    client_id: str = Field(min_length=1, max_length=64)
    client_secret: str = Field(min_length=1, max_length=1024)


class VerifiedClaims(BaseModel):
    """What the gateway puts in the token it issues."""

    sub: str
    kind: Literal["user", "client"]
    name: str
    county: str | None
    region: str | None
    roles: list[str]
    perms: list[str]


ToolPermission = Literal["mac", "ddr", "scr", "vpn", "sbc", "relocation", "reports", "linkages"]
UserRole = Literal["county_user", "county_admin", "ssc", "office_admin"]
Username = Annotated[
    str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{2,63}$", examples=["sacramento.intake"])
]
Email = Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class UserRead(BaseModel):
    """An account, as its administrators see it. Secrets are never part of it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    display_name: str
    email: str
    county: str | None = Field(validation_alias="county_fips")
    region_id: uuid.UUID | None
    roles: list[str]
    perms: list[str]
    active: bool
    must_change_password: bool
    two_factor_enabled: bool
    locked_until: dt.datetime | None = Field(description="Set while locked after failures")
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, account: Any) -> "UserRead":
        """From an account row: every field by its column, two_factor_enabled from the secret."""
        columns = [
            str(field.validation_alias or name)
            for name, field in cls.model_fields.items()
            if name != "two_factor_enabled"
        ]
        data = {column: getattr(account, column) for column in columns}
        return cls.model_validate({**data, "two_factor_enabled": account.totp_secret is not None})


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    display_name: str = Field(min_length=1, max_length=128)
    email: Email
    county: Fips | None = Field(default=None, description="Defaults to a county admin's own")
    region: str | None = Field(default=None, description="Region id or code; SSCs only")
    roles: list[UserRole] = Field(min_length=1, examples=[["county_user"]])
    perms: list[ToolPermission] = Field(default_factory=list, examples=[["ddr"]])


class UserUpdate(Patch):
    """Send only the fields to change."""

    display_name: str | None = Field(default=None, min_length=1, max_length=128)
    email: Email | None = None
    roles: list[UserRole] | None = Field(default=None, min_length=1)
    perms: list[ToolPermission] | None = None
    active: bool | None = None


class UserCreated(BaseModel):
    user: UserRead
    one_time_password: str = Field(description="Shown once; the user must change it at sign-in")


class OneTimePassword(BaseModel):
    one_time_password: str = Field(description="Shown once; the user must change it at sign-in")


class ApiClientRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    client_id: str
    name: str
    kind: Literal["helpdesk", "county_system", "service"]
    county: str | None = Field(validation_alias="county_fips")
    roles: list[str]
    perms: list[str]
    active: bool
    created_at: dt.datetime


class ApiClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{2,63}$")]
    name: str = Field(min_length=1, max_length=128)
    kind: Literal["helpdesk", "county_system", "service"]
    county: Fips | None = None
    perms: list[ToolPermission] = Field(default_factory=list)


class ApiClientCreated(BaseModel):
    client: ApiClientRead
    client_secret: str = Field(description="Shown once; store it in the client's secret store")


class ClientSecret(BaseModel):
    client_secret: str = Field(description="Shown once; the previous secret stops working")


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)
    otp: str | None = Field(default=None, max_length=16)


Calendar = Literal["events", "maintenance"]
Url = Annotated[str, Field(max_length=512, pattern=r"^https?://")]


class CommitteeRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str = Field(examples=["soc"])
    name: str = Field(examples=["System Oversight Committee"])


class CommitteeRead(CommitteeRef):
    purpose: str
    cadence: str = Field(examples=["Second Wednesday of every month"])
    region_id: uuid.UUID | None


class CalendarEntryFields(BaseModel):
    """What an entry says; times carry an offset, recurrence is an RFC 5545 RRULE evaluated in
    `timezone` (so a 10:00 meeting stays at 10:00 local across daylight saving)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(
        examples=["meeting"],
        description="events: meeting, training, other; maintenance: release, outage, "
        "technical_change",
    )
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=8000)
    committee_id: uuid.UUID | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    timezone: str = Field(default="America/Los_Angeles", max_length=64)
    rrule: str | None = Field(default=None, max_length=256, examples=["FREQ=MONTHLY;BYDAY=+2WE"])
    location: str | None = Field(default=None, max_length=256)
    call_in: str | None = Field(default=None, max_length=256)
    agenda_url: Url | None = None
    minutes_url: Url | None = None
    affected_counties: list[Fips] = Field(
        default_factory=list, description="Maintenance only; empty means all counties"
    )


class CalendarEntryCreate(CalendarEntryFields):
    pass


class CalendarEntryUpdate(Patch):
    """Send only the fields to change."""

    nullable = frozenset(
        {"committee_id", "rrule", "location", "call_in", "agenda_url", "minutes_url"}
    )

    kind: str | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=8000)
    committee_id: uuid.UUID | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    timezone: str | None = Field(default=None, max_length=64)
    rrule: str | None = Field(default=None, max_length=256)
    location: str | None = Field(default=None, max_length=256)
    call_in: str | None = Field(default=None, max_length=256)
    agenda_url: Url | None = None
    minutes_url: Url | None = None
    affected_counties: list[Fips] | None = None


class CalendarEntryRead(CalendarEntryFields):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    calendar: Calendar
    committee: CommitteeRef | None


class OccurrenceRead(BaseModel):
    """One meeting or window on the calendar."""

    entry_id: uuid.UUID
    calendar: Calendar
    kind: str
    title: str
    description: str
    committee: CommitteeRef | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    original_starts_at: dt.datetime = Field(
        description="Where the series put it; use it to cancel or move this occurrence"
    )
    moved: bool
    recurring: bool
    location: str | None
    call_in: str | None
    agenda_url: str | None
    minutes_url: str | None
    affected_counties: list[str]


class Agenda(BaseModel):
    """The occurrences in [from, to), in time order (a range, so no paging)."""

    from_: dt.datetime = Field(alias="from")
    to: dt.datetime
    items: list[OccurrenceRead]

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class OccurrenceChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    original_starts_at: AwareDatetime
    cancelled: bool = False
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None


class FeedToken(BaseModel):
    url: str = Field(description="Your maintenance calendar feed; keep it private")


class RefreshCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grant: Literal["refresh_token"]
    refresh_token: str = Field(min_length=1, max_length=256)


class SignedIn(VerifiedClaims):
    refresh_token: str | None = None


class PasswordProof(BaseModel):
    """Who is asking, proved by password (two-factor is managed by its owner)."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class PasswordAndCode(PasswordProof):
    otp: str = Field(min_length=6, max_length=16)


class TwoFactorEnrollment(BaseModel):
    secret: str = Field(description="For typing in by hand; shown once")
    otpauth_uri: str
    qr_png: str = Field(description="The otpauth URI as a QR code: a PNG data URI")


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="Each works once instead of a code; shown once")


class RefreshTokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=256)


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


class ContactCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    title: str | None = Field(default=None, max_length=128)
    email: Email | None = None
    phone: Phone | None = None
    personal_phone: Phone | None = None
    county: Fips | None = Field(default=None, description="Null for office staff")
    account_id: uuid.UUID | None = Field(default=None, description="Their logon account, if any")

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
    account_id: uuid.UUID | None = None


class DesignationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: DesignationKind
    region: str | None = Field(default=None, description="ssc, regional_chair: id or code")
    committee_id: uuid.UUID | None = Field(default=None, description="committee_member")
    is_chair: bool = False
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
