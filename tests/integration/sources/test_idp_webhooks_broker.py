"""The webhook routers as the front door composes them (``webhook_routers``), served by
uvicorn with the real acknowledged delivery to a real broker: a batch is on the topic
before the provider hears 200, a replay adds the same ids, a forged post adds nothing."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from factorstream import idp_config
from factorstream.idp_config import Adapter, adapter_files, event_delivery, webhook_routers
from factorstream.settings import Settings, TopicSettings
from sources.unmapped import Unmapped
from tests import idp_fakes as fakes
from tests.integration.records import consume
from tests.kafka_broker import KafkaBroker

TOKEN = "Bearer log-stream-7c2e"
SECRET = "hook-secret-91ab"


@pytest.fixture
def base_url(
    kafka_broker: KafkaBroker, topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    settings = Settings(
        data_dir=tmp_path / "data",
        kafka_bootstrap=kafka_broker.bootstrap,
        topics=TopicSettings(events=topic),
    )
    files = adapter_files(settings)
    files.add(
        Adapter(name="acme-auth0", provider="auth0", tenant="acme", source=fakes.FAKE_SOURCE,
                base_url="https://acme.eu.auth0.com"),
        {"client_id": "a", "client_secret": "b", "log_stream_token": TOKEN},
    )  # fmt: skip
    files.add(
        Adapter(name="acme-okta", provider="okta", tenant="acme", source="https://acme.okta.com",
                base_url="https://acme.okta.com"),
        {"api_token": "t", "event_hook_secret": SECRET},
    )  # fmt: skip
    delivery = event_delivery(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with delivery:
            yield

    app = FastAPI(lifespan=lifespan)
    # the Okta mapping is another module's (sources.okta); the fake's stands in for it
    original = idp_config.mapper_for
    monkeypatch.setattr(
        idp_config,
        "mapper_for",
        lambda provider, tenant, source: (
            fakes.okta_mapper if provider == "okta" else original(provider, tenant, source)
        ),
    )
    for router in webhook_routers(settings, delivery):
        app.include_router(router)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def test_webhook_batches_reach_the_topic_before_200_and_replays_keep_their_ids(
    kafka_broker: KafkaBroker, topic: str, base_url: str
) -> None:
    logs = fakes.auth0_logs(30)
    batch = [{"log_id": log["log_id"], "data": log} for log in logs]
    hook = {"eventType": "com.okta.event_hook", "data": {"events": fakes.okta_events(4)}}
    with httpx.Client(base_url=base_url, timeout=30) as http:
        auth0 = "/v1/idp/acme-auth0/auth0-log-stream"
        forged = http.post(auth0, json=batch, headers={"Authorization": "Bearer guess"})
        assert forged.status_code == 401
        for _ in range(2):  # Auth0 re-sends a batch it did not see acknowledged
            taken = http.post(auth0, json=batch, headers={"Authorization": TOKEN})
            assert taken.json() == {"delivered": 24, "unmapped": 6}
        okta = "/v1/idp/acme-okta/okta-event-hook"
        challenge = http.get(okta, headers={"Authorization": SECRET,
                                            "X-Okta-Verification-Challenge": "c-1"})  # fmt: skip
        assert challenge.json() == {"verification": "c-1"}
        assert http.post(okta, json=hook, headers={"Authorization": SECRET}).is_success
    expected = [e.id for e in map(fakes.auth0_mapper, logs) if not isinstance(e, Unmapped)]
    expected += [e.id for e in map(fakes.okta_mapper, hook["data"]["events"])]  # type: ignore[index]
    records = consume(kafka_broker.bootstrap, topic, at_least=2 * 24 + 4, timeout_s=10)
    ids = [record.event().id for record in records]
    assert len(ids) == 52 and sorted(set(ids)) == sorted(expected)
    assert all(r.key == r.event().partitionkey.encode() for r in records)
    assert json.loads(records[0].value)["tenant"] == "acme"
