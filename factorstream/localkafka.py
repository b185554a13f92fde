"""A local, single-node Apache Kafka broker (KRaft) without Docker.

The official Apache Kafka jars are provisioned from Maven Central with the machine's
``mvn`` into a cache shared by every data dir, and the broker runs on the machine's JDK
(17+) as a detached process that outlives the command that started it. Its state lives
in one data dir, so stopping (even with ``kill -9``) and starting again keeps the data. A
broker started with a :class:`BrokerSecurity` listens with SASL_SSL only (SCRAM over TLS,
every ACL explicit). Everything here is plain functions and one class; the CLI
(``factorstream kafka``) and the test fixture (``tests/kafka_broker.py``) drive the same
code. The data dir's layout and the security model:
docs/deployment.md#without-docker-a-local-broker.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from factorstream.localtls import BrokerTls, issue_broker_tls
from factorstream.settings import KAFKA_VERSION, TopicSettings
from verifiers.kafka_connection import (
    KafkaConnection,
    KafkaTarget,
    SaslMechanism,
    as_connection,
    kafka_python_config,
)

LOG4J_SLF4J_VERSION = "2.24.3"
"""log4j2 binding for the broker's slf4j logging (Kafka ships no binding in its pom)."""

DEPENDENCY_PLUGIN_VERSION = "2.8"
"""maven-dependency-plugin version pinned in the provisioning pom (verified here)."""

INSTALL_HINT = (
    "Install a JDK 17+ (e.g. `apt-get install openjdk-17-jdk-headless`) and Apache Maven "
    "(e.g. `apt-get install maven`), or run Kafka with Docker instead: "
    "`docker compose up kafka` (then FACTORSTREAM_KAFKA_BOOTSTRAP=127.0.0.1:9094)."
)

HEAP = "512m"
"""Maximum JVM heap of a local broker."""

_COMPLETE_MARKER = ".complete"
_TOPIC_ALREADY_EXISTS = 36
_TAIL_LINES = 30


class KafkaUnavailable(RuntimeError):
    """A local Kafka broker cannot be provisioned, started or reached; the message says why."""


# --- tools -----------------------------------------------------------------------------


def require_tools(*names: str, path: str | None = None) -> dict[str, str]:
    """Absolute paths of the named executables (``java``, ``mvn``) found on ``path``.

    Raises KafkaUnavailable naming every missing one and what to install instead.
    """
    found = {name: shutil.which(name, path=path) for name in names}
    missing = [name for name, where in found.items() if where is None]
    if missing:
        listed = ", ".join(f"`{name}`" for name in missing)
        raise KafkaUnavailable(
            f"{listed} not found on PATH (a local Kafka broker runs on a JDK and is "
            f"provisioned with Maven). {INSTALL_HINT}"
        )
    return {name: where for name, where in found.items() if where is not None}


# --- provisioning ----------------------------------------------------------------------


def provisioning_dir(version: str, cache_dir: Path) -> Path:
    """Where the jars of Kafka ``version`` are provisioned (shared by every data dir)."""
    return Path(cache_dir).expanduser().resolve() / f"kafka-{version}"


def render_pom(version: str) -> str:
    """A tiny Maven project whose runtime dependencies are the Kafka broker's classpath."""
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>factorstream</groupId>
  <artifactId>kafka-dist</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{LOG4J_SLF4J_VERSION}</version>
    </dependency>
  </dependencies>
  <build>
    <pluginManagement>
      <plugins>
        <plugin>
          <groupId>org.apache.maven.plugins</groupId>
          <artifactId>maven-dependency-plugin</artifactId>
          <version>{DEPENDENCY_PLUGIN_VERSION}</version>
        </plugin>
      </plugins>
    </pluginManagement>
  </build>
</project>
"""


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_file`` (blocks other processes)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def provision(version: str, cache_dir: Path) -> Path:
    """The classpath dir (``libs/``) of Apache Kafka ``version``, provisioned if needed.

    Resolves ``org.apache.kafka:kafka_2.13:<version>`` and its runtime dependencies from
    Maven Central with ``mvn`` (~25 s cold, instant once done). Idempotent, and safe
    for concurrent callers: the first one provisions under a file lock, the others wait.
    """
    home = provisioning_dir(version, cache_dir)
    libs = home / "libs"
    if (home / _COMPLETE_MARKER).exists():
        return libs
    mvn = require_tools("java", "mvn")["mvn"]
    with _locked(home / ".lock"):
        if (home / _COMPLETE_MARKER).exists():
            return libs
        _run_maven(mvn, home, version)
        jar = libs / f"kafka_2.13-{version}.jar"
        if not jar.exists():
            raise KafkaUnavailable(f"Maven finished but {jar} is missing; see {home}/mvn.log")
        (home / _COMPLETE_MARKER).write_text(f"{len(list(libs.glob('*.jar')))} jars\n")
    return libs


def _run_maven(mvn: str, home: Path, version: str) -> None:
    """Copy the runtime dependencies of the provisioning pom into ``home/libs``."""
    (home / "pom.xml").write_text(render_pom(version))
    shutil.rmtree(home / "libs", ignore_errors=True)  # a partial earlier attempt
    log = home / "mvn.log"
    command = [
        mvn,
        "-q",
        "-B",
        "dependency:copy-dependencies",
        "-DoutputDirectory=libs",
        "-DincludeScope=runtime",
    ]
    with log.open("w") as out:
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            command, cwd=home, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        raise KafkaUnavailable(
            f"provisioning Apache Kafka {version} with Maven failed (exit {result.returncode}; "
            f"needs network access to Maven Central once):\n{_tail(log)}"
        )


# --- configuration ---------------------------------------------------------------------

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
_UNSAFE_IN_CREDENTIALS = set(",[]=\"\\'") | {" "}
"""Characters that would break out of ``--add-scram``'s or the JAAS line's quoting."""


@dataclass(frozen=True)
class BrokerSecurity:
    """A local broker's SASL_SSL listener: its super user (created with the storage) and
    SCRAM mechanism. Other users and ACLs are made with the admin client once it runs."""

    admin_user: str
    admin_password: str = field(repr=False)
    mechanism: SaslMechanism = "SCRAM-SHA-512"

    def __post_init__(self) -> None:
        for what, value in (("user", self.admin_user), ("password", self.admin_password)):
            if not value or _UNSAFE_IN_CREDENTIALS & set(value):
                raise ValueError(
                    f"the broker's admin {what} must be non-empty, without spaces, quotes, "
                    "backslashes, commas, brackets or '='"
                )

    def scram_argument(self) -> str:
        """``kafka-storage format --add-scram``'s value for the admin user."""
        return f"{self.mechanism}=[name={self.admin_user},password={self.admin_password}]"

    def jaas(self) -> str:
        """The JAAS line the broker signs in to itself with (inter-broker traffic)."""
        return (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{self.admin_user}" password="{self.admin_password}";'
        )


def secured_properties(
    *, host: str, port: int, controller_port: int, security: BrokerSecurity, tls: BrokerTls
) -> dict[str, str]:
    """What a broker with :class:`BrokerSecurity` sets over the PLAINTEXT defaults."""
    mechanism = security.mechanism.lower()
    return {
        "listeners": f"SASL_SSL://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"SASL_SSL://{host}:{port}",
        "inter.broker.listener.name": "SASL_SSL",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SSL",
        "sasl.enabled.mechanisms": security.mechanism,
        "sasl.mechanism.inter.broker.protocol": security.mechanism,
        f"listener.name.sasl_ssl.{mechanism}.sasl.jaas.config": security.jaas(),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls.keystore_file),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls.ca_file),
        "ssl.endpoint.identification.algorithm": "https",
        # SCRAM users live in the metadata log, which the controller serves: its listener
        # takes the broker's own certificate instead
        "listener.name.controller.ssl.client.auth": "required",
        "authorizer.class.name": AUTHORIZER,
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{security.admin_user};{tls.principal}",
    }


def render_server_properties(
    *,
    host: str,
    port: int,
    controller_port: int,
    log_dir: Path,
    secured: Mapping[str, str] | None = None,
) -> str:
    """``server.properties`` of a single-node KRaft broker that is also its controller
    (PLAINTEXT, or what ``secured`` sets: :func:`secured_properties`)."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "10",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # After a kill -9 the old registration blocks a restart until its session expires
        # (9 s by default); a local broker heartbeats to itself, so a short one is safe.
        "broker.heartbeat.interval.ms": "1000",
        "broker.session.timeout.ms": "4000",
        "auto.create.topics.enable": "false",
        **(secured or {}),
    }
    lines = ["# Written by factorstream (factorstream.localkafka); rewritten on every start."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def render_log4j2(log_file: Path) -> str:
    """log4j2 configuration: the broker logs to ``log_file`` (rolled at 20 MB, 3 kept)."""
    return f"""# Written by factorstream (factorstream.localkafka).
status = warn
shutdownHook = disable
name = factorstream-kafka
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.filePattern = {log_file}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
"""


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, base64url without padding (22 characters).

    Like Kafka's ``Uuid.randomUuid()``, ids starting with ``-`` are avoided (they read
    as command-line options).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


# --- the broker ------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerStatus:
    """Whether the broker of a data dir is running, its pid and where clients connect."""

    running: bool
    pid: int | None
    bootstrap: str
    data_dir: Path


class LocalKafka:
    """A single-node Apache Kafka broker (KRaft, broker + controller) owned by a data dir.

    ``start()`` provisions the jars, formats the storage once, launches the broker
    detached (it keeps running after this process exits) and waits until it answers.
    ``stop()`` shuts it down gracefully (SIGTERM, then SIGKILL); ``kill()`` is the
    ``kill -9`` outage. Starting again on the same data dir keeps every topic and message.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        port: int,
        controller_port: int | None = None,
        cache_dir: Path,
        version: str = KAFKA_VERSION,
        host: str = "127.0.0.1",
        security: BrokerSecurity | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.port = port
        self.controller_port = controller_port if controller_port is not None else port + 1
        self.cache_dir = Path(cache_dir)
        self.version = version
        self.host = host
        self.security = security

    # paths
    @property
    def bootstrap(self) -> str:
        """``host:port`` that clients bootstrap from (as configured for the next start)."""
        return f"{self.host}:{self.port}"

    @property
    def server_properties(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def tls(self) -> BrokerTls:
        """The broker's TLS files (made on the first secured start)."""
        return BrokerTls(self.data_dir / "tls")

    def connection(self) -> KafkaConnection:
        """How a client reaches this broker: PLAINTEXT, or (secured) SCRAM over TLS as the
        admin user, trusting the data dir's CA."""
        if self.security is None:
            return KafkaConnection(bootstrap=self.bootstrap)
        return KafkaConnection(
            bootstrap=self.bootstrap,
            protocol="SASL_SSL",
            sasl_mechanism=self.security.mechanism,
            username=self.security.admin_user,
            password=self.security.admin_password,
            ca_file=self.tls.ca_file,
        )

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def log_dir(self) -> Path:
        """KRaft metadata and topic partitions (``log.dirs``)."""
        return self.data_dir / "data"

    @property
    def server_log(self) -> Path:
        return self.data_dir / "logs" / "server.log"

    @property
    def stdout_log(self) -> Path:
        return self.data_dir / "logs" / "stdout.log"

    def __repr__(self) -> str:
        return f"LocalKafka(data_dir={self.data_dir!s}, bootstrap={self.bootstrap})"

    # state
    def status(self) -> BrokerStatus:
        """Whether this data dir's broker runs; a stale pid file counts as not running."""
        pid = self.running_pid()
        return BrokerStatus(
            running=pid is not None,
            pid=pid,
            bootstrap=self._configured_bootstrap() if pid is not None else self.bootstrap,
            data_dir=self.data_dir,
        )

    def running_pid(self) -> int | None:
        """Pid of this data dir's live broker, or None (no pid file, or a stale one)."""
        pid = _read_pid(self.pid_file)
        if pid is None or not _is_alive(pid, marker=str(self.server_properties)):
            return None
        return pid

    # lifecycle
    def start(self, *, timeout: float = 90.0) -> bool:
        """Start the broker and wait until it answers; False if it was already running.

        Raises KafkaUnavailable when java/mvn are missing, a port is taken, or the broker
        exits or stays silent for ``timeout`` seconds (with the last lines of its log);
        a broker that started but never answered is killed, so nothing is left behind.
        Concurrent callers on one data dir are serialised: one starts, the others wait.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with _locked(self.data_dir / ".lock"):
            if self.running_pid() is not None:
                return False
            self.pid_file.unlink(missing_ok=True)  # stale: its process is gone
            self._check_ports_free()
            java = require_tools("java")["java"]
            libs = provision(self.version, self.cache_dir)
            self._write_config()
            self._format_storage(java, libs)
            pid = self._launch(java, libs)
            self.pid_file.write_text(f"{pid}\n")
            try:
                self.wait_ready(timeout=timeout)
            except KafkaUnavailable:
                self.kill()
                raise
        return True

    def wait_ready(self, *, timeout: float = 90.0) -> None:
        """Block until the broker answers a metadata request (or raise KafkaUnavailable)."""
        deadline = time.monotonic() + timeout
        while True:
            pid = self.running_pid()
            if pid is None:
                self.pid_file.unlink(missing_ok=True)
                raise KafkaUnavailable(f"the Kafka broker exited during start:\n{self.last_log()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KafkaUnavailable(
                    f"the Kafka broker (pid {pid}) did not answer on {self.bootstrap} within "
                    f"{timeout:.0f} s:\n{self.last_log()}"
                )
            if _accepts(self.host, self.port) and _answers(
                self.connection(), timeout=min(remaining, 5.0)
            ):
                return
            time.sleep(0.2)

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Shut the broker down gracefully (SIGTERM, SIGKILL after ``timeout`` s).

        Returns False if it was not running. A stale pid file is removed either way.
        """
        pid = self.running_pid()
        if pid is not None:
            _signal(pid, signal.SIGTERM)
            if not _wait_gone(pid, marker=str(self.server_properties), timeout=timeout):
                _signal(pid, signal.SIGKILL)
                _wait_gone(pid, marker=str(self.server_properties), timeout=10.0)
        self.pid_file.unlink(missing_ok=True)
        return pid is not None

    def kill(self) -> bool:
        """Stop the broker hard (``kill -9``), like a crash or an outage. False if not running."""
        pid = self.running_pid()
        if pid is not None:
            _signal(pid, signal.SIGKILL)
            _wait_gone(pid, marker=str(self.server_properties), timeout=10.0)
        self.pid_file.unlink(missing_ok=True)
        return pid is not None

    def last_log(self, lines: int = _TAIL_LINES) -> str:
        """The last lines of the broker's log and of the JVM's output (for error messages)."""
        parts = [_tail(path, lines) for path in (self.server_log, self.stdout_log)]
        return "\n".join(part for part in parts if part) or "(no broker output)"

    # steps of start()
    def _check_ports_free(self) -> None:
        for name, port in (("port", self.port), ("controller port", self.controller_port)):
            if not port_is_free(self.host, port):
                raise KafkaUnavailable(
                    f"{name} {self.host}:{port} is already in use (another broker?); "
                    "choose another with --port / --controller-port"
                )

    def _write_config(self) -> None:
        self.server_log.parent.mkdir(parents=True, exist_ok=True)
        secured = None
        if self.security is not None:
            if not self.tls.exists():
                hosts = sorted({self.host, "localhost", "127.0.0.1"})
                issue_broker_tls(self.tls.directory, hosts=hosts, now=datetime.now(UTC))
            secured = secured_properties(
                host=self.host,
                port=self.port,
                controller_port=self.controller_port,
                security=self.security,
                tls=self.tls,
            )
        text = render_server_properties(
            host=self.host,
            port=self.port,
            controller_port=self.controller_port,
            log_dir=self.log_dir,
            secured=secured,
        )
        # it holds the admin password when secured: the owner's alone, whatever the umask
        descriptor = os.open(self.server_properties, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        self.server_properties.chmod(0o600)
        (self.data_dir / "log4j2.properties").write_text(render_log4j2(self.server_log))

    def _java_command(self, java: str, libs: Path, main: str, *args: str) -> list[str]:
        return [
            java,
            f"-Xmx{HEAP}",
            # G1 (the JVM's default) allocates a produce or fetch buffer of half a region
            # (512 KiB in this heap) or more in the old generation and marks it concurrently:
            # the worker's record batches kept it busy, three times the broker's own work.
            # A serial collector of the young generation frees them for a tenth of that.
            "-XX:+UseSerialGC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp",
            str(libs / "*"),
            main,
            *args,
        ]

    def _format_storage(self, java: str, libs: Path) -> None:
        """Format the KRaft storage once (a formatted log dir has ``meta.properties``), with
        the admin's SCRAM credentials when secured (they exist only from that moment on)."""
        admin_file = self.data_dir / "sasl-admin"
        if (self.log_dir / "meta.properties").exists():
            formatted_for = admin_file.read_text().strip() if admin_file.exists() else None
            if self.security is not None and formatted_for != self.security.admin_user:
                raise KafkaUnavailable(
                    f"the Kafka storage in {self.log_dir} was formatted without the SASL user "
                    f"{self.security.admin_user!r}: start a secured broker on a new data dir"
                )
            return
        cluster_id = new_cluster_id()
        command = self._java_command(
            java,
            libs,
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            cluster_id,
            "-c",
            str(self.server_properties),
            *(("--add-scram", self.security.scram_argument()) if self.security else ()),
        )
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            command, capture_output=True, text=True, check=False, timeout=120
        )
        if result.returncode != 0:
            raise KafkaUnavailable(
                f"formatting Kafka storage in {self.log_dir} failed:\n"
                f"{result.stdout}{result.stderr}"
            )
        (self.data_dir / "cluster.id").write_text(f"{cluster_id}\n")
        if self.security is not None:
            admin_file.write_text(f"{self.security.admin_user}\n")

    def _launch(self, java: str, libs: Path) -> int:
        """Spawn ``kafka.Kafka`` detached (own session); returns its pid."""
        command = self._java_command(java, libs, "kafka.Kafka", str(self.server_properties))
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        file_actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(self.stdout_log), flags, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        restored = (signal.SIGPIPE, signal.SIGXFSZ)  # ignored by Python, default for the JVM
        spawn: dict[str, Any] = {"file_actions": file_actions, "setsigdef": restored}
        try:
            return os.posix_spawn(java, command, dict(os.environ), setsid=True, **spawn)
        except NotImplementedError:  # no POSIX_SPAWN_SETSID: a new process group will do
            return os.posix_spawn(java, command, dict(os.environ), setpgroup=0, **spawn)

    def _configured_bootstrap(self) -> str:
        """The advertised address in this data dir's ``server.properties``."""
        try:
            text = self.server_properties.read_text()
        except FileNotFoundError:
            return self.bootstrap
        match = re.search(r"^advertised\.listeners=\w+://(\S+?)(,|$)", text, re.MULTILINE)
        return match.group(1) if match else self.bootstrap


# --- processes -------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now (TIME_WAIT leftovers don't count).

    Like the JVM's server sockets, the probe sets SO_REUSEADDR, so only a listening socket
    (another broker, another program) makes the port busy.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _is_alive(pid: int, *, marker: str) -> bool:
    """Whether ``pid`` is a live (not zombie) process whose command line has ``marker``.

    The marker (the data dir's ``server.properties`` path) guards against a recycled pid.
    A dead child of this very process is reaped here.
    """
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    proc = Path("/proc") / str(pid)
    if not proc.exists():
        return True  # no procfs (macOS): trust the signal check
    try:
        fields = dict(
            line.split(":", 1) for line in (proc / "status").read_text().splitlines() if ":" in line
        )
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    # A JVM's main thread can be a zombie while its other threads (and sockets) live on;
    # its command line then reads empty, as it does for a moment right after the spawn.
    zombie = fields.get("State", "").strip().startswith("Z")
    threads = int(fields.get("Threads", "1").strip() or "1")
    if zombie and threads <= 1:
        return False
    return marker in cmdline or zombie or not cmdline


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _wait_gone(pid: int, *, marker: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _is_alive(pid, marker=marker):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _tail(path: Path, lines: int = _TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# --- clients ---------------------------------------------------------------------------


@contextlib.contextmanager
def admin_client(kafka: KafkaTarget, *, timeout: float = 30.0) -> Iterator[Any]:
    """A kafka-python ``KafkaAdminClient`` for ``kafka`` (a connection, or a bootstrap
    string: PLAINTEXT), closed afterwards.

    Raises KafkaUnavailable when no broker answers within ``timeout`` seconds.
    """
    timeout_ms = int(timeout * 1000)
    try:
        client = KafkaAdminClient(
            **kafka_python_config(kafka),
            client_id="factorstream-admin",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
        )
    except KafkaError as error:
        where = as_connection(kafka).describe()
        raise KafkaUnavailable(f"no Kafka broker answers at {where}: {error}") from error
    try:
        yield client
    finally:
        client.close()


def ensure_pipeline_topics(
    kafka: KafkaTarget,
    topics: TopicSettings,
    *,
    timeout: float = 30.0,
    retention: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """:func:`ensure_topics` for every topic of the pipeline, with its configuration;
    ``retention``: each topic's retention configs as well (what the retention policy
    wants, ``factorstream.retention_config.topic_retention_configs``)."""
    configs: dict[str, dict[str, str]] = {name: {} for name in topics.partitions()}
    for name, extra in (*(retention or {}).items(), *topics.configs().items()):
        if name in configs:
            configs[name].update(extra)
    return ensure_topics(kafka, topics.partitions(), configs=configs, timeout=timeout)


def _accepts(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port`` (cheap, before a client)."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _answers(kafka: KafkaTarget, *, timeout: float) -> bool:
    """Whether a broker at ``kafka`` answers a metadata request within ``timeout`` s."""
    try:
        with admin_client(kafka, timeout=timeout) as client:
            client.list_topics()
    except (KafkaUnavailable, KafkaError, OSError):
        return False
    return True


def ensure_topics(
    kafka: KafkaTarget,
    partitions: Mapping[str, int],
    *,
    configs: Mapping[str, Mapping[str, str]] | None = None,
    timeout: float = 30.0,
) -> list[str]:
    """Create the missing topics (name -> partition count), each with its ``configs``
    (name -> topic configuration); returns the ones created.

    Idempotent: a topic that already exists is left as it is (its partition count and
    configuration are not changed). Replication uses the broker's default (1 on a local
    broker).
    """
    where = as_connection(kafka).describe()
    try:
        with admin_client(kafka, timeout=timeout) as client:
            existing = set(client.list_topics())
            wanted = {
                name: {
                    "num_partitions": count,
                    "replication_factor": -1,
                    "configs": dict((configs or {}).get(name, {})),
                }
                for name, count in partitions.items()
                if name not in existing
            }
            if not wanted:
                return []
            result = client.create_topics(
                wanted,
                timeout_ms=int(timeout * 1000),
                raise_errors=False,
                wait_for_metadata=True,
            )
    except KafkaError as error:
        raise KafkaUnavailable(f"creating topics on {where} failed: {error}") from error
    failed = [
        f"{topic['name']}: {topic.get('error_message') or topic['error_code']}"
        for topic in result["topics"]
        if topic["error_code"] not in (0, _TOPIC_ALREADY_EXISTS)
    ]
    if failed:
        raise KafkaUnavailable(f"creating topics on {where} failed: {'; '.join(failed)}")
    return sorted(wanted)


def topic_partitions(kafka: KafkaTarget, *, timeout: float = 30.0) -> dict[str, int]:
    """Every (non-internal) topic on the cluster with its partition count."""
    try:
        with admin_client(kafka, timeout=timeout) as client:
            topics = client.describe_topics()
    except KafkaError as error:
        where = as_connection(kafka).describe()
        raise KafkaUnavailable(f"describing topics on {where} failed: {error}") from error
    return {
        topic["name"]: len(topic["partitions"])
        for topic in topics
        if not topic.get("is_internal", False)
    }
