"""streams: the Faust app that folds the event log into lockout state and detections.

``streams.app.create_pipeline(config)`` (plain values: ``PipelineConfig``) declares the
topics and tables and wires the engine (``streams.engine``), which runs the stages
(``streams.stages``: ingest, then every fold per subject, per IP and per tenant, as wired
in ``streams.topology``) a batch at a time,
the sinks, and ``streams.api`` (the lockout API). The pure folds live in ``streams.folds``
and ``verifiers.lockout``; ``streams.replay`` runs the same stages without Kafka.
``factorstream worker`` runs the app.
"""

from schemas.extras import require_extra

require_extra("streams")
