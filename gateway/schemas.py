from typing import Literal

from pydantic import BaseModel, Field


class TokenReply(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the token expires", examples=[900])
    refresh_token: str | None = Field(
        default=None,
        description="Password and refresh grants only (a system asks again with its client "
        "credentials): one use; trade it for the next access token (grant_type=refresh_token) "
        "until 8 hours after sign-in",
    )


class Jwk(BaseModel):
    kty: str
    kid: str
    use: str
    alg: str
    n: str
    e: str


class Jwks(BaseModel):
    keys: list[Jwk]
