"""What the dashboard needs to know, as plain values (the front door reads them from its
settings: ``factorstream.dashboard_config``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from dashboard.throttle import LoginLimits


@dataclass(frozen=True)
class DashboardConfig:
    data_dir: Path
    """Created if missing (the users' SQLite database and keys may live there)."""
    users_database_url: str
    secrets_key_file: Path
    """Seals the users' TOTP secrets (created on first use)."""
    session_secret_file: Path
    """Signs session cookies (created on first use)."""
    session_lifetime: timedelta
    secure_cookies: bool
    lake: Path
    ledger_url: str
    ledger_master_key_file: Path
    """Opens personal data in the ledger when it exists."""
    ledger_public_key_files: tuple[Path, ...] = ()
    """Public keys (PEM) the ledger's checkpoints must be signed by (none: its own)."""
    login_limits: LoginLimits = LoginLimits()
    sessions_keep: timedelta | None = timedelta(days=30)
    """Retention: session rows over longer ago are deleted (``None``: kept)."""
