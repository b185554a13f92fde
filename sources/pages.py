"""A page of provider records and the cursor after it; the time window of the APIs that
have no stable cursor (Keycloak's admin API, Microsoft Graph's sign-ins)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Page:
    """Records not delivered before (as far as the cursor knows), oldest first, and the
    cursor that covers them. ``more``: the provider has another page ready now."""

    records: list[Any]
    position: Mapping[str, Any]
    more: bool


class LogClient(Protocol):
    """A provider's log API: the page after ``position`` (``{}`` on the first call)."""

    async def fetch(self, position: Mapping[str, Any]) -> Page: ...


@dataclass(frozen=True)
class Window:
    """Everything newer than ``watermark`` is new, and what sits exactly at it unless its
    key is in ``boundary`` (the records at the watermark already delivered).

    A sweep reads every page of ``time >= watermark`` (the APIs filter that way), keeping
    the newest time it met and the keys at that time; when the sweep ends, they become the
    next watermark and boundary (:meth:`finished`). A record that moves between pages
    while the sweep runs (newer ones pushing it down) is seen twice at worst, never missed;
    the second delivery has the same event id and the pipeline drops it.
    """

    watermark: datetime
    boundary: frozenset[str] = frozenset()
    sweep_newest: datetime | None = None
    sweep_boundary: frozenset[str] = field(default_factory=frozenset)

    def is_new(self, time: datetime, key: str) -> bool:
        return time > self.watermark or (time == self.watermark and key not in self.boundary)

    def seen(self, records: Iterable[tuple[datetime, str]]) -> Window:
        newest = self.sweep_newest or self.watermark
        keys = set(self.sweep_boundary if self.sweep_newest else self.boundary)
        for time, key in records:
            if time > newest:
                newest, keys = time, {key}
            elif time == newest:
                keys.add(key)
        return replace(self, sweep_newest=newest, sweep_boundary=frozenset(keys))

    def finished(self) -> Window:
        if self.sweep_newest is None:
            return self
        return Window(self.sweep_newest, self.sweep_boundary)

    def as_json(self) -> dict[str, Any]:
        return {
            "watermark": self.watermark.isoformat(),
            "boundary": sorted(self.boundary),
            "sweep_newest": self.sweep_newest.isoformat() if self.sweep_newest else None,
            "sweep_boundary": sorted(self.sweep_boundary),
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Window:
        newest = value.get("sweep_newest")
        return cls(
            watermark=datetime.fromisoformat(value["watermark"]),
            boundary=frozenset(value.get("boundary") or ()),
            sweep_newest=datetime.fromisoformat(newest) if newest else None,
            sweep_boundary=frozenset(value.get("sweep_boundary") or ()),
        )


def record_key(record: Any) -> str:
    """A record's ``id``, or a hash of its canonical JSON (what a window dedupes by)."""
    if isinstance(record, dict) and isinstance(record.get("id"), str) and record["id"]:
        return str(record["id"])
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
