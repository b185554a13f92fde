"""``factorstream idp map``: a dry run over a file of provider records."""

from __future__ import annotations

import io
import json
from pathlib import Path

from typer.testing import CliRunner

from factorstream.cli import app
from factorstream.cli.idp import write_mapped
from schemas import decode
from sources.auth0 import Auth0Source, map_log

RECORDS = [
    # shapes: https://github.com/auth0/auth0-log-schemas/tree/main/schemas/log-types
    {"log_id": "9001", "date": "2024-01-15T10:30:00.000Z", "type": "gd_auth_failed",
     "user_id": "auth0|1", "ip": "192.0.2.1", "details": {}},
    {"log_id": "9002", "date": "2024-01-15T10:30:01.000Z", "type": "sapi", "user_id": "auth0|1"},
    {"log_id": "9003", "date": "2024-01-15T10:30:02.000Z", "type": "fu",
     "user_name": "x@example.com"},
]  # fmt: skip
ARGS = ["--tenant", "acme", "--source", "https://acme.eu.auth0.com/"]


def _file(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "auth0.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_events_go_to_stdout_and_the_unmapped_with_their_reason_to_stderr(tmp_path: Path) -> None:
    lines = [json.dumps(record) for record in RECORDS]
    path = _file(tmp_path, [lines[0], lines[1], "not json", "", lines[2]])
    result = CliRunner().invoke(app, ["idp", "map", "auth0", str(path), *ARGS])
    assert result.exit_code == 0, result.output
    events = [decode(line) for line in result.stdout.splitlines()]
    assert [event.type for event in events] == ["mfa.verification.failed", "auth.login.attempted"]
    unmapped = [json.loads(line) for line in result.stderr.splitlines()[:-1]]
    assert [(u["line"], u["unmapped"]["reason"]) for u in unmapped] == [
        (2, "not_mfa"),
        (3, "not_json"),
    ]
    assert result.stderr.splitlines()[-1] == (
        "auth0: 2 mapped, 1 unmapped (not_json), 1 unmapped (not_mfa)"
    )


def test_the_same_file_twice_prints_the_same_events(tmp_path: Path) -> None:
    path = _file(tmp_path, [json.dumps(record) for record in RECORDS])
    runs = [CliRunner().invoke(app, ["idp", "map", "auth0", str(path), *ARGS]) for _ in range(2)]
    assert runs[0].stdout == runs[1].stdout and runs[0].stdout


def test_a_file_that_cannot_be_read_fails(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["idp", "map", "auth0", str(tmp_path / "none"), *ARGS])
    assert result.exit_code != 0
    assert "cannot read" in result.output + result.stderr


def test_write_mapped_counts_by_outcome() -> None:
    source = Auth0Source("acme", "urn:auth0:acme")
    out, err = io.StringIO(), io.StringIO()
    lines = [json.dumps(record) for record in RECORDS]
    counts = write_mapped(lines, lambda record: map_log(record, source), out, err)
    assert counts == {"mapped": 2, "unmapped (not_mfa)": 1}
    assert len(out.getvalue().splitlines()) == 2 and len(err.getvalue().splitlines()) == 1


# Microsoft Graph's sign-in sample (api-reference/beta/api/signin-list.md), trimmed, with
# a declined Authenticator notification after a correct password and a high risk rating
ENTRA_SIGN_IN = {
    "id": "1691d37b-8579-43a7-966a-0f35583c1300",
    "createdDateTime": "2021-06-30T16:34:32Z",
    "userId": "26be570a-1111-5555-b4e2-a37c6808512d",
    "ipAddress": "131.107.159.37",
    "status": {"errorCode": 500121},
    "riskLevelDuringSignIn": "high",
    "riskEventTypes_v2": ["unlikelyTravel"],
    "authenticationDetails": [
        {"authenticationMethod": "Password", "succeeded": True,
         "authenticationStepRequirement": "Primary authentication"},
        {"authenticationMethod": "Mobile app notification", "succeeded": False,
         "authenticationStepResultDetail": "MFA denied; user declined the authentication",
         "authenticationStepRequirement": "Multifactor authentication"},
    ],
}  # fmt: skip


def test_a_record_of_several_events_prints_each(tmp_path: Path) -> None:
    path = _file(tmp_path, [json.dumps(ENTRA_SIGN_IN)])
    args = ["--tenant", "acme", "--source", "https://login.microsoftonline.com/contoso"]
    result = CliRunner().invoke(app, ["idp", "map", "entra", str(path), *args])
    assert result.exit_code == 0, result.output
    events = [decode(line) for line in result.stdout.splitlines()]
    assert [event.type for event in events] == [
        "auth.login.attempted",
        "mfa.push.rejected",
        "idp.risk.reported",
    ]
    assert result.stderr.splitlines()[-1] == "entra: 3 mapped"


def test_okta_and_keycloak_records_are_mapped_by_their_adapters(tmp_path: Path) -> None:
    # Okta's Event Hooks guide's sample LogEvent (user.session.start), and a Keycloak
    # EventRepresentation of a LOGIN
    okta_event = {
        "uuid": "f790999f-fe87-467a-9880-6982a583986c",
        "eventType": "user.session.start",
        "published": "2018-03-28T22:23:07.777Z",
        "outcome": {"result": "SUCCESS"},
        "actor": {"id": "00u1qw6mqitPHM8AJ0g7", "type": "User"},
    }
    keycloak_event = {"id": "k-1", "time": 1705314600000, "type": "LOGIN", "userId": "u-1"}
    for provider, record in (("okta", okta_event), ("keycloak", keycloak_event)):
        path = _file(tmp_path, [json.dumps(record)])
        result = CliRunner().invoke(app, ["idp", "map", provider, str(path), *ARGS])
        assert result.exit_code == 0, result.output
        assert [decode(line).type for line in result.stdout.splitlines()] == [
            "auth.login.attempted"
        ]
