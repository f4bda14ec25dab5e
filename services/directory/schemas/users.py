"""Accounts and API clients."""

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from services.common.names import Role
from services.common.schemas import Patch
from services.directory.schemas.counties import Fips

ToolPermission = Literal["mac", "ddr", "scr", "vpn", "sbc", "relocation", "reports", "linkages"]


UserRole = Literal[Role.COUNTY_USER, Role.COUNTY_ADMIN, Role.SSC, Role.OFFICE_ADMIN]


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
    roles: list[UserRole] = Field(min_length=1, examples=[[Role.COUNTY_USER]])
    perms: list[ToolPermission] = Field(default_factory=list, examples=[["ddr"]])


class UserUpdate(Patch):
    """Send only the fields to change."""

    display_name: str | None = Field(default=None, min_length=1, max_length=128)
    email: Email | None = None
    roles: list[UserRole] | None = Field(default=None, min_length=1)
    perms: list[ToolPermission] | None = None
    active: StrictBool | None = None


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

    client_id: Annotated[
        str,
        Field(
            pattern=r"^[a-z0-9][a-z0-9._-]{2,63}$",
            description="`service.` is reserved: kind service takes `service.<a service of "
            "ours>` and nothing else may start so.",
        ),
    ]
    name: str = Field(min_length=1, max_length=128)
    kind: Literal["helpdesk", "county_system", "service"] = Field(
        description="service: one of our own services (its token says kind service)"
    )
    county: Fips | None = None
    perms: list[ToolPermission] = Field(default_factory=list)


class ApiClientCreated(BaseModel):
    client: ApiClientRead
    client_secret: str = Field(description="Shown once; store it in the client's secret store")


class ClientSecret(BaseModel):
    client_secret: str = Field(description="Shown once; the previous secret stops working")


__all__ = [
    "ToolPermission",
    "UserRole",
    "Username",
    "Email",
    "UserRead",
    "UserCreate",
    "UserUpdate",
    "UserCreated",
    "OneTimePassword",
    "ApiClientRead",
    "ApiClientCreate",
    "ApiClientCreated",
    "ClientSecret",
]
