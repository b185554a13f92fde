"""A runner that is behind takes every batch queued for it as one (``Runner.take_queued``):
each partition's records stay in fetch order, and batches fetched before a rebalance are
left out (they are read again from the committed offsets)."""

from __future__ import annotations

from typing import Any, cast

from faust.types import TP

from streams.engine import Engine, Runner

A, B = TP("events", 0), TP("events", 1)


def _runner() -> tuple[Engine, Runner]:
    engine = Engine(cast(Any, object()))
    runner = Runner(cast(Any, object()), name="ingest", source=cast(Any, None))
    runner.engine = engine
    return engine, runner


def test_queued_batches_of_the_epoch_become_one_in_order() -> None:
    engine, runner = _runner()
    first: dict[TP, list[Any]] = {A: [0, 1]}
    shared = [2, 3]  # the same list handed to another runner of the topic
    runner.queue.put_nowait((engine.epoch, {A: shared, B: [10]}))
    runner.queue.put_nowait((engine.epoch, {B: [11, 12]}))
    merged = runner.take_queued(first)
    assert merged == {A: [0, 1, 2, 3], B: [10, 11, 12]}
    assert runner.queue.empty()
    assert first == {A: [0, 1]} and shared == [2, 3]  # no batch changed in place


def test_batches_fetched_before_a_rebalance_are_left_out() -> None:
    engine, runner = _runner()
    runner.queue.put_nowait((engine.epoch, {A: [2]}))
    engine.epoch += 1  # a rebalance: the batch in hand is of the new epoch, say
    runner.queue.put_nowait((engine.epoch, {B: [7]}))
    assert runner.take_queued({B: [6]}) == {B: [6, 7]}
    assert runner.queue.empty()


def test_nothing_queued_leaves_the_batch_as_it_is() -> None:
    _, runner = _runner()
    batch: dict[TP, list[Any]] = {A: [0]}
    assert runner.take_queued(batch) is batch
