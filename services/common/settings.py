"""Settings shared by every service: each service subclasses ServiceSettings with its env prefix."""

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DATA_DIR = Path(".data")


class ServiceSettings(BaseSettings):
    """What every service needs to know. Safe defaults are for `make run` on one machine."""

    model_config = SettingsConfigDict(extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    database_url: str = ""
    # Tokens are verified against the gateway's public keys, fetched from its JWKS document,
    # or read from a PEM file (tests and air-gapped deployments).
    jwks_url: str = "http://127.0.0.1:8000/.well-known/jwks.json"
    public_key_file: Path | None = None
    jwt_issuer: str = "cwshub"
    jwt_audience: str = "cwshub-api"
    log_level: str = "INFO"
    db_pool_size: int = Field(default=10, ge=1)
    # How long an Idempotency-Key stays reserved by a request that never settles it (a crash):
    # longer than any request runs, short enough that a retry soon works.
    idempotency_reservation_seconds: float = Field(default=60, gt=0)

    def default_sqlite_url(self, name: str) -> str:
        return f"sqlite+aiosqlite:///{DATA_DIR / (name + '.db')}"

    @model_validator(mode="after")
    def _database_required_outside_dev(self) -> "ServiceSettings":
        if self.env == "prod" and not self.database_url:
            raise ValueError("database_url must be set when env=prod")
        return self
