"""The Faust floor for ``bench pipeline``: the least work a Faust agent can do per event.

Run as ``python -m faust -A factorstream.bench.faust_floor worker`` with its settings in
the environment (``FLOOR_*``, set by :func:`floor_environment`). One agent at concurrency 1
reads the events topic, as the worker's ingest does, and per record:

* ``decode``: decodes it with our codec, nothing else;
* ``forward``: decodes it, forwards it to one topic and writes one table key (one
  changelog record) — one hop of the worker's pipeline.

The worker runs many such hops per event; next to these floors its rate shows what the
hops cost, whatever our folds do.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from typing import Final, Literal

import faust
from faust.types import StreamT

from schemas import decode

Mode = Literal["decode", "forward"]
MODES: Final[tuple[Mode, ...]] = ("decode", "forward")


def floor_environment(
    *, app_id: str, bootstrap: str, topic: str, partitions: int, mode: Mode, port: int
) -> dict[str, str]:
    """The environment a floor worker reads its settings from."""
    return {
        "FLOOR_APP_ID": app_id,
        "FLOOR_BOOTSTRAP": bootstrap,
        "FLOOR_TOPIC": topic,
        "FLOOR_PARTITIONS": str(partitions),
        "FLOOR_MODE": mode,
        "FLOOR_PORT": str(port),
    }


def floor_internal_topics(app_id: str) -> tuple[str, str]:
    """The topics the floor app writes: its forwards and its table's changelog."""
    return f"{app_id}-forwarded", f"{app_id}-floor-changelog"


def create_floor_app(env: Mapping[str, str]) -> faust.App:
    partitions, mode = int(env["FLOOR_PARTITIONS"]), env["FLOOR_MODE"]
    if mode not in MODES:
        raise ValueError(f"FLOOR_MODE must be one of {MODES}, not {mode!r}")
    app = faust.App(
        env["FLOOR_APP_ID"],
        broker=f"kafka://{env['FLOOR_BOOTSTRAP']}",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=partitions,
        web_port=int(env["FLOOR_PORT"]),
        web_bind="127.0.0.1",
        autodiscover=False,
    )
    source = app.topic(env["FLOOR_TOPIC"], key_type=bytes, value_type=bytes)
    forwarded, _changelog = floor_internal_topics(env["FLOOR_APP_ID"])
    sink = app.topic(forwarded, key_type=bytes, value_type=bytes, internal=True)
    table = app.Table("floor", default=None, key_type=bytes, partitions=partitions)

    async def floor(stream: StreamT[bytes]) -> AsyncIterator[None]:
        async for record in stream.events():
            decode(record.value)
            if mode == "forward":
                await sink.send(key=record.key, value=record.value)
                table[record.key or b""] = {"seen": record.message.offset}
            yield None

    app.agent(source, name="floor", concurrency=1)(floor)
    return app


app = create_floor_app(os.environ) if "FLOOR_APP_ID" in os.environ else None
