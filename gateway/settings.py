from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.common import registry
from services.common.settings import DATA_DIR, ExplicitEnvironment


def _local_services() -> dict[str, str]:
    """Every registry service's base URL under `make run` (the gateway is not its own upstream)."""
    urls = registry.local_urls()
    return {name: urls[name] for name in registry.names()}


class Settings(ExplicitEnvironment):
    """Gateway settings, from GATEWAY_* environment variables (dicts and lists as JSON)."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    log_level: str = "INFO"

    # Signing. In dev the key pair is generated on first start; elsewhere it must be provided.
    private_key_file: Path = DATA_DIR / "keys" / "gateway-private.pem"
    previous_public_key_files: list[Path] = Field(
        default_factory=list,
        description="Public PEMs of retired signing keys, still published in the JWKS until "
        "the tokens they signed have expired (a rotation's overlap).",
    )
    jwt_issuer: str = "cwshub"
    jwt_audience: str = "cwshub-api"
    internal_audience: str = "cwshub-internal"
    subject: str = "gateway"
    access_token_seconds: int = Field(default=900, ge=60, le=3600)

    # Where things are: service name -> base URL, and resource (first path segment after
    # /api/v1/) -> service name. Both default to the registry (services.common.registry), the
    # one declaration of services: every service on its `make run` port, and its routes.
    services: dict[str, str] = Field(default_factory=_local_services)
    routes: dict[str, str] = Field(default_factory=registry.gateway_routes)
    credentials_service: str = "directory"

    upstream_timeout_seconds: float = 30.0
    upstream_connect_timeout_seconds: float = 3.0
    upstream_pool_size: int = 256  # connections to each service at once
    max_body_bytes: int = 10 * 1024 * 1024
    # As the services' (services.common.settings): a body arrives whole in this time, or 408.
    body_timeout_seconds: float = Field(default=30, gt=0)

    cors_origins: list[str] = Field(default_factory=list)

    # Sign-in throttles. Failed sign-ins count per (username or client id, address) and per
    # address within the window, so a stranger guessing from one address spends only their own
    # budget; the account-wide lockout is the directory's, for failures from many addresses.
    max_failures_per_username: int = Field(
        default=5, ge=1, description="Failures for one username or client from one address."
    )
    max_failures_per_address: int = Field(default=20, ge=1)
    failure_window_seconds: int = Field(default=900, ge=1)
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(
        default_factory=list,
        description="CIDRs of our load balancers: only from these is X-Forwarded-For believed. "
        "Default none: the direct peer is the address.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("GATEWAY_REDIS_URL", "REDIS_URL", "redis_url"),
        description="Shares the counters across gateway replicas; unset: in this process only.",
    )

    @model_validator(mode="after")
    def _routes_name_known_services(self) -> "Settings":
        unknown = sorted({s for s in self.routes.values() if s not in self.services})
        if unknown or self.credentials_service not in self.services:
            raise ValueError(f"routes name services with no URL: {unknown}")
        return self
