"""The MFA service: the verifiers over HTTP (``api``), the signed MFA assertions it returns
(``assertions``), the credentials of its callers (``clients``) and the middleware that
relying parties put in front of their apps (``middleware.require_mfa``).

Needs the ``service`` extra: ``pip install 'factorstream[service]'`` (a relying party that
only checks assertions needs PyJWT and cryptography alone)."""

from __future__ import annotations

from schemas import extras


def require_extra(*modules: str) -> None:
    """Fail with a message naming the extra when a module of it is not installed."""
    extras.require_extra("verifiers.service", *modules)
