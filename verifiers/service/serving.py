"""Serving an ASGI app with uvicorn until a signal: the one runner of the HTTP processes
(the MFA service, the HTTP ingest).

SIGINT, SIGTERM and SIGHUP stop it the same way: uvicorn stops accepting, finishes the
requests in flight and returns (no signal is re-raised afterwards). ``X-Forwarded-For`` is
never taken from uvicorn (``proxy_headers`` off): the apps decide which proxies they trust.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from verifiers.service import require_extra

require_extra("uvicorn")

import uvicorn

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Server(uvicorn.Server):
    """uvicorn's server, stopped by SIGHUP too, and without re-raising the signal."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {stop: signal.signal(stop, self.handle_exit) for stop in STOP_SIGNALS}
        try:
            yield
        finally:
            for stop, handler in previous.items():
                signal.signal(stop, handler)


def run_app(
    app: Any,
    *,
    host: str,
    port: int,
    lifespan: Literal["on", "off"] = "off",
    log_level: str = "info",
    on_ready: Callable[[], Any] | None = None,
) -> None:
    """Serve ``app`` until stopped by a signal; ``on_ready`` is called once the port is
    bound."""
    server = _Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan=lifespan,
            log_level=log_level,
            access_log=False,
            server_header=False,
            # uvicorn would take X-Forwarded-For from any loopback peer as the client's
            # address; the apps trust only the proxies they are configured with
            proxy_headers=False,
        )
    )
    if on_ready is not None:
        original = server.startup

        async def startup(sockets: Any = None) -> None:
            await original(sockets=sockets)
            if server.started:
                on_ready()

        server.startup = startup  # type: ignore[method-assign]
    server.run()
