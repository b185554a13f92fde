"""Sending one rendered alert: HTTP(S) POST (webhooks, Slack) and syslog (UDP, TCP).

A send returns an :class:`SendResult`; it raises only for misuse. Blocking sockets and
``urllib`` run in a thread (one destination sends one alert at a time, in order).
"""

from __future__ import annotations

import asyncio
import select
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from alerts.config import Destination
from alerts.formats import (
    alert_document,
    json_bytes,
    ocsf_event,
    octet_counted,
    slack_message,
    syslog_message,
)
from alerts.model import Alert
from alerts.signing import signed_headers


@dataclass(frozen=True)
class SendResult:
    delivered: bool
    reason: str = ""
    permanent: bool = False
    """Retrying will not help (a 4xx other than 408/425/429): dead-letter at once."""
    retry_after_s: float | None = None


DELIVERED = SendResult(True)
RETRYABLE_STATUS = frozenset({408, 425, 429})


class Transport(Protocol):
    async def send(self, alert: Alert, dedup_key: str) -> SendResult: ...

    async def confirm(self) -> None:
        """Before the host commits: make sure what :meth:`send` reported delivered was."""

    def close(self) -> None: ...


class HttpTransport:
    """POST to a webhook (our JSON or OCSF, HMAC-signed) or a Slack incoming webhook."""

    def __init__(
        self, destination: Destination, *, unix_time: Callable[[], float] = time.time
    ) -> None:
        assert destination.url is not None  # noqa: S101 - Destination checks it
        if not destination.url.startswith(("https://", "http://")):
            raise ValueError(f"destination {destination.name}: url must be http(s)")
        self.destination, self.unix_time = destination, unix_time

    def body(self, alert: Alert, dedup_key: str) -> bytes:
        if self.destination.kind == "slack":
            return json_bytes(slack_message(alert, dedup_key))
        if self.destination.format == "ocsf":
            return json_bytes(ocsf_event(alert, dedup_key))
        return json_bytes(alert_document(alert, dedup_key))

    async def send(self, alert: Alert, dedup_key: str) -> SendResult:
        body = self.body(alert, dedup_key)
        secret = self.destination.secret if self.destination.kind == "webhook" else None
        headers = signed_headers(secret, body, dedup_key=dedup_key, now=int(self.unix_time()))
        headers["User-Agent"] = "factorstream-alerts/1"
        return await asyncio.to_thread(self._post, body, headers)

    def _post(self, body: bytes, headers: dict[str, str]) -> SendResult:
        url = self.destination.url or ""  # http(s): checked in __init__
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.destination.timeout_s) as response:  # noqa: S310
                response.read()
                return DELIVERED
        except urllib.error.HTTPError as error:
            status = error.code
            retry_after = _seconds(error.headers.get("Retry-After"))
            error.close()
            if status >= 500 or status in RETRYABLE_STATUS:
                return SendResult(False, f"HTTP {status}", retry_after_s=retry_after)
            return SendResult(False, f"HTTP {status}", permanent=True)
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            return SendResult(False, f"{type(error).__name__}: {getattr(error, 'reason', error)}")

    async def confirm(self) -> None:
        """An HTTP answer is the receipt."""

    def close(self) -> None:
        """Nothing held open."""


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


class SyslogUdp:
    """RFC 5424 over UDP (RFC 5426): one message a datagram; there is no receipt."""

    def __init__(
        self, destination: Destination, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.destination = destination
        self.clock = clock or (lambda: datetime.now(UTC))
        self._socket: socket.socket | None = None

    async def send(self, alert: Alert, dedup_key: str) -> SendResult:
        message = syslog_message(alert, self.destination, dedup_key, now=self.clock())
        try:
            if self._socket is None:
                family = socket.AF_INET6 if ":" in (self.destination.host or "") else socket.AF_INET
                self._socket = socket.socket(family, socket.SOCK_DGRAM)
            self._socket.sendto(message, (self.destination.host or "", self.destination.port))
            return DELIVERED
        except OSError as error:
            self.close()
            return SendResult(False, f"{type(error).__name__}: {error}")

    async def confirm(self) -> None:
        """UDP has no receipt: sent is all it can say."""

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class SyslogTcp:
    """RFC 5424 over TCP, octet-counted (RFC 6587). TCP acknowledges bytes to the
    receiver's kernel, not to the collector: what was written on a connection is kept
    until :meth:`confirm` finds the connection still open; written on a connection that
    turned out closed or reset, it is written again on a new one (a receiver drops the
    repeats by their ``dedup`` parameter)."""

    def __init__(
        self,
        destination: Destination,
        *,
        clock: Callable[[], datetime] | None = None,
        settle_s: float = 0.05,
    ) -> None:
        self.destination = destination
        self.clock = clock or (lambda: datetime.now(UTC))
        self.settle_s = settle_s
        self._socket: socket.socket | None = None
        self._unconfirmed: list[bytes] = []

    async def send(self, alert: Alert, dedup_key: str) -> SendResult:
        frame = octet_counted(syslog_message(alert, self.destination, dedup_key, now=self.clock()))
        return await asyncio.to_thread(self._write, [*self._resend(), frame])

    def _resend(self) -> list[bytes]:
        return list(self._unconfirmed) if self._socket is None else []

    def _write(self, frames: list[bytes]) -> SendResult:
        try:
            if self._socket is None:
                self._socket = socket.create_connection(
                    (self.destination.host or "", self.destination.port),
                    timeout=self.destination.timeout_s,
                )
                self._unconfirmed = []
            for frame in frames:
                self._socket.sendall(frame)
                self._unconfirmed.append(frame)
            return DELIVERED
        except OSError as error:
            self._drop()
            return SendResult(False, f"{type(error).__name__}: {error}")

    def _drop(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _alive(self) -> bool:
        if self._socket is None:
            return False
        try:
            readable, _, _ = select.select([self._socket], [], [], self.settle_s)
            if not readable:
                return True
            return self._socket.recv(1, socket.MSG_PEEK) != b""  # a collector says nothing
        except OSError:
            return False

    async def confirm(self) -> None:
        """Keep writing what the last connection did not keep until a connection holds."""
        while self._unconfirmed or self._socket is not None:
            if await asyncio.to_thread(self._alive):
                self._unconfirmed = []
                return
            lost = list(self._unconfirmed)
            self._drop()
            self._unconfirmed = lost
            if not lost:
                return
            outcome = await asyncio.to_thread(self._write, lost[:])
            if not outcome.delivered:
                self._unconfirmed = lost
                raise ConnectionError(outcome.reason)

    def close(self) -> None:
        self._drop()


def transport_for(destination: Destination) -> Transport:
    if destination.kind in ("webhook", "slack"):
        return HttpTransport(destination)
    if destination.transport == "tcp":
        return SyslogTcp(destination)
    return SyslogUdp(destination)
