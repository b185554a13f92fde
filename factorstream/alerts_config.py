"""The alerts' plain values (:class:`alerts.AlertsConfig`), read from the settings once,
with the webhooks' secret files."""

from __future__ import annotations

from alerts.config import AlertsConfig, Destination, GroupingPolicy, RetryPolicy, Route
from factorstream.settings import AlertDestinationSettings, Settings


def destination_of(settings: AlertDestinationSettings) -> Destination:
    secret = None
    if settings.secret_file is not None:
        secret = settings.secret_file.read_bytes().strip()
        if not secret:
            raise ValueError(f"alerts: {settings.secret_file} (secret of {settings.name}) is empty")
    return Destination(
        name=settings.name,
        kind=settings.kind,
        url=settings.url,
        secret=secret,
        format=settings.format,
        host=settings.host,
        port=settings.port,
        transport=settings.transport,
        facility=settings.facility,
        hostname=settings.hostname,
        timeout_s=settings.timeout_s,
    )


def alerts_config(settings: Settings) -> AlertsConfig:
    """Raises :class:`alerts.AlertsError` (a route naming no destination, …) or ``OSError``
    (a secret file that cannot be read)."""
    given = settings.alerts
    return AlertsConfig(
        destinations=tuple(destination_of(d) for d in given.destinations),
        routes=tuple(
            Route(
                destinations=tuple(r.destinations),
                tenants=None if r.tenants is None else frozenset(r.tenants),
                types=None if r.types is None else frozenset(r.types),
                detections=None if r.detections is None else frozenset(r.detections),
                min_severity=r.min_severity,
            )
            for r in given.routes
        ),
        default_min_severity=given.min_severity,
        grouping=GroupingPolicy(
            window_s=given.window_s, max_groups=given.max_groups, lockouts_by=given.lockouts_by
        ),
        retry=RetryPolicy(
            initial_s=given.retry_initial_s,
            max_s=given.retry_max_s,
            give_up_after_s=given.give_up_after_s,
        ),
        topics=(settings.topics.lockouts, settings.topics.anomalies),
        dead_letter_topic=given.dead_letter_topic,
        group_prefix=f"{settings.stream.app_id}-alerts",
    )
