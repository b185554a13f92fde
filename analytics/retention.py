"""Retention of the lake: date partitions older than the policy are deleted, whole.

A partition is a day of event time (``<table>/date=YYYY-MM-DD``), so the lake's retention
is by event date: :func:`expire` deletes every table's partitions dated before ``keep_from``
and those dated after ``keep_until`` (an event dated far ahead would otherwise outlive any
policy; the worker refuses such events, so only a fault or an attack puts them there).
The seed partition that gives each table its schema (``analytics.lake.SEED_DATE``) is never
touched. Under the lake's exclusive lock, like compaction; the rollups are brought up to
date afterwards (:func:`analytics.rollups.refresh` drops those of the days removed).
Idempotent: a second run with the same bounds deletes nothing.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from analytics import rollups
from analytics.columns import TABLES
from analytics.lake import SEED_DATE, lake_lock, parquet_files, partitions


@dataclass(frozen=True)
class Expired:
    """One partition deleted: its table, day and the files it held."""

    table: str
    day: date
    files: int


def outside(day: date, *, keep_from: date, keep_until: date) -> bool:
    """Whether a partition of ``day`` is past the policy (the seed partition never is)."""
    return day != SEED_DATE and not keep_from <= day <= keep_until


def expire(lake: Path, *, keep_from: date, keep_until: date) -> list[Expired]:
    """Delete every table's partitions dated before ``keep_from`` or after ``keep_until``."""
    if keep_from > keep_until:
        raise ValueError(f"keep_from {keep_from} is after keep_until {keep_until}")
    done: list[Expired] = []
    if not lake.is_dir():
        return done
    with lake_lock(lake, exclusive=True):
        for table in TABLES:
            for day, link in partitions(lake, table):
                if not outside(day, keep_from=keep_from, keep_until=keep_until):
                    continue
                try:
                    generation = link.resolve(strict=True)
                    files = len(parquet_files(generation))
                except FileNotFoundError:
                    generation, files = None, 0
                os.unlink(link)  # readers stop seeing it first
                if generation is not None:
                    shutil.rmtree(generation, ignore_errors=True)
                done.append(Expired(table, day, files))
    if done:
        rollups.refresh(lake)
    return done


def date_range(lake: Path) -> tuple[date, date] | None:
    """The oldest and newest day any table of the lake holds (the seed left out)."""
    days = [
        day
        for table in TABLES
        for day, _ in (partitions(lake, table) if lake.is_dir() else [])
        if day != SEED_DATE
    ]
    return (min(days), max(days)) if days else None
