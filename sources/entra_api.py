"""Microsoft Entra ID sign-in logs from Microsoft Graph (``GET /v1.0/auditLogs/signIns``).

Each poll sweeps a :class:`~sources.pages.Window`: ``$filter=createdDateTime ge
<watermark>``, then every ``@odata.nextLink`` until there is none; the next link is saved
with the cursor, so a restart resumes the sweep (and one the service no longer honours
starts the sweep over). Records are keyed by their ``id``. The app's token comes from
``https://login.microsoftonline.com/<directory>/oauth2/v2.0/token`` (client credentials,
scope ``https://graph.microsoft.com/.default``; the app needs ``AuditLog.Read.All``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from sources.idp_http import (
    ClientCredentials,
    Clock,
    ProviderRefused,
    ProviderUnavailable,
    get,
    page_json,
    same_origin,
)
from sources.pages import Page, Window, record_key


@dataclass(frozen=True)
class EntraApi:
    directory: str
    """The Entra tenant (directory) id or domain."""
    client_id: str
    client_secret: str
    graph_url: str = "https://graph.microsoft.com"
    login_url: str = "https://login.microsoftonline.com"
    page_size: int = 500
    lookback_s: float = 86400.0


def record_time(record: Any) -> datetime | None:
    value = record.get("createdDateTime") if isinstance(record, dict) else None
    if not isinstance(value, str):
        return None
    try:
        time = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return time.astimezone(UTC) if time.tzinfo else None


class EntraSignInClient:
    def __init__(
        self, api: EntraApi, http: httpx.AsyncClient, clock: Clock, refresh_margin_s: float = 60
    ) -> None:
        self.api = api
        self.http = http
        self.clock = clock
        self.graph = api.graph_url.rstrip("/")
        self.token = ClientCredentials(
            token_url=f"{api.login_url.rstrip('/')}/{api.directory}/oauth2/v2.0/token",
            form={
                "client_id": api.client_id,
                "client_secret": api.client_secret,
                "scope": f"{self.graph}/.default",
            },
            clock=clock,
            refresh_margin_s=refresh_margin_s,
        )

    async def fetch(self, position: Mapping[str, Any]) -> Page:
        if position.get("window"):
            window = Window.from_json(position["window"])
        else:
            window = Window(self.clock() - timedelta(seconds=self.api.lookback_s))
        next_link = position.get("next_link")
        if next_link and same_origin(next_link, self.graph):
            try:
                response = await get(self.http, self.token, next_link, clock=self.clock)
            except ProviderRefused as refused:  # an expired skip token: sweep again
                if refused.status != 400:
                    raise
                return Page([], {"window": window.as_json()}, more=True)
        else:
            since = window.watermark.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            params = {"$filter": f"createdDateTime ge {since}", "$top": str(self.api.page_size)}
            url = f"{self.graph}/v1.0/auditLogs/signIns"
            response = await get(self.http, self.token, url, clock=self.clock, params=params)
        body = page_json(response)
        page = body.get("value") if isinstance(body, dict) else None
        if not isinstance(page, list):
            raise ProviderUnavailable("Graph signIns: the answer has no value array")
        found: list[tuple[datetime, Any]] = []
        timed: list[tuple[datetime, str]] = []
        for record in page:
            time, key = record_time(record), record_key(record)
            if time is None:
                found.append((window.watermark, record))
            elif window.is_new(time, key):
                found.append((time, record))
                timed.append((time, key))
        window = window.seen(timed)
        found.sort(key=lambda pair: pair[0])
        records = [record for _, record in found]
        link = body.get("@odata.nextLink")
        if isinstance(link, str) and link and not same_origin(link, self.graph):
            raise ProviderRefused(f"Graph gave a next link to another host: {link[:200]}", 502)
        if isinstance(link, str) and link:
            return Page(records, {"window": window.as_json(), "next_link": link}, more=True)
        return Page(records, {"window": window.finished().as_json()}, more=False)
