"""The extras a part names (schemas.extras) are the ones pyproject.toml installs it with."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from schemas.extras import MODULES, PARTS, missing_extra, require_extra

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
GROUPS = PROJECT["optional-dependencies"]


def _names(pins: list[str]) -> set[str]:
    return {re.split(r"[\[=<>~!]", pin)[0].lower().replace("_", "-") for pin in pins}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_beyond_the_core_is_installed_by_the_extra_it_names(module: str) -> None:
    extra = MODULES[module]
    providers = {d.lower().replace("_", "-") for d in packages_distributions().get(module, [])}
    assert providers, f"{module} is not installed here (the quickstart installs every extra)"
    assert providers & _names(GROUPS[extra]), (module, extra, providers)
    assert not providers & _names(PROJECT["dependencies"]), f"{module} is in the core"


def test_every_part_needs_only_known_modules_and_all_installs_every_extra() -> None:
    assert {m for needed in PARTS.values() for m in needed} <= set(MODULES)
    (everything,) = GROUPS["all"]
    named = set(everything.split("[")[1].rstrip("]").split(","))
    assert named == set(GROUPS) - {"all", "dev"}


def test_a_missing_module_names_the_part_and_the_extra() -> None:
    message = missing_extra("streams", "faust.app")
    assert message == (
        "streams needs the 'worker' extra ('faust.app' is not installed): "
        "pip install 'factorstream[worker]'"
    )
    with pytest.raises(ImportError, match=r"factorstream\[analytics\]") as raised:
        require_extra("analytics", "no_such_module_for_this_test", "pyarrow")
    assert raised.value.name == "no_such_module_for_this_test"
