"""``factorstream devices``: the subjects' trusted devices (remember-me) in the verifier
database, as an administrator sees them: listed (never a token or a device binding) and
revoked, which ends a trust at once (``device.revoked``, reason ``admin_request``, by the
administrator named)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Column, Table

from factorstream.cli.context import console, fail, settings_of
from factorstream.service_config import service_config

if TYPE_CHECKING:
    from verifiers.store import VerifierStore

app = typer.Typer(
    help="Trusted devices (remember-me): list a subject's, revoke them.", no_args_is_help=True
)
REASON = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _store(ctx: typer.Context) -> VerifierStore:
    from verifiers.service.server import open_store

    settings = settings_of(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_store(service_config(settings))


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment is not None else ""


@app.command("list")
def list_devices(
    ctx: typer.Context,
    tenant: str = typer.Argument(..., help="The tenant."),
    subject: str = typer.Argument(..., help="The subject."),
    every: bool = typer.Option(False, "--all", help="Revoked and expired trusts too."),
) -> None:
    """A subject's trusted devices (in force; --all: every one still stored)."""
    from verifiers import trusted_devices

    now = datetime.now(UTC)
    found = trusted_devices.list_devices(_store(ctx), tenant=tenant, subject=subject)
    shown = [d for d in found if every or d.status(now) == "active"]
    table = Table("name", "status", "tier", "trusted", "expires", "last used", "revoked by")
    table.columns.insert(0, Column("id", no_wrap=True, min_width=32))
    for device in shown:
        table.add_row(
            device.trust_id,
            escape(device.device_name or ""),
            device.status(now),
            device.tier,
            _when(device.created_at),
            _when(device.expires_at),
            _when(device.last_used_at),
            escape(device.revoked_by or ""),
        )
    console.print(table)
    console.print(f"{len(shown)} trusted device(s) of {escape(tenant)}/{escape(subject)}")


@app.command()
def revoke(
    ctx: typer.Context,
    tenant: str = typer.Argument(..., help="The tenant."),
    subject: str = typer.Argument(..., help="The subject."),
    trust_id: str | None = typer.Argument(None, help="The trust to end (see `devices list`)."),
    every: bool = typer.Option(False, "--all", help="End every trust of the subject."),
    by: str = typer.Option(..., "--by", help="The administrator revoking (recorded)."),
    reason: str = typer.Option("admin_request", help="Reason, snake_case (recorded)."),
) -> None:
    """End one trust (TRUST_ID) or all of a subject's (--all) at once: the device steps up
    again at its next sign-in."""
    from verifiers import trusted_devices
    from verifiers.store import Request

    if (trust_id is None) == (not every):
        raise fail("name one TRUST_ID, or --all for every trusted device of the subject")
    if not REASON.match(reason):
        raise fail(f"--reason: expected snake_case of at most 64 characters, found {reason!r}")
    if not by.strip() or len(by) > 128:
        raise fail("--by: expected the administrator's name or id, 1 to 128 characters")
    request = Request(
        tenant=tenant, subject=subject, correlationid=f"cli-{uuid.uuid4()}", now=datetime.now(UTC)
    )
    try:
        ended = trusted_devices.revoke(
            _store(ctx), request, trust_id=trust_id, reason=reason, revoked_by=by
        )
    except ValueError as error:
        raise fail(str(error)) from None
    if trust_id is not None and not ended:
        raise fail(f"no trusted device {escape(trust_id)} of {escape(tenant)}/{escape(subject)}")
    console.print(f"{ended} trusted device(s) of {escape(tenant)}/{escape(subject)} revoked")
