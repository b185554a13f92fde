"""``factorstream replay``: rebuild every stream table from the start of the log, digest it.

The events topic is read from its beginning to the end it had when the command started,
every fold of the worker runs over it into fresh tables (``streams/replay.py``), and each
table's state digest is printed (``streams/digest.py``): two replays of the same log give
the same digests. ``--worker`` also reads the running (or stopped) worker's tables from
their changelog topics and compares: the exit code is 1 when a table differs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator

import typer
from kafka.errors import KafkaError
from rich.table import Table

from factorstream.cli.context import console, fail, progress_bar, settings_of
from factorstream.stream_config import replay_settings, settings_topology
from streams.digest import StateDigest, state_digest
from streams.replay import Replayed, TopicRecord, merge_partitions
from streams.topic_reading import read_fold_tables, read_partitions, read_to_end


def replay(
    ctx: typer.Context,
    worker: bool = typer.Option(
        False, "--worker", help="Compare with the worker's tables (read from their changelogs)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the digests as JSON."),
) -> None:
    """Replay the events topic from its beginning into fresh tables; print state digests."""
    settings = settings_of(ctx)
    with progress_bar(disable=as_json) as progress:
        reading = progress.add_task("reading the log", total=None)
        folding = progress.add_task("folding", total=None)

        def total(n: int) -> None:
            progress.update(reading, total=n)
            progress.update(folding, total=n)

        try:
            log = read_to_end(settings.kafka(), settings.topics.events, on_total=total)
            partitions = read_partitions(_counted(log, lambda: progress.advance(reading)))
            replayed = replay_settings(
                merge_partitions(partitions),
                settings,
                on_record=lambda: progress.advance(folding),
            )
            ours = state_digest(replayed.tables)
            theirs = None
            if worker:
                tables = read_fold_tables(
                    settings.kafka(),
                    app_id=settings.stream.app_id,
                    stages=settings_topology(settings),
                )
                theirs = state_digest(tables)
        except (KafkaError, LookupError, TimeoutError) as error:
            where = settings.kafka().describe()
            raise fail(f"cannot read the log at {where}: {error}") from None
        except ValueError as error:  # a key or IP list file the settings name
            raise fail(str(error)) from None
    differ = theirs is not None and theirs.tables != ours.tables
    if as_json:
        document: dict[str, object] = {
            "records": replayed.records,
            "dead_lettered": replayed.dead_lettered,
            "duplicates": replayed.duplicates,
            "derived": dict(sorted(replayed.derived.items())),
            "digest": _as_dict(ours),
        }
        if theirs is not None:
            document["worker"] = _as_dict(theirs)
        console.print_json(json.dumps(document))
    else:
        _show(ours, theirs, replayed)
    if differ:
        raise typer.Exit(1)


def _counted(records: Iterable[TopicRecord], advance: Callable[[], None]) -> Iterator[TopicRecord]:
    for record in records:
        advance()
        yield record


def _as_dict(digest: StateDigest) -> dict[str, object]:
    return {
        "overall": digest.overall,
        "tables": dict(digest.tables),
        "entries": dict(digest.entries),
    }


def _show(ours: StateDigest, theirs: StateDigest | None, replayed: Replayed) -> None:
    table = Table(title="State digests (SHA-256 of each table's sorted contents)")
    table.add_column("table")
    table.add_column("keys", justify="right")
    table.add_column("replay digest")
    if theirs is not None:
        table.add_column("worker digest")
        table.add_column("")
    for name in sorted(ours.tables):
        row = [name, str(ours.entries[name]), ours.tables[name][:16]]
        if theirs is not None:
            same = theirs.tables.get(name) == ours.tables[name]
            row += [theirs.tables.get(name, "-")[:16], "[green]same" if same else "[red]differs"]
        table.add_row(*row)
    console.print(table)
    console.print(f"overall: [bold]{ours.overall}[/]")
    derived = ", ".join(f"{k} {v}" for k, v in sorted(replayed.derived.items()))
    console.print(
        f"{replayed.records} records, {replayed.dead_lettered} dead-lettered, "
        f"{replayed.duplicates} duplicates; derived: {derived or 'none'}"
    )
