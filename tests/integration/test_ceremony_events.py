"""Every ceremony's events travel through the outbox relay to ``mfa.events`` and decode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp

from factorstream.softauthn import SoftAuthenticator
from schemas.fields import Client, PolicyTier
from tests.integration.records import consume
from tests.kafka_broker import KafkaBroker
from verifiers import push, recovery_codes, totp, webauthn
from verifiers.crypto import SecretBox, new_key
from verifiers.publish import OutboxRelay, kafka_producer_factory
from verifiers.store import Request, VerifierStore, store_engine

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
ORIGIN, RP_ID = "https://login.example.com", "login.example.com"


def _request(seconds: int) -> Request:
    return Request(
        tenant="acme",
        subject="u-42",
        correlationid=f"tx-{seconds}",
        now=T0 + timedelta(seconds=seconds),
        tier=PolicyTier.BUSINESS,
        application="vpn",
        client=Client(ip="192.0.2.10"),
    )


def test_each_ceremony_publishes_its_events(
    kafka_broker: KafkaBroker, topic: str, tmp_path: Path
) -> None:
    store = VerifierStore(
        store_engine(f"sqlite:///{tmp_path / 'service.db'}"),
        SecretBox(new_key()),
        source="https://login.example.com/mfa",
    )
    store.migrate()

    enrollment = totp.begin_enrollment(store, _request(0), account_name="u-42", issuer="Acme")
    generator = pyotp.parse_uri(enrollment.provisioning_uri)
    assert totp.confirm_enrollment(
        store,
        _request(0),
        enrollment_id=enrollment.enrollment_id,
        code=generator.at(_request(0).now),
    ).accepted
    assert totp.verify(store, _request(60), code=generator.at(_request(60).now)).accepted
    assert totp.verify(store, _request(120), code="000000").reason == "invalid_code"

    authenticator = SoftAuthenticator()
    options = webauthn.begin_registration(
        store,
        _request(200),
        rp_id=RP_ID,
        rp_name="Acme",
        user_name="u-42",
        user_display_name="U 42",
    )
    assert webauthn.finish_registration(
        store,
        _request(201),
        challenge_id=options.challenge_id,
        rp_id=RP_ID,
        credential_json=authenticator.create(options.options_json, ORIGIN),
        expected_origin=ORIGIN,
    ).accepted
    assertion = webauthn.begin_authentication(store, _request(300), rp_id=RP_ID)
    assert webauthn.finish_authentication(
        store,
        _request(301),
        challenge_id=assertion.challenge_id,
        rp_id=RP_ID,
        credential_json=authenticator.get(assertion.options_json, ORIGIN),
        expected_origin=ORIGIN,
    ).accepted

    challenge = push.send_push(store, _request(400))
    assert push.respond(
        store,
        _request(405),
        challenge_id=challenge.challenge_id,
        decision=push.Decision.APPROVE,
        number=challenge.number,
    ).accepted

    codes = recovery_codes.regenerate(store, _request(500))
    assert recovery_codes.redeem(store, _request(510), code=codes[0]).accepted

    staged = store.outbox.pending()
    OutboxRelay(
        store.outbox, topic=topic, producer_factory=kafka_producer_factory(kafka_broker.bootstrap)
    ).drain(timeout_s=60)
    records = consume(kafka_broker.bootstrap, topic, at_least=staged)
    events = [r.event() for r in sorted(records, key=lambda r: (r.partition, r.offset))]
    assert len(events) == staged
    assert {e.partitionkey for e in events} == {"acme/u-42"}
    assert [e.type for e in events] == [
        "mfa.enrollment.started",
        "mfa.enrollment.completed",
        "mfa.verification.succeeded",
        "mfa.verification.failed",
        "mfa.enrollment.started",
        "mfa.enrollment.completed",
        "mfa.challenge.issued",
        "mfa.verification.succeeded",
        "mfa.challenge.issued",
        "mfa.push.approved",
        "mfa.recovery.regenerated",
        "mfa.recovery.succeeded",
    ]
    assert all(
        e.data.client == Client(ip="192.0.2.10")
        for e in events  # type: ignore[attr-defined]
        if hasattr(e.data, "client")
    )
