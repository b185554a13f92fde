"""The ledger on SQLite: idempotent appends, checkpoints, proofs, erasure, key rotation."""

from __future__ import annotations

import base64
import json
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from audit.checkpoints import load_signing_key, public_pem
from audit.ledger import Ledger, LedgerError, open_ledger
from audit.rows import ERASED, ExportFilter
from audit.tables import subject_keys
from audit.verify import ProofRefused, check_proof_document, checkpoints_of
from factorstream.localkafka import free_port
from schemas import encode
from schemas.signing import key_id_of
from tests.factories import CONTROL_KEY, T0, sample_event
from tests.unit.audit.ledger_support import (
    CLIENT_IP,
    DEVICE_ID,
    TYPES,
    events,
    flat,
    open_test_ledger,
    run_cli,
    settings_env,
)
from verifiers.publish import Outbox, outbox_engine, outbox_events

PLAINTEXTS = [CLIENT_IP.encode(), DEVICE_ID.encode(), b"Mozilla/5.0 (X11", b"+4915112345678"]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def ledger(tmp_path: Path, url: str) -> Ledger:
    return open_test_ledger(tmp_path, url, every=10, interval_s=60)


def _at(document: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        document = document[part]
    return document


def _pems(ledger: Ledger) -> list[bytes]:
    return [public_pem(key) for key in ledger.public_keys().values()]


def test_appends_are_idempotent_by_event_id(ledger: Ledger) -> None:
    batch = events(12)
    first = ledger.append([*batch[:8], batch[0]], now=T0)
    assert (first.appended, first.skipped, first.size) == (8, 1, 8)
    again = ledger.append([encode(e) for e in batch], now=T0)  # raw bytes are decoded
    assert (again.appended, again.skipped, again.size) == (4, 8, 12)
    assert [row.event["id"] for row in ledger.rows()] == [e.id for e in batch]
    assert ledger.verify().ok


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_rows_read_newest_first_in_chunks_with_filters(ledger: Ledger, chunk: int) -> None:
    batch = events(12, subjects=2)
    ledger.append(batch, now=T0)
    newest = [row.event["id"] for row in ledger.rows(chunk=chunk, newest_first=True)]
    assert newest == [e.id for e in reversed(batch)]
    only = ledger.rows(ExportFilter(subject="u-1"), chunk=chunk, newest_first=True)
    assert [row.event["id"] for row in only] == [
        e.id for e in reversed(batch) if e.subject == "u-1"
    ]


def test_checkpoints_every_n_entries_and_after_the_interval(ledger: Ledger) -> None:
    result = ledger.append(events(25), now=T0)
    assert [c.tree_size for c in result.checkpoints] == [10, 20]
    assert ledger.tick(now=T0 + timedelta(seconds=59)) == []
    (late,) = ledger.tick(now=T0 + timedelta(seconds=60))
    assert late.tree_size == 25
    assert ledger.tick(now=T0 + timedelta(hours=1)) == []  # nothing new to sign
    after = ledger.append(events(1, start=25), now=T0 + timedelta(hours=2))
    assert [c.tree_size for c in after.checkpoints] == [26]  # the interval had passed
    assert [c.tree_size for c in ledger.unpublished()] == [10, 20, 25, 26]
    ledger.mark_published([10, 20], now=T0)
    assert [c.tree_size for c in ledger.unpublished()] == [25, 26]


def test_inclusion_and_consistency_proofs_verify_offline(ledger: Ledger, tmp_path: Path) -> None:
    batch = events(30)
    ledger.append(batch, now=T0)
    pems = _pems(ledger)
    for event in batch[::7]:
        document = ledger.prove(event.id)
        assert document["checkpoint"]["tree_size"] == 30
        assert "inclusion" in check_proof_document(json.dumps(document), public_keys=pems).kind
    older = ledger.prove(batch[3].id, checkpoint=10)
    check_proof_document(json.dumps(older), public_keys=pems)
    check_proof_document(json.dumps(ledger.consistency(10, 30)), public_keys=pems)
    check_proof_document(json.dumps(ledger.consistency(20)), public_keys=pems)
    with pytest.raises(LedgerError, match="signed before entry 12"):
        ledger.prove(batch[12].id, checkpoint=10)
    with pytest.raises(LedgerError, match="no checkpoint of size 11"):
        ledger.prove(batch[3].id, checkpoint=11)
    with pytest.raises(LedgerError, match="not in the ledger"):
        ledger.prove("00000000-0000-7000-8000-000000000000")
    tail = events(1, start=30)[0]
    ledger.append([tail], now=T0)
    with pytest.raises(LedgerError, match="not yet covered by a signed checkpoint"):
        ledger.prove(tail.id)


def test_bad_proofs_and_checkpoints_are_refused_with_a_reason(
    ledger: Ledger, tmp_path: Path
) -> None:
    batch = events(20)
    ledger.append(batch, now=T0)
    pems = _pems(ledger)
    good = ledger.prove(batch[4].id, checkpoint=10)
    other = ledger.prove(batch[4].id, checkpoint=20)

    wrong_size = {**good, "checkpoint": other["checkpoint"]}  # path of 10, checkpoint of 20
    with pytest.raises(ProofRefused, match="root hash|deep"):
        check_proof_document(json.dumps(wrong_size), public_keys=pems)

    forged = {**good, "checkpoint": {**good["checkpoint"], "tree_size": 20}}
    with pytest.raises(ProofRefused, match="signature .* is invalid"):
        check_proof_document(json.dumps(forged), public_keys=pems)

    zeros = "A" * 86 + "=="  # 64 zero bytes, base64
    bad_sig = {**good, "checkpoint": {**good["checkpoint"], "signature": zeros}}
    with pytest.raises(ProofRefused, match="signature .* is invalid"):
        check_proof_document(json.dumps(bad_sig), public_keys=pems)

    stranger = public_pem(load_signing_key(tmp_path / "stranger.pem").public_key())
    with pytest.raises(ProofRefused, match="not among the public keys"):
        check_proof_document(json.dumps(good), public_keys=[stranger])

    text = json.dumps(good)
    for garbage in (text[: len(text) // 2], "", "[]", "not json", '{"kind": "inclusion"}'):
        with pytest.raises(ProofRefused):
            check_proof_document(garbage, public_keys=pems)
    moved = {**good, "leaf_index": 5}
    with pytest.raises(ProofRefused):
        check_proof_document(json.dumps(moved), public_keys=pems)
    entry_changed = {**good, "entry": good["entry"][:-8] + "AAAAAAAA"}
    with pytest.raises(ProofRefused, match="do not hash to leaf_hash"):
        check_proof_document(json.dumps(entry_changed), public_keys=pems)


def test_the_cli_proves_checks_and_refuses(ledger: Ledger, tmp_path: Path, url: str) -> None:
    batch = events(20)
    ledger.append(batch, now=T0)
    env = settings_env(tmp_path, url)
    proof_file, key_file = tmp_path / "proof.json", tmp_path / "ledger.pub"
    key_file.write_bytes(_pems(ledger)[0])
    made = run_cli(env, "prove", batch[7].id, "--checkpoint", "10", "--output", str(proof_file))
    assert made.exit_code == 0, made.output
    checked = run_cli(env, "check-proof", str(proof_file), "--public-key", str(key_file))
    assert checked.exit_code == 0, checked.output
    assert "entry 7" in flat(checked)

    consistency_file = tmp_path / "consistency.json"
    made = run_cli(env, "consistency", "10", "20", "--output", str(consistency_file))
    assert made.exit_code == 0, made.output
    checked = run_cli(env, "check-proof", str(consistency_file), "--public-key", str(key_file))
    assert checked.exit_code == 0 and "extends its first 10 entries" in flat(checked)

    document = json.loads(proof_file.read_text())
    document["checkpoint"]["signature"] = document["checkpoint"]["signature"][::-1]
    proof_file.write_text(json.dumps(document))
    refused = run_cli(env, "check-proof", str(proof_file), "--public-key", str(key_file))
    assert refused.exit_code == 1
    assert "proof refused" in flat(refused) and "Traceback" not in flat(refused)

    proof_file.write_text(proof_file.read_text()[:100])
    refused = run_cli(env, "check-proof", str(proof_file), "--public-key", str(key_file))
    assert refused.exit_code == 1 and "not JSON" in flat(refused)

    missing = run_cli(env, "prove", "00000000-0000-7000-8000-000000000000")
    assert missing.exit_code == 1 and "not in the ledger" in flat(missing)
    wrong = run_cli(env, "consistency", "10", "15")
    assert wrong.exit_code == 1 and "no checkpoint of size 15" in flat(wrong)


def test_personal_data_is_never_stored_in_clear_and_erasure_shreds_it(
    ledger: Ledger, tmp_path: Path, url: str
) -> None:
    batch = events(2 * len(TYPES), subjects=2)  # u-0 and u-1, every event type for each
    ledger.append(batch, now=T0)
    before = ledger.prove(batch[0].id)  # batch[0] is u-0's
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("ledger.db*"))  # with the WAL
    assert len(raw) > 100_000
    for plaintext in PLAINTEXTS:
        assert plaintext not in raw
    sealed_u0 = [row for row in ledger.rows() if row.event["subject"] == "u-0"]
    assert sealed_u0[0].event["data"]["client"]["ip"] == CLIENT_IP
    assert sealed_u0[0].erased == ()

    with ledger.engine.connect() as connection:
        (wrapped,) = connection.execute(
            subject_keys.select().where(subject_keys.c.owner == "acme/u-0")
        ).fetchall()
    erasure = ledger.erase(
        "acme", "u-0", now=T0 + timedelta(days=1), requested_by="dpo-1", signer=CONTROL_KEY
    )
    assert erasure.key_ids == [wrapped.key_id]
    assert erasure.event.type == "privacy.subject.erased"

    rows = list(ledger.rows())
    erased = [r for r in rows if r.event["subject"] == "u-0" and r.erased]
    assert erased and all(_at(r.event, path) == ERASED for r in erased for path in r.erased)
    assert any("data.client.ip" in r.erased for r in erased)
    assert any("data.ip" in r.erased for r in erased)  # lockout / IP block events
    kept = [r for r in rows if r.event["subject"] == "u-1" and "client" in r.event["data"]]
    assert kept and all(r.event["data"]["client"]["ip"] == CLIENT_IP for r in kept)
    for row in ledger.rows(ExportFilter(subject="u-0")):
        assert CLIENT_IP not in json.dumps(row.event) and DEVICE_ID not in json.dumps(row.event)
    assert rows[-1].event["type"] == "privacy.subject.erased"

    raw = b"".join(p.read_bytes() for p in tmp_path.glob("ledger.db*"))
    for plaintext in PLAINTEXTS:
        assert plaintext not in raw
    assert bytes(wrapped.wrapped) not in raw  # the wrapped key is gone from the file too
    some_ciphertext = json.loads(json.dumps(before))["entry"]
    assert some_ciphertext  # the entry (with its ciphertext) is unchanged:
    assert ledger.prove(batch[0].id, checkpoint=before["checkpoint"]["tree_size"]) == before
    check_proof_document(json.dumps(before), public_keys=_pems(ledger))
    assert ledger.verify().ok
    result = run_cli(settings_env(tmp_path, url), "verify", "--no-checkpoints-topic")
    assert result.exit_code == 0, result.output

    later = sample_event("mfa.verification.failed", subject="u-0", now=T0 + timedelta(days=2))
    ledger.append([later], now=T0 + timedelta(days=2))
    (newest,) = [r for r in ledger.rows() if r.event["id"] == later.id]
    assert newest.event["data"]["client"]["ip"] == CLIENT_IP  # a new key for new events


def test_key_files_are_private_and_rotation_keeps_old_checkpoints_verifiable(
    ledger: Ledger, tmp_path: Path, url: str
) -> None:
    path = tmp_path / "keys" / "ledger-signing.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys" / "ledger-master.key").stat().st_mode) == 0o600
    ledger.append(events(10), now=T0)
    old_key = load_signing_key(path)
    rotated = run_cli(settings_env(tmp_path, url), "keys", "rotate")
    assert rotated.exit_code == 0, rotated.output
    new_key = load_signing_key(path)
    assert key_id_of(new_key.public_key()) != key_id_of(old_key.public_key())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    reopened = open_test_ledger(tmp_path, url, every=10)
    reopened.append(events(10, start=10), now=T0)
    signers = [c.key_id for c in reopened.checkpoints()]
    assert signers == [key_id_of(old_key.public_key()), key_id_of(new_key.public_key())]
    assert reopened.verify().ok
    both = [public_pem(old_key.public_key()), public_pem(new_key.public_key())]
    check_proof_document(json.dumps(reopened.consistency(10, 20)), public_keys=both)
    with pytest.raises(ProofRefused, match="not among the public keys"):
        only_new = [public_pem(new_key.public_key())]
        check_proof_document(json.dumps(reopened.consistency(10, 20)), public_keys=only_new)


def test_two_writers_on_one_database_keep_one_valid_tree(tmp_path: Path, url: str) -> None:
    first = open_test_ledger(tmp_path, url, every=5)
    second = open_test_ledger(tmp_path, url, every=5)
    batch = events(30)
    for i in range(0, 30, 3):
        writer = first if i % 2 else second
        writer.append(batch[i : i + 3], now=T0)
        (second if i % 2 else first).append(batch[i : i + 2], now=T0)  # replays: skipped
    assert first.size() == second.size() == 30
    assert first.verify().ok


def test_the_cli_erases_and_exports_mark_the_erased_data(
    ledger: Ledger, tmp_path: Path, url: str
) -> None:
    ledger.append(events(28, subjects=2), now=T0)
    env = settings_env(tmp_path, url)
    refused = run_cli(env, "erase", "acme", "u-0", "--requested-by", "dpo-1", input="n\n")
    assert refused.exit_code == 1 and "not erased" in flat(refused)
    erased = run_cli(
        env, "erase", "acme", "u-0", "--requested-by", "dpo-1", "--yes", "--no-publish"
    )
    assert erased.exit_code == 0, erased.output
    assert "1 data key(s) destroyed" in flat(erased)
    assert "published" not in flat(erased)  # the ledger only

    out = tmp_path / "u0.jsonl"
    exported = run_cli(env, "export", "--format", "jsonl", "--subject", "u-0", "-o", str(out))
    assert exported.exit_code == 0, exported.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 15  # 14 events and the erasure
    assert any("data.client.ip" in line["erased"] for line in lines)
    assert CLIENT_IP not in out.read_text() and DEVICE_ID not in out.read_text()
    assert ERASED in out.read_text()

    kept = tmp_path / "u1.jsonl"
    types = [kind for i, kind in enumerate(TYPES) if i % 2 and kind.startswith("mfa.")][:2]
    options = [arg for kind in types for arg in ("--type", kind)]
    run_cli(env, "export", "--subject", "u-1", *options, "-o", str(kept))
    rows = [json.loads(line) for line in kept.read_text().splitlines()]
    assert sorted(row["event"]["type"] for row in rows) == sorted(types)
    with_client = [row for row in rows if "client" in row["event"]["data"]]
    assert with_client and all(r["event"]["data"]["client"]["ip"] == CLIENT_IP for r in with_client)

    verified = run_cli(env, "verify", "--no-checkpoints-topic")
    assert verified.exit_code == 0, verified.output


def test_checkpoint_files_given_to_verify_are_checked_or_refused(
    ledger: Ledger, tmp_path: Path, url: str
) -> None:
    ledger.append(events(20), now=T0)
    env = settings_env(tmp_path, url)
    good, bad, garbage = tmp_path / "good.json", tmp_path / "bad.json", tmp_path / "junk.json"
    newest = ledger.checkpoints()[-1].to_json()
    good.write_text(json.dumps([c.to_json() for c in ledger.checkpoints()]))
    bad.write_text(json.dumps({**newest, "root_hash": "ab" * 32}))
    garbage.write_text('{"tree_size": "many"')

    verified = run_cli(env, "verify", "--no-checkpoints-topic", "--checkpoint-file", str(good))
    assert verified.exit_code == 0
    forged = run_cli(env, "verify", "--no-checkpoints-topic", "--checkpoint-file", str(bad))
    assert forged.exit_code == 1 and "signature is invalid" in flat(forged)
    junk = run_cli(env, "verify", "--no-checkpoints-topic", "--checkpoint-file", str(garbage))
    assert junk.exit_code == 1 and "not JSON" in flat(junk) and "Traceback" not in junk.output
    with pytest.raises(ProofRefused, match="tree_size"):
        checkpoints_of(json.dumps({**newest, "tree_size": -1}))


def test_without_the_master_key_personal_data_reads_as_erased(
    ledger: Ledger, tmp_path: Path, url: str
) -> None:
    ledger.append(events(5), now=T0)
    reader = open_ledger(url=url, signing_key_file=None, master_key_file=None, migrate=False)
    rows = list(reader.rows())
    assert len(rows) == 5 and all(CLIENT_IP not in json.dumps(r.event) for r in rows)
    assert any(r.erased and _at(r.event, r.erased[0]) == ERASED for r in rows)
    assert reader.verify().ok


def test_erase_says_so_when_the_event_cannot_be_published(
    ledger: Ledger, tmp_path: Path, url: str
) -> None:
    """No broker: the ledger is erased all the same, and the command fails saying that the
    worker and the lake still hold the data and what to do."""
    ledger.append(events(4, subjects=1), now=T0)
    env = settings_env(tmp_path, url, FACTORSTREAM_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}")
    result = run_cli(env, "erase", "acme", "u-0", "--requested-by", "dpo-1", "--yes")
    assert result.exit_code == 1
    said = flat(result)
    assert "1 data key(s) destroyed" in said
    assert "the ledger is erased, but the event was not published" in said
    assert "Run this command again once the broker is up" in said


def test_every_field_of_an_inclusion_proof_is_bound_to_the_signed_root(ledger: Ledger) -> None:
    """An attacker edits one field of a genuine proof file at a time: each edit is
    refused, and what a good proof reports about the event comes from the entry."""
    batch = events(20)
    ledger.append(batch, now=T0)
    pems = _pems(ledger)
    good = ledger.prove(batch[4].id, checkpoint=10)
    neighbour = ledger.prove(batch[5].id, checkpoint=10)
    said = check_proof_document(json.dumps(good), public_keys=pems).summary
    assert batch[4].id in said and batch[4].type in said and batch[4].subject in said

    def refused(document: dict[str, object], reason: str) -> None:
        with pytest.raises(ProofRefused, match=reason):
            check_proof_document(json.dumps(document), public_keys=pems)

    refused({**good, "event_id": batch[5].id}, "not the event in the entry")
    refused({**good, "event_id": batch[4].id.upper()}, "not the event in the entry")
    refused({k: v for k, v in good.items() if k != "event_id"}, "event_id is missing")
    refused({**good, "event_id": None}, "event_id is missing")
    refused({k: v for k, v in good.items() if k != "entry"}, "entry is missing")
    refused({**good, "entry": neighbour["entry"]}, "do not hash to leaf_hash")
    refused({**good, "entry": "not base64!"}, "not base64")
    refused(
        {**good, "entry": neighbour["entry"], "leaf_hash": neighbour["leaf_hash"]},
        "root hash|deep",
    )
    # the neighbour's own entry and path, renamed: the index is checked against the entry
    refused({**neighbour, "event_id": batch[4].id}, "not the event in the entry")
    refused({**good, "leaf_index": 5}, "root hash|deep")
    refused({**good, "leaf_index": -1}, "non-negative")
    refused({**good, "leaf_hash": "00" * 32}, "do not hash to leaf_hash")
    refused({**good, "path": good["path"][:-1]}, "root hash|deep|path")
    refused({**good, "path": "ff"}, "not a list")
    refused({**good, "kind": "consistency"}, "fields no proof covers|checkpoint")
    refused({**good, "subject": "somebody-else"}, "fields no proof covers: subject")
    refused({**good, "checkpoint": {**good["checkpoint"], "log_id": "x"}}, "signature")
    check_proof_document(json.dumps(good), public_keys=pems)  # untouched: still good


def test_a_proof_of_an_entry_with_personal_data_says_what_it_does_not_show(
    ledger: Ledger,
) -> None:
    batch = events(len(TYPES), subjects=1)
    ledger.append(batch, now=T0)
    ledger.tick(now=T0, force=True)  # a checkpoint covering every entry
    pems = _pems(ledger)
    proofs = [ledger.prove(event.id) for event in batch]
    sealed = [p for p in proofs if b'"sealed"' in base64.b64decode(p["entry"])]
    assert 0 < len(sealed) < len(proofs)  # both kinds are checked below
    for proof in proofs:
        said = check_proof_document(json.dumps(proof), public_keys=pems).summary
        assert ("does not show their values" in said) == (proof in sealed)
    ledger.erase(
        "acme",
        "u-0",
        now=T0 + timedelta(days=1),
        requested_by="dpo@example.com",
        signer=CONTROL_KEY,
    )
    for proof in sealed:  # after the erasure: the same proof, still valid, says the same
        said = check_proof_document(json.dumps(proof), public_keys=pems).summary
        assert "ciphertext under data key" in said


def test_erase_deletes_the_subjects_published_rows_from_the_outbox(
    ledger: Ledger, tmp_path: Path, url: str
) -> None:
    """The verifiers' outbox keeps every event it published, IP addresses and user agents
    in clear: an erasure deletes the subject's published rows there too, and says how many
    of its rows still wait for the relay (deleting those would lose the events)."""
    outbox = Outbox(outbox_engine(f"sqlite:///{tmp_path / 'outbox.db'}"))
    outbox.create()
    staged = events(12, subjects=2)
    with outbox.engine.begin() as connection:
        outbox.add(connection, staged)
        connection.execute(
            outbox_events.update()
            .where(outbox_events.c.event_id.in_([e.id for e in staged[:8]]))
            .values(sent_at=T0)
        )
    ledger.append(staged, now=T0)
    env = settings_env(tmp_path, url)
    erased = run_cli(env, "erase", "acme", "u-0", "--requested-by", "dpo", "--yes", "--no-publish")
    assert erased.exit_code == 0, erased.output
    assert "4 published rows of the subject deleted" in flat(erased)
    assert "2 rows of the subject are not relayed yet" in flat(erased)
    with outbox.engine.connect() as connection:
        left = connection.execute(
            sa.select(outbox_events.c.partition_key, outbox_events.c.sent_at)
        ).all()
    assert [row for row in left if row.partition_key == "acme/u-0" and row.sent_at] == []
    assert sum(row.partition_key == "acme/u-0" for row in left) == 2
    assert sum(row.partition_key == "acme/u-1" for row in left) == 6
