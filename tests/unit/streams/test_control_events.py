"""Control events on the events topic, tried as an attacker who can produce to it would.

A forged ``privacy.subject.erased`` blanked a subject's data in the lake, and a forged
``admin.override.approved`` unlocked a subject; derived events (an unlock's
``lockout.cleared``, a checkpoint) could be put on the topic as if the pipeline had made
them. Ingest now refuses, to the dead-letter topic with the reason: a control event
unless signed by a trusted key over exactly its bytes, a derived event always.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas import Event, encode, encode_binary, kafka_key
from schemas.codec import structured_headers
from schemas.registry import EVENT_TYPES, Producer
from schemas.signing import SIGNED_HEADER, sign_event
from streams.stages import DLQ, INGESTED, Ingest, StageOutput
from tests.factories import CONTROL_KEY, T0, TRUSTED, sample_event
from tests.unit.streams.test_stages import _dlq_headers, raw, structured

CONTROL = sorted(t.name for t in EVENT_TYPES if t.made_by is Producer.CONTROL)
DERIVED = sorted(t.name for t in EVENT_TYPES if t.made_by is Producer.PIPELINE)
ATTACKER = Ed25519PrivateKey.from_private_bytes(bytes(range(100, 132)))


def ingest(*events: Event) -> StageOutput:
    return Ingest(control_keys=TRUSTED).process([structured(event) for event in events])


def refused(event: Event) -> dict[str, str]:
    """The dead letter's reason headers of ``event``, which ingest must refuse."""
    out = ingest(event)
    assert out.dead_lettered == 1 and [e.role for e in out.emits] == [DLQ], event
    return _dlq_headers(out.emits[0])


def test_the_registry_names_the_control_types() -> None:
    assert CONTROL == [
        "access.temporary.granted",
        "admin.override.approved",
        "admin.override.refused",
        "admin.override.requested",
        "privacy.subject.erased",
    ]
    assert "lockout.cleared" in DERIVED and "audit.checkpoint.signed" in DERIVED


@pytest.mark.parametrize("kind", CONTROL)
def test_a_control_event_signed_by_a_trusted_key_passes_with_its_signature(kind: str) -> None:
    event = sample_event(kind, subject="u-1")
    out = ingest(event)
    assert out.dead_lettered == 0 and [e.role for e in out.emits] == [INGESTED]
    forwarded = out.emits[0].event
    assert forwarded is not None and forwarded.signature == event.signature  # kept as evidence
    assert b'"signature":' in (out.emits[0].value or b"")


@pytest.mark.parametrize("kind", CONTROL)
def test_an_unsigned_control_event_is_refused(kind: str) -> None:
    reason = refused(sample_event(kind, subject="u-1", signed=False))
    assert reason["factorstream.dlq.field"] == "signature"
    assert "not signed" in reason["factorstream.dlq.reason"]


def test_a_control_event_signed_by_the_attackers_own_key_is_refused() -> None:
    event = sign_event(sample_event("privacy.subject.erased", signed=False), ATTACKER)
    reason = refused(event)
    assert reason["factorstream.dlq.field"] == "signedby"
    assert "not trust" in reason["factorstream.dlq.reason"]


def test_naming_the_trusted_key_over_the_attackers_signature_is_refused() -> None:
    genuine = sample_event("admin.override.approved")
    forged = sign_event(sample_event("admin.override.approved", signed=False), ATTACKER)
    claimed = msgspec.structs.replace(forged, signedby=genuine.signedby)
    reason = refused(claimed)
    assert reason["factorstream.dlq.field"] == "signature"
    assert "does not match" in reason["factorstream.dlq.reason"]


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "u-victim", "partitionkey": "acme/u-victim"},
        {"tenant": "globex", "partitionkey": "globex/u-1"},
        {"time": T0 + timedelta(days=1)},
        {"id": "01890a5d-ac96-7000-8000-000000000001"},
        {"source": "https://evil.example"},
        {"correlationid": "other"},
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    ],
    ids=lambda change: ",".join(change),
)
def test_a_signed_event_altered_in_any_attribute_is_refused(change: dict[str, object]) -> None:
    signed = sample_event("privacy.subject.erased", subject="u-1")
    assert ingest(signed).dead_lettered == 0
    reason = refused(msgspec.structs.replace(signed, **change))  # type: ignore[arg-type]
    assert "does not match" in reason["factorstream.dlq.reason"]


def test_a_signed_event_altered_in_its_payload_is_refused() -> None:
    signed = sample_event("admin.override.approved", subject="u-1")
    for data in (
        msgspec.structs.replace(signed.data, approved_by="mallory"),  # type: ignore[type-var]
        msgspec.structs.replace(signed.data, action="unlock", request_id="other"),  # type: ignore[type-var]
    ):
        reason = refused(msgspec.structs.replace(signed, data=data))
        assert "does not match" in reason["factorstream.dlq.reason"]


def test_a_signature_moved_to_another_event_is_refused() -> None:
    """The attacker holds one genuinely signed unlock (of ``u-1``) and moves its signature
    to an unlock of another subject, and to a later one of the same subject."""
    genuine = sample_event("admin.override.approved", subject="u-1")
    for target in (
        sample_event("admin.override.approved", subject="u-2", signed=False),
        sample_event("admin.override.approved", subject="u-1", signed=False, now=T0 + timedelta(1)),
    ):
        moved = msgspec.structs.replace(
            target, signedby=genuine.signedby, signature=genuine.signature
        )
        assert "does not match" in refused(moved)["factorstream.dlq.reason"]


def test_a_signature_that_is_not_base64_of_a_signature_is_refused_as_malformed() -> None:
    signed = sample_event("privacy.subject.erased")
    body = json.loads(encode(signed))
    for junk in ("!" * 86 + "==", "A" * 10, ""):
        body["signature"] = junk
        out = Ingest(control_keys=TRUSTED).process(
            [raw(json.dumps(body).encode(), key=kafka_key(signed), headers=structured_headers())]
        )
        assert out.dead_lettered == 1
        assert _dlq_headers(out.emits[0])["factorstream.dlq.field"] == "signature"


@pytest.mark.parametrize("kind", DERIVED)
def test_an_event_the_pipeline_derives_is_refused_from_the_topic_even_when_signed(
    kind: str,
) -> None:
    for event in (sample_event(kind), sign_event(sample_event(kind), CONTROL_KEY)):
        reason = refused(event)
        assert reason["factorstream.dlq.field"] == "type"
        assert "derived by the pipeline" in reason["factorstream.dlq.reason"]


def test_no_trusted_keys_refuses_every_control_event() -> None:
    out = Ingest().process([structured(sample_event("privacy.subject.erased"))])
    assert out.dead_lettered == 1


def test_a_signed_control_event_in_binary_mode_passes_and_without_its_signature_fails() -> None:
    signed = sample_event("admin.override.approved")
    headers, value = encode_binary(signed)
    assert ("ce_signature", signed.signature.encode()) in headers  # type: ignore[union-attr]
    for sent, dead in ((headers, 0), ([h for h in headers if h[0] != "ce_signature"], 1)):
        record = raw(value, key=kafka_key(signed), headers=sent)
        assert Ingest(control_keys=TRUSTED).process([record]).dead_lettered == dead


def test_the_signed_bytes_are_what_the_catalogue_documents() -> None:
    """A producer in another language signs the sorted, compact JSON of its event without
    ``signature``; the worker accepts that signature."""
    unsigned = sample_event("privacy.subject.erased", signed=False)
    document = msgspec.to_builtins(unsigned) | {"signedby": next(iter(TRUSTED))}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    signature = CONTROL_KEY.sign(SIGNED_HEADER + text.encode())
    document["signature"] = base64.b64encode(signature).decode()
    out = Ingest(control_keys=TRUSTED).process(
        [raw(json.dumps(document).encode(), key=kafka_key(unsigned), headers=structured_headers())]
    )
    assert out.dead_lettered == 0, _dlq_headers(out.emits[0])


def test_a_dashboard_s_pack_download_passes_ingest_but_an_issued_pack_is_forged() -> None:
    """The dashboard records the packs it hands out as ``audit.evidence.downloaded`` in
    its outbox (it holds no key); ingest forwards it to the ledger sink. The same fields
    claimed as ``audit.evidence.issued`` (what only ``factorstream evidence`` appends to
    the ledger itself) are refused from the topic."""
    downloaded = sample_event("audit.evidence.downloaded", subject="dashboard-user-1")
    out = ingest(downloaded)
    assert out.dead_lettered == 0 and [e.role for e in out.emits] == [INGESTED]
    assert (
        "derived by the pipeline"
        in refused(sample_event("audit.evidence.issued"))["factorstream.dlq.reason"]
    )
