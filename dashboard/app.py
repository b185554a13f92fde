"""The Dash Pages app: ``create_app(config)`` wires users, the gate, data and pages.

Settings are read by the caller (``factorstream dashboard``) and passed in as a value;
``now`` is the clock of the HTTP edge (sign-in times, session expiry), replaceable in tests.
"""

from __future__ import annotations

import base64
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dash
import flask
from dash import Dash

from dashboard import layout
from dashboard.config import DashboardConfig
from dashboard.context import DashboardContext, once_opened
from dashboard.data import LakeMetrics
from dashboard.evidence import install_pack_downloads
from dashboard.gate import SessionPolicy, install_gate
from dashboard.keys import read_or_create
from dashboard.ledger import LedgerAccess, open_ledger, pinned_keys
from dashboard.probes import DashboardMetrics, install_probes
from dashboard.throttle import LoginThrottle
from dashboard.users import CONSOLE_TIERS, User, UserDirectory
from verifiers.crypto import SecretBox, new_key
from verifiers.store import VerifierStore, store_engine

HERE = Path(__file__).resolve().parent
PAGES = HERE / "pages"
ASSETS = HERE / "assets"
SOURCE = "urn:factorstream:dashboard"


def utc_now() -> datetime:
    return datetime.now(UTC)


def open_directory(config: DashboardConfig) -> UserDirectory:
    """The dashboard users' database (its verifier store and tables), migrated."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    secrets_key = read_or_create(config.secrets_key_file, lambda: new_key().encode())
    store = VerifierStore(
        store_engine(config.users_database_url),
        SecretBox(secrets_key.decode()),
        source=SOURCE,
        tiers=CONSOLE_TIERS,
    )
    directory = UserDirectory(store)
    directory.migrate()
    return directory


def session_policy(config: DashboardConfig) -> SessionPolicy:
    secret = read_or_create(
        config.session_secret_file, lambda: base64.urlsafe_b64encode(secrets.token_bytes(48))
    )
    return SessionPolicy(
        secret=secret,
        lifetime=config.session_lifetime,
        secure=config.secure_cookies,
        keep_ended=config.sessions_keep,
    )


def create_app(
    config: DashboardConfig,
    *,
    now: Callable[[], datetime] = utc_now,
    metrics: LakeMetrics | None = None,
    ledger: LedgerAccess | None = None,
    registry: Any = None,
) -> Dash:
    """The dashboard for ``config``; ``metrics``/``ledger`` replace the configured ones;
    ``registry`` (a ``prometheus_client.CollectorRegistry``): where ``/metrics`` counts the
    sign-ins (``None``: no ``/metrics``; ``/health`` and ``/ready`` either way).
    ``ValueError`` for a configured ledger public key that is no such key."""
    directory = open_directory(config)
    pinned = pinned_keys(config.ledger_public_key_files)
    context = DashboardContext(
        metrics=metrics or LakeMetrics(config.lake),
        open_ledger=once_opened(
            lambda: (
                ledger
                if ledger is not None
                else open_ledger(
                    config.ledger_url, master_key_file=config.ledger_master_key_file, pinned=pinned
                )
            )
        ),
        now=now,
    )
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder=str(PAGES),
        assets_folder=str(ASSETS),
        title="factorstream · MFA audit",
        update_title="",
        suppress_callback_exceptions=True,
        serve_locally=True,
        index_string=layout.INDEX_PAGE,
    )
    app.server.extensions["factorstream_dashboard"] = context
    probe_metrics = None if registry is None else DashboardMetrics(registry)
    install_gate(
        app.server,
        directory=directory,
        policy=session_policy(config),
        now=now,
        throttle=LoginThrottle(config.login_limits),
        on_sign_in=None if probe_metrics is None else probe_metrics.signed_in,
        on_sessions_expired=None if probe_metrics is None else probe_metrics.sessions_expired,
    )
    install_probes(app.server, users=directory.engine, metrics=probe_metrics)
    install_pack_downloads(app.server, context=context, directory=directory)

    def shell() -> object:
        user = flask.g.get("dashboard_user") if flask.has_request_context() else None
        if not isinstance(user, User):  # Dash validating the layout: the ids suffice
            return layout.shell(None, tenants=[], applications=[])
        return layout.shell(
            user,
            tenants=context.metrics.options("tenants"),
            applications=context.metrics.options("applications"),
        )

    app.layout = shell
    for page in dash.page_registry.values():  # the page modules Dash just (re)loaded
        sys.modules[page["module"]].register_callbacks(app, context)
    return app
