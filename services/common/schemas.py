"""Contract pieces every service shares: the problem body and its OpenAPI responses, and the
types of what clients send (Instant)."""

import datetime as dt
import re
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from services.common.errors import PROBLEM_MEDIA_TYPE


class FieldProblem(BaseModel):
    field: str = Field(examples=["limit"])
    message: str = Field(examples=["Input should be less than or equal to 500"])


class Problem(BaseModel):
    """RFC 9457 problem details: the one error shape of cwshub."""

    type: str = Field(examples=["/problems/not-found"])
    title: str
    status: int
    detail: str
    instance: str
    request_id: str | None
    errors: list[FieldProblem] | None = None
    state: str | None = Field(default=None, description="invalid-transition: the current state")
    allowed_actions: list[str] | None = Field(
        default=None, description="invalid-transition: the actions possible in that state"
    )


_DESCRIPTIONS = {
    400: "Bad request",
    401: "No valid access token",
    403: "The caller lacks the role or permission",
    404: "Not found (or in another county)",
    409: "Conflict with the current state",
    412: "If-Match names an old version",
    413: "The body is over the size limit",
    422: "Invalid input; `errors` names each field",
    428: "If-Match is required",
    429: "Too many requests",
    503: "A dependency is unavailable",
    504: "A dependency timed out",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the problems a route can answer."""
    return {
        status: {
            "model": Problem,
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


class Patch(BaseModel):
    """The body of a PATCH: only the fields sent change; at least one must be sent; a field
    may be set to null only if the subclass lists it in `nullable`."""

    model_config = ConfigDict(extra="forbid")
    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _sent_fields_are_sound(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        for field in sorted(self.model_fields_set - self.nullable):
            if getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Say in the schema what the validator above enforces: at least one field; null only
        where `nullable` allows it; a field left out is unchanged (no default)."""
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        target["minProperties"] = 1
        for name, prop in target.get("properties", {}).items():
            prop.pop("default", None)
            options = prop.get("anyOf", [])
            if name not in cls.nullable and {"type": "null"} in options:
                kept = [o for o in options if o != {"type": "null"}]
                del prop["anyOf"]
                prop.update(kept[0] if len(kept) == 1 else {"anyOf": kept})
        return schema

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


EARLIEST_YEAR, LATEST_YEAR = 1900, 2999


def _on_the_calendar(value: dt.datetime) -> dt.datetime:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"must be in the years {EARLIEST_YEAR} to {LATEST_YEAR}")
    return value


class _Years:
    """Says the bound in the OpenAPI document too, as a pattern on the year."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = r"^(19|2[0-9])[0-9]{2}-"
        return json_schema


_NUMBER = re.compile(r"\s*[-+]?[0-9.eE+-]+\s*")


def _not_a_number(value: Any) -> Any:
    """Pydantic reads a number as Unix time (`from=0.5` was 1970): the contract says ISO 8601."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError(
            "must be an ISO 8601 date-time with offset, like 2026-12-01T09:00:00-08:00"
        )
    return value


# A moment a client names (filters, calendar times): ISO 8601 with its UTC offset, never a
# number read as Unix time, and in the years 1900 to 2999. Every year 1 to 9999 parses, but near
# either end the UTC equivalent, or a range computed from it, falls off Python's calendar: that
# was a 500 and a traceback per request.
Instant = Annotated[
    AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(_on_the_calendar), _Years()
]
