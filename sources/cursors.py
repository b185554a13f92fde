"""Where each identity-provider adapter stands: its cursor, last success, last error, counts.

One JSON file per adapter in a state directory, replaced atomically (written to a
temporary file, fsynced, renamed over the old one, the directory fsynced): a crash leaves
the old state or the new one, never half of either. A poller saves only *after* the
broker acknowledged the batch the new cursor covers, so a crash between the two polls the
same page again; event ids derive from the providers' record ids, and the pipeline drops
the duplicates.

One poller per adapter: :meth:`CursorStore.claim` takes an exclusive ``flock`` on the
adapter's lock file for as long as the poller runs; a second poller of the same adapter
(another replica on this host or on a shared state directory, a restart overlapping the
old process) is refused with the holder's pid. The kernel drops the lock when the
holder dies, ``kill -9`` included. Replicas on separate machines with separate state
directories cannot see each other's lock: give each adapter to one machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final

NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
"""An adapter's name: lower case letters, digits, ``-`` and ``_`` (it names files)."""


class AdapterBusy(Exception):
    """Another process polls this adapter."""


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(f"adapter name {name!r}: use 1-64 lower case letters, digits, '-' or '_'")
    return name


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class CursorState:
    """An adapter's progress. ``position`` is the provider client's own cursor (JSON)."""

    position: Mapping[str, Any] = field(default_factory=dict)
    last_success_at: datetime | None = None
    """The last page fetched, mapped and acknowledged by the broker."""
    caught_up_at: datetime | None = None
    """The last time the provider had nothing more to give (lag is measured from it)."""
    newest_event_at: datetime | None = None
    """The time of the newest event delivered."""
    last_error: str | None = None
    last_error_at: datetime | None = None
    delivered: int = 0
    """Events delivered (a page polled again after a crash counts again)."""
    unmapped: Mapping[str, int] = field(default_factory=dict)
    """Records that became no event, by reason (exact: saved with the cursor)."""

    def lag_s(self, now: datetime) -> float | None:
        """Seconds since the poller last had read everything there was (None: never)."""
        if self.caught_up_at is None:
            return None
        return max(0.0, (now - self.caught_up_at).total_seconds())

    def with_error(self, message: str, now: datetime) -> CursorState:
        return replace(self, last_error=message[:2000], last_error_at=now)

    def as_json(self) -> dict[str, Any]:
        return {
            "position": dict(self.position),
            "last_success_at": _iso(self.last_success_at),
            "caught_up_at": _iso(self.caught_up_at),
            "newest_event_at": _iso(self.newest_event_at),
            "last_error": self.last_error,
            "last_error_at": _iso(self.last_error_at),
            "delivered": self.delivered,
            "unmapped": dict(self.unmapped),
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> CursorState:
        return cls(
            position=dict(value.get("position") or {}),
            last_success_at=_time(value.get("last_success_at")),
            caught_up_at=_time(value.get("caught_up_at")),
            newest_event_at=_time(value.get("newest_event_at")),
            last_error=value.get("last_error"),
            last_error_at=_time(value.get("last_error_at")),
            delivered=int(value.get("delivered") or 0),
            unmapped={str(k): int(v) for k, v in (value.get("unmapped") or {}).items()},
        )


class CursorStore:
    """Cursor files ``<directory>/<adapter>.cursor.json`` and their lock files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, name: str) -> Path:
        return self.directory / f"{check_name(name)}.cursor.json"

    def load(self, name: str) -> CursorState:
        """The adapter's saved state; a new adapter's is empty."""
        try:
            text = self.path(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return CursorState()
        return CursorState.from_json(json.loads(text))

    def save(self, name: str, state: CursorState) -> None:
        """Replace the adapter's state atomically and durably."""
        write_atomically(self.path(name), json.dumps(state.as_json(), indent=1).encode())

    @contextlib.contextmanager
    def claim(self, name: str) -> Iterator[None]:
        """Hold the adapter for this process, or raise :class:`AdapterBusy`."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = self.directory / f"{check_name(name)}.lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise AdapterBusy(f"adapter {name} is polled by process {holder}") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the lock


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """``path`` holds ``data`` or what it held before, whatever happens (a crash, a full
    disk): written beside it, fsynced, renamed over it, the directory fsynced."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
