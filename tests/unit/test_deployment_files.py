"""The deployment files agree with the code: the Dockerfile, docker-compose.yml and the
Kubernetes manifests name real commands and real settings, pin every image, bind where
they publish, probe paths that exist, and give Kafka the users and ACLs the pipeline
defines (factorstream/kafka_access.py). Containers cannot run here; the integration test
tests/integration/test_deployment_roles.py runs each role's command outside one."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from factorstream.cli.worker import ROLES
from factorstream.kafka_access import AclGrant, pipeline_acls
from factorstream.settings import (
    ENV_PREFIX,
    KAFKA_VERSION,
    Settings,
    TopicSettings,
    unknown_environment,
)
from tests.deployment import (
    ANY_INTERFACE,
    FROM_SECRET,
    ROOT,
    Container,
    MissingVariable,
    NoSuchCommand,
    base_images,
    cli_command,
    compose_environment,
    compose_file,
    compose_services,
    config_maps,
    container_environment,
    containers,
    dockerfile_instructions,
    env_of_stage,
    exec_form,
    factorstream_services,
    kubernetes_documents,
)

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
OUR_IMAGE = f"factorstream:{VERSION}"
PINNED = re.compile(r"^[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}$")
COMPOSE_VARIABLES = {"POSTGRES_PASSWORD": "not-a-real-password"}
"""What .env would hold (docs/deployment.md); ALERTS_DESTINATIONS is given per test."""
ALERTS = '[{"name": "soc", "kind": "webhook", "url": "https://soc.example/hook"}]'

PROBED = {
    # command -> (bind setting, port setting) of the process's /health and /ready
    ("worker",): ("stream.web_bind", "stream.web_port"),
    ("serve",): ("service.host", "service.port"),
    ("ingest", "serve"): ("ingest.host", "ingest.port"),
    ("dashboard",): ("dashboard.host", "dashboard.port"),
    ("relay",): ("relay.probes_host", "relay.probes_port"),
    ("alerts", "run"): ("alerts.probes_host", "alerts.probes_port"),
    ("sink",): ("stream.probes_host", "stream.probes_port"),
}
"""Every role with probes (docs/metrics.md); `kafka topics` (a one-shot) has none."""
SECRET_SAMPLES = {"FACTORSTREAM_ALERTS__DESTINATIONS": ALERTS}
"""What a Kubernetes Secret holds for a setting that is not a plain string."""


def probed_by(command: list[str]) -> tuple[str, str] | None:
    for prefix, settings in PROBED.items():
        if tuple(command[: len(prefix)]) == prefix:
            return settings
    return None


def setting(settings: Settings, dotted: str) -> Any:
    value: Any = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def settings_from(environment: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a process started with ``environment`` reads (and validates)."""
    unknown = unknown_environment(environment)
    assert not unknown, f"not factorstream settings: {unknown}"
    with monkeypatch.context() as patch:
        for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
            patch.delenv(name)
        for name, value in environment.items():
            if name.startswith(ENV_PREFIX):
                patch.setenv(name, value.replace(FROM_SECRET, SECRET_SAMPLES.get(name, "secret")))
        return Settings()


# -- the Dockerfile ----------------------------------------------------------------------------


def test_the_base_image_is_pinned_by_tag_and_digest() -> None:
    images = base_images(dockerfile_instructions())
    assert images, "no FROM"
    for image in images:
        assert PINNED.match(image), f"{image} is not pinned by tag and sha256 digest"
        assert re.match(r"^python:3\.11\.\d+-slim-bookworm@", image), (
            f"{image}: the lock is compiled for Python 3.11 (requirements.lock header)"
        )
    assert "Python 3.11" in (ROOT / "requirements.lock").read_text()[:200]


def test_the_image_installs_the_lock_with_hashes_then_the_project_alone() -> None:
    runs = [i.arguments for i in dockerfile_instructions() if i.keyword == "RUN"]
    installs = [run for run in runs if run.startswith("pip install")]
    assert len(installs) == 2, installs
    lock, project = installs
    assert "--require-hashes" in lock.split() and "requirements.lock" in lock
    assert {"--no-deps", "--no-build-isolation"} <= set(project.split())


def test_the_image_copies_every_package_the_project_installs() -> None:
    copied = {
        Path(source).name
        for i in dockerfile_instructions()
        if i.keyword == "COPY" and "--from" not in i.arguments
        for source in i.arguments.split()[:-1]
    }
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    needed = {p.rstrip("*") for p in find} | {"pyproject.toml", "README.md", "requirements.lock"}
    assert needed <= copied, f"not copied into the image: {sorted(needed - copied)}"


def test_the_image_runs_factorstream_as_a_user_of_its_own_on_the_data_volume() -> None:
    instructions = dockerfile_instructions()
    final = max(i.stage for i in instructions)
    users = [i.arguments for i in instructions if i.keyword == "USER" and i.stage == final]
    assert users, "no USER in the final stage: it would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "USER must be a numeric non-root uid"
    made = [i.arguments for i in instructions if i.keyword == "RUN" and "useradd" in i.arguments]
    assert made and f"--uid {uid}" in made[0]
    (entrypoint,) = [exec_form(i) for i in instructions if i.keyword == "ENTRYPOINT"]
    assert entrypoint == ["factorstream"]
    assert PYPROJECT["project"]["scripts"]["factorstream"] == "factorstream.cli:main"
    env = env_of_stage(instructions, final)
    (volume,) = [exec_form(i) for i in instructions if i.keyword == "VOLUME"]
    assert volume == [env["FACTORSTREAM_DATA_DIR"]]
    assert not unknown_environment(env)


# -- docker-compose.yml --------------------------------------------------------------------------


def test_every_image_is_pinned() -> None:
    for name, service in compose_services().items():
        image = service["image"]
        if "build" in service:
            assert image == OUR_IMAGE, f"{name}: builds {image}, not the project's version"
        else:
            assert PINNED.match(image), f"{name}: {image} is not pinned by tag and digest"


@pytest.mark.parametrize("name", sorted(factorstream_services()))
def test_each_service_runs_a_real_command_with_real_settings(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = factorstream_services()[name]
    cli_command(service["command"])  # raises NoSuchCommand: none, or its options do not parse
    environment = compose_environment(service, {**COMPOSE_VARIABLES, "ALERTS_DESTINATIONS": ALERTS})
    assert environment, f"{name}: no environment"
    settings = settings_from(environment, monkeypatch)
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.data_dir == Path("/data")


def test_the_roles_named_are_roles() -> None:
    """`sink NAME` and `worker --role NAME` check their NAME when they run, not when they
    parse: a misspelled one would only show in a container that keeps restarting."""
    commands = [s["command"] for s in factorstream_services().values()]
    commands += [c.spec["args"] for c in CONTAINERS]
    for command in commands:
        if command[0] == "sink":
            assert command[1] in set(ROLES) - {"folds"}, command
        if command[0] == "worker":
            named = [command[i + 1] for i, word in enumerate(command) if word == "--role"]
            assert named and set(named) <= set(ROLES), command


def test_a_misspelled_command_or_option_is_caught() -> None:
    with pytest.raises(NoSuchCommand, match="no-such-option"):
        cli_command(["sink", "ledger", "--no-such-option"])
    with pytest.raises(NoSuchCommand, match="service"):
        cli_command(["service"])  # the MFA service is `serve`
    with pytest.raises(NoSuchCommand):
        cli_command(["worker", "--role"])  # an option without its value


@pytest.mark.parametrize("name", sorted(factorstream_services()))
def test_probes_and_published_ports_are_where_the_process_listens(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = factorstream_services()[name]
    environment = compose_environment(service, {**COMPOSE_VARIABLES, "ALERTS_DESTINATIONS": ALERTS})
    settings = settings_from(environment, monkeypatch)
    probed = probed_by(service["command"])
    if probed is None:
        assert "healthcheck" not in service and "ports" not in service
        return
    bind, port = (setting(settings, dotted) for dotted in probed)
    assert bind == ANY_INTERFACE, f"{name}: binds {bind}: unreachable from outside its container"
    for published in service.get("ports", []):
        host_ip, host_port, container_port = str(published).split(":")
        assert int(container_port) == port, f"{name}: publishes {container_port}, listens {port}"
        assert host_ip == "127.0.0.1", f"{name}: published beyond the host's loopback"
    test = service["healthcheck"]["test"]
    url = urlsplit(test[-1])
    assert test[:2] == ["CMD", "python"] and url.hostname == "127.0.0.1"
    assert url.port == port and url.path in ("/ready", "/health")


def test_no_password_has_a_default() -> None:
    """Without POSTGRES_PASSWORD (.env) compose refuses to start anything using it."""
    uses_database = [
        name
        for name, service in compose_services().items()
        if "POSTGRES_PASSWORD" in str(service.get("environment", ""))
    ]
    assert {"postgres", "ledger", "relay", "service", "ingest", "dashboard"} <= set(uses_database)
    for name in uses_database:
        with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
            compose_environment(compose_services()[name], {})
    for name, service in compose_services().items():
        for key, value in (service.get("environment") or {}).items():
            if "PASSWORD" in key or re.search(r"://[^/@]*@", str(value)):  # a URL's password
                assert "${" in str(value), f"{name}: {key} is written in the file"


def test_the_lockout_api_token_is_a_mounted_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    document = compose_file()
    for name in ("worker", "worker-2"):
        service = compose_services()[name]
        settings = settings_from(compose_environment(service, COMPOSE_VARIABLES), monkeypatch)
        token = settings.stream.api_token_file
        assert token is not None and token.parent == Path("/run/secrets")
        assert token.name in service["secrets"] and token.name in document["secrets"]


def test_a_second_worker_is_a_distinct_member_of_the_same_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one, two = compose_services()["worker"], compose_services()["worker-2"]
    assert one["command"] == two["command"] and two["profiles"] == ["scale-out"]
    first = settings_from(compose_environment(one, COMPOSE_VARIABLES), monkeypatch)
    second = settings_from(compose_environment(two, COMPOSE_VARIABLES), monkeypatch)
    assert first.stream.app_id == second.stream.app_id  # one consumer group
    assert first.stream.web_host == "worker" and second.stream.web_host == "worker-2"
    assert first.stream.standby_replicas >= 1
    state = [
        {v.split(":")[0] for v in s["volumes"] if v.endswith(":/data/streams")} for s in (one, two)
    ]
    assert all(len(s) == 1 for s in state) and state[0] != state[1], "one state volume each"


def test_kafka_is_the_pinned_apache_image_in_kraft_mode() -> None:
    kafka = compose_services()["kafka"]
    env = kafka["environment"]
    assert kafka["image"].split("@")[0] == f"apache/kafka:{KAFKA_VERSION}"  # as `kafka up`
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # the `topics` service makes them
    assert len(env["CLUSTER_ID"]) == 22
    assert env["KAFKA_LOG_DIRS"] in {volume.split(":")[1] for volume in kafka["volumes"]}
    assert kafka["healthcheck"]["test"]


def test_postgres_is_healthchecked_persistent_and_has_every_database() -> None:
    postgres = compose_services()["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    (init,) = [v for v in postgres["volumes"] if "docker-entrypoint-initdb.d" in v]
    created = set(re.findall(r"CREATE DATABASE (\w+)", (ROOT / init.split(":")[0]).read_text()))
    named = {
        url.rsplit("/", 1)[1]
        for service in factorstream_services().values()
        for key, url in compose_environment(service, COMPOSE_VARIABLES).items()
        if "postgres:5432" in url
    }
    assert named == created | {postgres["environment"]["POSTGRES_DB"]}


USES_POSTGRES = [["sink", "ledger"], ["relay"], ["serve"], ["ingest", "serve"], ["dashboard"]]
NOT_KAFKA_CLIENTS = [["serve"], ["dashboard"]]  # the service's stream view is off


def test_each_role_waits_for_what_it_needs() -> None:
    """A healthy PostgreSQL before a process that uses it, a completed topic set-up (after
    a healthy Kafka) before a Kafka client."""
    assert compose_services()["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name, service in factorstream_services().items():
        needs, command = service.get("depends_on", {}), service["command"]
        if command in USES_POSTGRES:
            assert needs["postgres"]["condition"] == "service_healthy", name
        if command not in NOT_KAFKA_CLIENTS and name != "topics":
            assert needs["topics"]["condition"] == "service_completed_successfully", name


def test_dependencies_name_services_of_the_file() -> None:
    services = compose_services()
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, f"{name} depends on {needed}, which is not defined"
    assert services["topics"]["command"] == ["kafka", "topics"]


# -- Kubernetes ------------------------------------------------------------------------------------


DOCUMENTS = kubernetes_documents()
MAPS = config_maps(DOCUMENTS)
CONTAINERS = list(containers(DOCUMENTS))


def container_settings(container: Container, monkeypatch: pytest.MonkeyPatch) -> Settings:
    return settings_from(container_environment(container, MAPS), monkeypatch)


@pytest.mark.parametrize("container", CONTAINERS, ids=lambda c: c.workload)
def test_each_workload_runs_a_real_command_with_real_settings_as_the_image_user(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert container.spec["image"] == OUR_IMAGE
    cli_command(container.spec["args"])
    settings = container_settings(container, monkeypatch)
    security = container.pod["securityContext"]
    users = [i.arguments for i in dockerfile_instructions() if i.keyword == "USER"]
    assert security["runAsNonRoot"] and str(security["runAsUser"]) == users[-1].split(":")[0]
    requests = container.spec["resources"]["requests"]
    assert requests["cpu"] and requests["memory"], "sized from the benchmarks"
    mounts = [Path(m["mountPath"]) for m in container.spec.get("volumeMounts", [])]
    for name, value in container_environment(container, MAPS).items():
        if name.endswith("_FILE") or name.endswith("_FILES"):
            for path in re.findall(r"/[\w./-]+", value):
                assert any(Path(path).is_relative_to(m) for m in mounts), f"{path}: not mounted"
    # in a volume, and not its root: kubelet owns that (docs/deployment.md)
    assert any(settings.data_dir.parent == m for m in mounts), "the data dir is in a volume"


@pytest.mark.parametrize("container", CONTAINERS, ids=lambda c: c.workload)
def test_each_workload_mounts_only_the_keys_it_reads(container: Container) -> None:
    named = {
        Path(path).name
        for name, value in container_environment(container, MAPS).items()
        if name.endswith(("_FILE", "_FILES"))
        for path in re.findall(r"/etc/factorstream/keys/[\w.-]+", value)
    }
    mounted = {
        item["key"]
        for volume in container.pod["volumes"]
        if volume.get("secret", {}).get("secretName") == "factorstream-keys"
        for item in volume["secret"]["items"]
    }
    assert mounted == named, "a key the workload does not read, or one missing"


@pytest.mark.parametrize("container", CONTAINERS, ids=lambda c: c.workload)
def test_probes_are_where_the_process_listens(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    probed = probed_by(container.spec["args"])
    if probed is None:
        assert "readinessProbe" not in container.spec
        return
    settings = container_settings(container, monkeypatch)
    bind, port = (setting(settings, dotted) for dotted in probed)
    assert bind == ANY_INTERFACE
    assert [p["containerPort"] for p in container.spec["ports"]] == [port]
    ready, alive = container.spec["readinessProbe"], container.spec["livenessProbe"]
    assert ready["httpGet"] == {"path": "/ready", "port": port}
    assert alive["httpGet"] == {"path": "/health", "port": port}


def test_the_worker_is_a_stateful_set_with_its_state_on_a_volume(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (worker,) = [d for d in DOCUMENTS if d["kind"] == "StatefulSet"]
    (claim,) = worker["spec"]["volumeClaimTemplates"]
    (container,) = [c for c in CONTAINERS if c.workload == worker["metadata"]["name"]]
    settings = container_settings(container, monkeypatch)
    assert {"name": claim["metadata"]["name"], "mountPath": str(settings.data_dir.parent)} in (
        container.spec["volumeMounts"]
    )
    assert settings.stream.standby_replicas >= 1
    assert settings.stream.web_host == "worker-0.worker"  # the headless Service's pod name
    partitions = settings.topics.events_partitions
    assert 1 < worker["spec"]["replicas"] <= partitions


def strimzi(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in DOCUMENTS if d["kind"] == kind}


def test_the_topics_are_the_pipelines(monkeypatch: pytest.MonkeyPatch) -> None:
    (worker,) = [c for c in CONTAINERS if c.spec["args"][0] == "worker"]
    names = container_settings(worker, monkeypatch).topics
    declared = {name: t["spec"]["partitions"] for name, t in strimzi("KafkaTopic").items()}
    assert {**names.partitions(), Settings().alerts.dead_letter_topic: 3} == declared
    for topic, config in names.configs().items():
        assert strimzi("KafkaTopic")[topic]["spec"]["config"] == config
    (kafka,) = strimzi("Kafka").values()
    assert kafka["spec"]["kafka"]["version"] == KAFKA_VERSION
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"  # no ACL: denied


def strimzi_grants(user: str) -> set[AclGrant]:
    grants = set()
    for acl in strimzi("KafkaUser")[user]["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        for operation in acl["operations"]:
            grants.add(
                AclGrant(
                    f"User:{user}",
                    operation.upper(),
                    resource["type"].upper(),
                    resource["name"],
                    prefixed=resource["patternType"] == "prefix",
                )
            )
    return grants


def test_the_users_have_the_grants_of_the_pipeline() -> None:
    expected = pipeline_acls(
        TopicSettings(),
        app_id=Settings().stream.app_id,
        worker="factorstream-worker",
        services=["factorstream-service"],
        auditors=["factorstream-auditor"],
    )
    for user in ("factorstream-worker", "factorstream-service", "factorstream-auditor"):
        mine = {g for g in expected if g.principal == f"User:{user}"}
        assert strimzi_grants(user) == mine, user
    assert (
        "factorstream-admin"
        in strimzi("Kafka")["factorstream"]["spec"]["kafka"]["authorization"]["superUsers"]
    )


@pytest.mark.parametrize("container", CONTAINERS, ids=lambda c: c.workload)
def test_each_kafka_client_signs_in_as_a_user_with_its_password(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = container_environment(container, MAPS)
    user = environment.get("FACTORSTREAM_KAFKA_SECURITY__USERNAME")
    if user is None:
        assert "FACTORSTREAM_KAFKA_BOOTSTRAP" not in environment  # no Kafka client
        return
    assert user in strimzi("KafkaUser")
    (password,) = [
        e for e in container.spec["env"] if e["name"] == "FACTORSTREAM_KAFKA_SECURITY__PASSWORD"
    ]
    assert password["valueFrom"]["secretKeyRef"] == {"name": user, "key": "password"}
    settings = container_settings(container, monkeypatch)
    assert settings.kafka().protocol == "SASL_SSL"
