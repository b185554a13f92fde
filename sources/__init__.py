"""Where events come from besides our verifiers: identity providers' logs mapped to the
contract (and, later, CloudEvents over HTTP).

Each provider has a module of pure mapping functions (:mod:`sources.auth0`,
:mod:`sources.okta`, :mod:`sources.keycloak`, :mod:`sources.entra`), all with the same
names: ``map_records(record, source)`` gives every event a record (or a delivery of
records) becomes, or an :class:`Unmapped` record with the reason, never an exception;
``map_record`` gives one result, the record's own event (an Entra ID sign-in becomes
several events: only ``map_records`` gives them all). What they share is
:mod:`sources.events`. This package imports :mod:`schemas` and nothing else of ours; no
clock, no I/O.
"""

from sources.unmapped import Unmapped

__all__ = ["Unmapped"]
