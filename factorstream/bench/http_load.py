"""What the benchmarks of the HTTP processes share: a server process's CPU time, waiting for
its port, and keep-alive clients posting a list of requests (latency per request)."""

from __future__ import annotations

import asyncio
import multiprocessing.process
import os
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

HOST = "127.0.0.1"


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU seconds every core of this machine spent busy so far (Linux: ``/proc/stat``;
    0 elsewhere): what a run left to processes beside the one measured."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_for_port(port: int, server: multiprocessing.process.BaseProcess, what: str) -> None:
    """Return once ``port`` takes connections; fail if ``server`` exits or a minute passes."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not server.is_alive():
            raise RuntimeError(f"the benchmark's {what} process exited")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the benchmark's {what} did not start")


async def post_all(
    port: int,
    token: str,
    requests: Sequence[tuple[str, bytes]],
    *,
    clients: int,
    content_type: str,
    expect: int,
) -> tuple[float, list[float]]:
    """POST each ``(path, body)`` from ``clients`` keep-alive connections; the seconds it
    took and each request's latency (s). An answer other than ``expect`` fails."""
    pending: Iterator[tuple[str, bytes]] = iter(requests)
    latencies: list[float] = []
    wanted = f" {expect} ".encode()

    async def client() -> None:
        connection = await _Connection.open(port, token, content_type, wanted)
        try:
            for path, body in pending:
                started = time.perf_counter()
                await connection.post(path, body)
                latencies.append(time.perf_counter() - started)
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, latencies


async def post_at_rate(
    port: int,
    token: str,
    requests: Sequence[tuple[str, bytes]],
    *,
    per_s: float,
    connections: int,
    content_type: str,
    expect: int,
) -> tuple[float, list[float]]:
    """POST each ``(path, body)`` at its own moment, ``per_s`` a second (an open loop: a
    request is due whether or not the ones before it were answered), over at most
    ``connections`` keep-alive connections. A request's latency counts from the moment it
    was due, so time spent waiting for a free connection counts too (no coordinated
    omission). The requests/s achieved and each request's latency (s)."""
    wanted = f" {expect} ".encode()
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    opened = [await _Connection.open(port, token, content_type, wanted) for _ in range(connections)]
    for connection in opened:
        idle.put_nowait(connection)
    latencies: list[float] = []

    async def one(due: float, path: str, body: bytes) -> None:
        connection = await idle.get()
        try:
            await connection.post(path, body)
        finally:
            idle.put_nowait(connection)
        latencies.append(time.perf_counter() - due)

    started = time.perf_counter()
    tasks = []
    try:
        for index, (path, body) in enumerate(requests):
            due = started + index / per_s
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.ensure_future(one(due, path, body)))
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        for connection in opened:
            connection.close()
    return len(requests) / (time.perf_counter() - started), latencies


class _Connection:
    """One keep-alive HTTP/1.1 connection that POSTs with a bearer token; an answer whose
    status line lacks ``wanted`` fails."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        token: str,
        content_type: str,
        wanted: bytes,
    ) -> None:
        self.reader, self.writer, self.wanted = reader, writer, wanted
        self.token, self.content_type = token, content_type

    @classmethod
    async def open(cls, port: int, token: str, content_type: str, wanted: bytes) -> _Connection:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer, token, content_type, wanted)

    async def post(self, path: str, body: bytes) -> bytes:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Type: {self.content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        answer = await self.reader.readexactly(length)
        if self.wanted not in status:
            raise AssertionError(f"{path}: {status!r} {answer[:300]!r}")
        return answer

    def close(self) -> None:
        self.writer.close()
