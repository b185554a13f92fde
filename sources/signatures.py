"""Optional HMAC signatures of ingest requests: the body and the CloudEvents headers cannot
be altered on the way, and a captured request cannot be sent again.

When the ingest has a signing secret, every request carries::

    X-Factorstream-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, message)>

where ``message`` is, as UTF-8 bytes joined by newlines: ``t``, the method, the path,
then for each of ``content-type`` and every ``ce-*`` header, sorted by name, the line
``name:value`` (name lower-case, value as sent), then an empty line, then the body as
sent. The binary mode's attributes travel in ``ce-*`` headers, so they are covered too.

A signature is refused when ``t`` is more than the window away from the ingest's clock
(stale, or from the future), when it does not match (forged, or the request altered),
or when the same signature was already accepted within the window, or is in a request
still being answered (replayed). A request that failed (a 503 while the broker was away,
a refused event) does not use its signature up, so a client may retry it unchanged; one
that was answered 2xx may not be sent again. The accepted signatures are remembered in
the ingest process (one process: run several behind a balancer and a replay to another
one within the window gets through the signature check, and its events are dropped as
duplicates by id downstream).
Several ``v1=`` values may be given (a secret being rotated): one matching is enough.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

SIGNATURE_HEADER: Final = "x-factorstream-signature"


class SignatureRefused(Exception):
    """``error``: ``signature_required``, ``malformed_signature``, ``stale_signature``,
    ``bad_signature`` or ``replayed_signature``."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


def signed_message(
    timestamp: int, method: str, path: str, headers: Mapping[str, str], body: bytes
) -> bytes:
    """The bytes a request's signature covers (see the module docstring)."""
    covered = sorted(
        (name.lower(), value)
        for name, value in headers.items()
        if name.lower() == "content-type" or name.lower().startswith("ce-")
    )
    lines = [str(timestamp), method.upper(), path, *(f"{name}:{value}" for name, value in covered)]
    return "\n".join(lines).encode() + b"\n\n" + body


def sign(
    secret: bytes, timestamp: int, method: str, path: str, headers: Mapping[str, str], body: bytes
) -> str:
    """The ``X-Factorstream-Signature`` value of a request."""
    digest = hmac.new(
        secret, signed_message(timestamp, method, path, headers, body), hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass(frozen=True)
class CheckedSignature:
    digest: str
    timestamp: int


class RequestSigning:
    """Checks signatures with ``secret`` and remembers the ones accepted within ``window``."""

    def __init__(self, secret: bytes, *, window: timedelta, max_remembered: int = 100_000) -> None:
        if not secret:
            raise ValueError("the signing secret is empty")
        self._secret = secret
        self.window = window
        self._max = max_remembered
        self._accepted: OrderedDict[str, int] = OrderedDict()
        self._in_flight: set[str] = set()

    def check(
        self,
        value: str | None,
        *,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        now: datetime,
    ) -> CheckedSignature:
        """The matching signature of the request, or :class:`SignatureRefused`. The
        signature is then in flight: the same one is refused as a replay until the request
        ends, by :meth:`accepted` (answered 2xx: remembered) or :meth:`released` (failed:
        it may be sent again)."""
        if not value:
            raise SignatureRefused(
                "signature_required", f"sign the request: {SIGNATURE_HEADER}: t=…,v1=…"
            )
        timestamp, candidates = _parse(value)
        skew = abs(now.timestamp() - timestamp)
        if skew > self.window.total_seconds():
            raise SignatureRefused(
                "stale_signature",
                f"the signature's time is {skew:.0f} s away from the ingest's clock (at most "
                f"{self.window.total_seconds():g} s)",
            )
        expected = hmac.new(
            self._secret, signed_message(timestamp, method, path, headers, body), hashlib.sha256
        ).hexdigest()
        matching = [c for c in candidates if hmac.compare_digest(c, expected)]
        if not matching:
            raise SignatureRefused(
                "bad_signature", "the signature does not match the request (forged or altered)"
            )
        if expected in self._accepted or expected in self._in_flight:
            raise SignatureRefused(
                "replayed_signature", "this signed request was already accepted: sign it anew"
            )
        self._in_flight.add(expected)
        return CheckedSignature(expected, timestamp)

    def released(self, signature: CheckedSignature) -> None:
        """The request failed: its signature may be used again (within the window)."""
        self._in_flight.discard(signature.digest)

    def accepted(self, signature: CheckedSignature, *, now: datetime) -> None:
        """Remember an accepted signature for as long as its time is within the window (at
        most ``max_remembered``: beyond, the oldest are forgotten first)."""
        self._in_flight.discard(signature.digest)
        accepted, moment = self._accepted, now.timestamp()
        while accepted and (next(iter(accepted.values())) < moment or len(accepted) >= self._max):
            accepted.popitem(last=False)
        accepted[signature.digest] = signature.timestamp + int(self.window.total_seconds())


def _parse(value: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    candidates: list[str] = []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t" and item.isdigit() and len(item) <= 12:
            timestamp = int(item)
        elif key == "v1" and len(item) == 64:
            candidates.append(item.lower())
    if timestamp is None or not candidates:
        raise SignatureRefused(
            "malformed_signature", f"{SIGNATURE_HEADER} is t=<unix seconds>,v1=<hex HMAC-SHA256>"
        )
    return timestamp, candidates
