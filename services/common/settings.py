"""Settings shared by every service: each service subclasses ServiceSettings with its env prefix."""

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common import registry

DATA_DIR = Path(".data")
Environment = Literal["dev", "test", "prod"]


class ExplicitEnvironment(BaseSettings):
    """`env` has no default: a deployment that forgot it must not quietly run as dev (demo
    seeding, no two-factor, a key generated per pod). `make run` and the tests set it."""

    # No default: the validator below refuses a missing env (a default here is for type
    # checkers, which cannot see that settings also come from the environment).
    env: Environment = Field(default=None, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _env_is_set(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("env"):
            name = f"{cls.model_config.get('env_prefix', '')}ENV".upper()
            raise ValueError(
                f"{name} is not set: set it to prod for a deployment (dev or test on a "
                "developer's machine)"
            )
        return data


def dev_client_secret(service: str) -> str:
    """The secret of a service's API client under `make run` and in tests: the seed gives the
    client this secret, and a service in dev uses it when none is set. Never valid in prod."""
    return f"dev-only-client-secret-{service}"


def given_client_secret(
    prefix: str, secret: SecretStr | str | None, secret_file: Path | str | None
) -> SecretStr | None:
    """What <PREFIX>CLIENT_SECRET or <PREFIX>CLIENT_SECRET_FILE holds (whitespace stripped), or
    None when neither is set: read the same way by the service that signs in with it and by
    the directory's bootstrap, which gives the service's client that secret. ValueError (one
    line naming the setting, never the secret) for both set, an unreadable or an empty file."""
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    given = (secret or "").strip()
    if given and secret_file:
        raise ValueError(f"set {prefix}CLIENT_SECRET or {prefix}CLIENT_SECRET_FILE, not both")
    if secret_file:
        path = Path(secret_file)
        try:
            given = path.read_text().strip()
        except (OSError, UnicodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise ValueError(f"{prefix}CLIENT_SECRET_FILE: cannot read {path} ({reason})") from None
        if not given:
            raise ValueError(f"{prefix}CLIENT_SECRET_FILE: {path} is empty")
    return SecretStr(given) if given else None


def one_line(exc: ValidationError) -> str:
    """A settings error as one line naming what to set, for start-up messages."""
    reasons = []
    for error in exc.errors():
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        where = ".".join(str(part) for part in error.get("loc", ()))
        reasons.append(f"{where}: {message}" if where else message)
    return "; ".join(reasons)


class ServiceSettings(ExplicitEnvironment):
    """What every service needs to know. Other defaults are for `make run` on one machine."""

    model_config = SettingsConfigDict(extra="ignore")

    database_url: str = ""
    # Tokens are verified against the gateway's public keys, fetched from its JWKS document,
    # or read from a PEM file (tests and air-gapped deployments).
    jwks_url: str = "http://127.0.0.1:8000/.well-known/jwks.json"
    public_key_file: Path | None = None
    # The JWKS is fetched again this often (a retired key is forgotten within it), and at
    # most this often when a token names a kid we do not know.
    jwks_refresh_seconds: float = Field(default=300.0, ge=0, le=3600)
    jwks_min_refresh_seconds: float = Field(default=10.0, ge=0, le=300)
    # Clock skew allowed between the gateway and a service for exp, iat and nbf.
    token_leeway_seconds: int = Field(default=30, ge=0, le=300)
    jwt_issuer: str = "cwshub"
    jwt_audience: str = "cwshub-api"
    log_level: str = "INFO"
    db_pool_size: int = Field(default=10, ge=1)
    # Bodies are JSON documents a person types: 1 MiB is ample, and bounds what a request holds.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    # A body must arrive whole within this time: a client that sends a few bytes and stops
    # (slowloris) would otherwise hold its connection and its coroutine for ever.
    body_timeout_seconds: float = Field(default=30, gt=0)
    # How long an Idempotency-Key stays reserved by a request that never settles it (a crash):
    # longer than any request runs, short enough that a retry soon works.
    idempotency_reservation_seconds: float = Field(default=60, gt=0)

    # Where every process listens (the gateway included): name -> base URL. Events go to a
    # subscriber's /internal/events there; the gateway's /auth/token gives the service's token.
    service_urls: dict[str, str] = Field(default_factory=registry.local_urls)
    # This service's own API client (`service.<name>`, kind service): its secret, given
    # directly or (better, in production) as a file. Background work calls other services with
    # the token it gets; calls made for a user keep the user's token.
    client_secret: SecretStr | None = None
    client_secret_file: Path | None = None

    # The outbox relay: a delivery (one event to one subscriber) is dead after this many
    # attempts or this age, whichever comes first; delivered rows go after the retention.
    outbox_max_attempts: int = Field(default=12, ge=1)
    outbox_max_age_seconds: float = Field(default=24 * 3600, gt=0)
    outbox_retention_seconds: float = Field(default=7 * 24 * 3600, gt=0)
    # How long a relay owns a delivery it is sending: a relay that dies mid-send leaves it to
    # another (or to itself, restarted) after this. Longer than a send may take (10 s).
    outbox_lease_seconds: float = Field(default=60, ge=15)
    # Whether this process runs the relay (a service that publishes events to subscribers).
    # Off: deliveries wait for another replica's relay (and tests drive a relay themselves).
    outbox_relay: bool = True
    # The inbox: a handler that raises is answered 503 (send again) this many times, then the
    # event is recorded as failed and acknowledged, so it does not hold back the stream.
    inbox_max_attempts: int = Field(default=5, ge=1)
    # Handled events' ids are purged after this; failed ones stay until an operator deals
    # with them. An id must be remembered as long as its event may be delivered again, so
    # this must be longer than the sender's outbox_max_age_seconds (one value for every
    # service: set it alike everywhere). The relay's last try may come a backoff (at most
    # five minutes) after that age: the defaults leave six days to spare.
    inbox_retention_seconds: float = Field(default=7 * 24 * 3600, gt=0)

    @classmethod
    def service_name(cls) -> str:
        """directory, requests ...: the env prefix without its underscore, lower case."""
        return str(cls.model_config.get("env_prefix", "")).rstrip("_").lower()

    def own_client_secret(self) -> SecretStr | None:
        """The secret of this service's API client, read now (a service asks once, at start):
        client_secret, or the content of client_secret_file (whitespace stripped). In dev with
        neither, the seed's dev secret; in test, None (no identity: what needs one says so).

        Production without one refuses, naming the file setting. That is checked here, when a
        service starts, not by a validator: the migration job and the bootstrap read the same
        settings and need no identity (the bootstrap is what makes the secrets)."""
        prefix = str(self.model_config.get("env_prefix", "")).upper()
        given = given_client_secret(prefix, self.client_secret, self.client_secret_file)
        if given is not None:
            return given
        if self.env == "dev" and self.service_name():
            return SecretStr(dev_client_secret(self.service_name()))
        if self.env == "prod":
            raise ValueError(
                f"{prefix}CLIENT_SECRET_FILE is not set: in prod a service signs in as its own "
                "API client (python -m services.directory.bootstrap makes the secrets)"
            )
        return None

    def default_sqlite_url(self, name: str) -> str:
        return f"sqlite+aiosqlite:///{DATA_DIR / (name + '.db')}"

    @model_validator(mode="after")
    def _inbox_outlives_deliveries(self) -> "ServiceSettings":
        if self.inbox_retention_seconds <= self.outbox_max_age_seconds:
            prefix = str(self.model_config.get("env_prefix", "")).upper()
            raise ValueError(
                f"{prefix}INBOX_RETENTION_SECONDS ({self.inbox_retention_seconds:g}) must be "
                f"longer than {prefix}OUTBOX_MAX_AGE_SECONDS ({self.outbox_max_age_seconds:g}): "
                "an event's id is kept as long as the event may be delivered again"
            )
        return self

    @model_validator(mode="after")
    def _database_required_outside_dev(self) -> "ServiceSettings":
        if self.env == "prod" and not self.database_url:
            prefix = str(self.model_config.get("env_prefix", "")).upper()
            raise ValueError(f"set {prefix}DATABASE_URL: env=prod has no default database")
        return self
