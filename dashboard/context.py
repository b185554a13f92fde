"""What page callbacks read: the metrics, the ledger, the clock of the HTTP edge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from dashboard.data import LakeMetrics
from dashboard.ledger import LedgerAccess


@dataclass(frozen=True)
class DashboardContext:
    metrics: LakeMetrics
    ledger: LedgerAccess | None
    now: Callable[[], datetime]
