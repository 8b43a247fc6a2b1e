"""RFC 9162 hashing and proofs, held to an independent recomputation written here from the
RFC's definitions (sections 2.1.1, 2.1.3.1 and 2.1.4.1) with plain hashlib."""

import hashlib

import pytest

from eventstore import merkle


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(entries: list[bytes]) -> bytes:
    """MTH over raw entries, exactly as the RFC writes it."""
    if not entries:
        return h(b"")
    if len(entries) == 1:
        return h(b"\x00" + entries[0])
    k = 1
    while k * 2 < len(entries):
        k *= 2
    return h(b"\x01" + mth(entries[:k]) + mth(entries[k:]))


def path(m: int, entries: list[bytes]) -> list[bytes]:
    if len(entries) == 1:
        return []
    k = 1
    while k * 2 < len(entries):
        k *= 2
    if m < k:
        return [*path(m, entries[:k]), mth(entries[k:])]
    return [*path(m - k, entries[k:]), mth(entries[:k])]


def subproof(m: int, entries: list[bytes], b: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if b else [mth(entries)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*subproof(m, entries[:k], b), mth(entries[k:])]
    return [*subproof(m - k, entries[k:], False), mth(entries[:k])]


ENTRIES = [f"event {i}".encode() for i in range(64)]


def hashes(n: int) -> list[bytes]:
    return [merkle.leaf_hash(entry) for entry in ENTRIES[:n]]


def test_roots_match_the_certificate_transparency_test_vector():
    # The 8-entry tree of the RFC 6962 reference implementation's tests.
    entries = [bytes.fromhex(x) for x in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                          "606162636465666768696a6b6c6d6e6f"]]
    assert merkle.root([merkle.leaf_hash(e) for e in entries]).hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
    assert merkle.root([]) == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("n", range(1, 65))
def test_root_and_frontier_match_the_recursive_definition(n):
    frontier = merkle.Frontier()
    for leaf in hashes(n):
        frontier.append(leaf)
    assert merkle.root(hashes(n)) == mth(ENTRIES[:n])
    assert frontier.root() == mth(ENTRIES[:n])
    assert merkle.Frontier.decode(n, frontier.encode()).root() == mth(ENTRIES[:n])


@pytest.mark.parametrize("n", range(1, 65))
def test_inclusion_proofs_match_and_verify_for_every_leaf(n):
    for m in range(n):
        proof = merkle.inclusion_proof(m, hashes(n))
        assert proof == path(m, ENTRIES[:n])
        assert merkle.verify_inclusion(m, n, merkle.leaf_hash(ENTRIES[m]), proof, mth(ENTRIES[:n]))


@pytest.mark.parametrize("n", range(1, 65))
def test_consistency_proofs_match_and_verify_for_every_earlier_size(n):
    for m in range(1, n + 1):
        proof = merkle.consistency_proof(m, hashes(n))
        assert proof == (subproof(m, ENTRIES[:n], True) if m < n else [])
        assert merkle.verify_consistency(m, n, mth(ENTRIES[:m]), mth(ENTRIES[:n]), proof)


def test_an_inclusion_proof_for_another_leaf_or_size_does_not_verify():
    leaves = hashes(13)
    proof = merkle.inclusion_proof(5, leaves)
    root = merkle.root(leaves)
    assert not merkle.verify_inclusion(6, 13, leaves[6], proof, root)
    assert not merkle.verify_inclusion(5, 17, leaves[5], proof, root)
    assert not merkle.verify_inclusion(5, 13, leaves[5], proof[:-1], root)
    assert not merkle.verify_inclusion(13, 13, leaves[5], proof, root)


def test_a_consistency_proof_does_not_verify_a_rewritten_prefix():
    leaves = hashes(20)
    proof = merkle.consistency_proof(7, leaves)
    rewritten = [*leaves[:3], merkle.leaf_hash(b"forged"), *leaves[4:7]]
    assert not merkle.verify_consistency(7, 20, merkle.root(rewritten), merkle.root(leaves), proof)
    assert not merkle.verify_consistency(7, 20, merkle.root(leaves[:7]), merkle.root(leaves), proof[1:])
    assert not merkle.verify_consistency(8, 20, merkle.root(leaves[:7]), merkle.root(leaves), proof)
