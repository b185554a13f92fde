"""The worker's consumer delivers every record of a partition, in order, on a real broker.

Each test runs ``tests/integration/inorder_app.py`` (one agent writing the offsets it
sees) as a real Faust worker against the session's broker. Losing fetched records is
what Faust itself does when its ``getmany`` breaks off a batch at a rebalance (see
``streams/delivery.py``); the app reproduces it on demand.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer

from factorstream.localkafka import ensure_topics, free_port
from streams.consumer import HELD_COMMITS_BEFORE_WARNING
from tests.integration.records import group_offsets
from tests.kafka_broker import KafkaBroker
from tests.support import wait_for

RECORDS = 30


@dataclass
class TestApp:
    __test__ = False  # not a pytest class

    seen: Path
    group: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """What the app's worker has logged so far."""
        return self.log_path.read_text(errors="replace")

    def saw(self, offset: int) -> bool:
        """Whether the agent has seen ``offset`` yet (fails if the app has exited)."""
        assert self.process.poll() is None, "the test app exited; its log is printed below"
        return offset in offsets_seen(self.seen)


@contextmanager
def inorder_worker(
    broker: KafkaBroker,
    tmp_path: Path,
    *,
    topic: str,
    consumer: str,
    lose: str = "",
    lose_delivered: str = "",
    group: str | None = None,
) -> Iterator[TestApp]:
    """The test app as a worker process (its agent appends to ``tmp_path/seen.txt``)."""
    group = group or f"inorder-{uuid.uuid4().hex[:8]}"
    seen, log = tmp_path / "seen.txt", tmp_path / "log"
    env = {
        "INORDER_APP_ID": group,
        "INORDER_BOOTSTRAP": broker.bootstrap,
        "INORDER_TOPIC": topic,
        "INORDER_CONSUMER": consumer,
        "INORDER_LOSE": lose,
        "INORDER_LOSE_DELIVERED": lose_delivered,
        "INORDER_OUT": str(seen),
        "INORDER_PORT": str(free_port()),
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    command = [sys.executable, "-m", "faust", "-A", "tests.integration.inorder_app"]
    command += ["worker", "--loglevel", "info", "--without-web"]
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our interpreter, our test app
            [*command], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path
        )
    try:
        yield TestApp(seen, group, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(log.read_text(errors="replace")[-4000:])


def offsets_seen(seen: Path) -> list[int]:
    """The offsets the app's agent saw, in order."""
    text = seen.read_text() if seen.exists() else ""
    return [int(line.split()[1]) for line in text.splitlines()]


def produce(bootstrap: str, topic: str, transactions: list[int] | None = None) -> None:
    """``RECORDS`` plain records, or (``transactions``) that many records per transaction,
    each transaction ending in a commit marker that takes an offset of its own."""

    async def run() -> None:
        txn = transactions is not None
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            **({"transactional_id": f"inorder-{uuid.uuid4().hex[:8]}"} if txn else {}),
        )
        await producer.start()
        try:
            for size in transactions or [RECORDS]:
                if txn:
                    await producer.begin_transaction()
                for n in range(size):
                    await producer.send(topic, f"record {n}".encode(), partition=0)
                if txn:
                    await producer.commit_transaction()
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(run())


def committed(broker: KafkaBroker, app: TestApp, topic: str) -> int | None:
    """The app's group's committed offset of ``topic``'s partition 0."""
    return group_offsets(broker.bootstrap, app.group).get(f"{topic}[0]")


def read_and_committed(broker: KafkaBroker, app: TestApp, topic: str) -> None:
    """Wait until the app's agent has seen the last record and its group committed it."""
    wait_for(lambda: app.saw(RECORDS - 1), timeout=120, what="the last record")
    wait_for(
        lambda: committed(broker, app, topic) == RECORDS,
        timeout=30,
        what="the group's commit of the whole partition",
    )


def assert_a_restart_reads_again(
    broker: KafkaBroker, tmp_path: Path, topic: str, first: TestApp, *, start: int
) -> None:
    """A second worker of ``first``'s group reads ``start``… again (after the
    ``RECORDS - 1`` records ``first`` saw) and commits the whole partition."""
    with inorder_worker(
        broker, tmp_path, topic=topic, consumer="inorder", group=first.group
    ) as second:
        read_and_committed(broker, second, topic)
    assert offsets_seen(second.seen)[RECORDS - 1 :] == list(range(start, RECORDS)), "read again"


def new_topic(broker: KafkaBroker) -> str:
    name = f"inorder-{uuid.uuid4().hex[:8]}"
    ensure_topics(broker.bootstrap, {name: 1})
    return name


def test_faust_own_consumer_skips_records_it_fetched_and_dropped(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """The fault the worker's consumer guards against, reproduced: Faust's consumer
    never delivers offsets 5-9 and its group still commits past them."""
    topic = new_topic(kafka_broker)
    produce(kafka_broker.bootstrap, topic)
    with inorder_worker(kafka_broker, tmp_path, topic=topic, consumer="faust", lose="5-9") as app:
        read_and_committed(kafka_broker, app, topic)
    assert offsets_seen(app.seen) == [n for n in range(RECORDS) if not 5 <= n <= 9]


def test_worker_consumer_reads_again_what_was_fetched_and_dropped(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    topic = new_topic(kafka_broker)
    produce(kafka_broker.bootstrap, topic)
    with inorder_worker(kafka_broker, tmp_path, topic=topic, consumer="inorder", lose="5-9") as app:
        read_and_committed(kafka_broker, app, topic)
    assert offsets_seen(app.seen) == list(range(RECORDS)), "each offset once, in order"
    assert "seeking back to 5" in (tmp_path / "log").read_text()


def test_worker_consumer_goes_on_over_real_holes_in_the_log(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """Transaction commit markers take offsets no consumer ever reads: the consumer
    checks once that the hole is real and goes on, rather than seeking back forever."""
    topic = new_topic(kafka_broker)
    produce(kafka_broker.bootstrap, topic, transactions=[5, 5, 5])  # markers at 5, 11, 17
    with inorder_worker(kafka_broker, tmp_path, topic=topic, consumer="inorder") as app:
        wait_for(lambda: app.saw(16), timeout=120, what="the last record")
        wait_for(
            lambda: committed(kafka_broker, app, topic) == 17,
            timeout=30,
            what="the group's commit past the holes (the last marker is at 17)",
        )
    assert offsets_seen(app.seen) == [*range(0, 5), *range(6, 11), *range(12, 17)]
    log = (tmp_path / "log").read_text()
    assert "offsets 5..5 are not in the log" in log
    assert "offsets 11..11 are not in the log" in log
    assert log.count("seeking back") == 2, "one check per hole"


def test_a_delivered_record_the_agent_never_saw_is_never_committed_over(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """Offset 5 is delivered by the consumer and lost before the agent (as Faust's fetch
    loop drops it when a seek races a hand-over). The worker's consumer holds the commit
    at 5, so a restart reads 5 again: nothing is lost."""
    topic = new_topic(kafka_broker)
    produce(kafka_broker.bootstrap, topic)
    with inorder_worker(
        kafka_broker, tmp_path, topic=topic, consumer="inorder", lose_delivered="5-5"
    ) as first:
        wait_for(lambda: first.saw(RECORDS - 1), timeout=120, what="the last record")
        wait_for(lambda: committed(kafka_broker, first, topic) == 5, timeout=30, what="commit")
        time.sleep(3)  # six more commit intervals: the commit must stay at 5
        assert committed(kafka_broker, first, topic) == 5
        warning = f"{topic}[0]: commit held at offset 5 for {HELD_COMMITS_BEFORE_WARNING} commits"
        wait_for(  # the operator is told
            lambda: warning in first.log(),
            timeout=30,
            what="the warning about the held commit",
        )
    assert offsets_seen(first.seen) == [n for n in range(RECORDS) if n != 5]
    assert_a_restart_reads_again(kafka_broker, tmp_path, topic, first, start=5)


def test_a_lost_first_record_of_a_partition_never_committed_is_not_committed_over(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """Before a group's first commit of a partition there is no committed offset to hold
    at (Faust's rule checks nothing then): the consumer holds at the offset it sought to,
    the start of the log, so losing offset 0 leaves the partition uncommitted."""
    topic = new_topic(kafka_broker)
    produce(kafka_broker.bootstrap, topic)
    with inorder_worker(
        kafka_broker, tmp_path, topic=topic, consumer="inorder", lose_delivered="0-0"
    ) as first:
        wait_for(lambda: first.saw(RECORDS - 1), timeout=120, what="the last record")
        time.sleep(3)  # six commit intervals: nothing may be committed
        assert committed(kafka_broker, first, topic) is None
    assert offsets_seen(first.seen) == list(range(1, RECORDS))
    assert_a_restart_reads_again(kafka_broker, tmp_path, topic, first, start=0)


def test_faust_commit_rule_commits_over_a_delivered_record_the_agent_never_saw(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """The same loss under Faust's own commit rule: after committing 5 it takes the
    acknowledged 6 for the offset due and commits the whole partition; 5 is lost."""
    topic = new_topic(kafka_broker)
    produce(kafka_broker.bootstrap, topic)
    with inorder_worker(
        kafka_broker, tmp_path, topic=topic, consumer="lenient", lose_delivered="5-5"
    ) as app:
        read_and_committed(kafka_broker, app, topic)
    assert offsets_seen(app.seen) == [n for n in range(RECORDS) if n != 5]
