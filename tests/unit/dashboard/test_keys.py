"""Key files: created on first use, owner-only, never overwritten."""

from __future__ import annotations

import stat
from pathlib import Path

from dash import Dash

from dashboard.keys import read_or_create
from factorstream.settings import Settings


def test_a_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "k.key"
    first = read_or_create(path, lambda: b"one")
    second = read_or_create(path, lambda: b"two")
    assert first == second == b"one"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_app_keeps_its_secrets_in_owner_only_files(app: Dash, settings: Settings) -> None:
    session = settings.key_file(settings.dashboard.session_secret_file, "dashboard-session.key")
    secrets = settings.key_file(None, "dashboard-secrets.key")
    for path in (session, secrets):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert len(path.read_bytes().strip()) >= 32
    assert app.server.secret_key == session.read_bytes().strip()
