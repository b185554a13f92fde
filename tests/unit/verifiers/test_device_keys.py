"""Push device keys, as an attacker tries them: forged, foreign, altered, other tenant."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from verifiers import device_keys as dk

ANSWER: dict[str, Any] = {
    "tenant": "acme",
    "subject": "alice",
    "challenge_id": "push-0123456789abcdef0123456789abcdef",
    "decision": "approve",
    "number": "42",
}


def device() -> tuple[Ed25519PrivateKey, bytes]:
    key = Ed25519PrivateKey.generate()
    return key, dk.raw_public(key.public_key())


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return dk.b64url(key.sign(message))


def test_an_answer_signed_by_the_enrolled_key_holds() -> None:
    key, raw = device()
    message = dk.answer_bytes(**ANSWER)
    assert dk.check_signature(raw, message, signature=sign(key, message), key_id=None) is None
    assert (
        dk.check_signature(raw, message, signature=sign(key, message), key_id=dk.thumbprint(raw))
        is None
    )


@pytest.mark.parametrize("signature", [None, ""])
def test_an_unsigned_answer_is_refused(signature: str | None) -> None:
    _, raw = device()
    message = dk.answer_bytes(**ANSWER)
    assert dk.check_signature(raw, message, signature=signature, key_id=None) == "unsigned"


def test_another_enrollments_key_is_refused_and_named_when_it_says_who_it_is() -> None:
    _, raw = device()
    other, other_raw = device()
    message = dk.answer_bytes(**ANSWER)
    signature = sign(other, message)
    assert dk.check_signature(raw, message, signature=signature, key_id=None) == "bad_signature"
    claimed = dk.thumbprint(other_raw)
    assert dk.check_signature(raw, message, signature=signature, key_id=claimed) == (
        "unknown_device_key"
    )
    # lying about the key id gains nothing: the signature is still checked
    lied = dk.check_signature(raw, message, signature=signature, key_id=dk.thumbprint(raw))
    assert lied == "bad_signature"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tenant", "globex"),
        ("subject", "mallory"),
        ("challenge_id", "push-ffffffffffffffffffffffffffffffff"),
        ("decision", "reject"),
        ("number", "24"),
        ("number", None),
    ],
)
def test_altering_any_signed_field_breaks_the_signature(field: str, value: str | None) -> None:
    key, raw = device()
    signature = sign(key, dk.answer_bytes(**ANSWER))
    altered = dk.answer_bytes(**{**ANSWER, field: value})
    assert dk.check_signature(raw, altered, signature=signature, key_id=None) == "bad_signature"


def test_an_enrollment_proof_is_no_answer_and_the_other_way_round() -> None:
    key, raw = device()
    proof = dk.enrollment_bytes(
        tenant="acme", subject="alice", enrollment_id="push-1", key_id=dk.thumbprint(raw)
    )
    answer = dk.answer_bytes(**ANSWER)
    assert dk.check_signature(raw, answer, signature=sign(key, proof), key_id=None) == (
        "bad_signature"
    )
    assert dk.check_signature(raw, proof, signature=sign(key, answer), key_id=None) == (
        "bad_signature"
    )


def test_fields_cannot_be_shifted_between_members() -> None:
    """JSON quoting keeps a subject that smuggles a tenant from signing another answer."""
    one = dk.answer_bytes(**{**ANSWER, "tenant": "a", "subject": 'b","tenant":"c'})
    two = dk.answer_bytes(**{**ANSWER, "tenant": "c", "subject": "b"})
    assert one != two
    assert dk.answer_bytes(**ANSWER) == (
        b'{"challenge_id":"push-0123456789abcdef0123456789abcdef","decision":"approve",'
        b'"number":"42","purpose":"factorstream.push.answer.v1","subject":"alice",'
        b'"tenant":"acme"}'
    )


@pytest.mark.parametrize(
    "signature",
    [
        "not base64!",
        "A" * 86,  # 64 zero bytes: a signature of nothing
        dk.b64url(b"\x01" * 63),
        base64.urlsafe_b64encode(b"\x02" * 64).decode(),  # padded: not the one spelling
        "A" * 1000,
    ],
)
def test_junk_signatures_are_bad_signatures_not_errors(signature: str) -> None:
    _, raw = device()
    message = dk.answer_bytes(**ANSWER)
    assert dk.check_signature(raw, message, signature=signature, key_id=None) == "bad_signature"


def test_a_jwk_round_trips_to_its_raw_key_and_thumbprint() -> None:
    _, raw = device()
    jwk = dk.public_jwk(raw)
    assert dk.parse_jwk(jwk) == raw
    assert dk.parse_jwk({**jwk, "kid": "mine", "use": "sig"}) == raw
    assert len(dk.thumbprint(raw)) == 43


def test_the_thumbprint_is_rfc_8037s_example() -> None:
    """RFC 8037 appendix A.3: the thumbprint of the example Ed25519 key."""
    raw = dk.parse_jwk(
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    )
    assert dk.thumbprint(raw) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@pytest.mark.parametrize(
    "jwk",
    [
        None,
        "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {"kty": "OKP", "crv": "X25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "OKP", "crv": "Ed25519"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
        {"kty": "OKP", "crv": "Ed25519", "x": 12},
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
        },
    ],
)
def test_anything_but_an_ed25519_public_jwk_is_refused(jwk: object) -> None:
    with pytest.raises(dk.DeviceKeyError):
        dk.parse_jwk(jwk)
