"""``bench ingest``'s mapping rates: every adapter's ``map_records`` over records of its
format that it really maps (smoke-tested at a tiny size; figures come from full runs)."""

from __future__ import annotations

from collections import Counter

import pytest

from factorstream.bench.ingest import MAPPERS, mapping_of, mapping_rates
from factorstream.idp_config import MAPPINGS
from sources import Unmapped

DELIBERATE = {"not_mfa", "no_contract_type", "outcome_not_mapped"}
"""Why a record of the mixes may stay unmapped: outside MFA, not a defect of its shape."""


def test_every_adapter_of_the_registry_is_measured() -> None:
    assert list(MAPPERS) == list(MAPPINGS)


@pytest.mark.parametrize("provider", sorted(MAPPERS))
def test_the_records_are_the_same_for_a_seed_and_vary(provider: str) -> None:
    records = MAPPERS[provider].records(60)
    assert records == MAPPERS[provider].records(60)
    assert len({repr(record) for record in records}) == 60


@pytest.mark.parametrize("provider", sorted(MAPPERS))
def test_the_mix_is_mapped_as_the_adapter_maps_it(provider: str) -> None:
    """The synthetic records are of the adapter's format: most become events of several
    MFA types, the rest are unmapped on purpose (outside MFA), none as defective."""
    function, config = mapping_of(provider, MAPPERS[provider].source)
    results = [
        result for record in MAPPERS[provider].records(400) for result in function(record, config)
    ]
    unmapped = Counter(result.reason for result in results if isinstance(result, Unmapped))
    events = [result for result in results if not isinstance(result, Unmapped)]
    assert set(unmapped) <= DELIBERATE, unmapped
    assert len(events) >= 0.8 * 400
    types = {event.type for event in events}
    assert "auth.login.attempted" in types and len(types) >= 5
    assert sum(1 for kind in types if kind.startswith("mfa.")) >= 3
    assert len({event.subject for event in events}) > 50  # users vary
    assert len({event.data.client.ip for event in events if event.data.client}) > 50  # type: ignore[attr-defined]
    assert len({event.id for event in events}) == len(events)


def test_a_quick_run_measures_map_records_of_each_adapter_and_counts_events() -> None:
    result = mapping_rates(40)
    assert [m.name for m in result.contenders] == [
        f"{name} mapping (sources.{name}.map_records)" for name in MAPPERS
    ]
    assert all(m.events_per_s > 0 and m.events == 40 for m in result.contenders)
    assert result.baseline.name.startswith("json.loads")
    assert result.baseline.events == 40 * len(MAPPERS)
    assert result.unit == "records/s"
    assert "not records that mapped" in result.notes["events per record"]
    per_record = {name: float(result.notes[name].split()[0]) for name in MAPPERS}
    assert per_record["entra"] > 1  # a sign-in is several events, all counted
    assert all(0 < value <= per_record["entra"] for value in per_record.values())
    assert all("json.loads" in result.notes[name] for name in MAPPERS)
