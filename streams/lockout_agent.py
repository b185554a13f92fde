"""The lockout fold per partitionkey, and the one agent shape every per-key fold runs in.

A :class:`KeyedFold` is a pure step ``(state, event) -> (state, derived events)`` over one
``partitionkey``'s events; ``state`` is the JSON-safe value its table holds for the key
(``None`` for a key never seen). :func:`attach_fold_agent` wires one as a Faust agent on
the ingested events: decode, fold, write the table back (``table[k] = new``; a value is
never mutated in place, or the changelog would miss it), forward the derived events.

The lockout fold is ``verifiers.lockout.fold_lockout`` with the policy of the event's
``data.policy_tier`` (else the configured default tier). The risk detections of
``streams/folds/`` plug in the same way: ``create_pipeline(settings, detections=[...])``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Literal

import faust
from faust.types import AgentT, StreamT, TableT, TopicT

from schemas import Event, decode, encode, kafka_key
from schemas.codec import structured_headers
from schemas.fields import PolicyTier
from streams.ingest import record_headers
from streams.positions import JsonState, Position, after, applied, fold_state, position_of
from verifiers.lockout import LockoutPolicy, LockoutState, fold_lockout
from verifiers.policy import TIERS, lockout_policy

Step = Callable[[JsonState | None, Event], tuple[JsonState | None, list[Event]]]


@dataclass(frozen=True)
class KeyedFold:
    """A pure fold over each ``partitionkey``'s events, which the app wires as an agent.

    ``name`` names the agent and its table (changelog ``<app_id>-<name>-changelog``);
    ``output`` says which topic its derived events go to.
    """

    name: str
    step: Step
    output: Literal["lockouts", "anomalies"]


def lockout_fold(default_tier: PolicyTier) -> KeyedFold:
    """The lockout fold, with each tier's policy built once."""
    policies = {tier: lockout_policy(policy) for tier, policy in TIERS.items()}
    return KeyedFold("lockout", partial(_lockout_step, policies, default_tier), "lockouts")


def _lockout_step(
    policies: Mapping[PolicyTier, LockoutPolicy],
    default_tier: PolicyTier,
    state: JsonState | None,
    event: Event,
) -> tuple[JsonState | None, list[Event]]:
    before = LockoutState() if state is None else LockoutState.from_dict(state)
    tier = getattr(event.data, "policy_tier", None) or default_tier
    after, derived = fold_lockout(before, event, policies[tier])
    return (state if after == before else after.to_dict()), derived


async def apply_event(
    fold: KeyedFold,
    *,
    table: TableT[bytes, JsonState],
    key: bytes,
    event: Event,
    position: Position | None,
    sink: TopicT,
) -> list[Event]:
    """One event through ``fold`` for table key ``key``; the derived events it sent.

    Idempotent by ``position`` (``streams.positions``). Derived events are sent, and
    acknowledged, *before* the table write: a crash in between re-derives them with the
    same deterministic ids (downstream keeps one per id) instead of losing them.
    """
    value = table.get(key)
    if value is not None and applied(value, position):
        # a crash may have kept this value in the local store but not in the changelog
        table[key] = value
        return []
    state = fold_state(value)
    new, derived = fold.step(state, event)
    for out in derived:
        # force: not attached to the source offset (Faust would hold it until the commit)
        delivery = await sink.send(
            key=kafka_key(out), value=encode(out), headers=structured_headers(), force=True
        )
        await delivery
    if new != state or derived:
        stored = after(value, new, position)
        if stored is not None:
            table[key] = stored
        elif value is not None:
            del table[key]
    return derived


def attach_fold_agent(
    app: faust.App,
    fold: KeyedFold,
    *,
    source: TopicT,
    table: TableT[bytes, JsonState],
    sink: TopicT,
) -> AgentT[bytes]:
    """Run ``fold`` over ``source`` (encoded events keyed by partitionkey) at concurrency 1.

    The agent yields each event's derived events (observable in ``test_context``).
    """

    async def fold_events(stream: StreamT[bytes]) -> AsyncIterator[list[Event]]:
        async for record in stream.events():
            event = decode(record.value)  # ingest wrote it with our codec: a failure is a bug
            position = position_of(record_headers(record.message.headers), via=False)
            yield await apply_event(
                fold, table=table, key=kafka_key(event), event=event, position=position, sink=sink
            )

    agent: AgentT[bytes] = app.agent(source, name=fold.name, concurrency=1)(fold_events)
    return agent
