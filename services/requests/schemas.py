"""The requests API contract: a create model per request type (tagged by `type`), reads,
transitions, history, comments and SCR votes."""

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from services.common.schemas import Patch

Fips = Annotated[str, Field(pattern=r"^06\d{3}$", examples=["06067"], description="FIPS code")]
Text = Annotated[str, Field(min_length=1, max_length=4000)]
Short = Annotated[str, Field(min_length=1, max_length=128)]
Port = Annotated[str, Field(min_length=1, max_length=32, examples=["IDF2-SW1 Gi1/0/14"])]
RequestType = Literal["mac", "relocation", "ddr", "scr", "sbc"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MacDetails(_Strict):
    """A Move, Add or Change; category `vpn` is how a county asks for VPN, and needs the
    prerequisites: broadband provider, county-supported VPN client and firewall."""

    category: Literal["switch_port", "equipment", "move", "change", "vpn"]
    location: Short = Field(
        description="Site and room where the work happens", examples=["Sacramento, room 214"]
    )
    broadband_provider: Short | None = Field(default=None, description="Required for vpn")
    vpn_client: Short | None = Field(default=None, description="Required for vpn")
    firewall: Short | None = Field(default=None, description="Required for vpn")


class RelocationDetails(_Strict):
    """Moving a workstation or printer in a dedicated county: the switch ports to activate at
    the new place and deactivate at the old. New equipment is a MAC, not a relocation."""

    equipment: Literal["workstation", "printer"]
    asset_tag: Short
    from_location: Short
    to_location: Short
    ports_to_activate: list[Port] = Field(default_factory=list, max_length=48)
    ports_to_deactivate: list[Port] = Field(default_factory=list, max_length=48)
    new_equipment: StrictBool = Field(default=False, description="true is refused: file a MAC")


class DdrDetails(_Strict):
    """A Data Deletion Request, filed after a call to the help desk established it is needed."""

    help_desk_ticket: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{2,31}$",
        examples=["HD-20261125-0042"],
        description="The IBM help desk ticket number; one ticket backs one open DDR",
    )
    case_or_referral_id: str = Field(
        pattern=r"^[A-Za-z0-9-]{1,32}$", description="The CWS/CMS case or referral id"
    )
    data_to_delete: Text


class ScrDetails(_Strict):
    """A System Change Request: a change to the application."""

    justification: Text
    application_area: Short | None = None


class SbcDetails(_Strict):
    """Server Based Computing: users, their two-factor tokens, and password resets (during
    business hours only; otherwise call the IBM help desk, 1-800-428-8268)."""

    operation: Literal[
        "add_user", "delete_user", "modify_user", "assign_token", "revoke_token", "reset_password"
    ]
    sbc_user: Short = Field(description="The SBC user name")
    token_serial: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9-]{4,32}$",
        description="Required to assign or revoke a token",
    )


class _Create(_Strict):
    county: Fips = Field(description="The county the request is for")
    title: str = Field(min_length=1, max_length=200, examples=["Move a printer to room 214"])
    description: str = Field(
        default="", max_length=8000, examples=["The printer moves with the intake unit."]
    )


class MacCreate(_Create):
    type: Literal["mac"]
    details: MacDetails


class RelocationCreate(_Create):
    type: Literal["relocation"]
    details: RelocationDetails


class DdrCreate(_Create):
    type: Literal["ddr"]
    details: DdrDetails


class ScrCreate(_Create):
    type: Literal["scr"]
    details: ScrDetails


class SbcCreate(_Create):
    type: Literal["sbc"]
    details: SbcDetails


RequestCreate = Annotated[
    MacCreate | RelocationCreate | DdrCreate | ScrCreate | SbcCreate,
    Field(discriminator="type"),
]


class RequestRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    number: str = Field(examples=["MAC-2026-000001"])
    type: RequestType
    county: str = Field(validation_alias="county_fips", examples=["06067"])
    title: str
    description: str
    details: dict[str, Any] = Field(description="The fields of the request's type")
    state: str = Field(examples=["submitted"])
    submitter: str = Field(validation_alias="submitter_sub", description="Subject id")
    submitter_name: str
    assignee: str | None = Field(validation_alias="assignee_sub", description="Subject id")
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class RequestUpdate(Patch):
    """Send only the fields to change, with If-Match. The title and description change
    while the request is submitted, by the one who filed it or the office; the assignee
    while it is open, by the office. Any other change answers 409 naming the field."""

    nullable = frozenset({"assignee"})

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=8000)
    assignee: uuid.UUID | None = Field(
        default=None,
        description="An office admin's or the region's SSC's account id; null unassigns",
    )


class TransitionCreate(_Strict):
    action: str = Field(min_length=1, max_length=32, examples=["accept"])
    comment: str | None = Field(default=None, max_length=4000)


class TransitionOption(BaseModel):
    action: str = Field(examples=["accept"])
    to: str = Field(examples=["accepted"])
    needs_comment: bool = Field(description="true when the action needs a reason in comment")


class TransitionOptions(BaseModel):
    """What the caller may do now: the frontend draws one button per item."""

    state: str
    version: int
    actions: list[TransitionOption]


class HistoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    occurred_at: dt.datetime
    actor: str = Field(validation_alias="actor_sub", description="Subject id")
    actor_name: str
    action: str = Field(examples=["filed", "accept", "edited", "voted"])
    from_state: str | None
    to_state: str | None
    field: str | None
    old_value: Any
    new_value: Any
    comment: str | None


class CommentCreate(_Strict):
    body: Text
    internal: StrictBool = Field(default=False, description="Visible only to office staff")


class CommentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: dt.datetime
    author: str = Field(validation_alias="author_sub")
    author_name: str
    body: str
    internal: bool


class VoteCreate(_Strict):
    region: str | None = Field(
        default=None,
        max_length=64,
        description="Region id or code; an SSC records its own region's vote and may omit it",
        examples=["bay_area"],
    )
    decision: Literal["approve", "reject"]
    meeting_on: dt.date = Field(description="The regional user group meeting that decided")
    reason: str | None = Field(default=None, max_length=4000, description="Required to reject")


class VoteRead(BaseModel):
    region_id: uuid.UUID
    region_code: str
    region_name: str
    decision: Literal["approve", "reject"] | None = Field(description="null: not yet voted")
    meeting_on: dt.date | None
    reason: str | None
    recorded_by: str | None
    recorded_at: dt.datetime | None


class VoteTally(BaseModel):
    """The six regions' decisions on an SCR; it passes when `approvals` reach `needed`."""

    state: str
    needed: int
    approvals: int
    rejections: int
    outcome: Literal["pending", "approved", "rejected"]
    votes: list[VoteRead]
