"""OTP delivery through real servers on localhost: aiosmtpd for e-mail, http.server gateways.

Integration tier: real sockets, real smtplib and urllib, servers in threads. The code a
test uses is always the one parsed from what the server received.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from schemas import decode
from schemas.fields import Factor, PolicyTier
from tests.integration.records import consume
from tests.kafka_broker import KafkaBroker
from tests.unit.verifiers.conftest import NOW, make_store, raw_dump
from verifiers import otp
from verifiers.delivery import FailoverDelivery, HttpSmsProvider, SmtpEmailProvider
from verifiers.policy import TIERS
from verifiers.publish import OutboxRelay, kafka_producer_factory
from verifiers.store import Request, VerifierStore
from verifiers.tables import outbox_events

MOBILE = "+49 1512 3456789"
MOBILE_E164 = "+4915123456789"
ADDRESS = "jane.doe@example.com"
SENDER = "no-reply@login.example.com"
CUSTOMER = TIERS[PolicyTier.CUSTOMER]
BEARER = ("gw-primary-key", "gw-secondary-key")
SMTP_LOGGER = "mail.log"  # aiosmtpd: the receiving server, i.e. the person's mailbox


# -- servers -----------------------------------------------------------------------------


@dataclass
class Mailbox:
    """An aiosmtpd handler keeping every message it accepts."""

    refuse: set[str] = field(default_factory=set)
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def code(self) -> str:
        body = self.messages[-1].get_body(preferencelist=("plain",))
        assert body is not None
        return re.search(r"\b(\d{6})\b", body.get_content()).group(1)  # type: ignore[union-attr]


class LocalSmtp(Controller):
    """aiosmtpd on a free port chosen by the kernel (port 0), known once it listens."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = LocalSmtp(box, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield box, controller.port
    finally:
        controller.stop()


@dataclass
class Gateway:
    """A JSON SMS gateway on localhost answering every POST with one scripted reply."""

    status: int
    reply: Callable[[dict[str, Any]], bytes]
    delay: float = 0.0
    received: list[tuple[dict[str, Any], dict[str, str]]] = field(default_factory=list)
    url: str = ""

    def code(self) -> str:
        return re.search(r"\b(\d{6})\b", self.received[-1][0]["body"]).group(1)  # type: ignore[union-attr]


@pytest.fixture
def gateway() -> Iterator[Callable[..., Gateway]]:
    servers: list[ThreadingHTTPServer] = []

    def start(status: int, reply: Callable[[dict[str, Any]], bytes], delay: float = 0.0) -> Gateway:
        script = Gateway(status, reply, delay)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
                length = int(self.headers.get("Content-Length", "0"))
                document = json.loads(self.rfile.read(length))
                script.received.append((document, dict(self.headers.items())))
                time.sleep(script.delay)
                body = script.reply(document)
                try:
                    self.send_response(script.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        script.url = f"http://127.0.0.1:{server.server_address[1]}/messages"
        return script

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _echo(document: dict[str, Any]) -> bytes:
    """A gateway error page repeating the request (destination and text) back."""
    return json.dumps({"error": "upstream failure", "request": document}).encode()


def _accepted(message_id: str) -> Callable[[dict[str, Any]], bytes]:
    return lambda _document: json.dumps({"id": message_id, "status": "queued"}).encode()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- store -------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> VerifierStore:
    return make_store(f"sqlite:///{tmp_path / 'verifiers.db'}")


def _request(*, seconds: float = 0, subject: str = "u-1001") -> Request:
    return Request(
        tenant="acme",
        subject=subject,
        correlationid="login-1",
        now=NOW + timedelta(seconds=seconds),
        application="payroll",
    )


def _outbox(store: VerifierStore) -> list[bytes]:
    with store.engine.connect() as connection:
        query = sa.select(outbox_events.c.value).order_by(outbox_events.c.seq)
        return list(connection.execute(query).scalars())


def _summary(store: VerifierStore) -> list[tuple[str, Any, Any, Any]]:
    """(type, provider, reason, failover_provider) of every outbox event."""
    events = [decode(value) for value in _outbox(store)]
    return [
        (
            event.type,
            getattr(event.data, "provider", None),
            getattr(event.data, "reason", None),
            getattr(event.data, "failover_provider", None),
        )
        for event in events
    ]


def _enroll_email(store: VerifierStore, smtp: SmtpEmailProvider, box: Mailbox) -> str:
    delivery = FailoverDelivery([smtp])
    enrollment = otp.begin_enrollment(store, _request(), factor=Factor.EMAIL, destination=ADDRESS)
    sent = otp.send_code(
        store,
        _request(),
        factor=Factor.EMAIL,
        delivery=delivery,
        enrollment_id=enrollment.enrollment_id,
    )
    assert sent.sent, sent
    verdict = otp.confirm_enrollment(
        store, _request(), enrollment_id=enrollment.enrollment_id, code=box.code()
    )
    assert verdict.accepted, verdict.reason
    return enrollment.enrollment_id


def _enroll_phone(store: VerifierStore, gateway: Gateway) -> str:
    delivery = FailoverDelivery([HttpSmsProvider("enroller", gateway.url, timeout=5)])
    enrollment = otp.begin_enrollment(store, _request(), factor=Factor.SMS, destination=MOBILE)
    sent = otp.send_code(
        store,
        _request(),
        factor=Factor.SMS,
        delivery=delivery,
        enrollment_id=enrollment.enrollment_id,
    )
    assert sent.sent, sent
    verdict = otp.confirm_enrollment(
        store, _request(), enrollment_id=enrollment.enrollment_id, code=gateway.code()
    )
    assert verdict.accepted, verdict.reason
    return enrollment.enrollment_id


# -- e-mail over SMTP --------------------------------------------------------------------


def test_an_emailed_code_arrives_over_smtp_and_verifies(
    store: VerifierStore, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    smtp = SmtpEmailProvider("127.0.0.1", port, SENDER, timeout=5)
    _enroll_email(store, smtp, box)
    sent = otp.send_code(store, _request(), factor=Factor.EMAIL, delivery=FailoverDelivery([smtp]))
    assert (sent.sent, sent.provider) == (True, "smtp")
    mail = box.messages[-1]
    assert (mail["To"], mail["From"]) == (ADDRESS, SENDER)
    assert mail["Subject"] == "Your verification code"
    assert sent.attempts[-1].message_id == mail["Message-ID"].strip("<>")
    code = box.code()
    assert code not in mail["Subject"]
    assert sent.challenge_id is not None
    verdict = otp.verify_code(
        store, _request(seconds=30), challenge_id=sent.challenge_id, code=code
    )
    assert verdict.accepted and verdict.event is not None
    assert verdict.event.data.elapsed_ms == 30_000  # type: ignore[attr-defined]
    sent_event = decode(_outbox(store)[-2])
    assert sent_event.type == "mfa.challenge.sent"
    assert sent_event.data.destination == "j***@example.com"  # type: ignore[attr-defined]
    assert sent_event.data.destination_country is None  # type: ignore[attr-defined]


def test_an_expired_emailed_code_is_refused(
    store: VerifierStore, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    smtp = SmtpEmailProvider("127.0.0.1", port, SENDER, timeout=5)
    _enroll_email(store, smtp, box)
    sent = otp.send_code(store, _request(), factor=Factor.EMAIL, delivery=FailoverDelivery([smtp]))
    assert sent.challenge_id is not None
    late = _request(seconds=CUSTOMER.code_lifetime.total_seconds() + 1)
    verdict = otp.verify_code(store, late, challenge_id=sent.challenge_id, code=box.code())
    assert (verdict.accepted, verdict.reason) == (False, "expired")
    assert _summary(store)[-1] == ("mfa.verification.failed", None, "expired", None)


def test_a_resent_email_supersedes_the_first_code(
    store: VerifierStore, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    smtp = SmtpEmailProvider("127.0.0.1", port, SENDER, timeout=5)
    _enroll_email(store, smtp, box)
    delivery = FailoverDelivery([smtp])
    first = otp.send_code(store, _request(), factor=Factor.EMAIL, delivery=delivery)
    first_code, mailed = box.code(), len(box.messages)
    too_soon = otp.send_code(store, _request(seconds=20), factor=Factor.EMAIL, delivery=delivery)
    assert (too_soon.reason, too_soon.retry_after) == ("resend_cooldown", 10)
    assert len(box.messages) == mailed  # nothing was mailed
    second = otp.send_code(store, _request(seconds=30), factor=Factor.EMAIL, delivery=delivery)
    assert second.resend and first.challenge_id and second.challenge_id
    stale = otp.verify_code(
        store, _request(seconds=35), challenge_id=first.challenge_id, code=first_code
    )
    assert (stale.accepted, stale.reason) == (False, "superseded")
    fresh = otp.verify_code(
        store, _request(seconds=40), challenge_id=second.challenge_id, code=box.code()
    )
    assert fresh.accepted


def test_smtp_failover_from_a_dead_server_and_a_refused_recipient(
    store: VerifierStore, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    _enroll_email(store, SmtpEmailProvider("127.0.0.1", port, SENDER, timeout=5), box)
    box.refuse.add(ADDRESS)
    dead = SmtpEmailProvider("127.0.0.1", _closed_port(), SENDER, timeout=5, name="smtp-dead")
    picky = SmtpEmailProvider("127.0.0.1", port, SENDER, timeout=5, name="smtp-picky")
    result = otp.send_code(
        store, _request(), factor=Factor.EMAIL, delivery=FailoverDelivery([dead, picky])
    )
    assert (result.sent, result.reason) == (False, "delivery_failed")
    assert [(a.provider, a.reason) for a in result.attempts] == [
        ("smtp-dead", "connection_failed"),
        ("smtp-picky", "recipient_refused"),
    ]
    assert ADDRESS not in (result.attempts[1].detail or "")
    assert "550" in (result.attempts[1].detail or "")
    assert _summary(store)[-2:] == [
        ("mfa.challenge.delivery_failed", "smtp-dead", "connection_failed", "smtp-picky"),
        ("mfa.challenge.delivery_failed", "smtp-picky", "recipient_refused", None),
    ]


# -- SMS over HTTP gateways --------------------------------------------------------------


def test_sms_fails_over_from_a_500_to_the_next_gateway(
    store: VerifierStore, gateway: Callable[..., Gateway]
) -> None:
    _enroll_phone(store, gateway(200, _accepted("enrol-1")))
    primary = gateway(500, _echo)
    secondary = gateway(200, _accepted("gw2-0001"))
    delivery = FailoverDelivery(
        [
            HttpSmsProvider("primary", primary.url, token=BEARER[0], timeout=5),
            HttpSmsProvider("secondary", secondary.url, token=BEARER[1], timeout=5),
        ]
    )
    sent = otp.send_code(store, _request(), factor=Factor.SMS, delivery=delivery)
    assert (sent.sent, sent.provider) == (True, "secondary")
    document, headers = secondary.received[-1]
    assert (document["to"], document["channel"]) == (MOBILE_E164, "sms")
    assert headers["Authorization"] == f"Bearer {BEARER[1]}"
    assert _summary(store)[-3:] == [
        ("mfa.challenge.issued", None, None, None),
        ("mfa.challenge.delivery_failed", "primary", "provider_unavailable", "secondary"),
        ("mfa.challenge.sent", "secondary", None, None),
    ]
    failed, delivered = (decode(value).data for value in _outbox(store)[-2:])
    assert failed.provider_error.startswith("HTTP 500: ")  # type: ignore[attr-defined]
    assert MOBILE_E164 not in failed.provider_error  # type: ignore[attr-defined]
    assert primary.code() not in failed.provider_error  # type: ignore[attr-defined]
    assert (failed.destination_country, delivered.destination_country) == ("DE", "DE")  # type: ignore[attr-defined]
    assert delivered.provider_message_id == "gw2-0001"  # type: ignore[attr-defined]
    assert delivered.destination == "+49*********89"  # type: ignore[attr-defined]
    assert sent.challenge_id is not None
    verdict = otp.verify_code(
        store, _request(seconds=5), challenge_id=sent.challenge_id, code=secondary.code()
    )
    assert verdict.accepted


def test_when_every_gateway_fails_the_result_says_so(
    store: VerifierStore, gateway: Callable[..., Gateway]
) -> None:
    _enroll_phone(store, gateway(200, _accepted("enrol-1")))
    delivery = FailoverDelivery(
        [
            HttpSmsProvider("primary", gateway(500, _echo).url, timeout=5),
            HttpSmsProvider("slow", gateway(200, _accepted("late"), delay=2.0).url, timeout=0.3),
            HttpSmsProvider("no-id", gateway(202, lambda _d: b'{"status": "ok"}').url, timeout=5),
            HttpSmsProvider("limited", gateway(429, lambda _d: b"{}").url, timeout=5),
            HttpSmsProvider("gone", f"http://127.0.0.1:{_closed_port()}/sms", timeout=5),
        ]
    )
    result = otp.send_code(store, _request(), factor=Factor.SMS, delivery=delivery)
    assert (result.sent, result.reason, result.provider) == (False, "delivery_failed", None)
    assert _summary(store)[-6:] == [
        ("mfa.challenge.issued", None, None, None),
        ("mfa.challenge.delivery_failed", "primary", "provider_unavailable", "slow"),
        ("mfa.challenge.delivery_failed", "slow", "timeout", "no-id"),
        ("mfa.challenge.delivery_failed", "no-id", "bad_response", "limited"),
        ("mfa.challenge.delivery_failed", "limited", "rate_limited", "gone"),
        ("mfa.challenge.delivery_failed", "gone", "connection_failed", None),
    ]
    assert result.challenge_id is not None
    undelivered = otp.verify_code(
        store, _request(seconds=5), challenge_id=result.challenge_id, code="123456"
    )
    assert undelivered.reason == "undelivered"


# -- the code is never written down ------------------------------------------------------


def test_no_code_in_logs_events_results_or_rows(
    store: VerifierStore,
    mailbox: tuple[Mailbox, int],
    gateway: Callable[..., Gateway],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every library, every thread
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")  # which sets itself to WARNING
    box, port = mailbox
    smtp = SmtpEmailProvider("127.0.0.1", port, SENDER, timeout=5)
    email_delivery = FailoverDelivery([smtp])
    _enroll_email(store, smtp, box)
    _enroll_phone(store, gateway(200, _accepted("enrol-1")))
    echo, good = gateway(500, _echo), gateway(200, _accepted("gw-1"))
    sms_delivery = FailoverDelivery(
        [HttpSmsProvider("echo", echo.url, timeout=5), HttpSmsProvider("good", good.url, timeout=5)]
    )
    results: list[object] = []
    codes: list[str] = [box.code()]

    # sign-in by e-mail: a resend, a stale code, a wrong one, the right one, a replay
    first = otp.send_code(store, _request(), factor=Factor.EMAIL, delivery=email_delivery)
    codes.append(box.code())
    resend_at = _request(seconds=30)  # after the resend cooldown
    second = otp.send_code(store, resend_at, factor=Factor.EMAIL, delivery=email_delivery)
    codes.append(box.code())
    assert first.challenge_id and second.challenge_id
    results += [first, second]
    for seconds, challenge_id, code in [
        (33, first.challenge_id, codes[-2]),
        (36, second.challenge_id, f"{(int(codes[-1]) + 1) % 10**6:06d}"),
        (39, second.challenge_id, codes[-1]),
        (42, second.challenge_id, codes[-1]),
    ]:
        results.append(
            otp.verify_code(store, _request(seconds=seconds), challenge_id=challenge_id, code=code)
        )
    # sign-in by SMS through a gateway that fails and repeats the request in its error
    sms = otp.send_code(store, _request(seconds=50), factor=Factor.SMS, delivery=sms_delivery)
    assert sms.sent and sms.challenge_id
    sms_code = good.code()
    assert echo.code() == sms_code
    expired = _request(seconds=50 + CUSTOMER.code_lifetime.total_seconds())
    results += [sms, otp.verify_code(store, expired, challenge_id=sms.challenge_id, code=sms_code)]
    assert [getattr(r, "reason", None) for r in results[2:]] == [
        "superseded",
        "invalid_code",
        None,
        "already_used",
        None,
        "expired",
    ]

    ours = [r for r in caplog.records if not r.name.startswith(SMTP_LOGGER)]
    mailbox_server = "\n".join(r.getMessage() for r in caplog.records if r not in ours)
    haystacks = {
        "logs": "\n".join(caplog.handler.format(r) for r in ours),
        "events": b"\n".join(_outbox(store)).decode(),
        "results": "\n".join(repr(r) for r in results),
        "database": raw_dump(store).decode("latin-1"),
    }
    assert any(r.name.startswith("sqlalchemy.engine") for r in ours)  # SQL and its parameters
    assert any(r.name == "verifiers.delivery" for r in ours)
    for code in codes:  # the capture sees other threads: the mailbox logged what it received
        assert code in mailbox_server
    for code in {*codes, sms_code}:
        for where, text in haystacks.items():
            assert not re.search(rf"(?<![0-9A-Za-z]){code}(?![0-9A-Za-z])", text), where


def test_email_otp_events_arrive_on_the_broker(
    store: VerifierStore, mailbox: tuple[Mailbox, int], kafka_broker: KafkaBroker, topic: str
) -> None:
    box, port = mailbox
    smtp = SmtpEmailProvider("127.0.0.1", port, SENDER, timeout=5)
    _enroll_email(store, smtp, box)
    sent = otp.send_code(store, _request(), factor=Factor.EMAIL, delivery=FailoverDelivery([smtp]))
    assert sent.sent and sent.challenge_id is not None
    assert otp.verify_code(
        store, _request(seconds=20), challenge_id=sent.challenge_id, code=box.code()
    ).accepted
    staged = store.outbox.pending()
    OutboxRelay(
        store.outbox, topic=topic, producer_factory=kafka_producer_factory(kafka_broker.bootstrap)
    ).drain(timeout_s=60)
    records = consume(kafka_broker.bootstrap, topic, at_least=staged)
    types = [r.event().type for r in sorted(records, key=lambda r: (r.partition, r.offset))]
    assert len(types) == staged
    assert types[-3:] == [
        "mfa.challenge.issued",
        "mfa.challenge.sent",
        "mfa.verification.succeeded",
    ]
    assert all(code not in r.value.decode() for r in records for code in [box.code()])
