"""Benchmarks: each measures a candidate and its baseline in the same run.

Figures are throughputs (events/s) from the best of several rounds; what matters is the
ratio to the baseline, since the machine is shared and noisy. ``--quick`` runs at CI
size, ``--json`` prints a machine-readable result.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Measurement:
    """One contender: how many events it handled per second (best round)."""

    name: str
    events_per_s: float
    rounds: int
    events: int


@dataclass(frozen=True)
class BenchResult:
    bench: str
    baseline: Measurement
    contenders: Sequence[Measurement]
    goal_ratio: float
    goal_text: str
    notes: dict[str, str] = field(default_factory=dict)
    unit: str = "events/s"
    measured_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds")
    )
    """When the result was made: one time however often it is written out."""
    goal_met: bool | None = None
    """Set when the goal is not a ratio to the baseline (a latency): whether it was met."""

    @property
    def candidate(self) -> Measurement:
        return self.contenders[0]

    @property
    def ratio(self) -> float:
        return self.candidate.events_per_s / self.baseline.events_per_s

    @property
    def meets_goal(self) -> bool:
        if self.goal_met is not None:
            return self.goal_met
        return self.ratio >= self.goal_ratio

    def as_dict(self) -> dict[str, object]:
        return {
            "bench": self.bench,
            "unit": self.unit,
            "baseline": asdict(self.baseline),
            "contenders": [asdict(m) for m in self.contenders],
            "ratio": round(self.ratio, 3),
            "goal_ratio": self.goal_ratio,
            "goal": self.goal_text,
            "meets_goal": self.meets_goal,
            "notes": self.notes,
            "machine": machine_description(),
            "measured_at": self.measured_at,
        }


def percentile(values: Sequence[float], q: int) -> float:
    """The ``q``-th percentile of ``values`` (inclusive method; one value: itself)."""
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def bench_family(result_name: str) -> str:
    """The benchmark (``factorstream bench NAME``) a result belongs to:
    ``ledger-append-sqlite`` → ``ledger``, ``analytics queries over …`` → ``analytics``."""
    return result_name.replace(" ", "-").split("-")[0]


def machine_description() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def best_rates(runs: dict[str, Callable[[], int]], *, rounds: int) -> dict[str, Measurement]:
    """Run each contender once per round, interleaved, and keep each one's best round.

    Interleaving spreads the machine's noise over every contender alike; each ``run``
    returns how many events it handled.
    """
    best = dict.fromkeys(runs, 0.0)
    events = dict.fromkeys(runs, 0)
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            events[name] = run()
            best[name] = max(best[name], events[name] / (time.perf_counter() - started))
    return {name: Measurement(name, best[name], rounds, events[name]) for name in runs}


def show(result: BenchResult, *, as_json: bool, console: Console | None = None) -> None:
    console = console or Console()
    if as_json:
        console.print_json(json.dumps(result.as_dict()))
        return
    table = Table(title=f"bench {result.bench} — {machine_description()}")
    table.add_column("contender")
    table.add_column(result.unit, justify="right")
    table.add_column("× baseline", justify="right")
    for measurement in (*result.contenders, result.baseline):
        ratio = measurement.events_per_s / result.baseline.events_per_s
        table.add_row(measurement.name, f"{measurement.events_per_s:,.0f}", f"{ratio:.2f}×")
    console.print(table)
    for key, value in result.notes.items():
        console.print(f"  {key}: {value}")
    verdict = "[green]meets[/]" if result.meets_goal else "[red]misses[/]"
    console.print(
        f"{result.candidate.name}: {result.ratio:.2f}× baseline — {verdict} the goal "
        f"({result.goal_text})"
    )
