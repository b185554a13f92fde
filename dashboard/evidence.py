"""Evidence packs on the Compliance page: the controls' status for the page's filters, and
a pack (zip) per framework, for the roles that may take one (checked here, server-side).

The dashboard reads the ledger and appends nothing: a pack downloaded here is not recorded
as ``audit.evidence.issued`` (``factorstream evidence`` records it). Both build the same
pack from the same ledger; the page says so.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from compliance.controls import FRAMEWORKS, ControlResult, Framework
from compliance.periods import Period
from dashboard.filters import DashboardFilters
from dashboard.ledger import LedgerAccess
from dashboard.users import User, may_export

DEFAULT_DAYS = 90
"""The period when the page's filters leave it open: the last 90 days."""


class PackRefused(PermissionError):
    """The signed-in user's role may not take an evidence pack."""


def period_of(filters: DashboardFilters, *, now: datetime) -> Period:
    """The period the page's date filter names (open ends: the last 90 days up to now)."""
    until = filters.end or now
    since = filters.start or (until - timedelta(days=DEFAULT_DAYS))
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    return Period(since, until, f"{since:%Y-%m-%d}..{until:%Y-%m-%d}")


def control_rows(framework: Framework, results: list[ControlResult]) -> list[list[str]]:
    """One table row per control (pure)."""
    return [
        [framework.upper(), c.control, c.title, c.status, str(len(c.exceptions)), str(len(c.rows))]
        for c in results
    ]


def pack_zip(
    user: User,
    ledger: LedgerAccess,
    framework: str,
    period: Period,
    tenant: str | None,
    *,
    now: datetime,
) -> tuple[str, bytes, str]:
    """``(file name, zip bytes, pack digest)``, if ``user`` may take a pack."""
    if not may_export(user.role):
        raise PackRefused(f"role {user.role} may not take an evidence pack")
    if framework not in FRAMEWORKS:
        raise ValueError(f"expected a framework in {FRAMEWORKS}, found {framework!r}")
    chosen: Framework = framework
    name = f"factorstream-evidence-{framework}-{now:%Y%m%dT%H%M%SZ}"
    with tempfile.TemporaryDirectory(prefix="factorstream-evidence-") as directory:
        out = Path(directory) / name
        pack = ledger.evidence_pack(chosen, period, tenant, out=out, now=now)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(out.rglob("*")):
                if path.is_file():
                    archive.write(path, f"{name}/{path.relative_to(out).as_posix()}")
    return f"{name}.zip", buffer.getvalue(), pack.digest
