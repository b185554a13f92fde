"""A simulation run: the organisation, its days of sign-ins and the chosen attacks, played
through a :class:`~factorstream.simulator.actions.Service` in time order.

:func:`verifier_simulation` wires the real verifiers on a fresh SQLite store (its outbox
holds the events); :func:`fast_simulation` builds the events directly. Time is a parameter
throughout: the backfill covers ``[start, until)`` of simulated time; :meth:`Simulation.live`
then keeps going in step with the caller's clock.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from factorstream.simulator.actions import Service
from factorstream.simulator.behaviour import EMAIL_FAILURE_RATES, SMS_FAILURE_RATES
from factorstream.simulator.ceremonies import VerifierService
from factorstream.simulator.delivery import SMS_COSTS, Inbox, simulated_delivery
from factorstream.simulator.entropy import SeededEntropy
from factorstream.simulator.episodes import DAY, World
from factorstream.simulator.fast import FastService
from factorstream.simulator.organisation import Organisation, build_organisation
from factorstream.simulator.scenarios import SCENARIOS, scenario_times
from factorstream.simulator.schedule import Scheduler, daily_sign_ins, live_sign_ins
from verifiers.crypto import SecretBox
from verifiers.sendcaps import load_send_charges
from verifiers.store import VerifierStore, store_engine

SOURCE = "https://login.example.com/mfa"
EVENTS_PER_SIGN_IN = 4.0
"""About how many events one sign-in records (to turn a live event rate into sign-ins)."""


@dataclass(frozen=True)
class SimulationPlan:
    """What to simulate: ``users`` people over ``days`` days of history ending at ``until``."""

    until: datetime
    seed: int = 7
    users: int = 200
    days: int = 30
    scenarios: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.until.tzinfo is None:
            raise ValueError("until must be timezone-aware (UTC)")
        if unknown := sorted(set(self.scenarios) - set(SCENARIOS)):
            raise ValueError(f"unknown scenario(s) {unknown}: expected some of {list(SCENARIOS)}")

    @property
    def start(self) -> datetime:
        """Midnight UTC, ``days`` days before ``until`` (so at least ``days`` of history)."""
        first = (self.until - self.days * DAY).astimezone(UTC)
        return first.replace(hour=0, minute=0, second=0, microsecond=0)

    def organisation(self) -> Organisation:
        days = math.ceil((self.until - self.start) / DAY)
        return build_organisation(seed=self.seed, users=self.users, days=days, start=self.start)


class Simulation:
    """The scheduler loaded with the plan's sign-ins and scenarios."""

    def __init__(self, plan: SimulationPlan, service: Service) -> None:
        self.plan = plan
        self.world = World(service, plan.organisation(), random.Random(f"world/{plan.seed}"))  # noqa: S311
        self.scheduler = Scheduler()
        self.scheduler.add(daily_sign_ins(self.world, self.scheduler))
        names = list(plan.scenarios)
        times = scenario_times(names, until=plan.until, start=plan.start)
        for name, at in zip(names, times, strict=True):
            self.scheduler.add(SCENARIOS[name](self.world, at))

    def backfill(self, *, on_step: Callable[[datetime], None] | None = None) -> None:
        """Every step before ``plan.until``, as fast as the service goes."""
        self.scheduler.run_until(self.plan.until, on_step=on_step)

    def live(
        self,
        *,
        events_per_s: float,
        clock: Callable[[], datetime],
        stop: threading.Event,
        on_step: Callable[[datetime], None] | None = None,
        wait: Callable[[float], object] | None = None,
    ) -> None:
        """Keep signing people in at about ``events_per_s`` events a second, each step at
        its time on ``clock``, until ``stop`` is set; ``wait(seconds)`` idles until the next
        step is due (default: ``stop.wait``)."""
        idle = wait or stop.wait
        self.scheduler.add(
            live_sign_ins(
                self.world,
                self.scheduler,
                start=max(self.plan.until, clock()),
                sign_ins_per_s=events_per_s / EVENTS_PER_SIGN_IN,
            )
        )
        while not stop.is_set():
            due, now = self.scheduler.next_time(), clock()
            if due is not None and due > now:
                idle(min((due - now).total_seconds(), 0.5))
                continue
            self.scheduler.run_until(now + timedelta(microseconds=1), on_step=on_step)


def simulation_box(seed: int) -> SecretBox:
    """The store's secrets key, derived from the seed (a simulation has nothing to hide)."""
    return SecretBox(hashlib.sha256(f"factorstream-simulator/{seed}".encode()).digest())


def verifier_store(path: Path, *, seed: int) -> VerifierStore:
    """A fresh verifier database at ``path`` (SQLite), its ids and codes drawn from ``seed``."""
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    store = VerifierStore(
        store_engine(f"sqlite:///{path}"),
        simulation_box(seed),
        source=SOURCE,
        entropy=SeededEntropy(seed),
    )
    store.migrate()
    return store


def verifier_simulation(
    plan: SimulationPlan, store: VerifierStore, *, admins_key: Ed25519PrivateKey | None = None
) -> Simulation:
    """The plan played through the real ceremonies on ``store`` (``admins_key``: what the
    simulated administrators sign with; default: a key drawn from the seed)."""
    inbox = Inbox()
    delivery = simulated_delivery(
        inbox=inbox,
        rng=random.Random(f"delivery/{plan.seed}"),  # noqa: S311 - a reproducible simulation
        sms_failure_rates=SMS_FAILURE_RATES,
        email_failure_rates=EMAIL_FAILURE_RATES,
    )
    service = VerifierService(
        store,
        delivery=delivery,
        inbox=inbox,
        seed=plan.seed,
        charges=load_send_charges(SMS_COSTS),
        admins_key=admins_key,
    )
    return Simulation(plan, service)


def fast_simulation(
    plan: SimulationPlan, *, admins_key: Ed25519PrivateKey | None = None
) -> tuple[Simulation, FastService]:
    """The plan's events built directly (no ceremonies); drain them with ``service.take()``."""
    service = FastService(seed=plan.seed, admins_key=admins_key)
    return Simulation(plan, service), service
