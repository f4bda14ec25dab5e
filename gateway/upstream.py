"""The proxy's connections to the services: HTTP/1.1 over kept-alive connections, replies
parsed by httptools (the parser uvicorn uses for our own requests).

Why not aiohttp's client, as the gateway's other calls use: a relay needs none of what it does
per request (cookies, redirects, tracing, header maps, payload objects), and in a profile of
the gateway under load that work was a third of the gateway's CPU per request. A connection
here does one exchange at a time: write the request, parse the reply as it arrives."""

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httptools

# A request may be sent again on a fresh connection when a kept-alive one turned out closed
# before any reply came (RFC 9112 section 9.3.1): only these, and only with the body in hand.
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE"})
# Under the services' keep-alive (uvicorn closes an idle connection after 5 s): a connection
# idle longer is not reused, so a request is never written to one the service is closing.
IDLE_SECONDS = 4.0
# Reading pauses while this much of a reply waits for a slow client.
BUFFER_BYTES = 256 * 1024

Body = bytes | AsyncIterator[bytes] | None


class UpstreamError(Exception):
    """The service cannot be reached, or broke off (or garbled) its reply."""


class _Closed(UpstreamError):
    """The connection closed with no byte of a reply: on a reused one, safe to try again."""


class Connection(asyncio.Protocol):
    """One connection to a service, and the reply being read on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.reused = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._wakeup: asyncio.Future[None] | None = None
        # One parser for the connection's life: after a reply it expects the next. (A reply
        # to HEAD, which it cannot tell has no body, ends the connection: see `reusable`.)
        self.parser = httptools.HttpResponseParser(self)
        self._new_reply(head=False)

    def _new_reply(self, *, head: bool) -> None:
        self.head_only = head
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.length: int | None = None  # Content-Length, when the reply gives one
        self.chunked = False
        self.keep_alive = False
        self.has_head = False
        self.until_close = False  # the body is framed by the connection's end
        self.complete = False
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.error: UpstreamError | None = None
        self.started = False  # a byte of the reply arrived
        self.writer: asyncio.Task[None] | None = None
        self.body_error: BaseException | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.started = True
        if self.complete:  # nothing may follow a reply on a connection we did not ask again
            self._fail(UpstreamError("the service sent more than its reply"))
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"the service's reply is not HTTP: {exc}"))
            return
        if self.buffered > BUFFER_BYTES and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        if self.has_head and self.until_close:
            self.complete = True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._writable.set()
        if not self.complete and self.error is None:
            closed = _Closed if not self.started else UpstreamError
            self.error = closed("the service closed the connection")
        self._wake()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.complete:  # a second reply in the same bytes: stop the parser here
            raise UpstreamError("the service sent more than its reply")

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length":
            self.length = int(value)  # the parser has checked it is a number
        elif name == b"transfer-encoding":
            self.chunked = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if 100 <= self.status < 200:  # an interim reply: the real one follows
            self.headers, self.length, self.chunked = [], None, False
            return
        self.has_head = True
        if self.head_only:  # a reply to HEAD has no body, though it may announce one
            self.complete = True
        self.until_close = (
            self.length is None and not self.chunked and self.status not in (204, 304)
        )

    def on_body(self, body: bytes) -> None:
        if not self.head_only:
            self.chunks.append(body)
            self.buffered += len(body)

    def on_message_complete(self) -> None:
        if self.status >= 200:
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive()

    # the exchange

    def _fail(self, error: UpstreamError) -> None:
        self.error = error
        if self.transport is not None:
            self.transport.close()
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _wait(self) -> None:
        """Wait for the reply to move on (the caller looks at what came); raise if it cannot."""
        self._raise()
        self._wakeup = asyncio.get_running_loop().create_future()
        try:
            await self._wakeup
        finally:
            self._wakeup = None

    def _raise(self) -> None:
        if self.body_error is not None:  # before the connection's end, which it caused
            raise self.body_error
        if self.error is not None:
            raise self.error

    def _write(self, data: bytes) -> None:
        if self.transport is None:
            raise self.error or _Closed("the service closed the connection")
        self.transport.write(data)

    async def head(self) -> None:
        """Wait for the reply's status and headers."""
        while not self.has_head:
            await self._wait()

    async def whole_body(self) -> bytes:
        while not self.complete:
            await self._wait()
        return b"".join(self.chunks)

    async def body(self) -> AsyncIterator[bytes]:
        """The reply's body as it arrives (reading pauses while too much waits)."""
        while True:
            while self.chunks:
                chunk = self.chunks.popleft()
                self.buffered -= len(chunk)
                yield chunk
            if self.complete:
                return
            if self.transport is not None and self.buffered <= BUFFER_BYTES:
                self.transport.resume_reading()
            await self._wait()

    async def send(
        self,
        method: bytes,
        target: bytes,
        authority: bytes,
        headers: list[tuple[bytes, bytes]],
        body: Body,
    ) -> None:
        """Write the request: the head, and the body with its framing (a length, or chunks).
        A streamed body is written by a task of its own, so that a service answering before
        the body is whole (401 to a caller it refuses) is heard at once."""
        self._new_reply(head=method == b"HEAD")
        lines = [method, b" ", target, b" HTTP/1.1\r\nhost: ", authority]
        for name, value in headers:
            lines += (b"\r\n", name, b": ", value)
        if isinstance(body, bytes):
            lines += (b"\r\ncontent-length: ", b"%d" % len(body), b"\r\n\r\n", body)
        elif body is None:
            if method in (b"POST", b"PUT", b"PATCH"):
                lines.append(b"\r\ncontent-length: 0")
            lines.append(b"\r\n\r\n")
        else:
            lines.append(b"\r\ntransfer-encoding: chunked\r\n\r\n")
            self.writer = asyncio.create_task(self._write_body(body))
        self._write(b"".join(lines))

    async def _write_body(self, body: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in body:
                if chunk:
                    self._write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                    await self._writable.wait()
            self._write(b"0\r\n\r\n")
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the client's side (gone, too large, too slow) or ours
            self.body_error = exc
            self.close()  # the service must not take a body cut short for a whole one
            self._wake()

    def stop_writing(self) -> None:
        """The exchange is over: a body still being written is cut off."""
        if self.writer is not None and not self.writer.done():
            self.writer.cancel()
            self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    @property
    def reusable(self) -> bool:
        return (
            self.complete
            and self.error is None
            and self.transport is not None
            and not self.head_only
            and self.keep_alive
            and (self.writer is None or self.writer.done())
            and self.body_error is None
        )


class Upstream:
    """One service, at `url` (http or https, and a path prefix if it has one): its kept-alive
    connections, at most `limit` busy at once (a request past that waits its turn)."""

    def __init__(self, url: str, *, limit: int, connect_timeout: float, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"a service's URL is http(s)://host[:port], not {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        self.authority = parts.netloc.encode("idna")
        self.prefix = parts.path.rstrip("/").encode()
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._idle: deque[Connection] = deque()
        self._slots = asyncio.Semaphore(limit)

    @asynccontextmanager
    async def request(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: Body
    ) -> AsyncIterator[Connection]:
        """Send a request and read its reply's head; the body is the caller's to read. The
        connection goes back to the pool only if its reply was read whole. The whole exchange,
        reading the body too, and the wait for a free connection before it, is bounded by the
        timeout (TimeoutError): a stalled service answers 504, not a queue that grows."""
        async with asyncio.timeout(self.timeout), self._slots:
            connection = await self._send(method, self.prefix + target, headers, body)
            try:
                yield connection
            except BaseException:
                connection.close()
                raise
            finally:
                connection.stop_writing()
            if connection.reusable:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            else:
                connection.close()

    async def _send(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: Body
    ) -> Connection:
        again = method in IDEMPOTENT and not _streamed(body)
        fresh = False
        while True:
            connection = await self._connection(fresh=fresh)
            try:
                await connection.send(method, target, self.authority, headers, body)
                await connection.head()
                return connection
            except _Closed:
                connection.close()
                if not (again and connection.reused):
                    raise
                again, fresh = False, True
            except BaseException:
                connection.stop_writing()
                connection.close()
                raise

    async def _connection(self, *, fresh: bool) -> Connection:
        now = time.monotonic()
        while self._idle and not fresh:
            connection = self._idle.pop()  # the most recently used: the least likely closed
            if connection.transport is not None and now - connection.idle_since < IDLE_SECONDS:
                connection.reused = True
                return connection
            connection.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await loop.create_connection(
                    Connection,
                    self.host,
                    self.port,
                    ssl=self.tls,
                    server_hostname=self.host if self.tls else None,
                )
        except OSError as exc:
            raise UpstreamError(f"cannot connect: {exc}") from None
        return connection

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


def _streamed(body: Body) -> bool:
    return body is not None and not isinstance(body, bytes)
