"""State digests: one SHA-256 per table over its sorted contents, to compare states.

The digest covers each key's fold state only, not the log positions or recent ids a
worker's stage tables keep beside it (``streams/stages.py``): those depend on where events
sat in Kafka, not on what they were. :func:`streams.topic_reading.read_fold_tables` reads a worker's
fold states out of its stage tables' changelogs.

Canonical form, per table: for every key in byte order whose state is not null,
``hex(key) + " " + JSON(state, sorted keys, no spaces) + "\\n"``. The overall digest hashes
``name + " " + table digest + "\\n"`` for each table by name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from streams.positions import JsonState

TableContents = Mapping[bytes, JsonState | None]


@dataclass(frozen=True)
class StateDigest:
    tables: Mapping[str, str]
    """Hex digest by table name."""
    entries: Mapping[str, int]
    """Keys with a state, by table name."""

    @property
    def overall(self) -> str:
        lines = "".join(f"{name} {self.tables[name]}\n" for name in sorted(self.tables))
        return hashlib.sha256(lines.encode()).hexdigest()


def table_digest(contents: TableContents) -> tuple[str, int]:
    """Digest and entry count of one fold's states by key."""
    sha, entries = hashlib.sha256(), 0
    for key in sorted(contents):
        value = contents[key]
        state = value
        if state is None:
            continue
        entries += 1
        text = json.dumps(state, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        sha.update(f"{key.hex()} {text}\n".encode())
    return sha.hexdigest(), entries


def state_digest(tables: Mapping[str, TableContents]) -> StateDigest:
    """The digest of every fold's states (fold name → key → state)."""
    digests = {name: table_digest(contents) for name, contents in tables.items()}
    return StateDigest(
        tables={name: d for name, (d, _) in digests.items()},
        entries={name: n for name, (_, n) in digests.items()},
    )
