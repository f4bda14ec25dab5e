from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REQUESTS_", extra="ignore")

    # The directory (service_urls["directory"]) answers which region a county is in and how
    # it runs CWS/CMS; its answers are kept this long.
    county_cache_seconds: float = Field(default=60.0, ge=0)
    # An SCR passes the regions when this many of the six approve (a majority by default).
    scr_approvals_needed: int = Field(default=4, ge=1, le=6)

    @model_validator(mode="after")
    def _directory_known(self) -> "Settings":
        if "directory" not in self.service_urls:
            raise ValueError("REQUESTS_SERVICE_URLS must name the directory")
        return self

    @model_validator(mode="after")
    def _default_database(self) -> "Settings":
        if not self.database_url:
            self.database_url = self.default_sqlite_url("requests")
        return self
