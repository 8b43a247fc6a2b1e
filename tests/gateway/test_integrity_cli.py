"""``audit verify``, ``keys public`` and the checkpoint export, run as users run them."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from eventstore import EventStore
from eventstore.signed_note import SigningKey, Verifier
from gateway.cli import main
from projections.sealer import CheckpointPolicy, Sealer, SealerRunner


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "signing.key"
    path.write_text(SigningKey.generate("scim-gateway").text() + "\n")
    return path


@pytest.fixture
def cli(database_url, capsys, key_file, monkeypatch):
    monkeypatch.setenv("SCIM_GATEWAY_SIGNING_KEY_FILE", str(key_file))

    def call(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--database-url", database_url])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


async def sealed_tenant(cli, pool, key_file) -> None:
    """Two events, sealed and signed one at a time: checkpoints of tree size 1 and 2."""
    key = SigningKey.parse(key_file.read_text())
    await asyncio.to_thread(cli, "tenant", "create", "acme")
    await SealerRunner(EventStore(pool), Sealer(key, CheckpointPolicy(every_events=1))).catch_up()
    await asyncio.to_thread(cli, "token", "create", "--tenant", "acme", "--owner", "bot@acme.example")
    await SealerRunner(EventStore(pool), Sealer(key, CheckpointPolicy(every_events=1))).catch_up()


async def test_keys_public_prints_the_verifier_key_of_the_configured_key(cli, key_file):
    code, out, _ = await asyncio.to_thread(cli, "keys", "public")
    assert code == 0 and out.strip() == SigningKey.parse(key_file.read_text()).verifier.text()
    assert Verifier.parse(out).name == "scim-gateway"


async def test_keys_public_makes_the_default_key_under_the_data_dir_once(database_url, capsys, tmp_path):
    args = ["keys", "public", "--database-url", database_url, "--data-dir", str(tmp_path)]
    assert await asyncio.to_thread(main, args) == 0
    first = capsys.readouterr()
    assert "made a new checkpoint signing key" in first.err
    assert (tmp_path / "checkpoint-signing.key").stat().st_mode & 0o777 == 0o600
    assert await asyncio.to_thread(main, args) == 0
    assert capsys.readouterr().out == first.out


async def test_audit_verify_passes_an_intact_log_and_exits_0(cli, pool, key_file, tmp_path):
    await sealed_tenant(cli, pool, key_file)
    public = tmp_path / "public.key"
    public.write_text((await asyncio.to_thread(cli, "keys", "public"))[1])

    code, out, err = await asyncio.to_thread(cli, "audit", "verify", "--tenant", "acme", "--public-key", str(public),
                                             "--json")
    [summary] = [orjson.loads(line) for line in out.splitlines()]
    assert code == 0 and summary["summary"]["intact"] is True and summary["summary"]["sealed"] == 2
    assert "intact" in err


async def test_audit_verify_reports_every_finding_as_json_lines_and_exits_1(cli, pool, key_file):
    await sealed_tenant(cli, pool, key_file)
    positions = [r["position"] for r in await pool.fetch("SELECT position FROM events ORDER BY position")]
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SET LOCAL session_replication_role = replica")
        await connection.execute("UPDATE events SET metadata = '{}' WHERE position = $1", positions[0])
        await connection.execute("DELETE FROM events WHERE position = $1", positions[1])

    code, out, _ = await asyncio.to_thread(cli, "audit", "verify", "--json")
    lines = [orjson.loads(line) for line in out.splitlines()]
    assert code == 1
    assert [(f["finding"], f["seq"], f["position"]) for f in lines[:-1]] == [
        ("modified", 0, positions[0]), ("truncated", 1, positions[1])]
    assert lines[-1]["summary"]["by_kind"] == {"modified": 1, "truncated": 1}

    code, out, _ = await asyncio.to_thread(cli, "audit", "verify")
    assert code == 1 and out.splitlines()[0].startswith("modified tenant_id=")


async def test_exported_checkpoints_are_checked_by_audit_verify(cli, pool, key_file, tmp_path):
    await sealed_tenant(cli, pool, key_file)
    exported = tmp_path / "checkpoints.jsonl"
    code, _, _ = await asyncio.to_thread(cli, "audit", "export", "--tenant", "acme", "--kind", "checkpoints",
                                           "-o", str(exported))
    rows = [orjson.loads(line) for line in exported.read_text().splitlines()]
    assert code == 0 and [r["tree_size"] for r in rows] == [1, 2]
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SET LOCAL session_replication_role = replica")
        await connection.execute("DELETE FROM integrity_checkpoints")
        await connection.execute("UPDATE event_seals SET leaf_hash = $1 WHERE seq = 1", bytes(32))

    code, out, _ = await asyncio.to_thread(cli, "audit", "verify", "--checkpoint", str(exported), "--json")
    assert code == 1 and orjson.loads(out.splitlines()[0])["finding"] == "leaves_tampered"


async def test_audit_verify_with_an_unknown_tenant_is_a_user_error(cli):
    code, out, err = await asyncio.to_thread(cli, "audit", "verify", "--tenant", "nope")
    assert (code, out, err.splitlines()[-1]) == (1, "", "scim-gateway: no tenant named 'nope'")


async def test_serve_with_a_configured_key_file_that_is_missing_stops_with_its_path(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("SCIM_GATEWAY_SIGNING_KEY_FILE", str(tmp_path / "absent.key"))
    code, out, err = await asyncio.to_thread(cli, "serve", "--port", "1")
    assert (code, out, err.splitlines()[-1]) == (1, "", f"scim-gateway: no checkpoint signing key at {tmp_path}/absent.key")
