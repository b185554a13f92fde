"""``factorstream enroll import`` and ``invite`` as an operator runs them, and the import on
a real PostgreSQL server: an export of seeds (otpauth URIs and CSV) imports with a progress
bar, malformed rows are refused with their line and reason, a second run imports nothing,
and codes ``oathtool`` computes for imported seeds verify through the verifier.

The files hold 2,000 seeds to keep the tests quick (most of their time is four CLI
processes starting); the 10,000-row export of the acceptance is measured with
``factorstream enroll import`` itself (docs/enrollment.md gives the figures)."""

from __future__ import annotations

import base64
import os
import random
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from factorstream.service_config import service_config
from factorstream.settings import Settings
from schemas import decode
from tests.support import oathtool_code
from tests.unit.front.test_service_commands import factorstream
from verifiers import totp
from verifiers.bulk_enrollment import Batches, BulkResult, import_seeds
from verifiers.bulk_files import Rejected
from verifiers.publish import metadata
from verifiers.seed_files import TotpSeed, read_seeds
from verifiers.service.server import open_store
from verifiers.store import Request, VerifierStore
from verifiers.tables import outbox_events

ROOT = Path(__file__).parents[2]
ALGORITHMS = ("SHA1", "SHA256", "SHA512")
MALFORMED = {  # an otpauth line (the URI file) → the reason it is refused
    "otpauth://hotp/Old:h-1?secret={k}&counter=4": "hotp_not_supported",
    "otpauth://totp/Old:m-1?issuer=Old": "missing_secret",
    "otpauth://totp/Old:m-2?secret=NOT-BASE32-0189": "bad_base32",
    "otpauth://totp/Old:m-3?secret=JBSWY3DPEHPK3PXP": "secret_too_short",
    "otpauth://totp/Old:m-4?secret={k}&algorithm=MD5": "unknown_algorithm",
    "otpauth://totp/Old:%3Dcmd|calc?secret={k}": "formula_subject",
    "otpauth://totp/Old:s-00001?secret={k}": "duplicate_subject",  # s-00001 is in the file
}


@dataclass(frozen=True)
class Export:
    """The files of one export and what each subject's seed is."""

    uris: Path
    csv: Path
    seeds: dict[str, tuple[str, str, int, int]]  # subject → (base32, algorithm, digits, period)


def _export(directory: Path, rows: int) -> Export:
    """``rows`` good seeds, half as otpauth URIs (plus the malformed lines), half as the
    generic CSV; mixed algorithms, digits and periods."""
    chance = random.Random(21)  # noqa: S311 - test data, not secrets in use
    seeds: dict[str, tuple[str, str, int, int]] = {}
    for n in range(rows):
        key = base64.b32encode(chance.randbytes(20)).decode().rstrip("=")
        seeds[f"s-{n:05d}"] = (key, ALGORITHMS[n % 3], (6, 8)[n % 2], (30, 60)[n % 5 == 0])
    items = list(seeds.items())
    half = rows // 2
    spare = items[0][1][0]
    uri_lines = [
        f"otpauth://totp/Old%20IdP:{subject}?secret={key}&issuer=Old%20IdP&algorithm={alg}"
        f"&digits={digits}&period={period}"
        for subject, (key, alg, digits, period) in items[:half]
    ] + [line.format(k=spare) for line in MALFORMED]
    csv_lines = ["subject,secret,issuer,algorithm,digits,period"] + [
        f"{subject},{key},Old IdP,{alg},{digits},{period}"
        for subject, (key, alg, digits, period) in items[half:]
    ]
    export = Export(directory / "seeds.txt", directory / "seeds.csv", seeds)
    export.uris.write_text("\n".join(uri_lines) + "\n")
    export.csv.write_text("\n".join(csv_lines) + "\n")
    return export


def _plain(output: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output).replace("\r", "\n")


def _count(output: str, label: str) -> int:
    found = re.search(rf"^\s*{label}\s+(\d+)\s*$", _plain(output), re.MULTILINE)
    assert found, f"no {label!r} in:\n{_plain(output)}"
    return int(found.group(1))


def _store(data_dir: Path, url: str | None) -> VerifierStore:
    return open_store(service_config(Settings(data_dir=data_dir, outbox_url=url)))


def _completed(store: VerifierStore) -> list[str]:
    with store.engine.connect() as connection:
        values = connection.execute(
            sa.select(outbox_events.c.value).where(
                outbox_events.c.event_type == "mfa.enrollment.completed"
            )
        ).scalars()
        return [decode(value).subject for value in values]


def _oathtool_verifies(store: VerifierStore, export: Export, subjects: list[str]) -> None:
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    for subject in subjects:
        key, algorithm, digits, period = export.seeds[subject]
        code = oathtool_code(key, algorithm=algorithm, digits=digits, at=moment, period=period)
        request = Request("acme", subject, f"check-{subject}", moment)
        verdict = totp.verify(store, request, code=code)
        assert verdict.accepted, (subject, algorithm, digits, period, verdict.reason)


def _import_twice(data_dir: Path, export: Export) -> VerifierStore:
    """Both files imported with the CLI, then both again; returns the store they went into."""
    half = len(export.seeds) // 2
    export.uris.chmod(0o644)
    export.csv.chmod(0o600)
    first = factorstream(
        data_dir, "enroll", "import", str(export.uris), "--tenant", "acme", check=False
    )
    assert first.returncode == 2, first.stderr  # finished, with refused rows
    assert "importing seeds" in first.stdout and "━" in first.stdout  # the progress bar
    assert (_count(first.stdout, "imported"), _count(first.stdout, "refused")) == (
        half - 1,  # s-00001 is refused on both of its lines
        len(MALFORMED) + 1,
    )
    csv = factorstream(
        data_dir, "enroll", "import", str(export.csv), "--tenant", "acme", check=False
    )
    assert csv.returncode == 0, csv.stderr
    assert "open to other users" in first.stderr and "open to other" not in csv.stderr
    assert _count(csv.stdout, "imported") == len(export.seeds) - half

    report = export.uris.with_name("seeds.txt.rejects.csv").read_text()
    lines = [line.split(",", 2) for line in report.splitlines()[1:]]
    assert {reason for _, reason, _ in lines} == set(MALFORMED.values())
    assert [int(n) for n, reason, _ in lines if reason == "duplicate_subject"] == [2, half + 7]
    assert all(key not in report for key, *_ in export.seeds.values())

    for file, present in ((export.uris, half - 1), (export.csv, len(export.seeds) - half)):
        again = factorstream(
            data_dir, "enroll", "import", str(file), "--tenant", "acme", check=False
        )
        assert _count(again.stdout, "imported") == 0, again.stdout
        assert _count(again.stdout, "already present") == present
    store = _store(data_dir, None)
    subjects = _completed(store)
    assert len(subjects) == len(set(subjects)) == len(export.seeds) - 1  # nothing twice
    return store


def test_an_export_imports_once_and_its_seeds_verify_with_oathtool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # draw the progress bar into the pipe
    export = _export(tmp_path, 2_000)
    store = _import_twice(tmp_path / "data", export)
    sample = random.Random(7).sample(sorted(set(export.seeds) - {"s-00001"}), 24)  # noqa: S311
    _oathtool_verifies(store, export, sample)


@pytest.fixture
def postgres_store_url(postgres_url: str) -> Iterator[str]:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:  # a fresh schema on the shared server
        import verifiers.tables  # noqa: F401 - every table of the store on the metadata

        metadata.drop_all(connection)
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()
    yield postgres_url


def test_an_import_into_postgresql_is_idempotent_and_verifies(
    tmp_path: Path, postgres_store_url: str
) -> None:
    export = _export(tmp_path, 1_000)
    store = _store(tmp_path / "data", postgres_store_url)
    rows = [*_read(export.uris), *_read(export.csv)]
    seeds = [row for row in rows if isinstance(row, TotpSeed)]

    first = _import(store, seeds)
    again = _import(store, seeds)

    assert (first.added, first.already_present, first.rejected) == (len(seeds), 0, [])
    assert (again.added, again.already_present, again.rejected) == (0, len(seeds), [])
    assert sorted(_completed(store)) == sorted(seed.subject for seed in seeds)
    assert len(seeds) == len(export.seeds) - 1  # s-00001 is on two lines: refused on both
    _oathtool_verifies(store, export, ["s-00000", "s-00002", "s-00505", "s-00999"])
    store.engine.dispose()


def test_two_imports_of_one_file_at_once_insert_each_seed_once(
    tmp_path: Path, postgres_store_url: str
) -> None:
    export = _export(tmp_path, 1_000)
    store = _store(tmp_path / "data", postgres_store_url)
    seeds = [row for row in _read(export.csv) if isinstance(row, TotpSeed)]
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: _import(store, seeds, Batches(rows=50)), range(2)))

    assert sum(run.added for run in runs) == len(seeds)
    assert sum(run.already_present for run in runs) == len(seeds)
    assert sorted(_completed(store)) == sorted(seed.subject for seed in seeds)
    store.engine.dispose()


def _read(path: Path) -> list[TotpSeed | Rejected]:
    with path.open("rb") as stream:
        return read_seeds(stream)


def _import(
    store: VerifierStore, seeds: list[TotpSeed], batches: Batches | None = None
) -> BulkResult:
    return import_seeds(
        store,
        seeds,
        tenant="acme",
        now=datetime.now(UTC),
        correlationid="enroll-import-pg",
        imported_from="otpauth",
        batches=batches or Batches(),
    )


def test_a_bulk_invitation_starts_enrollment_once(tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text("subject,team\n" + "".join(f"p-{n},ops\n" for n in range(300)) + "p-1,ops\n")
    data = tmp_path / "data"

    invite = ["enroll", "invite", str(people), "--tenant", "acme", "--factor", "webauthn"]
    first = factorstream(data, *invite, check=False)
    again = factorstream(data, *invite, check=False)

    assert first.returncode == again.returncode == 2  # p-1 twice in the file
    assert (_count(first.stdout, "invited"), _count(first.stdout, "refused")) == (300, 1)
    assert (_count(again.stdout, "invited"), _count(again.stdout, "already present")) == (0, 300)
    with _store(data, None).engine.connect() as connection:
        started = connection.execute(
            sa.select(sa.func.count()).where(outbox_events.c.event_type == "mfa.enrollment.started")
        ).scalar_one()
    assert started == 300


def test_a_signal_stops_the_import_between_batches_and_the_summary_says_what_committed(
    tmp_path: Path,
) -> None:
    lines = [
        f"otpauth://totp/Old:g-{n}?secret={base64.b32encode(n.to_bytes(20, 'big')).decode()}"
        for n in range(20_000)
    ]
    seeds = tmp_path / "many.txt"
    seeds.write_text("\n".join(lines) + "\n")
    data = tmp_path / "data"
    env = {
        **os.environ,
        "FACTORSTREAM_DATA_DIR": str(data),
        "TTY_COMPATIBLE": "1",
        "COLUMNS": "120",
    }
    command = [sys.executable, "-m", "factorstream.cli", "enroll", "import", str(seeds)]
    with subprocess.Popen(  # noqa: S603 - our interpreter, our CLI
        [*command, "--tenant", "acme"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None
        seen = b""
        while not re.search(
            r"importing seeds\D*[1-9]\d*/20000", _plain(seen.decode(errors="replace"))
        ):
            chunk = process.stdout.read1(4096)  # type: ignore[attr-defined]
            assert chunk, "the import ended before a batch committed"
            seen += chunk
        process.send_signal(signal.SIGTERM)
        rest, errors = process.communicate(timeout=120)
    output = (seen + rest).decode()

    assert process.returncode == 130, errors
    assert "stopped by a signal" in errors.decode()
    committed = _count(output, "imported")
    assert 0 < committed < 20_000 and committed % 500 == 0  # whole batches
    assert len(_completed(_store(data, None))) == committed
