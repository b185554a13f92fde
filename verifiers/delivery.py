"""Delivering one-time codes: e-mail over SMTP, SMS and voice over HTTP gateways, failover.

A :class:`DeliveryProvider` sends one :class:`Message` and returns the provider's message
id, or raises :class:`DeliveryFailed` with a snake_case ``reason`` and the provider's own
words in ``detail``. :class:`FailoverDelivery` tries the providers that serve the
message's channel in order until one accepts it, and reports every attempt, so the
ceremony (:mod:`verifiers.otp`) can record ``mfa.challenge.delivery_failed`` for each
failure and ``mfa.challenge.sent`` for the success.

What a message carries never comes back out: :class:`Message` hides its text and
destination from ``repr``, providers raise without chaining the exceptions that hold the
request, and :class:`FailoverDelivery` scrubs the text, the destination and the message's
``secrets`` (the code, in every form it was written) from every detail it reports or logs.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

from schemas.fields import Channel
from verifiers.store import VerifierError

log = logging.getLogger(__name__)

MAX_DETAIL = 200
"""Longest provider detail kept (characters); events allow 1024."""
MAX_RESPONSE_BYTES = 64 * 1024
DEFAULT_SUBJECT = "Your verification code"
REDACTED = "[redacted]"
_REASON = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class DeliveryFailed(VerifierError):
    """A provider did not take the message; ``reason`` is snake_case (e.g. ``timeout``)."""

    def __init__(self, reason: str, detail: str = "", *, status: int | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.status = status


class NoProviderForChannel(VerifierError, LookupError):
    """No configured provider serves the channel asked for (a configuration mistake)."""


@dataclass(frozen=True)
class Message:
    """One message to one destination. Text and destination never show in ``repr``."""

    channel: Channel
    destination: str = field(repr=False)
    """E.164 phone number or e-mail address."""
    text: str = field(repr=False)
    subject: str | None = None
    """E-mail subject; other channels ignore it."""
    secrets: tuple[str, ...] = field(default=(), repr=False)
    """Strings no report may repeat, in every form the text writes them (the code)."""


class DeliveryProvider(Protocol):
    """Sends messages on some channels; raises :class:`DeliveryFailed` when it cannot."""

    @property
    def name(self) -> str: ...

    @property
    def channels(self) -> frozenset[Channel]: ...

    def send(self, message: Message) -> str:
        """Send ``message``; return the provider's message id."""
        ...


@dataclass(frozen=True)
class DeliveryAttempt:
    """One provider's try: delivered with a message id, or failed with a reason."""

    provider: str
    delivered: bool
    message_id: str | None = None
    reason: str | None = None
    detail: str | None = None
    """The provider's words, scrubbed of the message and cut to :data:`MAX_DETAIL`."""


@dataclass(frozen=True)
class DeliveryReport:
    """Every attempt in order; the last one is the delivery, if any succeeded."""

    channel: Channel
    attempts: tuple[DeliveryAttempt, ...]

    @property
    def delivered(self) -> DeliveryAttempt | None:
        last = self.attempts[-1] if self.attempts else None
        return last if last is not None and last.delivered else None

    def failover_after(self, index: int) -> str | None:
        """The provider tried after attempt ``index``, if there was one."""
        following = index + 1
        return self.attempts[following].provider if following < len(self.attempts) else None


class FailoverDelivery:
    """Ordered failover: each provider serving the channel in turn, until one accepts."""

    def __init__(self, providers: Iterable[DeliveryProvider]) -> None:
        self.providers: tuple[DeliveryProvider, ...] = tuple(providers)
        names = [provider.name for provider in self.providers]
        if len(set(names)) != len(names) or not all(0 < len(name) <= 128 for name in names):
            raise ValueError(f"expected distinct provider names of 1–128 characters, got {names}")

    def providers_for(self, channel: Channel) -> tuple[DeliveryProvider, ...]:
        return tuple(p for p in self.providers if channel in p.channels)

    def supports(self, channel: Channel) -> bool:
        return bool(self.providers_for(channel))

    def deliver(self, message: Message) -> DeliveryReport:
        """Try the channel's providers in order; stop at the first that accepts."""
        candidates = self.providers_for(message.channel)
        if not candidates:
            raise NoProviderForChannel(f"no delivery provider serves channel {message.channel}")
        attempts: list[DeliveryAttempt] = []
        for provider in candidates:
            try:
                message_id = provider.send(message)
            except DeliveryFailed as failure:
                reason = failure.reason if _REASON.match(failure.reason) else "provider_error"
                detail = _scrub(failure.detail, message)
            except Exception as error:  # a provider bug must not stop the failover
                reason, detail = "provider_error", type(error).__name__
            else:
                attempts.append(DeliveryAttempt(provider.name, True, _message_id(message_id)))
                log.info("%s message delivered by %s", message.channel, provider.name)
                break
            attempts.append(DeliveryAttempt(provider.name, False, None, reason, detail))
            log.warning(
                "%s provider %s failed (%s): %s", message.channel, provider.name, reason, detail
            )
        return DeliveryReport(message.channel, tuple(attempts))


def _message_id(value: object) -> str | None:
    """The provider's id if an event can carry it (1–128 characters), else ``None``."""
    if isinstance(value, str) and 0 < len(value) <= 128:
        return value
    return None


def _scrub(text: str, message: Message) -> str:
    """``text`` without anything of ``message`` in it, cut to :data:`MAX_DETAIL`."""
    if not isinstance(text, str):
        return ""
    destination = message.destination
    hidden = {message.text, destination, destination.lstrip("+"), *message.secrets}
    for value in sorted((v for v in hidden if v), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text[:MAX_DETAIL]


# -- e-mail over SMTP --------------------------------------------------------------------


class SmtpEmailProvider:
    """E-mail through an SMTP relay (smtplib), optionally with STARTTLS and login."""

    channels = frozenset({Channel.EMAIL})

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        name: str = "smtp",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.sender = sender
        self.starttls = starttls
        self.username = username
        self._password = password
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._domain = sender.rpartition("@")[2] or "localhost"

    def __repr__(self) -> str:
        return f"SmtpEmailProvider(name={self.name!r}, host={self.host!r}, port={self.port})"

    def send(self, message: Message) -> str:
        email = EmailMessage()
        message_id = make_msgid(domain=self._domain)
        try:
            email["From"] = self.sender
            email["To"] = message.destination
            email["Subject"] = message.subject or DEFAULT_SUBJECT
            email["Date"] = formatdate(usegmt=True)
            email["Message-ID"] = message_id
            email["Auto-Submitted"] = "auto-generated"
            email.set_content(message.text)
        except ValueError:
            raise DeliveryFailed(
                "invalid_message", "header refused by the e-mail library"
            ) from None
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=self._ssl_context or ssl.create_default_context())
                if self.username is not None:
                    smtp.login(self.username, self._password or "")
                smtp.send_message(email)
        except Exception as error:
            raise _smtp_failure(error) from None
        return message_id.strip("<>")


def _smtp_failure(error: Exception) -> DeliveryFailed:
    """Our failure for an smtplib or socket error, without the addresses it may name."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        answers = list(error.recipients.values())
        code, text = answers[0] if answers else (0, b"")
        return DeliveryFailed("recipient_refused", _smtp_words(code, text), status=code)
    if isinstance(error, smtplib.SMTPSenderRefused):
        return DeliveryFailed(
            "sender_refused", _smtp_words(error.smtp_code, error.smtp_error), status=error.smtp_code
        )
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return DeliveryFailed("authentication_failed", _smtp_words(error.smtp_code, b""))
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return DeliveryFailed("tls_unavailable", "the server does not offer STARTTLS")
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return DeliveryFailed("connection_lost", "the server closed the connection")
    if isinstance(error, smtplib.SMTPResponseException):
        words = _smtp_words(error.smtp_code, error.smtp_error)
        return DeliveryFailed("smtp_error", words, status=error.smtp_code)
    if isinstance(error, smtplib.SMTPException):
        return DeliveryFailed("smtp_error", type(error).__name__)
    if isinstance(error, ssl.SSLError):
        return DeliveryFailed("tls_failed", error.reason or type(error).__name__)
    if isinstance(error, TimeoutError):
        return DeliveryFailed("timeout", "no answer from the SMTP server in time")
    if isinstance(error, OSError):
        return DeliveryFailed("connection_failed", error.strerror or type(error).__name__)
    return DeliveryFailed("provider_error", type(error).__name__)


def _smtp_words(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {words}".strip()


# -- SMS and voice over HTTP -------------------------------------------------------------


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A gateway that redirects a POST did not accept it; never re-send it elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class HttpSmsProvider:
    """A generic JSON-over-HTTP SMS/voice gateway.

    ``POST url`` with ``{"to": "+4915…", "body": "…", "channel": "sms"|"voice"}`` (and
    ``Authorization: Bearer <token>`` when a token is given). A 2xx answer whose JSON object
    holds ``id`` (or ``message_id``) means sent; anything else raises
    :class:`DeliveryFailed` with the HTTP status.
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        channels: Sequence[Channel] = (Channel.SMS, Channel.VOICE),
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"gateway url of {name}: expected http:// or https://")
        self.name = name
        self.url = url
        self._token = token
        self.timeout = timeout
        self.channels = frozenset(channels)
        self._opener = urllib.request.build_opener(_RefuseRedirects)

    def __repr__(self) -> str:
        return f"HttpSmsProvider(name={self.name!r}, url={self.url!r})"

    def send(self, message: Message) -> str:
        body = {"to": message.destination, "body": message.text, "channel": message.channel.value}
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self.url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        if self._token is not None:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
                payload = response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as error:
            raise _http_failure(error.code, _error_body(error)) from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise DeliveryFailed("timeout", "no answer from the gateway in time") from None
            raise DeliveryFailed("connection_failed", _os_words(error.reason)) from None
        except TimeoutError:
            raise DeliveryFailed("timeout", "no answer from the gateway in time") from None
        except (OSError, http.client.HTTPException) as error:
            raise DeliveryFailed("connection_failed", type(error).__name__) from None
        if not 200 <= status < 300:
            raise _http_failure(status, payload)
        message_id = _gateway_message_id(payload)
        if message_id is None:
            raise DeliveryFailed(
                "bad_response", f"HTTP {status} without a message id", status=status
            )
        return message_id


def _http_failure(status: int, body: bytes) -> DeliveryFailed:
    if status in (401, 403):
        reason = "unauthorized"
    elif status == 429:
        reason = "rate_limited"
    elif 400 <= status < 500:
        reason = "rejected"
    elif status >= 500:
        reason = "provider_unavailable"
    else:
        reason = "unexpected_status"
    text = body[:MAX_DETAIL].decode("utf-8", "replace").strip()
    return DeliveryFailed(
        reason, f"HTTP {status}: {text}" if text else f"HTTP {status}", status=status
    )


def _error_body(error: urllib.error.HTTPError) -> bytes:
    try:
        return error.read(MAX_DETAIL) if error.fp is not None else b""
    except (OSError, http.client.HTTPException):
        return b""


def _os_words(reason: object) -> str:
    if isinstance(reason, OSError):
        return reason.strerror or type(reason).__name__
    return str(reason)[:MAX_DETAIL]


def _gateway_message_id(payload: bytes) -> str | None:
    try:
        document = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    for key in ("id", "message_id"):
        value = document.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and 0 < len(value) <= 128:
            return value
    return None
