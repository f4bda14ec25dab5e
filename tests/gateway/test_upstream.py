"""The proxy's connections to a service (gateway.upstream), against a real HTTP peer on a free
port: each test's server says on the wire what a service could say."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.proxy import Proxy
from gateway.upstream import Upstream, UpstreamError

Handler = Callable[["Peer", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Request:
    head: list[bytes]
    body: bytes

    @property
    def line(self) -> bytes:
        return self.head[0]

    def header(self, name: bytes) -> bytes | None:
        for line in self.head[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name:
                return value.strip()
        return None


@dataclass
class Peer:
    url: str = ""
    connections: int = 0
    requests: list[Request] = field(default_factory=list)


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """One request off the wire, its body unframed; None at the connection's end."""
    try:
        head = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")[:-2]
    except asyncio.IncompleteReadError:
        return None
    request = Request(head, b"")
    if request.header(b"transfer-encoding") == b"chunked":
        while size := int((await reader.readline()).strip(), 16):
            request.body += await reader.readexactly(size)
            await reader.readline()
        await reader.readline()
    elif length := request.header(b"content-length"):
        request.body = await reader.readexactly(int(length))
    return request


def reply(body: bytes = b"{}", status: bytes = b"200 OK", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %b\r\ncontent-length: %d\r\n%b\r\n%b" % (status, len(body), extra, body)


async def answering(peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A service that keeps its connections: each request answered with its request line."""
    while (request := await read_request(reader)) is not None:
        peer.requests.append(request)
        writer.write(reply(request.line))
        await writer.drain()


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[Peer]:
    peer = Peer()

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer.connections += 1
        try:
            await handler(peer, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connected, "127.0.0.1", 0)
    peer.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        yield peer


def upstream(peer: Peer, timeout: float = 5.0, path: str = "") -> Upstream:
    return Upstream(peer.url + path, limit=8, connect_timeout=2, timeout=timeout)


async def fetch(
    service: Upstream,
    method: bytes = b"GET",
    target: bytes = b"/api/v1/things",
    body: Any = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> tuple[int, dict[bytes, bytes], bytes]:
    async with service.request(method, target, headers or [], body) as answer:
        chunks = [chunk async for chunk in answer.body()]
        return answer.status, dict(answer.headers), b"".join(chunks)


class TestRequests:
    async def test_the_request_as_written(self) -> None:
        async with serving(answering) as peer:
            service = upstream(peer, path="/behind")
            headers = [(b"authorization", b"Bearer t"), (b"x-request-id", b"abc")]
            await fetch(service, b"POST", b"/api/v1/things?a=1", b'{"x": 1}', headers)
            await fetch(service, b"POST", b"/api/v1/things")
            sent, empty = peer.requests
            assert sent.line == b"POST /behind/api/v1/things?a=1 HTTP/1.1"
            assert sent.header(b"host") == peer.url.removeprefix("http://").encode()
            assert sent.header(b"authorization") == b"Bearer t"
            assert sent.header(b"content-length") == b"8"
            assert sent.body == b'{"x": 1}'
            assert empty.header(b"content-length") == b"0"

    async def test_a_streamed_body_goes_chunked(self) -> None:
        async def parts() -> AsyncIterator[bytes]:
            for part in (b"one,", b"", b"two"):
                yield part

        async with serving(answering) as peer:
            await fetch(upstream(peer), b"PUT", body=parts())
            assert peer.requests[0].header(b"transfer-encoding") == b"chunked"
            assert peer.requests[0].body == b"one,two"


class TestReplies:
    async def test_connections_are_kept_and_reused(self) -> None:
        async with serving(answering) as peer:
            service = upstream(peer)
            for n in range(3):
                status, _, body = await fetch(service, target=b"/n/%d" % n)
                assert (status, body) == (200, b"GET /n/%d HTTP/1.1" % n)
            assert peer.connections == 1

    async def test_a_chunked_reply_in_pieces(self) -> None:
        large = bytes(range(256)) * 4096  # 1 MiB: read as it arrives, not held whole

        async def pieces(peer: Peer, reader: Any, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(b"HTTP/1.1 201 Created\r\nx-thing: yes\r\ntransfer-")
            await asyncio.sleep(0.01)
            writer.write(b"encoding: chunked\r\n\r\n")
            for start in range(0, len(large), 100_000):
                part = large[start : start + 100_000]
                writer.write(b"%x\r\n%b\r\n" % (len(part), part))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await read_request(reader)

        async with serving(pieces) as peer:
            status, headers, body = await fetch(upstream(peer))
        assert (status, headers[b"x-thing"], body) == (201, b"yes", large)

    async def test_a_reply_ended_by_the_connection(self) -> None:
        async def until_close(peer: Peer, reader: Any, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it")
            await writer.drain()

        async with serving(until_close) as peer:
            service = upstream(peer)
            assert (await fetch(service))[2] == b"all of it"
            assert (await fetch(service))[2] == b"all of it"
            assert peer.connections == 2

    async def test_a_reply_to_head_has_no_body(self) -> None:
        async def head(peer: Peer, reader: Any, writer: asyncio.StreamWriter) -> None:
            while await read_request(reader):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")

        async with serving(head) as peer:
            service = upstream(peer)
            assert await fetch(service, b"HEAD") == (200, {b"content-length": b"1000"}, b"")
            assert (await fetch(service, b"HEAD"))[0] == 200
            assert peer.connections == 2  # a connection that answered HEAD is not trusted again

    async def test_an_interim_reply_is_passed_over(self) -> None:
        async def interim(peer: Peer, reader: Any, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" + reply(b"done"))
            await read_request(reader)

        async with serving(interim) as peer:
            status, headers, body = await fetch(upstream(peer))
        assert (status, body, b"link" in headers) == (200, b"done", False)

    async def test_a_garbled_reply_is_an_upstream_error(self) -> None:
        async def garbled(peer: Peer, reader: Any, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(b"SMTP ready\r\n\r\n")
            await read_request(reader)

        async with serving(garbled) as peer:
            with pytest.raises(UpstreamError):
                await fetch(upstream(peer))

    async def test_more_than_the_reply_ends_the_connection(self) -> None:
        async def smuggling(peer: Peer, reader: Any, writer: asyncio.StreamWriter) -> None:
            while await read_request(reader):
                writer.write(reply(b"one") + reply(b"smuggled"))

        async with serving(smuggling) as peer:
            service = upstream(peer)
            assert (await fetch(service))[2] == b"one"
            await asyncio.sleep(0.05)
            assert (await fetch(service))[2] == b"one"  # not the reply meant for nobody
            assert peer.connections == 2


class TestFailures:
    async def test_unreachable(self) -> None:
        async with serving(answering) as peer:
            service = upstream(peer)
        with pytest.raises(UpstreamError):
            await fetch(service)

    async def test_silence_is_a_timeout(self) -> None:
        async def silent(peer: Peer, reader: Any, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            await asyncio.sleep(5)

        async with serving(silent) as peer:
            with pytest.raises(TimeoutError):
                await fetch(upstream(peer, timeout=0.2))

    async def test_waiting_for_a_free_connection_is_within_the_timeout(self) -> None:
        """A service whose connections are all busy: the next request gives up at the timeout
        (the gateway answers 504), rather than queueing for as long as the others take."""
        async with serving(answering) as peer:
            service = Upstream(peer.url, limit=1, connect_timeout=2, timeout=0.3)
            async with service._slots:  # its one connection busy for longer than the timeout
                waiting = asyncio.create_task(fetch(service))
                await asyncio.wait({waiting}, timeout=10)  # a guard, not a measure
                assert waiting.done() and isinstance(waiting.exception(), TimeoutError)
            assert peer.requests == []  # given up on, it is never sent late

    @staticmethod
    async def closes_its_kept_connection(
        peer: Peer, reader: Any, writer: asyncio.StreamWriter
    ) -> None:
        """Answers one request per connection, then takes the next one and closes unanswered
        (a service that closed the idle connection as the request went out)."""
        request = await read_request(reader)
        assert request is not None
        peer.requests.append(request)
        writer.write(reply(request.line))
        await writer.drain()
        request = await read_request(reader)
        if request is not None:
            peer.requests.append(request)

    async def test_a_get_meeting_a_closed_connection_is_sent_again(self) -> None:
        async with serving(self.closes_its_kept_connection) as peer:
            service = upstream(peer)
            await fetch(service)
            status, _, body = await fetch(service, target=b"/again")
            assert (status, body) == (200, b"GET /again HTTP/1.1")
            assert [r.line for r in peer.requests].count(b"GET /again HTTP/1.1") == 2

    async def test_a_post_is_never_sent_twice(self) -> None:
        async with serving(self.closes_its_kept_connection) as peer:
            service = upstream(peer)
            await fetch(service)
            with pytest.raises(UpstreamError):
                await fetch(service, b"POST", b"/once", b"{}")
            assert [r.line for r in peer.requests].count(b"POST /once HTTP/1.1") == 1

    async def test_an_early_answer_is_heard_and_the_body_cut_off(self) -> None:
        stopped = asyncio.Event()

        async def endless() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"x" * 65536
                    await asyncio.sleep(0.001)
            finally:
                stopped.set()

        async def refusing(peer: Peer, reader: Any, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(reply(b"no", b"401 Unauthorized"))
            await writer.drain()
            await asyncio.sleep(1)

        async with serving(refusing) as peer:
            status, _, body = await fetch(upstream(peer), b"POST", body=endless())
            assert (status, body) == (401, b"no")
            await asyncio.wait_for(stopped.wait(), 2)


async def test_a_client_gone_before_its_body_is_whole_sends_nothing() -> None:
    """Through the proxy: a body cut short by the client's going is not relayed as whole."""
    async with serving(answering) as peer:
        state = SimpleNamespace(upstreams={"things": upstream(peer)})
        proxy = Proxy(None, routes={"things": "things"})
        for length in (100, 1024 * 1024):  # read whole, and streamed
            scope = {
                "type": "http",
                "method": "POST",
                "path": "/api/v1/things",
                "raw_path": b"/api/v1/things",
                "query_string": b"",
                "headers": [(b"content-length", str(length).encode())],
                "client": ("127.0.0.1", 5000),
                "app": SimpleNamespace(state=state),
            }
            messages: list[dict[str, Any]] = [
                {"type": "http.request", "body": b"x" * 50, "more_body": True},
                {"type": "http.disconnect"},
            ]

            async def receive(messages: list[dict[str, Any]] = messages) -> dict[str, Any]:
                return messages.pop(0)

            async def send(message: dict[str, Any]) -> None:
                raise AssertionError(f"nobody to answer: {message}")

            await proxy(scope, receive, send)
        await asyncio.sleep(0.1)
        assert peer.requests == []
