"""The errors of the contract package; :class:`SchemaError` is the root."""

from __future__ import annotations


class SchemaError(Exception):
    """Root of every error raised by ``schemas``."""


class EventDecodeError(SchemaError, ValueError):
    """An event could not be decoded or failed validation.

    ``field`` is the dotted path of the offending attribute (``tenant``,
    ``data.client.ip``) or ``event`` when the value as a whole is wrong.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class BreakingSchemaChange(SchemaError):
    """A published schema version was changed in a way old events would not pass."""
