"""The metrics catalogue: every metric the processes export is in docs/metrics.md; every
metric the alert rules and the Grafana dashboard use is one a process exports; the rules
pass ``promtool check rules`` and their unit tests (``promtool test rules``); every
process's exposition passes ``promtool check metrics``."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from alerts.metrics import AlertMetrics, reason_label
from dashboard.probes import DashboardMetrics
from sources.ingest_metrics import IngestMetrics
from streams.metrics import StreamMetrics
from tests.prometheus import check_metrics, check_rules, promtool
from verifiers.service.metrics import ServiceMetrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "factorstream-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "factorstream-rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "factorstream.json"
DOCS = ROOT / "docs" / "metrics.md"
NAME = re.compile(r"\bfactorstream_[a-z0-9_]+")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def _registries() -> dict[str, CollectorRegistry]:
    from verifiers.relay_metrics import RelayMetrics

    found = {}
    for part, make in (
        ("worker", StreamMetrics),
        ("service", ServiceMetrics),
        ("ingest", IngestMetrics),
        ("relay", RelayMetrics),
        ("alerts", AlertMetrics),
        ("dashboard", DashboardMetrics),
    ):
        registry = CollectorRegistry()
        metrics = make(registry)
        if isinstance(metrics, StreamMetrics):
            metrics.consumer(lambda: [("mfa.events", 0, 10, 7)], lambda: [("mfa.events", 0, 3)])
            metrics.checkpoint_signed(datetime(2026, 1, 1, tzinfo=UTC))  # absent until then
        found[part] = registry
    return found


def _exported() -> dict[str, str]:
    """Every exported family name → its type."""
    return {
        family.name: family.type
        for registry in _registries().values()
        for family in registry.collect()
    }


def _series_names() -> set[str]:
    """Every series name, and each family's own (a histogram named in a description)."""
    return set(_exported()) | {
        name + suffix for name, kind in _exported().items() for suffix in SUFFIXES.get(kind, ("",))
    }


def test_every_exported_metric_is_documented() -> None:
    documented = set(NAME.findall(DOCS.read_text()))
    for name, kind in _exported().items():
        shown = name + ("_total" if kind == "counter" else "")
        assert shown in documented, f"{shown} ({kind}) is not in docs/metrics.md"


def test_the_rules_and_the_dashboard_use_only_exported_metrics() -> None:
    exported = _series_names()
    for path in (RULES, RULE_TESTS, DASHBOARD):
        used = set(NAME.findall(path.read_text()))
        assert used, path
        assert used <= exported, f"{path.name}: unknown metrics {sorted(used - exported)}"


def test_the_dashboard_is_grafana_json_with_a_query_per_panel() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    graphs = [panel for panel in panels if panel["type"] != "row"]
    assert graphs and all(panel["targets"] and panel["datasource"] for panel in graphs)


def test_the_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    assert "SUCCESS: 7 rules found" in check_rules(RULES)
    done = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, (done.stdout + done.stderr).decode()


def test_each_process_s_metrics_pass_promtool_check_metrics() -> None:
    for part, registry in _registries().items():
        text = generate_latest(registry).decode()
        assert text.strip(), part
        check_metrics(text)


def test_dead_letter_reasons_are_bounded_labels() -> None:
    assert reason_label("HTTP 503") == "HTTP 503"
    assert reason_label("URLError: <urlopen error [Errno 111] Connection refused>") == "URLError"
    assert reason_label("") == "unknown"
