"""docker-compose.yml: pinned images, a KRaft Kafka, and the factorstream services wired to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from factorstream.settings import KAFKA_VERSION

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    found = document["services"]
    assert isinstance(found, dict)
    return found


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return command.split() if isinstance(command, str) else list(command)


def test_the_stack_has_kafka_postgres_worker_and_dashboard(
    services: dict[str, dict[str, Any]],
) -> None:
    assert {"kafka", "postgres", "worker", "dashboard"} <= set(services)


def test_every_image_has_a_pinned_tag(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if "image" not in service:
            continue
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag and tag != "latest", f"{name}: {image} is not pinned"


def test_kafka_is_the_pinned_apache_image_in_kraft_mode(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]
    env = kafka["environment"]

    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"  # same version as `kafka up`
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert len(env["CLUSTER_ID"]) == 22
    assert env["KAFKA_LOG_DIRS"] in {volume.split(":")[1] for volume in kafka["volumes"]}
    assert kafka["healthcheck"]["test"]


def test_postgres_is_healthchecked_and_persistent(services: dict[str, dict[str, Any]]) -> None:
    postgres = services["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])


@pytest.mark.parametrize("name", ["worker", "dashboard"])
def test_factorstream_services_run_our_commands_against_the_broker(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    service = services[name]
    assert service.get("build") == "."
    assert _command(service) == ["factorstream", name]
    assert service["environment"]["FACTORSTREAM_KAFKA_BOOTSTRAP"] == "kafka:9092"


def test_worker_waits_for_healthy_kafka_and_postgres(services: dict[str, dict[str, Any]]) -> None:
    depends = services["worker"]["depends_on"]
    assert depends["kafka"]["condition"] == "service_healthy"
    assert depends["postgres"]["condition"] == "service_healthy"


def test_dashboard_is_published_on_8050(services: dict[str, dict[str, Any]]) -> None:
    assert any(str(port).endswith("8050:8050") for port in services["dashboard"]["ports"])
