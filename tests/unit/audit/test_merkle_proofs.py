"""Proofs of ``audit.merkle`` against a verifier written here, straight from RFC 9162.

The reference below (``mth``, ``path``, ``proof``, ``rfc_verify_inclusion``,
``rfc_verify_consistency``) follows RFC 9162 §2.1.1, §2.1.3 and §2.1.4 word for word and
shares no code with ``audit.merkle`` (which builds) or ``audit.verify`` (which the CLI
uses). Every proof of random trees of 1…1,000 entries must pass it, and every tampered
proof must be refused by it and by ``audit.verify``.
"""

from __future__ import annotations

import functools
import hashlib
import random

import pytest

from audit import merkle
from audit.verify import ProofRefused, verify_consistency, verify_inclusion

# -- the reference, from the RFC text -----------------------------------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def largest_power_of_two_smaller_than(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: tuple[bytes, ...]) -> bytes:
    """§2.1.1: MTH({}) = SHA-256(); MTH({d0}) = SHA-256(0x00 || d0); else split at k."""
    return _mth(leaves, 0, len(leaves))


@functools.cache
def _mth(leaves: tuple[bytes, ...], start: int, end: int) -> bytes:
    n = end - start
    if n == 0:
        return sha256(b"")
    if n == 1:
        return sha256(b"\x00" + leaves[start])
    k = largest_power_of_two_smaller_than(n)
    return sha256(b"\x01" + _mth(leaves, start, start + k) + _mth(leaves, start + k, end))


def path(m: int, leaves: tuple[bytes, ...], start: int, end: int) -> list[bytes]:
    """§2.1.3.1 PATH(m, D[n])."""
    n = end - start
    if n == 1:
        return []
    k = largest_power_of_two_smaller_than(n)
    if m < k:
        return path(m, leaves, start, start + k) + [_mth(leaves, start + k, end)]
    return path(m - k, leaves, start + k, end) + [_mth(leaves, start, start + k)]


def proof(m: int, leaves: tuple[bytes, ...]) -> list[bytes]:
    """§2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
    return subproof(m, leaves, 0, len(leaves), True)


def subproof(m: int, leaves: tuple[bytes, ...], start: int, end: int, b: bool) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if b else [_mth(leaves, start, end)]
    k = largest_power_of_two_smaller_than(n)
    if m <= k:
        return subproof(m, leaves, start, start + k, b) + [_mth(leaves, start + k, end)]
    return subproof(m - k, leaves, start + k, end, False) + [_mth(leaves, start, start + k)]


def rfc_verify_inclusion(
    leaf_index: int, tree_size: int, leaf: bytes, inclusion_path: list[bytes], root: bytes
) -> bool:
    """§2.1.3.2, step by step."""
    if leaf_index >= tree_size:  # 1
        return False
    fn, sn = leaf_index, tree_size - 1  # 2
    r = leaf  # 3
    for p in inclusion_path:  # 4
        if sn == 0:  # 4a
            return False
        if fn % 2 == 1 or fn == sn:  # 4b
            r = sha256(b"\x01" + p + r)
            if fn % 2 == 0:
                while not (fn % 2 == 1 or fn == 0):
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = sha256(b"\x01" + r + p)
        fn, sn = fn >> 1, sn >> 1  # 4c
    return sn == 0 and r == root  # 5


def rfc_verify_consistency(
    first: int,
    second: int,
    first_hash: bytes,
    second_hash: bytes,
    consistency_path: list[bytes],
) -> bool:
    """§2.1.4.2, step by step (for 0 < first < second)."""
    if not consistency_path:  # 1
        return False
    if first & (first - 1) == 0:  # 2: first is an exact power of 2
        consistency_path = [first_hash, *consistency_path]
    fn, sn = first - 1, second - 1  # 3
    if fn % 2 == 1:  # 4
        while fn % 2 == 1:
            fn, sn = fn >> 1, sn >> 1
    fr = sr = consistency_path[0]  # 5
    for c in consistency_path[1:]:  # 6
        if sn == 0:  # 6a
            return False
        if fn % 2 == 1 or fn == sn:  # 6b
            fr = sha256(b"\x01" + c + fr)
            sr = sha256(b"\x01" + c + sr)
            if fn % 2 == 0:
                while not (fn % 2 == 1 or fn == 0):
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = sha256(b"\x01" + sr + c)
        fn, sn = fn >> 1, sn >> 1  # 6c
    return fr == first_hash and sr == second_hash and sn == 0  # 7


# -- the trees under test -----------------------------------------------------------------


class Tree:
    """Leaves appended one by one through ``audit.merkle.Frontier``, nodes kept by key."""

    def __init__(self, leaves: tuple[bytes, ...]) -> None:
        self.leaves = leaves
        self.frontier = merkle.Frontier()
        self.stored: dict[tuple[int, int], bytes] = {}
        self.roots: list[bytes] = [merkle.EMPTY_ROOT]
        for index, entry in enumerate(leaves):
            leaf = merkle.leaf_hash(entry)
            self.stored[(0, index)] = leaf
            for level, node_index, node in self.frontier.append(leaf):
                self.stored[(level, node_index)] = node
            self.roots.append(self.frontier.root())

    def read(self, level: int, index: int) -> bytes:
        return self.stored[(level, index)]


def random_leaves(rng: random.Random, n: int) -> tuple[bytes, ...]:
    return tuple(rng.randbytes(rng.randint(0, 40)) for _ in range(n))


SIZES = [*range(1, 70), *random.Random(9162).sample(range(70, 1001), 25), 1000, 1024]


@pytest.mark.parametrize("n", SIZES)
def test_roots_and_proofs_match_the_rfc_and_pass_its_verifier(n: int) -> None:
    rng = random.Random(n)
    leaves = random_leaves(rng, n)
    tree = Tree(leaves)
    for size in {1, n, *rng.sample(range(1, n + 1), min(n, 8))}:
        assert tree.roots[size] == mth(leaves[:size])
        assert merkle.tree_root(tree.read, size) == tree.roots[size]
    root = tree.roots[n]
    indices = range(n) if n <= 70 else rng.sample(range(n), 30)
    for m in indices:
        built = merkle.inclusion_path(tree.read, m, n)
        assert built == path(m, leaves, 0, n)
        leaf = sha256(b"\x00" + leaves[m])
        assert rfc_verify_inclusion(m, n, leaf, built, root)
        verify_inclusion(leaf=leaf, index=m, size=n, path=built, root=root)
    olds = range(1, n) if n <= 70 else rng.sample(range(1, n), 30)
    for m in olds:
        built = merkle.consistency_path(tree.read, m, n)
        assert built == proof(m, leaves[:n])
        assert rfc_verify_consistency(m, n, tree.roots[m], root, built)
        verify_consistency(
            old_size=m, new_size=n, old_root=tree.roots[m], new_root=root, path=built
        )


def _flipped(hashes: list[bytes], at: int, byte: int) -> list[bytes]:
    changed = bytearray(hashes[at])
    changed[byte] ^= 0x01
    return [*hashes[:at], bytes(changed), *hashes[at + 1 :]]


def _refused_by_ours(check: object, **kwargs: object) -> bool:
    try:
        check(**kwargs)  # type: ignore[operator]
    except ProofRefused:
        return True
    return False


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13, 64, 100, 257, 1000])
def test_every_tampered_inclusion_proof_is_refused(n: int) -> None:
    rng = random.Random(n * 7)
    leaves = random_leaves(rng, 2 * n)
    tree = Tree(leaves)  # roots of every size up to 2n: a wrong size comes with its own root
    for m in {0, n - 1, *rng.sample(range(n), min(n, 6))}:
        good = merkle.inclusion_path(tree.read, m, n)
        leaf = sha256(b"\x00" + leaves[m])
        tampered: list[tuple[str, int, int, list[bytes]]] = []
        for at in range(len(good)):
            tampered.append(("flip", m, n, _flipped(good, at, rng.randrange(32))))
        tampered += [
            ("index+1", m + 1, n, good),
            ("index-1", m - 1, n, good) if m else ("index=n", n, n, good),
            ("size+1", m, n + 1, good),
            ("size-1", m, n - 1, good) if n - 1 > m else ("size*2", m, 2 * n, good),
            ("extra", m, n, [*good, rng.randbytes(32)]),
        ]
        if good:
            tampered.append(("truncated", m, n, good[:-1]))
        for name, index, size, bad in tampered:
            signed = tree.roots[size]  # a checkpoint signs a size together with its root
            assert not rfc_verify_inclusion(index, size, leaf, bad, signed), (name, m)
            assert _refused_by_ours(
                verify_inclusion, leaf=leaf, index=index, size=size, path=bad, root=signed
            ), (name, m)


@pytest.mark.parametrize("n", [3, 5, 8, 13, 64, 100, 257, 1000])
def test_every_tampered_consistency_proof_is_refused(n: int) -> None:
    rng = random.Random(n * 13)
    leaves = random_leaves(rng, n + 1)
    tree = Tree(leaves)
    for m in {1, n - 1, *rng.sample(range(1, n), min(n - 1, 6))}:
        good = merkle.consistency_path(tree.read, m, n)
        tampered: list[tuple[str, int, int, list[bytes]]] = [
            ("flip", m, n, _flipped(good, at, rng.randrange(32))) for at in range(len(good))
        ]
        tampered += [
            ("old+1", m + 1, n, good) if m + 1 < n else ("old-1", m - 1, n, good),
            ("new+1", m, n + 1, good),
            ("extra", m, n, [*good, rng.randbytes(32)]),
            ("truncated", m, n, good[:-1]),
        ]
        for name, first, second, bad in tampered:
            if first == 0:
                continue
            old, new = tree.roots[first], tree.roots[second]  # sizes come with their roots
            assert not rfc_verify_consistency(first, second, old, new, bad), (name, m)
            assert _refused_by_ours(
                verify_consistency,
                old_size=first,
                new_size=second,
                old_root=old,
                new_root=new,
                path=bad,
            ), (name, m)


def test_proofs_need_a_leaf_inside_the_tree() -> None:
    tree = Tree((b"a", b"b", b"c"))
    with pytest.raises(ValueError, match="not in a tree of 3"):
        merkle.inclusion_path(tree.read, 3, 3)
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_path(tree.read, 4, 3)
    assert merkle.Frontier().root() == sha256(b"") == mth(())
