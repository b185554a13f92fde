"""factorstream's front door: settings, CLI, local Kafka, demo, benchmarks.

Nothing imports this package except entry points. Keep this file free of imports:
``python3 -m factorstream.quickstart`` runs it before any dependency is installed.
"""
