"""Where and how people sign in: devices, geography, policy tiers in force.

Conventions (bound filters, columns, days) in ``analytics.queries``. These three count
distinct subjects over every sign-in of the window: whole days the rollups cover
are read from them (``analytics.rollups``), the others from the sign-ins themselves, and
the answer is the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import duckdb
import pandas as pd

from analytics.queries.filters import ALL, Filters
from analytics.queries.planned import WINDOWS, run_planned
from analytics.views import FAILED_SIGN_IN, SIGN_IN, lake_files

_RAW: Final = lake_files("$raw")
_FILTERS: Final = """($tenant IS NULL OR tenant = $tenant)
      AND ($factor IS NULL OR factor = $factor)
      AND ($application IS NULL OR application = $application)"""


@dataclass(frozen=True)
class _Summary:
    """Sign-ins grouped by ``groups`` (``expression AS name``, over sign-in columns or the
    rollups' equal ones), keeping the rows ``where`` holds: sign-ins, failed sign-ins and
    distinct subjects per group, in ``order``."""

    groups: tuple[str, ...]
    where: str
    columns: tuple[str, ...]
    order: str

    def sql(self, *, rolled: bool) -> str:
        groups = ", ".join(self.groups)
        names = [group.rsplit(" AS ", 1)[1] for group in self.groups]
        listed = ", ".join(names)
        same = " AND ".join(f"c.{name} IS NOT DISTINCT FROM s.{name}" for name in names)
        raw = f"""SELECT {groups}, tenant, subject,
        CASE WHEN {FAILED_SIGN_IN} THEN 1 ELSE 0 END AS failures
    FROM {_RAW}
    WHERE {SIGN_IN} AND {self.where} AND {_FILTERS}
      AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)"""  # noqa: S608 - constant text
        who = f"SELECT {listed}, tenant, subject FROM raw"  # noqa: S608 - constant text
        counts = f"SELECT {listed}, 1 AS sign_ins, failures FROM raw"  # noqa: S608 - constant text
        if rolled:
            who += f"""
    UNION ALL SELECT {groups}, tenant, subject
    FROM read_parquet($presence, hive_partitioning = false) p
    JOIN {WINDOWS} m ON p.month = m.month
    WHERE p.days & m.mask <> 0 AND {self.where} AND {_FILTERS}"""  # noqa: S608 - constant text
            counts += f"""
    UNION ALL SELECT {groups}, sign_ins, failures
    FROM read_parquet($counts, hive_partitioning = false)
    WHERE list_contains($days, date) AND {self.where} AND {_FILTERS}"""  # noqa: S608 - constant text
        return f"""
    WITH raw AS NOT MATERIALIZED ({raw}),  -- read once per use: cheaper than keeping it
    subjects AS (  -- distinct first, then count: faster than count(DISTINCT …) here
        SELECT {listed}, count(*) AS subjects FROM (SELECT DISTINCT * FROM ({who}))
        GROUP BY ALL
    ), counted AS (
        SELECT {listed}, sum(sign_ins)::BIGINT AS sign_ins, sum(failures)::BIGINT AS failures
        FROM ({counts}) GROUP BY ALL
    )
    SELECT c.*, s.subjects FROM counted c JOIN subjects s ON {same}
    ORDER BY {self.order}
    """  # noqa: S608 - constant text: the filter values are bound

    def run(self, con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
        frame = run_planned(con, filters, lambda plan: self.sql(rolled=plan.rolled), ALL)
        return frame[list(self.columns)]


_DEVICES: Final = _Summary(
    groups=(
        "coalesce(device_kind, 'unknown') AS device_kind",
        "coalesce(device_os, 'unknown') AS device_os",
    ),
    where="true",
    columns=("device_kind", "device_os", "sign_ins", "subjects"),
    order="sign_ins DESC, device_kind, device_os",
)
_GEOGRAPHY: Final = _Summary(
    groups=(
        "country AS country",
        "round(latitude, 1) AS latitude",
        "round(longitude, 1) AS longitude",
    ),
    where="latitude IS NOT NULL AND longitude IS NOT NULL",
    columns=("country", "latitude", "longitude", "sign_ins", "failures", "subjects"),
    order="sign_ins DESC, country, latitude, longitude",
)
_TIERS: Final = _Summary(
    groups=("coalesce(policy_tier, 'unknown') AS policy_tier",),
    where="true",
    columns=("policy_tier", "sign_ins", "subjects"),
    order="sign_ins DESC, policy_tier",
)


def device_distribution(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Devices sign-ins came from (``unknown`` where the event names none).

    Columns: ``device_kind``, ``device_os``, ``sign_ins``, ``subjects``; most first.
    """
    return _DEVICES.run(con, filters)


def sign_in_geography(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Where sign-ins came from: points rounded to 0.1° (about 11 km), for a map.

    Columns: ``country``, ``latitude``, ``longitude``, ``sign_ins``, ``failures``
    (failed or refused sign-ins), ``subjects``. Sign-ins without coordinates are left out.
    """
    return _GEOGRAPHY.run(con, filters)


def policy_tiers(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Policy tiers in force: sign-ins and subjects per tier (``unknown`` where unset).

    Columns: ``policy_tier``, ``sign_ins``, ``subjects``.
    """
    return _TIERS.run(con, filters)
