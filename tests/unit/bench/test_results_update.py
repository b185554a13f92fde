"""``bench all --update``: results of benchmarks not run now are kept from the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from factorstream.bench import bench_family
from factorstream.cli.bench import BENCHES, _kept_results

RESULTS = Path(__file__).resolve().parents[3] / "factorstream" / "bench" / "results.json"


def test_every_committed_result_belongs_to_a_benchmark() -> None:
    names = [str(d["bench"]) for d in json.loads(RESULTS.read_text())]
    assert {bench_family(name) for name in names} == set(BENCHES)
    assert bench_family("ledger-append-postgresql") == "ledger"
    assert bench_family("analytics queries over 20,000 events") == "analytics"
    assert bench_family("pipeline-latency") == "pipeline"


def test_kept_results_are_those_of_the_skipped_benchmarks(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(RESULTS.read_text())
    kept = _kept_results(path, ["codec", "pipeline"])
    assert set(kept) == {"codec", "pipeline"}
    assert [d["bench"] for d in kept["codec"]] == ["codec"]
    committed = {str(d["bench"]) for d in json.loads(RESULTS.read_text())}
    assert {d["bench"] for d in kept["pipeline"]} == {
        name for name in committed if bench_family(name) == "pipeline"
    }
    assert {"pipeline", "pipeline-latency", "pipeline-two-workers"} <= {
        d["bench"] for d in kept["pipeline"]
    }


def test_update_without_a_file_or_with_junk_says_so(tmp_path: Path) -> None:
    with pytest.raises(typer.Exit) as missing:
        _kept_results(tmp_path / "missing.json", ["codec"])
    assert missing.value.exit_code == 1
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    with pytest.raises(typer.Exit):
        _kept_results(junk, ["codec"])
