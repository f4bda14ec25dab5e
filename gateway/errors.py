"""Token endpoint errors in RFC 6749 form (`error`, `error_description`), carried in the same
problem+json body as every other cwshub error."""

from services.common.errors import DomainError, FieldError


class OAuthError(DomainError):
    slug = "oauth-error"
    title = "The token request was refused"

    def __init__(
        self,
        error: str,
        description: str,
        status: int = 400,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            description,
            errors=[FieldError(field, description)] if field else [],
            headers=headers or {},
            extra={"error": error, "error_description": description},
        )
        self.status = status
        self.headers.setdefault("Cache-Control", "no-store")
