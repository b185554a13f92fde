"""Moving a running simulation's events to their outputs, and counting them into the digest.

A *pump* moves the events recorded since its last call to the outputs and the
:class:`~factorstream.simulator.output.StreamDigest`: from the verifier store's outbox
(:func:`outbox_pump`; Kafka publishing is the outbox relay's job) or from the fast service
(:func:`fast_pump`). :func:`backfill` and :func:`live` run a simulation, pumping as it goes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from factorstream.simulator.fast import FastService
from factorstream.simulator.output import EventSink, OutboxTail, StreamDigest
from factorstream.simulator.run import Simulation
from schemas import encode, kafka_key
from verifiers.store import VerifierStore

Pump = Callable[[], int]
PUMP_EVERY = 250
"""Steps between pumps during a backfill."""


def outbox_pump(store: VerifierStore, digest: StreamDigest, sink: EventSink | None) -> Pump:
    """Reads the outbox in commit order into ``digest`` (and ``sink``, e.g. a JSONL file)."""
    tail = OutboxTail(store.engine)

    def pump() -> int:
        moved = 0
        while batch := tail.read():
            digest.update(batch)
            if sink is not None:
                sink.write(batch, [b""] * len(batch))
            moved += len(batch)
        return moved

    return pump


def fast_pump(service: FastService, digest: StreamDigest, sink: EventSink | None) -> Pump:
    """Encodes the fast service's new events into ``digest`` and ``sink``."""

    def pump() -> int:
        events = service.take()
        values = [encode(event) for event in events]
        digest.update(values)
        if sink is not None and values:
            sink.write(values, [kafka_key(event) for event in events])
        return len(values)

    return pump


def backfill(
    simulation: Simulation,
    pump: Pump,
    *,
    on_progress: Callable[[datetime], None] | None = None,
) -> None:
    """The whole backfill, pumping every :data:`PUMP_EVERY` steps and at the end."""
    steps = 0

    def step(now: datetime) -> None:
        nonlocal steps
        steps += 1
        if steps % PUMP_EVERY == 0:
            pump()
            if on_progress is not None:
                on_progress(now)

    simulation.backfill(on_step=step)
    pump()


def live(
    simulation: Simulation,
    pump: Pump,
    *,
    events_per_s: float,
    clock: Callable[[], datetime],
    stop: threading.Event,
    wait: Callable[[float], object] | None = None,
) -> None:
    """Live traffic in step with ``clock`` until ``stop``; every step is pumped at once."""

    def step(_now: datetime) -> None:
        pump()

    simulation.live(events_per_s=events_per_s, clock=clock, stop=stop, on_step=step, wait=wait)
    pump()
