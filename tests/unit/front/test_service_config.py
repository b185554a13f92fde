"""The MFA service's values from settings: the stream view, rate limits, risk thresholds."""

from __future__ import annotations

from pathlib import Path

from factorstream.service_config import service_config
from factorstream.settings import Settings


def test_the_stream_view_is_off_by_default_and_reads_the_configured_topics(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, kafka_bootstrap="kafka.internal:9093")
    assert service_config(settings).stream is None

    on = Settings(
        data_dir=tmp_path,
        kafka_bootstrap="kafka.internal:9093",
        topics={"events": "t.events", "lockouts": "t.lockouts", "anomalies": "t.anomalies"},
        service={"stream_view": True},
    )
    stream = service_config(on).stream
    assert stream is not None
    assert stream.kafka.bootstrap == "kafka.internal:9093"
    assert stream.topics == ("t.events", "t.lockouts", "t.anomalies")
    assert service_config(on, stream_view=False).stream is None
    enriched = on.model_copy(
        update={
            "service": on.service.model_copy(update={"stream_events_topic": "w-events-ingested"})
        }
    )
    assert service_config(enriched).stream.topics[0] == "w-events-ingested"  # type: ignore[union-attr]


def test_rate_limits_and_ip_lists_come_from_the_settings(tmp_path: Path) -> None:
    tor = tmp_path / "tor-exits.txt"
    tor.write_text("# exits\n185.220.101.5\n2001:db8::/32\n")
    settings = Settings(
        data_dir=tmp_path,
        service={
            "rate_per_ip_per_s": 5,
            "rate_per_ip_burst": 10,
            "trusted_proxies": ["10.0.0.0/8"],
        },
        detections={"anonymous_networks_file": str(tor), "travel_max_speed_kmh": 800},
    )
    config = service_config(settings)
    assert (config.rate_limits.per_ip_per_s, config.rate_limits.per_ip_burst) == (5, 10)
    assert config.rate_limits.trusted_proxies == ("10.0.0.0/8",)
    assert config.risk.anonymous("185.220.101.5") and config.risk.anonymous("2001:db8::1")
    assert not config.risk.anonymous("185.220.101.6")
    assert config.risk.travel_max_speed_kmh == 800
