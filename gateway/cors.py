"""CORS for the browser frontend: the answers of Starlette's CORSMiddleware (without
credentials, origin patterns or private-network access, which the gateway does not allow),
for less work per request: the request's headers are read once, as bytes, and a reply's
headers are only appended to. tests/gateway/test_cors.py compares the two answer for answer."""

from collections.abc import Collection
from typing import Any

SAFELISTED_HEADERS = {"Accept", "Accept-Language", "Content-Language", "Content-Type"}
# What the gateway lets a browser send, and read: versions, where a thing was made, when to
# retry, whether a POST was a replay and which secrets it withheld.
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
HEADERS = (
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    "X-Request-ID",
)
EXPOSED = (
    "ETag",
    "Location",
    "Retry-After",
    "X-Request-ID",
    "Idempotent-Replayed",
    "Secrets-Withheld",
)
MAX_AGE = 600
PREFLIGHT_VARY = (
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, "
    "Access-Control-Request-Private-Network"
)


class Cors:
    """Pure ASGI middleware. A preflight (OPTIONS with Origin and
    Access-Control-Request-Method) is answered here, 200 or 400 naming what is refused; any
    other reply gets Vary: Origin, and, for an allowed origin, the origin and the headers the
    browser may read."""

    def __init__(
        self,
        app: Any,
        *,
        allow_origins: Collection[str],
        allow_methods: Collection[str] = METHODS,
        allow_headers: Collection[str] = HEADERS,
        expose_headers: Collection[str] = EXPOSED,
        max_age: int = MAX_AGE,
    ) -> None:
        if "*" in allow_methods or "*" in allow_headers:
            raise ValueError("name the methods and headers a browser may use")
        self.app = app
        self.any_origin = "*" in allow_origins
        self.origins = frozenset(allow_origins)
        self.methods = frozenset(allow_methods)
        allowed = sorted(SAFELISTED_HEADERS | set(allow_headers))
        self.allowed_headers = frozenset(h.lower() for h in allowed)
        exposed = [(b"access-control-expose-headers", ", ".join(expose_headers).encode())]
        self.exposed = exposed if expose_headers else []
        self.preflight_headers = [
            (b"vary", PREFLIGHT_VARY.encode()),
            *([(b"access-control-allow-origin", b"*")] if self.any_origin else []),
            (b"access-control-allow-methods", ", ".join(allow_methods).encode()),
            (b"access-control-max-age", str(max_age).encode()),
            (b"access-control-allow-headers", ", ".join(allowed).encode()),
        ]

    def allowed(self, origin: bytes) -> bool:
        return self.any_origin or origin.decode("latin-1") in self.origins

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = None
        preflight = scope["method"] == "OPTIONS"
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
                break
        if preflight and origin is not None:
            asked = {}
            for name, value in scope["headers"]:
                if name.startswith(b"access-control-request-") and name not in asked:
                    asked[name] = value.decode("latin-1")
            if b"access-control-request-method" in asked:
                await self._preflight(send, origin, asked)
                return
        if origin is None or not self.allowed(origin):
            extra: list[tuple[bytes, bytes]] = [*self.exposed] if origin is not None else []
        elif self.any_origin:
            extra = [*self.exposed, (b"access-control-allow-origin", b"*")]
        else:
            extra = [*self.exposed, (b"access-control-allow-origin", origin)]

        async def with_cors(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with(message.get("headers", ()), extra)
            await send(message)

        await self.app(scope, receive, with_cors)

    async def _preflight(self, send: Any, origin: bytes, asked: dict[bytes, str]) -> None:
        headers = list(self.preflight_headers)
        failures = []
        if not self.allowed(origin):
            failures.append("origin")
        elif not self.any_origin:
            headers.append((b"access-control-allow-origin", origin))
        if asked[b"access-control-request-method"] not in self.methods:
            failures.append("method")
        requested = asked.get(b"access-control-request-headers")
        if requested is not None and any(
            h.lower().strip() not in self.allowed_headers for h in requested.split(",")
        ):
            failures.append("headers")
        if b"access-control-request-private-network" in asked:
            failures.append("private-network")
        status, body = (400, "Disallowed CORS " + ", ".join(failures)) if failures else (200, "OK")
        headers += [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"text/plain; charset=utf-8"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body.encode()})


def _with(headers: Any, extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The reply's headers with ours in place of any of the same name, and Origin added to its
    Vary: a cache must not give one origin's reply (with or without
    Access-Control-Allow-Origin) to another."""
    ours = {name for name, _ in extra}
    kept, varies = [], []
    for name, value in headers:
        lower = name.lower()
        if lower == b"vary":
            varies.append(value)
        elif lower not in ours:
            kept.append((name, value))
    kept += extra
    kept.append((b"vary", b", ".join([*varies, b"Origin"])))
    return kept
