"""``factorstream idp``: identity providers' logs as our events."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

import typer

from factorstream.cli.context import fail
from schemas import Event, encode
from sources import Unmapped

app = typer.Typer(
    help="Identity providers' logs (Auth0, Okta, Keycloak, Entra ID) mapped to the event contract."
)


class Provider(StrEnum):
    AUTH0 = "auth0"
    OKTA = "okta"
    KEYCLOAK = "keycloak"
    ENTRA = "entra"


Mapper = Callable[[Any], Event | Unmapped | Sequence[Event | Unmapped]]
"""One record in; what it becomes (a record may become several events)."""


def _mapper(provider: Provider, tenant: str, source: str) -> Mapper:
    from factorstream.idp_config import mapper_for

    return mapper_for(provider.value, tenant, source)


ProviderArgument = typer.Argument(..., help="Whose log records the file holds.")
FileArgument = typer.Argument(..., help="One JSON object a line; - for standard input.")


@app.command("map")
def map_file(
    provider: Provider = ProviderArgument,
    file: Path = FileArgument,
    tenant: str = typer.Option(..., help="Our tenant id the events are filed under."),
    source: str = typer.Option(
        ..., help="The events' source, e.g. https://acme.eu.auth0.com/ (ids derive from it)."
    ),
) -> None:
    """Dry run: print what each record becomes, nothing is sent.

    Events go to standard output as JSON lines (structured CloudEvents); records that
    become no event go to standard error as JSON lines with the reason, then a summary.
    Exits 0 unless the file cannot be read.
    """
    try:
        stream = sys.stdin if str(file) == "-" else file.open(encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}") from None
    with stream:
        try:
            counts = write_mapped(stream, _mapper(provider, tenant, source), sys.stdout, sys.stderr)
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"cannot read {file}: {exc}") from None
    summary = ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
    print(f"{provider.value}: {summary or 'no records'}", file=sys.stderr)


def write_mapped(lines: Iterable[str], mapper: Mapper, out: TextIO, err: TextIO) -> Counter[str]:
    """Map each line; events to ``out``, unmapped records to ``err``. Counts by outcome."""
    counts: Counter[str] = Counter()
    for number, result in _results(lines, mapper):
        if isinstance(result, Unmapped):
            counts[f"unmapped ({result.reason})"] += 1
            err.write(json.dumps({"line": number, "unmapped": result.as_json()}) + "\n")
        else:
            counts["mapped"] += 1
            out.write(encode(result).decode() + "\n")
    return counts


def _results(lines: Iterable[str], mapper: Mapper) -> Iterator[tuple[int, Event | Unmapped]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:
            yield number, Unmapped("file", None, None, "not_json", str(exc))
            continue
        mapped = mapper(record)
        for result in mapped if isinstance(mapped, Sequence) else [mapped]:
            yield number, result


# -- adapters: add, status, poll, ingest (the thin I/O of sources/*_api.py, webhooks) -----


AdapterProvider = Provider  # the providers an adapter can poll: the ones it can map


AdapterProviderArgument = typer.Argument(..., help="The identity provider.")
AdapterNameArgument = typer.Argument(
    ..., help="The adapter's name (lower case letters, digits, - and _)."
)
ExportArgument = typer.Argument(
    ..., help="A saved export: one JSON object a line, or one JSON array."
)


@app.command("add")
def add(
    ctx: typer.Context,
    provider: AdapterProvider = AdapterProviderArgument,
    name: str = AdapterNameArgument,
    tenant: str = typer.Option(..., help="Our tenant id the events are filed under."),
    source: str = typer.Option(
        ..., help="The events' source, e.g. https://acme.eu.auth0.com/ (ids derive from it)."
    ),
    base_url: str = typer.Option(
        ...,
        help="The provider's API: https://acme.eu.auth0.com, https://acme.okta.com, "
        "https://sso.example.com (Keycloak), https://graph.microsoft.com (Entra).",
    ),
    credentials_file: str = typer.Option(
        ...,
        help="A JSON object of the API's secrets, or - for standard input (never on the "
        "command line). auth0: client_id, client_secret [, audience, log_stream_token]; "
        "okta: api_token, or client_id and private_key_pem [, key_id] [, event_hook_secret, "
        "event_hook_header]; keycloak and entra: client_id, client_secret. Stored mode 0600.",
    ),
    realm: str | None = typer.Option(None, help="Keycloak: the realm whose events to read."),
    directory: str | None = typer.Option(None, help="Entra: the directory (tenant) id."),
    login_url: str | None = typer.Option(
        None, help="Entra: the token endpoint's host (default https://login.microsoftonline.com)."
    ),
    start_from: str | None = typer.Option(
        None, help="Auth0: start after this log id (default: the oldest log retained)."
    ),
) -> None:
    """Configure an adapter: which provider, whose tenant, its API and credentials."""
    from pydantic import ValidationError

    from factorstream.cli.context import settings_of
    from factorstream.idp_config import Adapter, BadCredentials, adapter_files, check_credentials
    from sources.cursors import check_name

    try:
        check_name(name)
        adapter = Adapter(
            name=name, provider=provider.value, tenant=tenant, source=source, base_url=base_url,
            realm=realm, directory=directory, login_url=login_url, start_from=start_from,
        )  # fmt: skip
    except (ValueError, ValidationError) as exc:
        raise fail(str(exc)) from None
    if provider is AdapterProvider.KEYCLOAK and not realm:
        raise fail("keycloak needs --realm")
    if provider is AdapterProvider.ENTRA and not directory:
        raise fail("entra needs --directory (the Entra tenant id)")
    try:
        if credentials_file == "-":
            text = sys.stdin.read()
        else:
            text = Path(credentials_file).read_text(encoding="utf-8")
        credentials = check_credentials(provider.value, json.loads(text))
    except OSError as exc:
        raise fail(f"cannot read {credentials_file}: {exc.strerror or exc}") from None
    except ValueError as exc:  # not JSON, or BadCredentials
        detail = exc if isinstance(exc, BadCredentials) else "not a JSON object"
        raise fail(f"credentials: {detail}") from None
    files = adapter_files(settings_of(ctx))
    try:
        files.add(adapter, credentials)
    except FileExistsError:
        raise fail(f"adapter {name} exists") from None
    print(f"added {provider.value} adapter {name}; credentials in {files.credentials_path(name)}")


@app.command("status")
def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="One JSON object per adapter a line."),
) -> None:
    """Each adapter's cursor, lag, last success, last error and counts."""
    from factorstream.cli.context import console, errors, settings_of
    from factorstream.idp_config import adapter_files, utc_now

    files = adapter_files(settings_of(ctx))
    now = utc_now()
    rows = []
    for name in files.names():
        try:
            adapter = files.load(name)
            state = files.cursors.load(name)
        except (ValueError, KeyError) as exc:  # a file edited by hand, or torn
            errors.print(f"[yellow]warning:[/] adapter {name}: {exc}")
            continue
        rows.append(
            {
                "name": name,
                "provider": adapter.provider,
                "tenant": adapter.tenant,
                "lag_s": state.lag_s(now),
                **state.as_json(),
                "unmapped_total": sum(state.unmapped.values()),
            }
        )
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    if not rows:
        print("no adapters (factorstream idp add)")
        return
    for row in rows:
        lag = "never caught up" if row["lag_s"] is None else f"{row['lag_s']:.0f} s"
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(row["unmapped"].items()))
        error = row["last_error"] and f"{row['last_error']} (at {row['last_error_at']})"
        lines = [
            f"{row['name']} ({row['provider']}, tenant {row['tenant']})",
            f"  cursor        {json.dumps(row['position']) if row['position'] else '-'}",
            f"  lag           {lag}",
            f"  last success  {row['last_success_at'] or '-'}",
            f"  last error    {error or '-'}",
            f"  delivered     {row['delivered']}",
            f"  unmapped      {row['unmapped_total']}" + (f" ({reasons})" if reasons else ""),
        ]
        console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


FromFileOption = typer.Option(
    None,
    "--from-file",
    help="Backfill instead: ingest this saved export (as `idp ingest`, with the adapter's "
    "provider, tenant and source); the API and the cursor are not touched.",
)


@app.command("poll")
def poll(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The adapter to poll."),
    from_file: Path | None = FromFileOption,
) -> None:
    """Poll the adapter's API until stopped, resuming from its saved cursor.

    Ctrl-C, SIGTERM and SIGHUP stop it cleanly: the page in flight is delivered and its
    cursor saved first. One poller per adapter: a second is refused. A broker or provider
    that is down is waited for (`idp status` shows the last error)."""
    import asyncio

    from factorstream.cli.context import settings_of
    from factorstream.idp_config import NoMapping, adapter_files
    from sources.cursors import AdapterBusy

    settings = settings_of(ctx)
    if from_file is not None:
        try:
            adapter = adapter_files(settings).load(name)
        except (KeyError, ValueError) as exc:
            raise fail(str(exc).strip("'\"")) from None
        ingest(ctx, AdapterProvider(adapter.provider), from_file, adapter.tenant, adapter.source)
        return
    try:
        asyncio.run(_poll(settings, name))
    except (KeyError, ValueError, PermissionError, NoMapping, AdapterBusy) as exc:
        raise fail(str(exc).strip("'\"")) from None


async def _poll(settings: Any, name: str) -> None:
    import asyncio
    import contextlib
    import signal

    from factorstream.cli.context import errors
    from factorstream.idp_config import (
        adapter_files,
        event_delivery,
        http_client,
        log_client,
        mapper_for,
        schedule,
        utc_now,
    )
    from sources.delivery import BrokerUnavailable
    from sources.polling import Poller

    files = adapter_files(settings)
    adapter = files.load(name)
    credentials = files.credentials(adapter)
    mapper = mapper_for(adapter.provider, adapter.tenant, adapter.source)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)

    def report(message: str) -> None:
        errors.print(f"{name}: {message}", markup=False, highlight=False)

    with files.cursors.claim(name):
        wait = settings.idp.backoff_initial_s
        while not stop.is_set():
            try:
                async with http_client(settings) as http, event_delivery(settings) as delivery:
                    poller = Poller(
                        name,
                        log_client(settings, adapter, credentials, http, utc_now),
                        mapper,
                        delivery,
                        files.cursors,
                        files.unmapped(name),
                        utc_now,
                        schedule(settings),
                        report=report,
                    )
                    report(f"polling {adapter.provider} {adapter.base_url}")
                    await poller.run(stop)
            except BrokerUnavailable as exc:  # at start: wait for the broker, as run() does
                report(f"error: {exc}")
                state = files.cursors.load(name).with_error(str(exc), utc_now())
                files.cursors.save(name, state)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
                wait = min(wait * 2, settings.idp.backoff_max_s)
        report("stopped")


@app.command("ingest")
def ingest(
    ctx: typer.Context,
    provider: AdapterProvider = ProviderArgument,
    file: Path = ExportArgument,
    tenant: str = typer.Option(..., help="Our tenant id the events are filed under."),
    source: str = typer.Option(
        ..., help="The events' source, as the adapter's (ids derive from it)."
    ),
) -> None:
    """Backfill a saved export to the events topic, with a progress bar.

    Unmapped records are kept in the state directory's ``ingest.unmapped.jsonl``. Running
    it again sends the same event ids (dropped as duplicates by the pipeline), so an
    interrupted backfill is simply run again."""
    import asyncio

    from factorstream.cli.context import settings_of
    from factorstream.idp_config import NoMapping, adapter_files, mapper_for
    from sources.delivery import BrokerUnavailable

    settings = settings_of(ctx)
    try:
        mapper = mapper_for(provider.value, tenant, source)
        records, total = _export_records(file)
    except NoMapping as exc:
        raise fail(str(exc)) from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise fail(f"cannot read {file}: {exc}") from None
    keeper_path = adapter_files(settings).root / "ingest.unmapped.jsonl"
    try:
        counts = asyncio.run(_ingest(settings, records, total, mapper, keeper_path))
    except BrokerUnavailable as exc:
        raise fail(f"{exc}; run the same command again (nothing is doubled)") from None
    print(
        f"{provider.value}: {counts['events']} events delivered, "
        f"{counts['unmapped']} unmapped (kept in {keeper_path})"
    )


def _export_records(file: Path) -> tuple[Iterator[Any], int]:
    """The records of an export and how many there are (lines, or array items)."""
    text = file.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        array = json.loads(text)
        return iter(array), len(array)
    lines = [line for line in text.splitlines() if line.strip()]

    def parsed() -> Iterator[Any]:
        for number, line in enumerate(lines, start=1):
            try:
                yield json.loads(line)
            except (ValueError, RecursionError) as exc:
                yield _BadLine(number, str(exc))

    return parsed(), len(lines)


class _BadLine:
    def __init__(self, number: int, detail: str) -> None:
        self.number, self.detail = number, detail


async def _ingest(
    settings: Any, records: Iterator[Any], total: int, mapper: Mapper, keeper_path: Path
) -> Counter[str]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from factorstream.cli.context import errors
    from factorstream.idp_config import event_delivery, utc_now
    from sources.polling import UnmappedLog

    def mapped_or_bad(record: Any) -> Event | Unmapped | Sequence[Event | Unmapped]:
        if isinstance(record, _BadLine):
            return Unmapped(
                "file", None, None, "not_json", f"line {record.number}: {record.detail}"
            )
        return mapper(record)

    keeper = UnmappedLog(keeper_path)
    size = settings.idp.ingest_batch_size
    counts: Counter[str] = Counter()
    progress = Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=errors,
    )  # fmt: skip
    async with event_delivery(settings) as delivery:
        with progress:
            task = progress.add_task("ingesting", total=total)
            batch: list[Any] = []
            for record in records:
                batch.append(record)
                if len(batch) >= size:
                    await _send(batch, mapped_or_bad, delivery, keeper, counts, utc_now)
                    progress.advance(task, len(batch))
                    batch = []
            if batch:
                await _send(batch, mapped_or_bad, delivery, keeper, counts, utc_now)
                progress.advance(task, len(batch))
    return counts


async def _send(
    batch: list[Any], mapper: Mapper, delivery: Any, keeper: Any, counts: Counter[str],
    clock: Callable[[], Any],
) -> None:  # fmt: skip
    from sources.polling import map_records

    mapped = map_records(batch, mapper)
    await delivery.deliver(mapped.events)
    keeper.keep(mapped.unmapped, clock())
    counts["events"] += len(mapped.events)
    counts["unmapped"] += len(mapped.unmapped)
