"""``factorstream sql`` and ``factorstream lake``: SOC access to the Parquet lake.

``sql`` runs one statement in a private in-memory DuckDB whose views read the lake's
Parquet files, so it never contends with the sink or another reader for a database file.
"""

from __future__ import annotations

import math
import re
import sys
from enum import StrEnum
from pathlib import Path

import duckdb
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from analytics.compaction import compact as compact_lake
from analytics.views import (
    VIEWS_FILE,
    AnalystSqlRefused,
    analyst_query,
    connect,
    write_views_file,
)
from audit.export import spreadsheet_safe
from factorstream.cli.context import console, fail, settings_of

app = typer.Typer(help="The Parquet lake: compaction and the read-only DuckDB views file.")


UNBOUNDED = 1 << 20
"""The console width of a table written to a file or a pipe (Rich needs one)."""


class OutputFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _visible(text: str) -> str:
    """``text`` with each control character shown as its escape (``\\x1b``): lake data
    comes from strangers, and an escape sequence must not reach the analyst's terminal."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


def _cell(value: object) -> Text:
    """A cell as plain text: never read as Rich markup (``x[/]y`` is data, not a tag)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return Text("NULL", style="dim")
    return Text(_visible(str(value)))


def _safe_cell(value: object) -> object:
    return spreadsheet_safe(value) if isinstance(value, str) else value


def _spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell a spreadsheet would run as a formula neutralised
    (the audit export's rule: a leading apostrophe)."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(
                lambda v: spreadsheet_safe(v) if isinstance(v, str) else v
            )
    return safe


def _show(frame: pd.DataFrame, output_format: OutputFormat) -> None:
    if output_format is OutputFormat.CSV:
        _spreadsheet_safe(frame).to_csv(sys.stdout, index=False)
    elif output_format is OutputFormat.JSON:
        sys.stdout.write(frame.to_json(orient="records", date_format="iso") + "\n")
    else:
        table = Table(show_lines=False)
        for column in frame.columns:
            table.add_column(Text(_visible(str(column))), overflow="fold")
        for row in frame.itertuples(index=False):
            table.add_row(*(_cell(value) for value in row))
        # into a file or a pipe every column keeps its whole width: nothing is cut to fit
        # a terminal that is not there
        out = console if console.is_terminal else Console(width=UNBOUNDED, highlight=False)
        out.print(table)
        out.print(f"{len(frame)} row{'s' if len(frame) != 1 else ''}", highlight=False)


Statement = typer.Argument(..., help="SQL over the views events, verifications, …")
Format = typer.Option(
    OutputFormat.TABLE, "--format", "-f", help="table (rich), csv or json (records)."
)
MinFiles = typer.Option(
    None, min=2, help="Merge partitions with at least this many files (default: setting)."
)
Output = typer.Option(None, help=f"Where to write it (default: {VIEWS_FILE} in data_dir).")


def sql(
    ctx: typer.Context, statement: str = Statement, output_format: OutputFormat = Format
) -> None:
    """Query the lake with DuckDB SQL (views: events, verifications, challenges, enrollments,
    lockouts, risk_detections, lifecycle)."""
    lake = settings_of(ctx).lake_path()
    con = connect(lake, analyst=True)
    try:
        frame = analyst_query(con, statement)
    except (duckdb.Error, AnalystSqlRefused) as exc:
        raise fail(str(exc)) from None
    finally:
        con.close()
    _show(frame, output_format)


@app.command()
def compact(ctx: typer.Context, min_files: int | None = MinFiles) -> None:
    """Merge each date partition's small files into one (readers never see both), then
    bring the rollups up to date."""
    settings = settings_of(ctx)
    done = compact_lake(
        settings.lake_path(), min_files=min_files or settings.lake.compact_min_files
    )
    for item in done:
        console.print(f"{item.table} {item.day}: {item.files} files → 1 ({item.rows:,} rows)")
    console.print(f"compacted {len(done)} partition{'s' if len(done) != 1 else ''}")


@app.command()
def views(ctx: typer.Context, output: Path | None = Output) -> None:
    """Write a DuckDB file of views over the lake, to open read-only (duckdb -readonly)."""
    settings = settings_of(ctx)
    path = write_views_file(settings.lake_path(), output or settings.data_dir / VIEWS_FILE)
    console.print(f"wrote {path} (open it read-only)")
