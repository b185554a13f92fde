"""The keys of signed control events (``schemas/signing.py``), read from the settings.

Operators' tools (``audit erase``, ``users unlock``) sign with this machine's control key;
the worker and the replay accept control events signed by the trusted keys. One machine
needs no setting: its own key is created on first use and trusted.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.checkpoints import CheckpointError, load_signing_key
from audit.verify import ProofRefused, read_trusted_keys
from factorstream.settings import Settings
from schemas.signing import key_id_of


def control_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The key that signs the control events this machine's operators emit (created on
    first use: ``control.signing_key_file``)."""
    path = settings.key_file(settings.control.signing_key_file, "control-signing.pem")
    try:
        return load_signing_key(path)
    except CheckpointError as error:
        raise ValueError(f"control.signing_key_file: {error}") from None


def trusted_control_keys(settings: Settings) -> dict[str, Ed25519PublicKey]:
    """The keys whose signed control events the worker and the replay accept, by key id:
    ``control.trusted_key_files``, or else this data_dir's own control key."""
    files = settings.control.trusted_key_files
    if not files:
        own = control_signing_key(settings).public_key()
        return {key_id_of(own): own}
    try:
        return read_trusted_keys(files)
    except ProofRefused as error:
        raise ValueError(f"control.trusted_key_files: {error}") from None
