"""The payloads of the events services send each other, one pydantic model per event type,
shared by the sender (which builds one and writes it to its outbox) and the receiver (whose
inbox parses `data` with it before a handler sees it).

A model's `schema_version` is carried as the CloudEvent's `dataschema`
(urn:cwshub:event:<type>:v<n>). A change a receiver can ignore (a new optional field) keeps the
version; anything else is a new version, sent beside the old one until every receiver reads it.
Receivers ignore fields they do not know."""

import uuid
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from services.common.names import EventType


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    event_type: ClassVar[EventType]
    schema_version: ClassVar[int] = 1

    @property
    def subject(self) -> str:
        """What the event is about (CloudEvents `subject`); delivery keeps order per subject."""
        raise NotImplementedError

    @classmethod
    def dataschema(cls) -> str:
        return f"urn:cwshub:event:{cls.event_type}:v{cls.schema_version}"

    def data(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class CountyChanged(Event):
    """The directory changed a county's facts: its region, how it runs CWS/CMS."""

    event_type = EventType.COUNTY_CHANGED

    # Bounded as the directory stores them: a receiver may store them too.
    fips: str = Field(pattern=r"^\d{5}$")
    region_id: uuid.UUID
    cws_configuration: str | None = Field(default=None, max_length=16)
    concurrent_lan: bool = False
    # The county row's version (an INTEGER there, and in requests' county_seen): a receiver
    # can drop an older one seen late.
    version: int = Field(ge=1, le=2**31 - 1)

    @property
    def subject(self) -> str:
        return self.fips


class RequestEvent(Event):
    """What the SPOC and the county's SSC are told of a request. A DDR's words (title,
    comments) are left out, and `needs_permission` says which tool permission a county
    principal must hold to hear of it at all."""

    id: uuid.UUID
    number: str
    type: str  # the kind of request: mac, ddr, scr ...
    county: str
    region_id: uuid.UUID
    title: str | None = None
    state: str
    submitter: str
    assignee: str | None = None
    needs_permission: str | None = None

    @property
    def subject(self) -> str:
        return str(self.id)


class RequestCreated(RequestEvent):
    event_type = EventType.REQUEST_CREATED


class RequestTransitioned(RequestEvent):
    event_type = EventType.REQUEST_TRANSITIONED

    action: str
    actor: str
    comment: str | None = None
    from_state: str = Field(alias="from")
    to_state: str = Field(alias="to")


class RequestCommented(RequestEvent):
    event_type = EventType.REQUEST_COMMENTED

    comment_id: uuid.UUID
    author: str
    internal: bool = False


MODELS: dict[EventType, type[Event]] = {
    model.event_type: model
    for model in (CountyChanged, RequestCreated, RequestTransitioned, RequestCommented)
}
assert set(MODELS) == set(EventType), "every event type has its payload model"
