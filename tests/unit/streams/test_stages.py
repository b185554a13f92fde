"""The stream engine's stages (streams/stages.py), pure: no Kafka, no Faust.

Records go through the stages as the worker and the replay hand them over: the ingest
stage over the events topic, the subjects stage over what ingest forwarded, the re-keyed
stages over what the subjects stage forwarded; each keyed stage's table is a dict behind
its :class:`StateCache`, written at each flush as the worker writes it before a commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace as dc_replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from msgspec.structs import replace

from schemas import MAX_EVENT_BYTES, Event, decode, encode, encode_binary, kafka_key
from schemas import payloads as p
from schemas.codec import structured_headers
from schemas.fields import Channel, Client, Factor, Geo, LockoutScope, Outcome, PolicyTier
from schemas.payloads import Detection
from streams.enrich import load_centroids, open_enricher
from streams.folds import BY_IP as SPRAY
from streams.folds.ipblock import IpBlockPolicy, IpBlockState, fold_ip_block
from streams.folds.thresholds import DetectionThresholds
from streams.ingest import DLQ_HEADER_PREFIX, DLQ_VALUE_LIMIT, Headers
from streams.positions import Position, origin_header, position_of, via_header
from streams.stages import (
    ANOMALIES,
    BY_IP,
    BY_SUBJECT,
    BY_TENANT,
    DLQ,
    INGESTED,
    LOCKOUTS,
    Emit,
    Ingest,
    JsonState,
    KeyedStage,
    KeyRecord,
    LiveFold,
    Record,
    StageOutput,
)
from streams.topology import IP_BLOCK, LOCKOUT, Topology, topology
from tests.factories import CONTEXT, T0, TRUSTED, sample_event
from tests.unit.streams import MINUTE, SECOND, SYDNEY, Log, client
from tests.unit.streams.test_enrich import build_city_mmdb
from verifiers.lockout import LockoutState, fold_lockout
from verifiers.policy import TIERS, lockout_policy

EVENTS_TOPIC = "mfa.events"
INGESTED_TOPIC = "app-events-ingested"
BUSINESS = TIERS[PolicyTier.BUSINESS]
IP = "198.51.100.23"
WINDOW_S = 3600.0


def stages(
    *,
    default_tier: PolicyTier = PolicyTier.BUSINESS,
    thresholds: DetectionThresholds | None = None,
) -> Topology:
    return topology(
        default_tier=default_tier,
        thresholds=thresholds or DetectionThresholds(),
        ip_block=IpBlockPolicy(),
        dedupe_window_s=WINDOW_S,
    )


class Table:
    """A keyed stage over a table in memory (``stored``), with its write-back cache."""

    def __init__(self, stage: KeyedStage, *, capacity: int = 1_000) -> None:
        self.stage = stage
        self.stored: dict[bytes, JsonState] = {}
        self.loads: list[bytes] = []
        self.cache = stage.cache(self._load, capacity=capacity)

    def _load(self, key: bytes) -> JsonState | None:
        self.loads.append(key)
        return self.stored.get(key)

    def run(self, records: Iterable[Record]) -> StageOutput:
        return self.stage.process(records, self.cache)

    def flush(self) -> list[bytes]:
        """Write each dirty key (as the worker does before a commit); the keys written."""
        written = []
        for key, _, value in self.cache.flush():
            written.append(key)
            if value is None:
                self.stored.pop(key, None)
            else:
                self.stored[key] = value
        return written

    def state(self, key: bytes, fold: str) -> Any:
        return self.stored[key]["states"].get(fold)


def raw(
    value: bytes | None,
    *,
    key: bytes | None = None,
    headers: Sequence[tuple[str, bytes | None]] = (),
    partition: int = 0,
    offset: int = 0,
    timestamp_ms: int = 1_793_611_800_123,
) -> Record:
    """A record of the events topic."""
    return Record(EVENTS_TOPIC, partition, offset, timestamp_ms, key, value, list(headers))


def structured(event: Event, *, partition: int = 0, offset: int = 0) -> Record:
    return raw(
        encode(event),
        key=kafka_key(event),
        headers=structured_headers(),
        partition=partition,
        offset=offset,
    )


def ingested(events: Iterable[Event], *, partition: int = 0, first_offset: int = 0) -> list[Record]:
    """``events`` through the ingest stage (origin: ``partition`` from ``first_offset``),
    as the subjects stage reads them from ingested partition ``partition``."""
    incoming = [
        structured(e, partition=partition, offset=first_offset + n) for n, e in enumerate(events)
    ]
    return next_stage(Ingest().process(incoming).emits, INGESTED, partition=partition)


def next_stage(emits: Iterable[Emit], role: str, *, partition: int = 0) -> list[Record]:
    """The records of ``role`` among ``emits`` as the next stage reads them."""
    found = [e for e in emits if e.role == role]
    return [
        Record(role, partition, n, 0, e.key, e.value, list(e.headers)) for n, e in enumerate(found)
    ]


def derived(out: StageOutput, role: str) -> list[tuple[bytes | None, Event]]:
    """Events produced to ``role``, with their record keys."""
    return [(e.key, decode(e.value or b"", e.headers)) for e in out.emits if e.role == role]


def login_failures(n: int, *, subject: str = "u-1", start: datetime = T0) -> list[Event]:
    """``n`` password failures 10 s apart (business tier; slower than a quick login)."""
    return [
        sample_event("auth.login.attempted", subject=subject, now=start + timedelta(seconds=10 * i))
        for i in range(n)
    ]


def failed_login(log: Log, at: datetime, subject: str, ip: str = IP) -> Event:
    data = p.LoginAttempted(
        outcome=Outcome.FAILURE, method="password", reason="invalid_password", client=client(ip=ip)
    )
    return log.event(data, at, subject=subject)


def rekeyed(
    event: Event, key: str, *, origin: tuple[int, int], via: int = 0, offset: int = 0
) -> Record:
    """``event`` as a re-keyed stage reads it: forwarded by the subjects stage from
    ingested partition ``via``, its origin ``(partition, offset)`` in the events topic."""
    headers: Headers = [*structured_headers(), origin_header(*origin), via_header(via)]
    return Record("rekeyed", 0, offset, 0, key.encode(), encode(event), headers)


# -- ingest: dead letters ----------------------------------------------------------------


def _junk(name: str) -> bytes | None:
    good = msgspec.json.decode(encode(sample_event()))
    if name == "not json":
        return b"\x00\xffnot json at all"
    if name == "tombstone":
        return None
    if name == "unknown type":
        return json.dumps({**good, "type": "mfa.nonsense.happened"}).encode()
    if name == "wrong schema":
        return json.dumps({**good, "data": {**good["data"], "factor": "carrier-pigeon"}}).encode()
    assert name == "huge"
    return json.dumps({**good, "padding": "x" * (MAX_EVENT_BYTES + 10)}).encode()


def _dlq_headers(emit: Emit) -> dict[str, str]:
    return {k: (v or b"").decode() for k, v in emit.headers if k.startswith(DLQ_HEADER_PREFIX)}


@pytest.mark.parametrize(
    ("name", "field", "says"),
    [
        ("not json", "event", "not valid JSON"),
        ("tombstone", "event", "no value"),
        ("unknown type", "type", "unknown event type 'mfa.nonsense.happened'"),
        ("wrong schema", "data.factor", "carrier-pigeon"),
        ("huge", "event", f"exceeds {MAX_EVENT_BYTES}"),
    ],
)
def test_bad_records_are_dead_lettered_with_reason_and_original_bytes(
    name: str, field: str, says: str
) -> None:
    value = _junk(name)
    original_headers = [("origin", b"kcat"), ("content-type", b"application/cloudevents+json")]
    record = raw(value, key=b"acme/u-1", headers=original_headers, partition=2, offset=41)

    out = Ingest().process([record])

    assert out.dead_lettered == 1
    (letter,) = out.emits
    assert letter.role == DLQ
    assert (letter.key, letter.value) == (b"acme/u-1", value)
    assert letter.headers[:2] == original_headers  # the original headers come first, unchanged
    assert all(k.startswith(DLQ_HEADER_PREFIX) for k, _ in letter.headers[2:])
    meta = _dlq_headers(letter)
    assert meta["factorstream.dlq.field"] == field
    assert meta["factorstream.dlq.reason"].startswith(f"{field}: ")
    assert says in meta["factorstream.dlq.reason"]
    assert meta["factorstream.dlq.topic"] == EVENTS_TOPIC
    assert (meta["factorstream.dlq.partition"], meta["factorstream.dlq.offset"]) == ("2", "41")
    assert meta["factorstream.dlq.timestamp"] == "1793611800123"
    assert meta["factorstream.dlq.value.length"] == str(-1 if value is None else len(value))
    assert "factorstream.dlq.value.truncated" not in meta


def test_a_value_beyond_the_dlq_limit_is_cut_and_says_so() -> None:
    value = b"{" * (DLQ_VALUE_LIMIT + 1000)

    (letter,) = Ingest().process([raw(value)]).emits

    assert letter.role == DLQ and letter.key is None
    assert letter.value == value[:DLQ_VALUE_LIMIT]
    meta = _dlq_headers(letter)
    assert meta["factorstream.dlq.value.length"] == str(len(value))
    assert meta["factorstream.dlq.value.truncated"] == "true"


# -- ingest: forwarding ------------------------------------------------------------------


def test_good_events_are_forwarded_keyed_by_partitionkey_and_the_stage_goes_on() -> None:
    first, second = sample_event(subject="u-1"), sample_event(subject="u-2")
    binary_headers, binary_value = encode_binary(second)
    records = [
        raw(encode(first), key=b"wrong-key", headers=structured_headers(), partition=3, offset=7),
        raw(b"][", key=b"junk", partition=3, offset=8),
        raw(binary_value, key=None, headers=binary_headers, partition=3, offset=9),  # binary mode
    ]

    out = Ingest().process(records)

    assert [e.role for e in out.emits] == [INGESTED, DLQ, INGESTED]
    assert out.dead_lettered == 1
    forwarded = [e for e in out.emits if e.role == INGESTED]
    assert [f.key for f in forwarded] == [b"acme/u-1", b"acme/u-2"]  # keyed by partitionkey
    assert [decode(f.value or b"", f.headers) for f in forwarded] == [first, second]
    # re-encoded in structured mode, stamped with the place in the events topic
    assert [f.headers for f in forwarded] == [
        [*structured_headers(), origin_header(3, 7)],
        [*structured_headers(), origin_header(3, 9)],
    ]
    assert [position_of(f.headers, via=False) for f in forwarded] == [
        Position("3", 7),
        Position("3", 9),
    ]


def test_ingest_hands_the_subjects_stage_what_lives_in_its_partition_forwards_the_rest() -> None:
    """Every event goes to the ingested topic (the sinks); one whose subject's partition is
    the record's own also goes straight to the subjects stage (no hop), any other to the
    by-subject topic, where the subjects stage of its partition reads it."""
    home = {b"acme/u-1": 3, b"acme/u-2": 5}
    events = [sample_event(subject="u-1"), sample_event(subject="u-2", now=T0 + SECOND)]
    records = [structured(e, partition=3, offset=10 + n) for n, e in enumerate(events)]

    out = Ingest(partition_of=home.__getitem__).process(records)

    assert [(e.role, e.key) for e in out.emits] == [
        (INGESTED, b"acme/u-1"),
        (INGESTED, b"acme/u-2"),
        (BY_SUBJECT, b"acme/u-2"),
    ]
    (local,) = out.local
    assert (local.event, local.key) == (events[0], b"acme/u-1")
    assert (local.partition, local.offset) == (3, 10)
    assert position_of(local.headers, via=False) == Position("3", 10)
    forwarded = out.emits[2]
    assert forwarded.event == events[1] and position_of(forwarded.headers, via=False) == Position(
        "3", 11
    )
    # folded where it lives, or forwarded and folded there: the same state
    elsewhere = Ingest(partition_of=lambda key: 4).process(records[:1])
    assert elsewhere.local == [] and [e.role for e in elsewhere.emits] == [INGESTED, BY_SUBJECT]
    in_place, moved = Table(stages().subjects), Table(stages().subjects)
    in_place.run(out.local)
    moved.run(next_stage(elsewhere.emits, BY_SUBJECT, partition=4))
    assert in_place.flush() == moved.flush() == [b"acme/u-1"]
    assert in_place.stored == moved.stored
    assert Ingest().process(records).local == []  # a replay: one process, no partitions


def geo_of(event: Event) -> Geo | None:
    client = getattr(event.data, "client", None)
    assert isinstance(client, Client)
    return client.geo


def _from(ip: str, subject: str, geo: Geo | None = None) -> Event:
    event = sample_event("mfa.verification.succeeded", subject=subject)
    return replace(event, data=replace(event.data, client=Client(ip=ip, geo=geo)))


def test_ingest_forwards_events_enriched_from_the_operators_database(tmp_path: Path) -> None:
    enricher = open_enricher(mmdb_path=build_city_mmdb(tmp_path / "city.mmdb"))
    london, google, private = (
        _from("81.2.69.142", "u-1"),
        _from("8.8.8.8", "u-2"),
        _from("10.0.0.7", "u-3"),
    )
    supplied = _from("81.2.69.142", "u-4", Geo(country="DE", source="client"))
    events = [london, google, private, supplied]

    out = Ingest(enricher.enrich).process([structured(e, offset=n) for n, e in enumerate(events)])

    forwarded = [decode(e.value or b"", e.headers) for e in out.emits]
    assert [e.role for e in out.emits] == [INGESTED] * 4
    geos = [geo_of(f) for f in forwarded]
    centroids = load_centroids()
    assert geos[0] == Geo(
        country="GB",
        region="England",
        city="London",
        latitude=51.5142,
        longitude=-0.0931,
        asn=20712,
        source="mmdb",
    )
    latitude, longitude = centroids["US"]
    assert geos[1] == Geo(
        country="US", latitude=latitude, longitude=longitude, asn=None, source="centroid"
    )
    assert forwarded[2] == private  # a private address: forwarded as it came
    latitude, longitude = centroids["DE"]  # the service said DE: its country wins
    assert geos[3] == Geo(
        country="DE", latitude=latitude, longitude=longitude, asn=20712, source="centroid"
    )
    assert [f.id for f in forwarded] == [e.id for e in events]


def test_without_an_enricher_events_are_forwarded_as_they_came() -> None:
    event = _from("8.8.8.8", "u-1")
    (forwarded,) = Ingest().process([structured(event)]).emits
    assert decode(forwarded.value or b"", forwarded.headers) == event


# -- the subjects stage: duplicates and positions ----------------------------------------


def test_duplicate_ids_are_dropped_whatever_their_wire_form() -> None:
    event, other = login_failures(2)
    binary_headers, binary_value = encode_binary(event)  # same id, other wire form
    incoming = [
        structured(event, offset=0),
        structured(other, offset=1),
        structured(event, offset=2),  # a relay's re-send
        raw(binary_value, key=kafka_key(event), headers=binary_headers, offset=3),
    ]
    subjects = Table(stages().subjects)

    out = subjects.run(next_stage(Ingest().process(incoming).emits, INGESTED))
    subjects.flush()

    assert (out.duplicates, out.skipped) == (2, 0)
    lockout = LockoutState.from_dict(subjects.state(b"acme/u-1", LOCKOUT))
    assert lockout.failures == 2  # not 4
    stored = subjects.stored[b"acme/u-1"]
    assert sorted(i for i, _ in stored["recent"]) == sorted([event.id, other.id])
    assert stored["applied"] == {"0": 3}  # the duplicates' positions are remembered too


def test_an_id_seen_longer_ago_than_the_window_is_no_duplicate() -> None:
    event = sample_event("auth.login.attempted", subject="u-1")
    much_later = sample_event(
        "auth.login.attempted", subject="u-1", now=T0 + timedelta(seconds=WINDOW_S + 1)
    )
    again = event  # a relay's re-send: same id and time
    subjects = Table(stages().subjects)

    out = subjects.run(ingested([event, much_later, again]))

    assert out.duplicates == 0  # the newest event moved the window past the first id
    subjects.flush()
    expected = LockoutState()
    for e in (event, much_later, again):  # applied three times: the pure fold's reference
        expected, _ = fold_lockout(expected, e, lockout_policy(BUSINESS))
    assert subjects.state(b"acme/u-1", LOCKOUT) == expected.to_dict()


def test_the_same_record_read_again_is_applied_once() -> None:
    """After a crash the worker reads again what came after its last commit: the same
    origin position is skipped, so nothing is counted twice (and no lock is re-derived)."""
    events = login_failures(BUSINESS.max_failures, subject="u-1")
    positions = list(range(100, 100 + len(events)))
    # the first four, then all five again from the start (a replay), then the last again
    order = [*range(4), *range(len(events)), len(events) - 1]
    headers = [[*structured_headers(), origin_header(0, at)] for at in positions]
    records = [
        Record(INGESTED_TOPIC, 0, n, 0, kafka_key(events[i]), encode(events[i]), headers[i])
        for n, i in enumerate(order)
    ]
    subjects = Table(stages().subjects)

    out = subjects.run(records[:4])
    assert subjects.flush() == [b"acme/u-1"]
    out_again = subjects.run(records[4:])
    subjects.flush()

    expected = LockoutState()
    for event in events:  # the pure fold over each event once is the reference
        expected, _ = fold_lockout(expected, event, lockout_policy(BUSINESS))
    assert subjects.state(b"acme/u-1", LOCKOUT) == expected.to_dict()
    assert expected.failures == BUSINESS.max_failures  # not 4 + 5 + 1
    assert (out.skipped, out_again.skipped, out_again.duplicates) == (0, 5, 0)
    assert len(derived(out, LOCKOUTS) + derived(out_again, LOCKOUTS)) == 1
    assert subjects.stored[b"acme/u-1"]["applied"] == {"0": positions[-1]}


def test_a_record_read_again_is_skipped_without_writing_its_key_again() -> None:
    """State reaches the changelog before the local store, and both before the offsets are
    committed: a record read again after a crash finds its effect in the table already, so
    it changes nothing and costs no write (a restart re-reads up to a commit interval)."""
    (event,) = login_failures(1)
    subjects = Table(stages().subjects)
    subjects.run(ingested([event], first_offset=7))
    before = subjects.flush()
    assert before == [b"acme/u-1"] and subjects.flush() == []  # clean after a flush
    stored = subjects.stored[b"acme/u-1"]

    out = subjects.run(ingested([event], first_offset=7))  # the same record, read again

    assert (out.skipped, out.emits) == (1, [])
    assert subjects.cache.dirty == {} and subjects.flush() == []
    assert subjects.stored[b"acme/u-1"] == stored


def test_a_re_sent_event_at_a_new_offset_is_a_duplicate_the_same_offset_is_skipped() -> None:
    """Ingest is stateless: a record read again is forwarded again with its origin, a
    relay's re-send with a new one; the subjects stage tells them apart."""
    event = sample_event("auth.login.attempted", subject="u-1")
    records = [structured(event, offset=o) for o in (7, 7, 8)]
    forwarded = Ingest().process(records).emits
    assert [position_of(f.headers, via=False) for f in forwarded] == [
        Position("0", 7),
        Position("0", 7),
        Position("0", 8),
    ]
    subjects = Table(stages().subjects)

    out = subjects.run(next_stage(forwarded, INGESTED))

    assert (out.skipped, out.duplicates) == (1, 1)
    subjects.flush()
    assert LockoutState.from_dict(subjects.state(b"acme/u-1", LOCKOUT)).failures == 1
    assert subjects.stored[b"acme/u-1"]["applied"] == {"0": 8}


def test_a_record_the_subjects_stage_cannot_decode_is_dead_lettered_and_the_rest_applied() -> None:
    (event,) = login_failures(1)
    junk = Record(INGESTED_TOPIC, 0, 5, 0, b"acme/u-1", b"][", [])
    subjects = Table(stages().subjects)

    out = subjects.run([junk, *ingested([event])])

    assert out.dead_lettered == 1
    assert [e.role for e in out.emits] == [DLQ, BY_IP]
    subjects.flush()
    assert LockoutState.from_dict(subjects.state(b"acme/u-1", LOCKOUT)).failures == 1


# -- the subjects stage: lockout and detections -----------------------------------------


def test_the_lockout_fold_is_applied_and_its_table_written_back() -> None:
    events = login_failures(BUSINESS.max_failures, subject="u-1") + login_failures(2, subject="u-2")
    subjects = Table(stages().subjects)

    out = subjects.run(ingested(events))
    assert sorted(subjects.flush()) == [b"acme/u-1", b"acme/u-2"]

    expected, reference = LockoutState(), []
    for event in events[: BUSINESS.max_failures]:  # the pure fold is the reference
        expected, more = fold_lockout(expected, event, lockout_policy(BUSINESS))
        reference += more
    assert subjects.state(b"acme/u-1", LOCKOUT) == expected.to_dict()
    assert LockoutState.from_dict(subjects.state(b"acme/u-2", LOCKOUT)).failures == 2
    fifth = events[BUSINESS.max_failures - 1]
    assert expected.locked_until == fifth.time + BUSINESS.lockout_duration

    # the derived lockout.applied goes to the lockouts role, keyed by partitionkey
    ((key, applied),) = derived(out, LOCKOUTS)
    assert (key, applied) == (b"acme/u-1", reference[0])
    assert out.derived == reference
    assert isinstance(applied.data, p.LockoutApplied)
    assert (applied.data.scope, applied.data.reason) == (LockoutScope.SUBJECT, "max_failures")
    assert applied.data.trigger_event_id == fifth.id
    assert derived(out, ANOMALIES) == []


def test_the_policy_comes_from_the_event_tier_else_the_default_tier() -> None:
    admin = TIERS[PolicyTier.ADMIN]
    untiered = p.LoginAttempted(
        **{
            "outcome": "failure",
            "method": "password",
            "reason": "invalid_password",
            **CONTEXT,
            "policy_tier": None,
        }
    )
    events = [
        sample_event("auth.login.attempted", subject="u-9", now=T0 + timedelta(seconds=10 * i))
        for i in range(admin.max_failures)
    ]
    # untiered events (→ the default tier) around a business-tier one
    events = [e if i % 2 else replace(e, data=untiered) for i, e in enumerate(events)]
    as_admin = Table(stages(default_tier=PolicyTier.ADMIN).subjects)
    as_business = Table(stages(default_tier=PolicyTier.BUSINESS).subjects)

    locked = as_admin.run(ingested(events))
    not_locked = as_business.run(ingested(events))

    # the third failure is judged by admin's policy (3 failures lock; business needs 5)
    ((_, applied),) = derived(locked, LOCKOUTS)
    assert isinstance(applied.data, p.LockoutApplied)
    assert applied.data.trigger_event_id == events[-1].id
    as_admin.flush()
    state = LockoutState.from_dict(as_admin.state(b"acme/u-9", LOCKOUT))
    assert state.locked_until == events[-1].time + admin.lockout_duration
    assert derived(not_locked, LOCKOUTS) == []


def test_events_that_change_nothing_leave_no_dirty_key() -> None:
    challenge = sample_event("mfa.challenge.issued", subject="u-3")
    without_dedupe = Table(dc_replace(stages().subjects, dedupe_window_s=None))

    out = without_dedupe.run(ingested([challenge]))

    assert (out.derived, out.emits) == ([], [])
    assert without_dedupe.cache.dirty == {}
    assert without_dedupe.flush() == [] and without_dedupe.stored == {}


def test_the_subjects_stage_keeps_only_the_id_of_an_event_that_changes_no_fold() -> None:
    challenge = sample_event("mfa.challenge.issued", subject="u-3")
    subjects = Table(stages().subjects)

    out = subjects.run(ingested([challenge]))
    subjects.flush()

    assert (out.derived, out.emits) == ([], [])
    stored = subjects.stored[b"acme/u-3"]  # kept for its id (dedupe) and position only
    assert stored["states"] == {}
    assert [i for i, _ in stored["recent"]] == [challenge.id]


def test_detections_run_per_subject_and_their_risks_go_to_the_anomalies_role() -> None:
    log = Log()
    berlin, sydney = log.sign_in(T0), log.sign_in(T0 + 30 * MINUTE, SYDNEY)
    subjects = Table(stages().subjects)

    first = subjects.run(ingested([berlin]))
    second = subjects.run(ingested([sydney], first_offset=1))

    assert first.derived == []
    ((key, risk),) = derived(second, ANOMALIES)
    assert isinstance(risk.data, p.RiskDetected)
    assert (risk.data.detection, key) == (Detection.IMPOSSIBLE_TRAVEL, b"acme/u-1001")
    assert derived(second, LOCKOUTS) == []
    subjects.flush()
    assert subjects.state(b"acme/u-1001", "risk_by_subject")["travel"]["last"] is not None


def test_routes_forward_by_ip_and_by_tenant_only_what_their_folds_read() -> None:
    log = Log()
    mapped = failed_login(log, T0, "u-1", ip=f"::ffff:{IP}")
    success = log.event(
        p.LoginAttempted(outcome=Outcome.SUCCESS, method="password", client=client(ip=IP)),
        T0,
        subject="u-2",
    )
    sms = p.ChallengeSent(
        factor=Factor.SMS, challenge_id="c-1", channel=Channel.SMS, provider="twilio"
    )
    sms_event = log.event(sms, T0, subject="u-3", tenant="globex")
    removed = log.removed(T0)  # no IP, not an SMS: read by the subject folds only
    records = ingested([mapped, success, sms_event, removed], partition=4, first_offset=20)

    out = Table(stages().subjects).run(records)

    by_ip = [e for e in out.emits if e.role == BY_IP]
    by_tenant = [e for e in out.emits if e.role == BY_TENANT]
    assert [(e.key, decode(e.value or b"", e.headers)) for e in by_ip] == [
        (IP.encode(), mapped),  # the canonical address: IPv4-mapped IPv6 as IPv4
    ]  # not the success: spray and ip_block read counted failures only
    assert [(e.key, decode(e.value or b"", e.headers)) for e in by_tenant] == [
        (b"globex", sms_event)
    ]
    assert [e.value for e in by_ip + by_tenant] == [records[i].value for i in (0, 2)]
    # each carries its origin and the ingested partition it came through
    assert [e.headers for e in by_ip + by_tenant] == [
        [*structured_headers(), origin_header(4, 20 + i), via_header(4)] for i in (0, 2)
    ]
    assert position_of(by_ip[0].headers, via=True) == Position("4:4", 20)


def test_a_keyed_fold_keeps_its_state_by_name_and_sends_its_events_to_its_role() -> None:
    """The hook for more folds: a LiveFold's state is kept per key under its name, its
    derived events go to its output role. (A stand-in counting sign-ins.)"""

    def count(state: dict[str, int], event: Event) -> tuple[dict[str, int], list[Event]]:
        seen = state["seen"] + 1
        alarm = [sample_event("risk.detected", subject=event.subject)] if seen == 2 else []
        return {"seen": seen}, alarm

    counter: LiveFold[dict[str, int]] = LiveFold(
        name="sign-in-count",
        key=lambda event: event.partitionkey,
        fold=count,
        empty=lambda: {"seen": 0},
        load=dict,
        dump=dict,
        output=ANOMALIES,
    )
    table = Table(KeyedStage("subjects", (counter,), dedupe_window_s=WINDOW_S))

    out = table.run(ingested([sample_event(), sample_event()]))
    table.flush()

    assert table.state(b"acme/u-1001", "sign-in-count") == {"seen": 2}
    assert [e.type for _, e in derived(out, ANOMALIES)] == ["risk.detected"]


# -- the re-keyed stages ----------------------------------------------------------------


def test_password_spray_runs_per_ip_and_what_changes_nothing_leaves_no_dirty_key() -> None:
    log = Log()
    failures = [failed_login(log, T0 + i * SECOND, f"u-{i}") for i in range(10)]
    success = log.event(
        p.LoginAttempted(outcome=Outcome.SUCCESS, method="password", client=client(ip="192.0.2.8")),
        T0,
    )
    records = [rekeyed(e, IP, origin=(0, i), offset=i) for i, e in enumerate(failures)]
    records.append(rekeyed(success, "192.0.2.8", origin=(0, 10), offset=10))
    ips = Table(stages().ips)

    out = ips.run(records)

    ((key, risk),) = derived(out, ANOMALIES)
    assert isinstance(risk.data, p.RiskDetected)
    assert risk.data.detection is Detection.PASSWORD_SPRAY
    assert key == kafka_key(risk)  # keyed by its own partitionkey
    # a success changes neither spray (never reads it) nor ip_block (does not count it)
    assert list(ips.cache.dirty) == [IP.encode()]
    ips.flush()
    assert ips.state(IP.encode(), "risk_by_ip") is not None
    assert ips.stored[IP.encode()]["applied"] == {"0:0": 9}


def test_a_re_keyed_stage_keeps_positions_per_channel() -> None:
    """Each (ingested partition, origin partition) pair is one channel: the same offset on
    two channels is two events; the same record read again on one is skipped."""
    log = Log()
    first, second = failed_login(log, T0, "u-1"), failed_login(log, T0 + SECOND, "u-2")
    ips = Table(stages().ips)

    out = ips.run(
        [
            rekeyed(first, IP, origin=(0, 5), via=0),
            rekeyed(second, IP, origin=(1, 5), via=2),
            rekeyed(first, IP, origin=(0, 5), via=0),  # read again
        ]
    )

    assert out.skipped == 1
    ips.flush()
    block = IpBlockState.from_dict(ips.state(IP.encode(), IP_BLOCK))
    assert block == _ip_block_of([first, second])[0]
    assert ips.stored[IP.encode()]["applied"] == {"0:0": 5, "2:1": 5}


def _ip_block_of(events: list[Event]) -> tuple[IpBlockState, list[Event]]:
    """The pure per-IP throttling fold over ``events``: its state and derived events."""
    state, derived = IpBlockState(), []
    for event in events:
        state, more = fold_ip_block(state, event, IpBlockPolicy())
        derived += more
    return state, derived


def test_sms_pumping_runs_per_tenant() -> None:
    log = Log()
    sends = [log.sms(T0 + i * SECOND, "CU", subject=f"u-{i}") for i in range(5)]
    tenants = Table(
        stages(thresholds=DetectionThresholds(sms_premium_countries=frozenset({"CU"}))).tenants
    )

    out = tenants.run([rekeyed(e, "acme", origin=(0, i)) for i, e in enumerate(sends)])

    ((key, risk),) = derived(out, ANOMALIES)
    assert isinstance(risk.data, p.RiskDetected)
    assert risk.data.detection is Detection.SMS_PUMPING
    assert key == kafka_key(risk)
    tenants.flush()
    assert tenants.state(b"acme", "risk_by_tenant") is not None


def test_ip_block_goes_to_the_lockouts_role_and_spray_to_the_anomalies_role() -> None:
    log = Log()
    failures = [failed_login(log, T0 + i * SECOND, f"u-{i}") for i in range(20)]
    ips = Table(stages().ips)

    out = ips.run([rekeyed(e, IP, origin=(0, i)) for i, e in enumerate(failures)])

    # the pure folds over the same events are the reference
    block, blocks = _ip_block_of(failures)
    spray, risks = SPRAY.fold, []
    spray_state = SPRAY.empty()
    for event in failures:
        spray_state, more = spray(spray_state, event, DetectionThresholds())
        risks += more
    assert [e.type for e in blocks] == ["ip.block.applied"] and risks
    assert derived(out, LOCKOUTS) == [(kafka_key(e), e) for e in blocks]
    assert derived(out, ANOMALIES) == [(kafka_key(e), e) for e in risks]
    ips.flush()
    assert ips.state(IP.encode(), IP_BLOCK) == block.to_dict()
    assert ips.state(IP.encode(), SPRAY.name) == spray_state.to_dict()


# -- the write-back cache ----------------------------------------------------------------


def test_each_changed_key_is_flushed_once_however_many_events_touched_it() -> None:
    events = login_failures(4, subject="u-1") + login_failures(3, subject="u-2")
    subjects = Table(stages().subjects)

    subjects.run(ingested(events[:2]))
    subjects.run(ingested(events[2:], first_offset=2))
    writes = subjects.cache.flush()

    assert sorted(key for key, _, _ in writes) == [b"acme/u-1", b"acme/u-2"]
    stored = {key: value for key, _, value in writes}
    assert stored[b"acme/u-1"] is not None
    assert LockoutState.from_dict(stored[b"acme/u-1"]["states"][LOCKOUT]).failures == 4
    assert subjects.cache.flush() == []  # clean until a batch changes them again
    assert subjects.loads == [b"acme/u-1", b"acme/u-2"]  # each read from the table once


def test_flush_gives_each_key_the_partition_of_the_batch_that_loaded_it() -> None:
    subjects = Table(stages().subjects)
    subjects.cache.partition = 3
    subjects.run(ingested(login_failures(1, subject="u-1"), partition=3))
    subjects.cache.partition = 5
    subjects.run(ingested(login_failures(1, subject="u-2"), partition=5))

    assert sorted((k, p) for k, p, _ in subjects.cache.flush()) == [
        (b"acme/u-1", 3),
        (b"acme/u-2", 5),
    ]


def test_a_fold_states_dump_is_reused_while_its_object_is_unchanged() -> None:
    dumps: list[LockoutState] = []

    def dump(state: LockoutState) -> JsonState:
        dumps.append(state)
        return state.to_dict()

    topo = stages()
    lockout = dc_replace(topo.subjects.by_name[LOCKOUT], dump=dump)
    subjects = Table(KeyedStage("subjects", (lockout,), dedupe_window_s=WINDOW_S))
    failure, second_failure = login_failures(2)
    challenge = sample_event("mfa.challenge.issued", subject="u-1", now=T0 + SECOND)

    subjects.run(ingested([failure]))
    subjects.flush()
    first = subjects.stored[b"acme/u-1"]
    assert len(dumps) == 1
    subjects.run(ingested([challenge], first_offset=1))  # the key changes (its recent ids)
    assert subjects.flush() == [b"acme/u-1"]
    assert len(dumps) == 1  # ... the lockout state does not: not dumped again
    assert subjects.stored[b"acme/u-1"]["states"][LOCKOUT] is first["states"][LOCKOUT]
    subjects.run(ingested([second_failure], first_offset=2))
    subjects.flush()
    assert len(dumps) == 2
    assert LockoutState.from_dict(subjects.state(b"acme/u-1", LOCKOUT)).failures == 2

    # a state loaded from the table is its stored form already
    reloaded = Table(KeyedStage("subjects", (lockout,), dedupe_window_s=WINDOW_S))
    reloaded.stored = dict(subjects.stored)
    reloaded.run(ingested([challenge], first_offset=3))  # a duplicate: dirty, no fold change
    assert reloaded.flush() == [b"acme/u-1"]
    assert len(dumps) == 2


def test_dirty_keys_are_never_evicted_clean_ones_are() -> None:
    subjects = Table(stages().subjects, capacity=2)
    one, two, three, four = (login_failures(2, subject=f"u-{n}") for n in range(1, 5))

    subjects.run(ingested([one[0], two[0], three[0]]))
    assert len(subjects.cache) == 2  # u-1 left the LRU, but it is dirty: kept until the flush
    subjects.run(ingested([one[1]], first_offset=3))  # the live record, not the table's

    assert subjects.loads == [b"acme/u-1", b"acme/u-2", b"acme/u-3"]
    assert sorted(subjects.flush()) == [b"acme/u-1", b"acme/u-2", b"acme/u-3"]
    assert LockoutState.from_dict(subjects.state(b"acme/u-1", LOCKOUT)).failures == 2

    subjects.run(ingested([four[0]], first_offset=4))  # clean keys make room
    assert len(subjects.cache) == 2
    subjects.run(ingested([two[1]], first_offset=5))  # evicted clean: read from the table
    assert subjects.loads[-2:] == [b"acme/u-4", b"acme/u-2"]
    subjects.flush()
    assert LockoutState.from_dict(subjects.state(b"acme/u-2", LOCKOUT)).failures == 2


def test_clear_forgets_every_key_dirty_ones_too() -> None:
    subjects = Table(stages().subjects)
    (first,) = login_failures(1)
    subjects.run(ingested([first]))
    subjects.flush()
    second = login_failures(2)[1]
    subjects.run(ingested([second], first_offset=1))

    subjects.cache.clear()

    assert (len(subjects.cache), subjects.cache.flush()) == (0, [])
    assert subjects.cache.peek(b"acme/u-1") is None
    record = subjects.cache.get(b"acme/u-1")  # read again from the table
    assert subjects.loads == [b"acme/u-1", b"acme/u-1"]
    assert record.states[LOCKOUT].failures == 1


def test_peek_gives_a_cached_keys_stored_form_without_loading() -> None:
    subjects = Table(stages().subjects)
    subjects.run(ingested(login_failures(2)))

    peeked = subjects.cache.peek(b"acme/u-1")

    assert peeked is not None
    assert LockoutState.from_dict(peeked["states"][LOCKOUT]).failures == 2
    assert subjects.cache.peek(b"acme/never-seen") is None
    assert subjects.loads == [b"acme/u-1"]


# -- the stored form ---------------------------------------------------------------------


def test_a_key_records_stored_form_round_trips_through_load() -> None:
    log = Log(subject="u-1")
    events = [log.sign_in(T0), log.login(T0 + SECOND), log.code(T0 + 2 * SECOND)]
    topo = stages()
    subjects = Table(topo.subjects)
    subjects.run(ingested(events, partition=2, first_offset=40))
    folds = topo.subjects.by_name
    record = subjects.cache.get(b"acme/u-1")

    stored = record.stored(folds)
    assert stored is not None
    as_json = json.loads(json.dumps(stored))  # JSON builtins only
    loaded = KeyRecord.load(as_json, folds)

    assert as_json == stored
    assert set(loaded.states) == {LOCKOUT, "risk_by_subject"}
    assert loaded.states == record.states
    assert (loaded.applied, loaded.recent) == ({"2": 42}, record.recent)
    assert loaded.stored(folds) == stored
    assert all(loaded.seen(e.id, WINDOW_S) for e in events)
    assert not loaded.seen(sample_event().id, WINDOW_S)


def test_loading_a_stored_form_checks_its_version_and_drops_folds_no_longer_run() -> None:
    folds = stages().subjects.by_name
    lockout = LockoutState(failures=3).to_dict()

    with pytest.raises(ValueError, match="version 2"):
        KeyRecord.load({"version": 2, "states": {}, "applied": {}}, folds)
    record = KeyRecord.load(
        {"version": 1, "states": {LOCKOUT: lockout, "retired": {"n": 1}}, "applied": {"0": 4}},
        folds,
    )
    assert record.states == {LOCKOUT: LockoutState(failures=3)}
    assert record.stored(folds) == {"version": 1, "states": {LOCKOUT: lockout}, "applied": {"0": 4}}
    assert KeyRecord.load(None, folds).stored(folds) is None  # a key never seen: nothing


def test_an_event_dated_after_its_record_beyond_the_allowance_is_refused() -> None:
    """A producer with access to the topic dates a failure, an unlock or an erasure in the
    future, so that it acts until then: ingest refuses it against the record's timestamp
    (the broker's append time), with the reason; within the allowance it passes."""
    appended = T0
    ingest = Ingest(max_ahead=timedelta(minutes=5), control_keys=TRUSTED)

    def at(moment: datetime, kind: str = "auth.login.attempted") -> Record:
        event = sample_event(kind, subject="u-1", now=moment)
        stamp = int(appended.timestamp() * 1000)
        return raw(
            encode(event), key=kafka_key(event), headers=structured_headers(), timestamp_ms=stamp
        )

    fine = [at(appended - timedelta(days=3)), at(appended), at(appended + timedelta(minutes=5))]
    out = ingest.process(fine)
    assert out.dead_lettered == 0 and [e.role for e in out.emits] == [INGESTED] * 3

    forged = [
        at(appended + timedelta(minutes=5, milliseconds=1)),
        at(datetime(2099, 1, 1, tzinfo=T0.tzinfo), "privacy.subject.erased"),
        at(appended + timedelta(days=1), "auth.login.attempted"),
    ]
    out = ingest.process(forged)
    assert out.dead_lettered == 3 and {e.role for e in out.emits} == {DLQ}
    for letter in out.emits:
        meta = _dlq_headers(letter)
        assert meta["factorstream.dlq.field"] == "time"
        assert "more than 300 s after the record's timestamp" in meta["factorstream.dlq.reason"]
    assert Ingest(control_keys=TRUSTED).process(forged).dead_lettered == 0  # no allowance given
