"""A private PostgreSQL server for the test session (pytest plugin).

``postgres_url`` starts a throw-away cluster (``factorstream.localpostgres``) the first
time a test asks for it and removes it after the session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from factorstream.localpostgres import PostgresUnavailable, local_postgres
from tests.support import missing


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh PostgreSQL server (database ``postgres``, trust auth)."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(local_postgres())
        except PostgresUnavailable as error:
            missing("PostgreSQL server", str(error))
        yield url
