"""Readers and the lake writer at the same time, in separate processes.

A writer process appends batches of ``BATCH`` events (and compacts every ten batches)
while, concurrently: (a) ``factorstream sql`` subprocesses, (b) the duckdb CLI on the
read-only ``analytics.duckdb`` (a ``python -c`` process opening it read-only with the
duckdb module stands in when no ``duckdb`` executable is installed; PyPI ``duckdb-cli``
provides one), and (c) a process running ``analytics.queries`` read the lake repeatedly.
No read may fail with a lock error, and every count a reader sees is a multiple of
``BATCH``: only complete files are ever visible. A compaction swap between DuckDB listing
files and opening them is an I/O error the reader retries (``analytics.views.fetch``);
the CLI readers here retry it the same way, and anything else is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analytics.views import write_views_file

BATCH = 40
BATCHES = 100
ROOT = Path(__file__).resolve().parents[3]
SQL_COMMAND = [sys.executable, "-m", "factorstream.cli", "sql"]
COUNTS = "SELECT (SELECT count(*) FROM events) AS e, (SELECT count(*) FROM verifications) AS v"
LOCK_ERRORS = ("could not set lock", "conflicting lock", "database is locked")
RACE = ("No files found", "No such file", "Cannot open file", "cannot open file")

WRITER = """
import sys, time
from datetime import timedelta
from pathlib import Path
from analytics.compaction import compact
from analytics.lake import LakeWriter
from tests.factories import T0, sample_event
lake, batches, size = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
writer = LakeWriter(lake)
for b in range(batches):
    writer.write_events([
        sample_event("mfa.verification.succeeded", subject=f"u-{b}-{i}",
                     now=T0 + timedelta(minutes=10 * b, seconds=i))
        for i in range(size)
    ])
    if b % 10 == 9:
        compact(lake, min_files=5)
    time.sleep(0.03)
print("written", batches * size)
"""

QUERIES_READER = """
import json, sys, time
from pathlib import Path
from analytics.queries import Filters, overview_kpis, verification_success_rate
from analytics.views import connect
lake, stop = Path(sys.argv[1]), Path(sys.argv[2])
con = connect(lake)
while not stop.exists():
    kpis = overview_kpis(con, Filters())
    rates = verification_success_rate(con, Filters())
    print(json.dumps({"e": int(kpis.loc[0, "events"]), "v": int(rates["verifications"].sum())}),
          flush=True)
    time.sleep(0.02)
"""

STAND_IN_CLI = """
import json, sys, time
import duckdb
path, stop, sql = sys.argv[1], sys.argv[2], sys.argv[3]
import os
while not os.path.exists(stop):
    con = duckdb.connect(path, read_only=True)
    for attempt in range(3):
        try:
            e, v = con.execute(sql).fetchone()
            break
        except duckdb.IOException as exc:
            print(json.dumps({"retried": str(exc)[:200]}), flush=True)
            time.sleep(0.05)
    con.close()
    print(json.dumps({"e": e, "v": v}), flush=True)
    time.sleep(0.02)
"""


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORSTREAM_")}
    env["FACTORSTREAM_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = str(ROOT)
    return env


def _duckdb_cli() -> str | None:
    found = os.environ.get("DUCKDB_CLI") or shutil.which("duckdb")
    beside = Path(sys.executable).parent / "duckdb"
    return found or (str(beside) if beside.exists() else None)


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a reader command, retrying (at most twice) only a compaction swap race."""
    for _ in range(3):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        if done.returncode == 0 or not any(r in done.stderr + done.stdout for r in RACE):
            return done
        time.sleep(0.05)
    return done


def _check(label: str, counts: list[tuple[int, int]]) -> None:
    assert counts, f"{label}: no reads"
    for events, verifications in counts:
        assert events % BATCH == 0 and verifications % BATCH == 0, (label, events, verifications)
    seen = [events for events, _ in counts]
    assert seen == sorted(seen), f"{label}: counts went backwards: {seen}"


def test_readers_never_lock_or_see_partial_files_while_the_sink_writes(tmp_path: Path) -> None:
    lake, views, stop = tmp_path / "lake", tmp_path / "analytics.duckdb", tmp_path / "stop"
    env = _env(tmp_path)
    write_views_file(lake, views)
    cli = _duckdb_cli()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(lake), str(BATCHES), str(BATCH)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    logs = {name: tmp_path / f"{name}.log" for name in ("queries", "stand-in")}
    readers = {
        "queries": subprocess.Popen(
            [sys.executable, "-c", QUERIES_READER, str(lake), str(stop)],
            env=env,
            stdout=logs["queries"].open("w"),
            stderr=subprocess.STDOUT,
        )
    }
    if cli is None:
        readers["stand-in"] = subprocess.Popen(
            [sys.executable, "-c", STAND_IN_CLI, str(views), str(stop), COUNTS],
            env=env,
            stdout=logs["stand-in"].open("w"),
            stderr=subprocess.STDOUT,
        )
    sql_counts: list[tuple[int, int]] = []
    cli_counts: list[tuple[int, int]] = []
    failures: list[str] = []
    try:
        while writer.poll() is None:
            done = _run([*SQL_COMMAND, COUNTS, "--format", "json"], env)
            if done.returncode != 0:
                failures.append(f"factorstream sql: {done.stderr}")
            else:
                (row,) = json.loads(done.stdout)
                sql_counts.append((row["e"], row["v"]))
            if cli is not None:
                done = _run([cli, "-readonly", "-json", str(views), "-c", COUNTS], env)
                if done.returncode != 0:
                    failures.append(f"duckdb CLI: {done.stderr}{done.stdout}")
                else:
                    (row,) = json.loads(done.stdout)
                    cli_counts.append((row["e"], row["v"]))
        out, err = writer.communicate(timeout=60)
    finally:
        stop.touch()
        for process in readers.values():
            process.wait(timeout=60)
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, err
    assert out.strip() == f"written {BATCHES * BATCH}"
    assert not failures, failures[:3]
    assert all(p.returncode == 0 for p in readers.values()), {
        name: logs[name].read_text()[-2000:] for name in readers
    }
    for name in readers:
        lines = [json.loads(line) for line in logs[name].read_text().splitlines()]
        text = logs[name].read_text().lower()
        assert not any(m in text for m in LOCK_ERRORS), text[-2000:]
        counts = [(line["e"], line["v"]) for line in lines if "e" in line]
        _check(name, counts)
        assert any(0 < e < BATCHES * BATCH for e, _ in counts), f"{name} never read mid-write"
    _check("factorstream sql", sql_counts)
    if cli is not None:
        _check("duckdb CLI", cli_counts)
    print(
        f"reads: sql {len(sql_counts)}, duckdb CLI ({cli or 'python stand-in'}) "
        f"{len(cli_counts) or 'see log'}, queries in a process: "
        f"{len(logs['queries'].read_text().splitlines())}"
    )
    # everything arrived once
    final = subprocess.run(
        [*SQL_COMMAND, COUNTS, "-f", "json"], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(final.stdout) == [{"e": BATCHES * BATCH, "v": BATCHES * BATCH}]


@pytest.fixture(autouse=True)
def _sql_command_is_wired() -> None:
    """``factorstream sql`` must be registered on the ``factorstream`` app."""
    import typer

    from factorstream.cli import COMMANDS, app

    command = typer.main.get_command(app).get_command(None, "sql")  # type: ignore[attr-defined]
    assert COMMANDS.get("sql") == "factorstream.cli.sql:sql" and command is not None, (
        "register factorstream.cli.sql.sql as the `sql` command"
    )
