"""Auth0's Management API log endpoint (``GET /api/v2/logs``), read by checkpoint.

The cursor is the ``log_id`` of the last record delivered: ``?from=<log_id>&take=<n>``
gives the records after it, ordered by log id (Auth0's checkpoint semantics: no record is
skipped because of system delays). Without a cursor the first page is the oldest retained
records (``sort=date:1``), or those after ``start_from`` when the operator names one.
Tokens come from ``https://<tenant>/oauth/token`` (client credentials, audience the
Management API) and are renewed before they expire and after a 401.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from sources.idp_http import ClientCredentials, Clock, ProviderUnavailable, get, page_json
from sources.pages import Page

MAX_TAKE: Final = 100


@dataclass(frozen=True)
class Auth0Api:
    base_url: str
    """``https://acme.eu.auth0.com`` (the tenant's domain, or its custom domain)."""
    client_id: str
    client_secret: str
    audience: str | None = None
    """The Management API's identifier (default ``<base_url>/api/v2/``)."""
    page_size: int = MAX_TAKE
    start_from: str | None = None


class Auth0LogClient:
    def __init__(
        self, api: Auth0Api, http: httpx.AsyncClient, clock: Clock, refresh_margin_s: float = 60
    ) -> None:
        self.api = api
        self.http = http
        self.clock = clock
        base = api.base_url.rstrip("/")
        self.logs_url = f"{base}/api/v2/logs"
        self.token = ClientCredentials(
            token_url=f"{base}/oauth/token",
            form={
                "client_id": api.client_id,
                "client_secret": api.client_secret,
                "audience": api.audience or f"{base}/api/v2/",
            },
            clock=clock,
            refresh_margin_s=refresh_margin_s,
        )

    async def fetch(self, position: Mapping[str, Any]) -> Page:
        take = min(self.api.page_size, MAX_TAKE)
        after = position.get("from") or self.api.start_from
        if after:
            params = {"from": str(after), "take": str(take)}
        else:
            params = {"sort": "date:1", "per_page": str(take), "page": "0"}
        response = await get(self.http, self.token, self.logs_url, clock=self.clock, params=params)
        records = page_json(response)
        if not isinstance(records, list):
            raise ProviderUnavailable("GET /api/v2/logs: the answer is not a JSON array")
        last = next(
            (r.get("log_id") or r.get("_id") for r in reversed(records) if isinstance(r, dict)),
            None,
        )
        new_position = {"from": last} if isinstance(last, str) and last else dict(position)
        return Page(records, new_position, more=len(records) >= take)
