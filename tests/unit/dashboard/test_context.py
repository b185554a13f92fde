"""The dashboard may start before the worker has created the ledger: the audit pages ask
for it again until it exists, then keep it."""

from __future__ import annotations

from typing import Any, cast

from dashboard.context import once_opened
from dashboard.ledger import LedgerAccess


def test_the_ledger_is_asked_for_until_it_opens_then_kept() -> None:
    calls: list[int] = []
    found = cast(LedgerAccess, object())
    answers: list[Any] = [None, None, found, None]

    def opener() -> LedgerAccess | None:
        calls.append(1)
        return cast(LedgerAccess | None, answers[len(calls) - 1])

    ledger = once_opened(opener)
    assert ledger() is None
    assert ledger() is None
    assert ledger() is found
    assert ledger() is found  # kept: not asked again
    assert len(calls) == 3
