"""A real MFA service on a free port (uvicorn in a thread), a clock the test moves, and a
plain HTTP client (``http.client``: no factorstream code on the calling side)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
import uvicorn

from verifiers.service.api import ServiceParts, create_app
from verifiers.service.config import ServiceConfig
from verifiers.service.server import open_parts

START = datetime(2026, 11, 27, 9, 0, 10, tzinfo=UTC)
ISSUER = "https://mfa.test"


@dataclass
class Clock:
    """The service's time; tests move it."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Service:
    """A running service: its address, parts and clock."""

    host: str
    port: int
    parts: ServiceParts
    clock: Clock
    tenants: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        payload = raw
        if body is not None:
            payload = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request(method, path, body=payload, headers=sent)
            response = connection.getresponse()
            return Answer(
                response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
            )
        finally:
            connection.close()

    def client(self, tenant: str, audience: str | None = None) -> str:
        """A new credential of ``tenant``."""
        return self.parts.clients.add(
            tenant=tenant, audience=audience, label=None, now=self.clock()
        ).credential

    def enrol_totp(self, token: str, subject: str, **context: Any) -> pyotp.TOTP:
        """Enrol and confirm TOTP for ``subject``; the authenticator the person holds."""
        started = self.call(
            "POST", f"/v1/subjects/{subject}/totp/enrollments", context or None, token=token
        )
        assert started.status == 201, started.body
        authenticator = pyotp.TOTP(started.json["secret"])
        confirmed = self.call(
            "POST",
            f"/v1/subjects/{subject}/totp/enrollments/{started.json['enrollment_id']}/confirm",
            {"code": authenticator.at(self.clock()), **context},
            token=token,
        )
        assert confirmed.status == 200, confirmed.body
        self.clock.advance(seconds=30)  # the confirming code's step is spent
        return authenticator


def service_config(tmp_path: Path, **overrides: Any) -> ServiceConfig:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'verifiers.db'}",
        "secrets_key_file": tmp_path / "keys" / "secrets.key",
        "signing_key_file": tmp_path / "keys" / "signing.pem",
        "issuer": ISSUER,
        **overrides,
    }
    return ServiceConfig(**values)


@dataclass
class RunningServer:
    server: uvicorn.Server
    thread: threading.Thread
    port: int


def start_server(app: Any) -> RunningServer:
    """Serve ``app`` with uvicorn in a thread on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", log_level="warning", proxy_headers=False)
    )  # as `serve` runs it: X-Forwarded-For is the rate limiter's to trust, not uvicorn's
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    return RunningServer(server, thread, port)


def stop_server(running: RunningServer) -> None:
    running.server.should_exit = True
    running.thread.join(timeout=10)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(tmp_path: Path, clock: Clock) -> Iterator[Service]:
    parts = open_parts(service_config(tmp_path), clock=clock)
    running = start_server(create_app(parts))
    try:
        yield Service("127.0.0.1", running.port, parts, clock)
    finally:
        stop_server(running)
