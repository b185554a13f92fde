"""Same seed, same event stream (byte for byte, by digest); another seed, another stream."""

from __future__ import annotations

import hashlib
from pathlib import Path

from factorstream.simulator.entropy import SeededEntropy
from factorstream.simulator.output import StreamDigest
from factorstream.simulator.run import SimulationPlan, fast_simulation, verifier_store
from schemas import decode, encode
from tests.unit.simulator.conftest import UNTIL, run_verifiers
from verifiers import totp
from verifiers.crypto import SecretBox, new_key
from verifiers.entropy import SYSTEM
from verifiers.store import Request, VerifierStore, store_engine

SMALL = {"users": 10, "days": 2, "scenarios": ("push_bombing", "otp_brute_force")}


def _digest(values: list[bytes]) -> str:
    digest = StreamDigest()
    digest.update(values)
    return digest.hexdigest()


def test_the_same_seed_replays_the_same_stream_and_another_seed_does_not(
    tmp_path: Path,
) -> None:
    first, _ = run_verifiers(tmp_path / "a.db", seed=5, **SMALL)
    again, _ = run_verifiers(tmp_path / "b.db", seed=5, **SMALL)
    other, _ = run_verifiers(tmp_path / "c.db", seed=6, **SMALL)
    assert len(first) > 100
    assert _digest(first) == _digest(again)
    assert first == again
    assert _digest(first) != _digest(other)
    assert {decode(v).id for v in first}.isdisjoint({decode(v).id for v in other})


def test_fast_mode_replays_too_and_differs_by_seed() -> None:
    def run(seed: int) -> list[bytes]:
        plan = SimulationPlan(until=UNTIL, seed=seed, **SMALL)  # type: ignore[arg-type]
        simulation, service = fast_simulation(plan)
        simulation.backfill()
        return [encode(event) for event in service.take()]

    assert _digest(run(5)) == _digest(run(5))
    assert _digest(run(5)) != _digest(run(6))


def test_the_digest_is_sha256_of_the_jsonl_file() -> None:
    values = [b'{"a":1}', b'{"b":2}']
    digest = StreamDigest()
    digest.update(values)
    assert digest.hexdigest() == hashlib.sha256(b'{"a":1}\n{"b":2}\n').hexdigest()
    assert digest.count == 2


def test_seeded_entropy_repeats_and_the_default_does_not() -> None:
    a, b = SeededEntropy(1), SeededEntropy(1)
    assert [a.identifier(), a.randbelow(10**6), a.event_id(UNTIL)] == [
        b.identifier(),
        b.randbelow(10**6),
        b.event_id(UNTIL),
    ]
    assert SeededEntropy(2).identifier() != SeededEntropy(1).identifier()
    assert SYSTEM.identifier() != SYSTEM.identifier()
    assert SYSTEM.event_id(UNTIL) != SYSTEM.event_id(UNTIL)


def test_verifier_stores_draw_from_secrets_unless_given_a_seed(tmp_path: Path) -> None:
    """Production stores stay cryptographically random: only the simulator passes a seed."""
    request = Request(tenant="acme", subject="u-1", correlationid="c-1", now=UNTIL)
    enrollments = []
    for name in ("a", "b"):
        store = VerifierStore(
            store_engine(f"sqlite:///{tmp_path / name}.db"), SecretBox(new_key()), source="s"
        )
        store.migrate()
        assert store.entropy is SYSTEM
        enrollments.append(totp.begin_enrollment(store, request, account_name="a", issuer="b"))
    assert enrollments[0].enrollment_id != enrollments[1].enrollment_id
    assert enrollments[0].provisioning_uri != enrollments[1].provisioning_uri
    seeded = [
        totp.begin_enrollment(
            verifier_store(tmp_path / f"s{n}.db", seed=1), request, account_name="a", issuer="b"
        )
        for n in range(2)
    ]
    assert seeded[0].provisioning_uri == seeded[1].provisioning_uri
