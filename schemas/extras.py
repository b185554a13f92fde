"""The optional dependency groups ("extras") of the distribution, and the check a part
runs when it is imported, so that a missing group is named instead of surfacing as a bare
``ModuleNotFoundError`` deep in an import chain (the CLI does the same for a command whose
module cannot be imported: :func:`missing_extra`).

The core (``schemas``, ``verifiers``, the outbox and its relay, the ``factorstream`` command
itself) installs with ``pip install factorstream``; every other part names its group in
``pyproject.toml`` and here (a test keeps both in step), e.g. ``pip install
'factorstream[worker]'``; ``factorstream[all]`` is everything the quickstart installs.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from importlib.util import find_spec
from typing import Final

MODULES: Final[Mapping[str, str]] = {
    "faust": "worker",
    "mode": "worker",
    "rocksdict": "worker",
    "geoip2fast": "worker",
    "maxminddb": "worker",
    "aiokafka": "worker",
    "duckdb": "analytics",
    "pyarrow": "analytics",
    "pandas": "analytics",
    "dash": "dashboard",
    "dash_ag_grid": "dashboard",
    "dash_bootstrap_components": "dashboard",
    "plotly": "dashboard",
    "waitress": "dashboard",
    "fastapi": "service",
    "uvicorn": "service",
    "jwt": "service",
    "httpx": "idp",
    "prometheus_client": "metrics",
    "psycopg": "postgres",
    "fpdf": "pdf",
}
"""Each module (import name) beyond the core, and the extra that installs it (the first one
that does, where several do)."""

PARTS: Final[Mapping[str, tuple[str, ...]]] = {
    "streams": ("faust", "mode", "aiokafka", "rocksdict"),
    "analytics": ("duckdb", "pyarrow", "pandas"),
    "dashboard": ("dash", "dash_ag_grid", "dash_bootstrap_components", "plotly"),
    "compliance": ("pyarrow",),
    "alerts.host": ("aiokafka",),
    "verifiers.service": ("fastapi", "jwt", "uvicorn"),
}
"""Each part that needs more than the core: the modules it must find."""


def missing_extra(part: str, module: str) -> str:
    """What to tell someone whose ``part`` cannot import ``module`` (a module of no extra:
    the extra of what ``part`` needs first)."""
    extra = MODULES.get(module.partition(".")[0]) or MODULES[PARTS[part][0]]
    return (
        f"{part} needs the {extra!r} extra ({module!r} is not installed): "
        f"pip install 'factorstream[{extra}]'"
    )


def explain(error: ImportError, part: str) -> str | None:
    """The extra to install that ``error`` calls for, said for ``part`` (None: it calls for
    none: a module of the core or of no extra is missing, or it is another import error)."""
    if "pip install 'factorstream[" in str(error):
        return str(error)  # a part's own check (require_extra) said it already
    name = error.name or ""
    if isinstance(error, ModuleNotFoundError) and name.partition(".")[0] in MODULES:
        return missing_extra(part, name)
    return None


def require_extra(part: str, *modules: str) -> None:
    """Raise ``ImportError`` naming the extra when one of ``modules`` (default: all
    ``part`` needs, :data:`PARTS`) is not installed."""
    for module in modules or PARTS[part]:
        if not _installed(module):
            raise ImportError(missing_extra(part, module), name=module)


def _installed(module: str) -> bool:
    if module in sys.modules:  # imported already (its __spec__ may be unset)
        return True
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False
