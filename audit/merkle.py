"""The Merkle tree of RFC 9162 §2.1, maintained incrementally, with its proofs.

* Leaf hash ``SHA-256(0x00 || entry)``, node hash ``SHA-256(0x01 || left || right)``;
  the tree head of ``n`` leaves is ``MTH(D[0:n])`` (§2.1.1), ``SHA-256("")`` when empty.
* Appending never rehashes history: a :class:`Frontier` keeps the roots of the perfect
  subtrees along the right edge (one per set bit of the size). Each append hashes the
  new leaf, merges equal-sized neighbours, and hands back the interior nodes it
  completed; the store keeps those of level ≥ :data:`STORED_MIN_LEVEL` by
  ``(level, index)`` (the node at level ``L``, index ``i`` is ``MTH(D[i·2^L : (i+1)·2^L])``).
* Proofs (§2.1.3.1 ``PATH``, §2.1.4.1 ``PROOF``/``SUBPROOF``) read perfect subtrees
  only, through a :data:`NodeReader`: every subtree the recursion names is either
  perfect or the tree's ragged right edge, which splits into at most ``log2 n`` perfect
  subtrees, so a proof costs O(log² n) reads at worst and O(log n) for typical ones.

Verifying proofs lives apart, in :mod:`audit.verify`, so it shares no code with this.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

EMPTY_ROOT = hashlib.sha256(b"").digest()
STORED_MIN_LEVEL = 4
"""Interior nodes below this level are not stored: a node of level < 4 covers at most 8
leaves, which one range read of leaf hashes recomputes, and storing only every 16th
node cuts the tree's writes per append from about one row to one sixteenth of a row."""

NodeReader = Callable[[int, int], bytes]
"""``read(level, index)``: the stored hash of a perfect subtree (level 0 is a leaf hash)."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n > 1``): the ``k`` of RFC 9162."""
    if n < 2:
        raise ValueError(f"a tree of {n} leaves does not split")
    return 1 << ((n - 1).bit_length() - 1)


@dataclass
class Frontier:
    """The right edge of a tree: the roots of its perfect subtrees, largest first."""

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.hashes) != self.size.bit_count():
            raise ValueError(f"a tree of {self.size} leaves has {self.size.bit_count()} peaks")

    def levels(self) -> list[int]:
        """The level (log2 of the leaf count) of each peak, largest first."""
        return [bit for bit in range(self.size.bit_length() - 1, -1, -1) if self.size >> bit & 1]

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; returns the interior nodes completed, as (level, index, hash)."""
        completed: list[tuple[int, int, bytes]] = []
        current, level, index = leaf, 0, self.size
        while index & 1:  # the subtree to the left has the same size: merge
            current = node_hash(self.hashes.pop(), current)
            level, index = level + 1, index >> 1
            completed.append((level, index, current))
        self.hashes.append(current)
        self.size += 1
        return completed

    def root(self) -> bytes:
        """``MTH`` of the whole tree: the peaks folded from the right."""
        if not self.hashes:
            return EMPTY_ROOT
        result = self.hashes[-1]
        for peak in reversed(self.hashes[:-1]):
            result = node_hash(peak, result)
        return result

    def encode(self) -> bytes:
        return b"".join(self.hashes)

    @classmethod
    def decode(cls, size: int, blob: bytes) -> Frontier:
        if len(blob) != 32 * size.bit_count():
            raise ValueError(f"frontier of a {size}-leaf tree must be {size.bit_count()} hashes")
        return cls(size, [blob[i : i + 32] for i in range(0, len(blob), 32)])


def subtree_hash(read: NodeReader, start: int, end: int) -> bytes:
    """``MTH(D[start:end])`` for a range the RFC's recursion names, from stored nodes.

    ``start`` is aligned to the largest power of two not exceeding ``end - start``; a
    perfect subtree is one read, a ragged one splits at the RFC's ``k``.
    """
    size = end - start
    if size <= 0:
        raise ValueError(f"empty range {start}:{end}")
    if size & (size - 1) == 0 and start % size == 0:
        level = size.bit_length() - 1
        return read(level, start >> level)
    k = split_point(size)
    return node_hash(subtree_hash(read, start, start + k), subtree_hash(read, start + k, end))


def perfect_root(leaves: list[bytes]) -> bytes:
    """``MTH`` of a perfect subtree given its leaf hashes (a power-of-two count)."""
    level = list(leaves)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def tree_root(read: NodeReader, size: int) -> bytes:
    return EMPTY_ROOT if size == 0 else subtree_hash(read, 0, size)


def inclusion_path(read: NodeReader, index: int, size: int) -> list[bytes]:
    """``PATH(index, D[0:size])`` of RFC 9162 §2.1.3.1, leaf side first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index - start < k:
            path.append(subtree_hash(read, start + k, end))
            end = start + k
        else:
            path.append(subtree_hash(read, start, start + k))
            start += k
    path.reverse()
    return path


def consistency_path(read: NodeReader, old_size: int, new_size: int) -> list[bytes]:
    """``PROOF(old_size, D[0:new_size])`` of RFC 9162 §2.1.4.1."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size} leaves")
    proof: list[bytes] = []
    start, end, m, complete = 0, new_size, old_size, True
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            proof.append(subtree_hash(read, start + k, end))
            end = start + k
        else:
            proof.append(subtree_hash(read, start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        proof.append(subtree_hash(read, start, end))
    proof.reverse()
    return proof
