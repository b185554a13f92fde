"""Key files the dashboard creates on first use: owner-only (0600), never overwritten."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The key in ``path``; if there is none, ``make()`` one and write it with mode 0600.

    Two processes starting at once agree: the file is created with ``O_EXCL``, and the
    loser reads the winner's key.
    """
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = make()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key + b"\n")
    return key


def _read(path: Path) -> bytes:
    key = path.read_bytes().strip()
    if not key:
        raise ValueError(f"key file {path} is empty")
    return key
