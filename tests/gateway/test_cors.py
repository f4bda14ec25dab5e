"""The gateway's CORS (gateway.cors.Cors) answers as Starlette's CORSMiddleware would, with the
gateway's options, on preflights and on other requests, for allowed and refused origins."""

from typing import Any

import pytest
from starlette.middleware.cors import CORSMiddleware

from gateway import cors
from gateway.cors import Cors

FRONTEND = "https://cwshub.example.gov"
OTHER = "https://evil.example.com"

Headers = list[tuple[bytes, bytes]]


def upstream(reply_headers: Headers) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(reply_headers)})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


async def answer(middleware: Any, method: str, headers: dict[str, str]) -> tuple[Any, ...]:
    """Status, headers (lowercased names, in any order) and body."""
    scope = {
        "type": "http",
        "method": method,
        "path": "/api/v1/counties",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return (
        start["status"],
        sorted((name.lower(), value) for name, value in start["headers"]),
        body,
    )


PREFLIGHT = {"Origin": FRONTEND, "Access-Control-Request-Method": "PATCH"}
REQUESTS = {
    "no origin": ("GET", {}),
    "allowed origin": ("GET", {"Origin": FRONTEND}),
    "refused origin": ("GET", {"Origin": OTHER}),
    "post from allowed origin": ("POST", {"Origin": FRONTEND, "Content-Type": "text/plain"}),
    "preflight": ("OPTIONS", PREFLIGHT),
    "preflight, allowed headers": (
        "OPTIONS",
        {**PREFLIGHT, "Access-Control-Request-Headers": "authorization, If-Match,content-type"},
    ),
    "preflight, refused origin": ("OPTIONS", {**PREFLIGHT, "Origin": OTHER}),
    "preflight, refused method": (
        "OPTIONS",
        {**PREFLIGHT, "Access-Control-Request-Method": "TRACE"},
    ),
    "preflight, refused header": (
        "OPTIONS",
        {**PREFLIGHT, "Access-Control-Request-Headers": "authorization, x-user-id"},
    ),
    "preflight, empty header list": (
        "OPTIONS",
        {**PREFLIGHT, "Access-Control-Request-Headers": ""},
    ),
    "preflight, private network": (
        "OPTIONS",
        {**PREFLIGHT, "Access-Control-Request-Private-Network": "true"},
    ),
    "preflight, everything refused": (
        "OPTIONS",
        {
            "Origin": OTHER,
            "Access-Control-Request-Method": "CONNECT",
            "Access-Control-Request-Headers": "x-principal",
        },
    ),
    "options without a request method": ("OPTIONS", {"Origin": FRONTEND}),
    "options without an origin": ("OPTIONS", {"Access-Control-Request-Method": "GET"}),
}
REPLIES = {
    "plain": [(b"content-type", b"application/json")],
    "with vary": [(b"content-type", b"application/json"), (b"vary", b"Accept-Encoding")],
    "with cors of its own": [
        (b"access-control-allow-origin", b"https://elsewhere.example.com"),
        (b"access-control-expose-headers", b"X-Secret"),
    ],
}
ORIGINS = {"the frontend": [FRONTEND], "none": [], "any": ["*"]}


@pytest.mark.parametrize("origins", ORIGINS.values(), ids=ORIGINS.keys())
@pytest.mark.parametrize("reply", REPLIES.values(), ids=REPLIES.keys())
@pytest.mark.parametrize("request_", REQUESTS.values(), ids=REQUESTS.keys())
async def test_answers_as_starlette(
    origins: list[str], reply: Headers, request_: tuple[str, dict[str, str]]
) -> None:
    method, headers = request_
    options: dict[str, Any] = {
        "allow_origins": origins,
        "allow_methods": cors.METHODS,
        "allow_headers": cors.HEADERS,
        "expose_headers": cors.EXPOSED,
        "max_age": cors.MAX_AGE,
    }
    theirs = await answer(CORSMiddleware(upstream(reply), **options), method, headers)
    ours = await answer(Cors(upstream(reply), **options), method, headers)
    assert ours == theirs


async def test_an_allowed_origin_is_named_and_a_refused_one_is_not() -> None:
    """What the comparison rests on, said directly."""
    app = Cors(upstream(REPLIES["plain"]), allow_origins=[FRONTEND])
    _, allowed, _ = await answer(app, "GET", {"Origin": FRONTEND})
    _, refused, _ = await answer(app, "GET", {"Origin": OTHER})
    assert (b"access-control-allow-origin", FRONTEND.encode()) in allowed
    assert all(name != b"access-control-allow-origin" for name, _ in refused)
    status, _, body = await answer(app, "OPTIONS", {**PREFLIGHT, "Origin": OTHER})
    assert (status, body) == (400, b"Disallowed CORS origin")
