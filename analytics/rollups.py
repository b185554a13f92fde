"""Rollups: what the dashboard's heavy queries read instead of every event.

Compaction builds (:func:`refresh`) one rollup per month, of its days but the lake's
newest, and one of the newest day alone; each holds, per subject and the
:data:`DIMENSIONS`, a bit per day (``presence``, ``active``, ``held``, ``activity``) and
per-day tables (``counts``, ``completions``, ``privileged``, ``verified``,
``deliveries``, ``sms``, ``transactions``, ``coverage``). :func:`plan` says which days of
a query's window the rollups answer (whole days whose partition digest is unchanged) and
which are read from the files themselves, so an answer equals the one from the raw files
alone, whatever state the rollups are in. Erasure removes every rollup (:func:`remove`).
What each file holds, how readers use them, the layout: docs/lake.md.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time as time_module
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from analytics.columns import PRIVILEGED_ROLES
from analytics.lake import (
    GENERATIONS,
    SEED_DATE,
    lake_lock,
    new_generation,
    parquet_names,
    partition_link,
    partitions,
    point_link,
    write_file,
)
from analytics.spans import held_days, spans
from analytics.views import (
    FAILED_SIGN_IN,
    PRIVILEGED,
    PRIVILEGED_ROLE,
    SIGN_IN,
    SMS_DELIVERY,
    completed,
    lake_files,
)

ROLLUPS: Final = "_rollups"
"""Laid out like a table (``analytics.lake``): one partition per month, named by its first
day, and its generations."""
PRESENCE, ACTIVE, COUNTS = "presence.parquet", "active.parquet", "counts.parquet"
HELD: Final = "held.parquet"
ACTIVITY: Final = "activity.parquet"
COMPLETIONS, COVERAGE = "completions.parquet", "coverage.parquet"
PRIVILEGED_FILE, VERIFIED = "privileged.parquet", "verified.parquet"
TRANSACTIONS, DELIVERIES = "transactions.parquet", "deliveries.parquet"
SMS: Final = "sms.parquet"
DIMENSIONS: Final = (
    "tenant",
    "application",
    "factor",
    "policy_tier",
    "device_kind",
    "device_os",
    "country",
    "latitude",
    "longitude",
)
"""What the rolled-up sign-ins keep besides the subject (coordinates rounded to 0.1°)."""
_SOURCE: Final = lake_files("$files")
_VALUES: Final = ", ".join(
    f"round({name}, 1) AS {name}" if name in ("latitude", "longitude") else name
    for name in DIMENSIONS
)
_DAYS: Final = "bit_or((1::UINTEGER) << date_diff('day', $month::DATE, date)::UINTEGER) AS days"
"""The days of the rollup the grouped rows fall on: bit 0 for its first (``$month``)."""
_PRESENCE_SQL: Final = f"""
SELECT $month::DATE AS month, subject, {_VALUES}, {_DAYS}
FROM {_SOURCE} WHERE {SIGN_IN}
GROUP BY ALL ORDER BY tenant, subject
"""  # noqa: S608 - constant text
_ACTIVE_SQL: Final = f"""
SELECT $month::DATE AS month, tenant, subject, application, {_DAYS}
FROM {_SOURCE} WHERE {SIGN_IN}
GROUP BY ALL ORDER BY tenant, subject
"""  # noqa: S608 - constant text
_HELD_SQL: Final = f"""
WITH spans AS ({spans(lake_files("$enrollments"))}
), active AS (
    SELECT tenant, subject, application, {_DAYS}
    FROM {_SOURCE} WHERE {SIGN_IN}
    GROUP BY ALL
)
SELECT $month::DATE AS month, a.tenant, a.subject, a.application, s.factor,
    (a.days & bit_or({held_days("$month::DATE", "s")}))::UINTEGER AS days
FROM active a JOIN spans s ON s.tenant = a.tenant AND s.subject = a.subject
WHERE s.enrolled_on IS NOT NULL
GROUP BY a.tenant, a.subject, a.application, s.factor, a.days
HAVING (a.days & bit_or({held_days("$month::DATE", "s")})) <> 0
ORDER BY a.tenant, a.subject
"""  # noqa: S608 - constant text
_ACTIVITY_SQL: Final = f"""
SELECT $month::DATE AS month, tenant, subject, {_DAYS}
FROM {_SOURCE}
GROUP BY ALL ORDER BY tenant, subject
"""  # noqa: S608 - constant text
_COUNTS_SQL: Final = f"""
SELECT date, {_VALUES}, count(*) AS sign_ins, count(*) FILTER (WHERE {FAILED_SIGN_IN}) AS failures
FROM {_SOURCE} WHERE {SIGN_IN}
GROUP BY ALL ORDER BY date
"""  # noqa: S608 - constant text
_PRIVILEGED_SQL: Final = f"""
SELECT date, tenant, subject, max({PRIVILEGED_ROLE}) AS role,
    bool_or(policy_tier = 'admin') AS admin_tier, max(policy_tier) AS policy_tier,
    max(time) AS last_seen
FROM {_SOURCE} WHERE {PRIVILEGED}
GROUP BY ALL ORDER BY tenant, subject, date
"""  # noqa: S608 - constant text
FORMAT: Final = 9
"""The rollups' layout: bump it when a file's content changes. In every digest, with the
files' names, the privileged roles (which the ``privileged`` rollup applies) and DuckDB's
version (whose ``hash`` keys the ``transactions``), so rollups of another layout are
neither read nor kept (the next refresh builds them anew)."""
READ_BY_DAY: Final = (
    PRESENCE,
    ACTIVE,
    HELD,
    ACTIVITY,
    COUNTS,
    PRIVILEGED_FILE,
    VERIFIED,
    DELIVERIES,
    SMS,
)
"""The files queries read for the rollups' whole days of their window (the others:
``transactions`` and ``completions`` by their own rules, ``coverage`` by the plan)."""
FILES: Final = (*READ_BY_DAY, TRANSACTIONS, COMPLETIONS, COVERAGE)
_LAYOUT: Final = (
    f"rollups v{FORMAT} {' '.join(FILES)} privileged {','.join(sorted(PRIVILEGED_ROLES))} "
    f"duckdb {duckdb.__version__}"
)
_VERIFIED: Final = lake_files("$verifications")
_CHALLENGED: Final = lake_files("$challenges")
_COMPLETIONS_SQL: Final = f"""
SELECT date, tenant, application, factor, time_to_complete_ms
FROM ({completed(_VERIFIED, _CHALLENGED)})
WHERE success AND time_to_complete_ms IS NOT NULL
ORDER BY factor, date
"""  # noqa: S608 - constant text
_TRANSACTION: Final = "hash(tenant, correlationid)"
"""SQL: the key of a row's transaction in the ``transactions`` rollup."""
_TRANSACTIONS_SQL: Final = f"""
SELECT DISTINCT date, {_TRANSACTION} AS key
FROM {_CHALLENGED} WHERE status IN ('issued', 'required')
ORDER BY key
"""  # noqa: S608 - constant text
_DELIVERIES_SQL: Final = f"""
SELECT date, tenant, challenge_id, bool_or(status = 'delivery_failed') AS delivery_failed
FROM {_CHALLENGED} WHERE {SMS_DELIVERY}
GROUP BY ALL ORDER BY date, tenant, challenge_id
"""  # noqa: S608 - constant text
_SMS_SQL: Final = f"""
WITH delivered AS (
    SELECT tenant, challenge_id, date, bool_or(status = 'delivery_failed') AS failed
    FROM {_CHALLENGED} WHERE {SMS_DELIVERY} AND challenge_id IS NOT NULL
    GROUP BY ALL
), bits AS (
    SELECT *, CASE WHEN date >= $month::DATE
        THEN 1::UINTEGER << date_diff('day', $month::DATE, date)::UINTEGER END AS bit
    FROM delivered
)
SELECT $month::DATE AS month, tenant,
    bit_or(bit) FILTER (WHERE date >= $month::DATE) AS days,
    coalesce(bit_or(bit) FILTER (WHERE date >= $month::DATE AND failed), 0) AS failed_days,
    coalesce(list(date ORDER BY date) FILTER (WHERE date < $month::DATE), []) AS earlier,
    coalesce(list(date ORDER BY date) FILTER (WHERE date < $month::DATE AND failed), [])
        AS earlier_failed
FROM bits GROUP BY tenant, challenge_id
HAVING bool_or(date >= $month::DATE)
ORDER BY tenant
"""  # noqa: S608 - constant text
_VERIFIED_SQL: Final = f"""
SELECT date, tenant, subject, factor, count(*) AS successes
FROM {_VERIFIED} WHERE success
GROUP BY ALL ORDER BY tenant, subject, date
"""  # noqa: S608 - constant text
PRESENCE_ROW_GROUP_ROWS: Final = 131_072
ORPHAN_AGE_S: Final = 3600


@dataclass(frozen=True)
class Listing:
    """What a date partition of a table holds now: its generation and its files."""

    link: Path
    generation: Path
    names: tuple[str, ...]

    @property
    def digest(self) -> str:
        """Changes whenever the partition's rows may have: files are immutable, and a
        compaction or an erasure writes a new generation."""
        text = "\n".join([_LAYOUT, self.generation.name, *self.names])
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def files(self) -> list[str]:
        """The files, through the partition's link (whose name DuckDB reads ``date`` from);
        one swapped away meanwhile fails to open, and the reader plans again."""
        return [os.fspath(self.link / name) for name in self.names]


def listings(lake: Path, table: str = "events") -> dict[date, Listing]:
    """Every date partition of ``table`` (the seed partition included), as it is now."""
    found = {}
    for day, link in partitions(lake, table):
        try:
            generation = link.resolve(strict=True)
            found[day] = Listing(link, generation, tuple(parquet_names(generation)))
        except FileNotFoundError:  # swapped while listed: the next call sees the new one
            continue
    return found


def month_of(day: date) -> date:
    return day.replace(day=1)


@dataclass(frozen=True)
class Covered:
    """A day a rollup was built from: its partition's digest then, and whether the rollup
    answers for the day (its own days) or only looked up its challenges and enrollments."""

    digest: str
    own: bool


def coverage(generation: Path) -> dict[date, Covered]:
    """The days a rollup was built from."""
    table = pq.read_table(generation / COVERAGE).to_pydict()
    return {
        day: Covered(digest, own)
        for day, digest, own in zip(table["day"], table["digest"], table["own"], strict=True)
    }


def _covers(generation: Path, wanted: Mapping[date, Covered]) -> bool:
    try:
        return coverage(generation) == wanted
    except (FileNotFoundError, KeyError):  # replaced just now; an older layout
        return False


def generations(lake: Path) -> dict[date, Path]:
    """Each rollup, by its first day, and the generation directory its link points to."""
    found = {}
    for start, link in partitions(lake, ROLLUPS):
        try:
            found[start] = link.resolve(strict=True)
        except FileNotFoundError:
            continue
    return found


def refresh(lake: Path) -> list[date]:
    """Build every rollup whose partitions changed since it was built: one per month for
    its days but the lake's newest, one for the newest day (the completions of each also
    read every day before); delete rollups no longer wanted. The first days of those built.
    """
    days = {day: listing for day, listing in listings(lake).items() if day != SEED_DATE}
    wanted: dict[date, list[date]] = defaultdict(list)
    if days:
        newest = max(days)
        for day in sorted(days):
            wanted[newest if day == newest else month_of(day)].append(day)
    _remove_orphans(lake)
    _remove_unwanted(lake, set(wanted))
    built = []
    existing = generations(lake)
    for start, own in sorted(wanted.items()):
        upto = {day: days[day] for day in days if day <= own[-1]}
        covered = {day: Covered(listing.digest, day in own) for day, listing in upto.items()}
        if start in existing and _covers(existing[start], covered):
            continue
        if _build(lake, start, own, upto):
            built.append(start)
    return built


def _remove_unwanted(lake: Path, wanted: set[date]) -> None:
    """Delete the rollups of days that are no longer a rollup's first (yesterday's newest
    day, now in its month's rollup)."""
    with lake_lock(lake, exclusive=True):
        for start, link in partitions(lake, ROLLUPS):
            if start not in wanted:
                generation = link.resolve()
                link.unlink()
                shutil.rmtree(generation, ignore_errors=True)


def _build(lake: Path, start: date, own: list[date], upto: Mapping[date, Listing]) -> bool:
    """Build the rollup of the days ``own`` (from ``start``) from exactly the files listed
    (``upto``: every day up to the last of them, whose challenges the completions look up).
    Nothing is built when a file was swapped away meanwhile, or when a partition changed
    before the swap (an erasure: its places must not come back); the next refresh builds
    it."""
    files = [name for day in own for name in upto[day].files]
    verifications = _files(listings(lake, "verifications"), lambda day: day in own)
    challenged = listings(lake, "challenges")
    challenges = _files(challenged, lambda day: day in upto)
    own_files: dict[str, object] = {"files": files, "month": start}
    own_challenges: dict[str, object] = {"challenges": _files(challenged, own.__contains__)}
    enrollments = _files(listings(lake, "enrollments"), upto.__contains__)
    queries: dict[str, tuple[str, dict[str, object]]] = {
        PRESENCE: (_PRESENCE_SQL, own_files),
        ACTIVE: (_ACTIVE_SQL, own_files),
        HELD: (_HELD_SQL, {**own_files, "enrollments": enrollments}),
        ACTIVITY: (_ACTIVITY_SQL, own_files),
        COUNTS: (_COUNTS_SQL, {"files": files}),
        PRIVILEGED_FILE: (_PRIVILEGED_SQL, {"files": files}),
        VERIFIED: (_VERIFIED_SQL, {"verifications": verifications}),
        TRANSACTIONS: (_TRANSACTIONS_SQL, own_challenges),
        DELIVERIES: (_DELIVERIES_SQL, own_challenges),
        SMS: (_SMS_SQL, {"challenges": challenges, "month": start}),
        COMPLETIONS: (
            _COMPLETIONS_SQL,
            {"verifications": verifications, "challenges": challenges},
        ),
    }
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        tables = {
            name: con.sql(sql, params=params).to_arrow_table()
            for name, (sql, params) in queries.items()
        }
    except duckdb.IOException:
        return False
    finally:
        con.close()
    tables[COVERAGE] = pa.table(
        {
            "day": pa.array(sorted(upto), pa.date32()),
            "digest": pa.array([upto[day].digest for day in sorted(upto)], pa.string()),
            "own": pa.array([day in own for day in sorted(upto)], pa.bool_()),
        }
    )
    generation = new_generation(lake, ROLLUPS, start)
    for name, table in tables.items():
        big = name in (PRESENCE, ACTIVE, HELD, ACTIVITY, VERIFIED)
        write_file(generation, name, table, row_group_rows=PRESENCE_ROW_GROUP_ROWS if big else None)
    with lake_lock(lake, exclusive=True):
        now = listings(lake)
        if any(day not in now or now[day].digest != upto[day].digest for day in upto):
            shutil.rmtree(generation)
            return False
        link = partition_link(lake, ROLLUPS, start)
        old = link.resolve() if link.is_symlink() else None
        point_link(link, generation)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return True


def _files(listed: Mapping[date, Listing], keep: Callable[[date], bool]) -> list[str]:
    """The files of the partitions whose day ``keep`` holds, and the seed file (so that the
    list is never empty)."""
    return [
        name
        for day, listing in sorted(listed.items())
        if day == SEED_DATE or keep(day)
        for name in listing.files
    ]


def _remove_orphans(lake: Path) -> None:
    """Delete generations no month links to, left by a crash an hour or more ago (a
    younger one may be another compaction's, still being written)."""
    live = set(generations(lake).values())
    for generation in (lake / ROLLUPS / GENERATIONS).glob("date=*"):
        try:
            stale = time_module.time() - generation.stat().st_mtime > ORPHAN_AGE_S
        except FileNotFoundError:
            continue
        if stale and generation.resolve() not in live:
            shutil.rmtree(generation, ignore_errors=True)


def remove(lake: Path) -> None:
    """Delete every rollup (the caller holds the lake's lock exclusively)."""
    shutil.rmtree(lake / ROLLUPS, ignore_errors=True)


@dataclass(frozen=True)
class Plan:
    """Where a query over sign-ins reads each day of its window from."""

    rolled_files: dict[str, list[str]]
    """Per file of :data:`READ_BY_DAY`, by its name without ``.parquet`` (``presence``,
    ``held``, …): that file of each rollup used, in ``months`` order."""
    completions: list[str]
    completed: list[date]
    """Days whose completions the rollups answer: rolled days none of whose earlier days
    (where their challenges are) changed since."""
    lookups: list[str]
    """``verifications`` files of every other day of the window (whose completions are
    looked up now), and the seed file."""
    months: list[date]
    masks: list[int]
    complete_masks: list[int]
    """Per month, the days of ``masks`` also in ``completed``."""
    days: list[date]
    """Days answered by the rollups (whole days of the window)."""
    raw_days: list[date]
    """Every other day of the window (read from the files themselves)."""
    raw: list[str]
    """``events`` files of those days, and the seed file (so that the list is never
    empty)."""
    raw_verifications: list[str]
    """``verifications`` files of the same days, and the seed file."""
    raw_challenges: list[str]
    """``challenges`` files of the same days, and the seed file."""
    transactions: list[str]
    indexed: list[date]
    """Days whose transactions the ``transactions`` rollups index (unchanged since)."""
    challenges: dict[date, list[str]]
    """Each day's ``challenges`` files (:func:`challenges_to_look_up`)."""

    @property
    def rolled(self) -> bool:
        """Whether the rollups answer any day of the window."""
        return bool(self.days)

    @property
    def all_completed(self) -> bool:
        """Whether the rollups answer the completions (and held factors) of every day they
        answer."""
        return len(self.completed) == len(self.days)

    def params(self) -> dict[str, object]:
        """The files and masks as query parameters: ``$raw``, ``$raw_verifications``,
        ``$raw_challenges``, ``$lookups``; with rolled days also those of
        ``rolled_files`` (``$presence``, ``$held``, …), ``$months``, ``$masks``,
        ``$complete_masks``, ``$days``, and ``$completions``, ``$completed``."""
        raw: dict[str, object] = {
            "raw": self.raw,
            "raw_verifications": self.raw_verifications,
            "raw_challenges": self.raw_challenges,
            "lookups": self.lookups,
        }
        if self.completed:
            raw.update(completions=self.completions, completed=self.completed)
        if not self.rolled:
            return dict(raw)
        return {
            **raw,
            **self.rolled_files,
            "months": self.months,
            "masks": self.masks,
            "complete_masks": self.complete_masks,
            "days": self.days,
        }


def _whole_day_inside(day: date, since: datetime | None, until: datetime | None) -> bool:
    start = datetime.combine(day, time(), UTC)
    return (since is None or since <= start) and (
        until is None or start + timedelta(days=1) <= until
    )


def _touches(day: date, since: datetime | None, until: datetime | None) -> bool:
    start = datetime.combine(day, time(), UTC)
    return (since is None or since < start + timedelta(days=1)) and (until is None or start < until)


def _mask(start: date, days: Iterable[date]) -> int:
    """The days of the rollup from ``start`` as bits: bit 0 for ``start``."""
    return sum({1 << (day - start).days for day in days})


def plan(lake: Path, since: datetime | None, until: datetime | None) -> Plan:
    """Which days of ``[since, until)`` the rollups answer, and the files of the others."""
    now = listings(lake)
    rolled: dict[date, tuple[date, Path]] = {}  # day: the first day of its rollup, and that
    completed: dict[date, tuple[date, Path]] = {}
    indexed: dict[date, tuple[date, Path]] = {}
    for start, generation in generations(lake).items():
        try:
            built = coverage(generation)
        except (FileNotFoundError, KeyError):  # rebuilt while read (those days are read raw
            continue  # this time); an older layout
        # every day up to its last own one, those it was built from and any new since (a
        # late event's partition): its completions and held factors read all of them
        last = max((day for day, covered in built.items() if covered.own), default=SEED_DATE)
        upto = set(built) | {day for day in now if SEED_DATE < day <= last}
        unchanged = True  # every day so far, the rollup's own and the earlier ones
        for day in sorted(upto):
            covered, listing = built.get(day), now.get(day)
            same = covered is not None and listing is not None and listing.digest == covered.digest
            unchanged = unchanged and same
            if covered is not None and covered.own and same and day not in indexed:
                indexed[day] = (start, generation)
                if _whole_day_inside(day, since, until):
                    rolled[day] = (start, generation)
                    if unchanged:
                        completed[day] = (start, generation)
    used: dict[date, tuple[Path, int]] = {}
    for day, (start, generation) in rolled.items():
        _, mask = used.get(start, (generation, 0))
        used[start] = (generation, mask | _mask(start, [day]))
    ordered = sorted(used)
    finished = sorted({generation for _, generation in completed.values()})
    verifications = listings(lake, "verifications")
    challenges = listings(lake, "challenges")

    def unrolled(day: date) -> bool:
        return day not in rolled and _touches(day, since, until)

    return Plan(
        rolled_files={
            name.removesuffix(".parquet"): [os.fspath(used[m][0] / name) for m in ordered]
            for name in READ_BY_DAY
        },
        months=ordered,
        masks=[used[m][1] for m in ordered],
        complete_masks=[
            _mask(start, [day for day, (first, _) in completed.items() if first == start])
            for start in ordered
        ],
        days=sorted(rolled),
        raw_days=sorted(day for day in now if day != SEED_DATE and unrolled(day)),
        raw=_files(now, unrolled),
        raw_verifications=_files(verifications, unrolled),
        raw_challenges=_files(challenges, unrolled),
        completions=[os.fspath(generation / COMPLETIONS) for generation in finished],
        completed=sorted(completed),
        lookups=_files(
            verifications, lambda day: day not in completed and _touches(day, since, until)
        ),
        transactions=[
            os.fspath(g / TRANSACTIONS) for g in sorted({g for _, g in indexed.values()})
        ],
        indexed=sorted(indexed),
        challenges={day: listing.files for day, listing in challenges.items()},
    )


def challenges_to_look_up(con: duckdb.DuckDBPyConnection, plan: Plan) -> list[str]:
    """The ``challenges`` files the completions looked up now (``plan.lookups``) may need:
    every day the ``transactions`` rollups do not index (the newest, a changed one), and
    of the others those holding a transaction of a successful verification looked up."""
    holding: set[date] = set()
    if plan.indexed:
        rows = con.execute(
            f"""SELECT DISTINCT date FROM read_parquet($transactions, hive_partitioning = false)
            WHERE list_contains($indexed, date) AND key IN (
                SELECT {_TRANSACTION} FROM read_parquet($lookups, hive_partitioning = false)
                WHERE success)""",  # noqa: S608 - constant text
            {"transactions": plan.transactions, "indexed": plan.indexed, "lookups": plan.lookups},
        ).fetchall()
        holding = {row[0] for row in rows}
    indexed = set(plan.indexed)
    return [
        name
        for day, names in sorted(plan.challenges.items())
        if day == SEED_DATE or day not in indexed or day in holding
        for name in names
    ]
