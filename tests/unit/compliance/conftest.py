"""The compliance tests' ledger: the scenario of ``pack_support``, built once per module."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.compliance.pack_support import build_ledger


@pytest.fixture(scope="module")
def ledger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("ledger")
    build_ledger(data)
    return data
