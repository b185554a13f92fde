"""The country cap through the real verifier store (SQLite and PostgreSQL) and the real
MFA service with a JSON SMS gateway on localhost: a pumping burst of many subjects sending
at once cannot pass the cap, and providers' receipts become events."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from schemas import decode
from schemas.fields import Channel, Factor
from tests.integration.test_otp_delivery import (  # noqa: F401 - fixtures used by name
    Gateway,
    _accepted,
    gateway,
)
from tests.integration.test_verifier_races import (  # noqa: F401 - fixture used by name
    _all_at_once,
    _request,
    _store,
    store_url,
)
from tests.unit.verifiers.service.conftest import (
    Clock,
    Service,
    service_config,
    start_server,
    stop_server,
)
from verifiers import otp
from verifiers.delivery import FailoverDelivery, Message
from verifiers.pricing import price_table_from
from verifiers.sendcaps import CountryCaps, DailyCap, SendCharges, spent
from verifiers.service.api import create_app
from verifiers.service.server import open_parts
from verifiers.tables import outbox_events

START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
CAP = DailyCap(sends=5, spend=1_500_000)
CHARGES = SendCharges(
    price_table_from(
        {"currency": "EUR", "fallback": "1", "sms": {"gw": {"default": "0.05", "NG": "0.32"}}}
    ),
    CountryCaps(countries={"NG": CAP}),
)
BOTS = 16


class Counting:
    name = "gw"
    channels = frozenset({Channel.SMS})

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, message: Message) -> str:
        self.sent.append(message.destination)
        return f"gw-{len(self.sent)}"


def test_parallel_sends_of_many_subjects_cannot_pass_the_cap(store_url: str) -> None:  # noqa: F811
    store = _store(store_url)
    enrollments = {
        f"bot-{i}": otp.begin_enrollment(
            store,
            _request(START, subject=f"bot-{i}"),
            factor=Factor.SMS,
            destination=f"+234802123{i:04d}",
        ).enrollment_id
        for i in range(BOTS)
    }
    provider = Counting()
    delivery = FailoverDelivery([provider])
    subjects = iter(sorted(enrollments))

    def send() -> otp.SendResult:
        subject = next(subjects)
        return otp.send_code(
            store,
            _request(START, subject=subject),
            factor=Factor.SMS,
            delivery=delivery,
            enrollment_id=enrollments[subject],
            charges=CHARGES,
        )

    results = _all_at_once(BOTS, send)
    sent = [r for r in results if r.sent]
    # 1.50 EUR at 0.32: four sends (1.28); the sends cap (5) is not what stops them
    assert len(sent) == 4 == len(provider.sent)
    assert sorted({r.reason for r in results if not r.sent}) == ["country_cap"]
    with store.engine.connect() as connection:
        assert spent(connection, tenant="acme", country="NG", day=START).spend == 1_280_000
        events = [decode(v) for v in connection.execute(sa.select(outbox_events.c.value)).scalars()]
    costs = [e.data.cost_micros for e in events if e.type == "mfa.challenge.sent"]
    assert sum(costs) == 1_280_000 <= CAP.spend  # type: ignore[operator]
    store.engine.dispose()


@pytest.fixture
def priced(tmp_path: Path, gateway: Callable[..., Gateway]) -> Iterator[Service]:  # noqa: F811
    prices = tmp_path / "sms-costs.toml"
    prices.write_text(
        'currency = "EUR"\nfallback = "1"\n[sms.sms-gateway]\ndefault = "0.05"\nNG = "0.32"\n'
        "[caps.countries.NG]\nsends = 2\n"
    )
    sms = gateway(200, _accepted("gw-77"))
    clock = Clock()
    parts = open_parts(
        service_config(tmp_path, sms_gateway_url=sms.url, sms_costs_file=prices), clock=clock
    )
    running = start_server(create_app(parts))
    try:
        yield Service("127.0.0.1", running.port, parts, clock)
    finally:
        stop_server(running)


def test_the_service_refuses_over_the_cap_and_records_receipts(priced: Service) -> None:
    service = priced
    token, other = service.client("acme"), service.client("globex")
    answers = []
    for i in range(3):
        subject = f"bot-{i}"
        started = service.call(
            "POST",
            f"/v1/subjects/{subject}/otp/enrollments",
            {"factor": "sms", "destination": f"+234802123{i:04d}"},
            token=token,
        )
        assert started.status == 201, started.body
        answers.append(
            service.call(
                "POST",
                f"/v1/subjects/{subject}/otp/send",
                {"factor": "sms", "enrollment_id": started.json["enrollment_id"]},
                token=token,
            )
        )
    assert [a.status for a in answers] == [200, 200, 429]
    refused = answers[-1]
    assert refused.json["error"] == "country_cap"
    assert int(refused.headers["retry-after"]) > 0
    receipt = {"provider": "sms-gateway", "provider_message_id": "gw-77", "status": "DELIVRD"}
    assert service.call("POST", "/v1/delivery-receipts", receipt).status == 401
    foreign = service.call("POST", "/v1/delivery-receipts", receipt, token=other)
    assert foreign.status == 404 and foreign.json["error"] == "unknown_message"
    queued = service.call(
        "POST", "/v1/delivery-receipts", {**receipt, "status": "queued"}, token=token
    )
    assert (queued.status, queued.json["recorded"], queued.json["reason"]) == (
        202,
        False,
        "not_final",
    )
    naive = service.call(
        "POST",
        "/v1/delivery-receipts",
        {**receipt, "reported_at": "2026-11-27T09:00:00"},
        token=token,
    )
    assert naive.status == 422
    done = service.call("POST", "/v1/delivery-receipts", receipt, token=token)
    assert (done.status, done.json["recorded"], done.json["status"]) == (202, True, "delivered")
    with service.parts.store.engine.connect() as connection:
        values = connection.execute(sa.select(outbox_events.c.value)).scalars()
        events = [decode(v) for v in values]
    kinds = [e.type for e in events]
    assert kinds.count("mfa.challenge.delivery_reported") == 1
    sent = [e for e in events if e.type == "mfa.challenge.sent"]
    assert [(e.data.cost_micros, e.data.currency) for e in sent] == [(320_000, "EUR")] * 2
    capped = [e for e in events if getattr(e.data, "reason", None) == "country_cap"]
    assert len(capped) == 1 and json.loads(json.dumps(capped[0].data.cost_micros)) == 320_000
