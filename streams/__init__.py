"""streams: the Faust app that folds the event log into lockout state (and detections).

``streams.app.create_app(settings)`` declares the topics and tables and wires the agents:
``streams.ingest`` (decode, dead-letter, dedupe, forward), ``streams.lockout_agent`` (the
pure lockout fold per partitionkey, and the agent shape every per-key fold runs in) and
``streams.api`` (the lockout API). The pure risk detections live in ``streams.folds``.
``factorstream worker`` runs the app.
"""
