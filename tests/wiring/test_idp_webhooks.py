"""The webhook receivers mounted in a FastAPI app of their own, served by uvicorn on a free
port and called over real HTTP: Auth0 Log Streams and Okta Event Hooks; what a stranger
can send them (forged or missing secrets, oversized bodies, replays) is refused or
harmless."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from sources.polling import UnmappedLog
from sources.webhooks import Receiver, auth0_log_stream_router, okta_event_hook_router
from tests import idp_fakes as fakes
from tests.integration.sources.test_idp_pollers import RecordingDelivery

TOKEN = "Bearer 3f8a-log-stream-token"
SECRET = "okta-hook-secret-4c1d"
AUTH0 = "/v1/idp/acme-auth0/auth0-log-stream"
OKTA = "/v1/idp/acme-okta/okta-event-hook"
LIMIT = 64 * 1024


def _now() -> datetime:
    return datetime(2026, 12, 7, tzinfo=UTC)


@pytest.fixture
def delivery() -> RecordingDelivery:
    return RecordingDelivery()


@pytest.fixture
def client(delivery: RecordingDelivery, tmp_path: Path) -> Iterator[httpx.Client]:
    def receiver(mapper: Any) -> Receiver:
        return Receiver(mapper, delivery, UnmappedLog(tmp_path / "unmapped.jsonl"), _now, LIMIT)

    app = FastAPI()
    app.include_router(
        auth0_log_stream_router(path=AUTH0, token=TOKEN, receiver=receiver(fakes.auth0_mapper))
    )
    app.include_router(
        okta_event_hook_router(
            path=OKTA, header="X-Hook-Secret", secret=SECRET, receiver=receiver(fakes.okta_mapper)
        )  # fmt: skip
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}") as http:
            yield http
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _stream_batch(count: int = 10) -> list[dict[str, Any]]:
    """What Auth0's custom webhook posts: ``{log_id, data}`` items."""
    return [{"log_id": log["log_id"], "data": log} for log in fakes.auth0_logs(count)]


def test_auth0_batch_with_the_token_is_delivered_then_answered(
    client: httpx.Client, delivery: RecordingDelivery, tmp_path: Path
) -> None:
    response = client.post(AUTH0, json=_stream_batch(), headers={"Authorization": TOKEN})
    assert response.status_code == 200
    assert response.json() == {"delivered": 8, "unmapped": 2}
    assert [e.type for e in delivery.events][:3] == [
        "mfa.verification.failed", "auth.login.attempted", "auth.login.attempted",
    ]  # fmt: skip
    kept = [json.loads(line) for line in (tmp_path / "unmapped.jsonl").read_text().splitlines()]
    assert [k["unmapped"]["reason"] for k in kept] == ["not_mfa", "not_mfa"]
    assert kept[0]["record"]["data"]["type"] == "sapi"


def test_auth0_json_lines_and_a_line_that_is_not_json(
    client: httpx.Client, delivery: RecordingDelivery
) -> None:
    lines = [json.dumps(item) for item in _stream_batch(4)]
    body = "\n".join([*lines[:2], "{not json", *lines[2:]]) + "\n"
    response = client.post(AUTH0, content=body, headers={"Authorization": TOKEN})
    assert response.json() == {"delivered": 4, "unmapped": 1}


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer wrong", TOKEN + "x", TOKEN[:-1], TOKEN.lower(), "3f8a-log-stream-token"],
)
def test_auth0_forged_or_missing_token_is_refused_and_nothing_delivered(
    client: httpx.Client, delivery: RecordingDelivery, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.post(AUTH0, json=_stream_batch(), headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert delivery.events == []


def test_oversized_bodies_are_refused_declared_or_streamed(
    client: httpx.Client, delivery: RecordingDelivery
) -> None:
    big = json.dumps(_stream_batch(1) * 400).encode()
    assert len(big) > LIMIT
    declared = client.post(AUTH0, content=big, headers={"Authorization": TOKEN})
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    streamed = client.post(AUTH0, content=chunks(), headers={"Authorization": TOKEN})
    assert streamed.status_code == 413
    okta = client.post(OKTA, content=big, headers={"X-Hook-Secret": SECRET})
    assert okta.status_code == 413
    assert delivery.events == []


def test_a_replayed_delivery_yields_the_same_event_ids(
    client: httpx.Client, delivery: RecordingDelivery
) -> None:
    batch = _stream_batch(20)
    for _ in range(2):
        assert client.post(AUTH0, json=batch, headers={"Authorization": TOKEN}).status_code == 200
    hook = {"eventType": "com.okta.event_hook", "data": {"events": fakes.okta_events(5)}}
    for _ in range(2):
        assert client.post(OKTA, json=hook, headers={"X-Hook-Secret": SECRET}).status_code == 200
    ids = delivery.ids
    auth0_ids, okta_ids = ids[:32], ids[32:]
    assert auth0_ids[:16] == auth0_ids[16:] and okta_ids[:5] == okta_ids[5:]
    assert len(set(ids)) == 16 + 5  # the pipeline drops the second copy by id


def test_broker_down_answers_503_so_the_provider_sends_again(
    client: httpx.Client, delivery: RecordingDelivery, tmp_path: Path
) -> None:
    delivery.down = True
    response = client.post(AUTH0, json=_stream_batch(), headers={"Authorization": TOKEN})
    assert response.status_code == 503 and response.headers["retry-after"]
    assert not (tmp_path / "unmapped.jsonl").exists()  # nothing taken, nothing kept
    delivery.down = False
    assert client.post(AUTH0, json=_stream_batch(), headers={"Authorization": TOKEN}).is_success


def test_okta_verification_challenge_is_answered_only_with_the_secret(
    client: httpx.Client,
) -> None:
    challenge = {"X-Okta-Verification-Challenge": "mRWMr4vk6I4mnSR7mfl0u8RMZkwCwvc7N6sy"}
    answered = client.get(OKTA, headers={**challenge, "X-Hook-Secret": SECRET})
    assert answered.status_code == 200
    assert answered.json() == {"verification": "mRWMr4vk6I4mnSR7mfl0u8RMZkwCwvc7N6sy"}
    forged = client.get(OKTA, headers={**challenge, "X-Hook-Secret": "guess"})
    assert forged.status_code == 401 and "mRWMr4" not in forged.text
    assert client.get(OKTA, headers=challenge).status_code == 401
    assert client.get(OKTA, headers={"X-Hook-Secret": SECRET}).status_code == 400


def test_okta_delivery_with_the_secret_is_taken_and_forged_ones_refused(
    client: httpx.Client, delivery: RecordingDelivery
) -> None:
    hook = {"eventType": "com.okta.event_hook", "eventId": "evt1",
            "data": {"events": fakes.okta_events(3)}}  # fmt: skip
    forged = client.post(OKTA, json=hook, headers={"X-Hook-Secret": SECRET + "x"})
    assert forged.status_code == 401 and delivery.events == []
    assert client.post(OKTA, json=hook).status_code == 401
    taken = client.post(OKTA, json=hook, headers={"X-Hook-Secret": SECRET})
    assert taken.json() == {"delivered": 3, "unmapped": 0}
    for body in (b"[]", b"not json", b'{"data": {"events": 3}}'):
        bad = client.post(OKTA, content=body, headers={"X-Hook-Secret": SECRET})
        assert bad.status_code == 400
