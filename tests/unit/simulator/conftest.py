"""Fixtures of the simulator tests: small simulations on a fresh SQLite verifier store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from factorstream.simulator.output import OutboxTail
from factorstream.simulator.run import SimulationPlan, verifier_simulation, verifier_store
from schemas import Event, decode

UNTIL = datetime(2026, 11, 20, tzinfo=UTC)

Simulate = Callable[..., list[Event]]


def run_verifiers(path: Path, **plan: object) -> tuple[list[bytes], SimulationPlan]:
    """The encoded events of a backfill through the real verifiers, in commit order."""
    settings: dict[str, object] = {"until": UNTIL, "seed": 3, "users": 8, "days": 1} | plan
    simulation_plan = SimulationPlan(**settings)  # type: ignore[arg-type]
    store = verifier_store(path, seed=simulation_plan.seed)
    simulation = verifier_simulation(simulation_plan, store)
    simulation.backfill()
    values: list[bytes] = []
    OutboxTail(store.engine).drain(values.extend)
    store.engine.dispose()
    return values, simulation_plan


@pytest.fixture
def simulate(tmp_path: Path) -> Simulate:
    """``simulate(users=…, days=…, scenarios=(…,))``: the decoded events of a backfill."""
    runs = iter(range(1000))

    def run(**plan: object) -> list[Event]:
        values, _ = run_verifiers(tmp_path / f"run-{next(runs)}.db", **plan)
        return [decode(value) for value in values]

    return run


BENIGN = {"users": 30, "days": 3, "seed": 11}
"""The benign run several tests look at (one run, shared)."""


@pytest.fixture(scope="session")
def benign_values(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """The encoded events of :data:`BENIGN` through the verifiers, no scenarios."""
    values, _ = run_verifiers(tmp_path_factory.mktemp("benign") / "v.db", **BENIGN)
    return values


@pytest.fixture(scope="session")
def benign_events(benign_values: list[bytes]) -> list[Event]:
    return [decode(value) for value in benign_values]
