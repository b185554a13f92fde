"""The dashboard's plain values (:class:`dashboard.config.DashboardConfig`) from settings."""

from __future__ import annotations

from datetime import timedelta

from dashboard.config import DashboardConfig
from dashboard.throttle import LoginLimits
from factorstream.retention_config import days
from factorstream.settings import Settings


def dashboard_config(settings: Settings) -> DashboardConfig:
    board = settings.dashboard
    return DashboardConfig(
        data_dir=settings.data_dir,
        users_database_url=settings.dashboard_database_url(),
        secrets_key_file=settings.key_file(board.secrets_key_file, "dashboard-secrets.key"),
        session_secret_file=settings.key_file(board.session_secret_file, "dashboard-session.key"),
        session_lifetime=timedelta(seconds=board.session_lifetime_s),
        secure_cookies=board.secure_cookies,
        lake=settings.lake_path(),
        ledger_url=settings.ledger_database_url(),
        ledger_master_key_file=settings.key_file(
            settings.ledger.master_key_file, "ledger-master.key"
        ),
        ledger_public_key_files=tuple(settings.ledger.public_key_files),
        login_limits=LoginLimits(
            per_client_per_minute=board.logins_per_client_per_minute,
            per_minute=board.logins_per_minute,
            concurrent_checks=board.concurrent_password_checks,
        ),
        sessions_keep=days(settings.retention.dashboard_sessions_days),
    )
