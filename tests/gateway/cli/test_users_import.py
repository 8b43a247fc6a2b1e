"""``users import``: batches, resuming with --skip-existing, --continue-on-error with a rejects
file, and a summary on error or interrupt that says how to resume (issue 15)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

import gateway.cli.users
from domain.policy import policy_for
from domain.streams import user_stream
from eventstore import EventStore
from eventstore.crypto import FieldCipher
from gateway.cli import main
from gateway.import_lines import parse_line
from gateway.importer import Importer
from gateway.keys import make_cipher
from gateway.settings import load_settings
from projections.codec import encode
from projections.users_view import UsersView
from tests.scim_client import Scim, entra_user


def lines(names: list[str]) -> bytes:
    return b"".join(orjson.dumps(entra_user(name)) + b"\n" for name in names)


def users(first: int, last: int) -> list[str]:
    return [f"user{n}@example.com" for n in range(first, last + 1)]


@pytest.fixture
def run_import(bynder: Scim, database_url, capsys):
    """``users import FILE --tenant acme ...``; the tenant exists (bynder fixture)."""
    def call(path: Path, *options: str) -> tuple[int, str]:
        code = main(["users", "import", str(path), "--tenant", "acme", *options, "--database-url", database_url])
        return code, capsys.readouterr().err

    return call


async def count_users(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM users_view")


async def test_imports_in_batches_and_the_users_are_served(run_import, bynder, pool, tmp_path):
    source = tmp_path / "users.jsonl"
    source.write_bytes(lines(users(1, 2500)))
    code, err = await asyncio.to_thread(run_import, source, "--batch-size", "1000")
    assert code == 0 and err == "imported 2,500 user(s) into tenant acme\n"
    assert await count_users(pool) == 2500
    _, found = await bynder.get('/Users?filter=userName eq "user2500@example.com"')
    assert found["totalResults"] == 1
    batches = await pool.fetchval("SELECT count(DISTINCT transaction_id) FROM events WHERE type = 'UserCreated'")
    assert batches == 3


async def test_a_rerun_stops_at_the_first_existing_user_and_says_how_to_resume(run_import, pool, tmp_path):
    source = tmp_path / "users.jsonl"
    source.write_bytes(lines(users(1, 10)))
    assert (await asyncio.to_thread(run_import, source))[0] == 0
    code, err = await asyncio.to_thread(run_import, source)
    hint = f"scim-gateway users import {shlex.quote(str(source))} --tenant acme --skip-existing"
    assert code == 1 and err.splitlines() == [
        f"scim-gateway: {source}: line 1: a user with userName 'user1@example.com' already exists",
        "imported 0 user(s) into tenant acme; fix line 1 (or add --continue-on-error) "
        f"and resume with: {hint}",
    ]
    code, err = await asyncio.to_thread(run_import, source, "--skip-existing")
    assert code == 0 and err == "imported 0 user(s) into tenant acme, skipped 10 existing\n"
    assert await count_users(pool) == 10


async def test_a_bad_line_stops_after_the_lines_before_it_and_resume_finishes(run_import, pool, tmp_path):
    source = tmp_path / "users.jsonl"
    names = users(1, 1600)
    body = lines(names[:1499]) + b'{"userName": \n' + lines(names[1500:])
    source.write_bytes(body)
    code, err = await asyncio.to_thread(run_import, source, "--batch-size", "1000")
    first, summary = err.splitlines()
    assert code == 1 and first.startswith(f"scim-gateway: {source}: line 1500: invalid JSON")
    assert summary.startswith("imported 1,499 user(s) into tenant acme (lines 1-1,499 are done); fix line 1500")
    assert await count_users(pool) == 1499
    source.write_bytes(lines(names))
    code, err = await asyncio.to_thread(run_import, source, "--batch-size", "1000", "--skip-existing")
    assert code == 0 and err == "imported 101 user(s) into tenant acme, skipped 1,499 existing\n"
    assert await count_users(pool) == 1600


async def test_continue_on_error_writes_the_rejects_file(run_import, pool, tmp_path):
    source = tmp_path / "users.jsonl"
    no_email = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "nomail@example.com"}
    source.write_bytes(lines(users(1, 2)) + b"not json\n" + orjson.dumps(no_email) + b"\n"
                       + lines(["user1@example.com", "user3@example.com"]))
    code, err = await asyncio.to_thread(run_import, source, "--continue-on-error")
    rejects = source.with_name("users.jsonl.rejects.jsonl")
    assert code == 0 and err == f"imported 3 user(s) into tenant acme, rejected 3 (see {rejects})\n"
    rejected = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert [(r["line"], r["input"][:9]) for r in rejected] == [(3, "not json"), (4, '{"schemas'), (5, '{"schemas')]
    assert rejected[2]["error"] == "a user with userName 'user1@example.com' already exists"
    assert "required" in rejected[1]["error"]
    assert await count_users(pool) == 3


async def test_an_interrupt_keeps_the_finished_batches_and_says_how_to_resume(run_import, pool, tmp_path,
                                                                               monkeypatch):
    source = tmp_path / "users.jsonl"
    source.write_bytes(lines(users(1, 30)))
    write = Importer._append
    calls = 0
    two_written: list[asyncio.Event] = []

    async def interrupted_on_the_third_batch(self, parsed):
        # Batches are written two at a time: Ctrl-C lands once the first two are committed.
        nonlocal calls
        calls += 1
        if not two_written:
            two_written.append(asyncio.Event())
        if calls == 3:
            await two_written[0].wait()
            raise KeyboardInterrupt
        await write(self, parsed)
        if self.report.imported == 20:
            two_written[0].set()

    monkeypatch.setattr(Importer, "_append", interrupted_on_the_third_batch)
    code, err = await asyncio.to_thread(run_import, source, "--batch-size", "10")
    assert code == 130 and err == (
        "interrupted: imported 20 user(s) into tenant acme (lines 1-20 are done); resume with: "
        f"scim-gateway users import {shlex.quote(str(source))} --tenant acme --skip-existing\n")
    assert await count_users(pool) == 20


async def test_imported_users_match_a_rebuild_from_the_log(run_import, database_url, tmp_path, capsys):
    source = tmp_path / "users.jsonl"
    source.write_bytes(lines(users(1, 50)))
    assert (await asyncio.to_thread(run_import, source, "--batch-size", "20"))[0] == 0
    code = await asyncio.to_thread(main, ["replay", "verify", "--database-url", database_url])
    assert code == 0, capsys.readouterr().out


async def test_a_name_taken_after_the_check_fails_the_batch_whole_then_each_user_alone(
        run_import, bynder, pool, tmp_path, monkeypatch):
    """A batch of new users goes into the view by COPY; a userName taken meanwhile (here: the
    check before the write sees nothing) fails it whole, and the batch is settled user by user."""
    async def nothing_taken(self, parsed):
        return parsed, None

    monkeypatch.setattr(Importer, "_without_existing", nothing_taken)
    response, _ = await bynder.post("/Users", entra_user("user7@example.com"))
    assert response.status == 201
    source = tmp_path / "users.jsonl"
    source.write_bytes(lines(users(1, 40)))
    code, err = await asyncio.to_thread(run_import, source, "--skip-existing")
    assert code == 0 and err == "imported 39 user(s) into tenant acme, skipped 1 existing\n"
    assert await count_users(pool) == 40
    assert await pool.fetchval("SELECT count(*) FROM events WHERE type = 'UserCreated'") == 40


async def test_a_worker_process_prepares_the_batches_with_the_same_outcome(run_import, pool, tmp_path):
    """``--jobs 1``: lines parsed, decided and sealed in a worker process; refusals, the
    rejects file, the summary and the view are as when this process prepares them."""
    source = tmp_path / "users.jsonl"
    source.write_bytes(lines(users(1, 30)) + b"not json\n" + lines([*users(31, 45), "user3@example.com"]))
    code, err = await asyncio.to_thread(run_import, source, "--jobs", "1", "--batch-size", "7",
                                        "--continue-on-error")
    rejects = source.with_name("users.jsonl.rejects.jsonl")
    assert code == 0 and err == f"imported 45 user(s) into tenant acme, rejected 2 (see {rejects})\n"
    assert [orjson.loads(line)["line"] for line in rejects.read_bytes().splitlines()] == [31, 47]
    assert await count_users(pool) == 45
    code, err = await asyncio.to_thread(run_import, source, "--jobs", "1")
    assert code == 1 and err.splitlines()[0] == (
        f"scim-gateway: {source}: line 1: a user with userName 'user1@example.com' already exists")
    # Stopped with batches still being prepared ahead: they are dropped, nothing else is said.
    source.write_bytes(lines(users(101, 110)) + b"not json\n" + lines(users(111, 200)))
    code, err = await asyncio.to_thread(run_import, source, "--jobs", "1", "--batch-size", "4")
    assert code == 1 and err.splitlines() == [
        f"scim-gateway: {source}: line 11: invalid JSON: invalid literal, expected 'null': line 1 column 1 (char 0)",
        f"imported 10 user(s) into tenant acme (lines 1-10 are done); fix line 11 (or add --continue-on-error) "
        f"and resume with: scim-gateway users import {shlex.quote(str(source))} --tenant acme --skip-existing"]
    assert await count_users(pool) == 55


async def test_the_command_in_its_own_process_imports_with_forked_workers(bynder, database_url, pool, tmp_path):
    """As an admin runs it: a process of its own, no thread but the main one when the workers
    start, so they are forked (``_worker_context``); the outcome is the in-process one's."""
    source = tmp_path / "users.jsonl"
    source.write_bytes(lines(users(1, 25)))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "users", "import", str(source), "--tenant", "acme", "--jobs", "2",
        "--batch-size", "4", "--database-url", database_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0 and err.decode() == "imported 25 user(s) into tenant acme\n"
    assert await count_users(pool) == 25


def test_workers_are_forked_only_while_this_process_has_one_thread(monkeypatch):
    threads = [1]
    monkeypatch.setattr(threading, "active_count", lambda: threads[0])
    assert gateway.cli.users._worker_context().get_start_method() == "fork"
    threads[0] = 2
    assert gateway.cli.users._worker_context().get_start_method() == "spawn"


def _comparable(value: object, user_ids: dict[str, str]) -> object:
    """``value`` with what differs between two imports of one file replaced: user ids by
    userName, ciphertext and blind-index digests (per tenant, per key) by a marker."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "c":
                out[key] = "<ciphertext>"
            elif key == "_lookup":
                out[key] = sorted(item)
            else:
                out[key] = _comparable(item, user_ids)
        return out
    if isinstance(value, list | tuple):
        return [_comparable(item, user_ids) for item in value]
    if isinstance(value, str | uuid.UUID):
        text = str(value)
        for user_id, name in user_ids.items():
            text = text.replace(user_id, f"<{name}>")
        return text
    return value


async def _imported(pool, tenant_id: uuid.UUID, cipher: FieldCipher) -> list[tuple[object, ...]]:
    """Per user, in file order: its event (stored, opened) and its view row, comparable."""
    events = await pool.fetch("SELECT * FROM events WHERE tenant_id = $1 AND type = 'UserCreated'"
                              " ORDER BY tenant_position", tenant_id)
    view = {str(row["id"]): row for row in await pool.fetch("SELECT * FROM users_view WHERE tenant_id = $1",
                                                             tenant_id)}
    user_ids = {event["data"]["user_id"]: event["data"]["attributes"]["externalId"] for event in events}
    opened = [e for e in await EventStore(pool, cipher=cipher).read_tenant(tenant_id, limit=1000)
              if e.type == "UserCreated"]
    result = []
    for event, plain in zip(events, opened, strict=True):
        row = dict(view[event["data"]["user_id"]])
        assert (row["created"], row["last_modified"], row["position"]) == (
            event["recorded_at"], event["recorded_at"], event["position"])
        for varying in ("id", "tenant_id", "created", "last_modified", "position"):
            del row[varying]
        # The blind index finds the event by its userName with the tenant's index key.
        assert event["data"]["_lookup"]["userName"] == await cipher.lookup(pool, tenant_id, plain.data["user_name"])
        stored = {key: event[key] for key in ("stream_version", "type", "schema_version")}
        result.append(_comparable((stored, event["data"], plain.data, row), user_ids))
    return result


async def test_imported_users_are_stored_as_the_stores_own_sealing_append_stores_them(
        run_import, bynder, pool, database_url, tmp_path):
    """Prepared ahead (here or in a worker), sealed by ``seal_held``, the view row folded
    before the append: the same events, sealed values and view rows as an append through the
    store's cipher and the users view's inline projection (the import before it prepared)."""
    source = tmp_path / "users.jsonl"
    source.write_bytes(b"".join(orjson.dumps(entra_user(f"user{n}@example.com", f"ext{n}")) + b"\n"
                                for n in range(1, 21)))
    for tenant in ("here", "worker", "store"):
        assert await asyncio.to_thread(main, ["tenant", "create", tenant, "--database-url", database_url]) == 0
    for tenant, jobs in (("here", "0"), ("worker", "1")):
        code = await asyncio.to_thread(main, ["users", "import", str(source), "--tenant", tenant, "--jobs", jobs,
                                              "--database-url", database_url])
        assert code == 0
    tenants = {row["name"]: row["tenant_id"] for row in await pool.fetch("SELECT name, tenant_id FROM tenants")}
    cipher, _ = make_cipher(load_settings())
    policy = policy_for("bynder")
    now = datetime.now(UTC)
    created = [parse_line(n, text, policy, now) for n, text in enumerate(source.read_bytes().splitlines(), 1)]
    reference = EventStore(pool, [UsersView()], cipher=cipher)
    async with pool.acquire() as connection, connection.transaction():
        await reference.append_new_streams([(user_stream(user.user_id), [encode(user)]) for user in created],
                                           {"actor": "tests"}, tenant_id=tenants["store"], connection=connection)
    expected = await _imported(pool, tenants["store"], cipher)
    assert len(expected) == 20
    assert await _imported(pool, tenants["here"], cipher) == expected
    assert await _imported(pool, tenants["worker"], cipher) == expected


async def test_a_later_duplicate_is_refused_even_while_the_first_is_still_being_written(
        run_import, pool, tmp_path, monkeypatch):
    """The first batch's write is held until the next batch is written: the database cannot
    know user1 when the second batch is checked, the importer does, and refuses line 4 (not
    line 1, whose batch would then fail)."""
    source = tmp_path / "users.jsonl"
    source.write_bytes(lines([*users(1, 3), "user1@example.com"]))
    append = Importer._append
    second_written: list[asyncio.Event] = []

    async def first_held_until_the_second_is_written(self, parsed):
        if not second_written:
            second_written.append(asyncio.Event())
        if parsed[0].line == 1:
            await second_written[0].wait()
        try:
            await append(self, parsed)
        finally:
            if parsed[0].line == 3:
                second_written[0].set()

    monkeypatch.setattr(Importer, "_append", first_held_until_the_second_is_written)
    code, err = await asyncio.to_thread(run_import, source, "--batch-size", "2", "--continue-on-error")
    rejects = source.with_name("users.jsonl.rejects.jsonl")
    assert code == 0 and err == f"imported 3 user(s) into tenant acme, rejected 1 (see {rejects})\n"
    assert [orjson.loads(line)["line"] for line in rejects.read_bytes().splitlines()] == [4]
    assert await count_users(pool) == 3


def _dies(settings) -> None:
    os._exit(3)  # a worker killed as it starts (imported by name in the spawned process)


async def test_a_worker_process_that_dies_stops_the_import_with_the_resume_hint(run_import, pool, tmp_path,
                                                                              monkeypatch):
    source = tmp_path / "users.jsonl"
    source.write_bytes(lines(users(1, 5)))
    monkeypatch.setattr(gateway.cli.users, "start_worker", _dies)
    code, err = await asyncio.to_thread(run_import, source, "--jobs", "1")
    assert code == 1 and err == (
        "scim-gateway: a worker process preparing the lines stopped (killed, or out of memory?): imported 0 "
        f"user(s) into tenant acme; resume with: scim-gateway users import {shlex.quote(str(source))} "
        "--tenant acme --skip-existing\n")
    assert await count_users(pool) == 0


def test_worker_processes_are_the_default_only_for_a_large_file_with_two_cores(tmp_path, monkeypatch):
    large, small = tmp_path / "large.jsonl", tmp_path / "small.jsonl"
    large.write_bytes(b"\n" * (2 << 20))
    small.write_bytes(b"\n" * ((2 << 20) - 1))
    cores = [2]
    monkeypatch.setattr(os, "cpu_count", lambda: cores[0])
    default, three = argparse.Namespace(jobs=None), argparse.Namespace(jobs=3)
    assert [gateway.cli.users._jobs(default, large), gateway.cli.users._jobs(default, small)] == [2, 0]
    cores[0] = 1
    assert [gateway.cli.users._jobs(default, large), gateway.cli.users._jobs(three, small)] == [0, 3]
