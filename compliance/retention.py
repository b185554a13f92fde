"""Retention, per store: the policy in force, the oldest data the store holds, and whether
that is within the policy. Pure: the facts come in (gathered by the front door from each
store), ``now`` is a parameter.

A store's policy is met when it holds nothing older than its period plus its
enforcement's slack (how coarse the store's deletion is: a Kafka segment, a lake day, a
ledger key rotation, an hourly job), and nothing dated ahead of ``now`` by more than a day
(data dated in the future would outlive any policy). A store whose contents could not be
read is reported as unknown, never as met.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

Status = Literal["within policy", "exception", "unknown", "kept"]
FUTURE_SLACK: Final = timedelta(days=1)


@dataclass(frozen=True)
class StoreRetention:
    """One store: what it holds, its period (``None``: kept for ever), who enforces it,
    and what was found in it."""

    store: str
    holds: str
    keep: timedelta | None
    slack: timedelta
    enforced_by: str
    oldest: datetime | None = None
    newest: datetime | None = None
    readable: bool = True
    note: str = ""

    def status(self, now: datetime) -> Status:
        if not self.readable:
            return "unknown"
        if self.newest is not None and self.newest > now + FUTURE_SLACK:
            return "exception"
        if self.keep is None:
            return "kept"
        if self.oldest is not None and self.oldest < now - self.keep - self.slack:
            return "exception"
        return "within policy"

    def finding(self, now: datetime) -> str:
        """Why the status is what it is, in a sentence."""
        status = self.status(now)
        if status == "unknown":
            return f"not read: {self.note or 'unreachable'}"
        if self.newest is not None and self.newest > now + FUTURE_SLACK:
            return f"holds data dated {_time(self.newest)}, in the future"
        if self.oldest is None:
            return "holds nothing"
        if status == "kept" or self.keep is None:
            return f"oldest {_time(self.oldest)}; kept for ever by policy"
        limit = now - self.keep - self.slack
        if status == "exception":
            return f"oldest {_time(self.oldest)} is older than the policy allows ({_time(limit)})"
        return f"oldest {_time(self.oldest)}, within the policy (not before {_time(limit)})"


def period_text(keep: timedelta | None) -> str:
    if keep is None:
        return "kept"
    days = keep / timedelta(days=1)
    return f"{days:g} days"


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def retention_rows(stores: Iterable[StoreRetention], now: datetime) -> list[dict[str, Any]]:
    """One plain row per store (the pack's ``retention.json``, the CLI's table)."""
    return [
        {
            "store": s.store,
            "holds": s.holds,
            "policy": period_text(s.keep),
            "enforced_by": s.enforced_by,
            "oldest": _time(s.oldest) if s.oldest is not None else None,
            "newest": _time(s.newest) if s.newest is not None else None,
            "status": s.status(now),
            "finding": s.finding(now),
        }
        for s in stores
    ]
