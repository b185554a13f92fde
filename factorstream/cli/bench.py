"""``factorstream bench NAME``: benchmarks that print figures beside their baseline."""

from __future__ import annotations

import json

import typer

from factorstream.bench import codec as codec_bench
from factorstream.bench import show
from factorstream.cli.context import console, settings_of

app = typer.Typer(help="Benchmarks (each prints its figure beside its baseline).")

Quick = typer.Option(False, "--quick", help="CI-sized run (seconds, not minutes).")
AsJson = typer.Option(False, "--json", help="Print a machine-readable result.")


@app.command()
def codec(quick: bool = Quick, as_json: bool = AsJson) -> None:
    """Decode+validate events/s: our codec vs stdlib json.loads + dict checks (goal ≥ 3×)."""
    show(codec_bench.run(quick=quick), as_json=as_json, console=console)


@app.command()
def publish(
    ctx: typer.Context,
    quick: bool = Quick,
    as_json: bool = AsJson,
    bootstrap: str | None = typer.Option(
        None, help="Broker to use; default: start a private local broker for the run."
    ),
) -> None:
    """Outbox relay events/s vs a bare kafka-python producer (goal ≥ 0.8×)."""
    from factorstream.bench import publish as publish_bench

    settings = settings_of(ctx)
    result = publish_bench.run(settings=settings, quick=quick, bootstrap=bootstrap)
    show(result, as_json=as_json, console=console)


@app.command()
def verifiers(
    quick: bool = Quick,
    as_json: bool = AsJson,
    postgres_url: str | None = typer.Option(
        None, help="PostgreSQL to use; default: start a private local server for the run."
    ),
) -> None:
    """TOTP and WebAuthn with store writes vs bare pyotp / py_webauthn (goals 0.5×, 0.7×)."""
    from factorstream.bench import verifiers as verifiers_bench

    results = verifiers_bench.run(quick=quick, postgres_url=postgres_url)
    if as_json:
        console.print_json(json.dumps([result.as_dict() for result in results]))
        return
    for result in results:
        show(result, as_json=False, console=console)
