"""Push approval with number matching: only the right number approves; each answer once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa

from schemas import decode
from schemas.fields import Client, Geo, PolicyTier
from verifiers import push
from verifiers.policy import TIERS
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
    other = push.send_push(store, request_at(), ttl=timedelta(seconds=30))
    assert (
        push.expire(store, request_at(), challenge_id=other.challenge_id).reason == "not_expirable"
    )
    assert push.expire(store, late, challenge_id=other.challenge_id).reason == "expired"
    assert _types(store).count("mfa.push.expired") == 2


def test_reject_and_report_fraud(store: VerifierStore, request_at: RequestAt) -> None:
    first = push.send_push(store, request_at())
    rejected = push.respond(
        store, request_at(), challenge_id=first.challenge_id, decision=push.Decision.REJECT
    )
    second = push.send_push(store, request_at())
    fraud = push.respond(
        store, request_at(), challenge_id=second.challenge_id, decision=push.Decision.REPORT_FRAUD
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
        moment = at + timedelta(seconds=10 * n)
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
        push.send_push(store, request_at(at + timedelta(seconds=10 * policy.max_failures)))
    assert refused.value.reason == "locked_out"
    assert refused.value.locked_until == verdict.locked_until
    assert _types(store) == before  # no challenge issued, nothing sent


def test_a_person_rejecting_a_prompt_is_no_failure(
    store: VerifierStore, request_at: RequestAt
) -> None:
    at = request_at().now
    for n in range(TIERS[PolicyTier.CUSTOMER].max_failures + 2):
        sent = push.send_push(store, request_at(at + timedelta(seconds=n)))
        verdict = push.respond(
            store,
            request_at(at + timedelta(seconds=n)),
            challenge_id=sent.challenge_id,
            decision=push.Decision.REJECT,
        )
        assert verdict.reason == "user_rejected" and verdict.locked_until is None


def test_no_new_prompt_while_one_is_open(store: VerifierStore, request_at: RequestAt) -> None:
    """Push bombing without wrong numbers: an attacker with the password asks for prompt
    after prompt, hoping one is tapped. While a prompt is open the next is refused (nothing
    stored, nothing emitted) until it is answered or expires; then prompting works again."""
    at = request_at().now
    first = push.send_push(store, request_at(at), ttl=timedelta(seconds=60))
    before = _types(store)
    for seconds in (1, 5, 30, 59):
        with pytest.raises(push.PushRefused) as refused:
            push.send_push(store, request_at(at + timedelta(seconds=seconds)))
        assert refused.value.reason == "push_pending"
        assert refused.value.locked_until == first.expires_at
    assert _types(store) == before
    later = push.send_push(store, request_at(at + timedelta(seconds=60)))  # the first expired
    push.respond(
        store,
        request_at(at + timedelta(seconds=61)),
        challenge_id=later.challenge_id,
        decision=push.Decision.REJECT,
    )
    assert push.send_push(store, request_at(at + timedelta(seconds=62))).challenge_id
