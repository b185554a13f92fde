"""HTTP ingest in process (httpx over ASGI), with a stand-in delivery that records what it
was given: modes, all-or-nothing, tenants, credentials, signatures, sizes, 503."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from schemas import Event, encode
from sources.credentials import ingest_credentials
from sources.delivery import BrokerUnavailable
from sources.http_ingest import IngestConfig, create_app
from sources.signatures import SIGNATURE_HEADER, sign
from tests.cloudevents_sdk import batch, binary, sdk_event, structured
from tests.factories import T0, TRUSTED, sample_event
from verifiers.service.clients import ServiceClients

SECRET = b"a shared signing secret of the sender fleet"


@dataclass
class RecordingDelivery:
    """What :class:`EventDelivery` would have sent; ``down``: the broker is away."""

    batches: list[list[Event]] = field(default_factory=list)
    down: bool = False

    async def deliver(self, events: Sequence[Event]) -> None:
        if self.down:
            raise BrokerUnavailable("the broker did not acknowledge (test)")
        self.batches.append(list(events))

    async def stop(self) -> None:
        pass

    @property
    def events(self) -> list[Event]:
        return [event for batch_ in self.batches for event in batch_]


@pytest.fixture
def credentials(tmp_path: Path) -> Iterator[ServiceClients]:
    store = ingest_credentials(f"sqlite:///{tmp_path / 'ingest.db'}")
    yield store
    store.engine.dispose()


def app_for(
    credentials: ServiceClients, delivery: RecordingDelivery, **config: Any
) -> httpx.AsyncClient:
    values = {"control_keys": TRUSTED, "max_body_bytes": 200_000, "max_batch_events": 10}
    app = create_app(IngestConfig(**(values | config)), delivery, credentials, clock=lambda: T0)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest")


def bearer(credential: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    return {"authorization": f"Bearer {credential}", **(headers or {})}


@pytest.fixture
def acme(credentials: ServiceClients) -> str:
    return credentials.add(tenant="acme", audience=None, label="login", now=T0).credential


def events(count: int, tenant: str = "acme") -> list[Event]:
    return [
        sample_event(tenant=tenant, subject=f"u-{i}", correlationid=f"c-{i}") for i in range(count)
    ]


async def test_structured_binary_and_batch_events_from_the_sdk_are_delivered_with_their_ids(
    credentials: ServiceClients, acme: str
) -> None:
    delivery = RecordingDelivery()
    one, two, *three = events(5)
    async with app_for(credentials, delivery) as client:
        for headers, body in (
            structured(sdk_event(one, comexampleorder="o-1")),
            binary(sdk_event(two, sequence=7)),
            batch([sdk_event(event) for event in three]),
        ):
            answer = await client.post("/v1/events", headers=bearer(acme, headers), content=body)
            assert answer.status_code == 202, answer.text

    assert [len(b) for b in delivery.batches] == [1, 1, 3]
    assert [e.id for e in delivery.events] == [e.id for e in (one, two, *three)]
    assert delivery.events[0].extensions == {"comexampleorder": "o-1"}
    assert delivery.events[1].extensions == {"sequence": "7"}
    assert delivery.events[2] == three[0]
    assert answer.json() == {"accepted": 3, "ids": [e.id for e in three]}


async def test_binary_mode_header_values_are_percent_decoded(
    credentials: ServiceClients, acme: str
) -> None:
    delivery = RecordingDelivery()
    event = sample_event(source="urn:example:login service")
    headers, body = binary(sdk_event(event))
    assert "%20" in headers["ce-source"]  # the SDK percent-encodes, as the binding says
    async with app_for(credentials, delivery) as client:
        answer = await client.post("/v1/events", headers=bearer(acme, headers), content=body)
    assert answer.status_code == 422  # a space is not allowed in source: decoded, then refused
    assert answer.json()["errors"][0]["field"] == "source"
    event = sample_event(source="urn:example:login")
    headers, body = binary(sdk_event(event))
    async with app_for(credentials, delivery) as client:
        answer = await client.post("/v1/events", headers=bearer(acme, headers), content=body)
    assert answer.status_code == 202
    assert delivery.events == [event]


async def test_a_batch_with_one_bad_event_is_refused_whole_naming_each_bad_index(
    credentials: ServiceClients, acme: str
) -> None:
    delivery = RecordingDelivery()
    good = [json.loads(encode(e)) for e in events(4)]
    good[1]["data"]["factor"] = "carrier_pigeon"
    good[3]["Colour"] = "red"
    body = json.dumps(good).encode()
    async with app_for(credentials, delivery) as client:
        answer = await client.post(
            "/v1/events",
            headers=bearer(acme, {"content-type": "application/cloudevents-batch+json"}),
            content=body,
        )
    assert answer.status_code == 422
    problem = answer.json()
    assert answer.headers["content-type"] == "application/problem+json"
    assert problem["error"] == "events_refused"
    assert "none of the request's events was delivered" in problem["detail"]
    assert [(p["index"], p["field"]) for p in problem["errors"]] == [
        (1, "data.factor"),
        (3, "Colour"),
    ]
    assert delivery.batches == []  # the good ones (0 and 2) were not taken either


@pytest.mark.parametrize(
    ("bad", "error", "field"),
    [
        (sample_event(tenant="globex"), "other_tenant", "tenant"),
        (sample_event("lockout.applied"), "derived_type", "type"),
        (sample_event("privacy.subject.erased", signed=False), "unsigned_control", "signature"),
    ],
    ids=["another tenant's event", "a derived type", "an unsigned control event"],
)
async def test_what_the_caller_may_not_say_is_forbidden_and_nothing_is_delivered(
    credentials: ServiceClients, acme: str, bad: Event, error: str, field: str
) -> None:
    delivery = RecordingDelivery()
    headers, body = batch([sdk_event(e) for e in (events(1)[0], bad)])
    async with app_for(credentials, delivery) as client:
        answer = await client.post("/v1/events", headers=bearer(acme, headers), content=body)
    assert answer.status_code == 403
    assert answer.json()["errors"] == [
        {"index": 1, "error": error, "field": field, "reason": answer.json()["errors"][0]["reason"]}
    ]
    assert delivery.batches == []


async def test_a_control_event_signed_by_a_trusted_key_is_taken(
    credentials: ServiceClients, acme: str
) -> None:
    delivery = RecordingDelivery()
    signed = sample_event("privacy.subject.erased")
    headers, body = structured(sdk_event(signed))
    async with app_for(credentials, delivery) as client:
        answer = await client.post("/v1/events", headers=bearer(acme, headers), content=body)
    assert answer.status_code == 202
    assert delivery.events == [signed]


async def test_an_event_dated_ahead_of_the_clock_is_refused(
    credentials: ServiceClients, acme: str
) -> None:
    delivery = RecordingDelivery()
    ahead = sample_event(now=T0 + timedelta(minutes=6))
    headers, body = structured(sdk_event(ahead))
    async with app_for(credentials, delivery) as client:
        answer = await client.post("/v1/events", headers=bearer(acme, headers), content=body)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["error"] == "from_the_future"


async def test_credentials_missing_forged_or_revoked_are_refused(
    credentials: ServiceClients, acme: str
) -> None:
    delivery = RecordingDelivery()
    headers, body = structured(sdk_event(events(1)[0]))
    client_id = acme.removeprefix("fsc_").split(".")[0]
    forged = f"fsc_{client_id}.{'A' * 43}"
    async with app_for(credentials, delivery) as client:
        nobody = await client.post("/v1/events", headers=headers, content=body)
        wrong = await client.post("/v1/events", headers=bearer(forged, headers), content=body)
        assert credentials.revoke(client_id, now=T0)
        revoked = await client.post("/v1/events", headers=bearer(acme, headers), content=body)
    assert (nobody.status_code, nobody.json()["error"]) == (401, "unauthenticated")
    assert nobody.headers["www-authenticate"].startswith("Bearer")
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_credential")
    assert (revoked.status_code, revoked.json()["error"]) == (401, "invalid_credential")
    assert delivery.batches == []


async def test_oversized_bodies_and_batches_are_413(credentials: ServiceClients, acme: str) -> None:
    delivery = RecordingDelivery()
    headers, body = batch([sdk_event(e) for e in events(11)])
    async with app_for(credentials, delivery) as client:
        too_many = await client.post("/v1/events", headers=bearer(acme, headers), content=body)
        too_big = await client.post(
            "/v1/events", headers=bearer(acme, headers), content=b"[" + b" " * 200_001 + b"]"
        )
    assert (too_many.status_code, too_many.json()["error"]) == (413, "batch_too_large")
    assert (too_big.status_code, too_big.json()["error"]) == (413, "body_too_large")
    assert delivery.batches == []


async def test_what_is_not_cloudevents_is_400_or_415(
    credentials: ServiceClients, acme: str
) -> None:
    delivery = RecordingDelivery()
    body = encode(events(1)[0])
    async with app_for(credentials, delivery) as client:
        plain_json = await client.post(
            "/v1/events", headers=bearer(acme, {"content-type": "application/json"}), content=body
        )
        text = await client.post(
            "/v1/events", headers=bearer(acme, {"content-type": "text/plain"}), content=body
        )
        junk = await client.post(
            "/v1/events",
            headers=bearer(acme, {"content-type": "application/cloudevents-batch+json"}),
            content=b"[{",
        )
        not_array = await client.post(
            "/v1/events",
            headers=bearer(acme, {"content-type": "application/cloudevents-batch+json"}),
            content=body,
        )
    assert (plain_json.status_code, plain_json.json()["error"]) == (415, "unsupported_media_type")
    assert text.status_code == 415
    assert (junk.status_code, junk.json()["error"]) == (400, "malformed_json")
    assert (not_array.status_code, not_array.json()["error"]) == (400, "malformed_batch")
    assert delivery.batches == []


async def test_while_the_broker_is_away_the_answer_is_503_with_retry_after(
    credentials: ServiceClients, acme: str
) -> None:
    delivery = RecordingDelivery(down=True)
    headers, body = batch([sdk_event(e) for e in events(3)])
    async with app_for(credentials, delivery, retry_after_s=7) as client:
        answer = await client.post("/v1/events", headers=bearer(acme, headers), content=body)
        delivery.down = False
        retried = await client.post("/v1/events", headers=bearer(acme, headers), content=body)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "7"
    assert answer.json()["error"] == "broker_unavailable"
    assert "keep their ids" in answer.json()["detail"]
    assert retried.status_code == 202


def signed(
    headers: dict[str, str], body: bytes, *, at: int, secret: bytes = SECRET
) -> dict[str, str]:
    return {**headers, SIGNATURE_HEADER: sign(secret, at, "POST", "/v1/events", headers, body)}


async def test_signed_requests_forged_stale_altered_or_replayed_are_refused(
    credentials: ServiceClients, acme: str
) -> None:
    delivery = RecordingDelivery()
    now = int(T0.timestamp())
    headers, body = binary(sdk_event(events(1)[0]))
    other_headers, other_body = binary(sdk_event(events(2)[1]))
    moved = {**headers, "ce-subject": "u-9", "ce-partitionkey": "acme/u-9"}
    async with app_for(credentials, delivery, signing_secret=SECRET) as client:

        async def post(h: dict[str, str], b: bytes = body) -> httpx.Response:
            return await client.post("/v1/events", headers=bearer(acme, h), content=b)

        unsigned = await post(headers)
        forged = await post(signed(headers, body, at=now, secret=b"guessed"))
        stale = await post(signed(headers, body, at=now - 301))
        ahead = await post(signed(headers, body, at=now + 301))
        altered_body = await post(signed(headers, body, at=now), body + b" ")
        altered_header = await post({**signed(headers, body, at=now), **moved})
        malformed = await post({**headers, SIGNATURE_HEADER: "v1=abc"})
        assert delivery.batches == []
        good = signed(headers, body, at=now - 10)
        accepted = await post(good)
        replayed = await post(good)
        other = await post(signed(other_headers, other_body, at=now), other_body)

    refusals = {
        name: (answer.status_code, answer.json()["error"])
        for name, answer in {
            "unsigned": unsigned,
            "forged": forged,
            "stale": stale,
            "ahead": ahead,
            "altered body": altered_body,
            "altered header": altered_header,
            "malformed": malformed,
            "replayed": replayed,
        }.items()
    }
    assert refusals == {
        "unsigned": (401, "signature_required"),
        "forged": (401, "bad_signature"),
        "stale": (401, "stale_signature"),
        "ahead": (401, "stale_signature"),
        "altered body": (401, "bad_signature"),
        "altered header": (401, "bad_signature"),
        "malformed": (401, "malformed_signature"),
        "replayed": (401, "replayed_signature"),
    }
    assert (accepted.status_code, other.status_code) == (202, 202)
    assert len(delivery.batches) == 2


async def test_a_signed_request_that_got_503_may_be_retried_unchanged(
    credentials: ServiceClients, acme: str
) -> None:
    delivery = RecordingDelivery(down=True)
    headers, body = structured(sdk_event(events(1)[0]))
    request = signed(headers, body, at=int(T0.timestamp()))
    async with app_for(credentials, delivery, signing_secret=SECRET) as client:
        first = await client.post("/v1/events", headers=bearer(acme, request), content=body)
        delivery.down = False
        retry = await client.post("/v1/events", headers=bearer(acme, request), content=body)
    assert (first.status_code, retry.status_code) == (503, 202)


def test_the_batch_body_is_the_sdks_own_serialisation() -> None:
    """The batch helper writes what the SDK writes, element by element (no factorstream
    encoding sneaks in)."""
    event = sdk_event(events(1)[0], sampled=True)
    _, body = batch([event])
    assert msgspec.json.decode(body)[0]["sampled"] is True


async def test_the_same_signed_request_sent_twice_at_once_is_taken_once(
    credentials: ServiceClients, acme: str
) -> None:
    """The second copy arrives while the first waits for the broker: refused as a replay."""
    import asyncio

    release = asyncio.Event()

    class SlowDelivery(RecordingDelivery):
        async def deliver(self, events: Sequence[Event]) -> None:
            await release.wait()
            await super().deliver(events)

    delivery = SlowDelivery()
    headers, body = structured(sdk_event(events(1)[0]))
    request = bearer(acme, signed(headers, body, at=int(T0.timestamp())))
    async with app_for(credentials, delivery, signing_secret=SECRET) as client:
        first = asyncio.create_task(client.post("/v1/events", headers=request, content=body))
        await asyncio.sleep(0.2)
        second = await client.post("/v1/events", headers=request, content=body)
        release.set()
        answered = await first
    assert (answered.status_code, second.status_code) == (202, 401)
    assert second.json()["error"] == "replayed_signature"
    assert len(delivery.batches) == 1
