"""The alerts package's one root error (misuse and configuration; a receiver that fails
is an outcome, not an exception)."""


class AlertsError(Exception):
    """Root of every error the alerts package raises."""
