"""JSON logs, one object per line, with the request id of the request being served."""

import contextvars
import logging
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
        request_id = current_request_id()
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
        return orjson.dumps(entry, default=str).decode()


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every logger (ours, uvicorn's, SQLAlchemy's) through one JSON handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
