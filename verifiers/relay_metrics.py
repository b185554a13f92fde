"""The outbox relay's Prometheus metrics (``docs/metrics.md``), on a registry it is given.
``outbox``: which outbox a relay publishes (``verifiers``, ``dashboard``): bounded."""

from __future__ import annotations

from typing import Any

from verifiers.publish import OutboxRelay

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RelayMetrics:
    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Gauge, Histogram  # the extra ``metrics``

        self.published = Counter(
            "factorstream_relay_published_events",
            "Outbox rows published to the events topic (acknowledged, marked sent).",
            ["outbox"],
            registry=registry,
        )
        self.failed_rounds = Counter(
            "factorstream_relay_failed_rounds",
            "Relay rounds that failed (the broker unreachable, a row not acknowledged).",
            ["outbox"],
            registry=registry,
        )
        self.round_seconds = Histogram(
            "factorstream_relay_round_duration_seconds",
            "Time of one relay round that published rows (claim, send, acks, mark sent).",
            ["outbox"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.pruned = Counter(
            "factorstream_relay_pruned_events",
            "Published outbox rows deleted by retention (`retention.outbox_sent_days`).",
            ["outbox"],
            registry=registry,
        )
        self.pending = Gauge(
            "factorstream_relay_pending_events",
            "Outbox rows not yet published (counted when scraped).",
            ["outbox"],
            registry=registry,
        )

    def watch(self, relay: OutboxRelay, outbox: str) -> None:
        """Count ``relay``'s rounds and export its outbox's pending rows as ``outbox``."""

        def on_round(published: int, seconds: float, failed: bool) -> None:
            if failed:
                self.failed_rounds.labels(outbox).inc()
            elif published:
                self.published.labels(outbox).inc(published)
                self.round_seconds.labels(outbox).observe(seconds)

        def pending() -> float:
            try:
                return float(relay.outbox.pending())
            except Exception:  # the database away: no number (NaN), /ready says why
                return float("nan")

        def on_prune(deleted: int) -> None:
            self.pruned.labels(outbox).inc(deleted)

        relay.on_round = on_round
        relay.on_prune = on_prune
        self.pending.labels(outbox).set_function(pending)
