"""The core alone: ``pip install factorstream`` (no extras) in a fresh virtualenv runs a
TOTP verification without Faust, Dash, DuckDB, pyarrow or pandas; the other parts, and the
commands that need them, name the extra to install."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("faust", "rocksdict", "dash", "plotly", "duckdb", "pyarrow", "pandas", "fastapi")

PROBE = textwrap.dedent(
    """
    import importlib, importlib.util, json, sys
    from datetime import UTC, datetime, timedelta
    import pyotp
    from verifiers import totp
    from verifiers.crypto import SecretBox, new_key
    from verifiers.store import Request, VerifierStore, store_engine

    found = {m: importlib.util.find_spec(m) is not None for m in sys.argv[2].split(",")}
    store = VerifierStore(store_engine(f"sqlite:///{sys.argv[1]}"), SecretBox(new_key()),
                          source="https://login.example.com/mfa")
    store.migrate()
    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    at = lambda t: Request(tenant="acme", subject="u-1", correlationid="c-1", now=t)
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    enrolment = totp.begin_enrollment(store, at(now), account_name="u-1", issuer="acme",
                                      secret=secret)
    code = lambda t: pyotp.TOTP(secret).at(t)
    confirmed = totp.confirm_enrollment(store, at(now), enrollment_id=enrolment.enrollment_id,
                                        code=code(now))
    later = now + timedelta(minutes=1)
    good = totp.verify(store, at(later), code=code(later))
    bad = totp.verify(store, at(later + timedelta(minutes=1)), code="000000")
    refused = {}
    for part in ("streams", "analytics", "dashboard", "compliance", "verifiers.service.api"):
        try:
            importlib.import_module(part)
            refused[part] = None
        except ImportError as error:
            refused[part] = str(error)
    print(json.dumps({"installed": found, "confirmed": confirmed.accepted, "good": good.accepted,
                      "bad": bad.accepted, "refused": refused}))
    """
)


def _pins() -> str:
    """requirements.lock's pins as constraints (the core resolves to the locked versions)."""
    lock = (ROOT / "requirements.lock").read_text()
    return "\n".join(re.findall(r"^([A-Za-z0-9._-]+(?:\[[^\]]*\])?==[^\s\\]+)", lock, re.M))


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the project installed from a copy of its sources, no extras."""
    base = tmp_path_factory.mktemp("core")
    source = base / "src"
    source.mkdir()
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for pattern in include["packages"]["find"]["include"]:
        package = pattern.rstrip("*")
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    (base / "constraints.txt").write_text(_pins())
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)  # noqa: S603
    python = venv / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "-q", "-c", str(base / "constraints.txt")]
    result = subprocess.run(  # noqa: S603 - our venv's pip, fixed arguments
        [*install, str(source)], capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return venv


def test_the_core_alone_verifies_a_totp_code_without_the_heavy_parts(
    core: Path, tmp_path: Path
) -> None:
    result = subprocess.run(  # noqa: S603
        [str(core / "bin" / "python"), "-c", PROBE, str(tmp_path / "v.db"), ",".join(HEAVY)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    import json

    found = json.loads(result.stdout.splitlines()[-1])
    assert found["installed"] == dict.fromkeys(HEAVY, False)
    assert (found["confirmed"], found["good"], found["bad"]) == (True, True, False)
    extras = {"streams": "worker", "analytics": "analytics", "dashboard": "dashboard"}
    extras |= {"compliance": "analytics", "verifiers.service.api": "service"}
    for part, extra in extras.items():
        assert f"pip install 'factorstream[{extra}]'" in found["refused"][part], part


def test_a_command_whose_extra_is_missing_names_it(core: Path, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NO_COLOR": "1"}

    def factorstream(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - the venv's own command, fixed arguments
            [str(core / "bin" / "factorstream"), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    helped = factorstream("--help")
    assert helped.returncode == 0, helped.stderr
    assert "worker" in helped.stdout and "not installed" in helped.stdout
    ran = factorstream("worker")
    assert ran.returncode == 2
    assert "pip install 'factorstream[worker]'" in ran.stderr
    assert "Traceback" not in ran.stderr
