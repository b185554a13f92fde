"""Sign-in throttling: the login form is a password oracle, and each try costs a scrypt
evaluation (128 MiB, about 0.3 s here).

Before any hash is computed, a login post spends a token from two budgets: its client's
(the IP address; an IPv6 client by its ``/64``, the block one subscriber gets) and the
whole dashboard's. An empty budget answers 429 with the seconds until a token is back;
such a post reaches neither the password check nor the lockout (it is no guess). Around the
hash, at most :attr:`LoginLimits.concurrent_checks` run at once; a post that waits longer
than :attr:`LoginLimits.check_wait_s` for its turn gets 429 too, so a burst of posts cannot
hold every server thread and their memory.

The budgets are token buckets: ``per_minute`` tokens, refilled evenly over a minute. Time
is the caller's (seconds, any monotonic origin). Behind a reverse proxy every client has
the proxy's address: the per-client budget then acts as a second overall one (the proxy
should limit per client itself).
"""

from __future__ import annotations

import ipaddress
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class LoginLimits:
    per_client_per_minute: int = 10
    """Login posts one client address may make per minute (a burst of as many)."""
    per_minute: int = 120
    """Login posts all clients together may make per minute."""
    concurrent_checks: int = 2
    """Password checks (scrypt) computed at once."""
    check_wait_s: float = 5.0
    """How long a post waits for its turn at a password check before it gets 429."""

    def __post_init__(self) -> None:
        for name in ("per_client_per_minute", "per_minute", "concurrent_checks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, found {value!r}")
        if not self.check_wait_s >= 0:
            raise ValueError(f"check_wait_s: expected >= 0, found {self.check_wait_s!r}")


@dataclass
class _Bucket:
    capacity: float
    tokens: float
    at: float

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.at)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.capacity / 60.0)
        self.at = max(self.at, now)

    def wait(self) -> float:
        """Seconds until a whole token is back (0 when one is there)."""
        return max(0.0, (1.0 - self.tokens) * 60.0 / self.capacity)


def client_key(address: str | None) -> str:
    """The budget a client address spends: IPv4 itself, IPv6 its ``/64``."""
    if not address:
        return "-"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "-"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class LoginThrottle:
    """The budgets and the cap on concurrent password checks of one dashboard process."""

    MAX_CLIENTS = 100_000
    """Client budgets remembered (least recently used forgotten: a full bucket again)."""

    def __init__(self, limits: LoginLimits | None = None) -> None:
        self.limits = limits or LoginLimits()
        self._lock = threading.Lock()
        self._clients: OrderedDict[str, _Bucket] = OrderedDict()
        self._all: _Bucket | None = None
        self._checks = threading.BoundedSemaphore(self.limits.concurrent_checks)

    def admit(self, address: str | None, now: float) -> float | None:
        """Spend a token of ``address``'s budget and of the overall one: ``None`` when
        admitted, else the seconds to wait (nothing is spent then)."""
        key = client_key(address)
        with self._lock:
            client = self._clients.pop(key, None) or _Bucket(
                self.limits.per_client_per_minute, self.limits.per_client_per_minute, now
            )
            self._clients[key] = client  # most recently used last
            while len(self._clients) > self.MAX_CLIENTS:
                self._clients.popitem(last=False)
            overall = self._all = self._all or _Bucket(
                self.limits.per_minute, self.limits.per_minute, now
            )
            client.refill(now)
            overall.refill(now)
            wait = max(client.wait(), overall.wait())
            if wait > 0:
                return wait
            client.tokens -= 1
            overall.tokens -= 1
            return None

    @contextmanager
    def checking(self) -> Iterator[bool]:
        """A turn at a password check: yields whether it was had within ``check_wait_s``."""
        acquired = self._checks.acquire(timeout=self.limits.check_wait_s)
        try:
            yield acquired
        finally:
            if acquired:
                self._checks.release()
