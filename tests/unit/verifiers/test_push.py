"""Push approval with number matching: only the right number approves; each answer once."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas import decode
from schemas.fields import Client, Geo, LockoutScope, PolicyTier
from tests.unit.verifiers.conftest import make_store
from verifiers import device_keys, factors, push
from verifiers.lockout import LockoutState, LockoutStatus, fold_lockout, lockout_status
from verifiers.policy import TIERS, lockout_policy
from verifiers.store import Request, VerifierStore
from verifiers.tables import outbox_events

RequestAt = Callable[..., Request]
PHONE = Client(ip="198.51.100.20", geo=Geo(country="DE", city="Berlin"))


def _types(store: VerifierStore) -> list[str]:
    with store.engine.connect() as connection:
        values = connection.execute(
            sa.select(outbox_events.c.value).order_by(outbox_events.c.seq)
        ).scalars()
        return [decode(value).type for value in values]


def _wrong(number: str) -> str:
    return "10" if number != "10" else "11"


def test_approve_with_the_right_number(store: VerifierStore, request_at: RequestAt) -> None:
    challenge = push.send_push(store, request_at(), location="Berlin, DE")
    assert 10 <= int(challenge.number) <= 99
    later = request_at(request_at().now + timedelta(seconds=4))
    verdict = push.respond(
        store,
        later,
        challenge_id=challenge.challenge_id,
        decision=push.Decision.APPROVE,
        number=challenge.number,
        responder=PHONE,
    )
    assert verdict.accepted
    assert verdict.event is not None
    data = verdict.event.data
    assert (data.number_matched, data.responded_after_ms) == (True, 4000)  # type: ignore[attr-defined]
    assert data.responder == PHONE  # type: ignore[attr-defined]
    assert verdict.event.data.application == "payroll"  # type: ignore[attr-defined]
    assert _types(store) == ["mfa.challenge.issued", "mfa.push.approved"]


def test_approve_with_the_wrong_number_is_refused(
    store: VerifierStore, request_at: RequestAt
) -> None:
    challenge = push.send_push(store, request_at())
    verdict = push.respond(
        store,
        request_at(),
        challenge_id=challenge.challenge_id,
        decision=push.Decision.APPROVE,
        number=_wrong(challenge.number),
    )
    assert (verdict.accepted, verdict.reason) == (False, "number_mismatch")
    retry = push.respond(
        store,
        request_at(),
        challenge_id=challenge.challenge_id,
        decision=push.Decision.APPROVE,
        number=challenge.number,
    )
    assert retry.reason == "unknown_challenge"  # one answer per challenge
    assert _types(store) == ["mfa.challenge.issued", "mfa.push.rejected", "mfa.verification.failed"]


def test_expiry(store: VerifierStore, request_at: RequestAt) -> None:
    challenge = push.send_push(store, request_at(), ttl=timedelta(seconds=30))
    late = request_at(request_at().now + timedelta(seconds=31))
    verdict = push.respond(
        store,
        late,
        challenge_id=challenge.challenge_id,
        decision=push.Decision.APPROVE,
        number=challenge.number,
    )
    assert (verdict.accepted, verdict.reason) == (False, "expired")
    other = push.send_push(store, late, ttl=timedelta(seconds=30))  # past the cooldown
    assert push.expire(store, late, challenge_id=other.challenge_id).reason == "not_expirable"
    later = request_at(late.now + timedelta(seconds=30))
    assert push.expire(store, later, challenge_id=other.challenge_id).reason == "expired"
    assert _types(store).count("mfa.push.expired") == 2


def test_reject_and_report_fraud(store: VerifierStore, request_at: RequestAt) -> None:
    first = push.send_push(store, request_at())
    rejected = push.respond(
        store, request_at(), challenge_id=first.challenge_id, decision=push.Decision.REJECT
    )
    after_cooldown = request_at(request_at().now + timedelta(seconds=30))
    second = push.send_push(store, after_cooldown)
    fraud = push.respond(
        store, after_cooldown, challenge_id=second.challenge_id, decision=push.Decision.REPORT_FRAUD
    )
    assert (rejected.reason, fraud.reason) == ("user_rejected", "reported_fraud")
    assert _types(store)[-1] == "mfa.push.reported_fraud"


def test_unknown_and_foreign_challenges(store: VerifierStore, request_at: RequestAt) -> None:
    challenge = push.send_push(store, request_at(subject="u-2"))
    foreign = push.respond(
        store,
        request_at(subject="u-1"),
        challenge_id=challenge.challenge_id,
        decision=push.Decision.APPROVE,
        number=challenge.number,
    )
    junk = push.respond(
        store,
        request_at(),
        challenge_id="'; DROP TABLE challenges; --",
        decision=push.Decision.APPROVE,
        number=None,
    )
    assert foreign.reason == junk.reason == "unknown_challenge"


def test_a_locked_subject_gets_no_push_and_wrong_numbers_lock_it(
    store: VerifierStore, request_at: RequestAt
) -> None:
    """Push bombing: an attacker with the password keeps prompting; a person (or the
    attacker guessing) types wrong numbers. Each wrong number is a failure, the lock they
    cause stops every further prompt, and nothing is stored or emitted for a refused one."""
    policy = TIERS[PolicyTier.CUSTOMER]
    at = request_at().now
    for n in range(policy.max_failures):
        moment = at + timedelta(hours=n)  # past each push cooldown, within failure_reset
        sent = push.send_push(store, request_at(moment))
        verdict = push.respond(
            store,
            request_at(moment),
            challenge_id=sent.challenge_id,
            decision=push.Decision.APPROVE,
            number=_wrong(sent.number),
        )
        assert verdict.reason == "number_mismatch"
    assert verdict.locked_until is not None  # the last wrong number locked the subject
    before = _types(store)
    with pytest.raises(push.PushRefused) as refused:
        push.send_push(store, request_at(moment + timedelta(minutes=1)))
    assert refused.value.reason == "locked_out"
    assert refused.value.locked_until == verdict.locked_until
    assert _types(store) == before  # no challenge issued, nothing sent


def test_a_person_rejecting_a_prompt_is_no_failure(
    store: VerifierStore, request_at: RequestAt
) -> None:
    at = request_at().now
    for n in range(TIERS[PolicyTier.CUSTOMER].max_failures + 2):
        sent = push.send_push(store, request_at(at + timedelta(hours=n)))  # past the cooldown
        verdict = push.respond(
            store,
            request_at(at + timedelta(hours=n)),
            challenge_id=sent.challenge_id,
            decision=push.Decision.REJECT,
        )
        assert verdict.reason == "user_rejected" and verdict.locked_until is None


def test_no_new_prompt_while_one_is_open(store: VerifierStore, request_at: RequestAt) -> None:
    """Push bombing without wrong numbers: an attacker with the password asks for prompt
    after prompt, hoping one is tapped. While a prompt is open the next is refused (nothing
    stored or sent; the refusal is recorded, and is no failure) until it is answered or
    expires; then prompting works again, after the resend cooldown."""
    at = request_at().now
    first = push.send_push(store, request_at(at), ttl=timedelta(seconds=60))
    before = _types(store)
    for seconds in (1, 5, 30, 59):
        with pytest.raises(push.PushRefused) as refused:
            push.send_push(store, request_at(at + timedelta(seconds=seconds)))
        assert refused.value.reason == "push_pending"
        assert refused.value.locked_until == first.expires_at
        assert refused.value.retry_after == 60 - seconds
    assert _types(store) == [*before, *["mfa.verification.failed"] * 4]
    assert not store.lockout(request_at(at + timedelta(seconds=60))).locked
    later = push.send_push(store, request_at(at + timedelta(seconds=60)))  # the first expired
    push.respond(
        store,
        request_at(at + timedelta(seconds=61)),
        challenge_id=later.challenge_id,
        decision=push.Decision.REJECT,
    )
    with pytest.raises(push.PushRefused) as refused:  # a second unapproved prompt: 1 min
        push.send_push(store, request_at(at + timedelta(seconds=62)))
    assert (refused.value.reason, refused.value.retry_after) == ("resend_cooldown", 58)
    assert push.send_push(store, request_at(at + timedelta(seconds=120))).challenge_id


def _reject(store: VerifierStore, request: Request, sent: push.PushChallenge) -> None:
    verdict = push.respond(
        store, request, challenge_id=sent.challenge_id, decision=push.Decision.REJECT
    )
    assert verdict.reason == "user_rejected"


def test_push_bombing_after_each_rejection_waits_out_a_growing_cooldown(
    store: VerifierStore, request_at: RequestAt
) -> None:
    """MFA fatigue: the person rejects each prompt at once and the attacker asks again at
    once. The next prompt waits 30 s, then 1 min, 2 min, …; a refused prompt stores and
    sends nothing, says how long to wait, is on the record, and is no failure."""
    at = request_at().now
    t = timedelta(0)
    waits = []
    for _ in range(5):
        sent = push.send_push(store, request_at(at + t))
        _reject(store, request_at(at + t + timedelta(seconds=2)), sent)
        before = _types(store)
        with pytest.raises(push.PushRefused) as refused:
            push.send_push(store, request_at(at + t + timedelta(seconds=3)))
        assert refused.value.reason == "resend_cooldown"
        assert refused.value.retry_after is not None
        assert _types(store) == [*before, "mfa.verification.failed"]  # no challenge issued
        wait = timedelta(seconds=3 + refused.value.retry_after)
        waits.append(wait.total_seconds())
        with pytest.raises(push.PushRefused):  # exactly one microsecond early
            push.send_push(store, request_at(at + t + wait - timedelta(microseconds=1)))
        t += wait
    assert waits == [30, 60, 120, 240, 480]
    assert not store.lockout(request_at(at + t)).locked
    assert push.send_push(store, request_at(at + t)).challenge_id  # on the edge: sent


def test_an_approved_push_is_no_reason_to_wait(store: VerifierStore, request_at: RequestAt) -> None:
    at = request_at().now
    for n in range(3):
        sent = push.send_push(store, request_at(at + timedelta(seconds=n)))
        verdict = push.respond(
            store,
            request_at(at + timedelta(seconds=n)),
            challenge_id=sent.challenge_id,
            decision=push.Decision.APPROVE,
            number=sent.number,
        )
        assert verdict.accepted


def test_a_subject_the_stream_locked_gets_no_push(tmp_path: Path, request_at: RequestAt) -> None:
    """Push bombing through another service's lock: the stream (cross-service, per-IP)
    locked the subject; the verifier asks it before sending and sends nothing."""
    until = request_at().now + timedelta(minutes=5)
    locked = LockoutStatus(True, until, False, LockoutScope.SUBJECT, "max_failures")
    store = make_store(
        f"sqlite:///{tmp_path / 'v.db'}", stream_lockouts=lambda tenant, subject, f: locked
    )
    with pytest.raises(push.PushRefused) as refused:
        push.send_push(store, request_at())
    assert (refused.value.reason, refused.value.locked_until) == ("locked_out", until)
    assert refused.value.retry_after == 300
    assert _types(store) == []


def test_wrong_numbers_lock_the_subject_in_the_stream_too(
    store: VerifierStore, request_at: RequestAt
) -> None:
    """The stream replays the same events through the same fold: the wrong numbers that
    locked the subject at the gate lock it in the system of record (lockout.applied)."""
    policy = TIERS[PolicyTier.CUSTOMER]
    at = request_at().now
    for n in range(policy.max_failures):
        moment = at + timedelta(hours=n)  # past each push cooldown
        sent = push.send_push(store, request_at(moment))
        push.respond(
            store,
            request_at(moment),
            challenge_id=sent.challenge_id,
            decision=push.Decision.APPROVE,
            number=_wrong(sent.number),
        )
    with store.engine.connect() as connection:
        values = connection.execute(
            sa.select(outbox_events.c.value).order_by(outbox_events.c.seq)
        ).scalars()
        events = [decode(value) for value in values]
    state, derived = LockoutState(), []
    for event in events:
        state, more = fold_lockout(state, event, lockout_policy(policy))
        derived += more
    assert [e.type for e in derived] == ["lockout.applied"]
    assert derived[0].data.failures == policy.max_failures  # type: ignore[attr-defined]
    assert lockout_status(state, now=moment).locked


# -- a device that signs its answers -----------------------------------------------------


def _enrol_device(
    store: VerifierStore, request: Request
) -> tuple[Ed25519PrivateKey, push.PushEnrollment]:
    key = Ed25519PrivateKey.generate()
    raw = device_keys.raw_public(key.public_key())
    enrollment = push.begin_enrollment(
        store, request, device_key=device_keys.public_jwk(raw), device_name="Pixel 9"
    )
    proof = device_keys.enrollment_bytes(
        tenant=request.tenant,
        subject=request.subject,
        enrollment_id=enrollment.enrollment_id,
        key_id=enrollment.key_id,
    )
    verdict = push.confirm_enrollment(
        store,
        request,
        enrollment_id=enrollment.enrollment_id,
        signature=device_keys.b64url(key.sign(proof)),
    )
    assert verdict.accepted, verdict
    return key, enrollment


def _signed(
    key: Ed25519PrivateKey,
    request: Request,
    challenge_id: str,
    number: str | None,
    decision: push.Decision = push.Decision.APPROVE,
) -> push.SignedAnswer:
    signed = device_keys.answer_bytes(
        tenant=request.tenant,
        subject=request.subject,
        challenge_id=challenge_id,
        decision=decision.value,
        number=number,
    )
    return push.SignedAnswer(challenge_id, decision, number, device_keys.b64url(key.sign(signed)))


def _last(store: VerifierStore) -> Any:
    with store.engine.connect() as connection:
        value = connection.execute(
            sa.select(outbox_events.c.value).order_by(outbox_events.c.seq.desc()).limit(1)
        ).scalar_one()
    return decode(value)


def test_an_enrolled_device_approves_with_its_signature_once(
    store: VerifierStore, request_at: RequestAt
) -> None:
    request = request_at()
    key, enrollment = _enrol_device(store, request)
    assert push.active_enrollment(store, tenant="acme", subject="u-1001") == (
        enrollment.enrollment_id
    )
    challenge = push.send_push(store, request, enrollment_id=enrollment.enrollment_id)
    answer = _signed(key, request, challenge.challenge_id, challenge.number)

    verdict = push.respond_signed(store, request, answer=answer)
    replayed = push.respond_signed(store, request, answer=answer)

    assert verdict.accepted
    assert (replayed.accepted, replayed.reason) == (False, "replayed_answer")
    assert _last(store).data.reason == "replayed_answer"
    assert _types(store) == [
        "mfa.enrollment.started",
        "mfa.enrollment.completed",
        "mfa.challenge.issued",
        "mfa.push.approved",
        "mfa.verification.failed",
    ]


ATTACKS = ["unsigned", "foreign", "foreign_named", "number_altered", "decision_altered"]


@pytest.mark.parametrize("attack", ATTACKS)
def test_unsigned_foreign_and_altered_answers_are_refused_and_leave_the_push_open(
    store: VerifierStore, request_at: RequestAt, attack: str
) -> None:
    request = request_at()
    key, enrollment = _enrol_device(store, request)
    other_key, _ = _enrol_device(store, request_at(subject="u-2002"))
    challenge = push.send_push(store, request, enrollment_id=enrollment.enrollment_id)
    cid, number = challenge.challenge_id, challenge.number
    good = _signed(key, request, cid, number)
    foreign = _signed(other_key, request, cid, number)
    other_raw = device_keys.raw_public(other_key.public_key())
    answer, reason = {
        "unsigned": (
            push.SignedAnswer(cid, push.Decision.APPROVE, number, None),
            "unsigned_answer",
        ),
        "foreign": (foreign, "bad_signature"),
        "foreign_named": (
            dataclasses.replace(foreign, key_id=device_keys.thumbprint(other_raw)),
            "unknown_device_key",
        ),
        # the device approved number N; the attacker sends its signature with another number
        "number_altered": (dataclasses.replace(good, number=_wrong(number)), "bad_signature"),
        # the device rejected; the attacker turns the rejection into an approval
        "decision_altered": (
            dataclasses.replace(
                _signed(key, request, cid, number, push.Decision.REJECT),
                decision=push.Decision.APPROVE,
            ),
            "bad_signature",
        ),
    }[attack]

    verdict = push.respond_signed(store, request, answer=answer)

    assert (verdict.accepted, verdict.reason) == (False, reason)
    recorded = _last(store)
    assert recorded.type == "mfa.verification.failed"
    assert (recorded.data.reason, recorded.data.enrollment_id) == (
        reason,
        enrollment.enrollment_id,
    )
    assert push.respond_signed(store, request, answer=good).accepted


def test_another_tenants_or_subjects_challenge_is_unknown_even_signed_right(
    store: VerifierStore, request_at: RequestAt
) -> None:
    request = request_at()
    key, enrollment = _enrol_device(store, request)
    challenge = push.send_push(store, request, enrollment_id=enrollment.enrollment_id)
    for elsewhere in (request_at(tenant="globex"), request_at(subject="u-2002")):
        answer = _signed(key, elsewhere, challenge.challenge_id, challenge.number)
        verdict = push.respond_signed(store, elsewhere, answer=answer)
        assert verdict.reason == "unknown_challenge"
    # nor does a signature made for another tenant pass in this one
    answer = _signed(key, request_at(tenant="globex"), challenge.challenge_id, challenge.number)
    assert push.respond_signed(store, request, answer=answer).reason == "bad_signature"


def test_a_removed_device_can_no_longer_answer(store: VerifierStore, request_at: RequestAt) -> None:
    request = request_at()
    key, enrollment = _enrol_device(store, request)
    challenge = push.send_push(store, request, enrollment_id=enrollment.enrollment_id)
    assert factors.remove_factor(store, request, enrollment_id=enrollment.enrollment_id).accepted
    answer = _signed(key, request, challenge.challenge_id, challenge.number)
    assert push.respond_signed(store, request, answer=answer).reason == "device_not_enrolled"


def test_an_enrollment_needs_the_devices_own_proof(
    store: VerifierStore, request_at: RequestAt
) -> None:
    request = request_at()
    key = Ed25519PrivateKey.generate()
    jwk = device_keys.public_jwk(device_keys.raw_public(key.public_key()))
    enrollment = push.begin_enrollment(store, request, device_key=jwk)
    wrong = Ed25519PrivateKey.generate()
    proof = device_keys.enrollment_bytes(
        tenant="acme",
        subject="u-1001",
        enrollment_id=enrollment.enrollment_id,
        key_id=enrollment.key_id,
    )
    refusals = [
        push.confirm_enrollment(
            store, request, enrollment_id=enrollment.enrollment_id, signature=signature
        ).reason
        for signature in (None, device_keys.b64url(wrong.sign(proof)))
    ]
    assert refusals == ["unsigned_answer", "bad_signature"]
    assert push.active_enrollment(store, tenant="acme", subject="u-1001") is None
    with pytest.raises(push.DeviceKeyError):
        push.begin_enrollment(store, request, device_key={"kty": "RSA", "n": "AQAB"})


def test_a_lock_closes_the_push_and_a_later_answer_is_no_replay(
    tmp_path: Path, request_at: RequestAt
) -> None:
    """The stream locks the subject while the push is open: the signed approval is refused
    ``locked_out`` and closes the push; once the lock is gone, the same answer is refused as
    a push that closed unanswered, not as a replay."""
    locks: list[LockoutStatus] = []
    store = make_store(
        f"sqlite:///{tmp_path / 'v.db'}",
        stream_lockouts=lambda tenant, subject, factor: locks[-1] if locks else None,
    )
    request = request_at()
    key, enrollment = _enrol_device(store, request)
    challenge = push.send_push(store, request, enrollment_id=enrollment.enrollment_id)
    answer = _signed(key, request, challenge.challenge_id, challenge.number)
    until = request.now + timedelta(minutes=5)
    locks.append(LockoutStatus(True, until, False, LockoutScope.SUBJECT, "max_failures"))

    locked = push.respond_signed(store, request, answer=answer)
    locks.clear()
    later = push.respond_signed(store, request, answer=answer)

    assert locked.reason == "locked_out"
    assert later.reason == "challenge_closed"
    assert _types(store)[-2:] == ["mfa.verification.failed", "mfa.verification.failed"]
