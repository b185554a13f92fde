"""``factorstream sql`` and ``factorstream lake``: SOC access to the Parquet lake.

``sql`` runs one statement in a private in-memory DuckDB whose views read the lake's
Parquet files, so it never contends with the sink or another reader for a database file.
"""

from __future__ import annotations

import math
import sys
from enum import StrEnum
from pathlib import Path

import duckdb
import pandas as pd
import typer
from rich.table import Table

from analytics.compaction import compact as compact_lake
from analytics.views import VIEWS_FILE, connect, fetch, write_views_file
from factorstream.cli.context import console, fail, settings_of

app = typer.Typer(help="The Parquet lake: compaction and the read-only DuckDB views file.")


class OutputFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "NULL"
    return str(value)


def _show(frame: pd.DataFrame, output_format: OutputFormat) -> None:
    if output_format is OutputFormat.CSV:
        frame.to_csv(sys.stdout, index=False)
    elif output_format is OutputFormat.JSON:
        sys.stdout.write(frame.to_json(orient="records", date_format="iso") + "\n")
    else:
        table = Table(show_lines=False)
        for column in frame.columns:
            table.add_column(str(column))
        for row in frame.itertuples(index=False):
            table.add_row(*(_cell(value) for value in row))
        console.print(table)
        console.print(f"{len(frame)} row{'s' if len(frame) != 1 else ''}")


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
    lockouts, risk_detections)."""
    lake = settings_of(ctx).lake_path()
    con = connect(lake)
    try:
        frame = fetch(con, statement)
    except duckdb.Error as exc:
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
