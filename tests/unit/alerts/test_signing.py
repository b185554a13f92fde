"""The webhook signature, attacked with the verification receivers copy."""

from __future__ import annotations

from alerts.signing import (
    DEDUP_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature,
    signed_headers,
    verify,
)

SECRET = b"s3cret-shared-with-the-receiver"
BODY = b'{"id":"e-1","dedup_key":"abc"}'
NOW = 1_765_132_800


def _headers() -> dict[str, str]:
    return signed_headers(SECRET, BODY, dedup_key="abc", now=NOW)


def test_a_genuine_request_verifies() -> None:
    h = _headers()
    assert h[DEDUP_HEADER] == "abc"
    assert verify(SECRET, BODY, h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER], now=NOW + 5)


def test_a_forged_signature_is_refused() -> None:
    h = _headers()
    forged = "v1=" + "0" * 64
    assert not verify(SECRET, BODY, h[TIMESTAMP_HEADER], forged, now=NOW)
    assert not verify(b"another secret", BODY, h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER], now=NOW)
    assert not verify(SECRET, BODY, h[TIMESTAMP_HEADER], signature(b"x", NOW, BODY), now=NOW)


def test_a_changed_body_or_timestamp_is_refused() -> None:
    h = _headers()
    assert not verify(SECRET, BODY + b" ", h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER], now=NOW)
    assert not verify(SECRET, BODY, str(NOW + 1), h[SIGNATURE_HEADER], now=NOW)


def test_a_stale_or_future_timestamp_is_refused_as_a_replay() -> None:
    h = _headers()
    assert not verify(SECRET, BODY, h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER], now=NOW + 301)
    assert not verify(SECRET, BODY, h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER], now=NOW - 301)
    assert verify(SECRET, BODY, h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER], now=NOW + 300)


def test_missing_or_malformed_headers_are_refused() -> None:
    h = _headers()
    assert not verify(SECRET, BODY, None, h[SIGNATURE_HEADER], now=NOW)
    assert not verify(SECRET, BODY, h[TIMESTAMP_HEADER], None, now=NOW)
    assert not verify(SECRET, BODY, "-1", h[SIGNATURE_HEADER], now=NOW)
    assert not verify(SECRET, BODY, h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER][3:], now=NOW)


def test_a_rotated_secret_can_be_checked_among_several_signatures() -> None:
    h = _headers()
    both = f"v1={'1' * 64},{h[SIGNATURE_HEADER]}"
    assert verify(SECRET, BODY, h[TIMESTAMP_HEADER], both, now=NOW)


def test_without_a_secret_nothing_is_signed_but_the_key_is_sent() -> None:
    h = signed_headers(None, BODY, dedup_key="abc", now=NOW)
    assert SIGNATURE_HEADER not in h and h[DEDUP_HEADER] == "abc"


def test_the_snippet_in_the_docs_verifies_as_the_shipped_function_does() -> None:
    """docs/alerts.md's verification, run as a receiver would copy it."""
    import re
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[3] / "docs" / "alerts.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", docs, re.S)
    assert snippet is not None
    scope: dict[str, object] = {}
    exec(compile(snippet.group(1), "docs/alerts.md", "exec"), scope)  # noqa: S102 - our docs
    copied = scope["verify"]
    h = _headers()
    cases = [
        (BODY, h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER], NOW),
        (BODY, h[TIMESTAMP_HEADER], "v1=" + "0" * 64, NOW),
        (BODY + b"x", h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER], NOW),
        (BODY, h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER], NOW + 301),
    ]
    for body, timestamp, sig, now in cases:
        assert copied(SECRET, body, timestamp, sig, now=now) == verify(  # type: ignore[operator]
            SECRET, body, timestamp, sig, now=now
        )
    assert [copied(SECRET, *c[:3], now=c[3]) for c in cases] == [True, False, False, False]  # type: ignore[operator]
