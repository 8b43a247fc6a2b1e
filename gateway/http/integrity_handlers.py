"""Signed checkpoints and Merkle proofs over HTTP (scope ``audit:read``; docs/integrity.md).

A SIEM polls the checkpoints and keeps them where the database cannot rewrite them; with
an inclusion proof it checks that an exported event is in the tree a checkpoint signed, and
with a consistency proof that a later checkpoint extends an earlier one.
"""

from __future__ import annotations

import base64
import uuid

import asyncpg
from aiohttp import web

from eventstore import merkle
from gateway.http.auth import require
from gateway.http.keys import POOL
from gateway.http.responses import json_response
from gateway.scim.errors import ScimError
from gateway.timestamps import timestamp
from projections import sealer

MAX_LIMIT = 1000
# Proofs are computed from the tenant's leaves in memory (32 bytes each).
MAX_TREE_SIZE = 10_000_000


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _int(request: web.Request, name: str, default: int | None, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        if default is None:
            raise ScimError(400, f"{name} is required")
        return default
    if not text.isdigit() or len(text) > 19:
        raise ScimError(400, f"{name} must be a non-negative integer, not {text[:40]!r}")
    value = int(text)
    if not low <= value <= high:
        raise ScimError(400, f"{name} must be between {low} and {high}")
    return value


def checkpoint_item(row: asyncpg.Record) -> dict[str, object]:
    return {"treeSize": row["tree_size"], "rootHash": _b64(bytes(row["root_hash"])),
            "signedAt": timestamp(row["signed_at"]), "note": row["note"]}


async def list_checkpoints(request: web.Request) -> web.Response:
    """The tenant's checkpoints in tree-size order, after ``after`` (a tree size)."""
    principal = require(request, "audit:read")
    after = _int(request, "after", 0, 0, 2**62)
    limit = _int(request, "limit", 100, 1, MAX_LIMIT)
    rows = await sealer.checkpoints(request.app[POOL], principal.tenant_id, after, limit)
    return json_response({"items": [checkpoint_item(row) for row in rows],
                          "next": rows[-1]["tree_size"] if rows else after})


async def latest_checkpoint(request: web.Request) -> web.Response:
    """The newest signed note as it is, the way transparency logs serve ``/checkpoint``."""
    principal = require(request, "audit:read")
    row = await sealer.latest_checkpoint(request.app[POOL], principal.tenant_id)
    if row is None:
        raise ScimError.not_found("no checkpoint has been signed for this tenant yet")
    return web.Response(text=row["note"], content_type="text/plain", charset="utf-8")


async def _signed_size(request: web.Request, tenant_id: uuid.UUID) -> int:
    row = await sealer.latest_checkpoint(request.app[POOL], tenant_id)
    if row is None:
        raise ScimError.not_found("no checkpoint has been signed for this tenant yet")
    return row["tree_size"]


async def inclusion_proof(request: web.Request) -> web.Response:
    """RFC 9162 section 2.1.3: the path from an event's leaf to the root of ``tree_size``
    (default: the latest checkpoint's)."""
    principal = require(request, "audit:read")
    text = request.query.get("event_id", "")
    try:
        event_id = uuid.UUID(text)
    except ValueError:
        raise ScimError(400, f"event_id must be a UUID, not {text[:40]!r}") from None
    pool = request.app[POOL]
    size = _int(request, "tree_size", 0, 1, MAX_TREE_SIZE) if "tree_size" in request.query \
        else await _signed_size(request, principal.tenant_id)
    seal = await sealer.seal_of(pool, principal.tenant_id, event_id)
    if seal is None:
        raise ScimError.not_found(f"event {event_id} is not sealed (yet) in this tenant's log")
    if seal["seq"] >= size:
        raise ScimError(400, f"event {event_id} is leaf {seal['seq']}, outside a tree of size {size}")
    leaves = await _leaves(request, principal.tenant_id, size)
    return json_response({
        "eventId": str(event_id), "leafIndex": seal["seq"], "position": seal["position"], "treeSize": size,
        "leafHash": _b64(bytes(seal["leaf_hash"])), "rootHash": _b64(merkle.root(leaves)),
        "inclusionPath": [_b64(h) for h in merkle.inclusion_proof(seal["seq"], leaves)],
    })


async def consistency_proof(request: web.Request) -> web.Response:
    """RFC 9162 section 2.1.4: shows the tree of ``first`` leaves is a prefix of the tree of
    ``second`` (default: the latest checkpoint's size)."""
    principal = require(request, "audit:read")
    first = _int(request, "first", None, 1, MAX_TREE_SIZE)
    second = _int(request, "second", 0, 1, MAX_TREE_SIZE) if "second" in request.query \
        else await _signed_size(request, principal.tenant_id)
    if first > second:
        raise ScimError(400, f"first ({first}) must not exceed second ({second})")
    leaves = await _leaves(request, principal.tenant_id, second)
    return json_response({
        "first": first, "second": second,
        "firstRootHash": _b64(merkle.root(leaves[:first])), "secondRootHash": _b64(merkle.root(leaves)),
        "consistencyPath": [_b64(h) for h in merkle.consistency_proof(first, leaves)],
    })


async def _leaves(request: web.Request, tenant_id: uuid.UUID, size: int) -> list[bytes]:
    sealed = await sealer.tree_size(request.app[POOL], tenant_id)
    if size > sealed:
        raise ScimError(400, f"tree size {size} is larger than the sealed tree ({sealed} leaves)")
    return await sealer.leaves(request.app[POOL], tenant_id, size)
