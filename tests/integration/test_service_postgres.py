"""The MFA service on its production store, PostgreSQL: the migrations (service clients
included) apply, and a caller enrols, steps up (TOTP, WebAuthn, a signed push), trusts a
device and is held to its tenant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from factorstream.softauthn import SoftAuthenticator
from tests.unit.verifiers.service import test_push_routes as push
from tests.unit.verifiers.service import test_trusted_device_routes as devices
from tests.unit.verifiers.service import test_webauthn_routes as webauthn
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


def test_webauthn_and_signed_push_run_on_postgresql(service: Service) -> None:
    acme = service.client("acme")
    key = SoftAuthenticator()
    webauthn.register(service, acme, "bob", key)
    passkey = webauthn.authenticate(service, acme, "bob", key)
    phone = push.enrol(service, acme, "acme", "carol")
    sent = push.send(service, acme, "carol").json
    answer = phone.answer(sent["challenge_id"], sent["number"])
    approved = push.respond(service, acme, "carol", answer)
    replayed = push.respond(service, acme, "carol", answer)

    assert passkey.status == 200 and passkey.json["amr"] == ["hwk", "mfa"]
    assert approved.status == 200 and approved.json["amr"] == ["pop", "mfa"]
    assert (replayed.status, replayed.json["error"]) == (409, "replayed_answer")


def test_trusted_devices_run_on_postgresql(service: Service) -> None:
    acme, other = service.client("acme"), service.client("other")
    device_token = devices.trusted_token(service, acme)

    remembered = devices.assess(service, acme, device_id=devices.LAPTOP, device_token=device_token)
    stolen = devices.assess(service, other, device_id=devices.LAPTOP, device_token=device_token)
    thief = devices.assess(service, acme, device_id="thief-fp", device_token=device_token)
    owner = devices.assess(service, acme, device_id=devices.LAPTOP, device_token=device_token)

    assert remembered["mfa"] == {
        "required": False,
        "reasons": ["trusted_device"],
        "required_factors": [],
        "allowed_factors": [],
    }
    assert stolen["trusted_device"]["reason"] == "wrong_subject"
    assert thief["trusted_device"]["reason"] == "wrong_device"
    assert owner["mfa"]["required"] and owner["trusted_device"]["reason"] == "revoked"
