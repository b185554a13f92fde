"""A process of sinks only, on the real broker, scraped like the folding worker: ``factorstream
sink ledger|lake`` (a plain consumer group) and ``factorstream worker --role ledger`` (Faust)
serve ``/health``, ``/ready`` and ``/metrics`` on ``stream.probes_port``; ``/ready`` turns
ready once partitions are assigned; ``/metrics`` passes ``promtool check metrics`` and counts
exactly the events sent, per topic, with the consumer lag back to 0; the ledger's checkpoint
timestamp is absent until the ledger signs one, then present."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from factorstream.bench.events import synthetic_events
from factorstream.localkafka import ensure_topics, free_port
from factorstream.settings import TopicSettings
from streams.app import INGESTED_SUFFIX
from tests.integration.test_worker import _produce, _worker_env, running_worker, topics
from tests.integration.test_worker_metrics import _probe, _until
from tests.kafka_broker import KafkaBroker
from tests.prometheus import check_metrics, has, samples, scrape, total

__all__ = ["topics"]  # the fixture, re-used from test_worker

EVENTS, DERIVED = 400, 40
CHECKPOINT = "factorstream_ledger_last_checkpoint_timestamp_seconds"
CONSUMED = "factorstream_worker_records_consumed_total"
LAG = "factorstream_worker_consumer_lag_records"


@pytest.mark.parametrize(
    "command",
    [("sink", "ledger"), ("sink", "lake"), ("worker", "--role", "ledger")],
    ids=["sink-ledger", "sink-lake", "worker-role-ledger"],
)
def test_a_sink_process_exports_what_it_wrote_and_turns_ready(
    kafka_broker: KafkaBroker, topics: TopicSettings, tmp_path: Path, command: tuple[str, ...]
) -> None:
    name, port, log = command[-1], free_port(), tmp_path / "sink.log"
    env = _worker_env(kafka_broker, topics, tmp_path / "data", free_port()) | {
        "FACTORSTREAM_STREAM__PROBES_PORT": str(port),
        "FACTORSTREAM_LEDGER__CHECKPOINT_EVERY": "100",
    }
    ingested = f"{env['FACTORSTREAM_STREAM__APP_ID']}-{INGESTED_SUFFIX}"
    ensure_topics(kafka_broker.bootstrap, {ingested: topics.events_partitions})
    metrics = f"http://127.0.0.1:{port}/metrics"
    events = synthetic_events(EVENTS, subjects=50)
    with running_worker(env, log, [sys.executable, "-m", "factorstream.cli", *command]) as process:

        def ready() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return _probe(port, "/ready")[0] == 200
            except OSError:  # not listening yet
                return False

        assert _until(ready, timeout_s=90), (_probe(port, "/ready"), log.read_text())
        assert _probe(port, "/health") == (200, {"status": "up"})
        status, body = _probe(port, "/ready")
        assert body["ready"] is True and body["checks"]["partitions_assigned"], body
        before = scrape(metrics)
        assert not has(before, CHECKPOINT), "no checkpoint yet: the timestamp is absent"
        assert total(before, CONSUMED) == 0

        _produce(kafka_broker.bootstrap, ingested, events[: EVENTS - DERIVED])
        _produce(kafka_broker.bootstrap, topics.lockouts, events[EVENTS - DERIVED :])

        def caught_up() -> str | None:
            text = scrape(metrics)
            lag = total(text, LAG)
            done = total(text, CONSUMED) >= EVENTS and has(text, LAG) and lag == 0
            return text if done else None

        text = _until(caught_up, timeout_s=120)
        assert text, scrape(metrics)
        assert process.poll() is None

    check_metrics(before)
    check_metrics(text)
    assert total(text, CONSUMED, runner=name, topic=ingested) == EVENTS - DERIVED
    assert total(text, CONSUMED, runner=name, topic=topics.lockouts) == DERIVED
    assert total(text, "factorstream_worker_batch_duration_seconds_count", runner=name) >= 1
    lagged = {dict(labels)["topic"] for n, labels in samples(text) if n == LAG}
    assert {ingested, topics.lockouts} <= lagged, "lag per partition of what it reads"
    assert "Traceback" not in log.read_text()
    if name == "ledger":
        assert total(text, "factorstream_ledger_appended_events_total") == EVENTS
        assert total(text, "factorstream_ledger_tree_size_entries") == EVENTS
        assert total(text, "factorstream_ledger_append_duration_seconds_count") >= 1
        assert has(text, CHECKPOINT), "400 entries, a checkpoint every 100: signed"
        assert total(text, CHECKPOINT) > 0
    else:
        assert total(text, "factorstream_lake_written_events_total") == EVENTS
        assert total(text, "factorstream_lake_write_duration_seconds_count") >= 1
