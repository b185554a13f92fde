"""Each role of docker-compose.yml runs as its container would, outside a container.

Containers cannot run here, so the image is rebuilt as the Dockerfile says, in a fresh
virtualenv: its COPY lines lay out a source tree, its two ``RUN pip install`` lines run
(the lock with ``--require-hashes``, then the project with ``--no-deps``), and the
processes start through its ENTRYPOINT (``factorstream``), with its ENV, as its USER
(uid 10001, via ``setpriv`` when the tests run as root), in its WORKDIR.

Then ``docker compose up``: the one-shot topic set-up, then every other service at once
(the default ones and the alerts), each with the environment the compose file gives it,
against the session's Kafka broker and PostgreSQL server (``tests/kafka_broker.py``,
``tests/postgres.py``), all sharing one data directory as they share the data volume.
Rewritten, and only these: host names (``kafka``, ``postgres``, a worker's own name) to
the test servers' addresses, ``/data`` and ``/run/secrets`` to temporary directories, a
port another role already has (the sinks each listen on 9103 in their own container) or
that is taken on this machine to a free one, and, so that nothing of another test's is
read or joined on the shared broker, the consumer group (app id) and topic names to names
of this module's own. Each role must pass its compose health check (run as Docker runs
it) and stop with exit 0 on SIGTERM.

The lock step runs in the fresh virtualenv over the packages the suite's own virtualenv
installed from the same lock (a ``.pth`` file): pip checks that every pin is satisfied and
installs nothing. A full download-and-install of the lock took 87 s here, warm cache.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from factorstream.localkafka import admin_client, free_port
from factorstream.settings import TopicSettings
from tests.deployment import (
    ANY_INTERFACE,
    ROOT,
    compose_environment,
    dockerfile_instructions,
    env_of_stage,
    exec_form,
    factorstream_services,
)
from tests.kafka_broker import KafkaBroker

SOURCE = "/src"
"""Where the Dockerfile's build stage lays out the project."""
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LONG_RUNNING = sorted(
    name
    for name, service in factorstream_services().items()
    if service.get("restart") != "no" and "profiles" not in service or name == "alerts"
)


@dataclass
class Image:
    """The image, outside a container: a virtualenv, its ENV, its entrypoint, its user."""

    root: Path
    venv: Path
    env: dict[str, str]
    entrypoint: list[str]
    user: tuple[int, int]
    workdir: str

    def command(self, args: list[str]) -> list[str]:
        entry = [str(self.venv / "bin" / self.entrypoint[0]), *self.entrypoint[1:], *args]
        if os.geteuid() != 0:
            return entry
        uid, gid = self.user
        return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *entry]


def _run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    assert result.returncode == 0, f"{shlex.join(command)}:\n{result.stdout}\n{result.stderr}"
    return result


def _lay_out_sources(root: Path) -> Path:
    """The build stage's COPY lines, into ``root`` + their destination."""
    for instruction in dockerfile_instructions():
        if instruction.keyword != "COPY" or instruction.stage != 0:
            continue
        *sources, destination = instruction.arguments.split()
        target = root / destination.lstrip("/")
        for source in sources:
            path = ROOT / source
            into = target / path.name if destination.endswith("/") else target
            into.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():
                shutil.copytree(path, into, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(path, into)
    return root / SOURCE.lstrip("/")


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    """The Dockerfile's install step in a fresh virtualenv, and what its runtime stage sets."""
    instructions = dockerfile_instructions()
    final = max(i.stage for i in instructions)
    root = Path(tempfile.mkdtemp(prefix="factorstream-image-"))
    root.chmod(0o755)  # the image's user reads the virtualenv
    try:
        source = _lay_out_sources(root / "build")
        venv = root / "opt" / "factorstream"
        _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
        purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        site = Path(_run([str(venv / "bin" / "python"), "-c", purelib]).stdout.strip())
        (site / "suite-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        installs = [
            shlex.split(i.arguments)
            for i in instructions
            if i.keyword == "RUN" and i.arguments.startswith("pip install") and i.stage == 0
        ]
        assert len(installs) == 2, installs
        for words in installs:
            pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
            args = [w.replace(SOURCE, str(source)) for w in words[1:]]
            _run([*pip, *args, "--disable-pip-version-check"], cwd=root)
        assert (venv / "bin" / "factorstream").exists()
        user = [i.arguments for i in instructions if i.keyword == "USER" and i.stage == final]
        uid, _, gid = user[-1].partition(":")
        (workdir,) = [i.arguments for i in instructions if i.keyword == "WORKDIR"]
        (entrypoint,) = [exec_form(i) for i in instructions if i.keyword == "ENTRYPOINT"]
        yield Image(
            root=root,
            venv=venv,
            env=env_of_stage(instructions, final),
            entrypoint=entrypoint,
            user=(int(uid), int(gid or uid)),
            workdir=workdir,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_installed_image_runs_from_its_own_copy(image: Image) -> None:
    """The entrypoint runs the project the install step put in the virtualenv, not the
    checkout's sources."""
    python = image.venv / "bin" / "python"
    found = _run(
        [str(python), "-c", "import factorstream, streams; print(factorstream.__file__)"],
        cwd=image.root,
        env={"PATH": SYSTEM_PATH},
    )
    assert Path(found.stdout.strip()).is_relative_to(image.venv)
    data = image.root / "help-data"
    env = {
        key: value.replace("$PATH", SYSTEM_PATH).replace("/data", str(data))
        for key, value in image.env.items()
    }
    help_text = _run(image.command(["kafka", "--help"]), cwd=image.root, env=env)
    assert "topics" in help_text.stdout and "grant" in help_text.stdout


# -- the roles --------------------------------------------------------------------------------


@dataclass
class Deployment:
    """Where the compose file's names point in this test."""

    image: Image
    kafka: str
    postgres: str  # host:port
    data: Path
    secrets: Path
    app_id: str
    topics: TopicSettings
    alerts_port: int
    ports: set[int] = field(default_factory=set)
    """Ports handed to the roles so far."""


def _owned_dir(path: Path, image: Image) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.geteuid() == 0:
        os.chown(path, *image.user)
    return path


@pytest.fixture(scope="module")
def deployment(image: Image, kafka_broker: KafkaBroker, postgres_url: str) -> Iterator[Deployment]:
    url = make_url(postgres_url)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    init = (ROOT / "deploy" / "compose" / "postgres-init.sql").read_text()
    wanted = ["factorstream", *re.findall(r"CREATE DATABASE (\w+)", init)]  # + POSTGRES_DB
    with engine.connect() as connection:
        have = set(connection.execute(sa.text("SELECT datname FROM pg_database")).scalars())
        for name in wanted:
            if name not in have:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    secrets = _owned_dir(image.root / "run-secrets", image)
    token = secrets / "lockout-api-token"
    token.write_text(uuid.uuid4().hex + "\n")
    if os.geteuid() == 0:
        os.chown(token, *image.user)
    unique = uuid.uuid4().hex[:8]
    yield Deployment(
        image=image,
        kafka=kafka_broker.bootstrap,
        postgres=f"{url.host}:{url.port}",
        data=_owned_dir(image.root / "data", image),
        secrets=secrets,
        app_id=f"deploy-{unique}",
        topics=TopicSettings.under(f"deploy.{unique}"),
        alerts_port=free_port(),
    )


def _free_or_other(port: int, taken: set[int]) -> int:
    """``port``, unless another role of this test has it or it is in use on this machine
    (the containers each have their own; here they share one): then a free one."""
    with contextlib.closing(socket.socket()) as probe:
        try:
            probe.bind((ANY_INTERFACE, port))
        except OSError:
            port = free_port()
    while port in taken:
        port = free_port()
    taken.add(port)
    return port


def role_environment(name: str, deployment: Deployment) -> tuple[dict[str, str], dict[int, int]]:
    """The environment compose gives service ``name`` (with .env's variables), over the
    image's ENV, rewritten to this test's servers and directories; and the ports moved."""
    image = deployment.image
    variables = {
        "POSTGRES_PASSWORD": "compose-env-password",  # trust authentication: not checked
        "ALERTS_DESTINATIONS": '[{"name": "soc", "kind": "syslog", "host": "127.0.0.1", '
        f'"port": {deployment.alerts_port}, "transport": "udp"}}]',
    }
    environment = {**image.env, **compose_environment(factorstream_services()[name], variables)}
    moved: dict[int, int] = {}

    def rewrite(key: str, value: str) -> str:
        value = value.replace("$PATH", SYSTEM_PATH).replace("/opt/factorstream", str(image.venv))
        value = value.replace("@postgres:5432/", f"@{deployment.postgres}/")
        value = value.replace("/run/secrets", str(deployment.secrets))
        if value == "kafka:9092":
            value = deployment.kafka
        if key.endswith("__WEB_HOST") and value in factorstream_services():
            value = "127.0.0.1"  # the name other workers reach this one by
        if value == "/data" or value.startswith("/data/"):
            value = str(deployment.data) + value[len("/data") :]
        if key.startswith("FACTORSTREAM_") and key.endswith("_PORT"):
            moved[int(value)] = _free_or_other(int(value), deployment.ports)
            value = str(moved[int(value)])
        return value

    environment = {key: rewrite(key, value) for key, value in environment.items()}
    environment.setdefault("LANG", "C.UTF-8")
    if name.startswith("worker") and "FACTORSTREAM_STREAM__WEB_PORT" not in environment:
        moved[6066] = _free_or_other(
            6066, deployment.ports
        )  # the worker's default port, as the image has it
        environment["FACTORSTREAM_STREAM__WEB_PORT"] = str(moved[6066])
    environment["FACTORSTREAM_STREAM__APP_ID"] = deployment.app_id  # isolation, see above
    for topic in ("events", "dlq", "lockouts", "anomalies", "checkpoints"):
        environment[f"FACTORSTREAM_TOPICS__{topic.upper()}"] = getattr(deployment.topics, topic)
    environment["FACTORSTREAM_ALERTS__DEAD_LETTER_TOPIC"] = f"{deployment.topics.events}.alerts"
    return environment, moved


@dataclass
class Role:
    """One compose service's process, outside its container."""

    name: str
    process: subprocess.Popen[str]
    environment: dict[str, str]
    moved: dict[int, int]
    log: IO[str]
    healthy_after: float | None = None

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()


@contextlib.contextmanager
def running(name: str, deployment: Deployment) -> Iterator[Role]:
    environment, moved = role_environment(name, deployment)
    command = deployment.image.command(factorstream_services()[name]["command"])
    workdir = deployment.data if deployment.image.workdir == "/data" else deployment.image.root
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(  # noqa: S603
            command, env=environment, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        try:
            yield Role(name, process, environment, moved, log)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def _healthcheck(role: Role) -> bool:
    """The compose health check, run as Docker runs it (exec form, the container's PATH)."""
    test = factorstream_services()[role.name]["healthcheck"]["test"]
    assert test[0] == "CMD"
    command = [
        re.sub(r":(\d+)/", lambda m: f":{role.moved.get(int(m[1]), int(m[1]))}/", word)
        for word in test[1:]
    ]
    executable = shutil.which(command[0], path=role.environment["PATH"])
    assert executable, f"{command[0]} is not on the image's PATH"
    checked = subprocess.run(  # noqa: S603
        [executable, *command[1:]],
        env=role.environment,
        capture_output=True,
        timeout=10,
        check=False,
    )
    return checked.returncode == 0


@pytest.fixture(scope="module")
def pipeline(deployment: Deployment) -> Iterator[dict[str, Role]]:
    """``docker compose up``: the one-shot topic set-up first (the others depend on it
    completing), then every other role at once, each until its health check passes."""
    with running("topics", deployment) as topics:
        assert topics.process.wait(timeout=90) == 0, topics.output()
    with admin_client(deployment.kafka) as client:
        assert set(deployment.topics.partitions()) <= set(client.list_topics())
    with contextlib.ExitStack() as stack:
        roles = {name: stack.enter_context(running(name, deployment)) for name in LONG_RUNNING}
        started, waiting = time.monotonic(), set(roles)
        while waiting and time.monotonic() < started + 180:
            for name in sorted(waiting):
                role = roles[name]
                if role.process.poll() is None and not _healthcheck(role):
                    continue
                if role.process.poll() is None:
                    role.healthy_after = time.monotonic() - started
                waiting.discard(name)
            time.sleep(0.5)
        yield roles


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_each_role_gets_healthy_and_stops_cleanly(name: str, pipeline: dict[str, Role]) -> None:
    role = pipeline[name]
    assert role.healthy_after is not None, (
        f"{name} never passed its health check (exit code {role.process.poll()}):\n" + role.output()
    )
    print(f"{name}: healthy {role.healthy_after:.1f} s after the start of all roles")
    role.process.send_signal(signal.SIGTERM)
    assert role.process.wait(timeout=45) == 0, (
        f"{name} did not stop cleanly on SIGTERM:\n{role.output()}"
    )
