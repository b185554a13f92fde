"""The tamper suite: every edit of the stored ledger is found, and the first bad entry named.

Runs on SQLite and on a real PostgreSQL server. Each case edits the database behind
the ledger's back with plain SQL, then ``factorstream audit verify`` must exit non-zero
naming the entry, and ``Ledger.verify`` must report the same entry.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from kafka import KafkaProducer

from audit import canonical
from audit.checkpoints import format_time, load_signing_key, public_pem
from audit.ledger import Ledger
from audit.merkle import Frontier, leaf_hash
from audit.sink import checkpoint_event
from audit.tables import checkpoints, entries, head, nodes
from factorstream.localkafka import ensure_topics, free_port
from schemas import encode
from schemas.signing import key_id_of
from tests.factories import T0, sample_event
from tests.kafka_broker import KafkaBroker
from tests.unit.audit.ledger_support import (
    events,
    flat,
    open_test_ledger,
    run_cli,
    settings_env,
)

SIZE = 40  # checkpoints every 10 entries: 10, 20, 30, 40


@pytest.fixture
def ledger(ledger_url: str, tmp_path: Path) -> Iterator[Ledger]:
    ledger = open_test_ledger(tmp_path, ledger_url, every=10)
    batch = events(SIZE, subjects=4)
    for start in range(0, SIZE, 7):
        ledger.append(batch[start : start + 7], now=T0)
    yield ledger
    ledger.engine.dispose()


def _row(connection: sa.Connection, seq: int) -> dict[str, object]:
    found = connection.execute(sa.select(entries).where(entries.c.seq == seq)).mappings().one()
    return dict(found)


def change_payload_byte(connection: sa.Connection) -> int:
    entry = bytes(_row(connection, 13)["entry"])  # type: ignore[arg-type]
    at = entry.index(b'"acme"') + 2
    changed = entry[:at] + b"A" + entry[at + 1 :]
    connection.execute(entries.update().where(entries.c.seq == 13).values(entry=changed))
    return 13


def change_stored_hash(connection: sa.Connection) -> int:
    forged = hashlib.sha256(b"forged").digest()
    connection.execute(entries.update().where(entries.c.seq == 22).values(leaf_hash=forged))
    return 22


def change_stored_node_hash(connection: sa.Connection) -> int:
    """The interior node over entries 16..31 (level 4, completed by entry 31)."""
    forged = hashlib.sha256(b"forged").digest()
    changed = connection.execute(
        nodes.update().where(nodes.c.leaf == 31, nodes.c.level == 4).values(hash=forged)
    )
    assert changed.rowcount == 1
    return 31


def delete_middle_entry(connection: sa.Connection) -> int:
    connection.execute(entries.delete().where(entries.c.seq == 17))
    return 17


def truncate_newest(connection: sa.Connection) -> int:
    """Delete entries 35..39 and make the head and nodes look like a 35-entry tree."""
    connection.execute(entries.delete().where(entries.c.seq >= 35))
    connection.execute(nodes.delete().where(nodes.c.leaf >= 35))
    last = connection.scalar(sa.select(entries.c.leaf_hash).where(entries.c.seq == 34))
    connection.execute(head.update().values(size=35, last_leaf=last, checkpoint_size=30))
    return 35


def swap_two_entries(connection: sa.Connection) -> int:
    first, second = _row(connection, 13), _row(connection, 18)
    columns = {k: v for k, v in first.items() if k != "seq"}
    others = {k: v for k, v in second.items() if k != "seq"}
    connection.execute(entries.update().where(entries.c.seq == 13).values(event_id="swap"))
    connection.execute(entries.update().where(entries.c.seq == 18).values(**columns))
    connection.execute(entries.update().where(entries.c.seq == 13).values(**others))
    return 13


def _insert_forged(connection: sa.Connection, at: int) -> int:
    """Shift entries ``at``.. up by one and put a well-formed forged entry at ``at``."""
    connection.execute(entries.update().where(entries.c.seq >= at).values(seq=-(entries.c.seq + 1)))
    connection.execute(entries.update().where(entries.c.seq < 0).values(seq=-entries.c.seq))
    prev = connection.scalar(sa.select(entries.c.leaf_hash).where(entries.c.seq == at - 1))
    forged = sample_event("admin.override.approved", subject="u-forged", now=T0)
    entry = canonical.encode_entry(
        forged,
        seq=at,
        prev=bytes(prev),
        recorded_at=format_time(T0),
        key_id=None,
        seal=None,
        personal={},
    )
    connection.execute(
        entries.insert().values(
            seq=at,
            event_id=forged.id,
            tenant=forged.tenant,
            subject=forged.subject,
            event_type=forged.type,
            event_time=forged.time,
            recorded_at=T0,
            entry=entry,
            leaf_hash=leaf_hash(entry),
        )
    )
    return at


def insert_forged_entry_at_odd_position(connection: sa.Connection) -> int:
    return _insert_forged(connection, 13)


def insert_forged_entry_at_even_position(connection: sa.Connection) -> int:
    return _insert_forged(connection, 14)


TAMPERING: list[Callable[[sa.Connection], int]] = [
    change_payload_byte,
    change_stored_hash,
    change_stored_node_hash,
    delete_middle_entry,
    truncate_newest,
    swap_two_entries,
    insert_forged_entry_at_odd_position,
    insert_forged_entry_at_even_position,
]


def test_the_untouched_ledger_verifies(ledger: Ledger, ledger_url: str, tmp_path: Path) -> None:
    report = ledger.verify()
    assert report.ok, report.problems
    assert (report.size, report.checkpoints, report.unsigned) == (SIZE, 4, 0)
    result = run_cli(settings_env(tmp_path, ledger_url), "verify", "--no-checkpoints-topic")
    assert result.exit_code == 0, result.output
    assert f"{SIZE} entries and 4 signed checkpoints verify" in flat(result)


@pytest.mark.parametrize("tamper", TAMPERING, ids=lambda f: f.__name__)
def test_tampering_is_found_and_the_first_bad_entry_named(
    ledger: Ledger, ledger_url: str, tmp_path: Path, tamper: Callable[[sa.Connection], int]
) -> None:
    with ledger.engine.begin() as connection:
        first_bad = tamper(connection)

    report = ledger.verify()
    assert not report.ok
    assert report.first_bad_entry == first_bad, report.problems

    result = run_cli(settings_env(tmp_path, ledger_url), "verify", "--no-checkpoints-topic")
    assert result.exit_code == 1, result.output
    assert f"first bad entry: {first_bad}" in flat(result)
    assert "Traceback" not in flat(result)


def test_a_forged_checkpoint_signature_is_reported(ledger: Ledger) -> None:
    with ledger.engine.begin() as connection:
        connection.execute(
            checkpoints.update().where(checkpoints.c.tree_size == 20).values(signature=bytes(64))
        )
    report = ledger.verify()
    assert not report.ok
    assert report.first_bad_entry is None
    assert "checkpoint of size 20" in report.problems[0].message
    assert "signature is invalid" in report.problems[0].message


def test_a_published_copy_of_a_checkpoint_catches_a_truncation_hidden_from_the_database(
    ledger: Ledger, ledger_url: str, tmp_path: Path
) -> None:
    """Entries 35.. and the checkpoint over 40 deleted, the head rewritten to match."""
    published = tmp_path / "checkpoints.jsonl"  # as read off the checkpoints topic
    published.write_bytes(
        b"\n".join(encode(checkpoint_event(c, source=ledger.source)) for c in ledger.checkpoints())
    )
    with ledger.engine.begin() as connection:
        truncate_newest(connection)
        connection.execute(checkpoints.delete().where(checkpoints.c.tree_size == 40))
        frontier = Frontier()
        for leaf in connection.scalars(sa.select(entries.c.leaf_hash).order_by(entries.c.seq)):
            frontier.append(bytes(leaf))
        connection.execute(head.update().values(frontier=frontier.encode()))
    assert ledger.verify().ok  # the database alone is consistent again

    env = settings_env(tmp_path, ledger_url)
    result = run_cli(env, "verify", "--no-checkpoints-topic", "--checkpoint-file", str(published))
    assert result.exit_code == 1
    assert "first bad entry: 35" in flat(result)
    assert "entries 35..39 are missing" in flat(result)


def _publish(bootstrap: str, topic: str, ledger: Ledger) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for checkpoint in ledger.checkpoints():
            producer.send(topic, value=encode(checkpoint_event(checkpoint, source=ledger.source)))
        producer.flush(timeout=30)
    finally:
        producer.close()


def test_a_ledger_rebuilt_without_a_subject_and_signed_anew_fails_against_outside_anchors(
    ledger: Ledger, ledger_url: str, tmp_path: Path, kafka_broker: KafkaBroker
) -> None:
    """The attack: someone with write access to the database rebuilds the ledger without
    one subject's entries and signs it with a key of their own. Against its own keys it
    verifies (and the CLI says that nothing outside vouched for it); against the pinned
    key, or the checkpoints published on the topic at signing time, it fails."""
    original_pem = tmp_path / "original.pem"
    signing = load_signing_key(tmp_path / "keys" / "ledger-signing.pem")
    original_pem.write_bytes(public_pem(signing.public_key()))
    topic = f"test.checkpoints.{uuid.uuid4().hex[:10]}"
    ensure_topics(kafka_broker.bootstrap, {topic: 1})
    _publish(kafka_broker.bootstrap, topic, ledger)
    outside = {"FACTORSTREAM_KAFKA_BOOTSTRAP": kafka_broker.bootstrap}
    outside["FACTORSTREAM_TOPICS__CHECKPOINTS"] = topic

    honest = run_cli(
        settings_env(tmp_path, ledger_url, **outside), "verify", "--public-key", str(original_pem)
    )
    assert honest.exit_code == 0, honest.output
    assert f"anchored by 1 pinned keys, 4 checkpoints from {topic}" in flat(honest)

    forged_dir = tmp_path / "forged"
    forged_url = f"sqlite:///{forged_dir / 'ledger.db'}"
    forged = open_test_ledger(forged_dir, forged_url, every=10)
    kept = [e for e in events(SIZE, subjects=4) if e.subject != "u-1"]
    forged.append(kept, now=T0)
    assert forged.verify().ok and forged.size() == SIZE - SIZE // 4

    alone = run_cli(settings_env(forged_dir, forged_url), "verify", "--no-checkpoints-topic")
    assert alone.exit_code == 0
    assert "nothing outside the database vouched for it" in flat(alone)

    pinned = run_cli(
        settings_env(forged_dir, forged_url),
        "verify",
        "--no-checkpoints-topic",
        "--public-key",
        str(original_pem),
    )
    assert pinned.exit_code == 1
    assert "which is not pinned" in flat(pinned)
    forged_signing = load_signing_key(forged_dir / "keys" / "ledger-signing.pem")
    forged_key = key_id_of(forged_signing.public_key())
    assert f"the database holds key {forged_key}, which is not pinned" in flat(pinned)

    against_topic = run_cli(settings_env(forged_dir, forged_url, **outside), "verify")
    assert against_topic.exit_code == 1, against_topic.output
    assert "does not verify" in flat(against_topic)


def test_verify_says_so_when_the_checkpoints_topic_cannot_be_read(
    ledger: Ledger, ledger_url: str, tmp_path: Path
) -> None:
    nobody = {"FACTORSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}
    result = run_cli(settings_env(tmp_path, ledger_url, **nobody), "verify")
    assert result.exit_code == 1
    assert "cannot read the checkpoints topic" in flat(result)
    assert "--no-checkpoints-topic" in flat(result)
