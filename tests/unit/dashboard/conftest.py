"""Fixtures for the dashboard: settings in a temporary data dir, a clock, users, a demo lake."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from dash import Dash
from flask.testing import FlaskClient

from analytics.lake import LakeWriter
from analytics.tables import flatten
from audit.checkpoints import load_signing_key
from audit.database import ledger_engine
from audit.ledger import Ledger
from audit.shredding import load_master_key
from dashboard import users
from dashboard.app import create_app, open_directory
from dashboard.users import NewUser, UserDirectory
from factorstream.dashboard_config import dashboard_config
from factorstream.settings import Settings
from tests.unit.dashboard.demo import demo_events

T0 = datetime(2026, 11, 27, 9, 0, 5, tzinfo=UTC)
DEMO_START = datetime(2026, 11, 20, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


class Clock:
    """The HTTP edge's clock, moved by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Account:
    """A dashboard user and the authenticator that holds its secret."""

    created: NewUser
    password: str = PASSWORD

    @property
    def name(self) -> str:
        return self.created.user.name

    def code(self, at: datetime, *, steps: int = 0) -> str:
        totp = pyotp.TOTP(self.created.secret)
        return totp.at(at + timedelta(seconds=30 * steps))


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests use a small scrypt cost (the cost is stored in each hash)."""
    monkeypatch.setattr(users, "SCRYPT_N", 2**10)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def directory(settings: Settings) -> UserDirectory:
    return open_directory(dashboard_config(settings))


AddUser = Callable[..., "Account"]


@pytest.fixture
def add_user(directory: UserDirectory, clock: Clock) -> AddUser:
    def add(name: str = "alice", role: str = "auditor") -> Account:
        return Account(directory.add(name, role=role, password=PASSWORD, now=clock()))

    return add


@pytest.fixture
def lake(settings: Settings) -> Path:
    """The settings' lake, holding the demo dataset."""
    path = settings.lake_path()
    LakeWriter(path).write(flatten(demo_events(start=DEMO_START)))
    return path


@pytest.fixture
def app(settings: Settings, lake: Path, clock: Clock) -> Dash:
    return create_app(dashboard_config(settings), now=clock)


@pytest.fixture
def client(app: Dash) -> Iterator[FlaskClient]:
    with app.server.test_client() as client:
        yield client


def form_token(client: FlaskClient) -> str:
    """The login form's token for this browser, read from the form as a browser would."""
    page = client.get("/login").get_data(as_text=True)
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the login form carries no token"
    return found.group(1)


def post_login(client: FlaskClient, **fields: str) -> Any:
    """Fill in and post the login form (``fields``: name, password, code, next)."""
    return client.post("/login", data={"csrf": form_token(client), **fields})


def sign_in(client: FlaskClient, account: Account, at: datetime, *, steps: int = 0) -> Any:
    return post_login(
        client,
        name=account.name,
        password=account.password,
        code=account.code(at, steps=steps),
        next="/",
    )


def callback_body(app: Dash, output_id: str, values: dict[str, object]) -> dict[str, object]:
    """A ``/_dash-update-component`` request for the callback writing ``output_id``, as the
    browser sends it; ``values`` maps ``id.property`` of its inputs and states to values."""
    key = next(k for k in app.callback_map if f"{output_id}." in k)
    spec = app.callback_map[key]

    def ref(text: str) -> dict[str, object]:
        component, prop = text.rsplit(".", 1)
        return {"id": component, "property": prop}

    parts = key.strip(".").split("...") if key.startswith("..") else [key]
    outputs: object = [ref(p) for p in parts] if key.startswith("..") else ref(key)

    def filled(items: list[dict[str, str]]) -> list[dict[str, object]]:
        return [{**item, "value": values.get(f"{item['id']}.{item['property']}")} for item in items]

    return {
        "output": key,
        "outputs": outputs,
        "inputs": filled(spec["inputs"]),
        "state": filled(spec.get("state", [])),
        "changedPropIds": [next(iter(values))] if values else [],
    }


@pytest.fixture
def ledger(settings: Settings) -> Ledger:
    """The settings' ledger (SQLite in data_dir) holding the demo dataset, checkpointed."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    signing = settings.key_file(settings.ledger.signing_key_file, "ledger-signing.pem")
    master = settings.key_file(settings.ledger.master_key_file, "ledger-master.key")
    ledger = Ledger(
        ledger_engine(settings.ledger_database_url()),
        signing_key=load_signing_key(signing),
        master_key=load_master_key(master),
        checkpoint_every=100,
    )
    ledger.migrate()
    ledger.append(demo_events(start=DEMO_START), now=T0)
    return ledger


@pytest.fixture
def audit_app(settings: Settings, lake: Path, ledger: Ledger, clock: Clock) -> Dash:
    """The app over the demo lake and the demo ledger."""
    return create_app(dashboard_config(settings), now=clock)
