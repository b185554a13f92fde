"""Evidence packs on the Compliance page: the controls' status for the page's filters, and
a pack (zip) per framework at ``/evidence/<framework>.zip`` for the roles that may take
one (checked here, server-side: any other signed-in role gets 403, whatever it asks).

The dashboard reads the ledger and never appends to it. Each pack it hands out is recorded
instead as an ``audit.evidence.downloaded`` event (the pack's manifest digest, its
framework, period and counts; the dashboard user as subject) staged in the dashboard's
outbox *before* the first byte is sent, beside its sign-in events: ``factorstream relay``
publishes it and the worker's ledger sink appends it, so the pack that was handed out is
provable later like one ``factorstream evidence`` issued. A download that cannot be
recorded is not served.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import flask
import sqlalchemy as sa
from werkzeug.wrappers import Response

from compliance.controls import FRAMEWORKS, ControlResult, Framework
from compliance.pack import IssuedPack, PackError, pack_digest
from compliance.periods import Period
from dashboard.context import DashboardContext
from dashboard.filters import DashboardFilters, from_inputs
from dashboard.gate import current_user
from dashboard.ledger import LedgerAccess
from dashboard.users import TENANT, User, UserDirectory, may_export
from schemas import Event, new_event
from schemas.payloads import EvidenceDownloaded

DEFAULT_DAYS = 90
"""The period when the page's filters leave it open: the last 90 days."""
DOWNLOAD_ENDPOINT = "factorstream_evidence_pack"


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


def pack_url(framework: str, filters: DashboardFilters) -> str:
    """Where the page's link for ``framework`` points, with the filters' tenant and days."""
    query = {
        name: value
        for name, value in (
            ("tenant", filters.tenant),
            ("since", filters.since and filters.since.isoformat()),
            ("until", filters.until and filters.until.isoformat()),
        )
        if value
    }
    return f"/evidence/{framework}.zip" + (f"?{urlencode(query)}" if query else "")


def filters_of_query(args: Mapping[str, str]) -> DashboardFilters:
    """The filters of a download's query string (garbage in: that filter is dropped)."""
    return from_inputs(args.get("tenant"), (args.get("since"), args.get("until")), None, None)


def pack_zip(
    user: User,
    ledger: LedgerAccess,
    framework: str,
    period: Period,
    tenant: str | None,
    *,
    now: datetime,
) -> tuple[str, bytes, IssuedPack]:
    """``(file name, zip bytes, the pack)``, if ``user`` may take a pack."""
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
    return f"{name}.zip", buffer.getvalue(), pack


def downloaded_event(pack: IssuedPack, *, user: User, source: str, now: datetime) -> Event:
    """``audit.evidence.downloaded``: ``pack``'s digest, taken by ``user``."""
    return new_event(
        EvidenceDownloaded(**pack_digest(pack)),
        source=source,
        tenant=TENANT,
        subject=user.subject,
        correlationid=f"evidence-{pack.digest[:32]}",
        now=now,
    )


def _refusal(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, mimetype="text/plain")


def install_pack_downloads(
    server: flask.Flask, *, context: DashboardContext, directory: UserDirectory
) -> None:
    """``GET /evidence/<framework>.zip?tenant=&since=&until=`` (see the module docstring);
    the gate has already refused a request without a session."""

    def download(framework: str) -> Response:
        user = current_user()
        if not may_export(user.role):
            return _refusal(403, f"role {user.role} may not take an evidence pack")
        if framework not in FRAMEWORKS:
            return _refusal(404, f"no framework {framework!r}: one of {', '.join(FRAMEWORKS)}")
        ledger = context.ledger
        if ledger is None:
            return _refusal(404, "no ledger database yet")
        now = context.now()
        filters = filters_of_query(flask.request.args)
        period = period_of(filters, now=now)
        try:
            name, content, pack = pack_zip(user, ledger, framework, period, filters.tenant, now=now)
        except (PackError, ValueError) as error:
            return _refusal(409, str(error))
        event = downloaded_event(pack, user=user, source=directory.store.source, now=now)
        try:
            directory.record([event])
        except sa.exc.SQLAlchemyError:
            return _refusal(503, "the download could not be recorded; no pack was handed out")
        response = Response(content, mimetype="application/zip")
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        response.headers["X-Evidence-Manifest-SHA256"] = pack.digest
        response.headers["X-Evidence-Event-Id"] = event.id
        return response

    server.add_url_rule("/evidence/<framework>.zip", DOWNLOAD_ENDPOINT, download)
