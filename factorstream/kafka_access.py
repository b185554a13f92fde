"""Who may do what on the pipeline's topics: SCRAM users and the ACLs of least privilege.

The pipeline trusts what its topics say: an event on the events topic is folded,
ledgered and shown, a lockout on the lockouts topic is read by the sinks. So on a
cluster with an authorizer (``authorizer.class.name`` set, no ACL: denied):

* **services** (the relays, ``audit erase``) may write the events topic, nothing else;
* **the worker** (folds and sinks: one principal) reads the events topic, writes the
  dead-letter, lockouts, anomalies and checkpoints topics, reads back the derived ones,
  and owns every topic and consumer group named ``<app_id>-…`` / ``<app_id>…`` (its
  internal topics, table changelogs, its groups and the sinks' groups);
* **auditors** (``audit verify``, the dashboard) read the checkpoints topic.

:func:`pipeline_acls` lists these grants (pure); :func:`grant` creates them and
:func:`set_scram_user` a user's credentials, with an admin connection. Anyone else gets
nothing: an authenticated principal without a grant cannot write a control event (an
erasure, an unlock), read personal data, or join a group.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from factorstream.localkafka import KafkaUnavailable, admin_client
from factorstream.settings import TopicSettings
from verifiers.kafka_connection import KafkaTarget, SaslMechanism

Operation = Literal["READ", "WRITE", "CREATE", "DESCRIBE", "ALL"]
Resource = Literal["TOPIC", "GROUP"]


@dataclass(frozen=True)
class AclGrant:
    """One ALLOW rule: ``principal`` (``User:<name>``) may ``operation`` on the topic or
    group ``name`` (every one starting with it when ``prefixed``), from any host."""

    principal: str
    operation: Operation
    resource: Resource
    name: str
    prefixed: bool = False

    def __str__(self) -> str:
        pattern = "prefix" if self.prefixed else "name"
        return f"{self.principal} {self.operation} {self.resource.lower()} {pattern} {self.name}"


def pipeline_acls(
    topics: TopicSettings,
    *,
    app_id: str,
    worker: str,
    services: Sequence[str] = (),
    auditors: Sequence[str] = (),
) -> list[AclGrant]:
    """The grants of the pipeline's principals (user names, without ``User:``)."""
    grants = [AclGrant(f"User:{s}", "WRITE", "TOPIC", topics.events) for s in services]
    me = f"User:{worker}"
    grants += [
        AclGrant(me, "READ", "TOPIC", topics.events),
        AclGrant(me, "WRITE", "TOPIC", topics.dlq),
        *(
            AclGrant(me, operation, "TOPIC", name)
            for name in (topics.lockouts, topics.anomalies)
            for operation in ("READ", "WRITE")
        ),
        AclGrant(me, "WRITE", "TOPIC", topics.checkpoints),
        AclGrant(me, "ALL", "TOPIC", f"{app_id}-", prefixed=True),
        AclGrant(me, "READ", "GROUP", app_id, prefixed=True),
    ]
    grants += [AclGrant(f"User:{a}", "READ", "TOPIC", topics.checkpoints) for a in auditors]
    return grants


def grant(kafka: KafkaTarget, grants: Iterable[AclGrant], *, timeout: float = 30.0) -> None:
    """Create ``grants`` on the cluster (as a principal allowed to alter ACLs: a super
    user); creating one that exists changes nothing."""
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    acls = [
        ACL(
            principal=g.principal,
            host="*",
            operation=ACLOperation[g.operation],
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(
                ResourceType[g.resource],
                g.name,
                ACLResourcePatternType.PREFIXED if g.prefixed else ACLResourcePatternType.LITERAL,
            ),
        )
        for g in grants
    ]
    with admin_client(kafka, timeout=timeout) as client:
        result = client.create_acls(acls)
    if result["failed"]:
        raise KafkaUnavailable(f"creating ACLs failed: {result['failed']}")


def set_scram_user(
    kafka: KafkaTarget,
    user: str,
    password: str,
    *,
    mechanism: SaslMechanism = "SCRAM-SHA-512",
    timeout: float = 30.0,
) -> None:
    """Create ``user`` with ``password`` for ``mechanism`` (or change its password), as a
    principal allowed to alter the cluster (a super user)."""
    from kafka.admin import UserScramCredentialUpsertion

    with admin_client(kafka, timeout=timeout) as client:
        errors = client.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(user, mechanism, password)]
        )
    if errors.get(user):
        raise KafkaUnavailable(f"setting the SCRAM credentials of {user} failed: {errors[user]}")
