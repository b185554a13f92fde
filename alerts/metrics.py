"""The alerts process's Prometheus metrics (``docs/metrics.md``), on a registry it is
given: alerts delivered and dead-lettered per destination (and why), delivery attempts and
the time an alert took to be delivered (retries included). ``destination`` is a configured
name and ``reason`` the status (``HTTP 500``) or the error's class: bounded."""

from __future__ import annotations

from typing import Any

LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


class AlertMetrics:
    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Histogram  # the optional extra ``metrics``

        self.deliveries = Counter(
            "factorstream_alerts_deliveries",
            "Alerts handled per destination: delivered, or dead-lettered.",
            ["destination", "outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "factorstream_alerts_dead_letters",
            "Alerts dead-lettered per destination, by the last attempt's reason.",
            ["destination", "reason"],
            registry=registry,
        )
        self.attempts = Counter(
            "factorstream_alerts_delivery_attempts",
            "Delivery attempts per destination (a retry is another attempt).",
            ["destination"],
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "factorstream_alerts_delivery_duration_seconds",
            "Time to deliver or give up on one alert (retries included), per destination.",
            ["destination"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def handled(
        self, destination: str, *, delivered: bool, reason: str, attempts: int, seconds: float
    ) -> None:
        self.attempts.labels(destination).inc(attempts)
        self.delivery_seconds.labels(destination).observe(seconds)
        self.deliveries.labels(destination, "delivered" if delivered else "dead_lettered").inc()
        if not delivered:
            self.dead_letters.labels(destination, reason_label(reason)).inc()


def reason_label(reason: str) -> str:
    """A bounded label of a transport's reason: ``HTTP 500`` as is, an error's class name
    without its message (``URLError: [Errno 111] …`` → ``URLError``)."""
    if reason.startswith("HTTP "):
        return reason[:8]
    return reason.partition(":")[0][:64] or "unknown"
