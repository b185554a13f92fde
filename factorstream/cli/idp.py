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
from sources import Unmapped, auth0, entra, keycloak, okta

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
    if provider is Provider.OKTA:
        okta_config = okta.OktaSource(tenant=tenant, source=source)
        return lambda record: okta.map_records(record, okta_config)
    if provider is Provider.KEYCLOAK:
        keycloak_config = keycloak.KeycloakSource(tenant=tenant, source=source)
        return lambda record: keycloak.map_records(record, keycloak_config)
    if provider is Provider.ENTRA:
        entra_config = entra.EntraSource(tenant=tenant, source=source)
        return lambda record: entra.map_records(record, entra_config)
    config = auth0.Auth0Source(tenant=tenant, source=source)
    return lambda record: auth0.map_records(record, config)


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
