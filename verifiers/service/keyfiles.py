"""Private key files: created with mode 0600 by whichever process comes first."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def write_private(path: Path, content: bytes) -> None:
    """Create ``path`` with mode 0600 (``FileExistsError`` if another process was first)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)


def read_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The secret in ``path``; if there is none, ``make()`` one and write it (mode 0600).
    Two processes starting at once agree: the loser reads the winner's secret."""
    if not path.exists():
        try:
            write_private(path, make() + b"\n")
        except FileExistsError:
            pass
    secret = path.read_bytes().strip()
    if not secret:
        raise ValueError(f"key file {path} is empty")
    return secret
