"""A private PostgreSQL server for the test session (pytest plugin).

``postgres_url`` starts a throw-away cluster (initdb + pg_ctl from Debian's
``postgresql`` package) on a free port in a temporary directory, and removes it after
the session. As root the server runs as the ``postgres`` system user, as it must.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from factorstream.localkafka import free_port
from tests.support import missing


def _postgres_bin(name: str) -> str | None:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else shutil.which(name)


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh PostgreSQL server (database ``postgres``, trust auth)."""
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not initdb or not pg_ctl:
        missing("PostgreSQL server", "initdb/pg_ctl not found (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="factorstream-pg-"))
    root.chmod(0o755)
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    try:
        subprocess.run(
            _as_server_user(
                [
                    initdb,
                    "-D",
                    str(data),
                    "-U",
                    "factorstream",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            _as_server_user(
                [
                    pg_ctl,
                    "-D",
                    str(data),
                    "-l",
                    str(root / "server.log"),
                    "-w",
                    "-o",
                    f"-p {port} -h 127.0.0.1 -k {root} -c fsync=off",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
        log = root / "server.log"
        detail = log.read_text()[-2000:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        missing("PostgreSQL server", f"could not start: {error} {detail}")
    try:
        yield f"postgresql+psycopg://factorstream@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)
