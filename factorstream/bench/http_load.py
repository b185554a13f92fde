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
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for path, body in pending:
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\n"
                    f"Authorization: Bearer {token}\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                started = time.perf_counter()
                writer.write(head + body)
                await writer.drain()
                status = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                answer = await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if wanted not in status:
                    raise AssertionError(f"{path}: {status!r} {answer[:300]!r}")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, latencies
