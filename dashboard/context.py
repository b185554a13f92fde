"""What page callbacks read: the metrics, the ledger, the clock of the HTTP edge."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from dashboard.data import LakeMetrics
from dashboard.ledger import LedgerAccess


@dataclass(frozen=True)
class DashboardContext:
    metrics: LakeMetrics
    open_ledger: Callable[[], LedgerAccess | None]
    """The ledger, or ``None`` while it does not exist yet (the worker creates it, and the
    dashboard may start first): asked again on each use until it opens."""
    now: Callable[[], datetime]

    @property
    def ledger(self) -> LedgerAccess | None:
        return self.open_ledger()


def once_opened(
    opener: Callable[[], LedgerAccess | None],
) -> Callable[[], LedgerAccess | None]:
    """``opener`` called until it returns a ledger; that one is kept."""
    opened: list[LedgerAccess] = []
    lock = threading.Lock()

    def ledger() -> LedgerAccess | None:
        if not opened:
            with lock:
                if not opened and (found := opener()) is not None:
                    opened.append(found)
        return opened[0] if opened else None

    return ledger
