"""The office maintains counties: CWS/CMS configuration, offerings, contact details, and the
region a county belongs to (data, because some seed memberships are uncertain)."""

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common import outbox
from services.common.auth import Principal
from services.common.errors import FieldError, Forbidden, InvalidInput
from services.common.etag import etag, require_match
from services.common.events import CountyChanged
from services.common.names import Role
from services.directory import audit
from services.directory.models import County, Region

# What a county's own administrator (SPOC or web administrator) may edit for its county.
COUNTY_CONTACT_FIELDS = frozenset({"address", "phone"})
AUDITED_FIELDS = (
    "region_id",
    "cws_configuration",
    "concurrent_lan",
    "sbc_in_use",
    "vpn_in_use",
    "address",
    "phone",
    "notes",
)


def snapshot(county: County) -> dict[str, Any]:
    return {field: getattr(county, field) for field in AUDITED_FIELDS}


async def find_region(session: AsyncSession, ref: str) -> Region:
    """A region by id or code ('bay_area')."""
    try:
        region = await session.get(Region, uuid.UUID(ref))
    except ValueError:
        region = await session.scalar(select(Region).where(Region.code == ref))
    if region is None:
        raise InvalidInput(
            f"There is no region {ref!r}.", errors=[FieldError("region", "unknown region")]
        )
    return region


def check_may_edit(principal: Principal, county: County, fields: set[str]) -> None:
    """The office edits everything; a county administrator only its own county's contact fields."""
    if Role.OFFICE_ADMIN in principal.roles:
        return
    if Role.COUNTY_ADMIN in principal.roles and principal.county == county.fips:
        others = sorted(fields - COUNTY_CONTACT_FIELDS)
        if others:
            raise Forbidden(
                f"A county administrator may edit only {', '.join(sorted(COUNTY_CONTACT_FIELDS))};"
                f" ask the office to change {', '.join(others)}."
            )
        return
    raise Forbidden("Only the office, or the county's own administrator, may edit a county.")


def check_concurrent_lan(county: County) -> None:
    """Concurrent LAN is an offering for dedicated counties only."""
    if county.concurrent_lan and county.cws_configuration != "dedicated":
        raise InvalidInput(
            "Concurrent LAN is offered to dedicated counties only; this county is "
            f"{county.cws_configuration or 'not recorded as dedicated'}.",
            errors=[FieldError("concurrent_lan", "only for dedicated counties")],
        )


async def update_county(
    session: AsyncSession,
    *,
    principal: Principal,
    county: County,
    changes: dict[str, Any],
    if_match: str | None,
) -> County:
    """Apply the changes a caller may make to the version it read, check the offering rules,
    and audit the result."""
    check_may_edit(principal, county, set(changes))
    require_match(if_match, etag(county.version))
    before = snapshot(county)
    for field, value in changes.items():
        if field == "region":
            county.region = await find_region(session, value)
            county.region_id = county.region.id
        else:
            setattr(county, field, value)
    check_concurrent_lan(county)
    await session.flush()
    after = snapshot(county)
    moved = before["region_id"] != after["region_id"]
    await outbox.add(
        session,
        CountyChanged(
            fips=county.fips,
            region_id=county.region_id,
            cws_configuration=county.cws_configuration,
            concurrent_lan=county.concurrent_lan,
            version=county.version,
        ),
        source="/directory",
    )
    await audit.record(
        session,
        actor=principal,
        action="county.region_changed" if moved else "county.updated",
        resource_type="county",
        resource_id=county.fips,
        changes=audit.diff(before, after),
    )
    return county
