"""``factorstream docs``: regenerate (or check) the README's settings and CLI sections."""

from __future__ import annotations

import typer

from factorstream import docs as generated
from factorstream.cli.context import console, fail


def docs(check: bool = typer.Option(False, "--check", help="Fail if the README is stale.")) -> None:
    """Regenerate the README's settings table and CLI reference from the code."""
    from factorstream.cli import app

    current = generated.README.read_text()
    wanted = generated.render(current, typer.main.get_command(app))
    if current == wanted:
        console.print("[green]README settings and CLI reference are current[/]")
    elif check:
        raise fail("README is stale: run `factorstream docs`")
    else:
        generated.README.write_text(wanted)
        console.print(f"updated [bold]{generated.README}[/]")
