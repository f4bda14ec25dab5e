"""Reference data in memory: the regions, the counties and the regions' user groups change a few
times a year, and every signed-in caller reads them. A read is served from an immutable
snapshot, each county already serialised, instead of a query through the ORM.

The snapshot is loaded when first needed, and again:
- after any commit of this process's sessions that wrote to those tables (a county's update,
  the seed or a test writing through the app's sessions), so a change is seen at once by the
  next read of this process;
- after `ttl` seconds, so a replica converges on a change another replica (or a migration, or
  the seed run as a command) made in the shared database.

A county's ETag stays its row version, as PATCH's If-Match compares it with the row."""

import asyncio
import hashlib
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Any, TypeVar

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from services.common.errors import NotFound
from services.common.etag import etag
from services.common.paging import decode_cursor, encode_cursor
from services.directory.models import Committee, County, Region
from services.directory.schemas import CommitteeRead, CountyRead, RegionRead

REFERENCE_MODELS = (Region, County, Committee)
_WROTE = "cwshub.reference_written"
T = TypeVar("T")


@dataclass(frozen=True)
class CountyEntry:
    read: CountyRead
    json: bytes  # what GET /counties/{fips} answers, serialised once per snapshot
    etag: str


@dataclass(frozen=True)
class Snapshot:
    regions: tuple[RegionRead, ...]  # in code order
    counties: Mapping[str, CountyEntry]  # by FIPS, in FIPS order
    user_groups: Mapping[uuid.UUID, CommitteeRead]  # a region's user group, by region id
    # The lists' ETag: a digest of the content, so every replica holding the same data gives
    # the same tag (a client or the gateway may ask any of them).
    etag: str

    def county(self, fips: str) -> CountyEntry:
        entry = self.counties.get(fips)
        if entry is None:
            raise NotFound(f"There is no county with FIPS code {fips}.")
        return entry

    def region(self, region_id: uuid.UUID) -> RegionRead:
        for region in self.regions:
            if region.id == region_id:
                return region
        raise NotFound(f"There is no region with id {region_id}.")

    def find_counties(self, *, region: str | None, q: str | None) -> list[CountyRead]:
        """Counties in FIPS order, of a region (id or code) and with `q` in the name (any case,
        taken literally), as the list's query filters them."""
        found = [entry.read for entry in self.counties.values()]
        if region:
            try:
                wanted = uuid.UUID(region)
            except ValueError:
                found = [c for c in found if c.region.code == region]
            else:
                found = [c for c in found if c.region.id == wanted]
        if q:
            part = q.lower()
            found = [c for c in found if part in c.name.lower()]
        return found


def page(
    items: Sequence[T], *, column: InstrumentedAttribute[str], limit: int, cursor: str | None
) -> tuple[list[T], str | None]:
    """The page paging.paginate would give of the rows `items` (in `column` order), with the
    same cursors."""
    key = attrgetter(column.key)
    if cursor:
        (after,) = decode_cursor(cursor, [column])
        items = [item for item in items if key(item) > after]
    if len(items) <= limit:
        return list(items), None
    chosen = list(items[:limit])
    return chosen, encode_cursor([key(chosen[-1])])


async def load(session: AsyncSession) -> Snapshot:
    regions = {r.id: RegionRead.model_validate(r) for r in await session.scalars(select(Region))}
    counties = {}
    for row in (await session.execute(select(*County.__table__.c).order_by(County.fips))).all():
        read = CountyRead.model_validate({**row._mapping, "region": regions[row.region_id]})
        counties[row.fips] = CountyEntry(read, read.model_dump_json().encode(), etag(row.version))
    committees = await session.scalars(select(Committee).where(Committee.region_id.is_not(None)))
    ordered = tuple(sorted(regions.values(), key=lambda r: r.code))
    digest = hashlib.blake2b(digest_size=12)
    for region in ordered:
        digest.update(region.model_dump_json().encode())
    for entry in counties.values():
        digest.update(entry.json)
    return Snapshot(
        regions=ordered,
        counties=counties,
        user_groups={
            c.region_id: CommitteeRead.model_validate(c) for c in committees if c.region_id
        },
        etag=f'"{digest.hexdigest()}"',
    )


class Reference:
    """The current snapshot of one database, for one process."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl: float) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._snapshot: Snapshot | None = None
        self._expires = 0.0
        self._generation = 0  # moves on each committed write; a load started before is stale
        self._loaded_generation = -1
        self._lock = asyncio.Lock()

    async def current(self) -> Snapshot:
        snapshot = self._snapshot
        if (
            snapshot is not None
            and self._loaded_generation == self._generation
            and time.monotonic() < self._expires
        ):
            return snapshot
        async with self._lock:  # one load for all the reads that found it stale
            if self._snapshot is snapshot or self._loaded_generation != self._generation:
                generation, expires = self._generation, time.monotonic() + self._ttl
                async with self._sessions() as session:
                    self._snapshot = await load(session)
                self._loaded_generation, self._expires = generation, expires
            assert self._snapshot is not None
            return self._snapshot

    def changed(self) -> None:
        """This process committed a write to reference data: the next read loads again."""
        self._generation += 1

    def watch(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Call `changed` after each commit of `sessions` that wrote reference data."""
        watched: sessionmaker[Session] = sessionmaker()
        event.listen(watched, "after_flush", _note_writes)
        event.listen(watched, "after_commit", self._after_commit)
        event.listen(watched, "after_rollback", _forget_writes)
        sessions.configure(sync_session_class=watched)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(_WROTE, False):
            self.changed()


def _note_writes(session: Session, _context: Any) -> None:
    # after_flush still lists what the flush wrote in new, dirty and deleted.
    written = chain(session.new, session.dirty, session.deleted)
    if any(isinstance(row, REFERENCE_MODELS) for row in written):
        session.info[_WROTE] = True


def _forget_writes(session: Session) -> None:
    session.info.pop(_WROTE, None)
