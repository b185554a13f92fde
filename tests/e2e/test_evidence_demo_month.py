"""Acceptance (issue 20): evidence packs over the demo's 30 days verify offline with only
their own ``verify.py`` in a Python that has ``cryptography`` and nothing of factorstream,
and are refused once a file is changed, a row removed or a proof swapped.

The month is the demo's: the simulated 200-person company (seed 7, every attack scenario)
over 30 days, its events built from the same model as the demo's verifiers (fast mode),
the worker's stages run over them in-process (``streams.replay``) for the lockouts, IP
blocks and detections the worker would derive, all of it in a ledger with signed
checkpoints; one subject is erased under GDPR Art. 17 half-way through.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audit.ledger import Ledger
from audit.rows import ExportFilter
from compliance.pack import IssuedPack, write_pack
from compliance.periods import Period, between
from factorstream.settings import Settings
from factorstream.simulator.run import SimulationPlan, fast_simulation
from factorstream.simulator.scenarios import SCENARIOS
from factorstream.stream_config import settings_topology
from schemas import Event, encode
from streams.replay import TopicRecord, replay
from tests.factories import CONTROL_KEY
from tests.offline_python import refusal, rewrite_manifest, run_verify
from tests.unit.audit.ledger_support import open_test_ledger
from tests.unit.compliance.pack_support import drop_row, reader, swap_files

UNTIL = datetime(2026, 9, 1, tzinfo=UTC)
DEMO = SimulationPlan(until=UNTIL, seed=7, users=200, days=30, scenarios=tuple(SCENARIOS))
"""``factorstream demo``'s defaults: 200 people, 30 days, seed 7, every scenario."""


def demo_month() -> tuple[list[Event], list[Event]]:
    """The demo's events over 30 days, and what the worker's stages derive from them."""
    simulation, service = fast_simulation(DEMO)
    simulation.backfill()
    events = sorted(service.take(), key=lambda e: e.time)
    records = (
        TopicRecord(0, offset, int(e.time.timestamp() * 1000), e.partitionkey.encode(), encode(e))
        for offset, e in enumerate(events)
    )
    derived: list[Event] = []
    settings = Settings(data_dir=Path("/nonexistent"))  # the default stages; nothing read
    replay(records, stages=settings_topology(settings), on_derived=derived.append)
    return events, derived


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Period, Counter[str]]:
    """The ledger of the month (its data dir), the period, and its event types counted."""
    data = tmp_path_factory.mktemp("demo-month")
    ledger: Ledger = open_test_ledger(data, f"sqlite:///{data / 'ledger.db'}", every=1000)
    events, derived = demo_month()
    middle = DEMO.start + timedelta(days=15)
    first = [e for e in events if e.time < middle] + [e for e in derived if e.time < middle]
    rest = [e for e in events if e.time >= middle] + [e for e in derived if e.time >= middle]
    first.sort(key=lambda e: e.time)
    rest.sort(key=lambda e: e.time)
    ledger.append(first, now=middle)
    erased = next(e for e in events if e.type == "auth.login.attempted" and e.tenant)
    ledger.erase(erased.tenant, erased.subject, now=middle, requested_by="dpo-1",
                 signer=CONTROL_KEY, ticket="DSR-1")  # fmt: skip
    ledger.append(rest, now=UNTIL)
    ledger.tick(now=UNTIL, force=True)
    types = Counter(row.event["type"] for row in reader(data).rows(ExportFilter()))
    return data, between(DEMO.start, UNTIL), types


def build(month: tuple[Path, Period, Counter[str]], framework: str, out: Path) -> IssuedPack:
    data, period, _ = month
    return write_pack(
        reader(data),
        framework=framework,  # type: ignore[arg-type]
        period=period,
        tenant=None,
        out=out,
        now=UNTIL + timedelta(hours=1),
    )


@pytest.fixture(scope="module")
def packs(
    month: tuple[Path, Period, Counter[str]], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], tuple[Path, IssuedPack]]:
    """Each framework's pack of the month, built once (tests that tamper take a copy)."""
    built: dict[str, tuple[Path, IssuedPack]] = {}

    def pack(framework: str) -> tuple[Path, IssuedPack]:
        if framework not in built:
            out = tmp_path_factory.mktemp(framework) / "pack"
            built[framework] = out, build(month, framework, out)
        return built[framework]

    return pack


@pytest.fixture
def hipaa(packs: Callable[[str], tuple[Path, IssuedPack]]) -> Path:
    return packs("hipaa")[0]


@pytest.fixture
def copy_of(hipaa: Path, tmp_path: Path) -> Path:
    """A copy of the month's HIPAA pack (the largest) for a test to tamper with."""
    return Path(shutil.copytree(hipaa, tmp_path / "pack"))


def test_the_month_is_the_demo_s(month: tuple[Path, Period, Counter[str]]) -> None:
    _, period, types = month
    assert period.until - period.since >= timedelta(days=30)
    assert sum(types.values()) > 15_000  # the README's demo: 17,518 events over 30 days
    for derived in ("lockout.applied", "risk.detected", "privacy.subject.erased"):
        assert types[derived] > 0, types


@pytest.mark.parametrize("framework", ["soc2", "hipaa", "gdpr"])
def test_a_month_s_pack_verifies_with_cryptography_alone(
    bare_python: Path, packs: Callable[[str], tuple[Path, IssuedPack]], framework: str
) -> None:
    out, pack = packs(framework)
    result = run_verify(bare_python, out)
    assert result.returncode == 0, result.stderr
    assert "the evidence pack verifies" in result.stdout
    assert pack.rows > 100
    for control in pack.controls:
        said = f"{control.control}: {control.status}; {len(control.rows)} rows proven"
        assert said in result.stdout
    if framework == "soc2":  # the lockouts the worker derived are the CC6.6 evidence
        (lockout,) = [c for c in pack.controls if c.control == "CC6.6-lockout"]
        assert lockout.rows
    if framework == "gdpr":  # the erasure is in the pack, as an erasure, and still proven
        (erasure,) = [c for c in pack.controls if c.control == "Art.17"]
        assert len(erasure.rows) == 1


def test_the_erased_subject_shows_as_erased_and_its_rows_still_verify(
    bare_python: Path, hipaa: Path
) -> None:
    with (hipaa / "evidence" / "164-312-d.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    erased = [row for row in rows if row["subject_erased"] == "true"]
    assert erased and len({row["subject"] for row in erased}) == 1
    assert run_verify(bare_python, hipaa).returncode == 0


def test_a_changed_file_is_refused(bare_python: Path, copy_of: Path) -> None:
    evidence = copy_of / "evidence" / "164-312-d.csv"
    text = evidence.read_text()
    evidence.write_text(text.replace(",exception,", ",ok,", 1))
    assert "evidence/164-312-d.csv was changed" in refusal(bare_python, copy_of)


def test_a_removed_row_is_refused_even_with_the_counts_and_manifest_forged(
    bare_python: Path, copy_of: Path
) -> None:
    drop_row(copy_of / "evidence" / "164-312-d.csv")
    controls = json.loads((copy_of / "controls.json").read_text())
    controls[0].update(rows=controls[0]["rows"] - 1, exceptions=controls[0]["exceptions"] - 1)
    (copy_of / "controls.json").write_text(json.dumps(controls))
    rewrite_manifest(copy_of)
    assert "proves no evidence row (a row was removed?)" in refusal(bare_python, copy_of)


def test_a_swapped_proof_is_refused_even_with_the_manifest_forged(
    bare_python: Path, copy_of: Path
) -> None:
    with (copy_of / "evidence" / "164-312-d.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    first, last = rows[0], rows[-1]
    swap_files(copy_of / first["proof"], copy_of / last["proof"])
    rewrite_manifest(copy_of)
    assert f"is not the inclusion proof of event {first['event_id']}" in refusal(
        bare_python, copy_of
    )
