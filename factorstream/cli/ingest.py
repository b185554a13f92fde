"""``factorstream ingest``: CloudEvents over HTTP (``serve``) and its callers' credentials."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Column, Table

from factorstream.cli.context import console, errors, fail, redacted, settings_of

if TYPE_CHECKING:
    from verifiers.service.clients import ServiceClients

app = typer.Typer(
    help="HTTP ingest: CloudEvents from any language onto the events topic.",
    no_args_is_help=True,
)
credentials = typer.Typer(
    help="The ingest's callers: per-tenant bearer credentials (hashed, revocable).",
    no_args_is_help=True,
)
app.add_typer(credentials, name="credentials")


def utc_now() -> datetime:
    return datetime.now(UTC)


@app.command()
def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="Interface to bind (default: the settings)."),
    port: int | None = typer.Option(None, help="Port (default: the settings)."),
) -> None:
    """Serve POST /v1/events until SIGINT, SIGTERM or SIGHUP.

    Structured (application/cloudevents+json), binary (ce-* headers) and batch
    (application/cloudevents-batch+json) mode; 202 once the broker acknowledged every
    event, 503 with Retry-After while it cannot be reached."""
    from factorstream.ingest_config import ingest_server_config
    from factorstream.metrics import metrics_registry
    from sources.ingest_server import serve as run

    settings = settings_of(ctx)
    bind, listen = host or settings.ingest.host, port or settings.ingest.port
    try:
        config = ingest_server_config(settings)
    except ValueError as error:
        raise fail(str(error)) from None
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    def ready() -> None:
        signed = "required" if config.app.signing_secret else "off"
        console.print(
            f"ingest on [bold]http://{bind}:{listen}/v1/events[/] → topic {config.topic} on "
            f"{settings.kafka().describe()} (credentials {redacted(config.database_url)}, "
            f"request signatures {signed})",
            soft_wrap=True,
        )

    def idp_webhooks(delivery: Any) -> Any:
        """Every adapter's webhook receivers (``factorstream idp add`` with a webhook
        secret), mounted in this server on its one delivery."""
        from fastapi import APIRouter

        from factorstream.idp_config import webhook_routers

        mounted = APIRouter()
        for router in webhook_routers(settings, delivery):
            mounted.include_router(router)
        return mounted

    run(
        config,
        host=bind,
        port=listen,
        clock=utc_now,
        routers=[idp_webhooks],
        on_ready=ready,
        registry=metrics_registry(),
    )
    console.print("ingest stopped")


def _credentials(ctx: typer.Context) -> ServiceClients:
    from sources.credentials import ingest_credentials

    settings = settings_of(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return ingest_credentials(settings.ingest_database_url())


@credentials.command("add")
def credentials_add(
    ctx: typer.Context,
    tenant: str = typer.Option(..., help="The tenant whose events it may write (only this one)."),
    label: str | None = typer.Option(None, help="Who sends with it (a service's name)."),
) -> None:
    """Create a credential; it is printed once, alone on standard output."""
    store = _credentials(ctx)
    try:
        issued = store.add(tenant=tenant, audience=None, label=label, now=utc_now())
    except ValueError as error:
        raise fail(str(error)) from None
    errors.print(
        f"ingest credential [bold]{issued.client.client_id}[/] of tenant "
        f"{escape(issued.client.tenant)}. Shown once; send it as Authorization: Bearer …:",
        soft_wrap=True,
    )
    print(issued.credential)


@credentials.command("list")
def credentials_list(ctx: typer.Context) -> None:
    """Every credential, revoked ones too (never the secrets)."""
    store = _credentials(ctx)
    table = Table("tenant", "label", "created", "revoked")
    table.columns.insert(0, Column("id", no_wrap=True, min_width=16))
    for client in store.list():
        table.add_row(
            client.client_id,
            escape(client.tenant),
            escape(client.label or ""),
            f"{client.created_at:%Y-%m-%d %H:%M:%S}",
            f"{client.revoked_at:%Y-%m-%d %H:%M:%S}" if client.revoked_at else "",
        )
    console.print(table)


@credentials.command("revoke")
def credentials_revoke(
    ctx: typer.Context, credential_id: str = typer.Argument(..., help="The credential's id.")
) -> None:
    """Revoke a credential: refused from the next request on (a running ingest that
    authenticated it in the last 5 s may take it until then)."""
    store = _credentials(ctx)
    if not store.revoke(credential_id, now=utc_now()):
        raise fail(f"no ingest credential {credential_id} in force")
    console.print(f"ingest credential {escape(credential_id)} revoked")
