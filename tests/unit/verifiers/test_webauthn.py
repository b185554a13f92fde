"""WebAuthn against a software authenticator: ceremonies, every attack with its reason, junk."""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import cbor2
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse

from factorstream.softauthn import AuthenticatorRefused, SoftAuthenticator, b64url, unb64url
from schemas import Event, decode
from schemas.fields import Channel, PolicyTier
from tests.unit.verifiers.conftest import NOW, raw_dump
from verifiers import webauthn
from verifiers.store import Request, Verdict, VerifierStore
from verifiers.tables import challenges, enrollments, outbox_events

RequestAt = Callable[..., Request]
RP_ID = "login.example.com"
ORIGIN = "https://login.example.com"
REASONS = {
    "locked_out",
    "unknown_challenge",
    "challenge_used",
    "challenge_expired",
    "malformed_response",
    "unknown_credential",
    "credential_subject_mismatch",
    "wrong_ceremony_type",
    "challenge_mismatch",
    "wrong_origin",
    "wrong_rp_id",
    "user_presence_missing",
    "user_verification_missing",
    "bad_signature",
    "sign_count_regression",
    "invalid_response",
}


# -- helpers -----------------------------------------------------------------------------


def events(store: VerifierStore) -> list[Event]:
    """Every event in the outbox, decoded (and so validated) as a consumer would."""
    with store.engine.connect() as connection:
        values = connection.execute(
            sa.select(outbox_events.c.value).order_by(outbox_events.c.seq)
        ).scalars()
        return [decode(value) for value in values]


def last_event(store: VerifierStore) -> Event:
    return events(store)[-1]


def register(
    store: VerifierStore, request: Request, key: SoftAuthenticator, **knobs: Any
) -> tuple[webauthn.RegistrationOptions, Verdict]:
    options = webauthn.begin_registration(
        store,
        request,
        rp_id=RP_ID,
        rp_name="Example",
        user_name=f"{request.subject}@example.com",
        user_display_name=request.subject,
    )
    origin = knobs.pop("origin", ORIGIN)
    credential = key.create(options.options_json, origin, **knobs)
    verdict = webauthn.finish_registration(
        store,
        request,
        challenge_id=options.challenge_id,
        credential_json=credential,
        expected_origin=ORIGIN,
        rp_id=RP_ID,
    )
    return options, verdict


def begin(store: VerifierStore, request: Request) -> webauthn.AuthenticationOptions:
    return webauthn.begin_authentication(store, request, rp_id=RP_ID)


def finish(
    store: VerifierStore, request: Request, challenge_id: str, credential_json: str, **kw: Any
) -> Verdict:
    return webauthn.finish_authentication(
        store,
        request,
        challenge_id=challenge_id,
        credential_json=credential_json,
        expected_origin=ORIGIN,
        rp_id=RP_ID,
        **kw,
    )


def authenticate(
    store: VerifierStore, request: Request, key: SoftAuthenticator, **knobs: Any
) -> Verdict:
    options = begin(store, request)
    origin = knobs.pop("origin", ORIGIN)
    return finish(
        store, request, options.challenge_id, key.get(options.options_json, origin, **knobs)
    )


def assert_refused(store: VerifierStore, verdict: Verdict, reason: str, **fields: Any) -> Event:
    """Refused with ``reason``; the outbox's last event records exactly that."""
    assert not verdict.accepted
    assert verdict.reason == reason
    event = last_event(store)
    assert event.type == "mfa.verification.failed"
    assert event.data.reason == reason
    assert event.data.factor == "webauthn"
    assert verdict.event is not None and verdict.event.id == event.id
    for name, value in fields.items():
        assert getattr(event.data, name) == value, name
    return event


def challenge_row(store: VerifierStore, challenge_id: str) -> Any:
    with store.engine.connect() as connection:
        return connection.execute(
            sa.select(challenges).where(challenges.c.id == challenge_id)
        ).one()


@pytest.fixture
def key() -> SoftAuthenticator:
    return SoftAuthenticator()


@pytest.fixture
def at(request_at: RequestAt) -> RequestAt:
    """Successive business-tier requests (the tier requires user verification), two
    seconds apart, so that failures never trip the lockout's quick-login check."""
    ticks = itertools.count()

    def make(**fields: Any) -> Request:
        fields.setdefault("tier", PolicyTier.BUSINESS)
        return request_at(now=NOW + timedelta(seconds=2 * next(ticks)), **fields)

    return make


@pytest.fixture
def enrolled(store: VerifierStore, at: RequestAt, key: SoftAuthenticator) -> SoftAuthenticator:
    _, verdict = register(store, at(), key)
    assert verdict.accepted
    return key


# -- the ceremonies ----------------------------------------------------------------------


def test_register_then_authenticate_with_user_verification(
    store: VerifierStore, at: RequestAt, key: SoftAuthenticator
) -> None:
    options, verdict = register(store, at(), key)
    creation = json.loads(options.options_json)
    assert creation["authenticatorSelection"]["userVerification"] == "required"
    assert creation["rp"] == {"id": RP_ID, "name": "Example"}
    assert creation["excludeCredentials"] == []
    assert verdict.accepted and verdict.reason is None

    begun = at()
    auth = begin(store, begun)
    request_options = json.loads(auth.options_json)
    (credential,) = key.credentials.values()
    assert request_options["userVerification"] == "required"
    assert [c["id"] for c in request_options["allowCredentials"]] == [
        b64url(credential.credential_id)
    ]
    assert request_options["allowCredentials"][0]["transports"] == ["usb"]
    verdict = finish(store, at(), auth.challenge_id, key.get(auth.options_json, ORIGIN))
    assert verdict.accepted and verdict.reason is None

    started, completed, issued, succeeded = events(store)
    assert started.type == "mfa.enrollment.started"
    assert completed.type == "mfa.enrollment.completed"
    assert completed.data.enrollment_id == started.data.enrollment_id == options.enrollment_id
    assert completed.data.channel == Channel.SECURITY_KEY
    authenticator = completed.data.authenticator
    assert authenticator.aaguid == "00000000-0000-0000-0000-000000000000"
    assert authenticator.attestation == "none"
    assert authenticator.user_verifying is True
    assert authenticator.backup_eligible is False
    assert issued.type == "mfa.challenge.issued"
    assert issued.data.challenge_id == auth.challenge_id
    assert issued.data.channel == Channel.SECURITY_KEY
    assert issued.data.enrollment_id == options.enrollment_id
    assert issued.data.expires_at == auth.expires_at == begun.now + timedelta(minutes=5)
    assert issued.data.max_attempts == 1
    assert succeeded.type == "mfa.verification.succeeded"
    assert succeeded.data.user_verified is True
    assert succeeded.data.sign_count == 1
    assert succeeded.data.enrollment_id == options.enrollment_id
    assert succeeded.data.challenge_id == auth.challenge_id
    assert {e.subject for e in events(store)} == {"u-1001"}

    with store.engine.connect() as connection:
        row = connection.execute(sa.select(enrollments)).one()
    assert row.status == "active" and row.factor == "webauthn"
    assert row.credential_id == b64url(credential.credential_id)
    assert row.sign_count == 1
    assert row.settings["transports"] == ["usb"]
    assert row.settings["attachment"] == "cross-platform"
    closed = challenge_row(store, auth.challenge_id)
    assert closed.closed_reason == "used" and closed.attempts == 1


def test_customer_tier_prefers_but_does_not_require_user_verification(
    store: VerifierStore, request_at: RequestAt, key: SoftAuthenticator
) -> None:
    request = request_at()
    options, verdict = register(store, request, key, user_verified=False)
    creation = json.loads(options.options_json)
    assert creation["authenticatorSelection"]["userVerification"] == "preferred"
    assert verdict.accepted
    verdict = authenticate(store, request, key, user_verified=False)
    assert verdict.accepted
    assert last_event(store).data.user_verified is False


def test_explicit_user_verification_overrides_the_tier(
    store: VerifierStore, request_at: RequestAt, key: SoftAuthenticator
) -> None:
    request = request_at()
    register(store, request, key)
    auth = webauthn.begin_authentication(store, request, rp_id=RP_ID, user_verification="required")
    verdict = finish(
        store, request, auth.challenge_id, key.get(auth.options_json, ORIGIN, user_verified=False)
    )
    assert_refused(store, verdict, "user_verification_missing")


def test_two_credentials_for_one_user_both_work(
    store: VerifierStore, at: RequestAt, enrolled: SoftAuthenticator
) -> None:
    phone = SoftAuthenticator(attachment="platform", transports=("internal",), backup_eligible=True)
    options, verdict = register(store, at(), phone)
    assert verdict.accepted
    excluded = json.loads(options.options_json)["excludeCredentials"]
    assert [unb64url(c["id"]) for c in excluded] == list(enrolled.credentials)
    completed = last_event(store)
    assert completed.data.channel == Channel.PLATFORM_AUTHENTICATOR
    assert completed.data.authenticator.backup_eligible is True

    auth = begin(store, at())
    assert len(json.loads(auth.options_json)["allowCredentials"]) == 2
    issued = last_event(store)
    assert issued.data.channel is None and issued.data.enrollment_id is None
    assert finish(store, at(), auth.challenge_id, phone.get(auth.options_json, ORIGIN)).accepted
    assert authenticate(store, at(), enrolled).accepted
    assert authenticate(store, at(), phone).accepted
    used = {e.data.enrollment_id for e in events(store) if e.type.endswith("succeeded")}
    assert len(used) == 2


def test_every_credential_of_a_subject_shares_one_user_handle(
    store: VerifierStore, at: RequestAt, enrolled: SoftAuthenticator
) -> None:
    other = SoftAuthenticator()
    register(store, at(), other)
    (first,), (second,) = enrolled.credentials.values(), other.credentials.values()
    assert first.user_handle == second.user_handle
    assert len(first.user_handle) == 32


def test_an_authenticator_already_enrolled_is_excluded(
    store: VerifierStore, at: RequestAt, enrolled: SoftAuthenticator
) -> None:
    with pytest.raises(AuthenticatorRefused):
        register(store, at(), enrolled)


def test_authentication_without_credentials_is_misuse(
    store: VerifierStore, request_at: RequestAt
) -> None:
    with pytest.raises(webauthn.NotEnrolledError):
        begin(store, request_at())
    assert events(store) == []


@pytest.mark.parametrize(
    "options",
    [
        {"user_verification": "sometimes"},
        {"timeout": timedelta(0)},
        {"timeout": timedelta(days=1)},
    ],
)
def test_bad_settings_are_misuse(
    store: VerifierStore, request_at: RequestAt, options: dict[str, Any]
) -> None:
    with pytest.raises(webauthn.WebAuthnSettingsError):
        webauthn.begin_registration(
            store,
            request_at(),
            rp_id=RP_ID,
            rp_name="Example",
            user_name="u",
            user_display_name="u",
            **options,
        )


def test_bad_verification_settings_are_misuse(
    store: VerifierStore, at: RequestAt, enrolled: SoftAuthenticator
) -> None:
    auth = begin(store, at())
    assertion = enrolled.get(auth.options_json, ORIGIN)
    with pytest.raises(webauthn.WebAuthnSettingsError):
        finish(store, at(), auth.challenge_id, assertion, on_sign_count_regression="ignore")
    with pytest.raises(webauthn.WebAuthnSettingsError):
        webauthn.finish_authentication(
            store,
            at(),
            challenge_id=auth.challenge_id,
            credential_json=assertion,
            expected_origin=[],
            rp_id=RP_ID,
        )
    assert finish(store, at(), auth.challenge_id, assertion).accepted


def test_several_origins_may_be_expected(
    store: VerifierStore, at: RequestAt, enrolled: SoftAuthenticator
) -> None:
    auth = begin(store, at())
    verdict = webauthn.finish_authentication(
        store,
        at(),
        challenge_id=auth.challenge_id,
        credential_json=enrolled.get(auth.options_json, ORIGIN),
        expected_origin=["https://app.example.com", ORIGIN],
        rp_id=RP_ID,
    )
    assert verdict.accepted


# -- attacks on authentication -----------------------------------------------------------


@pytest.mark.parametrize(
    ("knobs", "reason"),
    [
        ({"origin": "https://login.example.com.evil.test"}, "wrong_origin"),
        ({"origin": "http://login.example.com"}, "wrong_origin"),
        ({"rp_id": "evil.test"}, "wrong_rp_id"),
        ({"tamper_signature": True}, "bad_signature"),
        ({"user_verified": False}, "user_verification_missing"),
        ({"user_present": False}, "user_presence_missing"),
        ({"challenge": b"a challenge from another ceremony"}, "challenge_mismatch"),
        ({"ceremony": "webauthn.create"}, "wrong_ceremony_type"),
        ({"extra_flags": 0x10}, "malformed_response"),  # backed up, but not backup eligible
    ],
)
def test_each_attack_is_refused_with_its_own_reason(
    store: VerifierStore,
    at: RequestAt,
    enrolled: SoftAuthenticator,
    knobs: dict[str, Any],
    reason: str,
) -> None:
    auth = begin(store, at())
    origin = knobs.pop("origin", ORIGIN)
    verdict = finish(
        store, at(), auth.challenge_id, enrolled.get(auth.options_json, origin, **knobs)
    )
    event = assert_refused(store, verdict, reason, challenge_id=auth.challenge_id)
    assert event.data.enrollment_id is not None
    assert challenge_row(store, auth.challenge_id).closed_reason == reason


def test_a_forged_assertion_is_a_bad_signature_whatever_else_it_claims(
    store: VerifierStore, at: RequestAt, enrolled: SoftAuthenticator
) -> None:
    auth = begin(store, at())
    forged = enrolled.get(
        auth.options_json,
        "https://evil.test",
        rp_id="evil.test",
        user_verified=False,
        tamper_signature=True,
    )
    assert_refused(store, finish(store, at(), auth.challenge_id, forged), "bad_signature")


def test_a_challenge_is_used_once(
    store: VerifierStore, at: RequestAt, enrolled: SoftAuthenticator
) -> None:
    auth = begin(store, at())
    assertion = enrolled.get(auth.options_json, ORIGIN)
    assert finish(store, at(), auth.challenge_id, assertion).accepted
    replay = finish(store, at(), auth.challenge_id, assertion)
    assert_refused(store, replay, "challenge_used", challenge_id=auth.challenge_id)
    fresh = enrolled.get(auth.options_json, ORIGIN)
    assert_refused(store, finish(store, at(), auth.challenge_id, fresh), "challenge_used")


def test_a_failed_attempt_consumes_the_challenge(
    store: VerifierStore, at: RequestAt, enrolled: SoftAuthenticator
) -> None:
    auth = begin(store, at())
    wrong = enrolled.get(auth.options_json, "https://evil.test")
    assert_refused(store, finish(store, at(), auth.challenge_id, wrong), "wrong_origin")
    right = enrolled.get(auth.options_json, ORIGIN)
    assert_refused(store, finish(store, at(), auth.challenge_id, right), "challenge_used")


def test_a_challenge_expires(
    store: VerifierStore, request_at: RequestAt, at: RequestAt, enrolled: SoftAuthenticator
) -> None:
    auth = begin(store, at())
    just_in_time = request_at(now=auth.expires_at - timedelta(seconds=1), tier=PolicyTier.BUSINESS)
    assertion = enrolled.get(auth.options_json, ORIGIN)
    assert finish(store, just_in_time, auth.challenge_id, assertion).accepted

    auth = begin(store, at())
    late = request_at(now=auth.expires_at, tier=PolicyTier.BUSINESS)
    verdict = finish(store, late, auth.challenge_id, enrolled.get(auth.options_json, ORIGIN))
    assert_refused(store, verdict, "challenge_expired", challenge_id=auth.challenge_id)
    assert challenge_row(store, auth.challenge_id).closed_reason == "challenge_expired"


def test_unknown_and_foreign_challenges(
    store: VerifierStore, request_at: RequestAt, at: RequestAt, enrolled: SoftAuthenticator
) -> None:
    auth = begin(store, at())
    assertion = enrolled.get(auth.options_json, ORIGIN)
    for challenge_id in ("wac-nope", "x" * 10_000, ""):
        event = assert_refused(
            store, finish(store, at(), challenge_id, assertion), "unknown_challenge"
        )
        assert event.data.challenge_id is None
    other = request_at(subject="u-2002", tier=PolicyTier.BUSINESS)
    assert_refused(store, finish(store, other, auth.challenge_id, assertion), "unknown_challenge")
    assert finish(store, at(), auth.challenge_id, assertion).accepted


def test_sign_count_regression_is_refused_by_default(
    store: VerifierStore, at: RequestAt, enrolled: SoftAuthenticator
) -> None:
    for _ in range(3):
        assert authenticate(store, at(), enrolled).accepted
    for rewound in (3, 1, 0):
        verdict = authenticate(store, at(), enrolled, sign_count=rewound)
        assert_refused(
            store, verdict, "sign_count_regression", sign_count=rewound, previous_sign_count=3
        )
    with store.engine.connect() as connection:
        assert connection.execute(sa.select(enrollments.c.sign_count)).scalar_one() == 3
    assert authenticate(store, at(), enrolled, sign_count=4).accepted


def test_sign_count_regression_can_be_allowed_and_flagged(
    store: VerifierStore, at: RequestAt, enrolled: SoftAuthenticator
) -> None:
    assert authenticate(store, at(), enrolled, sign_count=10).accepted
    auth = begin(store, at())
    clone = enrolled.get(auth.options_json, ORIGIN, sign_count=7)
    verdict = finish(
        store, at(), auth.challenge_id, clone, on_sign_count_regression="allow_and_flag"
    )
    assert verdict.accepted and verdict.reason == "sign_count_regression"
    event = last_event(store)
    assert event.type == "mfa.verification.succeeded" and event.data.sign_count == 7
    assert event.data.flags == ["sign_count_regression"]
    assert event.data.previous_sign_count == 10
    with store.engine.connect() as connection:  # the counter never moves backwards
        assert connection.execute(sa.select(enrollments.c.sign_count)).scalar_one() == 10


def test_authenticators_without_a_counter_are_not_regressions(
    store: VerifierStore, at: RequestAt
) -> None:
    passkey = SoftAuthenticator(counter=False)
    register(store, at(), passkey)
    for _ in range(3):
        verdict = authenticate(store, at(), passkey)
        assert verdict.accepted and verdict.reason is None
    assert last_event(store).data.sign_count == 0


def test_unknown_credential(
    store: VerifierStore, at: RequestAt, enrolled: SoftAuthenticator
) -> None:
    stranger = SoftAuthenticator()
    options = webauthn.begin_registration(
        store, at(), rp_id=RP_ID, rp_name="Example", user_name="x", user_display_name="x"
    )
    stranger.create(options.options_json, ORIGIN)  # never finished: the server never saw it
    (unseen,) = stranger.credentials
    auth = begin(store, at())
    assertion = stranger.get(auth.options_json, ORIGIN, credential_id=unseen)
    verdict = finish(store, at(), auth.challenge_id, assertion)
    event = assert_refused(store, verdict, "unknown_credential", challenge_id=auth.challenge_id)
    assert event.data.enrollment_id is None


def test_another_subjects_credential(
    store: VerifierStore, request_at: RequestAt, at: RequestAt, enrolled: SoftAuthenticator
) -> None:
    mallory = request_at(subject="u-6666", tier=PolicyTier.BUSINESS)
    theirs = SoftAuthenticator()
    assert register(store, mallory, theirs)[1].accepted
    (their_id,) = theirs.credentials
    auth = begin(store, at())
    assertion = theirs.get(auth.options_json, ORIGIN, credential_id=their_id)
    event = assert_refused(
        store, finish(store, at(), auth.challenge_id, assertion), "credential_subject_mismatch"
    )
    assert event.subject == "u-1001" and event.data.enrollment_id is None


def test_another_tenants_credential_is_unknown(
    store: VerifierStore, at: RequestAt, enrolled: SoftAuthenticator
) -> None:
    elsewhere = at(tenant="globex")  # the same subject id, in another tenant
    assert register(store, elsewhere, SoftAuthenticator())[1].accepted
    auth = begin(store, elsewhere)
    (ours,) = enrolled.credentials
    assertion = enrolled.get(auth.options_json, ORIGIN, credential_id=ours)
    verdict = finish(store, elsewhere, auth.challenge_id, assertion)
    assert_refused(store, verdict, "unknown_credential")
    assert last_event(store).tenant == "globex"


def test_a_locked_out_subject_is_refused_before_anything_else(
    store: VerifierStore, at: RequestAt, enrolled: SoftAuthenticator
) -> None:
    for _ in range(5):  # the business tier locks after 5 failures
        authenticate(store, at(), enrolled, origin="https://evil.test")
    auth = begin(store, at())
    verdict = finish(store, at(), auth.challenge_id, enrolled.get(auth.options_json, ORIGIN))
    assert_refused(store, verdict, "locked_out")
    assert verdict.locked_until is not None and verdict.locked_until > NOW
    assert challenge_row(store, auth.challenge_id).closed_reason == "locked_out"


def test_a_failure_py_webauthn_adds_later_is_not_misnamed(
    store: VerifierStore,
    at: RequestAt,
    enrolled: SoftAuthenticator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(**_: Any) -> None:
        raise InvalidAuthenticationResponse("a check a later py_webauthn adds")

    monkeypatch.setattr(webauthn.wa, "verify_authentication_response", refuse)
    assert_refused(store, authenticate(store, at(), enrolled), "invalid_response")


# -- junk --------------------------------------------------------------------------------


def _valid_assertion(
    store: VerifierStore, request: Request, key: SoftAuthenticator
) -> tuple[str, dict[str, Any]]:
    auth = begin(store, request)
    return auth.challenge_id, json.loads(key.get(auth.options_json, ORIGIN))


def _with(assertion: dict[str, Any], path: str, value: Any) -> str:
    doc = json.loads(json.dumps(assertion))
    *parents, leaf = path.split(".")
    target = doc
    for name in parents:
        target = target[name]
    target[leaf] = value
    return json.dumps(doc)


JUNK = [
    "",
    "null",
    "[]",
    '"a string"',
    "{}",
    "not json at all",
    '{"id": 1}',
    "[" * 100_000 + "]" * 100_000,
    "x" * (webauthn.MAX_RESPONSE_CHARS + 1),
    "\ud800",
]
JUNK_FIELDS = [
    ("id", "not-the-raw-id"),
    ("rawId", "@@@"),
    ("rawId", "a"),
    ("id", ""),
    ("type", "password"),
    ("authenticatorAttachment", "telepathic"),
    ("response", None),
    ("response.clientDataJSON", b64url(b"not json")),
    ("response.clientDataJSON", b64url(b'{"type": "webauthn.get"}')),
    ("response.clientDataJSON", b64url(b'{"type":"webauthn.get","challenge":7,"origin":"x"}')),
    ("response.clientDataJSON", 42),
    ("response.authenticatorData", b64url(b"too short")),
    ("response.authenticatorData", "é"),
    ("response.userHandle", 5),
]


@pytest.mark.parametrize("junk", JUNK, ids=range(len(JUNK)))
def test_junk_is_a_malformed_response(
    store: VerifierStore, at: RequestAt, enrolled: SoftAuthenticator, junk: str
) -> None:
    auth = begin(store, at())
    assert_refused(store, finish(store, at(), auth.challenge_id, junk), "malformed_response")


@pytest.mark.parametrize(
    ("path", "value"), JUNK_FIELDS, ids=[f"{p}={v!r}"[:40] for p, v in JUNK_FIELDS]
)
def test_junk_fields_are_a_malformed_response(
    store: VerifierStore, at: RequestAt, enrolled: SoftAuthenticator, path: str, value: Any
) -> None:
    challenge_id, assertion = _valid_assertion(store, at(), enrolled)
    verdict = finish(store, at(), challenge_id, _with(assertion, path, value))
    assert_refused(store, verdict, "malformed_response")


@pytest.mark.parametrize("signature", ["", b64url(b"\x30\x00"), b64url(bytes(72)), "AAAA"])
def test_a_junk_signature_is_a_bad_signature(
    store: VerifierStore, at: RequestAt, enrolled: SoftAuthenticator, signature: str
) -> None:
    challenge_id, assertion = _valid_assertion(store, at(), enrolled)
    verdict = finish(store, at(), challenge_id, _with(assertion, "response.signature", signature))
    assert_refused(store, verdict, "bad_signature")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
ASSERTION_FIELDS = st.sampled_from(
    [
        "id",
        "rawId",
        "type",
        "response",
        "response.clientDataJSON",
        "response.authenticatorData",
        "response.signature",
        "response.userHandle",
        "authenticatorAttachment",
    ]
)
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _fresh_subject(
    store: VerifierStore, request_at: RequestAt
) -> tuple[Request, SoftAuthenticator]:
    """A new enrolled subject per example, so failures never add up to a lockout."""
    request = request_at(subject=f"u-{uuid.uuid4().hex[:12]}", tier=PolicyTier.BUSINESS)
    key = SoftAuthenticator()
    assert register(store, request, key)[1].accepted
    return request, key


@FUZZ
@given(junk=st.one_of(st.text(max_size=200), JSON_VALUES.map(json.dumps)))
def test_any_text_is_refused_without_an_exception(
    store: VerifierStore, request_at: RequestAt, junk: str
) -> None:
    request, _ = _fresh_subject(store, request_at)
    auth = begin(store, request)
    assert_refused(store, finish(store, request, auth.challenge_id, junk), "malformed_response")


@FUZZ
@given(path=ASSERTION_FIELDS, value=JSON_VALUES)
def test_any_damaged_assertion_is_handled(
    store: VerifierStore, request_at: RequestAt, path: str, value: Any
) -> None:
    request, key = _fresh_subject(store, request_at)
    challenge_id, assertion = _valid_assertion(store, request, key)
    verdict = finish(store, request, challenge_id, _with(assertion, path, value))
    if not verdict.accepted:
        assert verdict.reason in REASONS
        assert_refused(store, verdict, verdict.reason or "")
    else:  # only what the signature does not cover may change, and only harmlessly
        assert path in ("response.userHandle", "authenticatorAttachment")
    events(store)  # every event the fuzzing produced decodes against its schema


# -- registration ------------------------------------------------------------------------


def assert_enrollment_failed(store: VerifierStore, verdict: Verdict, reason: str) -> Event:
    assert not verdict.accepted and verdict.reason == reason
    event = last_event(store)
    assert event.type == "mfa.enrollment.failed"
    assert event.data.reason == reason and event.data.factor == "webauthn"
    return event


@pytest.mark.parametrize(
    ("knobs", "reason"),
    [
        ({"origin": "https://evil.test"}, "wrong_origin"),
        ({"rp_id": "evil.test"}, "wrong_rp_id"),
        ({"user_verified": False}, "user_verification_missing"),
        ({"user_present": False}, "user_presence_missing"),
        ({"challenge": b"another"}, "challenge_mismatch"),
        ({"ceremony": "webauthn.get"}, "wrong_ceremony_type"),
        ({"statement": {"sig": b"\x30\x00"}}, "attestation_invalid"),
        ({"fmt": "packed", "statement": {"alg": -7, "sig": b"\x30\x00"}}, "attestation_invalid"),
        ({"fmt": "made-up"}, "attestation_invalid"),
        ({"cose_key": b"\xa0"}, "malformed_response"),
        ({"extra_flags": 0x10}, "malformed_response"),
    ],
)
def test_each_bad_registration_is_refused_with_its_own_reason(
    store: VerifierStore,
    at: RequestAt,
    key: SoftAuthenticator,
    knobs: dict[str, Any],
    reason: str,
) -> None:
    options, verdict = register(store, at(), key, **knobs)
    event = assert_enrollment_failed(store, verdict, reason)
    assert event.data.enrollment_id == options.enrollment_id
    with store.engine.connect() as connection:
        row = connection.execute(sa.select(enrollments)).one()
    assert row.status == "pending" and row.secret is None
    assert challenge_row(store, options.challenge_id).closed_reason == reason


def _cose(alg: int, x: bytes, y: bytes) -> bytes:
    key: dict[int, Any] = {1: 2, 3: alg, -1: 1, -2: x}
    key[-3] = y
    return cbor2.dumps(key)


def test_unsupported_algorithms_and_unusable_keys_are_refused(
    store: VerifierStore, at: RequestAt, key: SoftAuthenticator
) -> None:
    _, verdict = register(store, at(), key, cose_key=_cose(-999, bytes(32), bytes(32)))
    assert_enrollment_failed(store, verdict, "unsupported_algorithm")
    _, verdict = register(store, at(), key, cose_key=_cose(-7, bytes(32), bytes(32)))
    assert_enrollment_failed(store, verdict, "invalid_public_key")  # not a point on P-256


def test_a_registration_challenge_is_used_once_and_expires(
    store: VerifierStore, request_at: RequestAt, at: RequestAt, key: SoftAuthenticator
) -> None:
    options = webauthn.begin_registration(
        store, at(), rp_id=RP_ID, rp_name="Example", user_name="u", user_display_name="u"
    )
    credential = key.create(options.options_json, ORIGIN)
    common = {"expected_origin": ORIGIN, "rp_id": RP_ID, "challenge_id": options.challenge_id}
    late = request_at(now=options.expires_at, tier=PolicyTier.BUSINESS)
    verdict = webauthn.finish_registration(store, late, credential_json=credential, **common)
    assert_enrollment_failed(store, verdict, "challenge_expired")
    verdict = webauthn.finish_registration(store, at(), credential_json=credential, **common)
    assert_enrollment_failed(store, verdict, "challenge_used")
    common["challenge_id"] = "wac-unknown"
    verdict = webauthn.finish_registration(store, at(), credential_json=credential, **common)
    assert (
        assert_enrollment_failed(store, verdict, "unknown_challenge").data.enrollment_id
        == webauthn.UNKNOWN_ENROLLMENT
    )


@pytest.mark.parametrize(
    "junk", ["", "{}", '{"id": "x", "rawId": "x", "response": {}}', "[" * 50_000]
)
def test_junk_registrations_are_malformed(store: VerifierStore, at: RequestAt, junk: str) -> None:
    request = at()
    options = webauthn.begin_registration(
        store, request, rp_id=RP_ID, rp_name="Example", user_name="u", user_display_name="u"
    )
    verdict = webauthn.finish_registration(
        store,
        request,
        challenge_id=options.challenge_id,
        credential_json=junk,
        expected_origin=ORIGIN,
        rp_id=RP_ID,
    )
    assert_enrollment_failed(store, verdict, "malformed_response")


def test_a_credential_registers_once(
    store: VerifierStore, request_at: RequestAt, at: RequestAt, enrolled: SoftAuthenticator
) -> None:
    (victims,) = enrolled.credentials
    mallory = request_at(subject="u-6666", tier=PolicyTier.BUSINESS)
    _, verdict = register(store, mallory, enrolled, credential_id=victims)
    assert_enrollment_failed(store, verdict, "credential_already_registered")


def test_a_registration_failure_py_webauthn_adds_later_is_not_misnamed(
    store: VerifierStore, at: RequestAt, key: SoftAuthenticator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(**_: Any) -> None:
        raise InvalidRegistrationResponse("a check a later py_webauthn adds")

    monkeypatch.setattr(webauthn.wa, "verify_registration_response", refuse)
    assert_enrollment_failed(store, register(store, at(), key)[1], "invalid_response")


# -- at rest -----------------------------------------------------------------------------


def test_the_database_holds_no_public_key_in_clear(
    store: VerifierStore, at: RequestAt, enrolled: SoftAuthenticator
) -> None:
    other = SoftAuthenticator()
    register(store, at(), other)
    assert authenticate(store, at(), enrolled).accepted
    dump = raw_dump(store)
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(enrollments)).all()
    assert len(rows) == 2
    for credential in [*enrolled.credentials.values(), *other.credentials.values()]:
        cose, point = credential.cose_public_key, credential.public_point
        for secret in (cose, point, point[:32], point[32:]):
            for form in (
                secret,
                secret.hex().encode(),
                base64.b64encode(secret),
                b64url(secret).encode(),
            ):
                assert form not in dump
        (row,) = [r for r in rows if r.credential_id == b64url(credential.credential_id)]
        assert store.box.open(row.secret, row=f"enrollments:{row.id}") == cose
