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


class _Enqueue(logging.handlers.QueueHandler):
    """Hands a record to the writer thread with what only this thread knows: the request id
    (a context variable) and the traceback (exc_info holds live frames)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        record.msg, record.args = record.getMessage(), None
        record._request_id = current_request_id()
        if record.exc_info:
            record._exc, record.exc_info = exception_text(record.exc_info), None
        return record


_writer: logging.handlers.QueueListener | None = None


def _stop_writer() -> None:
    """Write every queued line, then stop the writer thread."""
    if _writer is not None and _writer._thread is not None:
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
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _writer = logging.handlers.QueueListener(lines, handler)
    _writer.start()
    root = logging.getLogger()
    root.handlers[:] = [_Enqueue(lines)]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True


atexit.register(_stop_writer)
