"""What the identity providers' HTTP APIs share: bearer tokens that expire, rate limits
with reset headers, and one answer to every failure.

A client asks :func:`get` for a page. It adds the ``Authorization`` header of its
:class:`TokenSource`; a ``401`` expires the token and the request is made once more with a
new one (a token revoked or expired early); ``429`` raises :class:`RateLimited` with the
wait the provider asked for (``Retry-After``, Auth0's ``x-ratelimit-reset``, Okta's
``x-rate-limit-reset``); ``5xx`` and network failures raise :class:`ProviderUnavailable`;
other refusals :class:`ProviderRefused`. Tokens from an OAuth2 token endpoint
(client credentials) are fetched again before they expire (``refresh_margin_s``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final, Protocol

import httpx

Clock = Callable[[], datetime]

MAX_RATE_LIMIT_WAIT_S: Final = 900.0
DEFAULT_RATE_LIMIT_WAIT_S: Final = 60.0
MAX_TOKEN_LIFETIME_S: Final = 86400.0
"""A token is renewed at least daily, whatever ``expires_in`` said."""
MAX_PAGE_BYTES: Final = 32 * 1024 * 1024
"""A page larger than this is refused (a provider page of 1,000 records is a few MB)."""


class ProviderError(Exception):
    """The provider did not give the page; the poller keeps its cursor and tries again."""


class ProviderUnavailable(ProviderError):
    """A 5xx answer, a timeout or a network failure: back off and retry."""


class ProviderRefused(ProviderError):
    """A 4xx answer other than 429 (credentials refused after a fresh token, a bad cursor)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class RateLimited(ProviderError):
    """429: wait ``wait_s`` seconds (what the provider's headers said) before the next call."""

    def __init__(self, message: str, wait_s: float) -> None:
        super().__init__(message)
        self.wait_s = wait_s


def rate_limit_wait(headers: httpx.Headers, now: datetime) -> float:
    """Seconds to wait after a 429: ``Retry-After`` (seconds or an HTTP date), else the
    reset time in epoch seconds (``x-ratelimit-reset``, ``x-rate-limit-reset``), within
    ``[0, MAX_RATE_LIMIT_WAIT_S]``; a minute when the provider says nothing usable."""
    wait: float | None = None
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        try:
            wait = float(retry_after)
        except ValueError:
            try:
                wait = (parsedate_to_datetime(retry_after) - now).total_seconds()
            except (TypeError, ValueError):
                wait = None
    if wait is None:
        for name in ("x-ratelimit-reset", "x-rate-limit-reset"):
            reset = headers.get(name)
            if reset is not None:
                try:
                    wait = float(reset) - now.timestamp()
                except ValueError:
                    continue
                break
    if wait is None or wait != wait:  # missing or NaN
        return DEFAULT_RATE_LIMIT_WAIT_S
    return min(max(wait, 0.0), MAX_RATE_LIMIT_WAIT_S)


class TokenSource(Protocol):
    async def authorization(self, http: httpx.AsyncClient) -> str:
        """The ``Authorization`` header value to send now."""

    def expire(self) -> None:
        """Forget the current token (the API said 401)."""


@dataclass
class StaticToken:
    """A token that does not expire on its own (Okta's ``SSWS`` API token)."""

    header: str

    async def authorization(self, http: httpx.AsyncClient) -> str:
        return self.header

    def expire(self) -> None:
        pass


@dataclass
class ClientCredentials:
    """An OAuth2 client-credentials token (RFC 6749 §4.4) from ``token_url``.

    ``form`` is the request's fields (``grant_type`` added); ``assertion`` makes a fresh
    ``client_assertion`` for each request (RFC 7523 private-key JWT, Okta's service apps).
    """

    token_url: str
    form: Mapping[str, str]
    clock: Clock
    refresh_margin_s: float = 60.0
    assertion: Callable[[], str] | None = None
    _token: str | None = field(default=None, repr=False)
    _expires_at: datetime | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def authorization(self, http: httpx.AsyncClient) -> str:
        async with self._lock:
            now = self.clock()
            margin = timedelta(seconds=self.refresh_margin_s)
            expired = self._expires_at is not None and now + margin >= self._expires_at
            if self._token is None or expired:
                await self._fetch(http, now)
            assert self._token is not None  # noqa: S101 - set by _fetch
            return f"Bearer {self._token}"

    def expire(self) -> None:
        self._token = None

    async def _fetch(self, http: httpx.AsyncClient, now: datetime) -> None:
        form = {"grant_type": "client_credentials", **self.form}
        if self.assertion is not None:
            form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            form["client_assertion"] = self.assertion()
        try:
            response = await http.post(
                self.token_url, data=form, headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"token endpoint {self.token_url}: {exc!r}") from exc
        _raise_for(response, now, "token endpoint")
        body = _json(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ProviderRefused("the token endpoint gave no access_token", response.status_code)
        expires_in = body.get("expires_in")
        self._token = token
        lifetime = token_lifetime(expires_in)
        self._expires_at = now + timedelta(seconds=lifetime) if lifetime is not None else None


def token_lifetime(expires_in: Any) -> float | None:
    """``expires_in`` as seconds within ``[0, MAX_TOKEN_LIFETIME_S]``; None when it is not
    a number (the token is then used until a 401)."""
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
        return None
    try:
        seconds = float(expires_in)
    except OverflowError:
        return MAX_TOKEN_LIFETIME_S
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_TOKEN_LIFETIME_S)


async def get(
    http: httpx.AsyncClient,
    token: TokenSource,
    url: str,
    *,
    clock: Clock,
    params: Mapping[str, str] | None = None,
    max_bytes: int = MAX_PAGE_BYTES,
) -> httpx.Response:
    """GET ``url`` with the token; one retry with a new token after a 401. The answer is
    read as it arrives and refused past ``max_bytes`` (a provider, or whoever answers in
    its name, cannot make the poller hold an endless body)."""
    for attempt in (1, 2):
        headers = {"Authorization": await token.authorization(http), "Accept": "application/json"}
        request = http.build_request("GET", url, params=params, headers=headers)
        try:
            streamed = await http.send(request, stream=True)
            try:
                body = await _read_at_most(streamed, max_bytes)
            finally:
                await streamed.aclose()
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"GET {url}: {exc!r}") from exc
        if body is None:
            raise ProviderRefused(f"GET {url}: an answer over {max_bytes} bytes", 413)
        response = httpx.Response(
            streamed.status_code, headers=streamed.headers, content=body, request=request
        )
        if response.status_code == 401 and attempt == 1:
            token.expire()
            continue
        _raise_for(response, clock(), f"GET {url}")
        return response
    raise AssertionError("unreachable")  # pragma: no cover


async def _read_at_most(response: httpx.Response, limit: int) -> bytes | None:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def page_json(response: httpx.Response) -> Any:
    """The page's JSON value, or :class:`ProviderUnavailable` (a proxy's HTML error page)."""
    return _json(response)


def _json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError) as exc:
        raise ProviderUnavailable(
            f"{response.request.url}: the answer is not JSON ({exc})"
        ) from exc


def _raise_for(response: httpx.Response, now: datetime, what: str) -> None:
    status = response.status_code
    if status < 400:
        return
    if status == 429:
        wait = rate_limit_wait(response.headers, now)
        raise RateLimited(f"{what}: 429 rate limited, waiting {wait:.0f} s", wait)
    if status >= 500:
        raise ProviderUnavailable(f"{what}: {status}")
    raise ProviderRefused(f"{what}: {status} {response.text[:300]}", status)


def same_origin(url: str, base: str) -> bool:
    """Whether ``url`` (a next link the provider gave) points at the configured API: a
    token is never sent anywhere else."""
    a, b = httpx.URL(url), httpx.URL(base)
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def private_key_jwt(
    client_id: str, audience: str, private_key_pem: bytes, key_id: str | None, clock: Clock
) -> Callable[[], str]:
    """A maker of RFC 7523 client assertions (RS256) for ``client_id`` at ``audience``."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the private key for the client assertion must be RSA (RS256)")

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    def make() -> str:
        issued = int(clock().timestamp())
        header = {"alg": "RS256", "typ": "JWT", **({"kid": key_id} if key_id else {})}
        claims = {
            "iss": client_id, "sub": client_id, "aud": audience,
            "iat": issued, "exp": issued + 300, "jti": uuid.uuid4().hex,
        }  # fmt: skip
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64(signature)}"

    return make
