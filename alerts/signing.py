"""The webhook signature: HMAC-SHA256 over ``<timestamp>.<body>``.

Every webhook request carries::

    X-Factorstream-Timestamp: 1765132800              (Unix seconds of this attempt)
    X-Factorstream-Signature: v1=<hex HMAC-SHA256(secret, b"1765132800." + body)>
    X-Factorstream-Dedup-Key: <32 hex>                 (same for every redelivery)

A receiver recomputes the HMAC over the raw body, compares in constant time and refuses
a timestamp further than ``tolerance_s`` from its clock (a captured request cannot be
replayed later); within the tolerance it drops a dedup key it has already seen.
:func:`verify` uses only the standard library: receivers copy it as it is.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Factorstream-Timestamp"
SIGNATURE_HEADER = "X-Factorstream-Signature"
DEDUP_HEADER = "X-Factorstream-Dedup-Key"


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def signed_headers(
    secret: bytes | None, body: bytes, *, dedup_key: str, now: int
) -> dict[str, str]:
    """The headers of one delivery attempt at Unix time ``now``."""
    headers = {"Content-Type": "application/json", DEDUP_HEADER: dedup_key}
    if secret is not None:
        headers[TIMESTAMP_HEADER] = str(now)
        headers[SIGNATURE_HEADER] = signature(secret, now, body)
    return headers


# --- receivers: copy from here ------------------------------------------------------------


def verify(
    secret: bytes,
    body: bytes,
    timestamp: str | None,
    signature_header: str | None,
    *,
    now: float,
    tolerance_s: float = 300.0,
) -> bool:
    """Whether a webhook request is genuine and fresh: ``body`` (the raw bytes received),
    the ``X-Factorstream-Timestamp`` and ``X-Factorstream-Signature`` headers, ``now``
    (the receiver's Unix time, e.g. ``time.time()``)."""
    if not timestamp or not signature_header or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > tolerance_s:
        return False  # stale (or from the future): a replay
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(
        hmac.compare_digest(mac, candidate.removeprefix("v1="))
        for candidate in signature_header.split(",")
        if candidate.startswith("v1=")
    )
