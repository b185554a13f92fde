"""Replay and state digests (streams/replay.py, streams/digest.py): the reference the
worker's tables are compared with."""

from __future__ import annotations

from datetime import timedelta

from factorstream.settings import Settings
from factorstream.stream_config import replay_settings, settings_topology
from schemas import Event, encode, kafka_key
from schemas.codec import structured_headers
from schemas.fields import PolicyTier
from streams.digest import state_digest
from streams.replay import TopicRecord, merge_partitions, stored_fold_tables
from tests.factories import T0, sample_event
from verifiers.lockout import LockoutState, fold_lockout
from verifiers.policy import TIERS, lockout_policy

BUSINESS = TIERS[PolicyTier.BUSINESS]


def _records(events: list[Event], *, partition: int = 0) -> list[TopicRecord]:
    return [
        TopicRecord(
            partition,
            n,
            int(e.time.timestamp() * 1000),
            kafka_key(e),
            encode(e),
            structured_headers(),
        )
        for n, e in enumerate(events)
    ]


def _ms(event: Event) -> int:
    return int(event.time.timestamp() * 1000)


def _failures(subject: str, n: int) -> list[Event]:
    return [
        sample_event("auth.login.attempted", subject=subject, now=T0 + timedelta(seconds=10 * i))
        for i in range(n)
    ]


def test_replay_folds_once_per_id_and_counts_junk() -> None:
    events = _failures("u-1", BUSINESS.max_failures)
    records = _records([events[0], *events])  # the first one twice (a relay's re-send)
    junk = TopicRecord(0, 99, 0, b"k", b"][", [])
    replayed = replay_settings([*records, junk], Settings())

    assert (replayed.records, replayed.duplicates, replayed.dead_lettered) == (7, 1, 1)
    expected = LockoutState()
    for event in events:
        expected, _ = fold_lockout(expected, event, lockout_policy(BUSINESS))
    assert replayed.tables["lockout"][b"acme/u-1"] == expected.to_dict()
    assert replayed.derived["lockout.applied"] == 1


def test_two_replays_of_one_log_give_one_digest_and_a_different_log_another() -> None:
    log = _records(_failures("u-1", 4) + _failures("u-2", 6))
    first = state_digest(replay_settings(log, Settings()).tables)
    second = state_digest(replay_settings(log, Settings()).tables)
    shorter = state_digest(replay_settings(log[:-1], Settings()).tables)

    assert first == second and first.overall == second.overall
    assert first.entries["lockout"] == 2
    assert shorter.tables["lockout"] != first.tables["lockout"]
    assert shorter.overall != first.overall


def test_a_worker_table_digests_like_the_replay_whatever_positions_and_ids_it_keeps() -> None:
    replayed = replay_settings(_records(_failures("u-1", 3)), Settings())
    worker = {
        stage: {
            key: {**value, "applied": {"4": 1234}, "recent": []} for key, value in table.items()
        }
        for stage, table in replayed.stored.items()
    }
    worker["subjects"][b"acme/gone"] = {"version": 1, "states": {}, "applied": {"0": 3}}
    theirs = state_digest(stored_fold_tables(worker, settings_topology(Settings())))
    ours = state_digest(replayed.tables)
    assert ours.tables == theirs.tables and ours.entries == theirs.entries
    assert ours.entries["lockout"] == 1


def test_partitions_merge_by_record_time_keeping_each_partition_in_order() -> None:
    a = _records(_failures("u-1", 3), partition=0)
    b = _records(_failures("u-2", 3), partition=1)
    merged = list(merge_partitions([a, b]))
    assert [r.partition for r in merged] == [0, 1, 0, 1, 0, 1]
    assert [r.offset for r in merged if r.partition == 0] == [0, 1, 2]
