from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DIRECTORY_", extra="ignore")

    # The audience of the gateway's own tokens for internal endpoints (never given to clients).
    internal_audience: str = "cwshub-internal"
    gateway_subject: str = "gateway"

    @model_validator(mode="after")
    def _default_database(self) -> "Settings":
        if not self.database_url:
            self.database_url = self.default_sqlite_url("directory")
        return self
