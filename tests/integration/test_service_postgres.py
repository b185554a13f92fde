"""The MFA service on its production store, PostgreSQL: the migrations (service clients
included) apply, and a caller enrols, steps up and is held to its tenant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.unit.verifiers.service.conftest import (
    Clock,
    Service,
    service_config,
    start_server,
    stop_server,
)
from verifiers.publish import metadata
from verifiers.service.api import create_app
from verifiers.service.server import open_parts


@pytest.fixture
def service(tmp_path: Path, postgres_url: str) -> Iterator[Service]:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:  # a fresh schema on the shared server
        import verifiers.tables  # noqa: F401 - every table of the store on the metadata

        metadata.drop_all(connection)
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()
    clock = Clock()
    parts = open_parts(service_config(tmp_path, database_url=postgres_url), clock=clock)
    running = start_server(create_app(parts))
    try:
        yield Service("127.0.0.1", running.port, parts, clock)
    finally:
        stop_server(running)
        parts.store.engine.dispose()


def test_the_service_runs_on_postgresql(service: Service) -> None:
    acme, other = service.client("acme"), service.client("other")
    authenticator = service.enrol_totp(acme, "alice")
    code = {"code": authenticator.at(service.clock())}

    stepped_up = service.call("POST", "/v1/subjects/alice/totp/verify", code, token=acme)
    replayed = service.call("POST", "/v1/subjects/alice/totp/verify", code, token=acme)
    foreign = service.call("GET", "/v1/subjects/alice/factors", token=other)

    assert stepped_up.status == 200 and stepped_up.json["assertion"].count(".") == 2
    assert replayed.status == 403 and replayed.json["error"] == "replayed"
    assert foreign.status == 404 and foreign.json["error"] == "unknown_subject"
