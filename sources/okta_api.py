"""Okta's System Log API (``GET /api/v1/logs``), polled.

The first request asks for records ``since`` a time (oldest first, ``sortOrder=ASCENDING``);
every answer's ``Link: <…>; rel="next"`` header carries the ``after`` cursor of the next
request, which is what is saved. Okta keeps giving a next link when there is nothing new
yet: polling follows it again later. Authentication is an API token (``SSWS``) or an OAuth
2.0 service app signing a private-key JWT for the ``okta.logs.read`` scope at
``/oauth2/v1/token``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import httpx

from sources.idp_http import (
    ClientCredentials,
    Clock,
    ProviderRefused,
    ProviderUnavailable,
    StaticToken,
    TokenSource,
    get,
    page_json,
    private_key_jwt,
)
from sources.pages import Page

MAX_LIMIT: Final = 1000


@dataclass(frozen=True)
class OktaApi:
    base_url: str
    """``https://acme.okta.com``."""
    api_token: str | None = None
    client_id: str | None = None
    private_key_pem: str | None = None
    key_id: str | None = None
    page_size: int = MAX_LIMIT
    lookback_s: float = 86400.0
    """Where the first poll starts: this long before now (Okta keeps 90 days)."""


class OktaLogClient:
    def __init__(
        self, api: OktaApi, http: httpx.AsyncClient, clock: Clock, refresh_margin_s: float = 60
    ) -> None:
        self.api = api
        self.http = http
        self.clock = clock
        base = api.base_url.rstrip("/")
        self.logs_url = f"{base}/api/v1/logs"
        self.token: TokenSource
        if api.api_token:
            self.token = StaticToken(f"SSWS {api.api_token}")
        elif api.client_id and api.private_key_pem:
            token_url = f"{base}/oauth2/v1/token"
            self.token = ClientCredentials(
                token_url=token_url,
                form={"scope": "okta.logs.read"},
                clock=clock,
                refresh_margin_s=refresh_margin_s,
                assertion=private_key_jwt(
                    api.client_id, token_url, api.private_key_pem.encode(), api.key_id, clock
                ),
            )
        else:
            raise ValueError("okta: give an api_token, or a client_id and a private_key_pem")

    async def fetch(self, position: Mapping[str, Any]) -> Page:
        limit = min(self.api.page_size, MAX_LIMIT)
        since = position.get("since") or (
            self.clock() - timedelta(seconds=self.api.lookback_s)
        ).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        params = {"since": since, "limit": str(limit), "sortOrder": "ASCENDING"}
        if position.get("after"):
            params["after"] = str(position["after"])
        try:
            response = await get(
                self.http, self.token, self.logs_url, clock=self.clock, params=params
            )
        except ProviderRefused as refused:
            if refused.status != 400 or "after" not in position:
                raise
            # a cursor Okta no longer takes: start again at the newest record delivered
            # (the records at that instant come again, with the same event ids)
            return Page([], {"since": position.get("newest") or since}, more=True)
        records = page_json(response)
        if not isinstance(records, list):
            raise ProviderUnavailable("GET /api/v1/logs: the answer is not a JSON array")
        after = _next_after(response) or position.get("after")
        newest = next(
            (r["published"] for r in reversed(records)
             if isinstance(r, dict) and isinstance(r.get("published"), str)),
            position.get("newest"),
        )  # fmt: skip
        new_position = {
            "since": since,
            **({"after": after} if after else {}),
            **({"newest": newest} if newest else {}),
        }
        return Page(records, new_position, more=len(records) >= limit)


def _next_after(response: httpx.Response) -> str | None:
    """The ``after`` cursor of the ``rel="next"`` link (its other parameters are ours)."""
    link = response.links.get("next")
    if not link or "url" not in link:
        return None
    after = httpx.URL(link["url"]).params.get("after")
    return after or None
