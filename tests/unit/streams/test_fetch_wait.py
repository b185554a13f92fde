"""The worker's fetches: how long the broker may hold one (``stream.fetch_max_wait_ms``).

Faust creates aiokafka's consumer with a fixed 1,500 ms; aiokafka sends a broker one fetch
at a time, so a partition drained meanwhile waits behind a fetch held for quiet ones
(docs/faust-consumer-faults.md). The figure it costs is in ``bench pipeline``."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from factorstream.settings import Settings, StreamSettings
from factorstream.stream_config import pipeline_config
from streams.app import create_pipeline
from streams.consumer import StoppingConsumerThread
from streams.faust_fence import PRIVATE_PARTS, FaustChanged, check_faust, set_fetch_max_wait


async def test_the_worker_consumer_asks_the_broker_to_hold_a_fetch_as_long_as_configured(
    tmp_path: Path,
) -> None:
    stream = StreamSettings(
        store="memory://",
        app_id=f"fetch-{uuid.uuid4().hex[:8]}",
        roles=("folds",),
        fetch_max_wait_ms=37,
    )
    app = create_pipeline(pipeline_config(Settings(data_dir=tmp_path, stream=stream))).app
    thread = app.consumer._thread  # type: ignore[attr-defined]
    assert isinstance(thread, StoppingConsumerThread)
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 37  # what aiokafka's fetcher is created with
    finally:
        await consumer.stop()


@pytest.mark.parametrize("value", ["0", "-5", "20000", "20ms", ""])
def test_a_fetch_wait_out_of_range_or_not_a_number_is_refused_naming_the_setting(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACTORSTREAM_STREAM__FETCH_MAX_WAIT_MS", value)
    with pytest.raises(ValidationError, match="fetch_max_wait_ms"):
        Settings()


def test_a_consumer_without_the_attribute_is_a_changed_dependency_not_a_silent_default() -> None:
    with pytest.raises(FaustChanged, match="_fetch_max_wait_ms"):
        set_fetch_max_wait(SimpleNamespace(), 20)


def test_the_consumer_factory_is_among_the_fenced_private_parts() -> None:
    fenced = {(getattr(owner, "__name__", owner), name) for owner, name, _ in PRIVATE_PARTS}
    assert ("AIOKafkaConsumerThread", "_create_worker_consumer") in fenced
    assert check_faust() == []  # present in the faust-streaming this project pins
