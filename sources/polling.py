"""The poller: fetch a page, map each record, deliver, then save the cursor.

One loop for every provider; what differs is the :class:`~sources.pages.LogClient` (the
HTTP particulars) and the mapping function, both passed in. The cursor is saved only
after the broker acknowledged the page's events, so a crash at any point polls the same
page again, and the deterministic event ids make that harmless. Records that become no
event are kept (:class:`UnmappedLog`) before the cursor moves past them and counted by
reason in the cursor state: never dropped silently.

Failures are data in the cursor state (``last_error``) and set the pace: a 429 waits what
the provider said, a 5xx or a broker outage backs off exponentially, a refusal (bad
credentials) waits the longest backoff. Time is passed in (``clock``) and every wait ends
early when ``stop`` is set.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from schemas import Event
from sources.cursors import CursorStore
from sources.delivery import BrokerUnavailable
from sources.idp_http import ProviderError, ProviderRefused, RateLimited
from sources.pages import LogClient, Page
from sources.unmapped import Unmapped

Mapper = Callable[[Any], Event | Unmapped | Sequence[Event | Unmapped]]
"""One record in; what it becomes (a record may say several things: an Entra sign-in)."""
Clock = Callable[[], datetime]


class Delivery(Protocol):
    async def deliver(self, events: Sequence[Event]) -> None:
        """Return once the broker acknowledged every event; raise ``BrokerUnavailable``."""


class UnmappedKeeper(Protocol):
    def keep(self, items: Sequence[tuple[Any, Unmapped]], now: datetime) -> None:
        """Keep these records durably before the caller moves on."""


class UnmappedLog:
    """Unmapped records appended to a JSON-lines file (fsynced): the reason, and the
    provider's record itself for an operator to look at (it holds personal data: the file
    is private). A page polled again after a crash appends its records again."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def keep(self, items: Sequence[tuple[Any, Unmapped]], now: datetime) -> None:
        if not items:
            return
        lines = "".join(
            json.dumps(
                {"at": now.isoformat(), "unmapped": unmapped.as_json(), "record": record},
                default=str,
            )
            + "\n"
            for record, unmapped in items
        )
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as file:
            file.write(lines.encode())
            file.flush()
            os.fsync(file.fileno())


@dataclass(frozen=True)
class Mapped:
    events: list[Event]
    unmapped: list[tuple[Any, Unmapped]]


def map_records(records: Sequence[Any], mapper: Mapper) -> Mapped:
    """Each record through ``mapper``; a mapper that raises makes the record unmapped
    (``mapping_error``) rather than stopping the adapter on one odd record."""
    events: list[Event] = []
    unmapped: list[tuple[Any, Unmapped]] = []
    for record in records:
        try:
            mapped = mapper(record)
        except Exception as exc:  # noqa: BLE001 - the mapping's defect, kept with the record
            mapped = Unmapped("adapter", None, None, "mapping_error", repr(exc)[:1024])
        for result in mapped if isinstance(mapped, Sequence) else [mapped]:
            if isinstance(result, Unmapped):
                unmapped.append((record, result))
            else:
                events.append(result)
    return Mapped(events, unmapped)


@dataclass(frozen=True)
class PollSchedule:
    interval_s: float = 30.0
    """Wait between polls once caught up."""
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0


class Poller:
    """Polls one adapter: ``name`` in the cursor store, records from ``client``."""

    def __init__(
        self,
        name: str,
        client: LogClient,
        mapper: Mapper,
        delivery: Delivery,
        store: CursorStore,
        unmapped: UnmappedKeeper,
        clock: Clock,
        schedule: PollSchedule = PollSchedule(),
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self.client = client
        self.mapper = mapper
        self.delivery = delivery
        self.store = store
        self.unmapped = unmapped
        self.clock = clock
        self.schedule = schedule
        self.report = report or (lambda _message: None)
        self.state = store.load(name)

    async def poll_page(self) -> Page:
        """One page: fetched, mapped, delivered, kept, and then the cursor saved."""
        page = await self.client.fetch(self.state.position)
        mapped = map_records(page.records, self.mapper)
        await self.delivery.deliver(mapped.events)
        now = self.clock()
        self.unmapped.keep(mapped.unmapped, now)
        counts = Counter(self.state.unmapped)
        counts.update(unmapped.reason for _, unmapped in mapped.unmapped)
        newest = max((event.time for event in mapped.events), default=None)
        if self.state.newest_event_at is not None and newest is not None:
            newest = max(newest, self.state.newest_event_at)
        self.state = replace(
            self.state,
            position=dict(page.position),
            last_success_at=now,
            caught_up_at=self.state.caught_up_at if page.more else now,
            newest_event_at=newest or self.state.newest_event_at,
            last_error=None,
            delivered=self.state.delivered + len(mapped.events),
            unmapped=dict(counts),
        )
        self.store.save(self.name, self.state)
        if page.records:
            self.report(
                f"{len(mapped.events)} events delivered, {len(mapped.unmapped)} unmapped kept"
                f"{'' if page.more else '; caught up'}"
            )
        return page

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; a page in flight is finished (delivered and saved)
        before returning, so a clean stop never re-polls."""
        backoff = self.schedule.backoff_initial_s
        while not stop.is_set():
            try:
                page = await self.poll_page()
            except RateLimited as limited:
                self._failed(str(limited))
                await _wait(stop, limited.wait_s)
                continue
            except ProviderRefused as refused:
                self._failed(str(refused))
                await _wait(stop, self.schedule.backoff_max_s)
                continue
            except (ProviderError, BrokerUnavailable) as failure:
                self._failed(str(failure) or type(failure).__name__)
                await _wait(stop, backoff)
                backoff = min(backoff * 2, self.schedule.backoff_max_s)
                continue
            except Exception as defect:  # a defect: on record for `idp status`, then raised
                self._failed(f"stopped by {defect!r}")
                raise
            backoff = self.schedule.backoff_initial_s
            if not page.more:
                await _wait(stop, self.schedule.interval_s)

    def _failed(self, message: str) -> None:
        self.state = self.state.with_error(message, self.clock())
        self.store.save(self.name, self.state)
        self.report(f"error: {message}")


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(seconds, 0.0))
    except TimeoutError:
        pass
