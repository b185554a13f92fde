"""Reading the deployment files as Docker and Kubernetes would: the Dockerfile's
instructions, the compose file's services with their environment interpolated, and the
Kubernetes manifests' containers with the environment they get.

Shared by ``tests/unit/test_deployment_files.py`` (the files agree with the code) and
``tests/integration/test_deployment_roles.py`` (each role's command runs and gets healthy).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
KUBERNETES = ROOT / "deploy" / "kubernetes"

ANY_INTERFACE = "0.0.0.0"  # noqa: S104 - what a process in a container must bind
FROM_SECRET = "<from a Secret>"
"""What a Kubernetes ``valueFrom`` stands for here: a value the cluster fills in."""


# -- Dockerfile ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int
    """Which ``FROM`` this instruction follows (0: the first stage)."""


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """Every instruction, continuation lines joined, comments and blank lines dropped."""
    instructions: list[Instruction] = []
    stage, pending = -1, ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = (pending + stripped).strip()
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), arguments.strip(), max(stage, 0)))
    return instructions


def dockerfile_args(instructions: list[Instruction]) -> dict[str, str]:
    """The ``ARG name=default`` values declared before the first ``FROM``."""
    found = {}
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG" and "=" in instruction.arguments:
            name, _, value = instruction.arguments.partition("=")
            found[name.strip()] = value.strip()
    return found


def base_images(instructions: list[Instruction]) -> list[str]:
    """The image of each ``FROM``, its ``${ARG}`` replaced by the default."""
    args = dockerfile_args(instructions)
    images = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            image = instruction.arguments.split()[0]
            images.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image))
    return images


def env_of_stage(instructions: list[Instruction], stage: int) -> dict[str, str]:
    """The ``ENV`` of one stage (``KEY=value`` pairs; ``$PATH`` left as written)."""
    env: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "ENV" and instruction.stage == stage:
            for pair in shlex.split(instruction.arguments):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def exec_form(instruction: Instruction) -> list[str]:
    """The JSON (exec) form of ``ENTRYPOINT``/``CMD``/``VOLUME``."""
    value = yaml.safe_load(instruction.arguments)
    assert isinstance(value, list), f"{instruction.keyword} is not in exec form"
    return [str(part) for part in value]


# -- compose ---------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:\?|:-)(?P<word>[^}]*))?\}")


class MissingVariable(KeyError):
    """A ``${NAME:?message}`` whose variable is not set: compose refuses to start."""


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Compose's interpolation of ``${NAME}``, ``${NAME:-default}``, ``${NAME:?error}``."""

    def one(match: re.Match[str]) -> str:
        name, op, word = match.group("name"), match.group("op"), match.group("word")
        given = variables.get(name, "")
        if given:
            return given
        if op == ":?":
            raise MissingVariable(f"{name}: {word}")
        return word if op == ":-" else ""

    return _VARIABLE.sub(one, value)


def compose_file() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def compose_services() -> dict[str, dict[str, Any]]:
    services = compose_file()["services"]
    assert isinstance(services, dict)
    return services


def compose_environment(service: Mapping[str, Any], variables: Mapping[str, str]) -> dict[str, str]:
    """The environment compose gives ``service``, interpolated with ``variables`` (.env)."""
    given = service.get("environment") or {}
    if isinstance(given, list):
        given = dict(item.split("=", 1) for item in given)
    return {str(k): interpolate(str(v), variables) for k, v in given.items()}


def factorstream_services() -> dict[str, dict[str, Any]]:
    """The services that run the project's image (the others are Kafka and PostgreSQL)."""
    return {
        name: service
        for name, service in compose_services().items()
        if str(service.get("image", "")).startswith("factorstream:")
    }


# -- Kubernetes ------------------------------------------------------------------------------


def kubernetes_documents() -> list[dict[str, Any]]:
    """Every object of the manifests the kustomization lists, in its order."""
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    documents = []
    for name in kustomization["resources"]:
        text = (KUBERNETES / name).read_text(encoding="utf-8")
        documents += [d for d in yaml.safe_load_all(text) if d]
    return documents


def config_maps(documents: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        d["metadata"]["name"]: {str(k): str(v) for k, v in d.get("data", {}).items()}
        for d in documents
        if d["kind"] == "ConfigMap"
    }


@dataclass(frozen=True)
class Container:
    workload: str
    kind: str
    spec: dict[str, Any]
    pod: dict[str, Any]


def containers(documents: list[dict[str, Any]]) -> Iterator[Container]:
    for document in documents:
        if document["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
            pod = document["spec"]["template"]["spec"]
            for spec in pod.get("initContainers", []) + pod["containers"]:
                yield Container(document["metadata"]["name"], document["kind"], spec, pod)


def container_environment(
    container: Container, maps: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """The environment the container gets: its ConfigMaps (``envFrom``), then ``env``;
    a value from a Secret or the pod reads :data:`FROM_SECRET`."""
    env: dict[str, str] = {}
    for source in container.spec.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]])
    for item in container.spec.get("env", []):
        if "value" in item:
            env[item["name"]] = re.sub(
                r"\$\((\w+)\)", lambda m: env[m.group(1)], str(item["value"])
            )
        elif "fieldRef" in item["valueFrom"]:
            env[item["name"]] = f"{container.workload}-0"  # the pod's name, as a StatefulSet's
        else:
            env[item["name"]] = FROM_SECRET
    return env


# -- the CLI ---------------------------------------------------------------------------------


class NoSuchCommand(LookupError):
    """``factorstream <args>`` names no command, or its options or arguments do not parse."""


def cli_command(args: list[str]) -> Any:
    """The command ``factorstream <args>`` runs (typer's click, found as
    ``factorstream/docs.py`` walks it); raises :class:`NoSuchCommand` when there is none
    or when its options or arguments do not parse (parsed only: nothing runs)."""
    import typer

    from factorstream.cli import app

    command: Any = typer.main.get_command(app)
    path, rest = ["factorstream"], list(args)
    while hasattr(command, "list_commands"):  # a group
        if not rest or rest[0] not in command.list_commands(None):
            raise NoSuchCommand(f"{' '.join(path)}: no command {rest[:1]}")
        name, rest = rest[0], rest[1:]
        command, path = command.get_command(None, name), [*path, name]
    try:
        command.make_context(path[-1], rest)
    except Exception as error:  # typer's click: UsageError, BadParameter, NoSuchOption
        raise NoSuchCommand(f"{' '.join([*path, *rest])}: {error}") from error
    return command
