"""Live traffic after the backfill: steps at the caller's clock, until told to stop."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from factorstream.simulator import driver
from factorstream.simulator.output import ListSink, StreamDigest
from factorstream.simulator.run import SimulationPlan, fast_simulation
from schemas import decode
from tests.unit.simulator.conftest import UNTIL


def test_live_traffic_follows_the_clock_after_the_backfill_until_stopped() -> None:
    plan = SimulationPlan(until=UNTIL, seed=1, users=10, days=1)
    simulation, service = fast_simulation(plan)
    sink, digest = ListSink(), StreamDigest()
    pump = driver.fast_pump(service, digest, sink)
    driver.backfill(simulation, pump)
    backfilled = digest.count
    now = UNTIL + timedelta(minutes=5)  # the backfill took five minutes of wall time
    stop = threading.Event()

    def clock() -> datetime:
        nonlocal now
        now += timedelta(seconds=1)
        if now > UNTIL + timedelta(minutes=20):
            stop.set()
        return now

    waits: list[float] = []
    driver.live(simulation, pump, events_per_s=2.0, clock=clock, stop=stop, wait=waits.append)
    live = [decode(value) for value in sink.values[backfilled:]]
    assert all(UNTIL + timedelta(minutes=5) <= e.time <= now for e in live)
    # ~2 events/s over the 15 minutes of clock: a Poisson count, far from 0 and 10×
    assert 600 < len(live) < 6000
    assert waits and all(0 < w <= 0.5 for w in waits)  # idles only until the next step
