"""Per-IP and per-client rate limits: token buckets in front of the API (429, Retry-After).

Two buckets per request, both must have a token: one per caller IP (for IPv6 its /64), one
per client credential. The caller IP is the TCP peer; ``X-Forwarded-For`` counts only when
the peer is a configured trusted proxy, and then its right-most address that is not itself
a trusted proxy is the caller (an attacker can prepend anything, never append). The client
bucket is keyed by a digest of the bearer credential as sent: a caller cannot spend
another client's budget without its credential, and made-up credentials each get a bucket
that the per-IP bucket bounds. Requests without a credential (the JWKS, health) count
against their IP only. The per-IP limit applies to the service's callers, usually a few
login back ends: size it for a back end's peak, not a person's.

:class:`TokenBuckets` is pure (the time is a parameter); :class:`RateLimited` is the ASGI
wrapper that reads the monotonic clock.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from verifiers.service.config import RateLimits
from verifiers.service.errors import AsgiApp, Receive, Scope, Send, send_problem


class TokenBuckets:
    """``rate`` tokens a second up to ``burst``, per key; at most ``max_keys`` keys."""

    def __init__(self, *, rate: float, burst: int, max_keys: int) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, now: float) -> float:
        """Take a token: ``0.0`` if there was one, else the seconds until there is."""
        if self.rate <= 0:
            return 0.0
        tokens, then = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (1.0 - tokens) / self.rate
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _in(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip.version == n.version and ip in n for n in networks)


def caller_ip(peer: str | None, forwarded_for: str | None, trusted: Iterable[Network]) -> str:
    """The caller's IP: the peer, or through trusted proxies the right-most untrusted hop."""
    proxies = tuple(trusted)
    address = peer or "unknown"
    if forwarded_for is None or not proxies or not _in(address, proxies):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _in(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return address  # garbage from the left of the chain: the proxy answers for it
    return address


IPV6_BUCKET_PREFIX = 64
"""An IPv6 caller's bucket is its /64: one host, one LAN, is given a /64 to number its
addresses from as it likes, so a bucket per address would be a fresh budget per request."""


def ip_bucket(address: str) -> str:
    """The per-IP bucket ``address`` spends from: itself (IPv4), its /64 (IPv6)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{IPV6_BUCKET_PREFIX}", strict=False))
    return str(ip)


CALLER_IP = "factorstream.caller_ip"
"""Key in the ASGI scope's ``state`` where :class:`RateLimited` leaves the caller's IP."""


class RateLimited:
    """The app behind per-IP and per-client token buckets (ASGI); the caller's IP is left
    in the scope's ``state`` under :data:`CALLER_IP` for the app."""

    def __init__(
        self, app: AsgiApp, limits: RateLimits, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.app, self.limits, self.clock = app, limits, clock
        self.trusted = tuple(ipaddress.ip_network(n, strict=False) for n in limits.trusted_proxies)
        self.by_ip = TokenBuckets(
            rate=limits.per_ip_per_s, burst=limits.per_ip_burst, max_keys=limits.max_keys
        )
        self.by_client = TokenBuckets(
            rate=limits.per_client_per_s, burst=limits.per_client_burst, max_keys=limits.max_keys
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", ())}
        peer = scope.get("client")
        forwarded = headers.get(b"x-forwarded-for")
        ip = caller_ip(
            peer[0] if peer else None,
            forwarded.decode("latin-1") if forwarded is not None else None,
            self.trusted,
        )
        scope.setdefault("state", {})[CALLER_IP] = ip
        now = self.clock()
        wait = self.by_ip.take(ip_bucket(ip), now)
        kind = "ip"
        authorization = headers.get(b"authorization")
        if not wait and authorization is not None:
            key = hashlib.sha256(authorization).hexdigest()
            wait, kind = self.by_client.take(key, now), "client"
        if wait:
            await send_problem(
                send,
                429,
                "rate_limited",
                f"too many requests from this {kind}; retry after the time in Retry-After",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
            return
        await self.app(scope, receive, send)
