"""The body guard in front of the HTTP apps: JSON (and JSON lines, what a provider's log
stream may post) passes; anything else is 415 and never reaches the app."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest

from verifiers.service.errors import BodyGuard


def through_guard(content_type: str | None, body: bytes = b'{"a": 1}') -> tuple[int, bytes]:
    reached: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[dict[str, Any]] = []
    headers = [] if content_type is None else [(b"content-type", content_type.encode())]
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    asyncio.run(BodyGuard(app, max_bytes=1024)(scope, receive, send))
    return sent[0]["status"], reached[0] if reached else b""


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/cloudevents-batch+json",
        "application/x-ndjson",
        "application/jsonl",
    ],
)
def test_json_and_json_lines_reach_the_app_whole(content_type: str) -> None:
    assert through_guard(content_type) == (200, b'{"a": 1}')


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml", "x/json"])
def test_anything_else_is_415_and_never_reaches_the_app(content_type: str | None) -> None:
    assert through_guard(content_type) == (415, b"")
