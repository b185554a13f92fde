"""``factorstream serve`` as a process, scraped: its verifier outcomes by factor and reason
and its requests by route template, checked by ``promtool check metrics``; its probes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pyotp

from tests.integration.test_service_cli import Served, cli, served  # noqa: F401 - fixture
from tests.prometheus import check_metrics, scrape, total

AUDIENCE = "https://payroll.example"


def _call(url: str, credential: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310
        url,
        data=json.dumps(body or {}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {credential}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_service_exports_verifier_outcomes_by_factor_and_reason(
    served: Served,  # noqa: F811
) -> None:
    credential = cli(
        served.env, "clients", "add", "--tenant", "acme", "--audience", AUDIENCE
    ).stdout.strip()
    api = f"{served.url}/v1/subjects/alice-metrics"
    status, enrolment = _call(f"{api}/totp/enrollments", credential)
    assert status == 201, enrolment
    totp = pyotp.TOTP(enrolment["secret"])
    confirm = f"{api}/totp/enrollments/{enrolment['enrollment_id']}/confirm"
    assert _call(confirm, credential, {"code": totp.now()})[0] == 200
    wrong = "000000" if totp.now() != "000000" else "111111"
    for _ in range(2):
        status, refusal = _call(f"{api}/totp/verify", credential, {"code": wrong})
        assert status == 403, refusal

    assert _get(f"{served.url}/health") == (200, {"status": "up"})
    status, readiness = _get(f"{served.url}/ready")
    assert (status, readiness) == (200, {"ready": True, "checks": {"database": True}})
    text = scrape(f"{served.url}/metrics")

    check_metrics(text)
    reason = refusal["error"]
    failed = total(
        text, "factorstream_service_verifications_total", factor="totp", outcome="failed"
    )
    assert failed == 2
    assert total(text, "factorstream_service_verifications_total", reason=reason) == 2
    assert total(text, "factorstream_service_events_total", type="mfa.verification.failed") == 2
    verify_route = "/v1/subjects/{subject}/totp/verify"
    assert (
        total(text, "factorstream_service_http_requests_total", route=verify_route, status="403")
        == 2
    )
    assert "alice-metrics" not in text  # a subject is never a label
    assert (
        total(text, "factorstream_service_http_request_duration_seconds_count", route=verify_route)
        == 2
    )
