"""The front door's part of the metrics: one Prometheus registry per process.

Each part registers its own metrics on the registry it is given (``streams/metrics.py``,
``verifiers/service/metrics.py``, ``sources/ingest_metrics.py``, ``alerts/metrics.py``)
and serves it at ``/metrics`` beside ``/health`` and ``/ready`` (``docs/metrics.md``).
``prometheus_client`` is the optional extra ``metrics``: without it a process serves its
probes and no metrics.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)


def metrics_registry() -> CollectorRegistry | None:
    """A fresh registry with the process collectors (CPU, memory, file descriptors) and
    Python's (GC, version); ``None`` when the extra ``metrics`` is not installed."""
    if importlib.util.find_spec("prometheus_client") is None:
        log.warning("prometheus_client is not installed (extra `metrics`): no /metrics")
        return None
    from prometheus_client import CollectorRegistry, disable_created_metrics
    from prometheus_client.gc_collector import GCCollector
    from prometheus_client.platform_collector import PlatformCollector
    from prometheus_client.process_collector import ProcessCollector

    disable_created_metrics()  # type: ignore[no-untyped-call] # no `_created` series beside each counter and histogram
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
