"""Real local receivers for the alerts' tests: the webhook receiver process, a Slack-like
HTTP endpoint, syslog listeners over UDP and TCP (octet-counted)."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support import wait_for

ROOT = Path(__file__).resolve().parents[3]
RECEIVER = Path(__file__).with_name("receiver.py")


class WebhookReceiver:
    """``receiver.py`` as a child process on ``port``, started, killed (SIGKILL) and started
    again on the same port; what it took is in ``log`` (JSON lines)."""

    def __init__(self, port: int, log: Path, secret_file: Path, *args: str) -> None:
        self.port, self.log, self.secret_file, self.args = port, log, secret_file, args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    def start(self, *args: str) -> None:
        out = self.log.with_suffix(".out").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(RECEIVER),
                str(self.port),
                str(self.log),
                str(self.secret_file),
                *(args or self.args),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={"PYTHONPATH": str(ROOT)},
        )
        wait_for(self._listening, what="the webhook receiver listening", timeout=20)

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def died(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def received(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


@contextmanager
def webhook_receiver(
    port: int, log: Path, secret_file: Path, *args: str
) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(port, log, secret_file, *args)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.kill()


class CapturingHttp:
    """An HTTP endpoint in this process that answers 200 and keeps each JSON body."""

    def __init__(self) -> None:
        bodies: list[Any] = []
        self.bodies = bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                bodies.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *more: object) -> None:  # noqa: A002
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/T/B/x"

    def __enter__(self) -> CapturingHttp:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class UdpSyslog:
    """A syslog listener on UDP: every datagram kept."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.messages: list[bytes] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append(self.socket.recv(65535))
            except TimeoutError:
                continue

    def __enter__(self) -> UdpSyslog:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join()
        self.socket.close()


FRAME = re.compile(rb"^(\d+) ")


class TcpSyslog:
    """A syslog listener on TCP with octet-counted framing (RFC 6587): every message kept;
    :meth:`drop` closes the connections it has (a collector restarting)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.messages: list[bytes] = []
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            with self.lock:
                self.connections.append(connection)
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        buffer = b""
        try:
            while chunk := connection.recv(65536):
                buffer += chunk
                while (match := FRAME.match(buffer)) and len(buffer) >= match.end() + int(match[1]):
                    end = match.end() + int(match[1])
                    self.messages.append(buffer[match.end() : end])
                    buffer = buffer[end:]
        except OSError:
            return

    def drop(self) -> None:
        with self.lock:
            for connection in self.connections:
                connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self.connections.clear()

    def __enter__(self) -> TcpSyslog:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join()
        self.drop()
        self.server.close()
