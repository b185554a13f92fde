"""``factorstream bench NAME``: benchmarks that print figures beside their baseline."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path

import typer

from factorstream.bench import BenchResult, bench_family, show
from factorstream.bench import codec as codec_bench
from factorstream.cli.context import console, errors, fail, settings_of

app = typer.Typer(help="Benchmarks (each prints its figure beside its baseline).")

Quick = typer.Option(False, "--quick", help="CI-sized run (seconds, not minutes).")
AsJson = typer.Option(False, "--json", help="Print a machine-readable result.")


@app.command()
def codec(quick: bool = Quick, as_json: bool = AsJson) -> None:
    """Decode+validate events/s: our codec vs stdlib json.loads + dict checks (goal ≥ 3×)."""
    show(codec_bench.run(quick=quick), as_json=as_json, console=console)


@app.command()
def folds(ctx: typer.Context, quick: bool = Quick, as_json: bool = AsJson) -> None:
    """CPU µs/event of every pure fold of the worker, states as live objects (goal ≤ 60 µs)."""
    from factorstream.bench import folds as folds_bench

    show(folds_bench.run(settings=settings_of(ctx), quick=quick), as_json=as_json, console=console)


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
def ingest(
    ctx: typer.Context,
    quick: bool = Quick,
    as_json: bool = AsJson,
    bootstrap: str | None = typer.Option(
        None, help="Broker to use; default: start a private local broker for the run."
    ),
) -> None:
    """HTTP batch ingest events/s, 202 on acknowledgement, vs a bare aiokafka producer
    sending the same bytes (goal ≥ 0.5×); each adapter's mapping rate."""
    from factorstream.bench import ingest as ingest_bench

    results = ingest_bench.run(settings=settings_of(ctx), quick=quick, bootstrap=bootstrap)
    show_all(results, as_json=as_json)


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

    show_all(verifiers_bench.run(quick=quick, postgres_url=postgres_url), as_json=as_json)


@app.command()
def service(
    quick: bool = Quick,
    as_json: bool = AsJson,
    postgres_url: str | None = typer.Option(
        None, help="PostgreSQL to use; default: start a private local server for the run."
    ),
) -> None:
    """MFA service over HTTP, 32 clients: TOTP verifications/s, p50/p99, assess p99.

    Beside the durable floor on PostgreSQL; goals: HTTP TOTP p99 ≤ 25 ms, the library path
    ≥ 0.5× the floor, assess p99 ≤ 10 ms."""
    from factorstream.bench import service as service_bench

    show_all(service_bench.run(quick=quick, postgres_url=postgres_url), as_json=as_json)


@app.command()
def pipeline(
    ctx: typer.Context,
    quick: bool = Quick,
    as_json: bool = AsJson,
    events: int | None = typer.Option(None, help="Events to push through (default 200,000)."),
    bootstrap: str | None = typer.Option(
        None, help="Broker to use; default: start a private local broker for the run."
    ),
) -> None:
    """Worker events/s vs bare aiokafka consume+decode (goal ≥ 0.5×); lockout latency p99."""
    from factorstream.bench import pipeline as pipeline_bench

    results = pipeline_bench.run(
        settings=settings_of(ctx),
        quick=quick,
        events=events,
        bootstrap=bootstrap,
        say=lambda text: errors.log(text),
    )
    show_all(results, as_json=as_json)


@app.command()
def replay(
    ctx: typer.Context,
    quick: bool = Quick,
    as_json: bool = AsJson,
    events: int | None = typer.Option(None, help="Events to replay (default 1,000,000)."),
    bootstrap: str | None = typer.Option(
        None, help="Broker to use; default: start a private local broker for the run."
    ),
) -> None:
    """factorstream replay over 1,000,000 events (goal: under 5 minutes)."""
    from factorstream.bench import replay as replay_bench

    result = replay_bench.run(
        settings=settings_of(ctx),
        quick=quick,
        events=events,
        bootstrap=bootstrap,
        say=lambda text: errors.log(text),
    )
    show_all([result], as_json=as_json)


@app.command()
def ledger(
    quick: bool = Quick,
    as_json: bool = AsJson,
    postgres_url: str | None = typer.Option(
        None,
        help="PostgreSQL server (a throw-away database is made on it); default: a private "
        "local server.",
    ),
) -> None:
    """Ledger appends/s with the Merkle tree vs a plain batched INSERT (goal ≥ 0.5×); verify
    1,000,000 entries (goal < 30 s)."""
    from factorstream.bench import ledger as ledger_bench

    show_all(ledger_bench.run(quick=quick, postgres_url=postgres_url), as_json=as_json)


@app.command()
def analytics(
    ctx: typer.Context,
    quick: bool = Quick,
    as_json: bool = AsJson,
    rows: int | None = typer.Option(
        None, "--rows", min=1, help="Synthetic events (default 10,000,000; --quick 20,000)."
    ),
) -> None:
    """Lake ingest rows/s vs bare pyarrow write_table (goal ≥ 0.7×); each dashboard query's
    p50 vs a bare count(*) (goal ≤ 300 ms)."""
    from factorstream.bench import analytics as analytics_bench

    batch_rows = settings_of(ctx).lake.batch_rows
    show_all(analytics_bench.run(quick=quick, rows=rows, batch_rows=batch_rows), as_json=as_json)


def show_all(results: Sequence[BenchResult], *, as_json: bool) -> None:
    """Several results: one JSON list, or one table each."""
    if as_json:
        console.print_json(json.dumps([result.as_dict() for result in results]))
        return
    for result in results:
        show(result, as_json=False, console=console)


BENCHES = (
    "codec",
    "folds",
    "publish",
    "ingest",
    "verifiers",
    "service",
    "ledger",
    "analytics",
    "pipeline",
    "replay",
)


ResultsFile = typer.Option(
    None, help="Where to write every result as JSON (default: bench-results.json in data_dir)."
)
Skip = typer.Option([], help="Leave out a benchmark: " + ", ".join(BENCHES) + ".")


@app.command("all")
def all_benches(
    ctx: typer.Context,
    quick: bool = Quick,
    as_json: bool = AsJson,
    output: Path | None = ResultsFile,
    skip: list[str] = Skip,
    update: bool = typer.Option(
        False,
        "--update",
        help="Keep the results of the benchmarks left out (--skip) from the output file, "
        "replacing only those run now.",
    ),
    pipeline_events: int | None = typer.Option(
        None, min=1, help="Events bench pipeline pushes through (default 200,000)."
    ),
    bootstrap: str | None = typer.Option(
        None, help="Broker to use; default: start a private local broker for the run."
    ),
    postgres_url: str | None = typer.Option(
        None,
        help="PostgreSQL server (throw-away databases are made on it); default: a private "
        "local server.",
    ),
) -> None:
    """Every benchmark in one run (one private broker and one PostgreSQL for all); the
    figures go to a JSON file, which docs/benchmarks.md's table is written from."""
    from factorstream.bench import analytics as analytics_bench
    from factorstream.bench import folds as folds_bench
    from factorstream.bench import ingest as ingest_bench
    from factorstream.bench import ledger as ledger_bench
    from factorstream.bench import pipeline as pipeline_bench
    from factorstream.bench import publish as publish_bench
    from factorstream.bench import replay as replay_bench
    from factorstream.bench import service as service_bench
    from factorstream.bench import verifiers as verifiers_bench
    from factorstream.bench.broker import broker_for
    from factorstream.localpostgres import local_postgres

    settings = settings_of(ctx)
    unknown = sorted(set(skip) - set(BENCHES))
    if unknown:
        raise fail(f"--skip: unknown benchmark(s) {', '.join(unknown)}")
    path = output or settings.data_dir / "bench-results.json"
    kept = _kept_results(path, skip) if update else {}
    documents: list[dict[str, object] | BenchResult] = []  # kept, or measured now
    results: list[BenchResult] = []
    with (
        broker_for(settings, bootstrap) as on_broker,
        contextlib.nullcontext(postgres_url) if postgres_url else local_postgres() as postgres,
    ):
        runs = {
            "codec": lambda: [codec_bench.run(quick=quick)],
            "folds": lambda: [folds_bench.run(settings=settings, quick=quick)],
            "publish": lambda: [
                publish_bench.run(
                    settings=on_broker, quick=quick, bootstrap=on_broker.kafka_bootstrap
                )
            ],
            "ingest": lambda: ingest_bench.run(
                settings=on_broker, quick=quick, bootstrap=on_broker.kafka_bootstrap
            ),
            "verifiers": lambda: verifiers_bench.run(quick=quick, postgres_url=postgres),
            "service": lambda: service_bench.run(quick=quick, postgres_url=postgres),
            "ledger": lambda: ledger_bench.run(quick=quick, postgres_url=postgres),
            "analytics": lambda: analytics_bench.run(
                quick=quick, rows=None, batch_rows=settings.lake.batch_rows
            ),
            "pipeline": lambda: pipeline_bench.run(
                settings=on_broker,
                quick=quick,
                events=pipeline_events,
                bootstrap=on_broker.kafka_bootstrap,
            ),
            "replay": lambda: [
                replay_bench.run(
                    settings=on_broker,
                    quick=quick,
                    events=None,
                    bootstrap=on_broker.kafka_bootstrap,
                )
            ],
        }
        for name in BENCHES:
            if name in skip:
                documents += kept.get(name, [])
                continue
            errors.log(f"bench {name}{' --quick' if quick else ''}")
            ran = runs[name]()
            results += ran
            documents += ran
    # one time stamp for everything measured now: docs/benchmarks.md groups the figures by run
    written = [d.as_dict() if isinstance(d, BenchResult) else d for d in documents]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(written, indent=2) + "\n")
    show_all(results, as_json=as_json)
    errors.log(f"wrote {len(documents)} results to {path} ({len(results)} measured now)")


def _kept_results(path: Path, skip: Sequence[str]) -> dict[str, list[dict[str, object]]]:
    """The results in ``path`` of the benchmarks in ``skip``, by benchmark."""
    if not path.exists():
        raise fail(f"--update: {path} does not exist")
    try:
        documents = json.loads(path.read_text())
    except ValueError as error:
        raise fail(f"--update: {path} is not a results file: {error}") from None
    kept: dict[str, list[dict[str, object]]] = {}
    for document in documents:
        family = bench_family(str(document["bench"]))
        if family in skip:
            kept.setdefault(family, []).append(document)
    return kept
