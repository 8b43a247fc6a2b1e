"""An import file's lines to what their append writes: parsed, decided, sealed, and each new
user's view row folded ahead. CPU only, no database, so ``users import`` runs it in worker
processes while it writes earlier batches (``gateway.importer``), or in its own process.

The sealing is the store's own (``FieldCipher.seal_held``) with keys born here or handed
over by the importing process (the blind index's), so the stored events are exactly what an
append through the store's cipher writes.
"""

from __future__ import annotations

import signal
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from domain.errors import Reason, Rejected
from domain.events import UserCreated
from domain.personal import user_subject
from domain.policy import Policy
from domain.schema import GATEWAY_USER
from domain.user import CREDENTIALS, SSO, CreateUser, decide, evolve
from eventstore import NewEvent
from eventstore.crypto import INDEX_SUBJECT, FieldCipher
from gateway.keys import make_cipher
from gateway.scim.errors import ScimError
from gateway.scim.resource import parse_user
from gateway.settings import Settings
from projections.codec import encode
from projections.users_view import ROW_COLUMNS, UNSTAMPED, new_user_row


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    error: str
    text: bytes


class Prepared(NamedTuple):
    """One line's new user, ready to append: its event (personal values sealed), its data key
    as ``subject_keys`` stores it, and its view row before the append stamps it. Plain values
    only, cheap to send from a worker process (pickling objects would cost what it saves)."""

    line: int
    user_id: str
    user_name: str
    # The userName as the view's unique index keys it (its row's, ``identifiers.fold``).
    user_name_key: str
    event_type: str
    schema_version: int
    event_id: bytes  # uuid.UUID(bytes=...)
    # The event's data, sealed; as JSON when sent from a worker process (cheaper than pickling it).
    data: dict[str, Any] | bytes
    key: tuple[str, str, bytes] | None
    row: tuple[object, ...]  # users_view.new_user_row

    def event(self) -> NewEvent:
        # JSON from a worker goes to the database as it came: decoding it here only to encode
        # it again was half of the importing process's work.
        data = orjson.Fragment(self.data) if isinstance(self.data, bytes) else self.data
        return NewEvent(self.event_type, data, self.schema_version, uuid.UUID(bytes=self.event_id))


_USER_NAME_KEY = ROW_COLUMNS.index("user_name_lower")


@dataclass(frozen=True, slots=True)
class Batch:
    """What a batch's preparation needs besides its lines; small, sent with each batch."""

    tenant_id: uuid.UUID
    policy: Policy
    # The tenant's blind-index key (None with no cipher): the one key not born in the batch.
    index_key: bytes | None
    # Stop at the first refused line (no --continue-on-error): nothing after it is written.
    stop_at_first: bool


def _login_method(body: dict) -> str:
    extension = body.get(GATEWAY_USER) if isinstance(body.get(GATEWAY_USER), dict) else {}
    method = body.get("loginMethod") or extension.get("loginMethod") or CREDENTIALS
    if method not in (SSO, CREDENTIALS):
        raise Rejected(Reason.INVALID_VALUE, f"loginMethod must be {SSO} or {CREDENTIALS}")
    return str(method)


def parse_line(number: int, text: bytes, policy: Policy, now: datetime) -> UserCreated | Rejection:
    """One line to the event that creates its user, or the reason it cannot be imported."""
    try:
        body = orjson.loads(text)
        if not isinstance(body, dict):
            raise ScimError.invalid_syntax("not a JSON object")
        method = _login_method(body)
        attributes, active = parse_user(body)
        events = decide(None, CreateUser(str(uuid.uuid4()), attributes, active, method), policy, now)
    except orjson.JSONDecodeError as error:
        return Rejection(number, f"invalid JSON: {error}", text)
    except ScimError as error:
        return Rejection(number, error.detail, text)
    except Rejected as error:
        return Rejection(number, error.detail, text)
    [created] = events  # a create decides one event
    assert isinstance(created, UserCreated)
    return created


def prepare(cipher: FieldCipher | None, batch: Batch, lines: list[tuple[int, bytes]], *,
            to_send: bool = False) -> list[Prepared | Rejection]:
    """Each line's ``Prepared`` user or its ``Rejection``, in line order; with
    ``stop_at_first``, nothing after the first rejection. ``to_send``: for another process."""
    now = datetime.now(UTC)
    results: list[Prepared | Rejection] = []
    created: list[tuple[int, bytes, UserCreated, NewEvent]] = []
    for number, text in lines:
        result = parse_line(number, text, batch.policy, now)
        if isinstance(result, Rejection):
            results.append(result)
            if batch.stop_at_first:
                break
        else:
            created.append((number, text, result, encode(result)))
    datas = [event.data for *_, event in created]
    keys: list[tuple[str, str, bytes] | None] = [None] * len(created)
    if cipher is not None and created:
        if batch.index_key is not None:
            cipher.hold(batch.tenant_id, INDEX_SUBJECT, batch.index_key)
        sealed = cipher.seal_held(batch.tenant_id, [(event.event_id, event.type, event.data)
                                                    for *_, event in created])
        datas = sealed.datas
        # A create's one born subject: its user's key, in event order (only the wrapped key
        # leaves this process).
        by_subject = {subject: (subject, kek_id, wrapped) for subject, kek_id, wrapped, _ in sealed.new_keys}
        keys = [by_subject.get(user_subject(user.user_id)) for _, _, user, _ in created]
    for (number, _, user, event), data, key in zip(created, datas, keys, strict=True):
        row = new_user_row(evolve(None, user, UNSTAMPED), batch.tenant_id)
        results.append(Prepared(number, user.user_id, user.user_name, str(row[_USER_NAME_KEY]), event.type,
                                event.schema_version, event.event_id.bytes,
                                orjson.dumps(data) if to_send else data, key, row))
    results.sort(key=lambda result: result.line)
    return results


# A worker process's cipher (the importing process's key-encryption keys), made at its first
# batch: by then the importing process has made the key file if there was none.
_worker_settings: Settings | None = None
_worker_cipher: FieldCipher | None = None


def start_worker(settings: Settings) -> None:
    """A worker process's initializer (its imports, the slow part, are done by now)."""
    global _worker_settings
    _worker_settings = settings
    # Ctrl-C reaches the whole process group: the importing process answers it (keeps what is
    # written, says how to resume) and stops its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def prepare_in_worker(batch: Batch, lines: list[tuple[int, bytes]], sealed: bool) -> list[Prepared | Rejection]:
    """``prepare`` in a worker process started with ``start_worker``."""
    global _worker_cipher
    if sealed and _worker_cipher is None:
        assert _worker_settings is not None
        _worker_cipher = make_cipher(_worker_settings)[0]
    return prepare(_worker_cipher if sealed else None, batch, lines, to_send=True)
