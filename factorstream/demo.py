"""The demo's moving parts: child processes it owns, and the demo auditor's sign-in.

Every child (the worker, the dashboard) runs in its own session, so a Ctrl-C in the
terminal reaches only the demo, which then stops them in order: SIGTERM to the child's
whole process group, SIGKILL after a grace period. Nothing the demo started outlives it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import pyotp

from factorstream.dashboard_config import dashboard_config
from factorstream.settings import Settings, environment

DEMO_AUDITOR = "demo-auditor"


@dataclass
class Child:
    """A process the demo started, with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, *, timeout: float = 20.0) -> None:
        """SIGTERM to its process group, then SIGKILL; returns once it is gone."""
        if self.process.poll() is not None:
            return
        _signal_group(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)


def _signal_group(pid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


def start_child(name: str, args: list[str], *, settings: Settings, log: Path) -> Child:
    """``python -m factorstream.cli ARGS`` with ``settings`` in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORSTREAM_")}
    env.update(environment(settings))
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own CLI, with our own arguments
            [sys.executable, "-m", "factorstream.cli", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Child(name, process, log)


@dataclass(frozen=True)
class DemoAuditor:
    """The demo's dashboard user; its secret is kept (0600) only for the demo to show
    the current code. Real users' secrets are shown once and never stored in clear."""

    name: str
    password: str
    secret: str

    def code(self, now: datetime) -> str:
        return pyotp.TOTP(self.secret).at(now)

    def seconds_left(self, now: datetime) -> int:
        return 30 - int(now.timestamp()) % 30


def auditor_file(settings: Settings) -> Path:
    return settings.data_dir / "demo" / "auditor.json"


def sign_in_file(settings: Settings) -> Path:
    """Where the demo writes the dashboard's URL and the demo auditor's sign-in."""
    return settings.data_dir / "demo" / "sign-in.txt"


def sign_in_lines(url: str, auditor: DemoAuditor, *, now: datetime) -> list[str]:
    """The dashboard's URL and the demo auditor's sign-in as plain lines: for a log, a
    file, or a terminal that is not one. The code is the one valid at ``now``."""
    return [
        f"dashboard: {url}",
        f"user: {auditor.name} (auditor)",
        f"password: {auditor.password}",
        f"TOTP code: {auditor.code(now)} at {now:%H:%M:%S} UTC"
        " (a new one every 30 s: `factorstream demo --code`)",
        f"TOTP secret: {auditor.secret} (to add to an authenticator app)",
    ]


def write_sign_in(settings: Settings, url: str, auditor: DemoAuditor, *, now: datetime) -> Path:
    """Write :func:`sign_in_lines` to :func:`sign_in_file` (mode 0600); return its path."""
    path = sign_in_file(settings)
    _write_private(path, "\n".join(sign_in_lines(url, auditor, now=now)) + "\n")
    return path


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by this user alone (also when it existed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)


def read_demo_auditor(settings: Settings) -> DemoAuditor | None:
    try:
        return DemoAuditor(**json.loads(auditor_file(settings).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def ensure_demo_auditor(settings: Settings, *, now: datetime) -> DemoAuditor:
    """The demo auditor: created once per data dir (password + TOTP), then reused."""
    from dashboard.app import open_directory

    directory = open_directory(dashboard_config(settings))
    known = read_demo_auditor(settings)
    if known is not None and directory.get(known.name) is not None:
        return known
    name = DEMO_AUDITOR if directory.get(DEMO_AUDITOR) is None else f"demo-{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    created = directory.add(name, role="auditor", password=password, now=now)
    auditor = DemoAuditor(name=created.user.name, password=password, secret=created.secret)
    _write_private(auditor_file(settings), json.dumps(asdict(auditor)))
    return auditor
