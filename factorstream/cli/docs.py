"""``factorstream docs``: regenerate (or check) the generated documentation."""

from __future__ import annotations

import typer

from factorstream import docs as generated
from factorstream.cli.context import console, fail


def docs(check: bool = typer.Option(False, "--check", help="Fail if any is stale.")) -> None:
    """Regenerate docs/: the settings, CLI and benchmark references, and the service's API
    and the identity providers' references, from the code."""
    from factorstream.cli import app

    wanted = generated.reference_pages(typer.main.get_command(app))
    wanted.update(generated.api_reference())
    wanted.update(generated.sources_reference())
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    if not stale:
        console.print(
            "[green]the settings, CLI, benchmark, API and sources references are current[/]"
        )
    elif check:
        names = ", ".join(str(path.relative_to(generated.ROOT)) for path in stale)
        raise fail(f"stale: {names}: run `factorstream docs`")
    else:
        for path in stale:
            path.write_text(wanted[path])
            console.print(f"updated [bold]{path}[/]")
