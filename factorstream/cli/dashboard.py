"""``factorstream dashboard`` serves the Dash app; ``factorstream users`` manages its users.

Dashboard users sign in with a password and a TOTP code (``dashboard/auth.py``). ``users
add`` prints the TOTP secret once, as an ``otpauth://`` URI, a terminal QR code and the
base32 secret; the first good code at sign-in activates the enrollment.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import segno
import typer
from rich.markup import escape
from rich.table import Table

from factorstream.cli.context import console, fail, redacted, settings_of
from factorstream.control_keys import control_signing_key
from factorstream.dashboard_config import dashboard_config

app = typer.Typer(help="Dashboard users (password + TOTP sign-in).", no_args_is_help=True)


def dashboard(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="Interface to bind (default: the settings)."),
    port: int | None = typer.Option(None, help="Port (default: the settings)."),
) -> None:
    """Serve the dashboard until stopped; every page asks for a password and a TOTP code.

    Served by waitress (a production WSGI server, several threads), not Flask's
    development server."""
    from waitress import serve

    from dashboard.app import create_app
    from factorstream.metrics import metrics_registry

    settings = settings_of(ctx)
    bind = host or settings.dashboard.host
    listen = port or settings.dashboard.port
    try:
        dash_app = create_app(dashboard_config(settings), registry=metrics_registry())
    except ValueError as error:
        raise fail(str(error)) from None
    console.print(
        f"dashboard on [bold]http://{bind}:{listen}/[/] (lake {settings.lake_path()}, "
        f"users {redacted(settings.dashboard_database_url())})"
    )
    serve(dash_app.server, host=bind, port=listen, threads=8, ident="factorstream")


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User name (what they type at sign-in)."),
    role: str = typer.Option(
        ..., "--role", help="auditor (read, export), soc (read only) or admin (read, export)."
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input (one line)."
    ),
) -> None:
    """Add a user; prints the TOTP secret (URI, QR code, base32) once."""
    from dashboard.app import open_directory
    from dashboard.users import Role, UserError

    if role not in {r.value for r in Role}:
        raise fail(f"--role must be one of {', '.join(r.value for r in Role)}, not {role!r}")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    directory = open_directory(dashboard_config(settings_of(ctx)))
    try:
        created = directory.add(name, role=role, password=password, now=datetime.now(UTC))
    except UserError as error:
        raise fail(str(error)) from None
    console.print(f"added [bold]{escape(created.user.name)}[/] ({created.user.role})")
    console.print("Scan this with an authenticator app; it is shown only now:")
    segno.make(created.provisioning_uri, error="m").terminal(compact=True)
    console.print(f"otpauth URI: {escape(created.provisioning_uri)}", soft_wrap=True)
    console.print(f"secret (base32): {created.secret}")
    console.print("The first sign-in with a current code activates the authenticator.")


@app.command("list")
def list_users(ctx: typer.Context) -> None:
    """List users: role, authenticator state, lockout, created, disabled."""
    from dashboard.app import open_directory
    from dashboard.auth import account_status

    directory = open_directory(dashboard_config(settings_of(ctx)))
    table = Table("name", "role", "authenticator", "lockout", "created", "disabled")
    now = datetime.now(UTC)
    for user in directory.all():
        status = account_status(directory, user, now=now)
        table.add_row(
            escape(user.name),
            str(user.role),
            status.totp,
            status.lockout,
            user.created_at.isoformat(timespec="seconds"),
            user.disabled_at.isoformat(timespec="seconds") if user.disabled_at else "",
        )
    console.print(table)


@app.command("disable")
def disable(
    ctx: typer.Context, name: str = typer.Argument(..., help="The user to disable.")
) -> None:
    """Disable a user and end their sessions."""
    from dashboard.app import open_directory
    from dashboard.users import UserError

    directory = open_directory(dashboard_config(settings_of(ctx)))
    try:
        directory.disable(name, now=datetime.now(UTC))
    except UserError as error:
        raise fail(str(error)) from None
    console.print(f"disabled [bold]{escape(name)}[/]; their sessions are over")


@app.command("unlock")
def unlock(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user to unlock."),
    by: str = typer.Option(..., "--by", help="Who approves the unlock (recorded)."),
) -> None:
    """Lift a user's lockout, temporary or permanent (an audited administrator override)."""
    from dashboard.app import open_directory
    from dashboard.users import UserError

    settings = settings_of(ctx)
    directory = open_directory(dashboard_config(settings))
    try:
        signer = control_signing_key(settings)
        event = directory.unlock(name, now=datetime.now(UTC), approved_by=by, signer=signer)
    except (UserError, ValueError) as error:
        raise fail(str(error)) from None
    console.print(
        f"unlocked [bold]{escape(name)}[/] (admin.override.approved {event.id}, approved by "
        f"{escape(by)}; `factorstream relay` publishes it)"
    )
