"""Trusted devices through the real HTTP service, attacked: a stolen token from another
device, another tenant's token and assertion, replay after revocation and erasure, expiry
by the clock, a subject the stream locked or an IP it blocked, a stale or reused
assertion, a recovery code's assertion, the admin tier."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyotp

from schemas import new_event
from schemas import payloads as p
from schemas.fields import LockoutScope
from verifiers import trusted_devices
from verifiers.service.server import forget_devices
from verifiers.service.stream_view import StreamView

from .conftest import Service
from .test_api import events
from .test_assess import streamed, view

__all__ = ["streamed", "view"]  # the fixtures, re-used from test_assess

LAPTOP = "laptop-fp-1"
PATH = "/v1/subjects/alice/trusted-devices"


def step_up(service: Service, token: str, authenticator: pyotp.TOTP, **context: Any) -> str:
    """A TOTP step-up of alice; its assertion."""
    answer = service.call(
        "POST",
        "/v1/subjects/alice/totp/verify",
        {"code": authenticator.at(service.clock()), **context},
        token=token,
    )
    assert answer.status == 200, answer.body
    service.clock.advance(seconds=30)
    assertion: str = answer.json["assertion"]
    return assertion


def trust(
    service: Service, token: str, assertion: str, device: str = LAPTOP, **context: Any
) -> Any:
    body = {"assertion": assertion, "device_id": device, "device_name": "laptop", **context}
    return service.call("POST", PATH, body, token=token)


def trusted_token(service: Service, token: str) -> str:
    authenticator = service.enrol_totp(token, "alice")
    answer = trust(service, token, step_up(service, token, authenticator))
    assert answer.status == 201, answer.body
    device_token: str = answer.json["device_token"]
    return device_token


def assess(service: Service, token: str, **context: Any) -> Any:
    answer = service.call("POST", "/v1/assess", {"subject": "alice", **context}, token=token)
    assert answer.status == 200, answer.body
    return answer.json


def test_a_trusted_device_skips_mfa_and_only_with_its_token(service: Service) -> None:
    token = service.client("acme")
    device_token = trusted_token(service, token)

    remembered = assess(service, token, device_id=LAPTOP, device_token=device_token)
    forgotten = assess(service, token, device_id=LAPTOP)

    assert remembered["mfa"]["required"] is False
    assert remembered["mfa"]["reasons"] == ["trusted_device"]
    assert remembered["trusted_device"]["trusted"] is True
    assert forgotten["mfa"]["required"] is True and forgotten["trusted_device"] is None
    kinds = [e["type"] for e in events(service)]
    assert "device.trusted" in kinds and "device.trust_refused" not in kinds
    trusted_event = next(e for e in events(service) if e["type"] == "device.trusted")
    assert trusted_event["data"]["client"]["device"] == {"id": LAPTOP, "trusted": True}
    required = [e for e in events(service) if e["type"] == "mfa.required"]
    assert required[0]["data"]["client"]["device"]["trusted"] is True
    assert device_token not in str(events(service))


def test_a_stolen_token_from_another_device_is_refused_and_ends_the_trust(
    service: Service,
) -> None:
    token = service.client("acme")
    device_token = trusted_token(service, token)

    thief = assess(service, token, device_id="thief-fp-9", device_token=device_token)
    no_binding = assess(service, token, device_token=device_token)
    owner = assess(service, token, device_id=LAPTOP, device_token=device_token)

    assert thief["mfa"]["required"] and thief["trusted_device"]["reason"] == "wrong_device"
    assert no_binding["trusted_device"]["reason"] == "wrong_device"
    assert owner["mfa"]["required"] and owner["trusted_device"]["reason"] == "revoked"
    refused = [e["data"]["reason"] for e in events(service) if e["type"] == "device.trust_refused"]
    assert refused == ["wrong_device", "wrong_device", "revoked"]
    revoked = [e["data"]["reason"] for e in events(service) if e["type"] == "device.revoked"]
    assert revoked == ["presented_from_other_device"]


def test_another_tenants_token_and_assertion_are_refused(service: Service) -> None:
    acme = service.client("acme")
    globex = service.client("globex")
    device_token = trusted_token(service, acme)
    theirs = service.enrol_totp(globex, "alice")  # globex has an alice too
    their_assertion = step_up(service, globex, theirs)

    crossed = assess(service, globex, device_id=LAPTOP, device_token=device_token)
    with_theirs = trust(service, acme, their_assertion)
    other_subject = service.call(
        "POST",
        "/v1/subjects/bob/trusted-devices",
        {"assertion": their_assertion, "device_id": LAPTOP},
        token=globex,
    )

    assert crossed["mfa"]["required"] and crossed["trusted_device"] == {
        "trusted": False,
        "reason": "wrong_subject",
        "trust_id": None,
        "expires_at": None,
    }
    assert with_theirs.status == 403 and with_theirs.json["error"] == "invalid_assertion"
    assert other_subject.status == 404  # bob is unknown in globex
    assert assess(service, acme, device_id=LAPTOP, device_token=device_token)["trusted_device"][
        "trusted"
    ]


def test_replay_after_revocation_is_refused_and_the_list_says_revoked(service: Service) -> None:
    token = service.client("acme")
    device_token = trusted_token(service, token)
    listed = service.call("GET", PATH, token=token).json["devices"]
    trust_id = listed[0]["trust_id"]
    other = service.client("globex")

    foreign = service.call("DELETE", f"{PATH}/{trust_id}", token=other)
    revoked = service.call("DELETE", f"{PATH}/{trust_id}", token=token)
    replay = assess(service, token, device_id=LAPTOP, device_token=device_token)
    again = service.call("DELETE", f"{PATH}/{trust_id}", token=token)
    after = service.call("GET", PATH, token=token).json["devices"]

    assert [d["status"] for d in listed] == ["active"] and listed[0]["device_name"] == "laptop"
    assert foreign.status == 404
    assert revoked.status == 204
    assert replay["mfa"]["required"] and replay["trusted_device"]["reason"] == "revoked"
    assert again.status == 404 and again.json["error"] == "unknown_trusted_device"
    assert [(d["status"], d["revoked_reason"]) for d in after] == [("revoked", "subject_request")]
    assert "device_token" not in str(after) and device_token not in str(after)


def test_revoking_every_device_and_an_erasure_end_trust_at_once(service: Service) -> None:
    token = service.client("acme")
    first = trusted_token(service, token)
    all_ended = service.call("DELETE", PATH, token=token)
    assert all_ended.status == 200 and all_ended.json == {"revoked": 1}
    assert assess(service, token, device_id=LAPTOP, device_token=first)["mfa"]["required"]

    authenticator = pyotp.TOTP(_secret_of(service))
    answer = trust(service, token, step_up(service, token, authenticator))
    second = answer.json["device_token"]
    assert assess(service, token, device_id=LAPTOP, device_token=second)["trusted_device"][
        "trusted"
    ]
    trusted_devices.forget(
        service.parts.store,
        tenant="acme",
        subject="alice",
        now=service.clock(),
        requested_by="dpo-1",
    )
    erased = assess(service, token, device_id=LAPTOP, device_token=second)

    assert erased["mfa"]["required"] and erased["trusted_device"]["reason"] == "unknown_token"
    assert service.call("GET", PATH, token=token).json == {"devices": []}


def _secret_of(service: Service) -> str:
    """alice's TOTP seed, from the store (the test's authenticator was made in a helper)."""
    import sqlalchemy as sa

    from verifiers.tables import enrollments

    with service.parts.store.engine.connect() as connection:
        row = connection.execute(
            sa.select(enrollments.c.id, enrollments.c.secret).where(
                enrollments.c.subject == "alice", enrollments.c.factor == "totp"
            )
        ).one()
    return service.parts.store.open_enrollment(row.id, row.secret).decode()


def test_a_trust_expires_by_the_clock(service: Service) -> None:
    token = service.client("acme")
    device_token = trusted_token(service, token)

    service.clock.advance(days=30, seconds=-60)
    still = assess(service, token, device_id=LAPTOP, device_token=device_token)
    service.clock.advance(seconds=60)
    expired = assess(service, token, device_id=LAPTOP, device_token=device_token)

    assert not still["mfa"]["required"]
    assert expired["mfa"]["required"] and expired["trusted_device"]["reason"] == "expired"


def test_a_subject_the_stream_locked_or_an_ip_it_blocked_is_not_let_through(
    streamed: Service, view: StreamView
) -> None:
    token = streamed.client("acme")
    device_token = trusted_token(streamed, token)
    now = streamed.clock()

    def streamed_event(payload: p.Payload) -> Any:
        return new_event(
            payload,
            source="factorstream://test",
            tenant="acme",
            subject="alice",
            correlationid="c-lock",
            now=now,
        )

    view.apply(
        [
            streamed_event(
                p.IpBlockApplied(
                    ip="198.51.100.66",
                    reason="password_spray",
                    blocked_until=now + timedelta(minutes=15),
                    failures=50,
                    distinct_subjects=20,
                )
            )
        ]
    )
    blocked = assess(
        streamed, token, device_id=LAPTOP, device_token=device_token, ip="198.51.100.66"
    )
    view.apply(
        [
            streamed_event(
                p.LockoutApplied(
                    scope=LockoutScope.SUBJECT,
                    reason="stream_lock",
                    failures=10,
                    locked_until=now + timedelta(minutes=15),
                )
            )
        ]
    )
    locked = assess(streamed, token, device_id=LAPTOP, device_token=device_token)
    streamed.clock.advance(minutes=16)
    unlocked = assess(streamed, token, device_id=LAPTOP, device_token=device_token)

    assert blocked["mfa"]["required"] and blocked["level"] == "high"
    assert blocked["trusted_device"]["reason"] == "ip_blocked"
    assert locked["mfa"]["required"] and locked["level"] == "high"
    assert locked["trusted_device"]["reason"] == "locked_out"
    assert {f["factor"] for f in locked["factors"]} >= {"subject_locked"}
    assert not unlocked["mfa"]["required"] and unlocked["trusted_device"]["trusted"]


def test_only_a_fresh_unused_mfa_assertion_of_a_tier_that_trusts_devices_trusts_one(
    service: Service,
) -> None:
    token = service.client("acme")
    authenticator = service.enrol_totp(token, "alice")
    used = step_up(service, token, authenticator)
    assert trust(service, token, used).status == 201

    reused = trust(service, token, used, device="phone-fp-2")
    stale_assertion = step_up(service, token, authenticator)
    service.clock.advance(minutes=6)
    stale = trust(service, token, stale_assertion)
    forged = trust(service, token, used[:-4] + ("AAAA" if not used.endswith("AAAA") else "BBBB"))
    admin = trust(service, token, step_up(service, token, authenticator), tier="admin")
    codes = service.call("POST", "/v1/subjects/alice/recovery-codes", token=token).json["codes"]
    recovered = service.call(
        "POST", "/v1/subjects/alice/recovery-codes/verify", {"code": codes[0]}, token=token
    )
    by_recovery = trust(service, token, recovered.json["assertion"])

    assert reused.status == 409 and reused.json["error"] == "assertion_used"
    assert stale.status == 403 and stale.json["error"] == "invalid_assertion"
    assert forged.status == 403 and forged.json["error"] == "invalid_assertion"
    assert admin.status == 403 and admin.json["error"] == "tier_not_trusted"
    assert by_recovery.status == 403 and by_recovery.json["error"] == "invalid_assertion"
    assert len(service.call("GET", PATH, token=token).json["devices"]) == 1


def test_an_erasure_the_stream_view_reads_ends_the_trusts_made_before_it(
    streamed: Service, view: StreamView
) -> None:
    token = streamed.client("acme")
    device_token = trusted_token(streamed, token)
    view.on_erased = forget_devices(streamed.parts.store)
    erasure = new_event(
        p.SubjectErased(requested_by="dpo-1", reason="gdpr_art17"),
        source="factorstream://audit",
        tenant="acme",
        subject="alice",
        correlationid="erase-1",
        now=streamed.clock(),
    )

    view.apply([erasure])
    erased = assess(streamed, token, device_id=LAPTOP, device_token=device_token)
    streamed.clock.advance(minutes=1)  # alice signs up again, trusts her laptop again
    authenticator = pyotp.TOTP(_secret_of(streamed))
    again = trust(streamed, token, step_up(streamed, token, authenticator)).json["device_token"]
    view.apply([erasure])  # the service restarts and replays the log
    replayed = assess(streamed, token, device_id=LAPTOP, device_token=again)

    assert erased["mfa"]["required"] and erased["trusted_device"]["reason"] == "unknown_token"
    assert replayed["trusted_device"]["trusted"]  # made after the erasure: not the erased one's
    revoked = [e["data"] for e in events(streamed) if e["type"] == "device.revoked"]
    assert revoked == [  # one device in force (the default count), nothing personal
        {"policy_tier": "customer", "reason": "subject_erased", "revoked_by": "dpo-1"}
    ]
