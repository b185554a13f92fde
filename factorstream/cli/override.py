"""``factorstream override``: the two-person administrator override (``verifiers/override.py``).

One administrator requests (``override request``) an unlock of a subject of the MFA service,
or a temporary-access code for it; a second, different one approves (``override approve``)
before the deadline. Administrators are the dashboard's users with role ``admin``
(``factorstream users add NAME --role admin``), and each signs in for every step with
their password and a current TOTP code, exactly as at the dashboard (same lockout): one
person at one keyboard cannot play both parts without the other's password and
authenticator. A failed sign-in, a non-administrator, a self-approval, an expired request
or a second approval is refused and recorded (``admin.override.refused``).

The events are signed with this machine's control key (``control.signing_key_file``), staged
in the verifiers' outbox (the MFA service's database) and published by
``factorstream relay``; the worker and the ledger accept them from a trusted key only.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from factorstream.cli.context import console, fail, settings_of
from factorstream.control_keys import control_signing_key
from factorstream.dashboard_config import dashboard_config
from factorstream.service_config import service_config
from factorstream.settings import Settings

if TYPE_CHECKING:
    from verifiers.override import Admin, OverrideOutcome
    from verifiers.store import VerifierStore

app = typer.Typer(
    help="Two-person administrator overrides: unlock a subject or grant temporary access.",
    no_args_is_help=True,
)

AsOption = typer.Option(..., "--as", help="Your dashboard user name (role admin).")
PasswordStdin = typer.Option(
    False, "--password-stdin", help="Read your password from standard input (one line)."
)
CodeOption = typer.Option(None, "--code", help="Your current TOTP code (asked if not given).")


def _store(settings: Settings) -> VerifierStore:
    from verifiers.service.server import open_store

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_store(service_config(settings))


def _admin(settings: Settings, name: str, password_stdin: bool, code: str | None) -> Admin:
    """``name`` signed in to the dashboard's users (password, then TOTP code): an
    administrator if their role is admin; a failed sign-in is an :class:`Admin` that did
    not sign in (the ceremony records and refuses it)."""
    from dashboard.app import open_directory
    from dashboard.auth import sign_in
    from dashboard.users import Role
    from verifiers.override import Admin

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True)
    totp_code = code or typer.prompt("TOTP code")
    directory = open_directory(dashboard_config(settings))
    signed = sign_in(directory, name=name, password=password, code=totp_code, now=_now())
    directory.engine.dispose()
    if signed.user is None:
        return Admin(name, is_admin=False, signed_in=False)
    return Admin(signed.user.name, is_admin=signed.user.role is Role.ADMIN)


def _now() -> datetime:
    return datetime.now(UTC)


def _refused(outcome: OverrideOutcome) -> typer.Exit:
    (event,) = outcome.events
    return fail(
        f"refused: {outcome.reason} (recorded as admin.override.refused {event.id}; "
        "`factorstream relay` publishes it)"
    )


@app.command("request")
def request(
    ctx: typer.Context,
    tenant: str = typer.Argument(..., help="The subject's tenant."),
    subject: str = typer.Argument(..., help="The subject to override."),
    action: str = typer.Option(
        ..., "--action", help="unlock (lift every lock) or temporary-access (a code)."
    ),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the ledger)."),
    ticket: str = typer.Option(..., "--ticket", help="The ticket that asks for it (recorded)."),
    as_: str = AsOption,
    tier: str = typer.Option("customer", "--tier", help="The subject's tier (its limits)."),
    hours: int = typer.Option(
        1, "--hours", min=1, help="Temporary access: how long the code stays valid."
    ),
    single_use: bool = typer.Option(
        True,
        "--single-use/--multi-use",
        help="Temporary access: one sign-in, or any until it expires.",
    ),
    approve_within: int = typer.Option(
        24, "--approve-within", min=1, help="Hours a second administrator has to approve."
    ),
    password_stdin: bool = PasswordStdin,
    code: str | None = CodeOption,
) -> None:
    """Ask for an override; a second administrator approves it with ``override approve``."""
    from schemas.fields import PolicyTier
    from verifiers.override import (
        OverrideAction,
        OverrideError,
        OverrideRules,
        request_override,
    )

    settings = settings_of(ctx)
    kind = action.replace("-", "_")
    if kind not in {a.value for a in OverrideAction}:
        raise fail(f"--action must be unlock or temporary-access, not {action!r}")
    if tier not in {t.value for t in PolicyTier}:
        raise fail(f"--tier must be one of {', '.join(t.value for t in PolicyTier)}, not {tier!r}")
    requester = _admin(settings, as_, password_stdin, code)
    try:
        outcome = request_override(
            _store(settings),
            tenant=tenant,
            subject=subject,
            action=kind,
            requester=requester,
            justification=reason,
            ticket=ticket,
            now=_now(),
            signer=control_signing_key(settings),
            tier=tier,
            single_use=single_use,
            valid_for=timedelta(hours=hours),
            rules=OverrideRules(approval_window=timedelta(hours=approve_within)),
        )
    except (OverrideError, ValueError) as error:
        raise fail(str(error)) from None
    if outcome.override is None:
        raise _refused(outcome)
    override = outcome.override
    console.print(
        f"requested [bold]{override.action}[/] of {escape(f'{tenant}/{subject}')}: request "
        f"[bold]{override.id}[/]; another administrator approves it before "
        f"{override.approve_before.isoformat(timespec='seconds')} with "
        f"`factorstream override approve {override.id} --as NAME`"
    )


@app.command("approve")
def approve(
    ctx: typer.Context,
    request_id: str = typer.Argument(..., help="The request to approve."),
    as_: str = AsOption,
    password_stdin: bool = PasswordStdin,
    code: str | None = CodeOption,
) -> None:
    """Approve another administrator's request: the unlock happens, or the temporary-access
    code is shown (once)."""
    from verifiers.override import OverrideError, approve_override

    settings = settings_of(ctx)
    approver = _admin(settings, as_, password_stdin, code)
    try:
        outcome = approve_override(
            _store(settings),
            request_id=request_id,
            approver=approver,
            now=_now(),
            signer=control_signing_key(settings),
        )
    except (OverrideError, ValueError) as error:
        raise fail(str(error)) from None
    if not outcome.accepted or outcome.override is None:
        raise _refused(outcome)
    override = outcome.override
    who = escape(f"{override.tenant}/{override.subject}")
    if outcome.grant is None:
        console.print(f"approved: {who} is unlocked (requested by {escape(override.requested_by)})")
        return
    grant = outcome.grant
    uses = "once" if grant.single_use else "any number of times"
    console.print(
        f"approved: temporary access for {who}, valid until "
        f"{grant.expires_at.isoformat(timespec='seconds')}, {uses}. Give the person this "
        "code; it is shown only now:"
    )
    console.print(f"temporary access code: [bold]{grant.code}[/]")


@app.command("list")
def list_requests(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant's."),
) -> None:
    """Requests, newest first: pending, approved (by whom) or expired."""
    from verifiers.override import list_overrides

    now = _now()
    table = Table("request", "subject", "action", "requested by", "ticket", "approve before")
    table.add_column("status")
    for override in list_overrides(_store(settings_of(ctx)), tenant=tenant):
        status = override.status(now)
        if override.approved_by is not None:
            status += f" by {override.approved_by}"
        table.add_row(
            override.id,
            escape(f"{override.tenant}/{override.subject}"),
            str(override.action),
            escape(override.requested_by),
            escape(override.ticket),
            override.approve_before.isoformat(timespec="seconds"),
            escape(status),
        )
    console.print(table)
