"""``bench ledger``: appending with the Merkle tree vs a plain batched INSERT; verify; proofs.

* Append (SQLite and PostgreSQL): ``Ledger.append`` of decoded events in batches of
  2,000 (the sink's default) — idempotency check, sealing of personal data under the
  subjects' keys, canonical encoding, leaf and node hashes, head update, checkpoints
  every 1,000 entries — against a plain ``INSERT`` of the very same rows (the same
  entry bytes, precomputed) into a table of the same shape, one transaction per batch,
  without a tree. Rounds interleave; each round appends new events. On PostgreSQL the
  ledger writes its rows with a binary ``COPY`` (``audit.database.bulk_insert``); a plain
  binary ``COPY`` of the same rows without a tree is shown beside, so the cost of the
  tree, sealing and checks alone can be read off too.
* Verify (SQLite): ``Ledger.verify`` of a ledger of 1,000,000 entries (``--quick``:
  5,000) against the goal of 1,000,000 entries in 30 s; the inclusion proof time (build
  from the database, and check offline) is a note.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.sql.elements import quoted_name

from audit.checkpoints import public_pem
from audit.database import bulk_insert
from audit.ledger import Ledger, open_ledger
from audit.tables import entries, metadata
from audit.verify import check_proof_document
from factorstream.bench import BenchResult, Measurement, best_rates
from factorstream.localpostgres import local_postgres
from schemas import Event, new_event
from schemas import payloads as p
from schemas.fields import Client, Device, Factor, Geo, Outcome, PolicyTier

T0 = datetime(2026, 11, 27, tzinfo=UTC)
BATCH = 2000


def run(*, quick: bool, postgres_url: str | None = None) -> list[BenchResult]:
    per_round, rounds = (2_000, 2) if quick else (20_000, 3)
    verify_size = 5_000 if quick else 1_000_000
    results = []
    with tempfile.TemporaryDirectory(prefix="factorstream-bench-") as tmp:
        root = Path(tmp)
        with _postgres(postgres_url) as pg_url:
            for backend, url in (
                ("SQLite", f"sqlite:///{root / 'append.db'}"),
                ("PostgreSQL", pg_url),
            ):
                results.append(_append(url, backend, root, per_round, rounds))
        results.append(_verify(f"sqlite:///{root / 'verify.db'}", root, verify_size))
    return results


@contextlib.contextmanager
def _postgres(url: str | None) -> Iterator[str]:
    """A throw-away database on the server given (never its own tables), or a private one."""
    with contextlib.ExitStack() as stack:
        server = url or stack.enter_context(local_postgres())
        name = f"bench_ledger_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()


def sample_events(count: int, *, offset: int = 0, subjects: int = 1000) -> Iterator[Event]:
    """Sign-in events of ``subjects`` people, with client context (personal data)."""
    rng = random.Random(offset)
    for i in range(offset, offset + count):
        subject = f"u-{rng.randrange(subjects)}"
        client = Client(
            ip=f"198.51.100.{rng.randrange(1, 255)}",
            user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
            device=Device(id=f"dev-{subject}", kind="desktop", os="Linux", browser="Firefox"),
            geo=Geo(country="DE", city="Berlin", latitude=52.52, longitude=13.405, asn=3320),
        )
        payload: p.Payload
        if i % 2:
            payload = p.LoginAttempted(
                outcome=Outcome.SUCCESS, method="password", application="payroll", client=client
            )
        else:
            payload = p.VerificationSucceeded(
                factor=Factor.TOTP,
                challenge_id=f"ch-{i}",
                policy_tier=PolicyTier.BUSINESS,
                application="payroll",
                client=client,
            )
        yield new_event(
            payload,
            source="https://login.example.com",
            tenant="acme",
            subject=subject,
            correlationid=f"login-{i}",
            now=T0 + timedelta(milliseconds=i),
        )


def _ledger(url: str, root: Path, name: str) -> Ledger:
    return open_ledger(
        url=url,
        signing_key_file=root / f"{name}-signing.pem",
        master_key_file=root / f"{name}-master.key",
        checkpoint_every=1000,
        checkpoint_interval_s=60,
    )


def _reset(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for name in ("bench_plain_entries", "bench_copied_entries", "audit_alembic_version"):
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    metadata.drop_all(engine)
    engine.dispose()


def _append(url: str, backend: str, root: Path, per_round: int, rounds: int) -> BenchResult:
    _reset(url)
    sets = [list(sample_events(per_round, offset=r * per_round)) for r in range(rounds)]
    # the baseline's rows: exactly what the ledger stores, made by a scratch ledger
    scratch = _ledger(f"sqlite:///{root / f'scratch-{backend}.db'}", root, "scratch")
    for events in sets:
        for start in range(0, per_round, BATCH):
            scratch.append(events[start : start + BATCH], now=T0)
    with scratch.engine.connect() as connection:
        stored = [
            dict(r) for r in connection.execute(entries.select().order_by(entries.c.seq)).mappings()
        ]
    scratch.engine.dispose()
    row_sets = [stored[r * per_round : (r + 1) * per_round] for r in range(rounds)]

    ledger = _ledger(url, root, backend)
    plain, copied = (_plain_table(ledger.engine, name) for name in ("plain", "copied"))
    turn = {"ledger": 0, "plain": 0, "copied": 0}

    def with_tree() -> int:
        events = sets[turn["ledger"]]
        turn["ledger"] += 1
        for start in range(0, len(events), BATCH):
            ledger.append(events[start : start + BATCH], now=T0)
        return len(events)

    def without_tree() -> int:
        rows = row_sets[turn["plain"]]
        turn["plain"] += 1
        for start in range(0, len(rows), BATCH):
            with ledger.engine.begin() as connection:
                connection.execute(plain.insert(), rows[start : start + BATCH])
        return len(rows)

    def copied_without_tree() -> int:
        rows = row_sets[turn["copied"]]
        turn["copied"] += 1
        for start in range(0, len(rows), BATCH):
            with ledger.engine.begin() as connection:
                bulk_insert(connection, copied, rows[start : start + BATCH])
        return len(rows)

    runs = {"ledger": with_tree, "plain": without_tree}
    if backend == "PostgreSQL":  # where the ledger writes with COPY: the faster floor too
        runs["copied"] = copied_without_tree
    rates = best_rates(runs, rounds=rounds)
    report = ledger.verify()
    ledger.engine.dispose()
    if not report.ok:
        raise AssertionError(f"the benchmark ledger does not verify: {report.problems}")
    return BenchResult(
        bench=f"ledger-append-{backend.lower()}",
        baseline=Measurement(
            f"plain batched INSERT of the same rows ({backend})",
            rates["plain"].events_per_s,
            rounds,
            per_round,
        ),
        contenders=[
            Measurement(
                f"Ledger.append with tree, sealing, checkpoints ({backend})",
                rates["ledger"].events_per_s,
                rounds,
                per_round,
            ),
            *(
                [
                    Measurement(
                        f"plain binary COPY of the same rows, no tree ({backend})",
                        rates["copied"].events_per_s,
                        rounds,
                        per_round,
                    )
                ]
                if "copied" in rates
                else []
            ),
        ],
        unit="entries/s",
        goal_ratio=0.5,
        goal_text="≥ 0.5× a plain batched INSERT",
        notes={"batch": f"{BATCH} events per transaction, {per_round} events per round"},
    )


def _plain_table(engine: sa.Engine, name: str) -> sa.Table:
    """An empty table shaped like the ledger's entries (its own index names)."""
    table = entries.to_metadata(sa.MetaData(), name=f"bench_{name}_entries")
    for index in table.indexes:
        index.name = quoted_name(f"bench_{name}_{index.name}", None)
    table.metadata.create_all(engine)
    return table


def _timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = run()
    return time.perf_counter() - started, value


def _verify(url: str, root: Path, size: int) -> BenchResult:
    ledger = _ledger(url, root, "verify")
    build_s = 0.0
    ids: list[str] = []
    for start in range(0, size, BATCH):
        events = list(sample_events(min(BATCH, size - start), offset=start))
        ids.append(events[0].id)
        started = time.perf_counter()
        ledger.append(events, now=T0)
        build_s += time.perf_counter() - started
    ledger.tick(now=T0, force=True)
    cpu_started = time.process_time()
    verify_s, report = _timed(ledger.verify)
    verify_cpu_s = time.process_time() - cpu_started
    if not report.ok or report.size != size:
        raise AssertionError(f"the benchmark ledger does not verify: {report.problems}")
    keys = [public_pem(k) for k in ledger.public_keys().values()]
    picks = random.Random(1).sample(ids, min(50, len(ids)))
    prove_s, documents = _timed(lambda: [json.dumps(ledger.prove(i)) for i in picks])
    check_s, _ = _timed(lambda: [check_proof_document(d, public_keys=keys) for d in documents])
    ledger.engine.dispose()
    goal_rate = 1_000_000 / 30
    return BenchResult(
        bench="ledger-verify-sqlite",
        baseline=Measurement("goal: 1,000,000 entries in 30 s", goal_rate, 1, 1_000_000),
        contenders=[Measurement(f"Ledger.verify of {size:,} entries", size / verify_s, 1, size)],
        unit="entries/s",
        goal_ratio=1.0,
        goal_text="verify 1,000,000 entries in < 30 s",
        notes={
            "verify": f"{size:,} entries in {verify_s:.1f} s, {verify_cpu_s:.1f} s of CPU "
            f"(→ {1_000_000 / (size / verify_s):.1f} s per million; machine load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)",
            "inclusion proof": f"{prove_s / len(picks) * 1e3:.2f} ms to build from the database, "
            f"{check_s / len(picks) * 1e3:.3f} ms to check offline (tree of {size:,})",
            "building the ledger": f"{size / build_s:,.0f} entries/s via Ledger.append",
        },
    )
