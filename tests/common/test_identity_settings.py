"""Where a service's own client secret comes from (ServiceSettings.own_client_secret), and what
build_app makes of it (app.state.service_identity). No network: the token is fetched on first
use, which tests/e2e/test_service_identity.py covers against a real gateway and directory."""

import uuid
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from gateway.app import create_app as create_gateway
from gateway.settings import Settings as GatewaySettings
from services.common.app import build_app
from services.common.errors import ServiceUnavailable
from services.common.identity import ServiceIdentity
from services.common.settings import ServiceSettings, dev_client_secret
from services.requests.app import create_app as create_requests
from services.requests.settings import Settings as RequestsSettings

SERVICE_URLS = {"gateway": "http://gateway.test:8000", "directory": "http://directory.test"}


def settings(env: str = "test", **values: object) -> RequestsSettings:
    return RequestsSettings(env=env, database_url="sqlite+aiosqlite://", **values)  # type: ignore[arg-type]


class TestOwnClientSecret:
    def test_given_directly_or_in_a_file_stripped(self, tmp_path: Path) -> None:
        assert settings(client_secret=" s3cret\n").own_client_secret() == SecretStr("s3cret")
        secret_file = tmp_path / "requests.secret"
        secret_file.write_text("from-a-file\n")
        found = settings(env="prod", client_secret_file=secret_file).own_client_secret()
        assert found is not None and found.get_secret_value() == "from-a-file"

    def test_dev_falls_back_to_the_seeds_secret_test_to_none(self) -> None:
        found = settings(env="dev").own_client_secret()
        assert found is not None and found.get_secret_value() == dev_client_secret("requests")
        assert settings().own_client_secret() is None
        assert ServiceSettings(env="dev").own_client_secret() is None  # no service: no name

    @pytest.mark.parametrize(
        ("values", "message"),
        [
            ({}, "REQUESTS_CLIENT_SECRET_FILE is not set"),
            ({"client_secret": "   "}, "REQUESTS_CLIENT_SECRET_FILE is not set"),
            ({"client_secret_file": Path("/nonexistent/requests.secret")}, "cannot read"),
            ({"client_secret": "a", "client_secret_file": Path("x")}, "not both"),
        ],
    )
    def test_production_refuses_without_a_usable_secret(
        self, values: dict[str, object], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message) as refused:
            settings(env="prod", **values).own_client_secret()
        assert "REQUESTS_CLIENT_SECRET" in str(refused.value)
        assert len(str(refused.value).splitlines()) == 1

    def test_an_empty_file_is_refused(self, tmp_path: Path) -> None:
        empty = tmp_path / "empty.secret"
        empty.write_text("\n")
        with pytest.raises(ValueError, match="REQUESTS_CLIENT_SECRET_FILE: .* is empty"):
            settings(client_secret_file=empty).own_client_secret()

    def test_production_settings_load_without_it(self) -> None:
        """The migration job and the bootstrap read these settings and need no identity."""
        assert settings(env="prod").env == "prod"

    def test_the_secret_is_not_shown(self) -> None:
        shown = settings(client_secret="s3cret-value")
        assert "s3cret-value" not in repr(shown) and "s3cret-value" not in str(shown)


class TestAppState:
    async def test_a_registry_service_with_a_secret_has_an_identity(self) -> None:
        app = create_requests(settings(client_secret="s3cret", service_urls=SERVICE_URLS))
        async with app.router.lifespan_context(app):
            identity = app.state.service_identity
            assert isinstance(identity, ServiceIdentity)
            assert identity.client_id == "service.requests"
            assert identity.token_url == "http://gateway.test:8000/auth/token"
            assert "s3cret" not in repr(identity)
            assert isinstance(identity.auth, httpx.Auth)
            assert app.state.directory.identity is identity
        assert app.state.service_identity is None

    async def test_in_test_without_a_secret_there_is_none(self) -> None:
        """...and what needs one says so (nothing is asked with no token at all)."""
        app = create_requests(settings(service_urls=SERVICE_URLS))
        async with app.router.lifespan_context(app):
            assert app.state.service_identity is None
            directory = app.state.directory
            for question in (
                directory.lookup("06067", token=None),
                directory.regions(token=None),
                directory.works_region(str(uuid.uuid4()), uuid.uuid4(), token=None),
            ):
                with pytest.raises(ServiceUnavailable, match="REQUESTS_CLIENT_SECRET_FILE"):
                    await question

    async def test_neither_the_gateway_nor_an_unknown_service_has_one(
        self, key_files: dict[str, Path]
    ) -> None:
        gateway = create_gateway(GatewaySettings(env="test", private_key_file=key_files["private"]))
        kit = build_app(
            name="kit",
            title="kit",
            description="",
            settings=ServiceSettings(env="dev", client_secret=SecretStr("s")),
            routers=[],
            verify_tokens=False,
        )
        for app in (gateway, kit):
            async with app.router.lifespan_context(app):
                assert app.state.service_identity is None

    def test_production_without_a_secret_does_not_build(self) -> None:
        with pytest.raises(ValueError, match="REQUESTS_CLIENT_SECRET_FILE is not set"):
            create_requests(settings(env="prod"))

    def test_tokens_come_from_the_gateway_it_must_know(self) -> None:
        with pytest.raises(ValueError, match="REQUESTS_SERVICE_URLS names no gateway"):
            create_requests(
                settings(client_secret="s", service_urls={"directory": "http://directory.test"})
            )

    def test_a_sync_client_is_refused(self) -> None:
        client = httpx.AsyncClient()  # never opened: the refusal comes first
        identity = ServiceIdentity("http://gateway.test/auth/token", "service.x", "s", client)
        with httpx.Client(auth=identity.auth) as sync, pytest.raises(RuntimeError, match="Async"):
            sync.get("http://nowhere.test/")
