"""Every answer the service refuses with: a status and a machine-readable JSON body.

Bodies are RFC 9457 problem details with one extension member, ``error``, the reason a
program branches on: ``{"type": "about:blank", "title": "Forbidden", "status": 403,
"error": "replayed", "detail": "…"}``. :class:`BodyGuard` refuses oversized bodies (413)
and bodies that are not JSON (415) before the application reads them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

PROBLEM = "application/problem+json"
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ServiceRefusal(Exception):
    """A request the service answers with ``status`` and reason ``error``."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
        recorded: bool = False,
    ) -> None:
        """``recorded``: a ceremony already wrote the refusal's event (the refusal trail,
        :mod:`verifiers.service.trail`, records the others)."""
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        self.recorded = recorded


def problem(status: int, error: str, detail: str, **extra: Any) -> bytes:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "error": error,
        "detail": detail,
        **extra,
    }
    return json.dumps(body, default=str).encode()


def problem_response(
    status: int, error: str, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> Response:
    """The problem as a Starlette ``Response`` (for an app's exception handlers)."""
    return Response(
        problem(status, error, detail, **extra),
        status_code=status,
        media_type=PROBLEM,
        headers=dict(headers) if headers else None,
    )


def error_of(status: int) -> str:
    """The ``error`` of a bare HTTP status: its phrase in snake_case (``method_not_allowed``)."""
    return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")


async def send_problem(
    send: Send, status: int, error: str, detail: str, headers: Mapping[str, str] | None = None
) -> None:
    body = problem(status, error, detail)
    raw = [(b"content-type", PROBLEM.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


JSON_LINES = frozenset({"application/x-ndjson", "application/jsonl", "application/json-seq"})
"""Media types of JSON lines (what an identity provider's log stream may post in a batch)."""


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return (
        media == "application/json"
        or media in JSON_LINES
        or (media.startswith("application/") and media.endswith("+json"))
    )


Refusals = Callable[[Scope, int, str], Awaitable[None]]
"""Told of each refusal a guard answers itself: (scope, status, error)."""


async def _untold(_scope: Scope, _status: int, _error: str) -> None:
    return None


class BodyGuard:
    """Reads a request's body (at most ``max_bytes``) before the app does: larger is 413;
    a non-empty body that is not JSON (``application/json``, ``…+json``, or JSON lines,
    :data:`JSON_LINES`) is 415. ``refused`` is told of each."""

    def __init__(self, app: AsgiApp, *, max_bytes: int, refused: Refusals = _untold) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large(scope, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and not _is_json(headers.get(b"content-type", "")):
            await send_problem(
                send,
                415,
                "unsupported_media_type",
                "request bodies are JSON: send Content-Type: application/json",
            )
            await self.refused(scope, 415, "unsupported_media_type")
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        await send_problem(
            send, 413, "body_too_large", f"request bodies are at most {self.max_bytes} bytes"
        )
        await self.refused(scope, 413, "body_too_large")
