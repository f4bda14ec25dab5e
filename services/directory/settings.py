from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.common.names import Role
from services.common.settings import ServiceSettings

PRIVILEGED_ROLES = frozenset({Role.SSC, Role.OFFICE_ADMIN, Role.COUNTY_ADMIN})


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DIRECTORY_", extra="ignore")

    # The audience of the gateway's own tokens for internal endpoints (never given to clients).
    internal_audience: str = "cwshub-internal"
    gateway_subject: str = "gateway"

    # Roles that must sign in with two-factor. Unset: none in dev (the demo logins), the
    # privileged ones everywhere else; prod may add roles, never drop those.
    two_factor_roles: list[str] | None = None
    # The account lockout: this many failures within the window, from at least
    # lockout_sources distinct addresses (one address is throttled at the gateway instead).
    lockout_threshold: int = Field(default=10, ge=1, description="failures before a lockout")
    lockout_sources: int = Field(default=3, ge=1, description="distinct addresses among them")
    lockout_window_minutes: int = Field(default=15, ge=1)
    lockout_minutes: int = Field(default=15, ge=1)
    refresh_token_hours: int = Field(default=8, ge=1, le=24)

    # Hashing: Argon2 computations at once (worker threads), and the HMAC key of API client
    # secrets (at least 32 characters; required outside dev, where a fixed one is used).
    hash_workers: int = Field(default=2, ge=1, le=32)
    client_secret_key: str | None = Field(default=None, min_length=32)

    # Reference data (regions, counties, user groups) is served from memory; a change another
    # replica made is seen after at most this long (this process's own changes at once).
    reference_cache_seconds: float = Field(default=30, ge=0)

    @property
    def client_key(self) -> bytes:
        if self.client_secret_key:
            return self.client_secret_key.encode()
        if self.env == "dev":
            return b"cwshub dev only: the client secret key of make run"
        raise ValueError("DIRECTORY_CLIENT_SECRET_KEY must be set outside dev")

    @property
    def roles_needing_two_factor(self) -> frozenset[str]:
        if self.two_factor_roles is not None:
            return frozenset(self.two_factor_roles)
        return frozenset() if self.env == "dev" else PRIVILEGED_ROLES

    @model_validator(mode="after")
    def _prod_keeps_two_factor(self) -> "Settings":
        missing = PRIVILEGED_ROLES - self.roles_needing_two_factor
        if self.env == "prod" and missing:
            raise ValueError(
                f"DIRECTORY_TWO_FACTOR_ROLES must include {sorted(missing)} when env=prod"
            )
        return self

    @model_validator(mode="after")
    def _default_database(self) -> "Settings":
        if not self.database_url:
            self.database_url = self.default_sqlite_url("directory")
        return self
