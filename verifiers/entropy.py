"""Where the verifiers draw identifiers and one-time values: the operating system's CSPRNG.

Every random value a ceremony makes — event ids, enrollment and challenge ids, TOTP seeds,
one-time codes, push numbers, recovery codes, WebAuthn user handles — comes from the
:class:`Entropy` its :class:`~verifiers.store.VerifierStore` was given. The default,
:data:`SYSTEM`, is :mod:`secrets` (and UUIDv7 event ids): nothing else belongs in
production. A simulation that must replay the same event stream from a seed passes its
own subclass; salts and AES-GCM nonces, which never reach an event, always stay
:mod:`secrets`.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from schemas import uuid7

T = TypeVar("T")


class Entropy:
    """Random values for the ceremonies, cryptographically strong (:mod:`secrets`)."""

    def randbelow(self, n: int) -> int:
        """A uniform integer in ``[0, n)``."""
        return secrets.randbelow(n)

    def choice(self, seq: Sequence[T]) -> T:
        return secrets.choice(seq)

    def token_bytes(self, n: int) -> bytes:
        return secrets.token_bytes(n)

    def identifier(self) -> str:
        """32 hex digits naming an enrollment, challenge or recovery-code set."""
        return uuid.uuid4().hex

    def event_id(self, now: datetime) -> str:
        """A UUIDv7 for an event recorded at ``now``."""
        return uuid7(now)


SYSTEM = Entropy()
"""The production source: :mod:`secrets`."""
