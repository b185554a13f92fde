"""Which destinations take an alert: the routes, or every destination at the default
minimum severity when none are configured."""

from __future__ import annotations

from alerts.config import AlertsConfig, Route, severity_rank
from alerts.model import Alert


def matches(route: Route, alert: Alert) -> bool:
    return (
        (route.tenants is None or alert.tenant in route.tenants)
        and (route.types is None or alert.type in route.types)
        and (
            route.detections is None
            or alert.detection is None  # the filter names detections: others pass
            or alert.detection in route.detections
        )
        and severity_rank(alert.severity) >= severity_rank(route.min_severity)
    )


def routed_to(alert: Alert, destination: str, config: AlertsConfig) -> bool:
    """Whether ``destination`` takes ``alert``."""
    if not config.routes:
        return severity_rank(alert.severity) >= severity_rank(config.default_min_severity)
    return any(
        destination in route.destinations and matches(route, alert) for route in config.routes
    )
