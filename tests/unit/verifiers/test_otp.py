"""SMS, voice and e-mail codes: destinations, enrollment, sending, checking, junk, at rest.

Messages go to an in-process provider (the "handset") so these tests stay in the unit
tier; real SMTP and HTTP gateways are in tests/integration/test_otp_delivery.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import count

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import Event, decode
from schemas.fields import Channel, Factor, PolicyTier
from tests.unit.verifiers.conftest import NOW, raw_dump
from verifiers import otp
from verifiers.delivery import DeliveryFailed, FailoverDelivery, Message, NoProviderForChannel
from verifiers.policy import TIERS
from verifiers.store import Request, Verdict, VerifierStore
from verifiers.tables import challenges, enrollments, outbox_events

RequestAt = Callable[..., Request]
MOBILE = "+49 1512 3456789"
MOBILE_E164 = "+4915123456789"
EMAIL = "Jane.Doe+mfa@Example.COM"
CUSTOMER = TIERS[PolicyTier.CUSTOMER]
COOLDOWN = CUSTOMER.code_resend.cooldown.total_seconds()
_subjects = count()


@dataclass
class Handset:
    """A provider that hands every message to the person at once."""

    name: str = "handset"
    channels: frozenset[Channel] = frozenset(Channel)
    received: list[Message] = field(default_factory=list)

    def send(self, message: Message) -> str:
        self.received.append(message)
        return f"m-{len(self.received)}"

    def code(self) -> str:
        """The code of the latest message (its first six digits, however they are spaced)."""
        return "".join(re.findall(r"\d", self.received[-1].text))[:6]


@dataclass
class Broken:
    """A provider that fails the way it is told to."""

    name: str
    error: Exception
    channels: frozenset[Channel] = frozenset(Channel)
    calls: int = 0

    def send(self, message: Message) -> str:
        self.calls += 1
        raise self.error


@pytest.fixture
def handset() -> Handset:
    return Handset()


@pytest.fixture
def delivery(handset: Handset) -> FailoverDelivery:
    return FailoverDelivery([handset])


def _events(store: VerifierStore) -> list[Event]:
    with store.engine.connect() as connection:
        values = connection.execute(
            sa.select(outbox_events.c.value).order_by(outbox_events.c.seq)
        ).scalars()
        return [decode(value) for value in values]


def _types(store: VerifierStore) -> list[str]:
    return [event.type for event in _events(store)]


def _later(request: Request, **delta: float) -> Request:
    return Request(**{**request.__dict__, "now": request.now + timedelta(**delta)})


def _enrolled(
    store: VerifierStore,
    request: Request,
    delivery: FailoverDelivery,
    handset: Handset,
    *,
    factor: Factor = Factor.SMS,
    destination: str = MOBILE,
) -> str:
    """An active enrollment of the request's subject, confirmed with its first code."""
    enrollment = otp.begin_enrollment(store, request, factor=factor, destination=destination)
    sent = otp.send_code(
        store, request, factor=factor, delivery=delivery, enrollment_id=enrollment.enrollment_id
    )
    assert sent.sent
    verdict = otp.confirm_enrollment(
        store, request, enrollment_id=enrollment.enrollment_id, code=handset.code()
    )
    assert verdict.accepted, verdict.reason
    return enrollment.enrollment_id


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def _lock_sms(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    """Enrol SMS, send a code and type wrong ones, two seconds apart, until the factor locks."""
    _enrolled(store, request_at(), delivery, handset)
    sent = otp.send_code(store, request_at(), factor=Factor.SMS, delivery=delivery)
    assert sent.challenge_id is not None
    for attempt in range(CUSTOMER.otp_max_failures):
        otp.verify_code(
            store,
            _later(request_at(), seconds=2 * attempt),
            challenge_id=sent.challenge_id,
            code=_wrong(handset.code()),
        )


# -- destinations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "region", "factor", "e164"),
    [
        ("+49 1512 3456789", None, Factor.SMS, "+4915123456789"),
        ("+49 (0)1512 3456789", None, Factor.SMS, "+4915123456789"),
        ("01512 3456789", "DE", Factor.SMS, "+4915123456789"),
        ("0049 1512-3456789", "de", Factor.SMS, "+4915123456789"),
        ("07400 123456", "GB", Factor.SMS, "+447400123456"),
        ("(201) 555-0123", "US", Factor.SMS, "+12015550123"),
        ("+1 201.555.0123", "FR", Factor.VOICE, "+12015550123"),
        ("030 123456", "DE", Factor.VOICE, "+4930123456"),
        ("  06 12 34 56 78 ", "FR", Factor.SMS, "+33612345678"),
    ],
)
def test_phone_numbers_normalise_to_e164(
    number: str, region: str | None, factor: Factor, e164: str
) -> None:
    assert otp.normalise_phone(number, region=region, factor=factor) == e164


@pytest.mark.parametrize(
    ("number", "region", "factor", "problem"),
    [
        ("01512 3456789", None, Factor.SMS, "no country code"),
        ("+49 1512", None, Factor.SMS, "not a valid number for region DE"),
        ("+49 1512 345678901234", None, Factor.SMS, "too long"),
        ("123", "US", Factor.SMS, "too short for region US"),
        ("+44 7400 12", None, Factor.SMS, "not a valid number for region GB"),
        ("call me maybe", "DE", Factor.SMS, "not a number"),
        ("", "DE", Factor.SMS, "not a number"),
        ("+999 1234567", None, Factor.SMS, "unknown country calling code"),
        ("030 123456", "DE", Factor.SMS, "fixed-line number cannot receive SMS"),
        ("0900 1 234567", "DE", Factor.VOICE, "premium-rate numbers"),
        ("01512 3456789", "XX", Factor.SMS, "unknown region 'XX'"),
        ("9" * 10_000, "DE", Factor.SMS, "too long"),
        ("+800 1234 5678", None, Factor.VOICE, "toll-free numbers"),
    ],
)
def test_junk_phone_numbers_are_refused_saying_what_is_wrong(
    number: str, region: str | None, factor: Factor, problem: str
) -> None:
    with pytest.raises(otp.InvalidDestination) as refused:
        otp.normalise_phone(number, region=region, factor=factor)
    assert problem in str(refused.value)
    digits = re.sub(r"\D", "", number)
    assert len(digits) < 4 or digits not in str(refused.value)  # the value is not echoed


@given(st.text(max_size=300), st.sampled_from([None, "DE", "US", "GB", "IN"]))
@settings(max_examples=300, deadline=None)
def test_any_text_is_a_valid_e164_number_or_refused(text: str, region: str | None) -> None:
    try:
        normalised = otp.normalise_phone(text, region=region, factor=Factor.VOICE)
    except otp.InvalidDestination:
        return
    assert re.fullmatch(r"\+[1-9]\d{6,14}", normalised)
    assert otp.normalise_phone(normalised, factor=Factor.VOICE) == normalised


@pytest.mark.parametrize(
    ("address", "normalised"),
    [
        (EMAIL, "Jane.Doe+mfa@example.com"),
        ("  a@b.co ", "a@b.co"),
        ("o'brien@mail.example.org", "o'brien@mail.example.org"),
        ("jane@bücher.de", "jane@xn--bcher-kva.de"),
    ],
)
def test_email_addresses_are_normalised(address: str, normalised: str) -> None:
    assert otp.normalise_email(address) == normalised


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("", "expected local-part@domain"),
        ("jane.example.com", "expected local-part@domain"),
        ("jane@", "expected local-part@domain"),
        ("@example.com", "expected local-part@domain"),
        ("jane@localhost", "with a dot"),
        ("jane@-example.com", "with a dot"),
        ("jane..doe@example.com", "local part"),
        ("jäne@example.com", "local part"),
        ("jane doe@example.com", "spaces or control characters"),
        ("jane@example.com\r\nBcc: all@example.com", "spaces or control characters"),
        ("jane@192.168.0.1", "not an IP address"),
        ("x" * 65 + "@example.com", "longer than 64"),
        ("jane@" + "a" * 300 + ".com", "longer than 254"),
    ],
)
def test_junk_email_addresses_are_refused(address: str, problem: str) -> None:
    with pytest.raises(otp.InvalidDestination, match=re.escape(problem)):
        otp.normalise_email(address)


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_text_is_an_email_address_or_refused(text: str) -> None:
    try:
        normalised = otp.normalise_email(text)
    except otp.InvalidDestination:
        return
    assert normalised.isascii() and normalised.count("@") >= 1
    assert otp.normalise_email(normalised) == normalised


def test_enrollment_refuses_a_bad_destination_before_storing_anything(
    store: VerifierStore, request_at: RequestAt
) -> None:
    with pytest.raises(otp.InvalidDestination, match="not a valid number for region DE"):
        otp.begin_enrollment(store, request_at(), factor=Factor.SMS, destination="+49 1512")
    with pytest.raises(otp.UnsupportedFactor):
        otp.begin_enrollment(store, request_at(), factor=Factor.TOTP, destination=MOBILE)
    assert _types(store) == []


# -- enrollment --------------------------------------------------------------------------


def test_a_phone_is_enrolled_by_its_first_code(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    enrollment = otp.begin_enrollment(
        store, request_at(), factor=Factor.SMS, destination="01512 3456789", region="DE"
    )
    assert enrollment.destination == MOBILE_E164
    assert (enrollment.masked_destination, enrollment.destination_country) == (
        "+49*********89",
        "DE",
    )
    assert MOBILE_E164 not in repr(enrollment)
    sent = otp.send_code(
        store,
        request_at(),
        factor=Factor.SMS,
        delivery=delivery,
        enrollment_id=enrollment.enrollment_id,
    )
    assert handset.received[-1].destination == MOBILE_E164
    wrong = otp.confirm_enrollment(
        store, request_at(), enrollment_id=enrollment.enrollment_id, code=_wrong(handset.code())
    )
    assert (wrong.accepted, wrong.reason) == (False, "invalid_code")
    verdict = otp.confirm_enrollment(
        store,
        _later(request_at(), seconds=42),
        enrollment_id=enrollment.enrollment_id,
        code=handset.code(),
    )
    assert verdict.accepted and verdict.event is not None
    completed = verdict.event.data
    assert completed.destination == "+49*********89"  # type: ignore[attr-defined]
    assert completed.destination_country == "DE"  # type: ignore[attr-defined]
    assert completed.elapsed_ms == 42_000  # type: ignore[attr-defined]
    assert _types(store) == [
        "mfa.enrollment.started",
        "mfa.challenge.issued",
        "mfa.challenge.sent",
        "mfa.enrollment.failed",
        "mfa.enrollment.completed",
    ]
    assert sent.challenge_id is not None
    # an enrollment code is not a sign-in code
    reuse = otp.verify_code(store, request_at(), challenge_id=sent.challenge_id, code="000000")
    assert reuse.reason == "unknown_challenge"
    with store.engine.connect() as connection:
        status = connection.execute(sa.select(enrollments.c.status)).scalar_one()
    assert status == "active"


def test_confirming_an_unknown_or_active_enrollment_is_refused(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    enrollment_id = _enrolled(store, request_at(), delivery, handset)
    again = otp.confirm_enrollment(
        store, request_at(), enrollment_id=enrollment_id, code=handset.code()
    )
    assert again.reason == "unknown_enrollment"
    junk = otp.confirm_enrollment(store, request_at(), enrollment_id="nope", code="123456")
    assert (junk.reason, junk.event) == ("unknown_enrollment", None)
    pending = otp.begin_enrollment(store, request_at(), factor=Factor.EMAIL, destination=EMAIL)
    unsent = otp.confirm_enrollment(
        store, request_at(), enrollment_id=pending.enrollment_id, code="123456"
    )
    assert unsent.reason == "no_challenge"


# -- sending and verifying ---------------------------------------------------------------


def test_a_sign_in_code_verifies_once(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    enrollment_id = _enrolled(store, request_at(), delivery, handset)
    sent = otp.send_code(store, request_at(), factor=Factor.SMS, delivery=delivery)
    assert (sent.sent, sent.reason, sent.provider, sent.resend) == (True, None, "handset", False)
    assert sent.expires_at == NOW + CUSTOMER.code_lifetime
    assert sent.challenge_id is not None and sent.challenge_id.startswith("sms-")
    assert "expires in 10 minutes" in handset.received[-1].text
    code = handset.code()
    verdict = otp.verify_code(
        store, _later(request_at(), seconds=9.5), challenge_id=sent.challenge_id, code=f" {code} "
    )
    assert verdict.accepted and verdict.event is not None
    data = verdict.event.data
    assert (data.factor, data.enrollment_id, data.elapsed_ms) == (  # type: ignore[attr-defined]
        Factor.SMS,
        enrollment_id,
        9500,
    )
    replay = otp.verify_code(store, request_at(), challenge_id=sent.challenge_id, code=code)
    assert (replay.accepted, replay.reason) == (False, "already_used")
    issued, sent_event = _events(store)[-4:-2]
    assert issued.data.max_attempts == CUSTOMER.otp_max_failures  # type: ignore[attr-defined]
    assert sent_event.data.destination == "+49*********89"  # type: ignore[attr-defined]
    assert sent_event.data.provider_message_id == "m-2"  # type: ignore[attr-defined]


def test_codes_are_six_ascii_digits_with_leading_zeros_kept(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    _enrolled(store, request_at(), delivery, handset)
    codes = set()
    for hour in range(50):  # an hour apart: no resend cooldown, no hourly cap
        otp.send_code(store, _later(request_at(), hours=hour), factor=Factor.SMS, delivery=delivery)
        text = handset.received[-1].text
        codes.add(re.search(r"code is (\S+)\.", text).group(1))  # type: ignore[union-attr]
    assert all(len(code) == 6 and code.isascii() and code.isdigit() for code in codes)
    assert len(codes) > 45


def test_a_voice_call_reads_the_code_to_an_sms_enrollment(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    _enrolled(store, request_at(), delivery, handset)
    sent = otp.send_code(store, request_at(), factor=Factor.VOICE, delivery=delivery)
    call = handset.received[-1]
    assert call.channel is Channel.VOICE
    assert re.search(r"is (\d, ){5}\d\. Again: (\d, ){5}\d\.", call.text)
    assert sent.challenge_id is not None
    verdict = otp.verify_code(
        store, request_at(), challenge_id=sent.challenge_id, code=handset.code()
    )
    assert verdict.accepted and verdict.event is not None
    assert verdict.event.data.factor is Factor.VOICE  # type: ignore[attr-defined]


def test_a_code_is_refused_once_its_lifetime_is_over(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    _enrolled(store, request_at(), delivery, handset)
    lifetime = CUSTOMER.code_lifetime.total_seconds()
    first = otp.send_code(store, request_at(), factor=Factor.SMS, delivery=delivery)
    assert first.challenge_id is not None
    late = otp.verify_code(
        store,
        _later(request_at(), seconds=lifetime),
        challenge_id=first.challenge_id,
        code=handset.code(),
    )
    assert (late.accepted, late.reason) == (False, "expired")
    second = otp.send_code(
        store, _later(request_at(), seconds=lifetime), factor=Factor.SMS, delivery=delivery
    )
    assert second.challenge_id is not None and not second.resend  # the first was closed
    in_time = otp.verify_code(
        store,
        _later(request_at(), seconds=2 * lifetime - 1),
        challenge_id=second.challenge_id,
        code=handset.code(),
    )
    assert in_time.accepted


def test_a_resend_supersedes_the_previous_code(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    _enrolled(store, request_at(), delivery, handset)
    first = otp.send_code(store, request_at(), factor=Factor.SMS, delivery=delivery)
    old_code = handset.code()
    second = otp.send_code(store, request_at(), factor=Factor.EMAIL, delivery=delivery)
    assert second.reason == "not_enrolled"  # e-mail is another enrollment
    resend_at = _later(request_at(), seconds=COOLDOWN)  # the person waited the cooldown
    second = otp.send_code(store, resend_at, factor=Factor.SMS, delivery=delivery)
    assert second.resend
    assert first.challenge_id is not None and second.challenge_id is not None
    stale = otp.verify_code(store, resend_at, challenge_id=first.challenge_id, code=old_code)
    assert (stale.accepted, stale.reason) == (False, "superseded")
    fresh = otp.verify_code(store, resend_at, challenge_id=second.challenge_id, code=handset.code())
    assert fresh.accepted
    resent = [e.data for e in _events(store) if e.type == "mfa.challenge.sent"][-1]
    assert resent.resend  # type: ignore[attr-defined]


def test_attempts_are_capped_by_the_tier(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    _enrolled(store, request_at(), delivery, handset)
    sent = otp.send_code(store, request_at(), factor=Factor.SMS, delivery=delivery)
    assert sent.challenge_id is not None
    code, cap = handset.code(), CUSTOMER.otp_max_failures
    verdicts: list[Verdict] = []
    for attempt in range(1, cap + 1):  # 2 s apart: no quick-login lock
        at = _later(request_at(), seconds=2 * attempt)
        verdicts.append(
            otp.verify_code(store, at, challenge_id=sent.challenge_id, code=_wrong(code))
        )
    assert {v.reason for v in verdicts} == {"invalid_code"}
    details = [(v.event.data.attempt, v.event.data.attempts_remaining) for v in verdicts]  # type: ignore[union-attr]
    assert details == [(n, cap - n) for n in range(1, cap + 1)]
    assert verdicts[-1].locked_until is not None  # the tier also locks the factor
    right_away = otp.verify_code(
        store, _later(request_at(), seconds=60), challenge_id=sent.challenge_id, code=code
    )
    assert right_away.reason == "locked_out"
    after_lock = _later(request_at(), seconds=60 + CUSTOMER.otp_lockout.total_seconds())
    closed = otp.verify_code(store, after_lock, challenge_id=sent.challenge_id, code=code)
    assert (closed.accepted, closed.reason) == (False, "too_many_attempts")


def test_a_locked_factor_gets_no_new_code(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    _lock_sms(store, request_at, delivery, handset)
    before = len(handset.received)
    refused = otp.send_code(
        store, _later(request_at(), seconds=30), factor=Factor.SMS, delivery=delivery
    )
    assert (refused.sent, refused.reason, refused.challenge_id) == (False, "locked_out", None)
    assert refused.locked_until is not None and len(handset.received) == before
    other = otp.send_code(
        store, _later(request_at(), seconds=30), factor=Factor.VOICE, delivery=delivery
    )
    assert other.sent  # only the sms factor is locked


def test_sending_without_an_enrollment_or_provider(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery
) -> None:
    none = otp.send_code(store, request_at(), factor=Factor.SMS, delivery=delivery)
    assert (none.sent, none.reason, none.events) == (False, "not_enrolled", ())
    unknown = otp.send_code(
        store, request_at(), factor=Factor.SMS, delivery=delivery, enrollment_id="sms-0"
    )
    assert unknown.reason == "unknown_enrollment"
    email_only = FailoverDelivery([Handset(channels=frozenset({Channel.EMAIL}))])
    with pytest.raises(NoProviderForChannel):
        otp.send_code(store, request_at(), factor=Factor.SMS, delivery=email_only)
    with pytest.raises(otp.UnsupportedFactor):
        otp.send_code(store, request_at(), factor=Factor.PUSH, delivery=delivery)
    assert _types(store) == []


# -- resend cooldown (an attacker asking for code after code) -----------------------------


def _refusals(store: VerifierStore) -> list[tuple[str, str, str | None]]:
    """(type, reason, factor) of the refused sends recorded in the outbox."""
    return [
        (e.type, e.data.reason, getattr(e.data, "factor", None))  # type: ignore[attr-defined]
        for e in _events(store)
        if getattr(e.data, "reason", None) in ("resend_cooldown", "send_limit")
    ]


def test_resending_in_a_loop_is_refused_until_the_cooldown_is_over(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    """A script asks for a new code every second: nothing is sent (no message, no challenge)
    until the cooldown is over, each refusal says how long to wait and is on the record, and
    none of them counts as a failure (no lock, however many)."""
    _enrolled(store, request_at(), delivery, handset)
    first = otp.send_code(store, request_at(), factor=Factor.SMS, delivery=delivery)
    assert first.sent
    received, types = len(handset.received), _types(store)
    for second in range(1, int(COOLDOWN)):
        refused = otp.send_code(
            store, _later(request_at(), seconds=second), factor=Factor.SMS, delivery=delivery
        )
        assert (refused.sent, refused.reason, refused.challenge_id) == (
            False,
            "resend_cooldown",
            None,
        )
        assert refused.retry_after == COOLDOWN - second
        assert refused.locked_until is None
        (event,) = refused.events
        assert (event.type, event.data.reason) == ("mfa.verification.failed", "resend_cooldown")  # type: ignore[attr-defined]
    assert len(handset.received) == received
    new = _types(store)[len(types) :]
    assert set(new) == {"mfa.verification.failed"} and len(new) == int(COOLDOWN) - 1
    assert not store.lockout(_later(request_at(), seconds=COOLDOWN)).locked
    after = otp.send_code(
        store, _later(request_at(), seconds=COOLDOWN), factor=Factor.SMS, delivery=delivery
    )
    assert after.sent and after.resend and len(handset.received) == received + 1


def test_a_resend_exactly_at_the_cooldown_edge(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    _enrolled(store, request_at(), delivery, handset)
    assert otp.send_code(store, request_at(), factor=Factor.SMS, delivery=delivery).sent
    just_before = _later(request_at(), seconds=COOLDOWN, microseconds=-1)
    early = otp.send_code(store, just_before, factor=Factor.SMS, delivery=delivery)
    assert (early.sent, early.reason, early.retry_after) == (False, "resend_cooldown", 1)
    on_time = otp.send_code(
        store, _later(request_at(), seconds=COOLDOWN), factor=Factor.SMS, delivery=delivery
    )
    assert on_time.sent


def test_the_cooldown_doubles_with_each_resend(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    """A patient script waits out each cooldown: the waits double (30 s, 1 min, 2 min, …)
    up to 10 min (Auth0's exponential backoff against SMS pumping)."""
    _enrolled(store, _later(request_at(), hours=-2), delivery, handset)
    assert otp.send_code(store, request_at(), factor=Factor.SMS, delivery=delivery).sent
    t, waits = 0, []
    for _ in range(7):
        early = otp.send_code(
            store, _later(request_at(), seconds=t + 1), factor=Factor.SMS, delivery=delivery
        )
        assert early.reason == "resend_cooldown" and early.retry_after is not None
        waits.append(1 + early.retry_after)
        t += 1 + early.retry_after
        sent = otp.send_code(
            store, _later(request_at(), seconds=t), factor=Factor.SMS, delivery=delivery
        )
        assert sent.sent, sent.reason
    assert waits == [30, 60, 120, 240, 480, 600, 600]


def test_entering_each_code_does_not_lift_the_hourly_cap(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    """A toll fraudster owns the number and enters each code, so no resend waits: still no
    more than 10 codes an hour (NIST SP 800-63B 5.2.2; Auth0 sends 10 SMS an hour); the
    11th waits until the first leaves the hour."""
    cap, hour = CUSTOMER.code_resend.max_sends, CUSTOMER.code_resend.window.total_seconds()
    _enrolled(store, _later(request_at(), hours=-2), delivery, handset)
    for second in range(cap):
        at = _later(request_at(), seconds=second)
        sent = otp.send_code(store, at, factor=Factor.SMS, delivery=delivery)
        assert sent.sent and sent.challenge_id is not None, sent.reason
        verdict = otp.verify_code(store, at, challenge_id=sent.challenge_id, code=handset.code())
        assert verdict.accepted
    received = len(handset.received)
    capped = otp.send_code(
        store, _later(request_at(), seconds=cap), factor=Factor.VOICE, delivery=delivery
    )
    assert (capped.sent, capped.reason, capped.retry_after) == (False, "send_limit", hour - cap)
    by_mail = otp.begin_enrollment(
        store, _later(request_at(), seconds=cap), factor=Factor.EMAIL, destination=EMAIL
    )
    mail = otp.send_code(
        store,
        _later(request_at(), seconds=cap),
        factor=Factor.EMAIL,
        delivery=delivery,
        enrollment_id=by_mail.enrollment_id,
    )
    assert mail.reason == "send_limit"  # the cap is the subject's, every kind together
    assert len(handset.received) == received
    again = otp.send_code(
        store, _later(request_at(), seconds=hour), factor=Factor.SMS, delivery=delivery
    )
    assert again.sent
    assert [reason for _, reason, _ in _refusals(store)] == ["send_limit"] * 2


def test_another_factor_enrollment_or_purpose_does_not_dodge_the_cooldown(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    """The cooldown is the subject's, by what a send reaches (the phone: SMS and voice; the
    mailbox), not by factor, enrollment or purpose: a voice call, a second phone number being
    enrolled, or an enrollment code instead of a sign-in code are all refused. An e-mail
    reaches another inbox and is sent (it counts towards the hourly cap)."""
    _enrolled(store, request_at(), delivery, handset)
    _enrolled(store, request_at(), delivery, handset, factor=Factor.EMAIL, destination=EMAIL)
    assert otp.send_code(store, request_at(), factor=Factor.SMS, delivery=delivery).sent
    received = len(handset.received)
    one_second = _later(request_at(), seconds=1)
    voice = otp.send_code(store, one_second, factor=Factor.VOICE, delivery=delivery)
    second_phone = otp.begin_enrollment(
        store, one_second, factor=Factor.SMS, destination="+44 7400 123456"
    )
    enroll = otp.send_code(
        store,
        one_second,
        factor=Factor.SMS,
        delivery=delivery,
        enrollment_id=second_phone.enrollment_id,
    )
    as_voice = otp.send_code(
        store,
        one_second,
        factor=Factor.VOICE,
        delivery=delivery,
        enrollment_id=second_phone.enrollment_id,
    )
    assert [r.reason for r in (voice, enroll, as_voice)] == ["resend_cooldown"] * 3
    assert all(r.retry_after == COOLDOWN - 1 for r in (voice, enroll, as_voice))
    assert len(handset.received) == received
    assert [(t, f) for t, _, f in _refusals(store)] == [
        ("mfa.verification.failed", Factor.VOICE),
        ("mfa.enrollment.failed", Factor.SMS),
        ("mfa.enrollment.failed", Factor.VOICE),
    ]
    email = otp.send_code(store, one_second, factor=Factor.EMAIL, delivery=delivery)
    assert email.sent


def test_a_used_code_is_no_reason_to_wait(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    """The cooldown is for resends: a person who entered their code and needs another (a
    second sign-in, a step-up) gets it at once."""
    _enrolled(store, request_at(), delivery, handset)
    for second in range(3):
        at = _later(request_at(), seconds=second)
        sent = otp.send_code(store, at, factor=Factor.SMS, delivery=delivery)
        assert sent.sent and sent.challenge_id is not None
        verdict = otp.verify_code(store, at, challenge_id=sent.challenge_id, code=handset.code())
        assert verdict.accepted


def test_a_locked_subject_is_told_when_the_lock_ends(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    _lock_sms(store, request_at, delivery, handset)
    refused = otp.send_code(
        store, _later(request_at(), seconds=60), factor=Factor.SMS, delivery=delivery
    )
    assert refused.reason == "locked_out" and refused.locked_until is not None
    expected = (refused.locked_until - _later(request_at(), seconds=60).now).total_seconds()
    assert refused.retry_after == expected


# -- failover (in process; real gateways in the integration tier) ------------------------


def test_failover_reports_each_failure_then_the_delivery(
    store: VerifierStore, request_at: RequestAt, handset: Handset
) -> None:
    echo = Broken("primary", DeliveryFailed("provider_unavailable", "HTTP 500: ?"))
    crash = Broken("crashing", RuntimeError("secret stuff"))
    delivery = FailoverDelivery([echo, crash, handset])
    _enrolled(store, request_at(), FailoverDelivery([handset]), handset)
    sent = otp.send_code(store, request_at(), factor=Factor.SMS, delivery=delivery)
    assert (sent.sent, sent.provider) == (True, "handset")
    assert [(a.provider, a.delivered, a.reason) for a in sent.attempts] == [
        ("primary", False, "provider_unavailable"),
        ("crashing", False, "provider_error"),
        ("handset", True, None),
    ]
    issued, *rest = sent.events
    assert issued.type == "mfa.challenge.issued"
    assert [
        (e.type, e.data.provider, getattr(e.data, "failover_provider", None))  # type: ignore[attr-defined]
        for e in rest
    ] == [
        ("mfa.challenge.delivery_failed", "primary", "crashing"),
        ("mfa.challenge.delivery_failed", "crashing", "handset"),
        ("mfa.challenge.sent", "handset", None),
    ]
    assert rest[1].data.provider_error == "RuntimeError"  # type: ignore[attr-defined]
    assert _events(store)[-4:] == list(sent.events)


def test_provider_details_never_repeat_the_message(request_at: RequestAt) -> None:
    message = Message(Channel.SMS, MOBILE_E164, "Your code is 123456.", secrets=("123456",))
    echoing = Broken(
        "echo",
        DeliveryFailed("Bad Gateway!", f"rejected {{'to': '{MOBILE_E164}', 'code': 123456}}"),
    )
    report = FailoverDelivery([echoing]).deliver(message)
    (attempt,) = report.attempts
    assert (attempt.reason, report.delivered) == ("provider_error", None)
    assert attempt.detail == "rejected {'to': '[redacted]', 'code': [redacted]}"
    assert "123456" not in repr(message) and MOBILE_E164 not in repr(message)


def test_when_every_provider_fails_the_code_is_dead(
    store: VerifierStore, request_at: RequestAt, handset: Handset
) -> None:
    _enrolled(store, request_at(), FailoverDelivery([handset]), handset)
    failing = FailoverDelivery(
        [
            Broken("primary", DeliveryFailed("timeout", "no answer")),
            Broken("secondary", DeliveryFailed("rejected", "HTTP 400: unknown number")),
        ]
    )
    result = otp.send_code(store, request_at(), factor=Factor.SMS, delivery=failing)
    assert (result.sent, result.reason, result.provider) == (False, "delivery_failed", None)
    assert [(e.type, getattr(e.data, "reason", None)) for e in result.events] == [
        ("mfa.challenge.issued", None),
        ("mfa.challenge.delivery_failed", "timeout"),
        ("mfa.challenge.delivery_failed", "rejected"),
    ]
    assert result.events[-1].data.failover_provider is None  # type: ignore[attr-defined]
    assert result.challenge_id is not None
    dead = otp.verify_code(store, request_at(), challenge_id=result.challenge_id, code="123456")
    assert dead.reason == "undelivered"


# -- junk --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "junk",
    [
        "",
        " ",
        "abcdef",
        "12345",
        "1234567",
        "12 345",
        "１２３４５６",
        "٣٤٥٦٧٨",
        "12345\x00",
        "9" * 1_000_000,
        "-12345",
        "+123456",
        "1e5000",
    ],
)
def test_malformed_codes_are_refused_and_counted(
    store: VerifierStore,
    request_at: RequestAt,
    delivery: FailoverDelivery,
    handset: Handset,
    junk: str,
) -> None:
    _enrolled(store, request_at(), delivery, handset)
    sent = otp.send_code(store, request_at(), factor=Factor.SMS, delivery=delivery)
    assert sent.challenge_id is not None
    verdict = otp.verify_code(store, request_at(), challenge_id=sent.challenge_id, code=junk)
    assert (verdict.accepted, verdict.reason) == (False, "malformed_code")
    assert verdict.event is not None
    assert verdict.event.data.attempts_remaining == CUSTOMER.otp_max_failures - 1  # type: ignore[attr-defined]
    right = otp.verify_code(
        store, _later(request_at(), seconds=2), challenge_id=sent.challenge_id, code=handset.code()
    )
    assert right.accepted


@given(junk=st.one_of(st.text(max_size=80), st.binary(max_size=20).map(repr), st.none()))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_answer_is_judged_never_raised(
    store: VerifierStore, request_at: RequestAt, junk: object
) -> None:
    handset = Handset()
    delivery = FailoverDelivery([handset])
    request = request_at(subject=f"u-junk-{next(_subjects)}")
    _enrolled(store, request, delivery, handset)
    sent = otp.send_code(store, request, factor=Factor.SMS, delivery=delivery)
    assert sent.challenge_id is not None
    verdict = otp.verify_code(store, request, challenge_id=sent.challenge_id, code=junk)  # type: ignore[arg-type]
    if verdict.accepted:
        assert isinstance(junk, str) and junk.strip() == handset.code()
    else:
        assert verdict.reason in {"malformed_code", "invalid_code"}
        assert verdict.event is not None and verdict.event.type == "mfa.verification.failed"


def test_unknown_challenges_are_refused(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    _enrolled(store, request_at(), delivery, handset)
    sent = otp.send_code(store, request_at(), factor=Factor.SMS, delivery=delivery)
    assert sent.challenge_id is not None
    unknown = otp.verify_code(store, request_at(), challenge_id="sms-" + "0" * 32, code="123456")
    assert unknown.reason == "unknown_challenge" and unknown.event is not None
    assert unknown.event.data.challenge_id == "sms-" + "0" * 32  # type: ignore[attr-defined]
    someone_else = otp.verify_code(
        store, request_at(subject="u-2002"), challenge_id=sent.challenge_id, code=handset.code()
    )
    assert someone_else.reason == "unknown_challenge"
    other_tenant = otp.verify_code(
        store, request_at(tenant="globex"), challenge_id=sent.challenge_id, code=handset.code()
    )
    assert other_tenant.reason == "unknown_challenge"
    wrong_factor = otp.verify_code(
        store,
        _later(request_at(), seconds=2),  # not a quick-login lock after the first failure
        challenge_id=sent.challenge_id.replace("sms-", "email-"),
        code=handset.code(),
    )
    assert wrong_factor.reason == "unknown_challenge"
    mine = otp.verify_code(
        store, _later(request_at(), seconds=4), challenge_id=sent.challenge_id, code=handset.code()
    )
    assert mine.accepted


@given(challenge_id=st.one_of(st.text(max_size=200), st.none(), st.integers()))
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_junk_challenge_ids_are_unknown_never_raised(
    store: VerifierStore, request_at: RequestAt, challenge_id: object
) -> None:
    verdict = otp.verify_code(store, request_at(), challenge_id=challenge_id, code="123456")  # type: ignore[arg-type]
    assert (verdict.accepted, verdict.reason) == (False, "unknown_challenge")


# -- at rest -----------------------------------------------------------------------------


def test_no_code_phone_number_or_address_is_stored_in_clear(
    store: VerifierStore, request_at: RequestAt, delivery: FailoverDelivery, handset: Handset
) -> None:
    _enrolled(store, request_at(), delivery, handset)
    _enrolled(store, request_at(), delivery, handset, factor=Factor.EMAIL, destination=EMAIL)
    codes = [handset.code()]
    for seconds, factor in ((0, Factor.SMS), (COOLDOWN, Factor.VOICE), (0, Factor.EMAIL)):
        at = _later(request_at(), seconds=seconds)  # voice reaches the phone: after a cooldown
        assert otp.send_code(store, at, factor=factor, delivery=delivery).sent
        codes.append(handset.code())
    codes += ["".join(re.findall(r"\d", m.text))[:6] for m in handset.received]
    with store.engine.connect() as connection:
        rows = [
            repr(tuple(row))
            for table in (challenges, enrollments)
            for row in connection.execute(sa.select(table))
        ]
    assert len(rows) == 2 + 5  # enrollments; 2 enrollment and 3 sign-in challenges
    dump = raw_dump(store)
    personal = [MOBILE_E164, MOBILE_E164[1:], "15123456789", "Jane.Doe", "jane.doe"]
    for text in [*rows, dump.decode("latin-1")]:
        for value in personal:
            assert value not in text
        for code in set(codes):
            assert not re.search(rf"(?<![0-9a-f]){code}(?![0-9a-f])", text)
