"""What the requests service asks the directory over HTTP: which region a county is in and how
it runs CWS/CMS, the six regions, and whether an account is office staff working a region.
Answers are cached briefly (a county's are forgotten when the directory's county.changed
arrives); the directory stays the only owner of that data.

Every question takes `token`: the caller's, when there is one (a filing asks with the filer's,
so the directory's tenancy applies to it), or None for work no one is calling for (a county
moved to another region), which asks with the service's own identity. It is a required
argument on purpose: forgetting it must not quietly ask with the service's wider rights."""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from services.common.errors import FieldError, InvalidInput, ServiceUnavailable
from services.common.identity import ServiceIdentity


@dataclass(frozen=True)
class CountyFacts:
    fips: str
    name: str
    region_id: uuid.UUID
    cws_configuration: str | None
    version: int | None = None  # the county row's version (the reply's ETag), if it said


@dataclass(frozen=True)
class RegionFacts:
    id: uuid.UUID
    code: str
    name: str


def _version(etag: str | None) -> int | None:
    """The row version an ETag such as "3" names; None for a tag that is not one."""
    tag = (etag or "").removeprefix("W/").strip('"')
    return int(tag) if tag.isdigit() and len(tag) < 10 else None


class Directory:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        ttl: float,
        identity: ServiceIdentity | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.ttl, self.identity, self.clock = client, ttl, identity, clock
        self._counties: dict[str, tuple[float, CountyFacts]] = {}
        self._regions: tuple[float, list[RegionFacts]] | None = None

    async def _get(self, path: str, token: str | None) -> httpx.Response:
        """GET with the caller's token, or (None) the service's own."""
        if token is not None:
            how: dict[str, Any] = {"headers": {"Authorization": f"Bearer {token}"}}
        elif self.identity is not None:
            how = {"auth": self.identity.auth}
        else:
            raise ServiceUnavailable(
                "The requests service has no identity of its own to ask the directory with "
                "(set REQUESTS_CLIENT_SECRET_FILE)."
            )
        try:
            return await self.client.get(path, **how)
        except httpx.HTTPError:
            raise ServiceUnavailable(
                "The directory cannot be reached; try again shortly."
            ) from None

    def _fresh(self, fetched_at: float) -> bool:
        return self.clock() - fetched_at < self.ttl

    async def lookup(self, fips: str, *, token: str | None) -> tuple[CountyFacts, bool]:
        """The county's facts, and whether they were just read from the directory; 422 naming
        `county` when the directory knows no such county."""
        cached = self._counties.get(fips)
        if cached and self._fresh(cached[0]):
            return cached[1], False
        reply = await self._get(f"/api/v1/counties/{fips}", token)
        if reply.status_code in (404, 422):
            raise InvalidInput(
                f"There is no county with FIPS code {fips}.",
                errors=[FieldError("county", "unknown FIPS code")],
            )
        body = self._json(reply)
        facts = CountyFacts(
            fips=body["fips"],
            name=body["name"],
            region_id=uuid.UUID(body["region"]["id"]),
            cws_configuration=body.get("cws_configuration"),
            version=_version(reply.headers.get("etag")),
        )
        self._counties[fips] = (self.clock(), facts)
        return facts, True

    async def regions(self, *, token: str | None) -> list[RegionFacts]:
        if self._regions and self._fresh(self._regions[0]):
            return self._regions[1]
        body = self._json(await self._get("/api/v1/regions?limit=50", token))
        regions = [
            RegionFacts(id=uuid.UUID(r["id"]), code=r["code"], name=r["name"])
            for r in body["items"]
        ]
        self._regions = (self.clock(), regions)
        return regions

    async def works_region(self, account: str, region_id: uuid.UUID, *, token: str | None) -> bool:
        """Whether `account` is an active office admin or an SSC of the region. Not cached: an
        assignment is rare, and a deactivated account must stop being assignable at once."""
        try:
            account_id = uuid.UUID(account)
        except ValueError:
            return False
        reply = await self._get(f"/api/v1/regions/{region_id}/staff/{account_id}", token)
        if reply.status_code == 404:
            return False
        self._json(reply)
        return True

    def forget(self, fips: str | None = None) -> None:
        """Drop a county's cached facts (all counties' without `fips`): the next filing reads
        them afresh."""
        if fips is None:
            self._counties.clear()
        else:
            self._counties.pop(fips, None)

    @staticmethod
    def _json(reply: httpx.Response) -> Any:
        if not reply.is_success:
            raise ServiceUnavailable(
                f"The directory answered {reply.status_code}; try again shortly."
            )
        return reply.json()
