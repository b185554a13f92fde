"""``factorstream sql`` and ``factorstream lake``: output formats, DuckDB errors, compaction."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import typer
from typer.testing import CliRunner

from analytics.lake import LOCK_FILE, LakeWriter, lake_ready
from analytics.queries import QUERIES, Filters
from analytics.views import connect
from factorstream.cli import sql as sql_cli
from factorstream.cli.context import load_into
from tests.factories import PAYLOADS, sample_event


def _app() -> typer.Typer:
    """The commands as the ``factorstream`` app registers them."""
    app = typer.Typer()
    app.callback()(load_into)
    app.command()(sql_cli.sql)
    app.add_typer(sql_cli.app, name="lake")
    return app


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACTORSTREAM_DATA_DIR", str(tmp_path))
    LakeWriter(tmp_path / "lake").write_events([sample_event(name) for name in PAYLOADS])
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


def test_sql_prints_a_table(data_dir: Path) -> None:
    code, out, _ = run("sql", "SELECT type, count(*) AS n FROM lockouts GROUP BY type ORDER BY 1")
    assert code == 0
    assert "lockout.applied" in out and "ip.block.released" in out and "4 rows" in out


def test_sql_prints_csv_and_json(data_dir: Path) -> None:
    statement = "SELECT factor, count(*) AS n FROM verifications GROUP BY 1 ORDER BY 1"
    code, out, _ = run("sql", statement, "--format", "csv")
    assert code == 0
    assert out.splitlines() == ["factor,n", "push,4", "recovery_code,2", "totp,2"]
    code, out, _ = run("sql", "SELECT id, time FROM events ORDER BY id LIMIT 2", "-f", "json")
    assert code == 0
    records = json.loads(out)
    assert len(records) == 2 and records[0]["time"].startswith("2026-11-02T09:30:00")


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("SELEC 1", "Parser Error"),
        ("SELECT * FROM no_such_table", "Catalog Error"),
        ("SELECT nope FROM events", "Binder Error"),
    ],
)
def test_sql_errors_print_duckdbs_message_and_exit_non_zero(
    data_dir: Path, statement: str, message: str
) -> None:
    code, out, err = run("sql", statement)
    assert code == 1
    assert message in err and "error:" in err
    assert out == ""


def _tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` with its mode, size and modification time (links as such)."""
    return {
        str(path.relative_to(root)): (stat.st_mode, stat.st_size, stat.st_mtime_ns)
        for path in [root, *root.rglob("*")]
        for stat in [path.lstat()]
    }


def test_sql_and_the_queries_write_nothing_into_the_lake(data_dir: Path) -> None:
    """A SOC analyst may have a read-only copy or mount of the lake: reading it takes no
    lock file and creates, changes or removes nothing."""
    lake = data_dir / "lake"
    (lake / LOCK_FILE).unlink()
    before = _tree(lake)
    code, out, _ = run("sql", "SELECT count(*) AS n FROM events", "-f", "csv")
    assert code == 0 and out.splitlines() == ["n", str(len(PAYLOADS))]
    with connect(lake) as con:
        for query in QUERIES.values():
            query(con, Filters())
    assert _tree(lake) == before


def test_sql_on_a_new_lake_sets_it_up_first(data_dir: Path) -> None:
    lake = data_dir / "new-lake"
    with connect(lake) as con:
        assert con.execute("SELECT count(*) FROM events").fetchone() == (0,)
    assert lake_ready(lake)


def test_lake_compact_and_views(data_dir: Path) -> None:
    lake = data_dir / "lake"
    LakeWriter(lake).write_events([sample_event("auth.login.attempted") for _ in range(3)])
    code, out, _ = run("lake", "compact", "--min-files", "2")
    assert code == 0 and f"events 2026-11-02: 2 files → 1 ({len(PAYLOADS) + 3} rows)" in out
    assert len(list((lake / "events" / "date=2026-11-02").glob("*.parquet"))) == 1
    code, out, _ = run("lake", "views")
    assert code == 0
    con = duckdb.connect(str(data_dir / "analytics.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM events").fetchone() == (len(PAYLOADS) + 3,)
    con.close()


SECRET = "ledger master key: 0123456789abcdef"


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("SELECT * FROM read_text('{secret}')", "disabled by configuration"),
        ("SELECT * FROM read_csv('{lake}/../secret.key')", "disabled by configuration"),
        ("SELECT * FROM read_csv('/etc/passwd')", "disabled by configuration"),
        ("SELECT * FROM glob('{data}/*')", "disabled by configuration"),
        ("COPY (SELECT 1 AS forged) TO '{lake}/events/forged.parquet'", "found COPY"),
        ("COPY (SELECT 1) TO '{data}/stolen.csv'", "found COPY"),
        ("SET enable_external_access = true", "found SET|only queries"),
        ("RESET lock_configuration", "only queries"),
        ("ATTACH '{data}/other.duckdb' AS other", "only queries"),
        ("INSTALL httpfs", "only queries"),
        ("LOAD httpfs", "only queries"),
        ("PRAGMA version", "found PRAGMA"),
        ("SELECT 1; COPY (SELECT 1) TO '{lake}/x.csv'", "one statement, found 2"),
        ("CREATE TABLE t AS SELECT 1", "only queries"),
        ("EXPORT DATABASE '{data}/dump'", "only queries"),
    ],
)
def test_an_analyst_reads_the_lake_and_nothing_else(
    data_dir: Path, statement: str, refusal: str
) -> None:
    (data_dir / "secret.key").write_text(SECRET)
    lake = data_dir / "lake"
    before = sorted(p for p in data_dir.rglob("*") if p.name != LOCK_FILE)
    sql = statement.format(secret=data_dir / "secret.key", lake=lake, data=data_dir)
    code, out, err = run("sql", sql)
    assert code != 0 and SECRET not in out + err
    assert refusal.split("|")[0] in err or any(r in err for r in refusal.split("|")), err
    assert sorted(p for p in data_dir.rglob("*") if p.name != LOCK_FILE) == before
    code, out, _ = run("sql", "SELECT count(*) AS n FROM events", "-f", "csv")
    assert code == 0 and out.splitlines() == ["n", str(len(PAYLOADS))]  # the lake still reads


def test_the_dashboards_connection_is_locked_down_as_well(data_dir: Path) -> None:
    from dashboard.data import LakeMetrics

    (data_dir / "secret.key").write_text(SECRET)
    cursor = LakeMetrics(data_dir / "lake")._cursor()
    with pytest.raises(duckdb.Error, match="disabled by configuration"):
        secret = data_dir / "secret.key"
        cursor.execute(f"SELECT * FROM read_text('{secret}')").fetchall()  # noqa: S608
    with pytest.raises(duckdb.Error, match="Cannot change configuration"):
        cursor.execute("SET enable_external_access = true")
    assert cursor.execute("SELECT count(*) FROM events").fetchone() == (len(PAYLOADS),)


def test_sql_prints_data_as_text_never_as_markup_or_terminal_codes(data_dir: Path) -> None:
    planted = "x[/]y [bold red]alarm[/] \x1b[31mred\x1b]0;pwned\x07"
    statement = f"SELECT {_quoted(planted)} AS ua, repeat('w', 300) AS wide"
    code, out, err = run("sql", statement)
    assert code == 0, err
    assert "x[/]y [bold red]alarm[/]" in out  # shown as it is, not read as tags
    assert "\x1b" not in out and "\x07" not in out and "\\x1b[31mred" in out
    assert "w" * 300 in out  # not a terminal here: no column is cut to 80 characters
    code, out, _ = run("sql", f"SELECT {_quoted('=HYPERLINK(1)')} AS ua", "-f", "csv")
    assert out.splitlines() == ["ua", "'=HYPERLINK(1)"]


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
