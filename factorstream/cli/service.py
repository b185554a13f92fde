"""``factorstream serve`` runs the MFA service; ``clients`` manages its callers'
credentials; ``service-keys`` rotates the key that signs its assertions; ``sms-costs``
checks and shows its SMS price table and caps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Column, Table

from factorstream.cli.context import console, errors, fail, redacted, settings_of
from factorstream.service_config import service_config

if TYPE_CHECKING:
    from verifiers.sendcaps import SendCharges
    from verifiers.service.clients import ServiceClients

clients = typer.Typer(
    help="The MFA service's callers: per-tenant bearer credentials.", no_args_is_help=True
)
keys = typer.Typer(help="The key that signs the MFA service's assertions.", no_args_is_help=True)


def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="Interface to bind (default: the settings)."),
    port: int | None = typer.Option(None, help="Port (default: the settings)."),
    stream_view: bool | None = typer.Option(
        None,
        "--stream-view/--no-stream-view",
        help="Read the stream's locks, IP blocks and profiles from Kafka (default: the "
        "settings' service.stream_view).",
    ),
) -> None:
    """Serve the MFA service until SIGINT, SIGTERM or SIGHUP.

    The HTTP API is under /v1, its OpenAPI document at /openapi.json, the assertions'
    public keys at /.well-known/jwks.json; probes at /health and /ready, Prometheus
    metrics at /metrics."""
    from factorstream.metrics import metrics_registry
    from verifiers.service.server import serve as run

    settings = settings_of(ctx)
    bind, listen = host or settings.service.host, port or settings.service.port
    config = service_config(settings, host=bind, port=listen, stream_view=stream_view)
    if config.sms_costs_file is not None:
        _send_charges(config.sms_costs_file)  # a bad file stops here, said plainly
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    def ready() -> None:
        console.print(
            f"MFA service on [bold]http://{bind}:{listen}/v1[/] (issuer {config.issuer}, "
            f"verifier database {redacted(config.database_url)}, stream view "
            f"{'on ' + ', '.join(config.stream.topics) if config.stream else 'off'})",
            soft_wrap=True,
        )

    run(config, host=bind, port=listen, on_ready=ready, registry=metrics_registry())
    console.print("MFA service stopped")


def _send_charges(path: Path) -> SendCharges:
    from verifiers.pricing import PriceTableError
    from verifiers.sendcaps import load_send_charges

    try:
        return load_send_charges(path)
    except PriceTableError as error:
        raise fail(f"SMS costs file: {escape(str(error))}") from None


COSTS_FILE = typer.Argument(
    None, help="A price table (TOML or JSON; default: the settings' service.sms_costs_file)."
)


def sms_costs(
    ctx: typer.Context,
    file: Path | None = COSTS_FILE,
) -> None:
    """Check an SMS and voice price table and its daily caps (docs/sms-cost.md) and show
    them: every price per channel, provider and country, and the caps per country."""
    from verifiers.pricing import format_money

    path = file or settings_of(ctx).service.sms_costs_file
    if path is None:
        raise fail("no file: pass one, or set FACTORSTREAM_SERVICE__SMS_COSTS_FILE")
    charges = _send_charges(path)
    prices, caps = charges.prices, charges.caps
    table = Table("channel", "provider", "country", Column("price", justify="right"))
    for channel, providers in prices.channels.items():
        for provider, rows in sorted(providers.items()):
            if rows.default is not None:
                table.add_row(str(channel), provider, "default", format_money(rows.default))
            for country, micros in sorted(rows.countries.items()):
                table.add_row(str(channel), provider, country, format_money(micros))
    table.add_row("any", "any other", "any", format_money(prices.fallback))
    console.print(table)
    capped = Table(
        "country", Column("sends a day", justify="right"), Column("spend a day", justify="right")
    )
    named = [("default", caps.default), ("unknown", caps.unknown), *sorted(caps.countries.items())]
    for country, cap in named:
        capped.add_row(
            country,
            "—" if cap.sends is None else str(cap.sends),
            "—" if cap.spend is None else format_money(cap.spend),
        )
    console.print(capped)
    console.print(f"{escape(str(path))}: prices in {prices.currency}, caps per tenant and UTC day")


def _clients(ctx: typer.Context) -> ServiceClients:
    from verifiers.service.clients import ServiceClients
    from verifiers.service.server import open_store

    settings = settings_of(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return ServiceClients(open_store(service_config(settings)).engine)


@clients.command("add")
def clients_add(
    ctx: typer.Context,
    tenant: str = typer.Option(..., help="The tenant the client acts for (only this one)."),
    audience: str | None = typer.Option(
        None, help="`aud` of the assertions it receives (default: the tenant)."
    ),
    label: str | None = typer.Option(None, help="What the client is (recorded as application)."),
) -> None:
    """Create a client; its credential is printed once, alone on standard output."""
    store = _clients(ctx)
    try:
        issued = store.add(tenant=tenant, audience=audience, label=label, now=datetime.now(UTC))
    except ValueError as error:
        raise fail(str(error)) from None
    client = issued.client
    errors.print(
        f"client [bold]{client.client_id}[/] of tenant {escape(client.tenant)}, audience "
        f"{escape(client.audience)}. Its credential (shown once; send it as "
        "Authorization: Bearer …):",
        soft_wrap=True,
    )
    print(issued.credential)


@clients.command("list")
def clients_list(ctx: typer.Context) -> None:
    """Every client, revoked ones too (never their credentials)."""
    store = _clients(ctx)
    table = Table("tenant", "audience", "label", "created", "revoked")
    table.columns.insert(0, Column("id", no_wrap=True, min_width=16))
    for client in store.list():
        table.add_row(
            client.client_id,
            escape(client.tenant),
            escape(client.audience),
            escape(client.label or ""),
            f"{client.created_at:%Y-%m-%d %H:%M:%S}",
            f"{client.revoked_at:%Y-%m-%d %H:%M:%S}" if client.revoked_at else "",
        )
    console.print(table)


@clients.command("revoke")
def clients_revoke(
    ctx: typer.Context, client_id: str = typer.Argument(..., help="The client's id.")
) -> None:
    """Revoke a client: its credential is refused from the next request on."""
    store = _clients(ctx)
    if not store.revoke(client_id, now=datetime.now(UTC)):
        raise fail(f"no client {client_id} in force")
    console.print(f"client {escape(client_id)} revoked")


@keys.command("rotate")
def keys_rotate(ctx: typer.Context) -> None:
    """Sign assertions with a new key from the service's next start.

    The old public key stays in the JWKS, so assertions already issued verify until they
    expire."""
    from verifiers.service.assertions import AssertionKeys

    config = service_config(settings_of(ctx))
    signing = AssertionKeys(config.signing_key_file)
    old = signing.kid
    console.print(f"assertion signing key {old} retired; new key {signing.rotate()}")


@keys.command("show")
def keys_show(ctx: typer.Context) -> None:
    """The JWKS the service publishes (current and retired public keys)."""
    import json

    from verifiers.service.assertions import AssertionKeys

    config = service_config(settings_of(ctx))
    print(json.dumps(AssertionKeys(config.signing_key_file).jwks(), indent=2))
