"""The directory's API contract."""

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Fips = Annotated[str, Field(pattern=r"^06\d{3}$", examples=["06067"], description="FIPS code")]


class RegionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str = Field(examples=["bay_area"])
    name: str = Field(examples=["Bay Area"])


class CountyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    fips: str = Field(examples=["06067"])
    name: str = Field(examples=["Sacramento"])
    region: RegionRead


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
