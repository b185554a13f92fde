"""``factorstream schemas``: export and check the JSON Schema files and the catalogue."""

from __future__ import annotations

from pathlib import Path

import typer

from factorstream.cli.context import console, fail
from schemas import catalogue, jsonschema
from schemas.errors import BreakingSchemaChange

app = typer.Typer(help="The event contract: JSON Schema files and the event catalogue.")

DirOption = typer.Option(jsonschema.JSON_DIR, "--dir", help="Directory of the JSON Schemas.")


@app.command()
def export(
    directory: Path = DirOption,
    allow_breaking: bool = typer.Option(
        False, help="Overwrite a published version even if old events would no longer pass."
    ),
) -> None:
    """Write schemas/json/*.json and schemas/README.md from the typed payloads."""
    try:
        written = jsonschema.export(directory, allow_breaking=allow_breaking)
    except BreakingSchemaChange as exc:
        raise fail(str(exc)) from None
    for name in written:
        console.print(f"wrote [bold]{directory / name}[/]")
    if catalogue.write():
        console.print(f"wrote [bold]{catalogue.CATALOGUE}[/]")
    console.print(f"[green]{len(jsonschema.generate())} event schemas up to date[/]")


@app.command()
def check(directory: Path = DirOption) -> None:
    """Fail when the schema files or the catalogue are stale, or a change breaks a version."""
    problems = jsonschema.check(directory)
    if not catalogue.is_current():
        problems.append(f"{catalogue.CATALOGUE.name}: stale (run `factorstream schemas export`)")
    for problem in problems:
        console.print(f"[red]✗[/] {problem}")
    if problems:
        raise fail(f"{len(problems)} schema problem(s)")
    console.print(f"[green]✓ {len(jsonschema.generate())} event schemas current and compatible[/]")
