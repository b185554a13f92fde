"""Where events come from besides our verifiers: identity providers' logs mapped to the
contract, and CloudEvents over HTTP.

Each provider has a module of pure mapping functions (:mod:`sources.auth0`,
:mod:`sources.okta`, :mod:`sources.keycloak`, :mod:`sources.entra`), all with the same
names: ``map_records(record, source)`` gives every event a record (or a delivery of
records) becomes, or an :class:`Unmapped` record with the reason, never an exception;
``map_record`` gives one result, the record's own event (an Entra ID sign-in becomes
several events: only ``map_records`` gives them all). What they share is
:mod:`sources.events`. They import :mod:`schemas` and nothing else of ours; no clock, no
I/O.

The thin I/O around them: :mod:`sources.delivery` (the one producer every ingest path
hands its events to, returning once the broker acknowledged them); the pollers
(:mod:`sources.polling`, the clients ``*_api``, :mod:`sources.cursors`) and webhook
receivers (:mod:`sources.webhooks`); the HTTP ingest (:mod:`sources.cloudevents_http`
parsing, pure; :mod:`sources.http_ingest` the app; :mod:`sources.ingest_server` running
it). The HTTP ingest reuses the MFA service's credential store and problem-details
helpers (``verifiers.service.clients``, ``verifiers.service.errors``): an arrow sources →
verifiers, never back. Nothing here imports :mod:`factorstream` or reads the clock: time
comes in as a parameter.
"""

from sources.unmapped import Unmapped

__all__ = ["Unmapped"]
