"""DuckDB over the lake: views on the Parquet files, and the read-only ``analytics.duckdb``.

Readers never open a database file a writer holds: the lake is plain Parquet, and each
reader gets its own in-memory DuckDB (:func:`connect`) with views over the files, or opens
the views file read-only (``duckdb.connect(path, read_only=True)``; many processes may).
Readers write nothing into a lake that is set up (no lock, no file): a read-only mount or
copy of it can be queried. Only a new lake gets its empty seed files first.

Views (one per table, all columns of the files plus ``date`` from the partition):

* ``events``, ``challenges``, ``enrollments``, ``lockouts``, ``risk_detections``,
  ``lifecycle``;
* ``verifications``: its rows plus ``challenged_at`` and ``time_to_complete_ms``, the time
  from the first ``mfa.challenge.issued`` of the same factor in the same transaction
  (tenant + correlation id) to the verification, else from the transaction's first
  ``mfa.required`` (TOTP and WebAuthn prompts issue no challenge of their own);
* ``sign_ins``: the ``events`` rows of sign-in steps (:data:`analytics.columns.SIGN_IN_TYPES`);
* ``lake_<table>`` for each table: the bare files, without the time-to-complete join;
* ``lake_location``: the lake's directory (``lake``), for queries that plan which files
  to read (``analytics.rollups``).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

import duckdb
import pandas as pd

from analytics.columns import (
    PRIVILEGED_ROLES,
    SIGN_IN_TYPES,
    SUCCESS_TYPES,
    TABLES,
    VERIFICATION_TYPES,
)
from analytics.lake import ensure_lake, lake_ready

VIEWS_FILE: Final = "analytics.duckdb"
VIEWS_STORAGE_VERSION: Final = "v1.0.0"
"""Storage format of the views file: readable by DuckDB 1.0 and later, so an older duckdb
CLI than the library writing it (e.g. PyPI ``duckdb-cli`` 1.5) opens it too."""
RETRIES: Final = 3


def completed(verifications: str, challenges: str) -> str:
    """SQL: the rows of ``verifications`` with ``challenged_at`` and ``time_to_complete_ms``,
    their challenge looked up in ``challenges`` (two table expressions of those tables'
    columns): the first ``issued`` challenge of the same factor in the transaction (tenant +
    correlation id), else its first ``mfa.required``, if at or before the verification.
    Only challenges up to a verification's time count, so a day's answers depend on the
    challenges of that day and the days before it only."""
    return f"""
WITH issued AS (
    SELECT tenant, correlationid, factor, min(time) AS issued_at
    FROM {challenges} WHERE status = 'issued' GROUP BY ALL
), prompted AS (
    SELECT tenant, correlationid, min(time) AS prompted_at
    FROM {challenges} WHERE status = 'required' GROUP BY ALL
), joined AS (
    SELECT v.*,
        CASE WHEN i.issued_at <= v.time THEN i.issued_at
             WHEN p.prompted_at <= v.time THEN p.prompted_at END AS challenged_at
    FROM {verifications} v
    LEFT JOIN issued i
        ON i.tenant = v.tenant AND i.correlationid = v.correlationid AND i.factor = v.factor
    LEFT JOIN prompted p ON p.tenant = v.tenant AND p.correlationid = v.correlationid
)
SELECT *, date_diff('millisecond', challenged_at, time) AS time_to_complete_ms FROM joined
"""  # noqa: S608 - table expressions of our own


_VERIFICATIONS: Final = "CREATE OR REPLACE VIEW verifications AS " + completed(
    "lake_verifications", "lake_challenges"
)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _type_in(types: frozenset[str]) -> str:
    return f"type IN ({', '.join(_literal(kind) for kind in sorted(types))})"


SIGN_IN: Final = _type_in(SIGN_IN_TYPES)
"""SQL condition on an ``events`` row: a sign-in step (the ``sign_ins`` view)."""
FAILED_SIGN_IN: Final = f"({_type_in(VERIFICATION_TYPES - SUCCESS_TYPES)} OR outcome = 'failure')"
"""SQL condition on a sign-in: it failed or was refused."""
SMS_DELIVERY: Final = "channel = 'sms' AND status IN ('sent', 'delivery_failed')"
"""SQL condition on a ``challenges`` row: an SMS delivery, made or failed."""
_ROLES: Final = ", ".join(_literal(role) for role in PRIVILEGED_ROLES)
PRIVILEGED: Final = (
    f"((type = 'mfa.required' AND (lower(role) IN ({_ROLES}) "
    "OR list_contains(reasons, 'privileged_role'))) OR policy_tier = 'admin')"
)
"""SQL condition on an ``events`` row: it shows its subject privileged (an ``mfa.required``
for a privileged role, or for the ``privileged_role`` reason; any event under the ``admin``
policy tier)."""
PRIVILEGED_ROLE: Final = f"CASE WHEN lower(role) IN ({_ROLES}) THEN lower(role) END"
"""SQL: an ``events`` row's role, lower-cased, if privileged (else null)."""


def table_glob(lake: Path, table: str) -> str:
    """The glob of ``table``'s files (through the ``date=`` links; temporary names excluded)."""
    return str(lake.resolve() / table / "date=*" / "*.parquet")


def lake_files(files: str) -> str:
    """SQL reading the lake files ``files`` names (a glob literal or a ``$parameter`` list):
    their columns, and ``date`` from each partition's ``date=`` directory."""
    return (
        f"read_parquet({files}, hive_partitioning = true, hive_types = {{'date': DATE}}, "
        "union_by_name = true)"
    )


def view_statements(lake: Path) -> list[str]:
    """``CREATE VIEW`` statements for every table of the lake at ``lake``."""
    statements = []
    for table in TABLES:
        # the glob is a path from settings, quoted as a literal; table names are constants
        source = lake_files(_literal(table_glob(lake, table)))
        statements.append(f"CREATE OR REPLACE VIEW lake_{table} AS SELECT * FROM {source}")  # noqa: S608 - constant names, quoted path
        if table != "verifications":
            statements.append(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM lake_{table}")  # noqa: S608 - constant names
    statements.append(_VERIFICATIONS)
    statements.append(
        f"CREATE OR REPLACE VIEW lake_location AS SELECT {_literal(str(lake.resolve()))} AS lake"  # noqa: S608 - quoted path
    )
    sign_ins = f"CREATE OR REPLACE VIEW sign_ins AS SELECT * FROM lake_events WHERE {SIGN_IN}"  # noqa: S608 - constant names
    statements.append(sign_ins)
    return statements


def _readable(lake: Path) -> None:
    """Make a new lake's seed files; leave a set-up lake untouched (it may be read-only)."""
    if not lake_ready(lake):
        ensure_lake(lake)


def connect(lake: Path, *, analyst: bool = False) -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB with the lake's views (UTC time zone, its cursors too).

    ``analyst``: the connection a person's SQL runs on (``factorstream sql``, the
    dashboard): locked down by :func:`lock_down` once the views exist."""
    _readable(lake)
    con = duckdb.connect(":memory:")
    con.execute("SET GLOBAL TimeZone = 'UTC'")  # cursors of the connection too
    # Parquet footers cached across queries: files are never rewritten in place, and no
    # path names two different files (analytics.lake.batch_name); the cache also checks
    # each file's modification time
    con.execute("SET GLOBAL parquet_metadata_cache = true")
    # no progress bar: it would be printed into `factorstream sql`'s CSV/JSON and the logs
    con.execute("SET enable_progress_bar = false")
    for statement in view_statements(lake):
        con.execute(statement)
    if analyst:
        lock_down(con, lake)
    return con


class AnalystSqlRefused(ValueError):
    """A statement other than one query, refused on an analyst's connection."""


ANALYST_STATEMENTS: Final = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})
"""What an analyst may run: one query (``SELECT``, ``WITH``, ``EXPLAIN``)."""


def lock_down(con: duckdb.DuckDBPyConnection, lake: Path) -> None:
    """Leave ``con`` able to read the lake's files and nothing else: no other file, no
    extension installed or loaded, and no setting changed back afterwards. Writes into
    the lake itself (``COPY … TO``) are refused by :func:`analyst_query`, which lets only
    queries through."""
    allowed = _literal(str(lake.resolve()))
    for setting in (
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        f"SET allowed_directories = [{allowed}]",
        "SET enable_external_access = false",
        "SET lock_configuration = true",
    ):
        con.execute(setting)


def analyst_query(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """Run a person's ``sql`` on a locked-down connection (:func:`connect` with
    ``analyst``): exactly one query, or :class:`AnalystSqlRefused` saying what was found."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as error:
        raise AnalystSqlRefused(str(error)) from None
    if len(statements) != 1:
        raise AnalystSqlRefused(f"expected one statement, found {len(statements)}")
    kind = statements[0].type
    if kind not in ANALYST_STATEMENTS:
        raise AnalystSqlRefused(
            f"only queries are run here (SELECT, WITH, EXPLAIN), found {kind.name}"
        )
    return fetch(con, sql)


def write_views_file(lake: Path, path: Path) -> Path:
    """Write ``path``: a DuckDB database holding only the lake's views.

    Built under a temporary name and renamed, so a reader opens either the old file or the
    new one, complete. Open it read-only: ``duckdb.connect(str(path), read_only=True)``.
    """
    _readable(lake)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    con = duckdb.connect(
        str(temporary), config={"storage_compatibility_version": VIEWS_STORAGE_VERSION}
    )
    try:
        for statement in view_statements(lake):
            con.execute(statement)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(temporary, path)
    return path


def lake_of(con: duckdb.DuckDBPyConnection) -> Path:
    """The directory of the lake ``con``'s views read."""
    row = con.execute("SELECT lake FROM lake_location").fetchone()
    if row is None:  # pragma: no cover - the view has one row
        raise LookupError("the connection has no lake_location view (analytics.views.connect)")
    return Path(row[0])


def fetch(
    con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, object] | None = None
) -> pd.DataFrame:
    """Run ``sql`` with bound ``params`` and return a DataFrame.

    A compaction that swaps a partition between DuckDB listing the files and opening them
    makes the read fail with an I/O error; the query is then run again (at most
    ``RETRIES`` times), and sees the merged file instead.
    """
    return fetch_planned(con, lambda: (sql, params or {}))


def fetch_planned(
    con: duckdb.DuckDBPyConnection, plan: Callable[[], tuple[str, Mapping[str, object]]]
) -> pd.DataFrame:
    """:func:`fetch` for a query whose text and parameters (file lists) ``plan`` makes:
    after an I/O error it is planned again, then run. Parameters the text does not name
    are left out (DuckDB refuses them)."""
    for attempt in range(RETRIES):
        try:
            sql, params = plan()
            return con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql}).df()
        except duckdb.IOException:
            if attempt == RETRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover
