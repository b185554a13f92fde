"""POST /v1/subjects/{subject}/temporary-access/verify over HTTP: the code gets a subject the
stream locked past its lock (that is what two administrators granted it for), never past an
IP block the stream applied, and only once."""

from __future__ import annotations

from datetime import timedelta

from schemas.fields import LockoutScope
from tests.unit.verifiers.override_support import SUBJECT, approved, requested
from verifiers.service.assertions import ACR_TEMPORARY_ACCESS
from verifiers.service.stream_view import StreamView

from .conftest import Service
from .test_assess import ip_block, lock, stream_event, streamed, view

__all__ = ["streamed", "view"]  # the fixtures: a service whose stream view the test feeds
VERIFY = f"/v1/subjects/{SUBJECT}/temporary-access/verify"
BLOCKED_IP = "192.0.2.66"


def _code(service: Service) -> str:
    store, now = service.parts.store, service.clock()
    request = requested(store, now, action="temporary_access", valid_for=timedelta(hours=1))
    assert request.override is not None
    grant = approved(store, request.override.id, now).grant
    assert grant is not None
    return grant.code


def test_the_code_passes_the_streams_lock_but_not_its_ip_block(
    streamed: Service, view: StreamView
) -> None:
    token = streamed.client("acme")
    code = _code(streamed)
    view.apply([stream_event(streamed, lock(streamed, LockoutScope.SUBJECT), subject=SUBJECT)])
    view.apply([ip_block(streamed, BLOCKED_IP)])
    recovery = streamed.call(
        "POST", f"/v1/subjects/{SUBJECT}/recovery-codes/verify", {"code": "x"}, token=token
    )
    assert (recovery.status, recovery.json["error"]) == (423, "locked_out")  # the stream's lock

    blocked = streamed.call("POST", VERIFY, {"code": code, "ip": BLOCKED_IP}, token=token)
    assert (blocked.status, blocked.json["error"]) == (423, "ip_blocked")
    first = streamed.call("POST", VERIFY, {"code": code, "ip": "198.51.100.4"}, token=token)
    assert first.status == 200, first.body
    assert first.json["acr"] == ACR_TEMPORARY_ACCESS and first.json["amr"] == []
    again = streamed.call("POST", VERIFY, {"code": code, "ip": "198.51.100.4"}, token=token)
    assert (again.status, again.json["error"]) == (403, "used_code")


def test_a_malformed_or_unknown_code_is_refused_and_needs_a_credential(
    streamed: Service,
) -> None:
    token = streamed.client("acme")
    _code(streamed)
    anonymous = streamed.call("POST", VERIFY, {"code": "ABCD-EFGH-JKLM-NPQR"})
    assert anonymous.status == 401
    unknown = streamed.call("POST", VERIFY, {"code": "ABCD-EFGH-JKLM-NPQR"}, token=token)
    assert (unknown.status, unknown.json["error"]) == (403, "unknown_code")
    malformed = streamed.call("POST", VERIFY, {"code": "0000"}, token=token)
    assert (malformed.status, malformed.json["error"]) == (403, "malformed_code")
