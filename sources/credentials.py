"""The ingest's callers: per-tenant bearer credentials, hashed, revocable, cached.

The MFA service's :class:`~verifiers.service.clients.ServiceClients` already is exactly
this (``fsc_<id>.<secret>``, only SHA-256 of the 256-bit secret stored, constant-time
comparison, a 5 s cache that a revocation in the same process clears at once), so the
ingest uses it over a database of its own: an MFA-service credential is not an ingest
credential, nor the other way round. Only its table is created there.
"""

from __future__ import annotations

import sqlalchemy as sa

from verifiers.service.clients import ServiceClients
from verifiers.tables import service_clients


def ingest_credentials(database_url: str) -> ServiceClients:
    """The credentials in the ingest database at ``database_url`` (table made if absent)."""
    engine = sa.create_engine(database_url)
    service_clients.create(engine, checkfirst=True)
    return ServiceClients(engine)
