"""``verify``: recompute the whole tree from the stored entries and check every checkpoint.

One pass over the entries in ledger order (streamed, constant memory). For each entry:

1. its position follows the previous one (a gap is a deleted entry);
2. its bytes hash to its stored leaf hash (the entry or the hash was altered);
3. it names its own position and its predecessor's leaf hash (``seq``/``prev`` in
   :mod:`audit.canonical`), so a moved, swapped, removed or inserted entry is named;
4. its index columns (id, tenant, subject, type) agree with its content;
5. the interior nodes it completes equal the stored ones (levels ≥ 4 are stored);
6. where a checkpoint was signed at this size, the recomputed root equals the signed one.

Then: the tree head agrees with the entries, and no checkpoint covers more entries than
exist (truncation). Every checkpoint's signature is checked (and its key id must be the
SHA-256 of its key) against the *pinned* keys when the caller gives them, else against the
public keys kept in the database itself. Only pinned keys, or checkpoints kept outside the
database (the checkpoints topic, files), make the check independent of the database: one
rebuilt without some entries and re-signed with a new key verifies against its own keys.
With pinned keys, a checkpoint signed by any other key fails, and the database's keys that
are not pinned are listed. The report names the first bad entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit import canonical, database
from audit.checkpoints import Checkpoint, statement
from audit.merkle import STORED_MIN_LEVEL, Frontier, leaf_hash
from audit.proofs import load_checkpoints, load_public_keys
from audit.tables import head
from schemas.signing import key_id_of

GENESIS_HEX = bytes(32).hex()
Progress = Callable[[int, int], None]
"""``progress(entries_done, entries_total)``."""


@dataclass(frozen=True)
class Problem:
    entry: int | None
    """The first bad entry (0-based sequence number), when the problem is about entries."""
    message: str


@dataclass(frozen=True)
class VerifyReport:
    size: int
    checkpoints: int
    problems: list[Problem] = field(default_factory=list)
    unsigned: int = 0
    """Entries after the newest checkpoint (valid, but not yet covered by a signature)."""
    unpinned_keys: list[str] = field(default_factory=list)
    """Ids of public keys the database holds that were not pinned (when keys were)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_entry(self) -> int | None:
        return next((p.entry for p in self.problems if p.entry is not None), None)


class _Stop(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def check_signatures(
    found: Sequence[Checkpoint],
    keys: Mapping[str, Ed25519PublicKey],
    log_id: str,
    *,
    pinned: bool = False,
) -> list[Problem]:
    problems = []
    for checkpoint in found:
        label = f"checkpoint of size {checkpoint.tree_size} signed {checkpoint.time.isoformat()}"
        key = keys.get(checkpoint.key_id)
        if checkpoint.log_id != log_id:
            problems.append(Problem(None, f"{label} is of another ledger ({checkpoint.log_id})"))
        elif key is None or key_id_of(key) != checkpoint.key_id:
            whose = "is not pinned" if pinned else "is unknown"
            message = f"{label}: it is signed by key {checkpoint.key_id}, which {whose}"
            problems.append(Problem(None, message))
        else:
            try:
                key.verify(checkpoint.signature, statement(checkpoint))
            except InvalidSignature:
                problems.append(Problem(None, f"{label}: the signature is invalid"))
    return problems


def verify_ledger(
    engine: sa.Engine,
    *,
    progress: Progress | None = None,
    extra_checkpoints: Sequence[Checkpoint] = (),
    pinned_keys: Mapping[str, Ed25519PublicKey] | None = None,
    chunk: int = 5000,
) -> VerifyReport:
    """Check everything; ``extra_checkpoints`` are copies kept elsewhere (the topic, files);
    ``pinned_keys`` (by key id), when given, are the only keys a signature may verify by."""
    with database.reading(engine) as connection:
        connection.execution_options(stream_results=True, yield_per=chunk)
        top = connection.execute(sa.select(head)).first()
        if top is None:
            return VerifyReport(0, 0, [Problem(None, "the ledger has no tree head")])
        stored = load_checkpoints(connection)
        signed = [*stored, *extra_checkpoints]
        stored_keys = load_public_keys(connection)
        trusted = stored_keys if pinned_keys is None else pinned_keys
        problems = check_signatures(signed, trusted, top.log_id, pinned=pinned_keys is not None)
        unpinned = [] if pinned_keys is None else sorted(set(stored_keys) - set(pinned_keys))
        by_size: dict[int, list[Checkpoint]] = {}
        for checkpoint in signed:
            if checkpoint.log_id == top.log_id:  # another ledger's was reported above
                by_size.setdefault(checkpoint.tree_size, []).append(checkpoint)
        scan = _Scan(int(top.size), by_size, progress)
        try:
            scan.run(connection, chunk)
            scan.finish(top)
        except _Stop as stop:
            problems.insert(0, stop.problem)
    newest = max((c.tree_size for c in stored), default=0)
    unsigned = max(0, int(top.size) - newest)
    return VerifyReport(scan.frontier.size, len(signed), problems, unsigned, unpinned)


class _Scan:
    def __init__(
        self, expected: int, by_size: dict[int, list[Checkpoint]], progress: Progress | None
    ) -> None:
        self.expected = expected
        self.by_size = by_size
        self.progress = progress
        self.frontier = Frontier()
        self.leaves = [bytes(32), bytes(32)]  # leaf hashes of the two previous entries
        self.prev_hex = GENESIS_HEX
        self.good_up_to = 0

    def run(self, connection: sa.Connection, chunk: int) -> None:
        # driver-level rows (no per-value processing): this loop runs a million times
        rows = connection.exec_driver_sql(
            "SELECT seq, entry, leaf_hash, event_id, tenant, subject, event_type "
            "FROM ledger_entries ORDER BY seq"
        )
        stored_nodes = _peekable(
            connection.exec_driver_sql(
                "SELECT leaf, level, hash FROM ledger_nodes ORDER BY leaf, level"
            )
        )
        decode_head, append, frontier = canonical.decode_head, self.frontier.append, self.frontier
        progress, every = self.progress, chunk
        for seq, raw, stored, event_id, tenant, subject, event_type in rows:
            j = frontier.size
            if seq != j:
                raise _Stop(Problem(j, f"entry {j} is missing (the next stored entry is {seq})"))
            entry = bytes(raw)
            leaf = leaf_hash(entry)
            if leaf != bytes(stored):
                message = f"entry {j} does not hash to its stored leaf hash (altered)"
                raise _Stop(Problem(j, message))
            try:
                content = decode_head(entry)
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                raise _Stop(Problem(j, f"entry {j} is not a ledger entry ({error})")) from None
            if content.seq != j or content.prev != self.prev_hex:
                self.position(j, content)
            event = content.event
            if (event.id, event.tenant, event.subject, event.type) != (
                event_id,
                tenant,
                subject,
                event_type,
            ):
                message = f"entry {j}: its id/tenant/subject/type columns were altered"
                raise _Stop(Problem(j, message))
            completed = append(leaf)
            if len(completed) >= STORED_MIN_LEVEL:
                self.nodes(j, completed, stored_nodes)
            self.leaves = [self.leaves[1], leaf]
            self.prev_hex = leaf.hex()
            if frontier.size in self.by_size:
                self.checkpoint_at(frontier.size)
            if progress is not None and frontier.size % every == 0:
                progress(frontier.size, self.expected)
        extra = stored_nodes.peek()
        if extra is not None:
            raise _Stop(Problem(None, f"a tree node (level {extra[1]}) follows the last entry"))
        if progress is not None:
            progress(frontier.size, self.expected)

    @staticmethod
    def nodes(j: int, completed: list[tuple[int, int, bytes]], stored: _peekable) -> None:
        """The nodes entry ``j`` completed (levels ≥ 4) against the stored ones, in order."""
        for level, index, node in completed[STORED_MIN_LEVEL - 1 :]:
            found = stored.peek()
            if found is None or (found[0], found[1]) != (j, level) or bytes(found[2]) != node:
                first = index << level
                raise _Stop(
                    Problem(
                        j,
                        f"entry {j}: the stored tree node over entries {first}..{j} does not "
                        "match them (an entry there was altered or inserted, or the node was)",
                    )
                )
            next(stored)

    def position(self, j: int, content: canonical.EntryHead) -> None:
        prev = self.leaves[1].hex() if j > 0 else GENESIS_HEX
        if content.seq == j and content.prev == prev:
            return
        before = self.leaves[0].hex() if j > 1 else GENESIS_HEX
        if content.seq == j - 1 and content.prev == before:
            message = f"entry {j - 1} was inserted (entry {j} was recorded right after {j - 2})"
            raise _Stop(Problem(j - 1, message))
        if content.seq != j:
            raise _Stop(Problem(j, f"entry {j} holds the entry recorded at {content.seq} (moved)"))
        raise _Stop(Problem(j, f"entry {j} was recorded after another entry than {j - 1}"))

    def checkpoint_at(self, size: int) -> None:
        found = self.by_size.get(size)
        if not found:
            return
        root = self.frontier.root()
        for checkpoint in found:
            if checkpoint.root_hash != root:
                raise _Stop(
                    Problem(
                        self.good_up_to,
                        f"the first {size} entries do not have the root hash signed at "
                        f"{checkpoint.time.isoformat()}: an entry in {self.good_up_to}..{size - 1} "
                        "was altered",
                    )
                )
        self.good_up_to = size

    def finish(self, top: Any) -> None:
        n = self.frontier.size
        beyond = [size for size in self.by_size if size > n]
        if beyond:
            size = max(beyond)
            raise _Stop(
                Problem(n, f"entries {n}..{size - 1} are missing: a checkpoint signed over {size}")
            )
        if int(top.size) > n:
            raise _Stop(Problem(n, f"entries {n}..{top.size - 1} are missing (the head has them)"))
        if int(top.size) < n:
            raise _Stop(Problem(int(top.size), f"entries from {top.size} are not in the tree"))
        if bytes(top.frontier) != self.frontier.encode() or (
            n and bytes(top.last_leaf) != self.leaves[1]
        ):
            raise _Stop(Problem(None, "the tree head does not match the entries"))


class _peekable:
    def __init__(self, rows: Any) -> None:
        self._rows: Iterator[Any] = iter(rows)
        self._next: Any = None
        self._done = False

    def peek(self) -> Any:
        if self._next is None and not self._done:
            self._next = next(self._rows, None)
            self._done = self._next is None
        return self._next

    def __next__(self) -> Any:
        value = self.peek()
        self._next = None
        return value
