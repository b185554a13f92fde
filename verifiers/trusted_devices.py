"""Trusted devices (remember-me): a device the subject stepped up on skips MFA for a while.

:func:`trust` stores a trust after a successful step-up, naming the device binding the
caller sees on every sign-in, and gives the subject an opaque token (``fsdt_`` +
base64url, shown once); token and binding are kept only as keyed HMACs, the device's name
AES-GCM sealed. :func:`check` (inside the assessment's step) judges a presented token with
:func:`judge` (pure), each refusal a ``device.trust_refused`` event that no lockout counts;
a token presented from another device is revoked on the spot. Revocation (by the subject,
an administrator, or an erasure: :func:`forget`) is a ``device.revoked`` event. The
lifetime is the tier's ``trusted_device_lifetime`` (:mod:`verifiers.policy`). The
ceremony in full: docs/trusted-devices.md#trusting-a-device.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import msgspec
import sqlalchemy as sa

from schemas import Event
from schemas.fields import Client, Device
from schemas.payloads import DeviceRevoked, DeviceTrusted, DeviceTrustRefused
from verifiers.policy import MfaDecision
from verifiers.risk import RiskAssessment, RiskFactor, level_of
from verifiers.store import Request, Step, VerifierStore
from verifiers.tables import trusted_devices

TOKEN_PREFIX = "fsdt_"  # noqa: S105 - the prefix that names a token, not a secret
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 128
MAX_BINDING_LENGTH = 128
_TOKEN_SALT = b"trusted-device-token"

UNKNOWN_TOKEN = "unknown_token"  # noqa: S105 - a reason, not a secret
WRONG_SUBJECT = "wrong_subject"
WRONG_DEVICE = "wrong_device"
REVOKED = "revoked"
TIER_NOT_TRUSTED = "tier_not_trusted"
EXPIRED = "expired"
LOCKED_OUT = "locked_out"
IP_BLOCKED = "ip_blocked"
STOLEN = "presented_from_other_device"
"""The ``device.revoked`` reason of a token refused as ``wrong_device``."""
WAIVED_REASONS = frozenset(
    {"customer_tier", "business_tier", "untrusted_device", "unknown_location"}
)
"""The step-up reasons a trusted device answers: the tier's default and not knowing the
device or the place. Any other (a privileged role, a lock or block scoring high, impossible
travel, an anonymous network, a new country, a sensitive application) still steps up."""
TRUSTED_DEVICE = "trusted_device"


@dataclass(frozen=True)
class TrustRecord:
    """What :func:`judge` reads of a stored trust."""

    trust_id: str
    tenant: str
    subject: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


def ends_at(record: TrustRecord, lifetime: timedelta) -> datetime:
    """When a trust ends: its own end, or sooner if the tier's lifetime is shorter now."""
    return min(record.expires_at, record.created_at + lifetime)


def judge(
    record: TrustRecord | None,
    *,
    tenant: str,
    subject: str,
    binding_matches: bool,
    lifetime: timedelta,
    now: datetime,
    locked: bool = False,
    ip_blocked: bool = False,
) -> str | None:
    """Why the presented token is refused at ``now`` (the module's order), or ``None``.

    ``record``: the trust the token names (``None``: none); ``binding_matches``: the
    binding presented is the one it was trusted with; ``lifetime``: the tier's now."""
    if record is None:
        return UNKNOWN_TOKEN
    if (record.tenant, record.subject) != (tenant, subject):
        return WRONG_SUBJECT
    if not binding_matches:
        return WRONG_DEVICE
    if record.revoked_at is not None:
        return REVOKED
    if not lifetime:
        return TIER_NOT_TRUSTED
    if now >= ends_at(record, lifetime):
        return EXPIRED
    if locked:
        return LOCKED_OUT
    if ip_blocked:
        return IP_BLOCKED
    return None


def remembered(assessment: RiskAssessment) -> RiskAssessment:
    """The risk of a sign-in from a device whose trust :func:`check` accepted: the device is
    familiar, its ``new_device`` points go; every other factor stays (a lock's and a
    block's first), so the score never falls below what they say."""
    kept = tuple(c for c in assessment.contributions if c.factor is not RiskFactor.NEW_DEVICE)
    score = min(100, sum(c.points for c in kept))
    return replace(
        assessment,
        score=score,
        level=level_of(score),
        contributions=kept,
        familiar_device=True,
    )


def skip_step_up(decision: MfaDecision) -> MfaDecision:
    """The decision for a trusted device: MFA skipped when every reason asking for it is
    one a trusted device answers (:data:`WAIVED_REASONS`), otherwise unchanged."""
    if decision.required and set(decision.reasons) <= WAIVED_REASONS:
        return MfaDecision(required=False, reasons=(TRUSTED_DEVICE,))
    return decision


@dataclass(frozen=True)
class Trusted:
    """What :func:`trust` did: the token (shown once, never stored) or why there is none."""

    token: str | None
    trust_id: str | None
    expires_at: datetime | None
    reason: str | None = None
    event: Event | None = None

    @property
    def accepted(self) -> bool:
        return self.token is not None


@dataclass(frozen=True)
class DeviceCheck:
    """What :func:`check` found: trusted (skip the step-up), or refused and why."""

    trusted: bool
    reason: str | None
    trust_id: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class TrustedDevice:
    """One trust of a subject, as listed (never its token or binding)."""

    trust_id: str
    device_name: str | None
    tier: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_reason: str | None
    revoked_by: str | None

    def status(self, now: datetime) -> str:
        """``revoked``, ``expired`` or ``active`` at ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if now >= self.expires_at else "active"


def _token_hash(store: VerifierStore, token: str) -> bytes:
    return store.box.code_hash(token, _TOKEN_SALT)


def _well_formed(token: str) -> bool:
    return (
        len(token) <= MAX_TOKEN_LENGTH
        and token.isascii()
        and token.startswith(TOKEN_PREFIX)
        and len(token) > len(TOKEN_PREFIX)
    )


def _binding(device_id: str) -> str:
    if not device_id or len(device_id) > MAX_BINDING_LENGTH:
        raise ValueError(
            f"device_id: expected 1 to {MAX_BINDING_LENGTH} characters, found {len(device_id)}"
        )
    return device_id


def _bound(store: VerifierStore, row: sa.Row[tuple[object, ...]], device_id: str | None) -> bool:
    if device_id is None:
        return False
    return store.box.code_matches(device_id, row.binding_salt, row.binding_hash)


def _with_device(client: Client | None, device_id: str, *, trusted: bool) -> Client:
    device = Device(id=device_id, trusted=trusted)
    if client is None:
        return Client(device=device)
    return msgspec.structs.replace(client, device=device)


def trust(
    store: VerifierStore,
    request: Request,
    *,
    device_id: str,
    device_name: str | None = None,
    assertion_id: str | None = None,
) -> Trusted:
    """Trust the device ``device_id`` of the subject until the tier's lifetime is up.

    ``assertion_id``: the ``jti`` of the MFA assertion proving the step-up; one assertion
    trusts one device, once (``assertion_used``). Refused: ``tier_not_trusted``,
    ``locked_out``, ``assertion_used``."""
    binding = _binding(device_id)
    lifetime = store.tiers[request.tier].trusted_device_lifetime
    token = TOKEN_PREFIX + base64.urlsafe_b64encode(
        store.entropy.token_bytes(TOKEN_BYTES)
    ).decode().rstrip("=")
    trust_id = store.entropy.identifier()
    expires_at = request.now + lifetime
    with store.step(request, factor=None) as step:
        if not lifetime:
            return Trusted(None, None, None, TIER_NOT_TRUSTED)
        if step.lockout.locked:
            return Trusted(None, None, None, LOCKED_OUT)
        if assertion_id is not None and _assertion_used(step, assertion_id):
            return Trusted(None, None, None, "assertion_used")
        same = [row.id for row in _active_rows(step) if _bound(store, row, binding)]
        _revoke(step, same, reason="replaced", revoked_by=None)
        salt = secrets.token_bytes(16)
        step.connection.execute(
            trusted_devices.insert().values(
                id=trust_id,
                tenant=request.tenant,
                subject=request.subject,
                token_hash=_token_hash(store, token),
                binding_salt=salt,
                binding_hash=store.box.code_hash(binding, salt),
                device_name=store.box.seal(device_name.encode(), row=f"trusted_devices:{trust_id}")
                if device_name
                else None,
                tier=str(request.tier),
                assertion_id=assertion_id,
                created_at=request.now,
                expires_at=expires_at,
            )
        )
        event = step.emit(
            DeviceTrusted(
                trust_id=trust_id,
                expires_at=expires_at,
                device_name=device_name,
                assertion_id=assertion_id,
                client=_with_device(request.client, binding, trusted=True),
            )
        )
    return Trusted(token, trust_id, expires_at, None, event)


def check(
    store: VerifierStore,
    step: Step,
    *,
    token: str,
    device_id: str | None,
    locked: bool = False,
    ip_blocked: bool = False,
) -> DeviceCheck:
    """Judge a presented token inside ``step`` (a gated step: its lockout is the gate's).

    ``locked``: a lock the verifier's gate does not know (the stream's); ``ip_blocked``:
    the sign-in's IP is blocked. A refusal emits ``device.trust_refused``; a token
    presented with another binding is revoked too."""
    request = step.request
    lifetime = store.tiers[request.tier].trusted_device_lifetime
    row = None
    if _well_formed(token):
        row = step.connection.execute(
            sa.select(trusted_devices).where(
                trusted_devices.c.token_hash == _token_hash(store, token)
            )
        ).first()
    record = (
        TrustRecord(row.id, row.tenant, row.subject, row.created_at, row.expires_at, row.revoked_at)
        if row is not None
        else None
    )
    reason = judge(
        record,
        tenant=request.tenant,
        subject=request.subject,
        binding_matches=row is not None and _bound(store, row, device_id),
        lifetime=lifetime,
        now=request.now,
        locked=locked or step.lockout.locked,
        ip_blocked=ip_blocked,
    )
    if record is not None and reason is None:
        step.connection.execute(
            trusted_devices.update()
            .where(trusted_devices.c.id == record.trust_id)
            .values(last_used_at=request.now)
        )
        return DeviceCheck(True, None, record.trust_id, ends_at(record, lifetime))
    # another subject's trust is not named in this subject's events
    own = record is not None and reason not in (UNKNOWN_TOKEN, WRONG_SUBJECT)
    trust_id = record.trust_id if own and record is not None else None
    if reason == WRONG_DEVICE and trust_id is not None and record and record.revoked_at is None:
        _revoke(step, [trust_id], reason=STOLEN, revoked_by=None)
    step.emit(DeviceTrustRefused(reason=reason or UNKNOWN_TOKEN, trust_id=trust_id))
    return DeviceCheck(False, reason, trust_id)


def revoke(
    store: VerifierStore,
    request: Request,
    *,
    trust_id: str | None,
    reason: str,
    revoked_by: str | None,
) -> int:
    """End one trust of the subject (``trust_id``) or all of them (``None``) at once;
    how many ended (0: no such trust in force)."""
    with store.step(request, factor=None, gated=False) as step:
        ids = [row.id for row in _active_rows(step) if trust_id in (None, row.id)]
        _revoke(step, ids, reason=reason, revoked_by=revoked_by)
    return len(ids)


def forget(
    store: VerifierStore, *, tenant: str, subject: str, now: datetime, requested_by: str
) -> int:
    """An erasure at ``now``: delete every trust of the subject made until then (nothing of
    those devices remains; a trust made after it is not the erased person's); how many were
    in force. One ``device.revoked`` (reason ``subject_erased``) says so, with no personal
    data (no client context). Run again for the same erasure it finds nothing."""
    request = Request(
        tenant=tenant,
        subject=subject,
        correlationid=f"erasure-{store.entropy.identifier()}",
        now=now,
    )
    with store.step(request, factor=None, gated=False) as step:
        mine = (
            trusted_devices.c.tenant == tenant,
            trusted_devices.c.subject == subject,
            trusted_devices.c.created_at <= now,
        )
        in_force = step.connection.execute(
            sa.select(sa.func.count()).where(
                *mine,
                trusted_devices.c.revoked_at.is_(None),
                trusted_devices.c.expires_at > now,
            )
        ).scalar_one()
        deleted = step.connection.execute(trusted_devices.delete().where(*mine)).rowcount
        if deleted:
            step.emit(
                DeviceRevoked(
                    reason="subject_erased", revoked_by=requested_by, devices_revoked=in_force
                )
            )
    return int(in_force)


def list_devices(store: VerifierStore, *, tenant: str, subject: str) -> list[TrustedDevice]:
    """Every trust of the subject still stored, newest first (read only)."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(trusted_devices)
            .where(trusted_devices.c.tenant == tenant, trusted_devices.c.subject == subject)
            .order_by(trusted_devices.c.created_at.desc(), trusted_devices.c.id)
        ).all()
    return [
        TrustedDevice(
            trust_id=row.id,
            device_name=store.box.open(row.device_name, row=f"trusted_devices:{row.id}").decode()
            if row.device_name is not None
            else None,
            tier=row.tier,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
            revoked_reason=row.revoked_reason,
            revoked_by=row.revoked_by,
        )
        for row in rows
    ]


def _active_rows(step: Step) -> list[sa.Row[tuple[object, ...]]]:
    request = step.request
    return list(
        step.connection.execute(
            sa.select(trusted_devices).where(
                trusted_devices.c.tenant == request.tenant,
                trusted_devices.c.subject == request.subject,
                trusted_devices.c.revoked_at.is_(None),
            )
        ).all()
    )


def _assertion_used(step: Step, assertion_id: str) -> bool:
    found = step.connection.execute(
        sa.select(trusted_devices.c.id).where(trusted_devices.c.assertion_id == assertion_id)
    ).first()
    return found is not None


def _revoke(step: Step, ids: list[str], *, reason: str, revoked_by: str | None) -> None:
    if not ids:
        return
    step.connection.execute(
        trusted_devices.update()
        .where(trusted_devices.c.id.in_(ids), trusted_devices.c.revoked_at.is_(None))
        .values(revoked_at=step.request.now, revoked_reason=reason, revoked_by=revoked_by)
    )
    for trust_id in ids:
        step.emit(DeviceRevoked(reason=reason, trust_id=trust_id, revoked_by=revoked_by))
