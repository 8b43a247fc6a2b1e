"""docs/scale-out.md places every migrated table: distributed, reference, or local on purpose."""

import re
from pathlib import Path

import asyncpg

DOC = Path(__file__).resolve().parent.parent / "docs" / "scale-out.md"


async def test_every_migrated_table_is_listed_in_the_citus_ddl(database_url: str):
    connection = await asyncpg.connect(database_url)
    try:
        tables = {r["table_name"] for r in await connection.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE'")}
    finally:
        await connection.close()
    text = DOC.read_text()
    distributed = set(re.findall(r"create_distributed_table\('(\w+)', 'tenant_id'", text))
    reference = set(re.findall(r"create_reference_table\('(\w+)'\)", text))
    local = set(re.findall(r"^--\s+(\w+): ", text, re.MULTILINE))
    assert not (distributed & reference) and not (distributed & local) and not (reference & local)
    assert tables == distributed | reference | local
