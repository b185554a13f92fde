"""A private PostgreSQL server for the test session (pytest plugin).

``postgres_url`` starts a throw-away cluster (``factorstream.localpostgres``) the first
time a test asks for it and removes it after the session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from factorstream.localpostgres import PostgresUnavailable, local_postgres
from tests.support import missing


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh PostgreSQL server (database ``postgres``, trust auth)."""
    try:
        server = local_postgres()
        url = server.__enter__()
    except PostgresUnavailable as error:
        missing("PostgreSQL server", str(error))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)
