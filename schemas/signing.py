"""Signed control events: who may erase a subject, lift a lock or grant access.

Events the registry marks :attr:`~schemas.registry.Producer.CONTROL` (an erasure, an
administrator's override, temporary access) change what the pipeline holds about a
person; the worker accepts one only when it carries a valid Ed25519 signature by a key it
trusts (``control.trusted_key_files``). Two extension attributes carry it: ``signedby``
(lower-case hex SHA-256 of the raw public key) and ``signature`` (base64). The signed
bytes are ``factorstream-control-event/v1``, a newline, then the event without
``signature`` in the ledger's canonical form, so the signature binds every attribute and
the whole payload. The format in full: docs/contract.md#signed-control-events.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from types import MappingProxyType

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from schemas.envelope import Event
from schemas.errors import EventDecodeError
from schemas.registry import EVENT_TYPES, Producer

SIGNED_HEADER = b"factorstream-control-event/v1\n"
_canonical = msgspec.json.Encoder(order="sorted")


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(key: Ed25519PublicKey) -> str:
    """Hex SHA-256 of the raw public key: how a signature names its key."""
    return hashlib.sha256(raw_public_key(key)).hexdigest()


def signed_bytes(event: Event) -> bytes:
    """What the signature of ``event`` covers (see the module docstring)."""
    unsigned = msgspec.structs.replace(event, signature=None)
    return SIGNED_HEADER + _canonical.encode(unsigned)


def sign_event(event: Event, key: Ed25519PrivateKey) -> Event:
    """``event`` signed by ``key`` (``signedby`` and ``signature`` set)."""
    named = msgspec.structs.replace(event, signedby=key_id_of(key.public_key()), signature=None)
    signature = base64.b64encode(key.sign(signed_bytes(named))).decode()
    return msgspec.structs.replace(named, signature=signature)


def check_signature(event: Event, trusted: Mapping[str, Ed25519PublicKey]) -> None:
    """Refuse ``event`` unless a key in ``trusted`` (by key id) signed exactly this event.

    Raises :class:`EventDecodeError` (field ``signature`` or ``signedby``) saying why:
    unsigned, signed by a key that is not trusted, or a signature that does not match.
    """
    if event.signature is None or event.signedby is None:
        raise EventDecodeError(
            "signature",
            f"{event.type} is a control event and must be signed by a trusted key; "
            "this one is not signed",
        )
    key = trusted.get(event.signedby)
    if key is None:
        raise EventDecodeError(
            "signedby",
            f"{event.type} is signed by key {event.signedby[:16]}…, which the pipeline does "
            "not trust",
        )
    try:
        key.verify(base64.b64decode(event.signature, validate=True), signed_bytes(event))
    except (InvalidSignature, binascii.Error, ValueError):
        raise EventDecodeError(
            "signature",
            f"the signature of {event.type} by key {event.signedby[:16]}… does not match the "
            "event: it was altered after signing, or forged",
        ) from None


GATED: Mapping[str, Producer] = MappingProxyType(
    {kind.name: kind.made_by for kind in EVENT_TYPES if kind.made_by is not Producer.SERVICE}
)
"""Types a service may not simply put on the events topic, with who may."""


def check_producer(event: Event, trusted: Mapping[str, Ed25519PublicKey]) -> None:
    """Refuse an event from the events topic that its producer may not have made: a type
    the pipeline derives, or a control event not signed by a key in ``trusted``
    (:class:`EventDecodeError` saying why). Service events pass unchecked."""
    made_by = GATED.get(event.type)
    if made_by is Producer.PIPELINE:
        raise EventDecodeError(
            "type",
            f"{event.type} is derived by the pipeline itself; from the events topic it is forged",
        )
    if made_by is Producer.CONTROL:
        check_signature(event, trusted)
