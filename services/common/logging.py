"""JSON logs, one object per line, with the request id of the request being served.

The event loop never waits for a log line: a record is put on a queue, and a thread formats it
(orjson) and writes it. The loop only notes the request id and, for a failure, the traceback."""

import atexit
import contextvars
import copy
import logging
import logging.handlers
import queue
import sys
import threading
import time
import traceback
from typing import Any

import orjson

request_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "request_context", default=None
)

# Never logged, whatever a caller passes in `extra`.
_SECRET_WORDS = ("password", "secret", "token", "authorization", "otp", "ssn")
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def exception_text(exc_info: Any) -> str:
    """The traceback without what the database said about the values: PostgreSQL's DETAIL
    lines quote the key or the whole failing row (names, e-mail addresses, hashes, DDR text).
    The statement's parameters are never there (the engines hide them)."""
    lines = "".join(traceback.format_exception(*exc_info)).splitlines(keepends=True)
    return "".join(
        "DETAIL: [hidden]\n" if line.lstrip().startswith("DETAIL:") else line for line in lines
    )


def current_request_id() -> str | None:
    context = request_context.get()
    return context["request_id"] if context else None


class JsonFormatter(logging.Formatter):
    converter = staticmethod(time.gmtime)

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "_request_id", None) or current_request_id()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key in _RESERVED or key.startswith("_"):
                continue
            if any(word in key.lower() for word in _SECRET_WORDS):
                value = "[redacted]"
            entry[key] = value
        if record.exc_info:
            entry["exc"] = exception_text(record.exc_info)
        elif getattr(record, "_exc", None):
            entry["exc"] = record.__dict__["_exc"]
        return orjson.dumps(entry, default=str).decode()


# Lines waiting for the writer, at most: past it (stderr stalled) a new line is dropped and
# counted, rather than memory growing without end; the writer says how many it lost.
MAX_QUEUED = 100_000


class _Enqueue(logging.handlers.QueueHandler):
    """Hands a record to the writer thread with what only this thread knows: the request id
    (a context variable) and the traceback (exc_info holds live frames)."""

    dropped = 0  # lines dropped on a full queue, since the process started

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            _Enqueue.dropped += 1

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        record.msg, record.args = record.getMessage(), None
        record._request_id = current_request_id()
        if record.exc_info:
            record._exc, record.exc_info = exception_text(record.exc_info), None
        return record


class _Writer:
    """Formats and writes the queued records in a thread of its own, a batch at a time: it
    wakes every BATCH_SECONDS rather than once per line, so the loop seldom hands it the GIL
    (the gateway's access line cost a third of its CPU per request when written line by
    line)."""

    BATCH_SECONDS = 0.02

    def __init__(self, lines: "queue.Queue[logging.LogRecord]", handler: logging.Handler):
        self.lines, self.handler = lines, handler
        self._dropped_told = _Enqueue.dropped
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="cwshub-log-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write every queued line, then stop."""
        if self._thread is None:
            self._write_queued()
            return
        self._stopping.set()
        self._thread.join()
        self._thread = None

    def _run(self) -> None:
        while not self._stopping.wait(self.BATCH_SECONDS):
            self._write_queued()
        self._write_queued()

    def _write_queued(self) -> None:
        batch: list[str] = []
        while True:
            try:
                record = self.lines.get_nowait()
            except queue.Empty:
                break
            try:
                batch.append(self.handler.format(record))
            except Exception:
                self.handler.handleError(record)
        if (dropped := _Enqueue.dropped) != self._dropped_told:
            lost = dropped - self._dropped_told
            self._dropped_told = dropped
            note = {"msg": "log lines dropped: the writer fell behind", "dropped": lost}
            batch.append(
                self.handler.format(logging.makeLogRecord({**note, "levelname": "WARNING"}))
            )
        if batch:
            stream = self.handler.stream  # type: ignore[attr-defined]
            try:
                stream.write("\n".join(batch) + "\n")
                stream.flush()
            except Exception:  # a closed stderr: nothing better to tell it to
                pass


_writer: _Writer | None = None


def _stop_writer() -> None:
    """Write every queued line, then stop the writer thread."""
    if _writer is not None:
        _writer.stop()


def flush_logs() -> None:
    """Write every queued line now (a service stopping, a test reading what was logged)."""
    _stop_writer()
    if _writer is not None:
        _writer.start()


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every logger (ours, uvicorn's, SQLAlchemy's) through one JSON handler on stderr,
    written by a thread of its own."""
    global _writer
    _stop_writer()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    lines: queue.Queue[logging.LogRecord] = queue.Queue(MAX_QUEUED)
    _writer = _Writer(lines, handler)
    _writer.start()
    # Where a line was logged from, and which thread and process: none is in our lines, and
    # finding the caller walks the stack on every line (the logging HOWTO's "Optimization").
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [_Enqueue(lines)]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True


atexit.register(_stop_writer)
