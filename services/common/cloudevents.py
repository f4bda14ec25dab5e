"""Reading a CloudEvent as the outbox relay sends it (HTTP binary content mode: the attributes
as ce-* headers, the data as the JSON body; services.common.outbox_relay.headers_for writes
them), for the inbox. Each header and each field of the data is checked and named when wrong
(422), since a sender's bug must be found from the reply."""

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from services.common.errors import FieldError, InvalidInput
from services.common.events import MODELS, Event
from services.common.names import EventType

SPECVERSION = "1.0"
MAX_ID, MAX_TEXT = 128, 256


def _missing(header: str) -> FieldError:
    return FieldError(header, "required")


def read_envelope(headers: Mapping[str, str]) -> dict[str, Any]:
    """The envelope (id, type, source, subject, time) from the ce-* headers, each checked:
    422 naming every header that is missing or wrong. The type must be one of ours (the
    inbox's sender check has made sure of it)."""
    errors, values = [], {}
    for name, limit in (("id", MAX_ID), ("source", MAX_TEXT), ("subject", MAX_TEXT)):
        value = headers.get(f"ce-{name}", "").strip()
        if not value:
            errors.append(_missing(f"ce-{name}"))
        elif len(value) > limit:
            errors.append(FieldError(f"ce-{name}", f"at most {limit} characters"))
        elif not (value.isascii() and value.isprintable()):  # it is stored, logged, handled
            errors.append(FieldError(f"ce-{name}", "printable ASCII only"))
        values[name] = value
    specversion = headers.get("ce-specversion")
    if specversion != SPECVERSION:
        reason = "required" if specversion is None else f"unsupported: send {SPECVERSION}"
        errors.append(FieldError("ce-specversion", reason))
    time = _time(headers.get("ce-time"), errors)
    event_type = EventType(headers["ce-type"])
    expected = MODELS[event_type].dataschema()
    schema = headers.get("ce-dataschema")
    if schema != expected:
        errors.append(
            FieldError("ce-dataschema", f"unsupported: send {expected}" if schema else "required")
        )
    if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        errors.append(FieldError("content-type", "must be application/json"))
    if errors or time is None:
        fields = ", ".join(e.field for e in errors)
        raise InvalidInput(f"The event's envelope is not valid: {fields}.", errors=errors)
    return {"type": event_type, "time": time, **values}


def _time(value: str | None, errors: list[FieldError]) -> dt.datetime | None:
    if not value:
        errors.append(_missing("ce-time"))
        return None
    try:
        time = dt.datetime.fromisoformat(value)
    except ValueError:
        time = None
    if time is None or time.tzinfo is None:
        errors.append(FieldError("ce-time", "an ISO 8601 time with its UTC offset"))
        return None
    return time


def read_payload(event_type: EventType, body: bytes) -> Event:
    """The body as the type's model: 422 naming each field of `data` that does not fit."""
    try:
        return MODELS[event_type].model_validate_json(body)
    except ValidationError as exc:
        errors = []
        for error in exc.errors():
            loc = ".".join(str(part) for part in error.get("loc", ()))
            message = "not valid JSON" if error["type"] == "json_invalid" else error["msg"]
            errors.append(FieldError(f"data.{loc}" if loc else "data", message))
        fields = ", ".join(sorted({e.field for e in errors}))
        raise InvalidInput(f"The event's data is not valid: {fields}.", errors=errors) from None
