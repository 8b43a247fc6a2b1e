"""The RFC 9162 Merkle tree: hashing, inclusion and consistency proofs, and their verification.

Pure computation over hashes in memory; nothing here touches the database. SHA-256 throughout.
A leaf hashes as ``SHA-256(0x00 || leaf input)``, an interior node as
``SHA-256(0x01 || left || right)`` (RFC 9162 section 2.1.1: the prefixes keep a leaf from
ever colliding with a node). A tree of ``n`` leaves splits at ``k``, the largest power of two
strictly smaller than ``n``.

The proof generators follow the RFC's recursive definitions (PATH, section 2.1.3.1; PROOF and
SUBPROOF, section 2.1.4.1) over a list of leaf hashes, O(n). The verifiers follow the RFC's
iterative algorithms (sections 2.1.3.2 and 2.1.4.2). ``Frontier`` is what the sealer keeps
between batches: the roots of the perfect subtrees the tree is made of, so appending a leaf
and computing the root cost O(log n) hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) = SHA-256() (RFC 9162 section 2.1.1)


def leaf_hash(leaf_input: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf_input).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf *hashes*."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(root(leaves[:k]), root(leaves[k:]))


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the sibling hashes from leaf ``index`` up to the root."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} is outside a tree of size {n}")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*inclusion_proof(index, leaves[:k]), root(leaves[k:])]
    return [*inclusion_proof(index - k, leaves[k:]), root(leaves[:k])]


def consistency_proof(first: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]): shows the tree of the first ``first`` leaves is a prefix of ``leaves``."""
    n = len(leaves)
    if not 0 <= first <= n:
        raise ValueError(f"tree size {first} is not within a tree of size {n}")
    if first in (0, n):
        return []
    return _subproof(first, leaves, True)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root(leaves[:k])]


def root_from_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """The root an inclusion path implies, or None when the path cannot belong to that tree
    (RFC 9162 section 2.1.3.2)."""
    if not 0 <= index < size:
        return None
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes], expected_root: bytes) -> bool:
    return root_from_inclusion(index, size, leaf, path) == expected_root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       path: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2, plus the trivial cases it leaves to the caller: an empty
    first tree is a prefix of anything, and equal sizes need equal roots and no proof."""
    if not 0 <= first <= second:
        return False
    if first == 0:
        return not path
    if first == second:
        return not path and first_root == second_root
    if not path:
        return False
    proof = list(path)
    if first & (first - 1) == 0:  # an exact power of two: the first tree is a subtree
        proof.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


@dataclass(slots=True)
class Frontier:
    """The roots of the perfect subtrees that make up a tree of ``size`` leaves, largest
    (leftmost) first: one per set bit of ``size``."""

    size: int = 0
    subtrees: list[bytes] = field(default_factory=list)

    def append(self, leaf: bytes) -> None:
        # Merge equal-sized subtrees the way a binary counter carries.
        node = leaf
        size = self.size
        while size & 1:
            node = node_hash(self.subtrees.pop(), node)
            size >>= 1
        self.subtrees.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.subtrees:
            return EMPTY_ROOT
        acc = self.subtrees[-1]
        for subtree in reversed(self.subtrees[:-1]):
            acc = node_hash(subtree, acc)
        return acc

    def encode(self) -> bytes:
        return b"".join(self.subtrees)

    @classmethod
    def decode(cls, size: int, data: bytes) -> Frontier:
        subtrees = [data[i:i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]
        if len(subtrees) != size.bit_count() or len(data) % HASH_SIZE:
            raise ValueError(f"a frontier of {len(subtrees)} subtrees cannot describe a tree of size {size}")
        return cls(size, subtrees)
