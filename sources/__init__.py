"""Where events come from besides our verifiers: identity providers' logs mapped to the
contract (and, later, CloudEvents over HTTP).

Each provider has a module of pure mapping functions: a provider's record in, one of our
CloudEvents or an :class:`Unmapped` record with the reason out, never an exception.
This package imports :mod:`schemas` and nothing else of ours; no clock, no I/O.
"""

from sources.unmapped import Unmapped

__all__ = ["Unmapped"]
