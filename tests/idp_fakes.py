"""A local HTTP server playing the identity providers' APIs, for the pollers' tests.

Real HTTP on a free port (``http.server`` in a thread), so the clients are tested as they
run: tokens from each provider's token endpoint (expiring, and revocable to force a 401),
pages as each API gives them (Auth0 by checkpoint, Okta with a ``Link`` next header,
Keycloak newest first by ``first``/``max``, Graph with ``@odata.nextLink``), and faults
queued for the next API requests (``429`` with the provider's reset header, ``500``).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from schemas import Event
from sources import auth0
from sources.unmapped import Unmapped

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
OKTA_API_TOKEN = "SSWS 00okta-api-token"


def auth0_logs(count: int, *, first: int = 0, start: datetime = START) -> list[dict[str, Any]]:
    """Auth0 log records, each mapped to an event (failed MFA, success, failed login) and
    every fifth one not MFA (``sapi``, kept as unmapped)."""
    kinds = ["gd_auth_failed", "s", "fp", "gd_auth_failed", "sapi"]
    return [
        {
            "log_id": f"{90020261201000000000 + i:056d}",
            "date": (start + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
            "type": kinds[i % len(kinds)],
            "user_id": f"auth0|user{i % 37}",
            "ip": f"192.0.2.{i % 250 + 1}",
            "details": {},
        }
        for i in range(first, first + count)
    ]


def auth0_mapper(record: Any) -> Event | Unmapped:
    return auth0.map_log(record, auth0.Auth0Source(tenant="acme", source=FAKE_SOURCE))


FAKE_SOURCE = "https://acme.eu.auth0.com/"


def as_auth0(log_id: str, time_: datetime, user: str) -> dict[str, Any]:
    """A record the Auth0 mapping understands, standing in for another provider's mapping
    (the pollers take any mapping; these tests are about the I/O)."""
    return {"log_id": log_id, "date": time_.isoformat(), "type": "gd_auth_failed",
            "user_id": user, "details": {}}  # fmt: skip


def okta_mapper(record: Any) -> Event | Unmapped:
    time_ = datetime.fromisoformat(record["published"].replace("Z", "+00:00"))
    return auth0_mapper(as_auth0(record["uuid"], time_, record["actor"]["id"]))


def keycloak_mapper(record: Any) -> Event | Unmapped:
    time_ = datetime.fromtimestamp(record["time"] / 1000, UTC)
    return auth0_mapper(as_auth0(record["id"], time_, record["userId"]))


def entra_mapper(record: Any) -> Event | Unmapped:
    time_ = datetime.fromisoformat(record["createdDateTime"].replace("Z", "+00:00"))
    return auth0_mapper(as_auth0(record["id"], time_, record["userId"]))


def okta_events(count: int, *, first: int = 0) -> list[dict[str, Any]]:
    return [
        {"uuid": f"okta-{i:06d}", "published": _z(START + timedelta(seconds=i)),
         "eventType": "user.authentication.auth_via_mfa", "actor": {"id": f"00u{i % 11}"}}
        for i in range(first, first + count)
    ]  # fmt: skip


def keycloak_events(count: int, *, first: int = 0, per_ms: int = 1) -> list[dict[str, Any]]:
    """``per_ms`` events share each millisecond (the window's boundary case)."""
    base = int(START.timestamp() * 1000)
    return [
        {"id": f"kc-{i:06d}", "time": base + (i // per_ms) * 1000, "type": "LOGIN_ERROR",
         "realmId": "acme", "userId": f"u{i % 13}", "error": "invalid_user_credentials"}
        for i in range(first, first + count)
    ]  # fmt: skip


def entra_signins(count: int, *, first: int = 0, per_s: int = 1) -> list[dict[str, Any]]:
    return [
        {"id": f"e-{i:06d}", "createdDateTime": _z(START + timedelta(seconds=i // per_s)),
         "userId": f"eu{i % 7}", "status": {"errorCode": 50074}}
        for i in range(first, first + count)
    ]  # fmt: skip


def _z(time_: datetime) -> str:
    return time_.isoformat().replace("+00:00", "Z")


@dataclass
class FakeIdp:
    """The provider's state; change it between (or during) polls."""

    auth0: list[dict[str, Any]] = field(default_factory=list)
    okta: list[dict[str, Any]] = field(default_factory=list)
    keycloak: list[dict[str, Any]] = field(default_factory=list)
    keycloak_admin: list[dict[str, Any]] = field(default_factory=list)
    entra: list[dict[str, Any]] = field(default_factory=list)
    token_lifetime_s: int = 3600
    faults: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    """``(status, headers)`` answered to the next API requests, one each."""
    foreign_next_links: bool = False
    """Graph's next links point at another host (a tampered answer)."""
    delay_s: float = 0.0
    """Each API page is answered this late (to catch a poller mid-run)."""
    requests: list[tuple[float, str, str]] = field(default_factory=list)
    """``(time, path, Authorization)`` of each request."""
    answers: list[tuple[float, int]] = field(default_factory=list)
    """``(time, status)`` of each API answer."""
    tokens: dict[str, float] = field(default_factory=dict)
    token_requests: list[dict[str, list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""

    def fail_next(self, status: int, **headers: str) -> None:
        self.faults.append((status, headers))

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def api_requests(self, prefix: str = "") -> list[tuple[float, str, str]]:
        return [r for r in self.requests if "token" not in r[1] and r[1].startswith(prefix)]


def rate_limit_headers(provider: str, wait_s: float) -> dict[str, str]:
    reset = str(math.ceil(time.time() + wait_s))
    if provider == "auth0":
        return {"x-ratelimit-limit": "50", "x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
    if provider == "okta":
        return {"x-rate-limit-limit": "60", "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": reset}  # fmt: skip
    return {"Retry-After": str(math.ceil(wait_s))}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *_: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        if self.command == "GET":
            self.server.idp.answers.append((time.time(), status))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # the token endpoints
        idp = self.server.idp
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        idp.requests.append((time.time(), urlsplit(self.path).path, ""))
        path = urlsplit(self.path).path
        if not path.endswith("/token"):
            return self._send(404, {"error": "not_found"})
        idp.token_requests.append(form)
        if form.get("client_secret", ["?"])[0] == "wrong" or (
            "client_secret" not in form and "client_assertion" not in form
        ):
            return self._send(401, {"error": "access_denied"})
        with idp.lock:
            token = f"tok-{len(idp.token_requests)}"
            idp.tokens[token] = time.time() + idp.token_lifetime_s
        self._send(200, {"access_token": token, "token_type": "Bearer",
                         "expires_in": idp.token_lifetime_s})  # fmt: skip

    def do_GET(self) -> None:
        idp = self.server.idp
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        authorization = self.headers.get("Authorization", "")
        idp.requests.append((time.time(), url.path, authorization))
        token = authorization.removeprefix("Bearer ")
        with idp.lock:
            valid = idp.tokens.get(token, 0) > time.time() or authorization == OKTA_API_TOKEN
        if not valid:
            return self._send(401, {"statusCode": 401, "error": "Unauthorized",
                                    "message": "Expired token"})  # fmt: skip
        if idp.faults:
            status, headers = idp.faults.popleft()
            return self._send(status, {"error": f"fault {status}"}, headers)
        if idp.delay_s:
            time.sleep(idp.delay_s)
        if url.path == "/api/v2/logs":
            return self._auth0(query)
        if url.path == "/api/v1/logs":
            return self._okta(query)
        if url.path.startswith("/admin/realms/acme/"):
            return self._keycloak(url.path.rsplit("/", 1)[1], query)
        if url.path == "/v1.0/auditLogs/signIns":
            return self._entra(query)
        self._send(404, {"error": "not_found"})

    def _auth0(self, query: dict[str, str]) -> None:
        logs = sorted(self.server.idp.auth0, key=lambda r: r["log_id"])
        if "from" in query:
            take = int(query.get("take", "50"))
            page = [r for r in logs if r["log_id"] > query["from"]][:take]
        else:
            per_page = int(query.get("per_page", "50"))
            page = sorted(logs, key=lambda r: r["date"])[:per_page]
        self._send(200, page)

    def _okta(self, query: dict[str, str]) -> None:
        events = [e for e in self.server.idp.okta if e["published"] >= query["since"]]
        limit = int(query.get("limit", "100"))
        if "after" in query:
            events = [e for e in events if e["uuid"] > query["after"]]
        page = events[:limit]
        after = page[-1]["uuid"] if page else query.get("after")
        params = {"since": query["since"], "limit": str(limit), "sortOrder": "ASCENDING",
                  **({"after": after} if after else {})}  # fmt: skip
        link = f'<{self.server.idp.base_url}/api/v1/logs?{urlencode(params)}>; rel="next"'
        self._send(200, page, {"Link": link})

    def _keycloak(self, which: str, query: dict[str, str]) -> None:
        idp = self.server.idp
        events = idp.keycloak if which == "events" else idp.keycloak_admin
        newest_first = sorted(events, key=lambda e: (e["time"], e["id"]), reverse=True)
        first, size = int(query.get("first", "0")), int(query.get("max", "100"))
        self._send(200, newest_first[first : first + size])

    def _entra(self, query: dict[str, str]) -> None:
        idp = self.server.idp
        since = query["$filter"].removeprefix("createdDateTime ge ")
        rows = sorted(
            (r for r in self.server.idp.entra if r["createdDateTime"] >= since),
            key=lambda r: r["createdDateTime"],
            reverse=True,
        )
        top, skip = int(query.get("$top", "100")), int(query.get("$skiptoken", "0"))
        body: dict[str, Any] = {"value": rows[skip : skip + top]}
        if skip + top < len(rows):
            params = {**query, "$skiptoken": str(skip + top)}
            host = "https://graph.example.net" if idp.foreign_next_links else idp.base_url
            body["@odata.nextLink"] = f"{host}/v1.0/auditLogs/signIns?{urlencode(params)}"
        self._send(200, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    idp: FakeIdp


def serve(idp: FakeIdp) -> Iterator[FakeIdp]:
    """Run ``idp`` on a free port until the generator is closed (a fixture's body)."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.idp = idp
    idp.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield idp
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
