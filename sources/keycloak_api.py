"""Keycloak's admin REST API: login events (``/admin/realms/{realm}/events``) and admin
events (``/admin-events``), read with a service account.

The API has no stable cursor: it pages newest first by ``first``/``max`` within a
``dateFrom`` day. Each poll therefore sweeps a :class:`~sources.pages.Window`: pages from
``first=0`` until a page is short or reaches records older than the watermark, keeping
only records newer than the watermark (or at it and not yet delivered). Records are keyed
by their ``id`` (Keycloak 23 and later) or, without one, by a hash of the record itself,
the same key the mapping's deterministic event id rests on. The service account's token
comes from ``/realms/{realm}/protocol/openid-connect/token`` (client credentials).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx

from sources.idp_http import ClientCredentials, Clock, ProviderUnavailable, get, page_json
from sources.pages import Page, Window, record_key

STREAMS: Final = {"events": "events", "admin_events": "admin-events"}


@dataclass(frozen=True)
class KeycloakApi:
    base_url: str
    """``https://sso.example.com`` (before ``/admin`` and ``/realms``)."""
    realm: str
    client_id: str
    client_secret: str
    page_size: int = 100
    lookback_s: float = 86400.0
    admin_events: bool = True


def record_time(record: Any) -> datetime | None:
    value = record.get("time") if isinstance(record, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, ValueError, OSError):
        return None


class KeycloakEventClient:
    def __init__(
        self, api: KeycloakApi, http: httpx.AsyncClient, clock: Clock, refresh_margin_s: float = 60
    ) -> None:
        self.api = api
        self.http = http
        self.clock = clock
        base = api.base_url.rstrip("/")
        self.admin_url = f"{base}/admin/realms/{api.realm}"
        self.token = ClientCredentials(
            token_url=f"{base}/realms/{api.realm}/protocol/openid-connect/token",
            form={"client_id": api.client_id, "client_secret": api.client_secret},
            clock=clock,
            refresh_margin_s=refresh_margin_s,
        )

    async def fetch(self, position: Mapping[str, Any]) -> Page:
        records: list[tuple[datetime, Any]] = []
        new_position: dict[str, Any] = {}
        more = False
        streams = STREAMS if self.api.admin_events else {"events": "events"}
        for name, path in streams.items():
            found, state, pending = await self._page(path, position.get(name))
            records += found
            new_position[name] = state
            more = more or pending
        records.sort(key=lambda pair: pair[0])
        return Page([record for _, record in records], new_position, more)

    async def _page(
        self, path: str, state: Mapping[str, Any] | None
    ) -> tuple[list[tuple[datetime, Any]], dict[str, Any], bool]:
        if state:
            window, first = Window.from_json(state), int(state.get("first", 0))
        else:
            window, first = Window(self.clock() - timedelta(seconds=self.api.lookback_s)), 0
        size = self.api.page_size
        day = (window.watermark - timedelta(days=1)).date().isoformat()  # the server's zone
        params = {"dateFrom": day, "first": str(first), "max": str(size)}
        url = f"{self.admin_url}/{path}"
        response = await get(self.http, self.token, url, clock=self.clock, params=params)
        page = page_json(response)
        if not isinstance(page, list):
            raise ProviderUnavailable(f"GET {url}: the answer is not a JSON array")
        found: list[tuple[datetime, Any]] = []
        timed: list[tuple[datetime, str]] = []
        passed = False
        for record in page:
            time, key = record_time(record), record_key(record)
            if time is None:
                found.append((window.watermark, record))  # the mapping says why it is bad
            elif window.is_new(time, key):
                found.append((time, record))
                timed.append((time, key))
            elif time < window.watermark:
                passed = True
        window = window.seen(timed)
        done = passed or len(page) < size
        if done:
            return found, {**window.finished().as_json(), "first": 0}, False
        return found, {**window.as_json(), "first": first + len(page)}, True
