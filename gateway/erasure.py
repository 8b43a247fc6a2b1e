"""Erasing a person (GDPR Art. 17) by crypto-shredding: never a SCIM write.

One transaction destroys the user's data key and appends ``UserErased`` (actor, reason,
ticket; no personal data). The inline projections drop the users view row (the userName is
free at once) and the group memberships; the audit projector turns every personal value of
the audit trail, provisioning log and identities into ``[erased]``. No ``events`` row is
changed: what was sealed under the key reads ``[erased]`` from then on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.errors import Reason, Rejected
from domain.events import UserErased
from domain.personal import user_subject
from domain.streams import USER_PREFIX
from domain.user import UserState, evolve
from eventstore import ConcurrencyError, EventStore
from projections import codec

# Queue behind the user's SCIM writers (projections/users_view.py takes the same lock).
_QUEUE = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Erased:
    user_id: str
    erased_at: datetime
    erased_by: str | None  # the actor's owner
    reason: str
    ticket: str | None
    already: bool  # erased before this call: nothing was done

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.user_id, "erased": True, "alreadyErased": self.already,
                "erasedAt": self.erased_at.isoformat(), "erasedBy": self.erased_by,
                "reason": self.reason, "ticket": self.ticket}


async def erase_user(store: EventStore, tenant_id: uuid.UUID, user_id: str, *, actor: dict[str, Any],
                     reason: str, ticket: str | None = None, confirm_active: bool = False,
                     metadata: dict[str, Any] | None = None) -> Erased:
    """Erase ``user_id``; erasing twice is a no-op that says when and by whom it was done."""
    if store.cipher is None:
        raise RuntimeError("erasure needs the store's cipher (gateway.keys.make_cipher)")
    if not reason.strip():
        raise Rejected(Reason.INVALID_VALUE, "a reason is required (it is kept in the audit trail)")
    try:
        user_id = str(uuid.UUID(user_id))
    except ValueError:
        raise Rejected(Reason.NOT_FOUND, f"no user with id {user_id}") from None
    stream = USER_PREFIX + user_id
    for _ in range(_ATTEMPTS):
        envelopes = await store.read_stream(tenant_id, stream)
        if not envelopes:
            raise Rejected(Reason.NOT_FOUND, f"no user with id {user_id} in this tenant")
        for envelope in envelopes:
            if envelope.type == "UserErased":
                return Erased(user_id, envelope.recorded_at, (envelope.metadata.get("actor") or {}).get("owner"),
                              envelope.data["reason"], envelope.data.get("ticket"), already=True)
        state: UserState | None = None
        for envelope in envelopes:
            state = evolve(state, codec.decode(envelope), envelope.recorded_at)  # type: ignore[arg-type]
        assert state is not None
        if state.active and not state.deleted and not confirm_active:
            raise Rejected(Reason.CONFLICT, f"user {user_id} is active: confirm the erasure of an active user "
                                            "explicitly (--confirm-active, or confirmActive: true)")
        event = UserErased(user_id, reason.strip(), ticket or None)
        try:
            async with store.pool.acquire() as connection, connection.transaction():
                await connection.execute(_QUEUE, f"{tenant_id}/{stream}")
                await store.cipher.destroy(connection, tenant_id, user_subject(user_id))
                appended = await store.append(stream, state.version, [codec.encode(event)],
                                              (metadata or {}) | {"actor": actor}, tenant_id=tenant_id,
                                              connection=connection)
        except ConcurrencyError:
            continue  # a SCIM write came in between: look again (it may have changed "active")
        store.committed(appended)
        store.cipher.forget(tenant_id, user_subject(user_id))  # a read in between may have cached it
        return Erased(user_id, appended[0].recorded_at, actor.get("owner"), event.reason, event.ticket,
                      already=False)
    raise Rejected(Reason.CONFLICT, f"user {user_id} is being changed concurrently; try again")
