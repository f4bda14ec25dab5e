"""A tiny upstream for proxy tests: it answers with what it received."""

import asyncio
import hashlib

import orjson


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    path = scope["path"]
    print(f"received {len(body)} bytes for {path}", flush=True)  # what a cut stream delivered
    status = 200
    if path.endswith("/slow"):
        await asyncio.sleep(30)  # well past the gateway's upstream timeout
    if "/status/" in path:
        status = int(path.rsplit("/", 1)[1])
    reply = orjson.dumps(
        {
            "method": scope["method"],
            "path": path,
            "raw_path": scope["raw_path"].decode(),
            "query": scope["query_string"].decode(),
            "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
            "body_length": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "body": body[:200].decode("latin-1"),
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"x-echo", b"yes"),
                (b"connection", b"keep-alive"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": reply})
