"""SMS and e-mail codes through the MFA service, delivered for real: e-mail over SMTP to
aiosmtpd, SMS to a JSON gateway on localhost (the servers of the delivery tests). The code
a test enters is always the one the server received."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from schemas.fields import Factor, PolicyTier
from tests.integration.test_otp_delivery import (  # noqa: F401 - fixtures used by name
    Gateway,
    Mailbox,
    _accepted,
    _echo,
    gateway,
    mailbox,
)
from verifiers.policy import tier_policy
from verifiers.service.api import create_app
from verifiers.service.server import open_parts
from verifiers.store import VerifierStore

from .conftest import Clock, Service, service_config, start_server, stop_server
from .test_api import events

ADDRESS = "jane.doe@example.com"
MOBILE = "+49 1512 3456789"
MailboxAt = tuple[Mailbox, int]


@pytest.fixture
def sms(gateway: Callable[..., Gateway]) -> Gateway:  # noqa: F811
    return gateway(200, _accepted("gw-1"))


@pytest.fixture
def delivering(
    tmp_path: Path,
    clock: Clock,
    mailbox: MailboxAt,  # noqa: F811
    sms: Gateway,
) -> Iterator[Service]:
    """The service with a real SMTP relay and SMS gateway behind it."""
    config = service_config(
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=mailbox[1],
        smtp_sender="no-reply@mfa.test",
        sms_gateway_url=sms.url,
    )
    parts = open_parts(config, clock=clock)
    running = start_server(create_app(parts))
    try:
        yield Service("127.0.0.1", running.port, parts, clock)
    finally:
        stop_server(running)


def enrol(service: Service, token: str, subject: str, factor: str, destination: str) -> str:
    base = f"/v1/subjects/{subject}/otp"
    started = service.call(
        "POST", f"{base}/enrollments", {"factor": factor, "destination": destination}, token=token
    )
    assert started.status == 201, started.body
    return str(started.json["enrollment_id"])


def test_an_email_code_enrols_and_steps_up_over_real_smtp(
    delivering: Service,
    mailbox: MailboxAt,  # noqa: F811
) -> None:
    service, box = delivering, mailbox[0]
    token = service.client("acme", audience="https://shop.example")
    base = "/v1/subjects/jane/otp"
    enrollment_id = enrol(service, token, "jane", "email", ADDRESS)

    sent = service.call(
        "POST", f"{base}/send", {"factor": "email", "enrollment_id": enrollment_id}, token=token
    )
    assert (sent.status, sent.json["purpose"]) == (200, "enroll"), sent.body
    confirmed = service.call(
        "POST", f"{base}/enrollments/{enrollment_id}/confirm", {"code": box.code()}, token=token
    )
    assert confirmed.status == 200, confirmed.body
    assert box.messages[-1]["To"] == ADDRESS

    service.clock.advance(seconds=31)  # the e-mail cooldown after the enrollment code
    signin = service.call("POST", f"{base}/send", {"factor": "email"}, token=token)
    assert (signin.status, signin.json["purpose"]) == (200, "authenticate"), signin.body
    verified = service.call(
        "POST",
        f"{base}/verify",
        {"challenge_id": signin.json["challenge_id"], "code": box.code()},
        token=token,
    )

    assert verified.status == 200, verified.body
    assert verified.json["amr"] == ["mfa"]  # RFC 8176 has no e-mail method
    kinds = [e["type"] for e in events(service)]
    assert kinds.count("mfa.challenge.sent") == 2
    assert kinds[-1] == "mfa.verification.succeeded"


def test_an_sms_code_steps_up_with_amr_sms_and_a_resend_too_soon_is_429_with_retry_after(
    delivering: Service, sms: Gateway
) -> None:
    service = delivering
    token = service.client("acme")
    base = "/v1/subjects/sam/otp"
    enrollment_id = enrol(service, token, "sam", "sms", MOBILE)
    service.call(
        "POST", f"{base}/send", {"factor": "sms", "enrollment_id": enrollment_id}, token=token
    )
    service.call(
        "POST", f"{base}/enrollments/{enrollment_id}/confirm", {"code": sms.code()}, token=token
    )
    service.clock.advance(seconds=31)

    first = service.call("POST", f"{base}/send", {"factor": "sms"}, token=token)
    again = service.call("POST", f"{base}/send", {"factor": "sms"}, token=token)
    verified = service.call(
        "POST",
        f"{base}/verify",
        {"challenge_id": first.json["challenge_id"], "code": sms.code()},
        token=token,
    )

    assert first.status == 200 and sms.received[-1][0]["to"] == "+4915123456789"
    assert (again.status, again.json["error"]) == (429, "resend_cooldown")
    assert again.headers["retry-after"] == str(again.json["retry_after"])
    assert 0 < int(again.headers["retry-after"]) <= 60
    assert verified.status == 200 and verified.json["amr"] == ["sms", "mfa"]
    refused = [e for e in events(service) if e["type"] == "mfa.verification.failed"]
    assert [e["data"]["reason"] for e in refused] == ["resend_cooldown"]  # type: ignore[index]


def test_wrong_codes_in_quick_succession_lock_and_then_no_code_is_sent(
    delivering: Service, sms: Gateway
) -> None:
    service = delivering
    token = service.client("acme")
    base = "/v1/subjects/lou/otp"
    enrollment_id = enrol(service, token, "lou", "sms", MOBILE)
    service.call(
        "POST", f"{base}/send", {"factor": "sms", "enrollment_id": enrollment_id}, token=token
    )
    service.call(
        "POST", f"{base}/enrollments/{enrollment_id}/confirm", {"code": sms.code()}, token=token
    )
    service.clock.advance(seconds=31)
    challenge_id = service.call("POST", f"{base}/send", {"factor": "sms"}, token=token).json[
        "challenge_id"
    ]
    wrong = "000000" if sms.code() != "000000" else "111111"

    answers = [
        service.call(
            "POST", f"{base}/verify", {"challenge_id": challenge_id, "code": wrong}, token=token
        )
        for _ in range(6)
    ]
    sent = len(sms.received)
    locked_send = service.call("POST", f"{base}/send", {"factor": "sms"}, token=token)

    statuses = [(a.status, a.json["error"]) for a in answers]
    assert statuses[0] == (403, "invalid_code")
    assert statuses[-1] == (423, "locked_out")
    assert (locked_send.status, locked_send.json["error"]) == (423, "locked_out")
    assert int(locked_send.headers["retry-after"]) > 0
    assert len(sms.received) == sent  # nothing reached the phone


def test_a_tier_without_the_factor_refuses_it_on_every_route(delivering: Service) -> None:
    service = delivering
    token = service.client("acme")
    enrol(service, token, "vic", "sms", MOBILE)
    base = "/v1/subjects/vic/otp"
    voice = {"tier": "customer"}  # no tier accepts voice calls
    answers = [
        service.call(
            "POST",
            f"{base}/enrollments",
            {**voice, "factor": "voice", "destination": MOBILE},
            token=token,
        ),
        service.call("POST", f"{base}/send", {**voice, "factor": "voice"}, token=token),
        service.call(
            "POST",
            f"{base}/verify",
            {**voice, "challenge_id": "voice-" + "0" * 32, "code": "123456"},
            token=token,
        ),
        service.call(
            "POST",
            f"{base}/enrollments/voice-{'0' * 32}/confirm",
            {**voice, "code": "123456"},
            token=token,
        ),
        # the admin tier takes SMS only as a fallback, and no e-mail at all
        service.call("POST", f"{base}/send", {"tier": "admin", "factor": "email"}, token=token),
    ]
    assert [(a.status, a.json["error"]) for a in answers] == [(403, "factor_not_allowed")] * 5


def test_bad_code_requests_get_4xx_never_500(
    delivering: Service,
    service: Service,
    gateway: Callable[..., Gateway],  # noqa: F811
) -> None:
    token, other = delivering.client("acme"), delivering.client("globex")
    enrollment_id = enrol(delivering, token, "ann", "sms", MOBILE)
    base = "/v1/subjects/ann/otp"
    json_type = {"Content-Type": "application/json"}
    answers = {
        "bad_phone": delivering.call(
            "POST", f"{base}/enrollments", {"factor": "sms", "destination": "+1 555"}, token=token
        ),
        "bad_email": delivering.call(
            "POST",
            f"{base}/enrollments",
            {"factor": "email", "destination": "not-an-email"},
            token=token,
        ),
        "bad_factor": delivering.call(
            "POST", f"{base}/enrollments", {"factor": "fax", "destination": MOBILE}, token=token
        ),
        "unknown_subject": delivering.call(
            "POST", "/v1/subjects/nobody/otp/send", {"factor": "sms"}, token=token
        ),
        "other_tenant": delivering.call("POST", f"{base}/send", {"factor": "sms"}, token=other),
        "not_enrolled": delivering.call("POST", f"{base}/send", {"factor": "email"}, token=token),
        "no_active_phone": delivering.call("POST", f"{base}/send", {"factor": "sms"}, token=token),
        "unknown_challenge": delivering.call(
            "POST", f"{base}/verify", {"challenge_id": "sms-" + "0" * 32, "code": "1"}, token=token
        ),
        "junk_challenge": delivering.call(
            "POST", f"{base}/verify", {"challenge_id": "../etc", "code": "1"}, token=token
        ),
        "unknown_enrollment": delivering.call(
            "POST", f"{base}/enrollments/sms-{'f' * 32}/confirm", {"code": "1"}, token=token
        ),
        "malformed_json": delivering.call(
            "POST", f"{base}/send", raw=b"{factor", headers=json_type, token=token
        ),
        "wrong_type": delivering.call(
            "POST",
            f"{base}/send",
            raw=b"factor=sms",
            token=token,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        "oversized": delivering.call(
            "POST", f"{base}/send", {"factor": "sms", "application": "x" * 20000}, token=token
        ),
    }
    expected = {
        "bad_phone": (422, "invalid_destination"),
        "bad_email": (422, "invalid_destination"),
        "bad_factor": (422, "invalid_request"),
        "unknown_subject": (404, "unknown_subject"),
        "other_tenant": (404, "unknown_subject"),
        "not_enrolled": (404, "not_enrolled"),
        "no_active_phone": (404, "not_enrolled"),
        "unknown_challenge": (404, "unknown_challenge"),
        "junk_challenge": (404, "unknown_challenge"),
        "unknown_enrollment": (404, "unknown_enrollment"),
        "malformed_json": (400, "malformed_json"),
        "wrong_type": (415, "unsupported_media_type"),
        "oversized": (413, "body_too_large"),
    }
    assert {name: (a.status, a.json["error"]) for name, a in answers.items()} == expected
    assert "+1 555" not in answers["bad_phone"].body.decode()

    # a gateway that fails: 502; a service with no provider for the channel: 503
    failing = gateway(500, _echo)
    delivering.parts.delivery.providers[1].url = failing.url  # type: ignore[union-attr]
    undelivered = delivering.call(
        "POST", f"{base}/send", {"factor": "sms", "enrollment_id": enrollment_id}, token=token
    )
    assert (undelivered.status, undelivered.json["error"]) == (502, "delivery_failed")
    bare = service.client("acme")
    enrol(service, bare, "ann", "sms", MOBILE)
    unavailable = service.call("POST", f"{base}/send", {"factor": "sms"}, token=bare)
    assert (unavailable.status, unavailable.json["error"]) == (503, "channel_unavailable")


def test_a_voice_code_steps_up_with_amr_tel_where_the_tier_takes_voice(
    delivering: Service, sms: Gateway
) -> None:
    parts = delivering.parts
    with_voice = {
        **parts.store.tiers,
        PolicyTier.BUSINESS: tier_policy(
            PolicyTier.BUSINESS, required_factors=(Factor.TOTP,), fallback_factors=(Factor.VOICE,)
        ),
    }
    store = VerifierStore(parts.store.engine, parts.store.box, source="urn:test", tiers=with_voice)
    voice_parts = dataclasses.replace(parts, store=store)
    running = start_server(create_app(voice_parts))
    try:
        service = Service("127.0.0.1", running.port, voice_parts, delivering.clock)
        token = service.client("acme")
        base = "/v1/subjects/val/otp"
        tier = {"tier": "business"}
        started = service.call(
            "POST",
            f"{base}/enrollments",
            {**tier, "factor": "voice", "destination": MOBILE},
            token=token,
        )
        enrollment_id = started.json["enrollment_id"]
        service.call(
            "POST",
            f"{base}/send",
            {**tier, "factor": "voice", "enrollment_id": enrollment_id},
            token=token,
        )
        spoken = sms.received[-1][0]
        code = "".join(spoken["body"].split("code is ")[1].split(".")[0].split(", "))
        service.call(
            "POST",
            f"{base}/enrollments/{enrollment_id}/confirm",
            {**tier, "code": code},
            token=token,
        )
        service.clock.advance(seconds=31)
        sent = service.call("POST", f"{base}/send", {**tier, "factor": "voice"}, token=token)
        code = "".join(sms.received[-1][0]["body"].split("code is ")[1].split(".")[0].split(", "))
        verified = service.call(
            "POST",
            f"{base}/verify",
            {**tier, "challenge_id": sent.json["challenge_id"], "code": code},
            token=token,
        )
    finally:
        stop_server(running)
    assert spoken["channel"] == "voice"
    assert verified.status == 200, verified.body
    assert verified.json["amr"] == ["tel", "mfa"]
