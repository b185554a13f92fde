"""``factorstream serve`` as a process, called the way a service in another language calls
it: curl for HTTP, oathtool as the person's authenticator, no factorstream code on the
client side. The assertion it gets is then checked by ``require_mfa`` against the JWKS
URL, and by openssl against the JWK alone."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support import missing
from verifiers.service.middleware import MfaRefused, require_mfa

AUDIENCE = "https://payroll.example"

CLIENT = r"""
set -euo pipefail
api="$SERVICE/v1/subjects/alice"
auth="Authorization: Bearer $CREDENTIAL"
json="Content-Type: application/json"
call() {  # call METHOD URL [BODY]: prints the body, then the status on its own line
    curl -sS -X "$1" -H "$auth" -H "$json" ${3:+--data "$3"} -w '\n%{http_code}' "$2"
}
status() { tail -n 1; }
body() { sed '$d'; }

enrolment=$(call POST "$api/totp/enrollments" '{"account_name": "alice@example.com"}')
[ "$(status <<<"$enrolment")" = 201 ]
secret=$(body <<<"$enrolment" | sed -E 's/.*"secret":"([A-Z2-7]+)".*/\1/')
enrollment_id=$(body <<<"$enrolment" | sed -E 's/.*"enrollment_id":"([^"]+)".*/\1/')

first=$(oathtool --totp -b "$secret")
confirmed=$(call POST "$api/totp/enrollments/$enrollment_id/confirm" "{\"code\": \"$first\"}")
echo "confirm $(status <<<"$confirmed")"

replayed=$(call POST "$api/totp/verify" "{\"code\": \"$first\"}")
echo "replay $(status <<<"$replayed") $(body <<<"$replayed")"

next=$(oathtool --totp -b "$secret" --now "$(date -u -d '+30 seconds' '+%Y-%m-%d %H:%M:%S UTC')")
verified=$(call POST "$api/totp/verify" "{\"code\": \"$next\", \"correlationid\": \"curl-1\"}")
echo "verify $(status <<<"$verified")"
body <<<"$verified" | sed -E 's/.*"assertion":"([^"]+)".*/\1/' > "$OUT/assertion.jwt"

unauthenticated=$(curl -sS -o /dev/null -w '%{http_code}' "$api/factors")
echo "anonymous $unauthenticated"
curl -sS "$SERVICE/.well-known/jwks.json" > "$OUT/jwks.json"
"""

OPENSSL_VERIFY = r"""
set -euo pipefail
cd "$OUT"
IFS=. read -r head body signature < assertion.jwt
b64url_decode() {
    local s="${1//-/+}"; s="${s//_//}"
    while (( ${#s} % 4 )); do s="$s="; done
    base64 -d <<<"$s"
}
printf '%s' "$head.$body" > signed
b64url_decode "$signature" > signature.bin
x=$(sed -E 's/.*"x":"([^"]+)".*/\1/' jwks.json)
{ printf '\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00'; b64url_decode "$x"; } > public.der
openssl pkey -pubin -inform DER -in public.der -out public.pem
openssl pkeyutl -verify -pubin -inkey public.pem -rawin -in signed -sigfile signature.bin
"""


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(name, f"not on PATH (apt-get install {name})")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    url: str
    process: subprocess.Popen[str]
    env: dict[str, str]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our interpreter, our CLI
        [sys.executable, "-m", "factorstream.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def start(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "factorstream.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"serve did not start: {process.communicate()[0]}") from None
            time.sleep(0.1)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    env = {**os.environ, "FACTORSTREAM_DATA_DIR": str(tmp_path / "data")}
    port = free_port()
    process = start(env, port)
    try:
        yield Served(f"http://127.0.0.1:{port}", process, env)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)


def test_a_curl_client_enrols_and_steps_up_with_oathtool_codes(
    served: Served, tmp_path: Path
) -> None:
    tool("curl"), tool("oathtool"), tool("bash")
    credential = cli(served.env, "clients", "add", "--tenant", "acme", "--audience", AUDIENCE)
    out = tmp_path / "client"
    out.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "SERVICE": served.url,
        "CREDENTIAL": credential.stdout.strip(),
        "OUT": str(out),
    }

    done = subprocess.run(  # noqa: S603
        ["bash", "-c", CLIENT], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "confirm 200"
    status, body = lines[1].removeprefix("replay ").split(" ", 1)
    assert status == "403" and json.loads(body)["error"] == "replayed"
    assert lines[2:] == ["verify 200", "anonymous 401"]
    assertion = (out / "assertion.jwt").read_text().strip()
    gate = require_mfa(
        jwks_url=f"{served.url}/.well-known/jwks.json",
        audience=AUDIENCE,
        issuer=served.url,
        max_age=timedelta(minutes=1),
        amr_any=["otp"],
    )
    claims = gate.check(f"Bearer {assertion}")
    assert (claims["sub"], claims["tenant"], claims["aud"]) == ("alice", "acme", AUDIENCE)
    with pytest.raises(MfaRefused, match="not for audience"):
        require_mfa(jwks_url=f"{served.url}/.well-known/jwks.json", audience="x").check(
            f"Bearer {assertion}"
        )

    tool("openssl")
    checked = subprocess.run(  # noqa: S603
        ["bash", "-c", OPENSSL_VERIFY], env=env, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0 and "Signature Verified Successfully" in checked.stdout, (
        checked.stdout + checked.stderr
    )
    head, payload, signature = assertion.split(".")
    tampered = base64.urlsafe_b64encode(
        base64.urlsafe_b64decode(payload + "==").replace(b'"alice"', b'"admin"')
    )
    (out / "assertion.jwt").write_text(f"{head}.{tampered.decode().rstrip('=')}.{signature}")
    refused = subprocess.run(  # noqa: S603
        ["bash", "-c", OPENSSL_VERIFY], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_serve_stops_cleanly_on_a_signal(served: Served, stop: signal.Signals) -> None:
    served.process.send_signal(stop)
    output, _ = served.process.communicate(timeout=30)
    assert served.process.returncode == 0, output
    assert "MFA service stopped" in output and "Traceback" not in output
