"""The account-lifecycle steps of a :class:`~factorstream.simulator.actions.Service`, in
both makers: :class:`VerifierLifecycle` performs them with the real verifiers (trusted
devices, the two-person override and its temporary-access codes, bulk enrolment), and
:class:`FastLifecycle` builds the events they would record. Each is a mixin of its service
(``VerifierService``, ``FastService``): it uses their store or their event maker.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from factorstream.simulator.actions import ActionResult, Visit
from schemas import payloads as p
from schemas.fields import Factor
from verifiers import bulk_enrollment, override, temporary_access, trusted_devices
from verifiers.bulk_files import Invitee
from verifiers.policy import TIERS
from verifiers.seed_files import TotpSeed
from verifiers.store import Request, VerifierStore

STOLEN = trusted_devices.STOLEN
APPROVAL_WINDOW = override.OverrideRules().approval_window
"""How long a request waits for its second administrator (the verifiers' default)."""


TEMPORARY_ACCESS_FOR = timedelta(hours=1)
"""How long a simulated temporary-access code stays valid (within every tier's limit)."""


def administrators_key(seed: int) -> Ed25519PrivateKey:
    """The key the simulated administrators sign their overrides with (from the seed)."""
    return Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(f"factorstream-simulator/admins/{seed}".encode()).digest()
    )


def ceremony_request(visit: Visit) -> Request:
    """The verifiers' request of a visit: who, when, from where."""
    person = visit.person
    return Request(
        tenant=person.tenant,
        subject=person.subject,
        correlationid=visit.correlationid,
        now=visit.now,
        tier=person.tier,
        application=visit.application,
        client=visit.client,
    )


def _device_id(visit: Visit) -> str:
    device = visit.client.device
    return device.id if device is not None and device.id else "unknown-device"


class VerifierLifecycle:
    """The lifecycle steps on the real verifiers (mixed into ``VerifierService``)."""

    store: VerifierStore
    _lifecycle_rng: random.Random
    _admins: Ed25519PrivateKey

    def trust_device(self, visit: Visit) -> str | None:
        """``device.trusted``: the visit's device remembered; its token (``None``: refused)."""
        done = trusted_devices.trust(
            self.store, ceremony_request(visit), device_id=_device_id(visit), device_name="My phone"
        )
        return done.token

    def present_trusted_device(self, visit: Visit, token: str) -> ActionResult:
        """The token shown at sign-in from ``visit``'s device: trusted, or refused (from
        another device: a stolen token, its trust revoked)."""
        with self.store.step(ceremony_request(visit), factor=None) as step:
            found = trusted_devices.check(
                self.store, step, token=token, device_id=_device_id(visit)
            )
        return ActionResult(found.trusted, found.reason)

    def revoke_trusted_devices(self, visit: Visit) -> int:
        """The subject ends trust in every device of theirs; how many ended."""
        return trusted_devices.revoke(
            self.store,
            ceremony_request(visit),
            trust_id=None,
            reason="subject_request",
            revoked_by=visit.person.subject,
        )

    def request_override(
        self, visit: Visit, *, action: str, requester: str, ticket: str
    ) -> str | None:
        """An administrator asks to unlock the visit's subject or to give it a temporary
        access code; the request's id (``None``: refused)."""
        done = override.request_override(
            self.store,
            tenant=visit.person.tenant,
            subject=visit.person.subject,
            action=action,
            requester=override.Admin(requester, is_admin=True),
            justification="locked out, identity checked by phone",
            ticket=ticket,
            now=visit.now,
            signer=self._admins,
            tier=visit.person.tier,
            single_use=True,
            valid_for=TEMPORARY_ACCESS_FOR,
        )
        return done.override.id if done.accepted and done.override is not None else None

    def approve_override(
        self, visit: Visit, request_id: str, *, approver: str
    ) -> tuple[ActionResult, str | None]:
        """A second administrator approves (or is refused: e.g. ``self_approval``); the
        temporary-access code an approval makes, if any."""
        done = override.approve_override(
            self.store,
            request_id=request_id,
            approver=override.Admin(approver, is_admin=True),
            now=visit.now,
            signer=self._admins,
        )
        code = done.grant.code if done.grant is not None else None
        return ActionResult(done.accepted, done.reason), code

    def redeem_temporary_access(self, visit: Visit, code: str) -> ActionResult:
        verdict = temporary_access.redeem(self.store, ceremony_request(visit), code=code)
        return ActionResult(verdict.accepted, verdict.reason)

    def import_totp_seeds(self, visit: Visit, subjects: list[str], *, source: str) -> None:
        """Seeds migrated from another system for ``subjects`` of the visit's tenant."""
        seeds = [
            TotpSeed(row=row, subject=subject, secret=self._lifecycle_rng.randbytes(20))
            for row, subject in enumerate(subjects, start=1)
        ]
        bulk_enrollment.import_seeds(
            self.store,
            seeds,
            tenant=visit.person.tenant,
            now=visit.now,
            correlationid=visit.correlationid,
            imported_from=source,
        )

    def invite(self, visit: Visit, subjects: list[str], factor: Factor) -> None:
        """``subjects`` of the visit's tenant invited to enrol ``factor``."""
        bulk_enrollment.invite(
            self.store,
            [Invitee(row=row, subject=s) for row, s in enumerate(subjects, start=1)],
            tenant=visit.person.tenant,
            factor=factor,
            now=visit.now,
            correlationid=visit.correlationid,
        )


@dataclass
class _FastState:
    """What the fast service remembers of the lifecycle."""

    trusts: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Token (the trust id) → (subject, device id)."""
    codes: dict[str, str] = field(default_factory=dict)
    """Temporary-access code (the grant id) → its request id, until used."""
    requests: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    """Request id → (requester, action, ticket)."""


class FastLifecycle:
    """The lifecycle steps' events, built without the verifiers (mixed into ``FastService``):
    no store, so a token is the trust's id, a token from another device is refused as
    stolen, a second approval or an expired request is not judged, and a code is single
    use."""

    _rng: random.Random

    if TYPE_CHECKING:

        def _emit(
            self, visit: Visit, payload: p.Payload, *, subject: str | None = None
        ) -> None: ...

    @cached_property
    def _lifecycle(self) -> _FastState:
        return _FastState()

    def _id(self, kind: str) -> str:
        return f"{kind}-{self._rng.getrandbits(64):016x}"

    def trust_device(self, visit: Visit) -> str | None:
        lifetime = TIERS[visit.person.tier].trusted_device_lifetime
        if lifetime <= timedelta(0):
            return None
        trust_id = self._id("trust")
        self._lifecycle.trusts[trust_id] = (visit.person.subject, _device_id(visit))
        self._emit(visit, p.DeviceTrusted(trust_id=trust_id, expires_at=visit.now + lifetime))
        return trust_id

    def present_trusted_device(self, visit: Visit, token: str) -> ActionResult:
        found = self._lifecycle.trusts.get(token)
        if found is None or found[0] != visit.person.subject:
            self._emit(visit, p.DeviceTrustRefused(reason=trusted_devices.UNKNOWN_TOKEN))
            return ActionResult(False, trusted_devices.UNKNOWN_TOKEN)
        if found[1] == _device_id(visit):
            return ActionResult(True)
        del self._lifecycle.trusts[token]
        reason = trusted_devices.WRONG_DEVICE
        self._emit(visit, p.DeviceRevoked(reason=STOLEN, trust_id=token))
        self._emit(visit, p.DeviceTrustRefused(reason=reason, trust_id=token))
        return ActionResult(False, reason)

    def revoke_trusted_devices(self, visit: Visit) -> int:
        trusts = self._lifecycle.trusts
        mine = [token for token, (subject, _) in trusts.items() if subject == visit.person.subject]
        for token in mine:
            del trusts[token]
            revoked = p.DeviceRevoked(
                reason="subject_request", trust_id=token, revoked_by=visit.person.subject
            )
            self._emit(visit, revoked)
        return len(mine)

    def request_override(
        self, visit: Visit, *, action: str, requester: str, ticket: str
    ) -> str | None:
        request_id = self._id("ovr")
        self._lifecycle.requests[request_id] = (requester, action, ticket)
        requested = p.AdminOverrideRequested(
            request_id=request_id,
            requested_by=requester,
            action=action,
            justification="locked out, identity checked by phone",
            ticket=ticket,
            approve_before=visit.now + APPROVAL_WINDOW,
            policy_tier=visit.person.tier,
        )
        self._emit(visit, requested)
        return request_id

    def approve_override(
        self, visit: Visit, request_id: str, *, approver: str
    ) -> tuple[ActionResult, str | None]:
        requester, action, ticket = self._lifecycle.requests[request_id]
        if approver.strip().lower() == requester.strip().lower():
            refused = p.AdminOverrideRefused(
                attempted_by=approver,
                stage="approve",
                reason="self_approval",
                request_id=request_id,
                action=action,
                requested_by=requester,
                ticket=ticket,
            )
            self._emit(visit, refused)
            return ActionResult(False, "self_approval"), None
        approved = p.AdminOverrideApproved(
            request_id=request_id,
            approved_by=approver,
            action=action,
            requested_by=requester,
            ticket=ticket,
        )
        self._emit(visit, approved)
        if action != override.OverrideAction.TEMPORARY_ACCESS:
            return ActionResult(True), None
        grant_id = self._id("grant")
        granted = p.TemporaryAccessGranted(
            grant_id=grant_id,
            granted_by=approver,
            expires_at=visit.now + TEMPORARY_ACCESS_FOR,
            justification="locked out, identity checked by phone",
            request_id=request_id,
            single_use=True,
            requested_by=requester,
            ticket=ticket,
        )
        self._emit(visit, granted)
        self._lifecycle.codes[grant_id] = request_id
        return ActionResult(True), grant_id

    def redeem_temporary_access(self, visit: Visit, code: str) -> ActionResult:
        request_id = self._lifecycle.codes.pop(code, None)
        if request_id is None:
            self._emit(visit, p.TemporaryAccessRefused(reason="used_code", grant_id=code))
            return ActionResult(False, "used_code")
        used = p.TemporaryAccessUsed(grant_id=code, single_use=True, uses=1, request_id=request_id)
        self._emit(visit, used)
        return ActionResult(True)

    def import_totp_seeds(self, visit: Visit, subjects: list[str], *, source: str) -> None:
        for subject in subjects:
            seed = p.EnrollmentCompleted(
                factor=Factor.TOTP, enrollment_id=self._id("enr"), imported_from=source
            )
            self._emit(visit, seed, subject=subject)

    def invite(self, visit: Visit, subjects: list[str], factor: Factor) -> None:
        for subject in subjects:
            invited = p.EnrollmentStarted(
                factor=factor, enrollment_id=self._id("enr"), invited=True
            )
            self._emit(visit, invited, subject=subject)
