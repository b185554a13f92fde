"""HMAC request signatures (sources/signatures.py): what they cover, the window, rotation,
replays and the memory of accepted signatures."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sources.signatures import RequestSigning, SignatureRefused, sign, signed_message
from tests.factories import T0

SECRET = b"k" * 32
NOW = int(T0.timestamp())
HEADERS = {"Content-Type": "application/json", "ce-id": "1", "CE-Type": "t", "user-agent": "x"}


def check(signing: RequestSigning, value: str, *, headers=HEADERS, body=b"{}", at=T0):  # type: ignore[no-untyped-def]
    return signing.check(
        value, method="POST", path="/v1/events", headers=headers, body=body, now=at
    )


def test_the_message_covers_time_method_path_ce_headers_and_body_only() -> None:
    message = signed_message(NOW, "post", "/v1/events", HEADERS, b"{}")
    assert (
        message
        == (
            f"{NOW}\nPOST\n/v1/events\nce-id:1\nce-type:t\ncontent-type:application/json\n\n{{}}"
        ).encode()
    )
    signing = RequestSigning(SECRET, window=timedelta(minutes=5))
    value = sign(SECRET, NOW, "POST", "/v1/events", HEADERS, b"{}")
    check(signing, value, headers={**HEADERS, "user-agent": "other"})  # not covered


@pytest.mark.parametrize(("offset", "ok"), [(-300, True), (300, True), (-301, False), (301, False)])
def test_the_window_is_inclusive(offset: int, ok: bool) -> None:
    signing = RequestSigning(SECRET, window=timedelta(minutes=5))
    value = sign(SECRET, NOW + offset, "POST", "/v1/events", HEADERS, b"{}")
    if ok:
        check(signing, value)
    else:
        with pytest.raises(SignatureRefused) as refused:
            check(signing, value)
        assert refused.value.error == "stale_signature"


def test_during_a_rotation_either_secret_signs() -> None:
    signing = RequestSigning(SECRET, window=timedelta(minutes=5))
    old = sign(b"old secret", NOW, "POST", "/v1/events", HEADERS, b"{}").split(",")[1]
    new = sign(SECRET, NOW, "POST", "/v1/events", HEADERS, b"{}").split(",")[1]
    check(signing, f"t={NOW},{old},{new}")


def test_an_accepted_signature_is_a_replay_until_its_time_leaves_the_window() -> None:
    signing = RequestSigning(SECRET, window=timedelta(minutes=5))
    value = sign(SECRET, NOW + 300, "POST", "/v1/events", HEADERS, b"{}")
    signing.accepted(check(signing, value), now=T0)
    for moment in (T0, T0 + timedelta(seconds=600)):
        with pytest.raises(SignatureRefused) as refused:
            check(signing, value, at=moment)
        assert refused.value.error == "replayed_signature"
    with pytest.raises(SignatureRefused) as refused:
        check(signing, value, at=T0 + timedelta(seconds=601))
    assert refused.value.error == "stale_signature"


def test_a_released_signature_may_come_again_and_memory_is_bounded() -> None:
    signing = RequestSigning(SECRET, window=timedelta(minutes=5), max_remembered=2)
    values = [sign(SECRET, NOW, "POST", "/v1/events", HEADERS, b"[%d]" % n) for n in range(3)]
    signing.released(check(signing, values[0], body=b"[0]"))
    checked = check(signing, values[0], body=b"[0]")  # released: not a replay
    signing.accepted(checked, now=T0)
    for n in (1, 2):
        signing.accepted(check(signing, values[n], body=b"[%d]" % n), now=T0)
    check(signing, values[0], body=b"[0]")  # the oldest was forgotten beyond 2


@pytest.mark.parametrize("value", ["", "t=1", "v1=" + "a" * 64, "t=x,v1=" + "a" * 64, "junk"])
def test_a_malformed_or_missing_header_is_refused(value: str) -> None:
    signing = RequestSigning(SECRET, window=timedelta(minutes=5))
    with pytest.raises(SignatureRefused) as refused:
        check(signing, value)
    assert refused.value.error in {"signature_required", "malformed_signature"}


def test_an_empty_secret_is_misuse() -> None:
    with pytest.raises(ValueError, match="empty"):
        RequestSigning(b"", window=timedelta(minutes=5))
