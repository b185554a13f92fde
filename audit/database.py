"""Connections to the ledger database: engine options, migrations, the head lock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from audit.merkle import Frontier
from audit.tables import UtcDateTime, head

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD_ID = 1
READ_ONLY = "ledger_read_only"


def ledger_engine(url: str) -> sa.Engine:
    """An engine for the ledger.

    SQLite: WAL, ``synchronous=FULL`` (a committed batch survives a crash of the machine,
    not just of the process), ``secure_delete`` (an erased key's bytes are overwritten,
    not left in a free page), and every transaction ``BEGIN IMMEDIATE`` so appenders in
    several processes take turns (readers, see :func:`reading`, begin ``DEFERRED`` and
    never block them). PostgreSQL: appenders lock the head row instead.
    """
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            for pragma in (
                "journal_mode=WAL",
                "busy_timeout=30000",
                "synchronous=FULL",
                "secure_delete=ON",
            ):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(connection: sa.Connection) -> None:
            reader = connection.get_execution_options().get(READ_ONLY, False)
            connection.exec_driver_sql("BEGIN DEFERRED" if reader else "BEGIN IMMEDIATE")

    return engine


def migrate(engine: sa.Engine) -> None:
    """Create or upgrade the schema (Alembic), then the head row of an empty ledger."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with engine.begin() as connection:
        if connection.execute(sa.select(head.c.id)).first() is None:
            connection.execute(
                head.insert().values(
                    id=HEAD_ID,
                    log_id=uuid.uuid4().hex,
                    size=0,
                    frontier=b"",
                    last_leaf=bytes(32),
                    checkpoint_size=0,
                    checkpoint_at=None,
                    updated_at=None,
                )
            )


@contextmanager
def locked_head(engine: sa.Engine) -> Iterator[tuple[sa.Connection, sa.Row[Any]]]:
    """A transaction holding the ledger's write lock, with the head row as it now is."""
    with engine.begin() as connection:
        query = sa.select(head).where(head.c.id == HEAD_ID)
        if connection.dialect.name != "sqlite":
            query = query.with_for_update()
        row = connection.execute(query).first()
        if row is None:
            raise LookupError("the ledger has no head row: run Ledger.migrate() first")
        yield connection, row


def bulk_insert(
    connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert ``rows`` (dicts with every column of ``table``) in the connection's transaction.

    PostgreSQL: one ``COPY … FROM STDIN`` (psycopg), several times faster than an
    ``INSERT`` per row, which is what an executemany is there. Elsewhere an executemany.
    COPY skips the columns' bind processing, so its one check is made here: a naive
    timestamp for a ``UtcDateTime`` column is refused (ValueError) as the column would.
    """
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(table.insert(), list(rows))
        return
    from psycopg import sql as psycopg_sql  # the postgres extra: only on PostgreSQL

    columns = [column.name for column in table.columns]
    types = [_copy_type(column, connection.dialect) for column in table.columns]
    statement = psycopg_sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        psycopg_sql.Identifier(table.name),
        psycopg_sql.SQL(", ").join(psycopg_sql.Identifier(name) for name in columns),
    )
    utc = [c.name for c in table.columns if isinstance(c.type, UtcDateTime)]
    for row in rows:
        for name in utc:
            value = row[name]
            if value is not None and value.tzinfo is None:
                raise ValueError(f"naive datetime given for {table.name}.{name}")
    driver: Any = connection.connection.driver_connection  # psycopg.Connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row([row[name] for name in columns])


def _copy_type(column: sa.Column[Any], dialect: sa.Dialect) -> str:
    """The PostgreSQL type name of ``column`` for a binary COPY (``VARCHAR(36)`` → varchar)."""
    return column.type.compile(dialect=dialect).split("(")[0].strip().lower()


def frontier_of(row: sa.Row[Any]) -> Frontier:
    return Frontier.decode(int(row.size), bytes(row.frontier))


@contextmanager
def reading(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection for reads only: one snapshot, never taking the write lock."""
    with engine.connect() as connection:
        connection.execution_options(**{READ_ONLY: True})
        yield connection


def checkpoint_wal(engine: sa.Engine) -> None:
    """SQLite: fold the WAL into the database file and truncate it (erased pages go)."""
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    finally:
        raw.close()
