"""The gateway's internal calls: credentials, two-factor, refresh tokens."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PasswordCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grant: Literal["password"]
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    otp: str | None = Field(default=None, max_length=16)
    source: str | None = Field(
        default=None, max_length=64, description="The address the attempt came from"
    )


class ClientCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grant: Literal["client_credentials"]
    client_id: str = Field(min_length=1, max_length=64)
    client_secret: str = Field(min_length=1, max_length=1024)


class VerifiedClaims(BaseModel):
    """What the gateway puts in the token it issues."""

    sub: str
    kind: Literal["user", "client", "service"]
    name: str
    county: str | None
    region: str | None
    roles: list[str]
    perms: list[str]


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)
    otp: str | None = Field(default=None, max_length=16)
    source: str | None = Field(
        default=None, max_length=64, description="The address the attempt came from"
    )


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
    source: str | None = Field(
        default=None, max_length=64, description="The address the attempt came from"
    )


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


__all__ = [
    "PasswordCredentials",
    "ClientCredentials",
    "VerifiedClaims",
    "PasswordChange",
    "RefreshCredentials",
    "SignedIn",
    "PasswordProof",
    "PasswordAndCode",
    "TwoFactorEnrollment",
    "RecoveryCodes",
    "RefreshTokenBody",
]
